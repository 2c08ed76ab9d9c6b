//! What the MMU's caches hold and when they let go, beyond explicit flushes:
//! a page fault drops the faulting page's cached translation (SDM Vol. 3A
//! 4.10.4.1); PAE's PDPTEs are registers loaded at defined events, not
//! re-read on each walk (4.4.1); and PAE address spaces are told apart by
//! CR3 bits 31:5.

mod common;
use common::*;
use softmmu::walker::Pdptes;
use softmmu::*;

#[test]
fn a_page_fault_drops_the_cached_translation_of_its_page() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    // Writable but not yet dirty: reads are cached, a write must walk.
    let pte = t.map(0x7000_0000, 0x20_0000, RW | US);
    let ctx = t.ctx();
    ram(mmu.translate(&ctx, Gva::new(0x7000_0010), READ));
    assert_eq!(mmu.stats().walks, 1);
    // The guest unmaps the page without INVLPG; a cached read may still
    // use the old translation (the TLB is allowed to), but the write walks
    // and faults...
    put64(&mem, pte, 0);
    let f = mmu
        .translate(&ctx, Gva::new(0x7000_0020), WRITE)
        .unwrap_err();
    assert_eq!(f.error_code, PFERR_WRITE);
    // ...and the fault invalidated the page's TLB entries: the read walks
    // again and faults too.
    let f = mmu
        .translate(&ctx, Gva::new(0x7000_0010), READ)
        .unwrap_err();
    assert_eq!((f.addr, f.error_code), (Gva::new(0x7000_0010), 0));
    assert_eq!(mmu.stats().walks, 3);
}

#[test]
fn a_page_fault_drops_every_piece_of_a_large_page_and_its_global_entry() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    let pde = t.map_at(0x4000_0000, 0x40_0000, RW | G, 2);
    let ctx = PagingCtx {
        cr4: CR4_PAE | CR4_PGE,
        ..t.ctx()
    };
    ram(mmu.translate(&ctx, Gva::new(0x4000_0000), READ));
    ram(mmu.translate(&ctx, Gva::new(0x4010_0000), READ));
    put64(&mem, pde, 0);
    // A user access to the supervisor page: the cached entry does not
    // allow it, so it walks, and faults (not present now).
    mmu.translate(&ctx, Gva::new(0x4010_0000), UREAD)
        .unwrap_err();
    let f = mmu
        .translate(&ctx, Gva::new(0x4000_0000), READ)
        .unwrap_err();
    assert_eq!(f.error_code, 0);
}

/// PAE tables: the PDPT at `pdpt` (32-byte aligned) with entry 0 pointing
/// to a page directory at `pd`, whose entry 0 points to a page table at
/// `pt`, mapping linear page 0x1000 to `frame`.
fn pae_tables(mem: &GuestMemory, pdpt: u64, pd: u64, pt: u64, frame: u64) {
    put64(mem, pdpt, pd | P);
    put64(mem, pd, pt | P | RW | US);
    put64(mem, pt + 8, frame | P | RW | US);
}

fn pae_ctx(cr3: u64) -> PagingCtx {
    PagingCtx {
        cr0: CR0_PG | CR0_WP,
        cr3,
        cr4: CR4_PAE,
        efer: 0,
        ac: false,
    }
}

#[test]
fn pae_walks_use_the_pdptes_loaded_at_mov_cr3_not_memory() {
    let (mem, mut mmu) = setup();
    pae_tables(&mem, 0x1000, 0x2000, 0x3000, 0x10_0000);
    pae_tables(&mem, 0x5000, 0x6000, 0x7000, 0x20_0000);
    let ctx = pae_ctx(0x1000);
    mmu.load_pdptes(&ctx).unwrap();
    assert_eq!(
        mmu.pdptes(),
        Some(Pdptes {
            pdpt: 0x1000,
            entries: [0x2000 | P, 0, 0, 0]
        })
    );
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x1234), READ)).0,
        Gpa::new(0x10_0234)
    );
    // The guest points PDPTE 0 elsewhere and invalidates the page: INVLPG
    // does not reload the PDPTE registers, so the walk still goes through
    // the old page directory.
    put64(&mem, 0x1000, 0x6000 | P);
    mmu.flush(Flush::Page(Gva::new(0x1000)));
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x1234), READ)).0,
        Gpa::new(0x10_0234)
    );
    // MOV CR3 (same value) reloads them and flushes.
    mmu.load_pdptes(&ctx).unwrap();
    mmu.flush(Flush::NonGlobal { pcid: 0 });
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x1234), READ)).0,
        Gpa::new(0x20_0234)
    );
}

#[test]
fn a_pdpte_with_a_reserved_bit_is_refused_and_the_old_ones_stay() {
    let (mem, mut mmu) = setup();
    pae_tables(&mem, 0x1000, 0x2000, 0x3000, 0x10_0000);
    mmu.load_pdptes(&pae_ctx(0x1000)).unwrap();
    let before = mmu.pdptes();
    // Bits 2:1 and 8:5 of a present PDPTE are reserved, and so are the
    // bits from MAXPHYADDR up.
    for (bad, index) in [(0x2000 | P | RW, 0), (P | 1 << 5, 2), (P | 1 << 63, 3)] {
        put64(&mem, 0x5000 + 8 * index, bad);
        assert_eq!(
            mmu.load_pdptes(&pae_ctx(0x5000)),
            Err(PdpteError::Reserved {
                index: index as u8,
                entry: bad
            })
        );
        assert_eq!(mmu.pdptes(), before);
        put64(&mem, 0x5000 + 8 * index, 0);
    }
    // Not present: anything goes. A PDPT outside RAM cannot be loaded.
    put64(&mem, 0x5000, 0xffff_fffe);
    mmu.load_pdptes(&pae_ctx(0x5000)).unwrap();
    assert_eq!(
        mmu.load_pdptes(&pae_ctx(0xffff_f000)),
        Err(PdpteError::NotRam(0xffff_f000))
    );
    // Outside PAE paging there is nothing to load.
    mmu.load_pdptes(&PagingCtx::default()).unwrap();
}

#[test]
fn pae_address_spaces_differ_in_cr3_bits_11_to_5() {
    let (mem, mut mmu) = setup();
    // Two PDPTs in the same 4 KiB page, 32 bytes apart.
    pae_tables(&mem, 0x1000, 0x2000, 0x3000, 0x10_0000);
    pae_tables(&mem, 0x1020, 0x6000, 0x7000, 0x20_0000);
    let (a, b) = (pae_ctx(0x1000), pae_ctx(0x1020));
    mmu.load_pdptes(&a).unwrap();
    assert_eq!(
        ram(mmu.translate(&a, Gva::new(0x1000), READ)).0,
        Gpa::new(0x10_0000)
    );
    mmu.load_pdptes(&b).unwrap();
    assert_eq!(
        ram(mmu.translate(&b, Gva::new(0x1000), READ)).0,
        Gpa::new(0x20_0000)
    );
    // Back to the first (a PCID-less switch would flush; the MMU may keep
    // both spaces, but never mix them up).
    mmu.load_pdptes(&a).unwrap();
    assert_eq!(
        ram(mmu.translate(&a, Gva::new(0x1000), READ)).0,
        Gpa::new(0x10_0000)
    );
}

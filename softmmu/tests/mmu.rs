//! The per-vCPU MMU: front TLB, shadow entries, invalidation, MMIO sptes,
//! permissions on cached translations, and the guest-RAM accessors.

mod common;
use common::*;
use softmmu::*;
use std::sync::Arc;

#[test]
fn second_access_hits_the_front_tlb_at_the_exact_byte() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    t.map(0x7000_0000, 0x20_0000, RW | US);
    let ctx = t.ctx();
    mem.write_phys(Gpa::new(0x20_0123), &0xdead_beef_u32.to_le_bytes())
        .unwrap();
    let (gpa, hva) = ram(mmu.translate(&ctx, Gva::new(0x7000_0123), READ));
    assert_eq!(gpa, Gpa::new(0x20_0123));
    assert_eq!(mmu.load(hva, 4), 0xdead_beef);
    assert_eq!((mmu.stats().walks, mmu.stats().tlb_hits), (1, 0));
    let (gpa, hva) = ram(mmu.translate(&ctx, Gva::new(0x7000_0ffc), UREAD));
    assert_eq!(gpa, Gpa::new(0x20_0ffc));
    assert_eq!(mmu.stats().tlb_hits, 1);
    mmu.store(hva, 4, 0x0102_0304);
    let mut b = [0; 4];
    mem.read_phys(Gpa::new(0x20_0ffc), &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0x0102_0304);
}

#[test]
fn shadow_entries_answer_tlb_conflicts_without_walking() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    // Pages 0x101, 0x202 and 0x303 fall in the same two-way front-TLB set
    // (the set index is the low byte of the page number xor the next byte), so a round
    // robin over the three misses the TLB every time.
    let pages = [0x10_1000u64, 0x20_2000, 0x30_3000];
    for (i, gva) in pages.iter().enumerate() {
        t.map(*gva, 0x20_0000 + 0x1000 * i as u64, RW);
    }
    let ctx = t.ctx();
    for gva in pages.iter().chain(pages.iter()) {
        ram(mmu.translate(&ctx, Gva::new(*gva), READ));
    }
    assert_eq!(mmu.stats().walks, 3);
    assert_eq!(mmu.stats().spte_hits, 3);
    assert_eq!(mmu.stats().tlb_hits, 0);
}

#[test]
fn buffers_a_power_of_two_apart_share_the_front_tlb() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    // 256 pages apart: one slot of a direct-mapped table; a memcpy between
    // them must not miss on every access.
    t.map(0x10_0000, 0x20_0000, RW);
    t.map(0x20_0000, 0x21_0000, RW);
    let ctx = t.ctx();
    for gva in [0x10_0000u64, 0x20_0000, 0x10_0008, 0x20_0008] {
        ram(mmu.translate(&ctx, Gva::new(gva), READ));
    }
    assert_eq!(mmu.stats().walks, 2);
    assert_eq!(mmu.stats().tlb_hits, 2);
}

#[test]
fn a_write_through_a_clean_cached_page_sets_the_dirty_bit() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    let pte = t.map(0x5000_0000, 0x20_0000, RW);
    let ctx = t.ctx();
    ram(mmu.translate(&ctx, Gva::new(0x5000_0000), READ));
    assert_eq!(get64(&mem, pte) & (A | D), A);
    ram(mmu.translate(&ctx, Gva::new(0x5000_0000), WRITE));
    assert_eq!(
        get64(&mem, pte) & (A | D),
        A | D,
        "the write walked and set D"
    );
    let walks = mmu.stats().walks;
    ram(mmu.translate(&ctx, Gva::new(0x5000_0008), WRITE));
    assert_eq!(mmu.stats().walks, walks, "now writable in the front TLB");
}

#[test]
fn cached_translations_still_enforce_permissions() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    t.map(0x6000_0000, 0x20_0000, RW); // supervisor page
    t.map(0x6000_1000, 0x20_1000, US); // user, read-only
    let mut ctx = t.ctx();
    ctx.cr4 |= CR4_SMAP;
    ram(mmu.translate(&ctx, Gva::new(0x6000_0000), WRITE));
    let f = mmu
        .translate(&ctx, Gva::new(0x6000_0000), UREAD)
        .unwrap_err();
    assert_eq!(
        f,
        PageFault {
            addr: Gva::new(0x6000_0000),
            error_code: 0b101
        }
    );
    // SMAP: explicit supervisor read of a user page needs AC=1.
    let ac = PagingCtx { ac: true, ..ctx };
    ram(mmu.translate(&ac, Gva::new(0x6000_1000), READ));
    let f = mmu
        .translate(&ctx, Gva::new(0x6000_1000), READ)
        .unwrap_err();
    assert_eq!(f.error_code, 0b001);
    let f = mmu
        .translate(
            &ac,
            Gva::new(0x6000_1000),
            Access::implicit(AccessKind::Read),
        )
        .unwrap_err();
    assert_eq!(f.error_code, 0b001, "implicit accesses ignore AC");
    // Read-only for user writes, and for supervisor writes with WP.
    assert_eq!(
        mmu.translate(&ac, Gva::new(0x6000_1000), UWRITE)
            .unwrap_err()
            .error_code,
        0b111
    );
    assert_eq!(
        mmu.translate(&ac, Gva::new(0x6000_1000), WRITE)
            .unwrap_err()
            .error_code,
        0b011
    );
    let nowp = PagingCtx {
        cr0: ctx.cr0 & !CR0_WP,
        ..ac
    };
    ram(mmu.translate(&nowp, Gva::new(0x6000_1000), WRITE));
    // SMEP and NX on fetches.
    let smep = PagingCtx {
        cr4: ctx.cr4 | CR4_SMEP,
        ..ac
    };
    let f = mmu
        .translate(
            &smep,
            Gva::new(0x6000_1000),
            Access::supervisor(AccessKind::Fetch),
        )
        .unwrap_err();
    assert_eq!(f.error_code, 0b1_0001);
}

#[test]
fn faults_are_reported_and_never_cached() {
    let (mem, mut mmu) = setup();
    let t = Tables::new(&mem, 0x1000);
    let ctx = t.ctx();
    let rec = Arc::new(Recorder::default());
    mmu.set_sink(Some(rec.clone()));
    let f = mmu
        .translate(&ctx, Gva::new(0x1234_5678), UWRITE)
        .unwrap_err();
    assert_eq!(
        f,
        PageFault {
            addr: Gva::new(0x1234_5678),
            error_code: 0b110
        }
    );
    let ev = rec.take();
    let first_step = ev.iter().find(|e| matches!(e, MmuEvent::WalkStep { .. }));
    assert!(
        matches!(first_step, Some(MmuEvent::WalkStep { level: 4, .. })),
        "{ev:?}"
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        MmuEvent::Fault {
            reason: FaultReason::NotPresent { level: 4 },
            ..
        }
    )));
    for e in &ev {
        assert!(!e.to_string().is_empty());
    }
    // Map it now: no flush needed, nothing negative was cached.
    let mut t = Tables::new(&mem, 0x1000);
    t.map(0x1234_5000, 0x20_0000, RW | US);
    ram(mmu.translate(&ctx, Gva::new(0x1234_5678), UWRITE));
    assert_eq!(mmu.stats().faults, 1);
}

#[test]
fn invlpg_and_cr3_flushes() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    let pte = t.map(0x4000_0000, 0x20_0000, RW);
    let ctx = t.ctx();
    ram(mmu.translate(&ctx, Gva::new(0x4000_0000), READ));
    put64(&mem, pte, 0x21_0000 | P | RW);
    // Like a real TLB, the stale translation stays until invalidated.
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x4000_0000), READ)).0,
        Gpa::new(0x20_0000)
    );
    mmu.flush(Flush::Page(Gva::new(0x4000_0fff)));
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x4000_0000), READ)).0,
        Gpa::new(0x21_0000)
    );
    put64(&mem, pte, 0x22_0000 | P | RW);
    mmu.flush(Flush::NonGlobal { pcid: 0 });
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x4000_0000), READ)).0,
        Gpa::new(0x22_0000)
    );
}

#[test]
fn invlpg_anywhere_in_a_large_page_drops_all_of_it() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    let pde = t.map_at(0x8000_0000, 0x20_0000, RW, 2);
    let ctx = t.ctx();
    ram(mmu.translate(&ctx, Gva::new(0x8000_0000), READ));
    ram(mmu.translate(&ctx, Gva::new(0x801f_f000), READ));
    put64(&mem, pde, 0x40_0000 | P | RW | PS);
    mmu.flush(Flush::Page(Gva::new(0x8010_0000)));
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x801f_f000), READ)).0,
        Gpa::new(0x5f_f000)
    );
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x8000_0000), READ)).0,
        Gpa::new(0x40_0000)
    );
}

#[test]
fn global_pages_survive_non_global_flushes() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    let pte = t.map(0x9000_0000, 0x20_0000, RW | G);
    let mut ctx = t.ctx();
    ctx.cr4 |= CR4_PGE;
    ram(mmu.translate(&ctx, Gva::new(0x9000_0000), READ));
    put64(&mem, pte, 0x21_0000 | P | RW | G);
    mmu.flush(Flush::NonGlobal { pcid: 0 });
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x9000_0000), READ)).0,
        Gpa::new(0x20_0000)
    );
    mmu.flush(Flush::AllNonGlobal);
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x9000_0000), READ)).0,
        Gpa::new(0x20_0000)
    );
    mmu.flush(Flush::All);
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x9000_0000), READ)).0,
        Gpa::new(0x21_0000)
    );
}

#[test]
fn pcids_are_separate_address_spaces() {
    let (mem, mut mmu) = setup();
    let mut a = Tables::new(&mem, 0x1000);
    a.map(0x1000_0000, 0x20_0000, RW);
    let mut b = Tables::new(&mem, 0x10_0000);
    let pte_b = b.map(0x1000_0000, 0x30_0000, RW);
    let mut ca = a.ctx();
    ca.cr4 |= CR4_PCIDE;
    ca.cr3 |= 1;
    let mut cb = b.ctx();
    cb.cr4 |= CR4_PCIDE;
    cb.cr3 |= 2;
    assert_eq!(
        ram(mmu.translate(&ca, Gva::new(0x1000_0000), READ)).0,
        Gpa::new(0x20_0000)
    );
    assert_eq!(
        ram(mmu.translate(&cb, Gva::new(0x1000_0000), READ)).0,
        Gpa::new(0x30_0000)
    );
    put64(&mem, pte_b, 0x31_0000 | P | RW);
    mmu.flush(Flush::Pcid { pcid: 1 });
    assert_eq!(
        ram(mmu.translate(&cb, Gva::new(0x1000_0000), READ)).0,
        Gpa::new(0x30_0000),
        "PCID 2 kept"
    );
    mmu.flush(Flush::PcidPage {
        pcid: 2,
        gva: Gva::new(0x1000_0000),
    });
    assert_eq!(
        ram(mmu.translate(&cb, Gva::new(0x1000_0000), READ)).0,
        Gpa::new(0x31_0000)
    );
    assert_eq!(
        ram(mmu.translate(&ca, Gva::new(0x1000_0000), READ)).0,
        Gpa::new(0x20_0000)
    );
}

#[test]
fn mmio_sptes_hit_until_the_memslots_change() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    t.map(0xa000_0000, 0x100_0000, RW | US);
    let ctx = t.ctx();
    let rec = Arc::new(Recorder::default());
    mmu.set_sink(Some(rec.clone()));
    let mmio = Translation::Mmio {
        gpa: Gpa::new(0x100_0010),
    };
    assert_eq!(
        mmu.translate(&ctx, Gva::new(0xa000_0010), READ).unwrap(),
        mmio
    );
    assert!(rec
        .take()
        .iter()
        .any(|e| matches!(e, MmuEvent::SpteInstall { spte, .. } if spte::is_mmio_spte(*spte))));
    assert_eq!(
        mmu.translate(&ctx, Gva::new(0xa000_0010), READ).unwrap(),
        mmio
    );
    assert_eq!(mmu.stats().mmio_hits, 1);
    // The guest page is not dirty yet: the first write walks (setting D),
    // later ones hit.
    assert_eq!(
        mmu.translate(&ctx, Gva::new(0xa000_0010), WRITE).unwrap(),
        mmio
    );
    assert_eq!(mmu.stats().walks, 2);
    assert_eq!(
        mmu.translate(&ctx, Gva::new(0xa000_0010), WRITE).unwrap(),
        mmio
    );
    assert_eq!((mmu.stats().walks, mmu.stats().mmio_hits), (2, 2));
    // A user access to the same page is allowed (U=1) and also hits.
    assert_eq!(
        mmu.translate(&ctx, Gva::new(0xa000_0010), UREAD).unwrap(),
        mmio
    );
    assert_eq!(mmu.stats().mmio_hits, 3);
    mmu.leave();
    mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(0x100_0000),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    rec.take();
    ram(mmu.translate(&ctx, Gva::new(0xa000_0010), READ));
    let ev = rec.take();
    assert!(
        ev.iter()
            .any(|e| matches!(e, MmuEvent::MmioGenerationMiss { .. })),
        "{ev:?}"
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        MmuEvent::TlbFlush {
            reason: TlbFlushReason::MemslotGeneration { .. }
        }
    )));
}

#[test]
fn a_new_cr3_never_uses_the_old_front_tlb() {
    let (mem, mut mmu) = setup();
    let mut a = Tables::new(&mem, 0x1000);
    a.map(0x1000_0000, 0x20_0000, RW);
    let mut b = Tables::new(&mem, 0x10_0000);
    b.map(0x1000_0000, 0x30_0000, RW);
    assert_eq!(
        ram(mmu.translate(&a.ctx(), Gva::new(0x1000_0000), READ)).0,
        Gpa::new(0x20_0000)
    );
    assert_eq!(
        ram(mmu.translate(&b.ctx(), Gva::new(0x1000_0000), READ)).0,
        Gpa::new(0x30_0000)
    );
}

#[test]
fn paging_off_and_32_bit_translate_through_the_same_caches() {
    let (mem, mut mmu) = setup();
    let off = PagingCtx::default();
    assert_eq!(
        ram(mmu.translate(&off, Gva::new(0x3000), UWRITE)).0,
        Gpa::new(0x3000)
    );
    put64(&mem, 0x1000, 0x2000 | P | RW | US); // PDE 0
    put64(&mem, 0x2000 + 4 * 5, 0x9000 | P | RW | US); // PTE 5 (4-byte entry)
    let ctx = PagingCtx {
        cr0: CR0_PG,
        cr3: 0x1000,
        ..Default::default()
    };
    assert_eq!(
        ram(mmu.translate(&ctx, Gva::new(0x5abc), UREAD)).0,
        Gpa::new(0x9abc)
    );
}

fn rmw_setup() -> (Arc<GuestMemory>, Mmu, Hva) {
    let (mem, mut mmu) = setup();
    let (_, hva) = ram(mmu.translate(&PagingCtx::default(), Gva::new(0x20_0000), WRITE));
    (mem, mmu, hva)
}

#[test]
fn locked_read_modify_writes() {
    let (mem, mmu, hva) = rmw_setup();
    // Aligned.
    mmu.store(hva, 8, 40);
    assert_eq!(mmu.atomic_rmw(hva, 8, &mut |v| Some(v + 2)), 40);
    assert_eq!(mmu.load(hva, 8), 42);
    // A failed CMPXCHG stores nothing.
    assert_eq!(mmu.atomic_rmw(hva, 4, &mut |_| None), 42);
    assert_eq!(mmu.load(hva, 8), 42);
    // Unaligned inside a word, across words inside 16 bytes, and a split
    // lock across 16-byte blocks: each leaves its neighbours alone.
    for off in [0x101u64, 0x106, 0x10e, 0x1fd] {
        mem.write_phys(Gpa::new(0x20_0000 + off - 1), &[0xee; 10])
            .unwrap();
        let h = hva.offset(off);
        assert_eq!(
            mmu.atomic_rmw(h, 4, &mut |v| Some(v ^ 0xffff_ffff)),
            0xeeee_eeee,
            "offset {off:#x}"
        );
        let mut b = [0; 6];
        mem.read_phys(Gpa::new(0x20_0000 + off - 1), &mut b)
            .unwrap();
        assert_eq!(b, [0xee, 0x11, 0x11, 0x11, 0x11, 0xee], "offset {off:#x}");
        assert_eq!(mmu.load(h, 4), 0x1111_1111);
    }
    // CMPXCHG16B.
    let h = hva.offset(0x300);
    mmu.store(h, 8, 1);
    mmu.store(h.offset(8), 8, 2);
    let old = mmu.atomic_rmw128(h, &mut |v| {
        (v == (2u128 << 64 | 1)).then_some(7u128 << 64 | 5)
    });
    assert_eq!(old, 2u128 << 64 | 1);
    assert_eq!((mmu.load(h, 8), mmu.load(h.offset(8), 8)), (5, 7));
    assert_eq!(mmu.refused_accesses(), 0);
}

#[test]
fn unaligned_loads_and_stores_within_a_page() {
    let (_mem, mmu, hva) = rmw_setup();
    for off in 0..24u64 {
        for size in [2usize, 4, 8] {
            let h = hva.offset(0x400 + off);
            let full = 0x0123_4567_89ab_cdefu64 ^ off;
            let v = if size == 8 {
                full
            } else {
                full & ((1u64 << (8 * size)) - 1)
            };
            mmu.store(h, size, v);
            assert_eq!(mmu.load(h, size), v, "offset {off} size {size}");
        }
    }
    let mut buf = [0u8; 13];
    mmu.store_bytes(hva.offset(0x503), b"hello, guest!");
    mmu.load_bytes(hva.offset(0x503), &mut buf);
    assert_eq!(&buf, b"hello, guest!");
}

#[test]
fn hvas_cannot_leave_their_page_or_section() {
    let (_mem, mut mmu, hva) = rmw_setup();
    let end = hva.offset(0xffc);
    assert_eq!(mmu.load(end, 8), 0, "would cross the page");
    assert_eq!(mmu.refused_accesses(), 1);
    assert_eq!(mmu.load(hva.offset(0x1000), 1), 0, "offset() left the page");
    assert_eq!(mmu.refused_accesses(), 2);
    mmu.store(hva, 8, 5);
    mmu.leave();
    mmu.enter();
    mmu.store(hva, 8, 6);
    assert_eq!(
        mmu.refused_accesses(),
        3,
        "a new section does not revive old hvas"
    );
}

#[test]
fn the_stack_page_follows_its_front_tlb_entry() {
    let (mem, mut mmu) = setup();
    let mut t = Tables::new(&mem, 0x1000);
    let pte = t.map(0x5000_0000, 0x20_0000, RW);
    t.map(0x5000_1000, 0x20_1000, 0); // read-only
    let ctx = t.ctx();
    mmu.hot_prepare(&ctx, false);
    // No stack page yet: not even an unaligned address in page 0, whose
    // masked value could equal a tag with low bits.
    assert_eq!(mmu.hot_stack_load(1), None);
    assert_eq!(mmu.hot_stack_store(0x5000_0ff8, 1), None, "not cached yet");
    ram(mmu.translate(&ctx, Gva::new(0x5000_0000), WRITE));
    assert_eq!(mmu.hot_stack_store(0x5000_0ff8, 0x1111), Some(0x20_0ff8));
    assert_eq!(mmu.hot_stack_load(0x5000_0ff8), Some(0x1111));
    assert_eq!(get64(&mem, 0x20_0ff8), 0x1111);
    // Unaligned slots take the usual way; one crossing the page end misses.
    assert_eq!(
        mmu.hot_stack_store(0x5000_0ff0 + 4, 0x2222),
        Some(0x20_0ff4)
    );
    assert_eq!(mmu.hot_stack_load(0x5000_0ff4), Some(0x2222));
    assert_eq!(mmu.hot_stack_load(0x5000_0ffc), None);
    // INVLPG drops the page: the new translation is used once cached.
    put64(&mem, pte, 0x21_0000 | P | RW);
    mmu.flush(Flush::Page(Gva::new(0x5000_0000)));
    assert_eq!(mmu.hot_stack_load(0x5000_0ff8), None);
    ram(mmu.translate(&ctx, Gva::new(0x5000_0000), WRITE));
    assert_eq!(mmu.hot_stack_store(0x5000_0ff0, 7), Some(0x21_0ff0));
    assert_eq!(get64(&mem, 0x21_0ff0), 7);
    // So does a refill with fewer rights (after INVLPG, read-only now).
    put64(&mem, pte, 0x21_0000 | P);
    mmu.flush(Flush::Page(Gva::new(0x5000_0000)));
    ram(mmu.translate(&ctx, Gva::new(0x5000_0000), READ));
    assert_eq!(mmu.hot_stack_load(0x5000_0ff0), Some(7));
    assert_eq!(mmu.hot_stack_store(0x5000_0ff0, 8), None, "read-only");
    // A read-only page is never the stack page.
    ram(mmu.translate(&ctx, Gva::new(0x5000_1000), READ));
    assert_eq!(mmu.hot_stack_load(0x5000_1000), Some(0));
    assert_eq!(mmu.hot_stack_store(0x5000_1000, 9), None);
    // A user-mode hot path does not reuse the supervisor stack page.
    put64(&mem, pte, 0x21_0000 | P | RW);
    mmu.flush(Flush::Page(Gva::new(0x5000_0000)));
    ram(mmu.translate(&ctx, Gva::new(0x5000_0000), WRITE));
    assert_eq!(mmu.hot_stack_load(0x5000_0ff0), Some(7));
    mmu.hot_prepare(&ctx, true);
    assert_eq!(mmu.hot_stack_load(0x5000_0ff0), None);
    assert_eq!(mmu.hot_stack_store(0x5000_0ff0, 10), None);
    // Nor does anything outside the read section.
    mmu.hot_prepare(&ctx, false);
    assert_eq!(mmu.hot_stack_load(0x5000_0ff0), Some(7));
    mmu.leave();
    assert_eq!(mmu.hot_stack_load(0x5000_0ff0), None);
    assert_eq!(mmu.hot_stack_store(0x5000_0ff0, 11), None);
    assert_eq!(get64(&mem, 0x21_0ff0), 7);
}

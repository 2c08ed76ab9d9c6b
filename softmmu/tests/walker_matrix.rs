//! The walker against a reference model, in the manner of kvm-unit-tests'
//! `x86/access.c`: every combination of U/S, R/W and XD in the leaf and in an
//! upper level, CR0.WP, EFER.NXE, CR4.SMEP, CR4.SMAP, EFLAGS.AC, user /
//! supervisor / implicit supervisor, and read / write / fetch, in every
//! paging mode and page size. The model below is written from the Intel SDM
//! (vol. 3, 4.6 "Access Rights" and 4.7 "Page-Fault Exceptions") without
//! looking at the walker: it computes the fault and its error code, or the
//! address and the accessed/dirty bits the walk must leave behind.

use softmmu::walker::{walk_with, PteMemory};
use softmmu::*;
use std::cell::RefCell;
use std::collections::BTreeMap;

const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;
const A: u64 = 0x20;
const D: u64 = 0x40;
const PS: u64 = 0x80;
const XD: u64 = 1 << 63;

/// Entries keyed by address; each entry is read with the size it was
/// written with.
#[derive(Default, Clone)]
struct Mem(RefCell<BTreeMap<u64, u64>>);

impl PteMemory for Mem {
    fn read_entry(&self, gpa: Gpa, size: usize) -> Option<u64> {
        let v = self.0.borrow().get(&gpa.raw()).copied().unwrap_or(0);
        Some(if size == 4 { v & 0xffff_ffff } else { v })
    }
    fn cmpxchg_entry(&self, gpa: Gpa, _size: usize, old: u64, new: u64) -> Result<(), u64> {
        let mut m = self.0.borrow_mut();
        let cur = m.entry(gpa.raw()).or_insert(0);
        if *cur != old {
            return Err(*cur);
        }
        *cur = new;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    Bits32,
    Bits32Pse4M,
    Pae,
    Pae2M,
    L4,
    L4_2M,
    L4_1G,
    L5,
}

const LAYOUTS: [Layout; 8] = [
    Layout::Bits32,
    Layout::Bits32Pse4M,
    Layout::Pae,
    Layout::Pae2M,
    Layout::L4,
    Layout::L4_2M,
    Layout::L4_1G,
    Layout::L5,
];

/// One guest: page tables in `mem`, the address to translate, where its
/// entries are (outermost first), and the physical address it maps to.
struct Guest {
    mem: Mem,
    cr3: u64,
    cr4: u64,
    efer: u64,
    gva: u64,
    /// (entry address, carries rights) per level, outermost first.
    entries: Vec<(u64, bool)>,
    gpa: u64,
    wide: bool,
}

/// Builds the tables. `upper` and `leaf` are the permission bits (RW, US,
/// XD) of the level just above the leaf (if it has rights) and of the leaf.
fn build(layout: Layout, upper: u64, leaf: u64) -> Guest {
    let mem = Mem::default();
    let put = |a: u64, v: u64| {
        mem.0.borrow_mut().insert(a, v);
    };
    let all = P | RW | US;
    let mut entries = Vec::new();
    let (cr4, efer, gva, wide, cr3);
    let mut gpa = 0;
    match layout {
        Layout::Bits32 | Layout::Bits32Pse4M => {
            gva = 0x00c0_3123;
            cr3 = 0x1000;
            cr4 = if layout == Layout::Bits32Pse4M {
                CR4_PSE
            } else {
                0
            };
            efer = 0;
            wide = false;
            let pde = 0x1000 + 3 * 4;
            if layout == Layout::Bits32 {
                put(pde, 0x2000 | P | upper);
                put(0x2000 + 3 * 4, 0x5000 | P | leaf);
                entries = vec![(pde, true), (0x2000 + 12, true)];
                gpa = 0x5123;
            } else {
                put(pde, 0x0080_0000 | PS | P | leaf);
                entries = vec![(pde, true)];
                gpa = 0x0080_0000 + 0x3123;
            }
        }
        Layout::Pae | Layout::Pae2M => {
            gva = 0x4060_3123;
            cr3 = 0x1000;
            cr4 = CR4_PAE;
            efer = 0;
            wide = true;
            let pdpte = 0x1000 + 8;
            put(pdpte, 0x2000 | P);
            let pde = 0x2000 + 3 * 8;
            if layout == Layout::Pae {
                put(pde, 0x3000 | P | upper);
                put(0x3000 + 3 * 8, 0x5000 | P | leaf);
                entries = vec![(pdpte, false), (pde, true), (0x3018, true)];
                gpa = 0x5123;
            } else {
                put(pde, 0x40_0000 | PS | P | leaf);
                entries = vec![(pdpte, false), (pde, true)];
                gpa = 0x40_3123;
            }
        }
        Layout::L4 | Layout::L4_2M | Layout::L4_1G | Layout::L5 => {
            let five = layout == Layout::L5;
            gva = if five {
                0x00ab_7f80_4060_3123
            } else {
                0x0000_7f80_4060_3123
            };
            cr3 = 0x1000;
            cr4 = CR4_PAE | if five { CR4_LA57 } else { 0 };
            efer = EFER_LMA;
            wide = true;
            let leaf_level = match layout {
                Layout::L4_2M => 2,
                Layout::L4_1G => 3,
                _ => 1,
            };
            let top = if five { 5 } else { 4 };
            let mut table = 0x1000u64;
            for level in (1..=top).rev() {
                let level: u32 = level;
                let e = table + ((gva >> (12 + 9 * (level - 1))) & 0x1ff) * 8;
                entries.push((e, true));
                if level == leaf_level {
                    let (base, ps) = match level {
                        3 => (0x4000_0000u64, PS),
                        2 => (0x20_0000, PS),
                        _ => (0x9000, 0),
                    };
                    put(e, base | ps | P | leaf);
                    gpa = base + (gva & ((1 << (12 + 9 * (level - 1))) - 1));
                    break;
                }
                let next = 0x1000 * (7 - level as u64);
                let flags = if level == leaf_level + 1 {
                    P | upper
                } else {
                    all
                };
                put(e, next | flags);
                table = next;
            }
        }
    }
    Guest {
        mem,
        cr3,
        cr4,
        efer,
        gva,
        entries,
        gpa,
        wide,
    }
}

#[derive(Clone, Copy, Debug)]
struct Case {
    layout: Layout,
    upper: u64,
    leaf: u64,
    wp: bool,
    nxe: bool,
    smep: bool,
    smap: bool,
    ac: bool,
    kind: AccessKind,
    who: Who,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    User,
    Supervisor,
    Implicit,
}

/// The reference model: `Ok(gpa)` or `Err(error code)`.
fn model(c: &Case, g: &Guest) -> Result<u64, u32> {
    // Levels whose permission bits count.
    let has_upper = g.entries.len() >= 2 && g.entries[g.entries.len() - 2].1;
    let upper = if has_upper { c.upper } else { RW | US };
    let leaf = c.leaf;
    let write = c.kind == AccessKind::Write;
    let fetch = c.kind == AccessKind::Fetch;
    let user = c.who == Who::User;
    // 4.7: W/R, U/S and I/D describe the access.
    let mut ec = 0u32;
    if write {
        ec |= 2;
    }
    if user {
        ec |= 4;
    }
    if fetch && (c.smep || (g.wide && c.nxe)) {
        ec |= 16;
    }
    // Reserved: bit 63 of 64-bit entries must be 0 when EFER.NXE = 0.
    if g.wide && !c.nxe && (upper | leaf) & XD != 0 {
        return Err(ec | 1 | 8);
    }
    // 4.6: a linear address is a user-mode address if U/S = 1 in every
    // entry that controls it; writable if R/W = 1 in every one; it may not
    // be fetched from (with NXE) if XD = 1 in any.
    let user_addr = upper & US != 0 && leaf & US != 0;
    let writable = upper & RW != 0 && leaf & RW != 0;
    let xd = g.wide && c.nxe && (upper | leaf) & XD != 0;
    let allowed = if user {
        // User-mode accesses: only user-mode addresses; writes need R/W;
        // fetches need XD = 0.
        user_addr && (!write || writable) && (!fetch || !xd)
    } else if fetch {
        // Supervisor fetches: not from user-mode addresses with SMEP; not
        // from XD pages.
        let smep_blocks = user_addr && c.smep;
        !smep_blocks && !xd
    } else {
        // Supervisor data: user-mode addresses are off limits with SMAP
        // unless the access is explicit and EFLAGS.AC = 1. Writes to
        // read-only addresses are allowed only with CR0.WP = 0.
        let smap_ok = !(user_addr && c.smap && (c.who == Who::Implicit || !c.ac));
        smap_ok && (!write || writable || !c.wp)
    };
    if allowed {
        Ok(g.gpa)
    } else {
        Err(ec | 1)
    }
}

fn ctx_of(c: &Case, g: &Guest) -> PagingCtx {
    let mut cr4 = g.cr4;
    if c.smep {
        cr4 |= CR4_SMEP;
    }
    if c.smap {
        cr4 |= CR4_SMAP;
    }
    PagingCtx {
        cr0: CR0_PG | if c.wp { CR0_WP } else { 0 },
        cr3: g.cr3,
        cr4,
        efer: g.efer | if c.nxe { EFER_NXE } else { 0 },
        ac: c.ac,
    }
}

fn access_of(c: &Case) -> Access {
    match c.who {
        Who::User => Access::user(c.kind),
        Who::Supervisor => Access::supervisor(c.kind),
        Who::Implicit => Access::implicit(c.kind),
    }
}

#[test]
fn permission_matrix_matches_the_model() {
    let mut n = 0;
    for layout in LAYOUTS {
        let xd_choices: &[u64] = if matches!(layout, Layout::Bits32 | Layout::Bits32Pse4M) {
            &[0]
        } else {
            &[0, XD]
        };
        for bits in 0..16u64 {
            for &uxd in xd_choices {
                for &lxd in xd_choices {
                    let upper = (bits & 3) << 1 | uxd; // RW, US
                    let leaf = ((bits >> 2) & 3) << 1 | lxd;
                    for flags in 0..32u32 {
                        for kind in [AccessKind::Read, AccessKind::Write, AccessKind::Fetch] {
                            for who in [Who::User, Who::Supervisor, Who::Implicit] {
                                if who == Who::Implicit && kind == AccessKind::Fetch {
                                    continue;
                                }
                                let c = Case {
                                    layout,
                                    upper,
                                    leaf,
                                    wp: flags & 1 != 0,
                                    nxe: flags & 2 != 0,
                                    smep: flags & 4 != 0,
                                    smap: flags & 8 != 0,
                                    ac: flags & 16 != 0,
                                    kind,
                                    who,
                                };
                                check(&c);
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(n > 100_000, "{n} cases");
}

fn check(c: &Case) {
    let g = build(c.layout, c.upper, c.leaf);
    let before = g.mem.0.borrow().clone();
    let got = walk_with(&g.mem, &ctx_of(c, &g), Gva::new(g.gva), access_of(c), 52);
    let want = model(c, &g);
    match (got, want) {
        (Ok(w), Ok(gpa)) => {
            assert_eq!(w.gpa.raw(), gpa, "{c:?}");
            // Accessed at every level (PAE PDPTEs have no A bit), dirty in the
            // leaf for writes; nothing else changes.
            let after = g.mem.0.borrow();
            let last = g.entries.len() - 1;
            for (i, &(addr, rights)) in g.entries.iter().enumerate() {
                let old = before[&addr];
                let mut want = old;
                if rights {
                    want |= A;
                }
                if i == last && c.kind == AccessKind::Write {
                    want |= D;
                }
                assert_eq!(after[&addr], want, "level {i} of {c:?}");
            }
        }
        (Err(f), Err(ec)) => {
            assert_eq!(f.fault.error_code, ec, "{c:?}: {:?}", f.reason);
            assert_eq!(f.fault.addr, Gva::new(g.gva));
            assert_eq!(*g.mem.0.borrow(), before, "a fault changes no entry: {c:?}");
        }
        (got, want) => panic!("{c:?}: walker {got:?}, model {want:?}"),
    }
}

fn sup_read() -> Access {
    Access::supervisor(AccessKind::Read)
}

#[test]
fn not_present_at_every_level() {
    for layout in LAYOUTS {
        let g = build(layout, RW | US, RW | US);
        for (i, &(addr, _)) in g.entries.iter().enumerate() {
            let g = build(layout, RW | US, RW | US);
            let v = g.mem.0.borrow()[&addr];
            g.mem.0.borrow_mut().insert(addr, v & !P);
            let ctx = PagingCtx {
                cr0: CR0_PG,
                cr3: g.cr3,
                cr4: g.cr4,
                efer: g.efer,
                ac: false,
            };
            for (access, ec) in [
                (sup_read(), 0),
                (Access::user(AccessKind::Write), 6),
                (Access::implicit(AccessKind::Write), 2),
            ] {
                let f = walk_with(&g.mem, &ctx, Gva::new(g.gva), access, 52).unwrap_err();
                assert_eq!(f.fault.error_code, ec, "{layout:?} entry {i}");
                let level = (g.entries.len() - i) as u8
                    + match layout {
                        Layout::Bits32Pse4M | Layout::Pae2M | Layout::L4_2M => 1,
                        Layout::L4_1G => 2,
                        _ => 0,
                    };
                assert_eq!(
                    f.reason,
                    FaultReason::NotPresent { level },
                    "{layout:?} entry {i}"
                );
                assert_eq!(f.record.steps().len(), i + 1);
            }
        }
        let _ = g;
    }
}

/// Sets `bit` in entry `i` and expects a reserved-bit fault (P=1, RSVD=1).
fn expect_rsvd(layout: Layout, i: usize, bit: u64, phys_bits: u8, nxe: bool) {
    let g = build(layout, RW | US, RW | US);
    let addr = g.entries[i].0;
    let v = g.mem.0.borrow()[&addr];
    g.mem.0.borrow_mut().insert(addr, v | bit);
    let efer = g.efer | if nxe { EFER_NXE } else { 0 };
    let ctx = PagingCtx {
        cr0: CR0_PG,
        cr3: g.cr3,
        cr4: g.cr4,
        efer,
        ac: false,
    };
    let r = walk_with(
        &g.mem,
        &ctx,
        Gva::new(g.gva),
        Access::user(AccessKind::Write),
        phys_bits,
    );
    let f = r.unwrap_err_or_else(|| panic!("{layout:?} entry {i} bit {bit:#x}: no fault"));
    assert_eq!(
        f.fault.error_code,
        1 | 2 | 4 | 8,
        "{layout:?} entry {i} bit {bit:#x}: {:?}",
        f.reason
    );
    assert!(matches!(f.reason, FaultReason::ReservedBit { .. }));
}

trait UnwrapErr<E> {
    fn unwrap_err_or_else(self, f: impl FnOnce()) -> E;
}
impl<T, E> UnwrapErr<E> for Result<T, E> {
    fn unwrap_err_or_else(self, f: impl FnOnce()) -> E {
        match self {
            Err(e) => e,
            Ok(_) => {
                f();
                unreachable!()
            }
        }
    }
}

#[test]
fn reserved_bits_in_every_mode() {
    // Above MAXPHYADDR (40 here), in every 64-bit entry.
    for layout in [
        Layout::Pae,
        Layout::Pae2M,
        Layout::L4,
        Layout::L4_2M,
        Layout::L4_1G,
        Layout::L5,
    ] {
        let g = build(layout, 0, 0);
        for i in 0..g.entries.len() {
            expect_rsvd(layout, i, 1 << 45, 40, true);
        }
    }
    // PS in a PML4E / PML5E.
    expect_rsvd(Layout::L4, 0, PS, 52, true);
    expect_rsvd(Layout::L5, 0, PS, 52, true);
    expect_rsvd(Layout::L5, 1, PS, 52, true);
    // Bits 20:13 of a 2 MiB PDE, 29:13 of a 1 GiB PDPTE.
    expect_rsvd(Layout::L4_2M, 2, 1 << 13, 52, true);
    expect_rsvd(Layout::Pae2M, 1, 1 << 20, 52, true);
    expect_rsvd(Layout::L4_1G, 1, 1 << 29, 52, true);
    // PAE PDPTE: bits 2:1 and 8:5, and XD.
    expect_rsvd(Layout::Pae, 0, RW, 52, true);
    expect_rsvd(Layout::Pae, 0, 1 << 5, 52, true);
    expect_rsvd(Layout::Pae, 0, XD, 52, true);
    // PAE PDE/PTE: bits 62:52 are reserved (ignored in 4-level paging).
    expect_rsvd(Layout::Pae, 2, 1 << 60, 52, true);
    // XD without EFER.NXE.
    expect_rsvd(Layout::L4, 3, XD, 52, false);
    // 32-bit 4 MiB page: bit 21, and bits above MAXPHYADDR (36 here).
    expect_rsvd(Layout::Bits32Pse4M, 0, 1 << 21, 52, false);
    expect_rsvd(Layout::Bits32Pse4M, 0, 1 << 17, 36, false);

    // And bits that are not reserved: 4-level bits 62:52, ignored bits.
    let g = build(Layout::L4, RW | US, RW | US);
    let leaf = g.entries[3].0;
    let v = g.mem.0.borrow()[&leaf];
    g.mem
        .0
        .borrow_mut()
        .insert(leaf, v | (0x7ff << 52) | (1 << 9));
    let ctx = PagingCtx {
        cr0: CR0_PG,
        cr3: g.cr3,
        cr4: g.cr4,
        efer: g.efer | EFER_NXE,
        ac: false,
    };
    assert!(walk_with(&g.mem, &ctx, Gva::new(g.gva), sup_read(), 52).is_ok());
}

#[test]
fn global_and_page_size_are_reported() {
    let g = build(Layout::L4_2M, RW | US, RW | US | (1 << 8));
    let base = PagingCtx {
        cr0: CR0_PG,
        cr3: g.cr3,
        cr4: g.cr4,
        efer: g.efer,
        ac: false,
    };
    let w = walk_with(&g.mem, &base, Gva::new(g.gva), sup_read(), 52).unwrap();
    assert!(!w.global, "G counts only with CR4.PGE");
    assert_eq!(w.size, spte::PageSize::Large);
    let pge = PagingCtx {
        cr4: base.cr4 | CR4_PGE,
        ..base
    };
    assert!(
        walk_with(&g.mem, &pge, Gva::new(g.gva), sup_read(), 52)
            .unwrap()
            .global
    );
}

//! Unit tests of the walker on a tiny in-memory guest (the full permission
//! matrix against a reference model is in `tests/walker_matrix.rs`).

use super::*;
use crate::ctx::{CR0_PG, CR0_WP, CR4_PAE, CR4_PSE, EFER_LMA, EFER_NXE};
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct Mem(RefCell<HashMap<u64, u8>>);

impl Mem {
    fn put(&self, gpa: u64, size: usize, v: u64) {
        for i in 0..size {
            self.0
                .borrow_mut()
                .insert(gpa + i as u64, (v >> (8 * i)) as u8);
        }
    }
    fn get(&self, gpa: u64, size: usize) -> u64 {
        (0..size)
            .map(|i| u64::from(*self.0.borrow().get(&(gpa + i as u64)).unwrap_or(&0)) << (8 * i))
            .sum()
    }
}

impl PteMemory for Mem {
    fn read_entry(&self, gpa: Gpa, size: usize) -> Option<u64> {
        (gpa.raw() < 1 << 32).then(|| self.get(gpa.raw(), size))
    }
    fn cmpxchg_entry(&self, gpa: Gpa, size: usize, old: u64, new: u64) -> Result<(), u64> {
        let cur = self.get(gpa.raw(), size);
        if cur != old {
            return Err(cur);
        }
        self.put(gpa.raw(), size, new);
        Ok(())
    }
}

const RWU: u64 = PTE_P | PTE_RW | PTE_US;

#[test]
fn paging_off_is_identity() {
    let m = Mem::default();
    let w = walk(
        &m,
        &PagingCtx::default(),
        Gva::new(0x1234_5678),
        Access::user(AccessKind::Write),
    )
    .unwrap();
    assert_eq!(w.gpa, Gpa::new(0x1234_5678));
    assert!(w.record.steps().is_empty());
}

#[test]
fn four_level_4k_sets_accessed_and_dirty() {
    let m = Mem::default();
    let gva = 0x0000_7f12_3456_7abcu64;
    let (l4, l3, l2, l1) = (0x1000u64, 0x2000, 0x3000, 0x4000);
    m.put(l4 + ((gva >> 39) & 0x1ff) * 8, 8, l3 | RWU);
    m.put(l3 + ((gva >> 30) & 0x1ff) * 8, 8, l2 | RWU);
    m.put(l2 + ((gva >> 21) & 0x1ff) * 8, 8, l1 | RWU);
    let pte = l1 + ((gva >> 12) & 0x1ff) * 8;
    m.put(pte, 8, 0x9000 | RWU);
    let ctx = PagingCtx {
        cr0: CR0_PG,
        cr3: l4,
        cr4: CR4_PAE,
        efer: EFER_LMA,
        ac: false,
    };
    let w = walk(&m, &ctx, Gva::new(gva), Access::user(AccessKind::Read)).unwrap();
    assert_eq!(w.gpa, Gpa::new(0x9abc));
    assert_eq!(w.record.steps().len(), 4);
    assert_eq!(m.get(pte, 8), 0x9000 | RWU | PTE_A);
    let w = walk(&m, &ctx, Gva::new(gva), Access::user(AccessKind::Write)).unwrap();
    assert!(w.dirty);
    assert_eq!(m.get(pte, 8), 0x9000 | RWU | PTE_A | PTE_D);
    assert_eq!(m.get(l4 + ((gva >> 39) & 0x1ff) * 8, 8), l3 | RWU | PTE_A);
}

#[test]
fn pse_4m_page_with_high_address_bits() {
    let m = Mem::default();
    // PDE for 0x0040_0000: 4 MiB page at physical 0x1_0080_0000 (PSE-36).
    m.put(0x1000 + 4, 4, 0x0080_0000 | (1 << 13) | PTE_PS | RWU);
    let ctx = PagingCtx {
        cr0: CR0_PG,
        cr3: 0x1000,
        cr4: CR4_PSE,
        ..Default::default()
    };
    let w = walk(
        &m,
        &ctx,
        Gva::new(0x0041_2345),
        Access::supervisor(AccessKind::Read),
    )
    .unwrap();
    assert_eq!(w.gpa, Gpa::new(0x1_0081_2345));
    assert_eq!(w.size, PageSize::Large);
    // Without CR4.PSE the PS bit is ignored: the PDE points to a table.
    let ctx = PagingCtx { cr4: 0, ..ctx };
    let f = walk(
        &m,
        &ctx,
        Gva::new(0x0041_2345),
        Access::supervisor(AccessKind::Read),
    )
    .unwrap_err();
    assert_eq!(f.reason, FaultReason::NotPresent { level: 1 });
}

#[test]
fn xd_without_nxe_is_reserved() {
    let m = Mem::default();
    m.put(0x1000, 8, 0x2000 | PTE_P); // PDPTE 0
    m.put(0x2000, 8, 0x3000 | RWU); // PDE 0
    m.put(0x3000, 8, 0x5000 | RWU | PTE_XD); // PTE 0
    let ctx = PagingCtx {
        cr0: CR0_PG | CR0_WP,
        cr3: 0x1000,
        cr4: CR4_PAE,
        ..Default::default()
    };
    let f = walk(
        &m,
        &ctx,
        Gva::new(0x10),
        Access::supervisor(AccessKind::Read),
    )
    .unwrap_err();
    assert_eq!(f.reason, FaultReason::ReservedBit { level: 1 });
    assert_eq!(f.fault.error_code, 0b1001);
    let ctx = PagingCtx {
        efer: EFER_NXE,
        ..ctx
    };
    let f = walk(&m, &ctx, Gva::new(0x10), Access::user(AccessKind::Fetch)).unwrap_err();
    assert_eq!(f.reason, FaultReason::NoExecute);
    assert_eq!(f.fault.error_code, 0b10101);
}

#[test]
fn lost_ad_race_restarts_the_walk() {
    struct Racy {
        inner: Mem,
        fail: Cell<u32>,
    }
    use std::cell::Cell;
    impl PteMemory for Racy {
        fn read_entry(&self, gpa: Gpa, size: usize) -> Option<u64> {
            self.inner.read_entry(gpa, size)
        }
        fn cmpxchg_entry(&self, gpa: Gpa, size: usize, old: u64, new: u64) -> Result<(), u64> {
            if self.fail.get() > 0 {
                self.fail.set(self.fail.get() - 1);
                return Err(old ^ 0x800);
            }
            self.inner.cmpxchg_entry(gpa, size, old, new)
        }
    }
    let r = Racy {
        inner: Mem::default(),
        fail: Cell::new(3),
    };
    r.inner.put(0x1000, 4, 0x2000 | RWU);
    r.inner.put(0x2000, 4, 0x7000 | RWU);
    let ctx = PagingCtx {
        cr0: CR0_PG,
        cr3: 0x1000,
        ..Default::default()
    };
    let w = walk(&r, &ctx, Gva::new(0x123), Access::user(AccessKind::Write)).unwrap();
    assert_eq!(w.gpa, Gpa::new(0x7123));
    assert_eq!(r.inner.get(0x2000, 4), 0x7000 | RWU | PTE_A | PTE_D);
    assert_eq!(r.fail.get(), 0);
}

/// Another vCPU keeps rewriting the leaf entry (an ignored bit) under the
/// walk, more often than the walk starts yielding: the walk still ends
/// with D set in memory before it reports the page dirty for a write.
#[test]
fn a_write_is_never_granted_without_the_dirty_bit_in_memory() {
    struct Busy {
        inner: Mem,
        fail: Cell<u32>,
    }
    use std::cell::Cell;
    impl PteMemory for Busy {
        fn read_entry(&self, gpa: Gpa, size: usize) -> Option<u64> {
            self.inner.read_entry(gpa, size)
        }
        fn cmpxchg_entry(&self, gpa: Gpa, size: usize, old: u64, new: u64) -> Result<(), u64> {
            if self.fail.get() > 0 && gpa.raw() == 0x2000 {
                // The other writer got there first: bit 9 (ignored) flips.
                self.fail.set(self.fail.get() - 1);
                let cur = self.inner.get(0x2000, 4) ^ (1 << 9);
                self.inner.put(0x2000, 4, cur);
                return Err(cur);
            }
            self.inner.cmpxchg_entry(gpa, size, old, new)
        }
    }
    let busy = Busy {
        inner: Mem::default(),
        fail: Cell::new(3 * AD_RETRIES_BEFORE_YIELD),
    };
    busy.inner.put(0x1000, 4, 0x2000 | RWU | PTE_A);
    busy.inner.put(0x2000, 4, 0x7000 | RWU);
    let ctx = PagingCtx {
        cr0: CR0_PG,
        cr3: 0x1000,
        ..Default::default()
    };
    let w = walk(
        &busy,
        &ctx,
        Gva::new(0x123),
        Access::user(AccessKind::Write),
    )
    .unwrap();
    assert!(w.dirty);
    assert_eq!(busy.fail.get(), 0, "every lost race was retried");
    let pte = busy.inner.get(0x2000, 4);
    assert_eq!(pte & (PTE_A | PTE_D), PTE_A | PTE_D, "pte {pte:#x}");
    let leaf = w.record.steps().last().unwrap();
    assert_eq!(leaf.written, Some(pte));
}

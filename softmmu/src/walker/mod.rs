//! The guest page-table walker: a function from (guest memory, control
//! registers, address, access) to a physical address or a page fault.
//!
//! It covers paging off, 32-bit paging (4 KiB pages, 4 MiB pages with
//! CR4.PSE), PAE, 4-level and 5-level paging; U/S, R/W with CR0.WP, XD with
//! EFER.NXE, SMEP and SMAP (see [`rights`]); reserved-bit checks; and sets
//! accessed and dirty bits in guest memory by compare-and-swap, restarting
//! the walk if an entry changed under it (as Linux's `paging_tmpl.h` does).
//!
//! Every level is recorded ([`WalkStep`]) so that faults and traces can
//! explain themselves. A/D bits are set only when the whole walk succeeds,
//! as KVM and kvm-unit-tests' `access.c` expect.

pub mod rights;

use crate::addr::{Gpa, Gva};
use crate::ctx::{Access, AccessKind, PageFault, PagingCtx, PagingMode};
use crate::spte::PageSize;
pub use rights::{check_access, error_code, error_code_for, FaultReason, Rights};

/// Entry bit: present.
pub const PTE_P: u64 = 1 << 0;
/// Entry bit: writable.
pub const PTE_RW: u64 = 1 << 1;
/// Entry bit: user.
pub const PTE_US: u64 = 1 << 2;
/// Entry bit: accessed.
pub const PTE_A: u64 = 1 << 5;
/// Entry bit: dirty (leaf only).
pub const PTE_D: u64 = 1 << 6;
/// Entry bit: page size (maps a large page).
pub const PTE_PS: u64 = 1 << 7;
/// Entry bit: global (leaf only).
pub const PTE_G: u64 = 1 << 8;
/// Entry bit: execute-disable (64-bit entries).
pub const PTE_XD: u64 = 1 << 63;

/// The MAXPHYADDR softvm assumes unless told otherwise; CPUID leaf
/// 0x80000008 should report the same.
pub const DEFAULT_PHYS_ADDR_BITS: u8 = 48;

/// Guest physical memory as the walker sees it.
pub trait PteMemory {
    /// Reads the `size`-byte (4 or 8) entry at `gpa` with Acquire; `None` if
    /// `gpa` is not RAM.
    fn read_entry(&self, gpa: Gpa, size: usize) -> Option<u64>;
    /// Replaces `old` by `new` atomically. `Err(current)` if the entry no
    /// longer holds `old`. A write the memory drops (ROM) is `Ok`.
    fn cmpxchg_entry(&self, gpa: Gpa, size: usize, old: u64, new: u64) -> Result<(), u64>;
}

/// One level of a walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStep {
    /// 5 = PML5E ... 1 = PTE.
    pub level: u8,
    /// Where the entry is.
    pub entry_gpa: Gpa,
    /// The entry as read.
    pub entry: u64,
    /// The entry after accessed/dirty bits were set, if they were.
    pub written: Option<u64>,
    /// Rights accumulated down to and including this level.
    pub rights: Rights,
}

/// The levels a walk went through, outermost first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkRecord {
    steps: [WalkStep; 5],
    len: usize,
}

impl WalkRecord {
    /// The recorded levels.
    pub fn steps(&self) -> &[WalkStep] {
        &self.steps[..self.len]
    }

    fn push(&mut self, s: WalkStep) {
        if let Some(slot) = self.steps.get_mut(self.len) {
            *slot = s;
            self.len += 1;
        }
    }
}

/// A successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The translated address.
    pub gpa: Gpa,
    /// Combined rights of all levels.
    pub rights: Rights,
    /// Size of the guest page.
    pub size: PageSize,
    /// G=1 in the leaf and CR4.PGE=1.
    pub global: bool,
    /// The leaf's dirty bit is set (after this walk's update).
    pub dirty: bool,
    /// What was read and written.
    pub record: WalkRecord,
}

/// A walk that ended in a page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkFault {
    /// CR2 and the error code.
    pub fault: PageFault,
    /// Which rule.
    pub reason: FaultReason,
    /// The levels read before the fault.
    pub record: WalkRecord,
}

/// The four PDPTE registers of PAE paging (SDM Vol. 3A 4.4.1): loaded from
/// the 32-byte PDPT that CR3 points to at MOV to CR3 and the other events
/// listed there, and used by walks instead of the table in memory, which
/// the processor does not read again until the next such event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pdptes {
    /// Where they were loaded from: CR3 bits 31:5.
    pub pdpt: u64,
    /// PDPTE0..=PDPTE3.
    pub entries: [u64; 4],
}

impl Pdptes {
    /// The PDPT address of `cr3` under PAE paging (bits 31:5).
    pub const fn pdpt_of(cr3: u64) -> u64 {
        cr3 & 0xffff_ffe0
    }

    /// Reads the four entries of the PDPT that `cr3` selects. `None` if the
    /// table is not in RAM.
    pub fn read<M: PteMemory + ?Sized>(mem: &M, cr3: u64) -> Option<Pdptes> {
        let pdpt = Self::pdpt_of(cr3);
        let mut entries = [0; 4];
        for (i, e) in entries.iter_mut().enumerate() {
            *e = mem.read_entry(Gpa::new(pdpt + 8 * i as u64), 8)?;
        }
        Some(Pdptes { pdpt, entries })
    }

    /// The first entry that is present with a reserved bit set (which makes
    /// the loading MOV to CR0/CR3/CR4 raise #GP(0)), as (index, entry).
    pub fn first_invalid(&self, phys_bits: u8) -> Option<(usize, u64)> {
        let rsvd = reserved_mask(PagingMode::Pae, 3, false, false, u32::from(phys_bits));
        self.entries
            .iter()
            .copied()
            .enumerate()
            .find(|&(_, e)| e & PTE_P != 0 && e & rsvd != 0)
    }
}

/// Walks with [`DEFAULT_PHYS_ADDR_BITS`].
// Walk and WalkFault both carry the per-level record by value: a walk runs
// on every TLB miss and must not allocate, so the large Err stays.
#[allow(clippy::result_large_err)]
pub fn walk<M: PteMemory + ?Sized>(
    mem: &M,
    ctx: &PagingCtx,
    gva: Gva,
    access: Access,
) -> Result<Walk, WalkFault> {
    walk_with(mem, ctx, gva, access, DEFAULT_PHYS_ADDR_BITS)
}

/// Failed A/D compare-and-swaps after which a walk starts yielding the
/// thread before each retry: another vCPU is rewriting the same entry
/// that fast, and it makes progress (each failure means its write landed),
/// so giving it the CPU ends the race sooner.
const AD_RETRIES_BEFORE_YIELD: u32 = 64;

/// Translates `gva` for `access` under `ctx`, with MAXPHYADDR `phys_bits`.
/// PAE walks read the PDPT from memory, as if its entries had just been
/// loaded (see [`walk_with_pdptes`] for a CPU's walk).
#[allow(clippy::result_large_err)] // see `walk`
pub fn walk_with<M: PteMemory + ?Sized>(
    mem: &M,
    ctx: &PagingCtx,
    gva: Gva,
    access: Access,
    phys_bits: u8,
) -> Result<Walk, WalkFault> {
    walk_with_pdptes(mem, ctx, gva, access, phys_bits, None)
}

/// [`walk_with`], taking PAE's top level from the PDPTE registers `pdptes`
/// when given. A lost A/D compare-and-swap (the entry changed under the
/// walk) redoes the whole walk, as hardware's locked update would see the
/// new entry: a write is never granted without the leaf's D bit set in
/// memory by this walk or already there.
#[allow(clippy::result_large_err)] // see `walk`
pub fn walk_with_pdptes<M: PteMemory + ?Sized>(
    mem: &M,
    ctx: &PagingCtx,
    gva: Gva,
    access: Access,
    phys_bits: u8,
    pdptes: Option<&Pdptes>,
) -> Result<Walk, WalkFault> {
    let mut lost = 0u32;
    loop {
        match walk_once(mem, ctx, gva, access, phys_bits, pdptes) {
            Step::Done(r) => return r,
            Step::Retry => {
                lost = lost.saturating_add(1);
                if lost > AD_RETRIES_BEFORE_YIELD {
                    std::thread::yield_now();
                }
            }
        }
    }
}

#[allow(clippy::large_enum_variant)] // see `walk`
enum Step {
    Done(Result<Walk, WalkFault>),
    Retry,
}

/// Geometry of one paging mode.
struct Geometry {
    levels: u8,
    entry_size: usize,
    root: u64,
}

fn geometry(ctx: &PagingCtx, mode: PagingMode, phys_mask: u64) -> Geometry {
    match mode {
        PagingMode::Off => Geometry {
            levels: 0,
            entry_size: 8,
            root: 0,
        },
        PagingMode::Bits32 => Geometry {
            levels: 2,
            entry_size: 4,
            root: ctx.cr3 & 0xffff_f000,
        },
        PagingMode::Pae => Geometry {
            levels: 3,
            entry_size: 8,
            root: ctx.cr3 & 0xffff_ffe0,
        },
        PagingMode::Level4 => Geometry {
            levels: 4,
            entry_size: 8,
            root: ctx.cr3 & phys_mask & !0xfff,
        },
        PagingMode::Level5 => Geometry {
            levels: 5,
            entry_size: 8,
            root: ctx.cr3 & phys_mask & !0xfff,
        },
    }
}

/// Index of `gva` into the table of `level`.
fn table_index(mode: PagingMode, level: u8, gva: u64) -> u64 {
    match mode {
        PagingMode::Bits32 => (gva >> (12 + 10 * u32::from(level - 1))) & 0x3ff,
        PagingMode::Pae if level == 3 => (gva >> 30) & 3,
        _ => (gva >> (12 + 9 * u32::from(level - 1))) & 0x1ff,
    }
}

/// Mask of bits `lo..=hi`.
const fn bits(lo: u32, hi: u32) -> u64 {
    (u64::MAX >> (63 - hi)) & !((1u64 << lo) - 1)
}

/// Reserved bits of an entry at `level` that is present (SDM tables 4-4 to
/// 4-20), given whether it maps a large page.
fn reserved_mask(mode: PagingMode, level: u8, large: bool, nxe: bool, phys_bits: u32) -> u64 {
    let phys = phys_bits.clamp(32, 52);
    match mode {
        PagingMode::Off => 0,
        PagingMode::Bits32 => {
            if large {
                // PSE-36: bits 20:13 hold address bits 39:32; bit 21 reserved.
                let m = phys.min(40);
                bits(21, 21) | if m < 40 { bits(13 + (m - 32), 20) } else { 0 }
            } else {
                0
            }
        }
        PagingMode::Pae => {
            if level == 3 {
                // PAE PDPTE: 2:1, 8:5 and 63:MAXPHYADDR (no XD here).
                return bits(1, 2) | bits(5, 8) | bits(phys, 63);
            }
            let mut m = bits(phys, 62) | if nxe { 0 } else { PTE_XD };
            if large {
                m |= bits(13, 20);
            }
            m
        }
        PagingMode::Level4 | PagingMode::Level5 => {
            let mut m = if phys < 52 { bits(phys, 51) } else { 0 };
            if !nxe {
                m |= PTE_XD;
            }
            match level {
                5 | 4 => m |= PTE_PS,
                3 if large => m |= bits(13, 29),
                2 if large => m |= bits(13, 20),
                _ => {}
            }
            m
        }
    }
}

fn walk_once<M: PteMemory + ?Sized>(
    mem: &M,
    ctx: &PagingCtx,
    gva: Gva,
    access: Access,
    phys_bits: u8,
    pdptes: Option<&Pdptes>,
) -> Step {
    let mode = ctx.mode();
    let mut record = WalkRecord::default();
    if mode == PagingMode::Off {
        return Step::Done(Ok(Walk {
            gpa: Gpa::new(gva.raw()),
            rights: Rights::ALL,
            size: PageSize::Size4K,
            global: false,
            dirty: true,
            record,
        }));
    }
    let phys_bits = u32::from(phys_bits).clamp(32, 52);
    let phys_mask = bits(12, phys_bits - 1);
    let geo = geometry(ctx, mode, bits(0, phys_bits - 1));
    let nxe = ctx.nxe();
    let va = if matches!(mode, PagingMode::Bits32 | PagingMode::Pae) {
        gva.raw() & 0xffff_ffff
    } else {
        gva.raw()
    };
    let fault = |reason: FaultReason, record: WalkRecord| {
        Step::Done(Err(WalkFault {
            fault: PageFault {
                addr: gva,
                error_code: error_code_for(ctx, access, reason),
            },
            reason,
            record,
        }))
    };

    let mut table = geo.root;
    let mut rights = Rights::ALL;
    let mut leaf = None;
    for level in (1..=geo.levels).rev() {
        let index = table_index(mode, level, va);
        let pdpte = mode == PagingMode::Pae && level == 3;
        let (entry_gpa, entry) = match pdptes.filter(|_| pdpte) {
            Some(regs) => (
                Gpa::new(regs.pdpt + index * 8),
                regs.entries[index as usize],
            ),
            None => {
                let at = Gpa::new(table + index * geo.entry_size as u64);
                let Some(entry) = mem.read_entry(at, geo.entry_size) else {
                    return fault(FaultReason::TableNotInRam { level }, record);
                };
                (at, entry)
            }
        };
        if !pdpte {
            rights.user &= entry & PTE_US != 0;
            rights.write &= entry & PTE_RW != 0;
            rights.nx |= nxe && entry & PTE_XD != 0;
        }
        record.push(WalkStep {
            level,
            entry_gpa,
            entry,
            written: None,
            rights,
        });
        if entry & PTE_P == 0 {
            return fault(FaultReason::NotPresent { level }, record);
        }
        let large = entry & PTE_PS != 0
            && match mode {
                PagingMode::Bits32 => level == 2 && ctx.pse(),
                PagingMode::Pae => level == 2,
                _ => level == 2 || level == 3,
            };
        if entry & reserved_mask(mode, level, large, nxe, phys_bits) != 0 {
            return fault(FaultReason::ReservedBit { level }, record);
        }
        if level == 1 || large {
            leaf = Some((level, entry, large));
            break;
        }
        table = if geo.entry_size == 4 {
            entry & 0xffff_f000
        } else {
            entry & phys_mask
        };
    }
    let Some((level, entry, large)) = leaf else {
        return fault(FaultReason::NotPresent { level: 1 }, record);
    };
    if let Err(reason) = check_access(rights, ctx, access) {
        return fault(reason, record);
    }

    let (gpa, size) = match (mode, level, large) {
        (PagingMode::Bits32, 2, true) => {
            let base = (entry & 0xffc0_0000) | (((entry >> 13) & 0xff) << 32);
            (base | (va & 0x3f_ffff), PageSize::Large)
        }
        (PagingMode::Bits32, _, _) => ((entry & 0xffff_f000) | (va & 0xfff), PageSize::Size4K),
        (_, 3, true) => (
            (entry & phys_mask & !bits(0, 29)) | (va & bits(0, 29)),
            PageSize::Huge,
        ),
        (_, 2, true) => (
            (entry & phys_mask & !bits(0, 20)) | (va & bits(0, 20)),
            PageSize::Large,
        ),
        _ => ((entry & phys_mask) | (va & 0xfff), PageSize::Size4K),
    };

    // Accessed bits at every level (not PAE PDPTEs, where bit 5 is reserved),
    // dirty in the leaf for writes. Top-down, like the hardware.
    let write = access.kind == AccessKind::Write;
    let mut dirty = entry & PTE_D != 0;
    for i in 0..record.len {
        let s = record.steps[i];
        if mode == PagingMode::Pae && s.level == 3 {
            continue;
        }
        let is_leaf = i + 1 == record.len;
        let mut new = s.entry | PTE_A;
        if is_leaf && write {
            new |= PTE_D;
            dirty = true;
        }
        if new == s.entry {
            continue;
        }
        if mem
            .cmpxchg_entry(s.entry_gpa, geo.entry_size, s.entry, new)
            .is_err()
        {
            return Step::Retry;
        }
        record.steps[i].written = Some(new);
    }
    let global = ctx.pge() && entry & PTE_G != 0;
    Step::Done(Ok(Walk {
        gpa: Gpa::new(gpa),
        rights,
        size,
        global,
        dirty,
        record,
    }))
}

#[cfg(all(test, not(loom)))]
mod tests;

//! Memslots: which guest-physical ranges are RAM, and where on the host.
//!
//! A [`Memslots`] value is an immutable sorted array of slots plus the
//! generation it was published under; a change builds a new copy (sharing the
//! unchanged slots) and publishes it (see `publish.rs`).

use std::fs::File;
use std::sync::Arc;

use super::mapping::Mapping;
use super::ram::RamPage;
use crate::addr::{Gfn, Gpa, PAGE_SHIFT};
use crate::sync::AtomicU64;

/// Flags of a memslot, as in `KVM_SET_USER_MEMORY_REGION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MemFlags(u32);

impl MemFlags {
    /// Track guest writes in a per-slot dirty bitmap (KVM_MEM_LOG_DIRTY_PAGES).
    pub const LOG_DIRTY_PAGES: MemFlags = MemFlags(1 << 0);
    /// Guest writes are MMIO exits; reads are RAM (KVM_MEM_READONLY).
    pub const READONLY: MemFlags = MemFlags(1 << 1);

    /// No flags.
    pub const fn empty() -> Self {
        MemFlags(0)
    }

    /// Whether every flag of `o` is set.
    pub fn contains(self, o: MemFlags) -> bool {
        self.0 & o.0 == o.0
    }

    /// The raw bits (KVM's numbering).
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl core::ops::BitOr for MemFlags {
    type Output = MemFlags;
    fn bitor(self, o: MemFlags) -> MemFlags {
        MemFlags(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for MemFlags {
    fn bitor_assign(&mut self, o: MemFlags) {
        self.0 |= o.0;
    }
}

/// What host memory backs a slot.
#[derive(Debug)]
pub enum Backing {
    /// Fresh zeroed memory. When an existing slot is changed only in its
    /// flags (same address and size), its memory is kept, as with KVM where
    /// the VMM's mapping outlives the slot.
    Anonymous,
    /// `size` bytes of a file from `offset` (page aligned). Shared, so writes
    /// reach the file; private (copy-on-write) for `READONLY` slots.
    File {
        /// The file; the caller keeps it unchanged in length while mapped.
        file: File,
        /// Where in the file the slot starts.
        offset: u64,
    },
}

/// Errors of guest-memory operations.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// The new slot would overlap another one.
    #[error("memslot {slot} [{start:#x}, {end:#x}) overlaps memslot {other}")]
    Overlap {
        /// The slot being set.
        slot: u32,
        /// The slot already there.
        other: u32,
        /// First byte of the new range.
        start: u64,
        /// One past its last byte.
        end: u64,
    },
    /// Address, size or file offset not a multiple of the page size.
    #[error("memslot {slot}: {what} {value:#x} is not 4 KiB aligned")]
    Misaligned {
        /// The slot being set.
        slot: u32,
        /// Which number.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// The range does not fit the guest-physical address space or the host.
    #[error("memslot {slot}: size {size:#x} at {gpa:#x} is too large")]
    TooLarge {
        /// The slot being set.
        slot: u32,
        /// Start of the range.
        gpa: u64,
        /// Its size.
        size: u64,
    },
    /// Slot ids are limited like KVM's (below [`MAX_MEMSLOTS`]).
    #[error("memslot id {0} is out of range")]
    InvalidSlot(u32),
    /// No slot with that id.
    #[error("memslot {0} does not exist")]
    NoSuchSlot(u32),
    /// The slot has no dirty log (`LOG_DIRTY_PAGES` not set).
    #[error("memslot {0} does not log dirty pages")]
    NotLogging(u32),
    /// An access touched guest-physical memory no slot maps.
    #[error("guest physical address {0:#x} is not RAM")]
    Unmapped(u64),
    /// The host refused the mapping.
    #[error("mapping memslot {slot}: {source}")]
    Map {
        /// The slot being set.
        slot: u32,
        /// What mmap said.
        #[source]
        source: std::io::Error,
    },
}

/// Slot ids must be below this (KVM's per-address-space limit).
pub const MAX_MEMSLOTS: u32 = 32768;

/// One bit per page of a slot, set by guest writes while logging.
pub(crate) struct DirtyBitmap {
    words: Box<[AtomicU64]>,
}

impl DirtyBitmap {
    fn new(pages: u64) -> Self {
        let n = pages.div_ceil(64) as usize;
        DirtyBitmap {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Marks page `index`; a load first keeps already-dirty pages from
    /// bouncing the cache line between vCPUs.
    pub(crate) fn mark(&self, index: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(w) = self.words.get((index / 64) as usize) else {
            return;
        };
        let bit = 1u64 << (index % 64);
        if w.load(Relaxed) & bit == 0 {
            w.fetch_or(bit, Relaxed);
        }
    }

    /// Takes the bitmap, leaving it clear.
    pub(crate) fn take(&self) -> Vec<u64> {
        use std::sync::atomic::Ordering::AcqRel;
        self.words.iter().map(|w| w.swap(0, AcqRel)).collect()
    }
}

/// One memslot.
pub(crate) struct Memslot {
    pub(crate) id: u32,
    pub(crate) base_gfn: u64,
    pub(crate) npages: u64,
    pub(crate) flags: MemFlags,
    pub(crate) mapping: Arc<Mapping>,
    pub(crate) dirty: Option<Arc<DirtyBitmap>>,
}

impl Memslot {
    pub(crate) fn new(
        id: u32,
        base_gfn: u64,
        npages: u64,
        flags: MemFlags,
        mapping: Arc<Mapping>,
        dirty: Option<Arc<DirtyBitmap>>,
    ) -> Memslot {
        let dirty = if flags.contains(MemFlags::LOG_DIRTY_PAGES) {
            Some(dirty.unwrap_or_else(|| Arc::new(DirtyBitmap::new(npages))))
        } else {
            None
        };
        Memslot {
            id,
            base_gfn,
            npages,
            flags,
            mapping,
            dirty,
        }
    }

    pub(crate) fn end_gfn(&self) -> u64 {
        self.base_gfn + self.npages
    }

    pub(crate) fn readonly(&self) -> bool {
        self.flags.contains(MemFlags::READONLY)
    }

    /// The RAM page of `gfn` (which must be in this slot).
    pub(crate) fn page(&self, gfn: u64) -> Option<RamPage<'_>> {
        self.mapping.page(gfn.checked_sub(self.base_gfn)?)
    }

    /// Records a guest write to `gfn` if this slot logs dirty pages.
    pub(crate) fn mark_dirty(&self, gfn: u64) {
        if let Some(d) = &self.dirty {
            d.mark(gfn - self.base_gfn);
        }
    }
}

/// One published copy of the memslots.
pub(crate) struct Memslots {
    /// Even when stable, odd while this copy is being installed.
    pub(crate) generation: AtomicU64,
    /// Sorted by `base_gfn`, non-overlapping.
    pub(crate) slots: Vec<Arc<Memslot>>,
}

impl Memslots {
    pub(crate) fn empty() -> Self {
        Memslots {
            generation: AtomicU64::new(0),
            slots: Vec::new(),
        }
    }

    /// The slot containing `gfn`: binary search by base.
    pub(crate) fn find(&self, gfn: Gfn) -> Option<&Memslot> {
        let g = gfn.raw();
        let i = self.slots.partition_point(|s| s.base_gfn <= g);
        let s = self.slots.get(i.checked_sub(1)?)?;
        (g < s.end_gfn()).then_some(&**s)
    }

    /// The slot with id `id`.
    pub(crate) fn by_id(&self, id: u32) -> Option<&Arc<Memslot>> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// The RAM page holding `gpa` and its slot.
    pub(crate) fn page(&self, gpa: Gpa) -> Option<(&Memslot, RamPage<'_>)> {
        let s = self.find(gpa.gfn())?;
        Some((s, s.page(gpa.raw() >> PAGE_SHIFT)?))
    }

    /// A copy without slot `id`, and with `add` inserted in order.
    pub(crate) fn with_change(&self, id: u32, add: Option<Arc<Memslot>>) -> Memslots {
        let mut slots: Vec<Arc<Memslot>> =
            self.slots.iter().filter(|s| s.id != id).cloned().collect();
        if let Some(a) = add {
            let i = slots.partition_point(|s| s.base_gfn < a.base_gfn);
            slots.insert(i, a);
        }
        Memslots {
            generation: AtomicU64::new(0),
            slots,
        }
    }

    /// Total bytes of all slots.
    pub(crate) fn ram_size(&self) -> u64 {
        self.slots.iter().map(|s| s.npages << PAGE_SHIFT).sum()
    }
}

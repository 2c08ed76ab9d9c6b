//! Guest memory: memslots published under SRCU, and VMM-side access.

pub(crate) mod mapping;
pub(crate) mod publish;
pub(crate) mod ram;
pub(crate) mod slots;
#[cfg(test)]
mod test_hooks;

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, RwLock};

use crate::addr::{Gpa, PAGE_MASK, PAGE_SIZE};
use crate::events::{MmuEvent, MmuSink, ZapReason};
use crate::srcu::{Srcu, SrcuReader};
use crate::sync::{lock, AtomicU64, Mutex};
use mapping::{Mapping, RcuCell};
pub(crate) use publish::PublishMode;
use publish::{install_new, Generational};
pub use ram::Hva;
pub use slots::{Backing, MemError, MemFlags, MAX_MEMSLOTS};
use slots::{Memslot, Memslots};

impl Generational for Memslots {
    fn generation(&self) -> &AtomicU64 {
        &self.generation
    }
}

/// Highest guest-physical address bit a slot may use (the architectural
/// limit of 52; the CPU model may report a smaller MAXPHYADDR).
pub const GPA_BITS: u32 = 52;

/// The guest's physical memory: memslots over host mappings, shared by every
/// vCPU through an `Arc`.
pub struct GuestMemory {
    cell: RcuCell<Memslots>,
    /// Serialises writers (memslot changes) and VMM snapshots.
    update: Mutex<PublishMode>,
    /// The generation of the published copy, readable without a section.
    generation: AtomicU64,
    /// Bumped when every vCPU must zap its shadow pages: after the grace
    /// period of an update whose MMIO generation wrapped to 0, and after
    /// that update's final generation was stored, so a vCPU that sees the
    /// bump reads that generation or a later one.
    zap_epoch: AtomicU64,
    /// Bumped when a dirty log is read: vCPUs drop writable TLB entries.
    dirty_epoch: AtomicU64,
    /// Bumped after every [`GuestMemory::write_phys`]: CPUs caching decoded
    /// code revalidate it (the VMM may have rewritten guest code).
    phys_writes: AtomicU64,
    /// Updates that found an odd generation (KVM's WARN_ON): never while
    /// writers are serialised.
    odd_generation_warnings: AtomicU64,
    sink: RwLock<Option<Arc<dyn MmuSink>>>,
}

impl GuestMemory {
    /// Empty guest memory (no slots, generation 0).
    pub fn new() -> Arc<GuestMemory> {
        Arc::new(GuestMemory {
            cell: RcuCell::new(Arc::new(Memslots::empty()), Srcu::new()),
            update: Mutex::new(PublishMode::Fixed),
            generation: AtomicU64::new(0),
            zap_epoch: AtomicU64::new(0),
            dirty_epoch: AtomicU64::new(0),
            phys_writes: AtomicU64::new(0),
            odd_generation_warnings: AtomicU64::new(0),
            sink: RwLock::new(None),
        })
    }

    /// Creates, changes or (with `size` 0) deletes slot `slot`, with
    /// `KVM_SET_USER_MEMORY_REGION` semantics, and publishes the result with
    /// `install_new_memslots`. Returns once no vCPU can see the old layout.
    ///
    /// Changing a slot is delete + add in one publication. If only the flags
    /// change (same address and size) and `backing` is `Anonymous`, the
    /// slot keeps its memory. Deleting a slot that does not exist succeeds.
    pub fn set_user_memory_region(
        &self,
        slot: u32,
        flags: MemFlags,
        guest_phys_addr: Gpa,
        size: u64,
        backing: Backing,
    ) -> Result<(), MemError> {
        if slot >= MAX_MEMSLOTS {
            return Err(MemError::InvalidSlot(slot));
        }
        let gpa = guest_phys_addr.raw();
        for (what, value) in [("guest_phys_addr", gpa), ("size", size)] {
            if value & PAGE_MASK != 0 {
                return Err(MemError::Misaligned { slot, what, value });
            }
        }
        if let Backing::File { offset, .. } = &backing {
            if offset & PAGE_MASK != 0 {
                return Err(MemError::Misaligned {
                    slot,
                    what: "file offset",
                    value: *offset,
                });
            }
        }
        if gpa.checked_add(size).is_none_or(|end| end > 1 << GPA_BITS) {
            return Err(MemError::TooLarge { slot, gpa, size });
        }
        let mode = lock(&self.update);
        let current = self.cell.clone_current_locked();
        let installed = self.update_slots(*mode, &current, slot, flags, gpa, size, backing)?;
        drop(mode);
        drop(current);
        // The old copy (and any mapping only it held) goes here, after the
        // grace period.
        drop(installed);
        Ok(())
    }

    /// The body of [`GuestMemory::set_user_memory_region`] once arguments are
    /// checked: builds the changed copy of `current` and publishes it. The
    /// caller holds the writers' lock (only a test breaks that rule, to
    /// produce the odd generation KVM warns about). Returns the old copy,
    /// or `None` if nothing changed.
    #[allow(clippy::too_many_arguments)]
    fn update_slots(
        &self,
        mode: PublishMode,
        current: &Memslots,
        slot: u32,
        flags: MemFlags,
        gpa: u64,
        size: u64,
        backing: Backing,
    ) -> Result<Option<Arc<Memslots>>, MemError> {
        let end = gpa + size;
        let old = current.by_id(slot).cloned();
        let add = if size == 0 {
            if old.is_none() {
                return Ok(None);
            }
            None
        } else {
            let (base, npages) = (gpa / PAGE_SIZE, size / PAGE_SIZE);
            if let Some(other) = current
                .slots
                .iter()
                .find(|s| s.id != slot && s.base_gfn < end / PAGE_SIZE && base < s.end_gfn())
            {
                return Err(MemError::Overlap {
                    slot,
                    other: other.id,
                    start: gpa,
                    end,
                });
            }
            let reuse = old.as_ref().filter(|o| {
                o.base_gfn == base && o.npages == npages && matches!(backing, Backing::Anonymous)
            });
            let (mapping, dirty) = match reuse {
                Some(o) => (o.mapping.clone(), o.dirty.clone()),
                None => {
                    let m = match &backing {
                        Backing::Anonymous => Mapping::anonymous(size),
                        Backing::File { file, offset } => {
                            Mapping::file(file, *offset, size, flags.contains(MemFlags::READONLY))
                        }
                    };
                    (
                        Arc::new(m.map_err(|source| MemError::Map { slot, source })?),
                        None,
                    )
                }
            };
            Some(Arc::new(Memslot::new(
                slot, base, npages, flags, mapping, dirty,
            )))
        };
        let new = Arc::new(current.with_change(slot, add));
        let installed = install_new(&self.cell, current, new, mode, &self.generation, || {
            self.zap_epoch.fetch_add(1, Release);
            self.emit(&MmuEvent::Zap {
                reason: ZapReason::GenerationWrap,
            });
        });
        if installed.warned_odd {
            self.odd_generation_warnings.fetch_add(1, Relaxed);
        }
        self.emit(&MmuEvent::MemslotInstall {
            old_generation: installed.old_generation,
            new_generation: installed.new_generation,
        });
        Ok(Some(installed.old))
    }

    /// The generation of the published memslots: even when stable, odd while
    /// an update waits for its grace period.
    pub fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }

    /// Copies guest-physical memory into `buf`, across slots. Fails, copying
    /// nothing, if any byte is in no slot.
    pub fn read_phys(&self, gpa: Gpa, buf: &mut [u8]) -> Result<(), MemError> {
        let slots = self.snapshot();
        check_ram(&slots, gpa, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = gpa.wrapping_add(done as u64);
            let n = chunk(at, buf.len() - done);
            let (_, page) = slots.page(at).ok_or(MemError::Unmapped(at.raw()))?;
            page.read_bytes(at.page_offset() as usize, &mut buf[done..done + n])
                .ok_or(MemError::Unmapped(at.raw()))?;
            done += n;
        }
        Ok(())
    }

    /// Copies `data` into guest-physical memory, across slots, ignoring
    /// `READONLY` (the VMM writing its own mapping). Fails, writing nothing,
    /// if any byte is in no slot.
    pub fn write_phys(&self, gpa: Gpa, data: &[u8]) -> Result<(), MemError> {
        let slots = self.snapshot();
        check_ram(&slots, gpa, data.len())?;
        let mut done = 0usize;
        while done < data.len() {
            let at = gpa.wrapping_add(done as u64);
            let n = chunk(at, data.len() - done);
            let (_, page) = slots.page(at).ok_or(MemError::Unmapped(at.raw()))?;
            page.write_bytes(at.page_offset() as usize, &data[done..done + n])
                .ok_or(MemError::Unmapped(at.raw()))?;
            done += n;
        }
        self.phys_writes.fetch_add(1, Release);
        Ok(())
    }

    /// How many [`GuestMemory::write_phys`] calls have completed: a CPU that
    /// caches decoded guest code drops its cache when this changes.
    pub fn phys_write_count(&self) -> u64 {
        self.phys_writes.load(Acquire)
    }

    /// `KVM_GET_DIRTY_LOG`: the slot's dirty bitmap (bit i of word j = page
    /// 64 j + i written since the last call), cleared.
    ///
    /// Order matters: the bitmap is taken first, then vCPUs are told to drop
    /// writable front-TLB entries, then a grace period waits for every vCPU
    /// to leave its section. A write through an entry filled before the take
    /// has its page in the returned bitmap, and happens before we return; a
    /// write after it marks the new bitmap.
    pub fn get_dirty_log(&self, slot: u32) -> Result<Vec<u64>, MemError> {
        let s = {
            let _g = lock(&self.update);
            let cur = self.cell.clone_current_locked();
            cur.by_id(slot).cloned().ok_or(MemError::NoSuchSlot(slot))?
        };
        let bitmap = s.dirty.as_ref().ok_or(MemError::NotLogging(slot))?.take();
        self.dirty_epoch.fetch_add(1, Release);
        self.cell.srcu().synchronize();
        Ok(bitmap)
    }

    /// Sum of the sizes of all slots.
    pub fn ram_size(&self) -> u64 {
        self.snapshot().ram_size()
    }

    /// How many updates found the generation odd before they started: the
    /// equivalent of KVM's `WARN_ON(old_memslots->generation & 1)`. Writers
    /// are serialised, so anything but 0 is a bug. Such an update still
    /// publishes an odd generation (the next one) and ends on an even one.
    pub fn generation_warnings(&self) -> u64 {
        self.odd_generation_warnings.load(Relaxed)
    }

    /// Receives memslot installs and generation-wrap zaps.
    pub fn set_sink(&self, sink: Option<Arc<dyn MmuSink>>) {
        *self.sink.write().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    fn emit(&self, ev: &MmuEvent) {
        if let Some(s) = &*self.sink.read().unwrap_or_else(|e| e.into_inner()) {
            s.event(ev);
        }
    }

    fn snapshot(&self) -> Arc<Memslots> {
        let _g = lock(&self.update);
        self.cell.clone_current_locked()
    }

    pub(crate) fn srcu(&self) -> &Srcu {
        self.cell.srcu()
    }

    /// The published copy, for a reader inside its section.
    pub(crate) fn slots<'r>(&'r self, reader: &'r SrcuReader) -> Option<&'r Memslots> {
        self.cell.read(reader)
    }

    /// The reader's half of the seed's fix: the generation of the copy
    /// published now, read after the memslot lookup, to tag an MMIO spte.
    pub(crate) fn current_generation(&self, reader: &SrcuReader) -> Option<u64> {
        publish::current_generation(&self.cell, reader)
    }

    pub(crate) fn zap_epoch(&self) -> u64 {
        self.zap_epoch.load(Acquire)
    }

    pub(crate) fn dirty_epoch(&self) -> u64 {
        self.dirty_epoch.load(Acquire)
    }
}

/// Bytes from `at` to the end of its page, at most `left`.
fn chunk(at: Gpa, left: usize) -> usize {
    ((PAGE_SIZE - at.page_offset()) as usize).min(left)
}

fn check_ram(slots: &Memslots, gpa: Gpa, len: usize) -> Result<(), MemError> {
    let mut done = 0usize;
    while done < len {
        let at = gpa
            .checked_add(done as u64)
            .ok_or(MemError::Unmapped(u64::MAX))?;
        if slots.page(at).is_none() {
            return Err(MemError::Unmapped(at.raw()));
        }
        done += chunk(at, len - done);
    }
    Ok(())
}

impl crate::walker::PteMemory for Memslots {
    fn read_entry(&self, gpa: Gpa, size: usize) -> Option<u64> {
        let (_, page) = self.page(gpa)?;
        page.load(gpa.page_offset() as usize, size)
    }

    fn cmpxchg_entry(&self, gpa: Gpa, size: usize, old: u64, new: u64) -> Result<(), u64> {
        let Some((slot, page)) = self.page(gpa) else {
            return Ok(());
        };
        if slot.readonly() {
            // Hardware writing A/D bits into ROM: the write is dropped.
            return Ok(());
        }
        match page.cmpxchg(gpa.page_offset() as usize, size, old, new) {
            Some(Ok(_)) => {
                slot.mark_dirty(gpa.raw() >> crate::addr::PAGE_SHIFT);
                Ok(())
            }
            Some(Err(cur)) => Err(cur),
            None => Ok(()),
        }
    }
}

//! The mapping code: host mappings behind memslots, and the RCU cell that
//! publishes the current memslots copy to readers.
//!
//! Both hold raw pointers whose validity rests on one argument, written once
//! here: a mapping is owned (through `Arc`s) by every memslots copy that
//! contains it, a copy is owned by the [`RcuCell`] while published, and the
//! cell hands the old copy back to the writer only after an SRCU grace period.
//! So memory reachable from a copy a reader found inside its read section
//! stays mapped until that section ends.

use core::marker::PhantomData;
use core::ptr::NonNull;
use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use memmap2::{MmapMut, MmapOptions};

use super::ram::RamPage;
use crate::addr::PAGE_SIZE;
use crate::srcu::{Srcu, SrcuReader};
use crate::sync::AtomicPtr;

/// One host mapping of guest RAM.
pub(crate) struct Mapping {
    /// Owns the mapping; never dereferenced as a slice (that would create
    /// references to memory other threads write).
    _map: MmapMut,
    base: NonNull<u8>,
    pages: u64,
}

// SAFETY: the mapping is process-wide memory; `base` is only used through the
// atomic accessors in `ram`, which are safe to call from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; shared use is exactly the point.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Anonymous zeroed memory, reserved lazily by the host. No swap is
    /// reserved for it either (`MAP_NORESERVE`): guest RAM is what the
    /// guest touches, so a machine with more RAM than the host can commit
    /// still starts, as with KVM and QEMU.
    pub(crate) fn anonymous(len: u64) -> io::Result<Mapping> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let map = MmapOptions::new().len(len).no_reserve_swap().map_anon()?;
        Ok(Self::from_map(map, len))
    }

    /// `len` bytes of `file` from `offset`. A shared mapping (guest writes
    /// reach the file) unless `private`, used for read-only slots so a file
    /// opened read-only can back ROM.
    pub(crate) fn file(file: &File, offset: u64, len: u64, private: bool) -> io::Result<Mapping> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut opts = MmapOptions::new();
        opts.offset(offset).len(len);
        // SAFETY: memmap2 requires that the file is not truncated or changed
        // behind the mapping in ways Rust could observe as references; we
        // never create references into the mapping, only atomic accesses, so
        // concurrent changes to the file are just more concurrent writers.
        // Truncation by the user would make accesses fault (SIGBUS), as it
        // would under KVM; that is the documented contract of file backing.
        let map = unsafe {
            if private {
                opts.map_copy(file)?
            } else {
                opts.map_mut(file)?
            }
        };
        Ok(Self::from_map(map, len))
    }

    fn from_map(mut map: MmapMut, len: usize) -> Mapping {
        let base = NonNull::new(map.as_mut_ptr()).unwrap_or(NonNull::dangling());
        Mapping {
            _map: map,
            base,
            pages: len as u64 / PAGE_SIZE,
        }
    }

    /// Page `index` of the mapping, borrowed for as long as the mapping is.
    pub(crate) fn page(&self, index: u64) -> Option<RamPage<'_>> {
        if index >= self.pages {
            return None;
        }
        let off = usize::try_from(index * PAGE_SIZE).ok()?;
        let p = NonNull::new(self.base.as_ptr().wrapping_add(off))?;
        // SAFETY: the mapping is page aligned (mmap) and `index` is inside
        // it; it lives as long as `&self`; every access through RamPage is
        // atomic.
        Some(unsafe { RamPage::from_raw(p) })
    }
}

/// A pointer to the current `T`, replaced read-copy-update style.
///
/// Readers get a `&T` borrowed from proof that they are inside a read
/// section of the cell's own [`Srcu`]; the writer's [`RcuCell::replace`]
/// publishes the new value and returns the old one only after
/// `synchronize`, so no reader can still be looking at it.
pub(crate) struct RcuCell<T> {
    ptr: AtomicPtr<T>,
    srcu: Srcu,
    _owns: PhantomData<Arc<T>>,
}

// SAFETY: the cell owns an `Arc<T>` (shared by readers on any thread).
unsafe impl<T: Send + Sync> Send for RcuCell<T> {}
// SAFETY: as above; reads are atomic loads, writes are serialised by callers
// only for efficiency (concurrent `replace`s are still each correct).
unsafe impl<T: Send + Sync> Sync for RcuCell<T> {}

impl<T> RcuCell<T> {
    pub(crate) fn new(value: Arc<T>, srcu: Srcu) -> Self {
        RcuCell {
            ptr: AtomicPtr::new(Arc::into_raw(value).cast_mut()),
            srcu,
            _owns: PhantomData,
        }
    }

    /// The grace-period domain protecting this cell.
    pub(crate) fn srcu(&self) -> &Srcu {
        &self.srcu
    }

    /// The current value, for a reader inside its long-lived section.
    /// `None` if the reader is not inside one or belongs to another domain.
    pub(crate) fn read<'r>(&'r self, reader: &'r SrcuReader) -> Option<&'r T> {
        if !reader.is_active() || !reader.same_domain(&self.srcu) {
            return None;
        }
        Some(self.load())
    }

    fn load(&self) -> &T {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: `p` came from `Arc::into_raw` and the cell's reference keeps
        // it alive while published; after being replaced it is released only
        // once `synchronize` has waited for every section that began before
        // the replacement, and the callers above prove we are in one of our
        // domain's sections for the lifetime of the returned borrow.
        unsafe { &*p }
    }

    /// A counted reference to the current value, for callers outside any
    /// read section (the VMM). Must be called with replacements excluded (the
    /// caller holds the writers' lock).
    pub(crate) fn clone_current_locked(&self) -> Arc<T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: `p` is the published pointer from `Arc::into_raw`; the
        // caller excludes `replace`, so the cell's own count keeps it alive
        // while we add one.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    /// A counted reference to the current value, taken inside `reader`'s
    /// section (which keeps the value alive while the count is added), so
    /// that no writers' lock is needed. `None` outside a section.
    #[cfg(test)]
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn clone_current(&self, reader: &SrcuReader) -> Option<Arc<T>> {
        let current: *const T = self.read(reader)?;
        // SAFETY: `current` came from `Arc::into_raw` and is kept alive by
        // the cell's count until a grace period that waits for `reader`'s
        // open section; we add our own count while it is open.
        unsafe {
            Arc::increment_strong_count(current);
            Some(Arc::from_raw(current))
        }
    }

    /// Publishes `new`, runs `published` (still before the grace period),
    /// waits for a grace period, and returns the old value, which no reader
    /// can still see.
    pub(crate) fn replace_with(&self, new: Arc<T>, published: impl FnOnce()) -> Arc<T> {
        let old = self
            .ptr
            .swap(Arc::into_raw(new).cast_mut(), Ordering::AcqRel);
        published();
        self.srcu.synchronize();
        // SAFETY: `old` came from `Arc::into_raw` (in `new` or a previous
        // `replace`), is no longer published, and the grace period has ended;
        // this takes back the cell's count exactly once.
        unsafe { Arc::from_raw(old) }
    }
}

impl<T> Drop for RcuCell<T> {
    fn drop(&mut self) {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: dropping the cell needs `&mut self`, so no reader borrows
        // from it; this releases the published count.
        drop(unsafe { Arc::from_raw(p) });
    }
}

//! Guest RAM access: the one place that touches guest memory.
//!
//! Guest RAM is shared by every vCPU thread and by the VMM, so it is never
//! handed out as a Rust reference to plain bytes (two threads holding
//! `&mut [u8]` over the same page would be undefined behaviour, and so would a
//! plain read racing a guest write). Every access here is atomic:
//!
//! - aligned loads are `Acquire`, aligned stores `Release` (on x86 hosts these
//!   compile to plain `mov`s, and they give Arm hosts the x86 memory order);
//! - an unaligned access that fits in one aligned 8-byte word is done as one
//!   access to that word (a load and shift, or a compare-and-swap merging the
//!   new bytes), so it stays atomic like on x86; wider splits are done as
//!   naturally aligned pieces, which x86 does not promise to be atomic either;
//! - LOCK-prefixed read-modify-writes are compare-and-swap loops on the real
//!   location. A locked access that crosses an 8-byte boundary but stays in
//!   an aligned 16-byte block uses a 16-byte compare-and-swap on x86-64 hosts;
//!   anything wider (a *split lock* across 16-byte blocks, which x86 itself
//!   makes very slow and Linux may forbid) takes a global lock instead. That
//!   lock orders split locks among themselves only; a concurrent aligned
//!   locked access to overlapping bytes is not excluded. Documented, rare.
//!
//! # Racing accesses of different sizes
//!
//! Guests race accesses of different sizes to the same bytes by design: a
//! 4-byte store on one vCPU against a 1-byte load of one of those bytes on
//! another, a LOCK CMPXCHG of 8 bytes against a 2-byte store. x86 defines
//! the outcome (each aligned access is single-copy atomic, all of them in
//! one memory order), so an emulator must perform these as overlapping
//! host accesses of those same sizes: splitting everything into bytes would
//! let a 4-byte load see half of a 4-byte store.
//!
//! In Rust's memory model (C++20's, see `std::sync::atomic`) two racing
//! atomic accesses of different sizes to overlapping bytes, at least one of
//! them a write, are **undefined behaviour**. This module does exactly that,
//! so its correctness rests on guarantees below the language, which hold
//! on the hosts softvm supports (x86-64 and AArch64) with today's rustc:
//!
//! - *The compiler.* Each access is one `Atomic*::from_ptr(p)` operation on
//!   a raw pointer into a host mapping, which rustc lowers to one LLVM
//!   atomic instruction of exactly that width and ordering. LLVM's IR
//!   memory model is byte-wise: a byte read by an atomic load that only
//!   atomic stores may have written holds a value one of them wrote
//!   (LangRef, "Memory Model for Concurrent Operations"), whatever their
//!   sizes; the race is undefined only in Rust's model above it. LLVM does
//!   not split or widen atomic accesses, and the code generator emits each
//!   as a single instruction of its width, as follows.
//! - *x86-64 hosts.* Aligned loads and stores of 1, 2, 4 and 8 bytes are
//!   single-copy atomic (SDM Vol. 3A, "Guaranteed Atomic Operations");
//!   `Acquire` loads and `Release` stores are plain `MOV`s under TSO ("Memory
//!   Ordering in P6 and More Recent Processor Families"), whatever the
//!   sizes; compare-and-swap is `LOCK CMPXCHG`, atomic with respect to every
//!   other access ("Locked Atomic Operations"). Intel advises software to
//!   use identical addresses and sizes for semaphores; a guest that does
//!   not gets the host processor's behaviour, which is the guest's own.
//! - *AArch64 hosts.* `LDAR`/`LDAPR` and `STLR` of 1, 2, 4 and 8 bytes at
//!   aligned addresses are single-copy atomic (Arm ARM, "Single-copy
//!   atomicity"), and the Armv8 memory model is defined for mixed-size
//!   accesses (per-byte coherence, other-multi-copy atomic), so a 1-byte
//!   load racing a 4-byte store sees that byte before or after it, never
//!   invented. Acquire/release give the x86 order for these accesses.
//!   Compare-and-swap is `CASAL` (LSE) or an `LDAXR`/`STLXR` loop of the
//!   access's width; any store to the reservation granule, of any size,
//!   clears the reservation, so a racing narrower store makes the loop
//!   retry rather than be lost.
//!
//! The races are confined to this module: no Rust reference to guest RAM
//! exists anywhere (only raw pointers, used here), so the only racing
//! accesses are these atomics against each other, never against a plain
//! access. Everything else that is shared (memslot copies, generations,
//! SRCU counters, epochs) uses same-size atomics, checked by the loom
//! models. Miri reports the mixed-size races as UB, as it should; they are
//! not run under Miri.
//!
//! Pointers into RAM come in two forms. [`RamPage`] borrows the memslots copy
//! it came from, so the borrow checker keeps the mapping alive. [`Hva`] is the
//! lifetime-free handle given to the CPU: it carries the id of the SRCU read
//! section it was produced in, and the MMU refuses (counts and ignores) an
//! access whose section has ended, so a stale `Hva` can never reach freed
//! memory.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use crate::addr::{PAGE_MASK, PAGE_SIZE};

mod cas16;
use cas16::cas128;

/// Host address of one byte of guest RAM, valid until the vCPU leaves the
/// read section it was produced in. Opaque: only softmmu makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hva {
    ptr: NonNull<u8>,
    /// Id of the read section it belongs to; 0 = poisoned (never valid).
    section: u64,
}

// SAFETY: an Hva is only an address plus a section id; it is dereferenced
// only by `Mmu` after checking the section is still open, which keeps the
// mapping alive whichever thread holds the value.
unsafe impl Send for Hva {}
// SAFETY: as above; sharing the value shares no access.
unsafe impl Sync for Hva {}

impl Hva {
    /// The address `bytes` further on. It must stay within the 4 KiB page it
    /// came from; if it does not, the result is poisoned and every access
    /// through it is refused.
    pub fn offset(self, bytes: u64) -> Hva {
        let addr = self.ptr.as_ptr() as usize as u64;
        let section = match (addr & PAGE_MASK).checked_add(bytes) {
            Some(o) if o < PAGE_SIZE => self.section,
            _ => 0,
        };
        let o = if section == 0 { 0 } else { bytes as usize };
        let ptr = NonNull::new(self.ptr.as_ptr().wrapping_add(o)).unwrap_or(self.ptr);
        Hva { ptr, section }
    }

    /// The host address as a number, for traces only.
    pub fn addr(self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Offset inside its page.
    fn page_offset(self) -> usize {
        (self.ptr.as_ptr() as usize) & (PAGE_MASK as usize)
    }
}

/// A page-aligned 4 KiB page of guest RAM, borrowed from the memslots copy
/// that maps it. All bounds are checked against the page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RamPage<'a> {
    base: NonNull<u8>,
    _slots: PhantomData<&'a ()>,
}

// SAFETY: a RamPage is a borrow of a shared mapping accessed only atomically.
unsafe impl Send for RamPage<'_> {}
// SAFETY: as above.
unsafe impl Sync for RamPage<'_> {}

/// A page pointer without a lifetime, kept in the front TLB. It is turned
/// back into something usable only together with a live section id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HostPage(NonNull<u8>);

// SAFETY: only an address; see `Hva`.
unsafe impl Send for HostPage {}
// SAFETY: only an address; see `Hva`.
unsafe impl Sync for HostPage {}

impl HostPage {
    /// The host page of empty front-TLB entries: never turned into an
    /// address, because an empty entry's tag matches no lookup.
    pub(crate) const NONE: HostPage = HostPage(NonNull::dangling());

    /// The Hva of byte `off` of this page in section `section`.
    pub(crate) fn hva(self, off: u64, section: u64) -> Hva {
        let p = self.0.as_ptr().wrapping_add((off & PAGE_MASK) as usize);
        Hva {
            ptr: NonNull::new(p).unwrap_or(self.0),
            section,
        }
    }
}

impl<'a> RamPage<'a> {
    /// # Safety
    /// `base` must be 4 KiB aligned and point to 4 KiB of mapped memory that
    /// stays mapped for `'a` and is only accessed atomically.
    pub(crate) unsafe fn from_raw(base: NonNull<u8>) -> Self {
        RamPage {
            base,
            _slots: PhantomData,
        }
    }

    pub(crate) fn host_page(self) -> HostPage {
        HostPage(self.base)
    }

    fn at(self, off: usize, size: usize) -> Option<*mut u8> {
        if off.checked_add(size)? > PAGE_SIZE as usize {
            return None;
        }
        Some(self.base.as_ptr().wrapping_add(off))
    }

    /// Loads `size` (1, 2, 4 or 8) bytes at `off`; `None` if out of the page.
    pub(crate) fn load(self, off: usize, size: usize) -> Option<u64> {
        let p = self.at(off, size)?;
        // SAFETY: `at` checked that [p, p+size) lies in this live page.
        unsafe { load_at(p, size) }
    }

    /// Compare-and-swap of a naturally aligned 4- or 8-byte entry (a guest
    /// page-table entry). `Err(current)` when it no longer holds `old`.
    pub(crate) fn cmpxchg(
        self,
        off: usize,
        size: usize,
        old: u64,
        new: u64,
    ) -> Option<Result<u64, u64>> {
        let p = self.at(off, size)?;
        if !off.is_multiple_of(size) {
            return None;
        }
        // SAFETY: in the page (checked) and aligned for the type (checked).
        unsafe {
            Some(match size {
                4 => AtomicU32::from_ptr(p.cast())
                    .compare_exchange(old as u32, new as u32, Ordering::AcqRel, Ordering::Acquire)
                    .map(u64::from)
                    .map_err(u64::from),
                8 => AtomicU64::from_ptr(p.cast()).compare_exchange(
                    old,
                    new,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ),
                _ => return None,
            })
        }
    }

    /// Copies bytes out of the page starting at `off`.
    pub(crate) fn read_bytes(self, off: usize, buf: &mut [u8]) -> Option<()> {
        let p = self.at(off, buf.len())?;
        // SAFETY: the whole range is in this live page.
        unsafe { copy_out(p, buf) };
        Some(())
    }

    /// Copies bytes into the page starting at `off`.
    pub(crate) fn write_bytes(self, off: usize, data: &[u8]) -> Option<()> {
        let p = self.at(off, data.len())?;
        // SAFETY: the whole range is in this live page.
        unsafe { copy_in(p, data) };
        Some(())
    }
}

/// Resolves an Hva for an access of `size` bytes in section `section`:
/// `None` if the section is over, the Hva poisoned, or the access would leave
/// the page.
fn resolve(hva: Hva, section: u64, size: usize) -> Option<*mut u8> {
    if hva.section == 0 || hva.section != section {
        return None;
    }
    if hva.page_offset().checked_add(size)? > PAGE_SIZE as usize {
        return None;
    }
    Some(hva.ptr.as_ptr())
}

/// Load of `size` bytes at byte `off & PAGE_MASK` of a page the front TLB
/// holds, for [`crate::Mmu::hot_load`]: the caller has checked that its
/// read section is open (so the mapping is alive). `None` if the access
/// leaves the page.
#[inline(always)]
pub(crate) fn page_load(page: HostPage, off: u64, size: usize) -> Option<u64> {
    let off = (off & PAGE_MASK) as usize;
    let p = page.0.as_ptr().wrapping_add(off);
    // SAFETY: the page is mapped while the caller's section is open. Host
    // pages are 4 KiB aligned (`RamPage::from_raw`), so an access aligned
    // to its size (at most 8) lies inside the page, and `p` is aligned as
    // `off` is; any other access is checked against the page end first.
    unsafe {
        if matches!(size, 1 | 2 | 4 | 8) && off.is_multiple_of(size) {
            return Some(load_aligned(p, size));
        }
        if off + size > PAGE_SIZE as usize {
            return None;
        }
        load_at(p, size)
    }
}

/// Store of `size` bytes at byte `off & PAGE_MASK` of a page the front TLB
/// holds (see [`page_load`]).
#[inline(always)]
pub(crate) fn page_store(page: HostPage, off: u64, size: usize, val: u64) -> Option<()> {
    let off = (off & PAGE_MASK) as usize;
    let p = page.0.as_ptr().wrapping_add(off);
    // SAFETY: as in `page_load`.
    unsafe {
        if matches!(size, 1 | 2 | 4 | 8) && off.is_multiple_of(size) {
            store_aligned(p, size, val);
            return Some(());
        }
        if off + size > PAGE_SIZE as usize {
            return None;
        }
        store_at(p, size, val)
    }
}

/// Load through an Hva (see [`resolve`]).
pub(crate) fn hva_load(hva: Hva, section: u64, size: usize) -> Option<u64> {
    let p = resolve(hva, section, size)?;
    // SAFETY: `resolve` checked the section is open (mapping alive) and the
    // access stays in the page the Hva was made for.
    unsafe { load_at(p, size) }
}

/// Store through an Hva.
pub(crate) fn hva_store(hva: Hva, section: u64, size: usize, val: u64) -> Option<()> {
    let p = resolve(hva, section, size)?;
    // SAFETY: as in `hva_load`.
    unsafe { store_at(p, size, val) }
}

/// Copy out through an Hva.
pub(crate) fn hva_read_bytes(hva: Hva, section: u64, buf: &mut [u8]) -> Option<()> {
    let p = resolve(hva, section, buf.len())?;
    // SAFETY: as in `hva_load`.
    unsafe { copy_out(p, buf) };
    Some(())
}

/// Copy in through an Hva.
pub(crate) fn hva_write_bytes(hva: Hva, section: u64, data: &[u8]) -> Option<()> {
    let p = resolve(hva, section, data.len())?;
    // SAFETY: as in `hva_load`.
    unsafe { copy_in(p, data) };
    Some(())
}

/// The global lock for split locked accesses (see the module docs).
static SPLIT_LOCK: Mutex<()> = Mutex::new(());

fn size_mask(size: usize) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// LOCK-prefixed read-modify-write through an Hva. Returns the old value.
pub(crate) fn hva_rmw(
    hva: Hva,
    section: u64,
    size: usize,
    f: &mut dyn FnMut(u64) -> Option<u64>,
) -> Option<u64> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return None;
    }
    let p = resolve(hva, section, size)?;
    let addr = p as usize;
    let mask = size_mask(size);
    // SAFETY: `resolve` checked the range is inside a
    // live page; each atomic is created only at an address aligned for it,
    // and the aligned word/block containing the access lies in the same page
    // because pages are 4 KiB aligned and words/blocks never cross them.
    // Guest code races these with accesses of other sizes (module docs,
    // "Racing accesses of different sizes").
    unsafe {
        if addr.is_multiple_of(size) {
            return Some(match size {
                1 => cas_loop8(p, f),
                2 => cas_loop16(p, f),
                4 => cas_loop32(p, f),
                _ => cas_loop64(p, f),
            });
        }
        let shift = (addr % 8) * 8;
        if addr % 8 + size <= 8 {
            // Inside one aligned 8-byte word: CAS on the word.
            let word = AtomicU64::from_ptr(p.wrapping_sub(addr % 8).cast());
            let mut cur = word.load(Ordering::Acquire);
            loop {
                let old = (cur >> shift) & mask;
                let Some(new) = f(old) else { return Some(old) };
                let merged = (cur & !(mask << shift)) | ((new & mask) << shift);
                match word.compare_exchange_weak(cur, merged, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return Some(old),
                    Err(c) => cur = c,
                }
            }
        }
        if addr % 16 + size <= 16 {
            // Inside one aligned 16-byte block: 128-bit CAS.
            let block = p.wrapping_sub(addr % 16);
            let shift = (addr % 16) * 8;
            let mask128 = u128::from(mask) << shift;
            let old_all = cas128(block, &mut |cur: u128| {
                let old = ((cur & mask128) >> shift) as u64;
                f(old).map(|new| (cur & !mask128) | ((u128::from(new & mask)) << shift))
            });
            return Some(((old_all & mask128) >> shift) as u64);
        }
        // A split lock across 16-byte blocks.
        let _g = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let old = load_at(p, size)?;
        if let Some(new) = f(old) {
            store_at(p, size, new)?;
        }
        Some(old)
    }
}

/// CMPXCHG16B-style read-modify-write of an aligned 16-byte block.
pub(crate) fn hva_rmw128(
    hva: Hva,
    section: u64,
    f: &mut dyn FnMut(u128) -> Option<u128>,
) -> Option<u128> {
    let p = resolve(hva, section, 16)?;
    if !(p as usize).is_multiple_of(16) {
        return None;
    }
    // SAFETY: checked in the live page and 16-byte aligned.
    Some(unsafe { cas128(p, f) })
}

macro_rules! cas_loop {
    ($name:ident, $atomic:ty, $t:ty) => {
        /// # Safety
        /// `p` must be aligned and inside a live page of guest RAM.
        unsafe fn $name(p: *mut u8, f: &mut dyn FnMut(u64) -> Option<u64>) -> u64 {
            // SAFETY: guaranteed by the caller. Other vCPUs may access overlapping
            // bytes with other sizes meanwhile: see the module docs, "Racing
            // accesses of different sizes", for what that relies on.
            let a = unsafe { <$atomic>::from_ptr(p.cast()) };
            let mut cur = a.load(Ordering::Acquire);
            loop {
                let Some(new) = f(u64::from(cur)) else {
                    return u64::from(cur);
                };
                match a.compare_exchange_weak(cur, new as $t, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return u64::from(cur),
                    Err(c) => cur = c,
                }
            }
        }
    };
}
cas_loop!(cas_loop8, AtomicU8, u8);
cas_loop!(cas_loop16, AtomicU16, u16);
cas_loop!(cas_loop32, AtomicU32, u32);
cas_loop!(cas_loop64, AtomicU64, u64);

/// Largest naturally aligned piece (8, 4, 2 or 1 bytes) at `addr` not longer
/// than `left`.
fn piece(addr: usize, left: usize) -> usize {
    [8, 4, 2, 1]
        .into_iter()
        .find(|&k| k <= left && addr.is_multiple_of(k))
        .unwrap_or(1)
}

/// # Safety
/// `[p, p + size)` must be inside a live page of guest RAM.
unsafe fn load_at(p: *mut u8, size: usize) -> Option<u64> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return None;
    }
    let addr = p as usize;
    // SAFETY: each atomic below is at an address aligned for its type and
    // inside the page: either the access itself or the aligned 8-byte word
    // containing it (words never cross a 4 KiB page).
    // The word access races with other vCPUs' accesses of other sizes to
    // its bytes (module docs, "Racing accesses of different sizes").
    unsafe {
        if addr.is_multiple_of(size) {
            return Some(load_aligned(p, size));
        }
        if addr % 8 + size <= 8 {
            let w = AtomicU64::from_ptr(p.wrapping_sub(addr % 8).cast()).load(Ordering::Acquire);
            return Some((w >> ((addr % 8) * 8)) & size_mask(size));
        }
        let mut v = 0u64;
        let mut done = 0;
        while done < size {
            let k = piece(addr + done, size - done);
            v |= load_aligned(p.wrapping_add(done), k) << (done * 8);
            done += k;
        }
        Some(v)
    }
}

/// # Safety
/// `p` aligned to `size` (1, 2, 4 or 8) and inside a live page.
#[inline(always)]
unsafe fn load_aligned(p: *mut u8, size: usize) -> u64 {
    // SAFETY: guaranteed by the caller. Other vCPUs may access overlapping
    // bytes with other sizes meanwhile: see the module docs, "Racing
    // accesses of different sizes", for what that relies on.
    unsafe {
        match size {
            1 => u64::from(AtomicU8::from_ptr(p).load(Ordering::Acquire)),
            2 => u64::from(AtomicU16::from_ptr(p.cast()).load(Ordering::Acquire)),
            4 => u64::from(AtomicU32::from_ptr(p.cast()).load(Ordering::Acquire)),
            _ => AtomicU64::from_ptr(p.cast()).load(Ordering::Acquire),
        }
    }
}

/// # Safety
/// `p` aligned to `size` (1, 2, 4 or 8) and inside a live page.
#[inline(always)]
unsafe fn store_aligned(p: *mut u8, size: usize, v: u64) {
    // SAFETY: guaranteed by the caller. Other vCPUs may access overlapping
    // bytes with other sizes meanwhile: see the module docs, "Racing
    // accesses of different sizes", for what that relies on.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(p).store(v as u8, Ordering::Release),
            2 => AtomicU16::from_ptr(p.cast()).store(v as u16, Ordering::Release),
            4 => AtomicU32::from_ptr(p.cast()).store(v as u32, Ordering::Release),
            _ => AtomicU64::from_ptr(p.cast()).store(v, Ordering::Release),
        }
    }
}

/// # Safety
/// `[p, p + size)` must be inside a live page of guest RAM.
unsafe fn store_at(p: *mut u8, size: usize, val: u64) -> Option<()> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return None;
    }
    let addr = p as usize;
    // SAFETY: as in `load_at`.
    unsafe {
        if addr.is_multiple_of(size) {
            store_aligned(p, size, val);
            return Some(());
        }
        if addr % 8 + size <= 8 {
            // Merge into the containing word so the store stays atomic.
            let word = AtomicU64::from_ptr(p.wrapping_sub(addr % 8).cast());
            let shift = (addr % 8) * 8;
            let mask = size_mask(size) << shift;
            let bits = (val << shift) & mask;
            let mut cur = word.load(Ordering::Relaxed);
            while let Err(c) = word.compare_exchange_weak(
                cur,
                (cur & !mask) | bits,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                cur = c;
            }
            return Some(());
        }
        let mut done = 0;
        while done < size {
            let k = piece(addr + done, size - done);
            store_aligned(p.wrapping_add(done), k, val >> (done * 8));
            done += k;
        }
        Some(())
    }
}

/// # Safety
/// `[p, p + buf.len())` must be inside a live page of guest RAM.
unsafe fn copy_out(p: *mut u8, buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let k = piece(p as usize + done, buf.len() - done);
        // SAFETY: the piece is aligned and inside the range (caller).
        let v = unsafe { load_aligned(p.wrapping_add(done), k) };
        buf[done..done + k].copy_from_slice(&v.to_le_bytes()[..k]);
        done += k;
    }
}

/// # Safety
/// `[p, p + data.len())` must be inside a live page of guest RAM.
unsafe fn copy_in(p: *mut u8, data: &[u8]) {
    let mut done = 0;
    while done < data.len() {
        let k = piece(p as usize + done, data.len() - done);
        let mut b = [0u8; 8];
        b[..k].copy_from_slice(&data[done..done + k]);
        // SAFETY: the piece is aligned and inside the range (caller).
        unsafe { store_aligned(p.wrapping_add(done), k, u64::from_le_bytes(b)) };
        done += k;
    }
}

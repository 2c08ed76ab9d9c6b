//! The guest-RAM accessors of an [`Mmu`]: every load and store the CPU
//! makes through an [`Hva`], checked against the current read section.

use super::Mmu;
use crate::mem::ram;
use crate::mem::Hva;

impl Mmu {
    /// Loads `size` (1, 2, 4, 8) bytes, Acquire. Unaligned is fine within
    /// the page. A stale or out-of-page `hva` reads 0 (and is counted in
    /// [`Mmu::refused_accesses`]).
    #[inline]
    pub fn load(&self, hva: Hva, size: usize) -> u64 {
        ram::hva_load(hva, self.section, size).unwrap_or_else(|| self.refuse(0))
    }

    /// Stores the low `size` bytes of `val`, Release. Dirty logging was done
    /// when the write was translated.
    #[inline]
    pub fn store(&self, hva: Hva, size: usize, val: u64) {
        if ram::hva_store(hva, self.section, size, val).is_none() {
            self.refuse(());
        }
    }

    /// Copies out of one page.
    pub fn load_bytes(&self, hva: Hva, buf: &mut [u8]) {
        if ram::hva_read_bytes(hva, self.section, buf).is_none() {
            buf.fill(0);
            self.refuse(());
        }
    }

    /// Copies into one page.
    pub fn store_bytes(&self, hva: Hva, data: &[u8]) {
        if ram::hva_write_bytes(hva, self.section, data).is_none() {
            self.refuse(());
        }
    }

    /// A LOCK-prefixed read-modify-write as a real host atomic: `f(old)`
    /// gives the new value, or `None` to store nothing (a failed CMPXCHG).
    /// Returns the old value. `f` may run more than once (compare-and-swap
    /// retries), so it must be pure. Accesses inside an aligned 8- or
    /// 16-byte block are truly atomic; split locks across 16-byte blocks
    /// take a global lock (see the RAM module docs).
    pub fn atomic_rmw(&self, hva: Hva, size: usize, f: &mut dyn FnMut(u64) -> Option<u64>) -> u64 {
        ram::hva_rmw(hva, self.section, size, f).unwrap_or_else(|| self.refuse(0))
    }

    /// CMPXCHG16B: a 16-byte atomic read-modify-write of an aligned block
    /// (the CPU raises #GP for a misaligned one before calling this).
    pub fn atomic_rmw128(&self, hva: Hva, f: &mut dyn FnMut(u128) -> Option<u128>) -> u128 {
        ram::hva_rmw128(hva, self.section, f).unwrap_or_else(|| self.refuse(0))
    }
}

//! 16-byte compare-and-swap (CMPXCHG16B, and locked accesses inside one
//! aligned 16-byte block), part of the guest-RAM access module (see its
//! docs for why these atomics may race with accesses of other sizes).

use core::sync::atomic::{AtomicU64, Ordering};

use super::SPLIT_LOCK;

/// 16-byte compare-and-swap loop at a 16-byte aligned `p`; returns the old
/// value.
///
/// # Safety
/// `p` must be 16-byte aligned, inside a live page of guest RAM.
pub(super) unsafe fn cas128(p: *mut u8, f: &mut dyn FnMut(u128) -> Option<u128>) -> u128 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("cmpxchg16b") {
            // SAFETY: the feature is present; the pointer contract is ours.
            return unsafe { cas128_x86(p, f) };
        }
    }
    let _g = SPLIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: caller guarantees the 16 bytes are in a live page. Accesses
    // of other sizes may race with these (see the parent module's docs).
    unsafe {
        let lo = AtomicU64::from_ptr(p.cast()).load(Ordering::Acquire);
        let hi = AtomicU64::from_ptr(p.wrapping_add(8).cast()).load(Ordering::Acquire);
        let old = u128::from(lo) | (u128::from(hi) << 64);
        if let Some(new) = f(old) {
            AtomicU64::from_ptr(p.cast()).store(new as u64, Ordering::Release);
            AtomicU64::from_ptr(p.wrapping_add(8).cast())
                .store((new >> 64) as u64, Ordering::Release);
        }
        old
    }
}

/// One `LOCK CMPXCHG16B`: returns the value found (equal to `old` on
/// success).
///
/// # Safety
/// `p` must be 16-byte aligned, inside a live page of guest RAM, and the CPU
/// must have CMPXCHG16B.
#[cfg(target_arch = "x86_64")]
unsafe fn cmpxchg16b(p: *mut u8, old: u128, new: u128) -> u128 {
    let (mut lo, mut hi) = (old as u64, (old >> 64) as u64);
    // SAFETY: the caller guarantees the address and the feature. RBX cannot
    // be named as an operand (LLVM may use it), so the low half of `new` is
    // swapped into it for the instruction and restored after; the other
    // operands are pinned to fixed registers so none of them can be RBX.
    // The compiler treats the block as an opaque access to that memory;
    // LOCK CMPXCHG16B is atomic with respect to every other access, of any
    // size, from any processor.
    unsafe {
        core::arch::asm!(
            "xchg rsi, rbx",
            "lock cmpxchg16b xmmword ptr [rdi]",
            "mov rbx, rsi",
            in("rdi") p,
            inout("rsi") new as u64 => _,
            in("rcx") (new >> 64) as u64,
            inout("rax") lo,
            inout("rdx") hi,
            options(nostack),
        );
    }
    u128::from(lo) | (u128::from(hi) << 64)
}

/// # Safety
/// As [`cmpxchg16b`].
#[cfg(target_arch = "x86_64")]
unsafe fn cas128_x86(p: *mut u8, f: &mut dyn FnMut(u128) -> Option<u128>) -> u128 {
    // SAFETY: aligned and live (caller). Accesses of other sizes may race
    // with these (see the parent module's docs). A torn first guess only
    // makes the first compare fail, which returns the real value.
    unsafe {
        let lo = AtomicU64::from_ptr(p.cast()).load(Ordering::Acquire);
        let hi = AtomicU64::from_ptr(p.wrapping_add(8).cast()).load(Ordering::Acquire);
        let mut cur = u128::from(lo) | (u128::from(hi) << 64);
        loop {
            let Some(new) = f(cur) else { return cur };
            let seen = cmpxchg16b(p, cur, new);
            if seen == cur {
                return cur;
            }
            cur = seen;
        }
    }
}

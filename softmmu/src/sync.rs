//! Synchronisation primitives, swapped for loom's model-checked versions
//! under `--cfg loom` so that the SRCU and the memslot publication can be
//! explored interleaving by interleaving.
//!
//! Guest RAM itself is never accessed through these: loom cannot model atomics
//! over foreign memory, and the RAM module uses `core` atomics directly.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// Gives the CPU (or loom's scheduler) to someone else while a writer waits.
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// Sleeps a little while a writer waits for slow readers (never under loom,
/// where time does not exist and a yield is the only way to let others run).
pub(crate) fn backoff_sleep(micros: u64) {
    #[cfg(loom)]
    {
        let _ = micros;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    std::thread::sleep(std::time::Duration::from_micros(micros));
}

/// Locks a mutex, ignoring poisoning: every structure guarded here stays
/// consistent between statements, so a panic elsewhere must not make the
/// guest memory unusable.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> impl core::ops::DerefMut<Target = T> + '_ {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

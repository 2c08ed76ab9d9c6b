//! SRCU: a sleepable read-copy-update grace period with per-reader counters.
//!
//! Readers (vCPUs) mark the span during which they may hold pointers into the
//! published memslots; a writer that has published a new copy calls
//! [`Srcu::synchronize`] to wait until every reader that might still see the
//! old copy has left. This follows the classic Linux SRCU (`srcu_read_lock`,
//! `srcu_readers_active_idx_check`, `srcu_flip`), adapted so that each reader
//! owns a *shard* of counters instead of a per-CPU slot:
//!
//! - two counter slots, selected by the low bit of `completed`;
//! - a reader reads `completed & 1` = `idx`, increments its shard's
//!   `lock_count[idx]`, then a full fence (Linux barrier B), and returns `idx`;
//!   unlocking is a full fence (C) then `unlock_count[idx] += 1`;
//! - the writer sums the *unlock* counts first, fences (A), then sums the lock
//!   counts: every unlock it sees has its lock visible too, so equal sums mean
//!   no reader of that slot is inside (a reader counted between the two reads
//!   only ever makes the lock sum larger);
//! - `synchronize` first waits for stragglers of the inactive slot (readers
//!   that read `completed` before the previous flip and incremented late),
//!   flips `completed` (fence D), then waits for the slot that was active.
//!
//! A reader that increments after the writer's check is ordered after the
//! writer's publication by the fences (the store-buffering pattern with
//! `SeqCst` fences on both sides), so it sees the new copy.
//!
//! Readers never block each other, never take a lock and never allocate: a
//! shard is written only by its owner (a plain load and store of its own
//! counter, then a fence). [`SrcuReader`] is `Send` but not `Sync`, which is
//! what makes the unshared load-and-store sound.

use crate::sync::{backoff_sleep, fence, lock, yield_now, AtomicU64, AtomicUsize, Mutex};
use std::marker::PhantomData;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

/// One reader's counters, padded so two vCPUs never share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    lock_count: [AtomicU64; 2],
    unlock_count: [AtomicU64; 2],
}

struct State {
    /// Grace periods started; its low bit selects the slot new readers use.
    completed: AtomicUsize,
    /// Registered readers. Only writers and (de)registration take this lock.
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Serialises grace periods.
    gp_lock: Mutex<()>,
}

/// The grace-period domain. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Srcu {
    state: Arc<State>,
}

impl Default for Srcu {
    fn default() -> Self {
        Self::new()
    }
}

impl Srcu {
    /// A domain with no readers.
    pub fn new() -> Self {
        Srcu {
            state: Arc::new(State {
                completed: AtomicUsize::new(0),
                shards: Mutex::new(Vec::new()),
                gp_lock: Mutex::new(()),
            }),
        }
    }

    /// Registers a reader (one per vCPU). Allocates once, here; reading never
    /// does.
    pub fn register(&self) -> SrcuReader {
        let shard = Arc::new(Shard::default());
        lock(&self.state.shards).push(shard.clone());
        SrcuReader {
            state: self.state.clone(),
            shard,
            active: None,
            _not_sync: PhantomData,
        }
    }

    /// Whether `reader` belongs to this domain.
    pub fn owns(&self, reader: &SrcuReader) -> bool {
        Arc::ptr_eq(&self.state, &reader.state)
    }

    /// Number of registered readers.
    pub fn readers(&self) -> usize {
        lock(&self.state.shards).len()
    }

    /// Waits until every read section that began before this call has ended.
    /// Sections that begin during the call are not waited for; they are
    /// guaranteed to see everything stored before the call.
    pub fn synchronize(&self) {
        let st = &*self.state;
        let _gp = lock(&st.gp_lock);
        // Order the caller's publication before our reads of the counters.
        fence(SeqCst);
        let idx = st.completed.load(Relaxed) & 1;
        // Stragglers from before the previous flip may still use idx ^ 1.
        self.wait_for_readers(idx ^ 1);
        // srcu_flip: new readers move to the other slot.
        st.completed
            .store(st.completed.load(Relaxed).wrapping_add(1), Relaxed);
        fence(SeqCst); // D
        self.wait_for_readers(idx);
        // Order the readers' critical sections before whatever the caller
        // does next (typically: free the old copy).
        fence(SeqCst);
    }

    /// Sum of unlocks, fence, sum of locks: equal means slot `idx` is empty.
    fn readers_done(&self, idx: usize) -> bool {
        let shards = lock(&self.state.shards);
        let unlocks: u64 = shards
            .iter()
            .map(|s| s.unlock_count[idx].load(Relaxed))
            .fold(0, u64::wrapping_add);
        fence(SeqCst); // A
        let locks: u64 = shards
            .iter()
            .map(|s| s.lock_count[idx].load(Relaxed))
            .fold(0, u64::wrapping_add);
        locks == unlocks
    }

    fn wait_for_readers(&self, idx: usize) {
        // Readers' sections are short (a vCPU leaves on every exit), so spin
        // first, then yield, then sleep with a growing pause.
        let mut tries = 0u32;
        let mut sleep_us = 10;
        while !self.readers_done(idx) {
            tries += 1;
            if tries < 64 {
                #[cfg(not(loom))]
                std::hint::spin_loop();
                #[cfg(loom)]
                yield_now();
            } else if tries < 128 {
                yield_now();
            } else {
                backoff_sleep(sleep_us);
                sleep_us = (sleep_us * 2).min(1000);
            }
        }
    }
}

/// One reader's handle: owns a shard of counters. `Send`, not `Sync`.
pub struct SrcuReader {
    state: Arc<State>,
    shard: Arc<Shard>,
    /// The slot of the section opened by [`SrcuReader::enter`], if any.
    active: Option<usize>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl SrcuReader {
    /// `srcu_read_lock`: opens a section and returns the slot index it uses.
    /// Sections nest.
    pub fn lock_raw(&self) -> usize {
        let idx = self.state.completed.load(Relaxed) & 1;
        let c = &self.shard.lock_count[idx];
        // Only this reader writes its shard (`SrcuReader` is not `Sync`).
        c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
        fence(SeqCst); // B: nothing of the section moves before the count.
        idx
    }

    /// `srcu_read_unlock` for a section opened with [`Self::lock_raw`].
    pub fn unlock_raw(&self, idx: usize) {
        fence(SeqCst); // C: nothing of the section moves after the count.
        let c = &self.shard.unlock_count[idx & 1];
        c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Opens a section that ends when the guard drops.
    pub fn read_lock(&self) -> SrcuReadGuard<'_> {
        SrcuReadGuard {
            reader: self,
            idx: self.lock_raw(),
        }
    }

    /// Opens the reader's long-lived section (a vCPU entering the guest).
    /// Entering while inside is a no-op.
    pub fn enter(&mut self) {
        if self.active.is_none() {
            self.active = Some(self.lock_raw());
        }
    }

    /// Closes the section opened by [`Self::enter`], if any.
    pub fn leave(&mut self) {
        if let Some(idx) = self.active.take() {
            self.unlock_raw(idx);
        }
    }

    /// Whether the long-lived section is open.
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    pub(crate) fn same_domain(&self, srcu: &Srcu) -> bool {
        Arc::ptr_eq(&self.state, &srcu.state)
    }
}

impl Drop for SrcuReader {
    fn drop(&mut self) {
        self.leave();
        // The shard is balanced now; removing it changes neither sum.
        let mut shards = lock(&self.state.shards);
        shards.retain(|s| !Arc::ptr_eq(s, &self.shard));
    }
}

/// A read section; unlocks on drop.
pub struct SrcuReadGuard<'a> {
    reader: &'a SrcuReader,
    idx: usize,
}

impl SrcuReadGuard<'_> {
    /// The counter slot this section incremented.
    pub fn idx(&self) -> usize {
        self.idx
    }
}

impl Drop for SrcuReadGuard<'_> {
    fn drop(&mut self) {
        self.reader.unlock_raw(self.idx);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64 as StdU64, Ordering};
    use std::time::Duration;

    #[test]
    fn synchronize_without_readers_returns() {
        let s = Srcu::new();
        s.synchronize();
        s.synchronize();
    }

    #[test]
    fn synchronize_waits_for_a_reader_inside() {
        let s = Srcu::new();
        let mut r = s.register();
        r.enter();
        let done = Arc::new(AtomicBool::new(false));
        let (s2, d2) = (s.clone(), done.clone());
        let t = std::thread::spawn(move || {
            s2.synchronize();
            d2.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !done.load(Ordering::SeqCst),
            "synchronize returned with a reader inside"
        );
        r.leave();
        t.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn sections_that_start_later_are_not_waited_for() {
        let s = Srcu::new();
        let mut a = s.register();
        a.enter();
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.synchronize());
        std::thread::sleep(Duration::from_millis(20));
        // A new reader entering now must not deadlock the writer once `a` leaves.
        let b = s.register();
        let g = b.read_lock();
        a.leave();
        // The writer may finish while `g` is still held if it flipped before.
        let _ = g.idx();
        drop(g);
        t.join().unwrap();
    }

    /// Real threads: readers check that a value they see inside a section is
    /// not retired (poisoned) until they leave.
    #[test]
    fn readers_never_see_a_retired_value() {
        let s = Srcu::new();
        let current = Arc::new(StdU64::new(0));
        let retired_upto = Arc::new(StdU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (s, cur, ret, stop) = (
                s.clone(),
                current.clone(),
                retired_upto.clone(),
                stop.clone(),
            );
            readers.push(std::thread::spawn(move || {
                let r = s.register();
                let mut n = 0u64;
                // At least one section per reader, however late the thread
                // gets scheduled on a loaded machine.
                loop {
                    let g = r.read_lock();
                    let v = cur.load(Ordering::SeqCst);
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                    // v may only be retired after we leave.
                    assert!(
                        ret.load(Ordering::SeqCst) <= v,
                        "value {v} retired while in use"
                    );
                    drop(g);
                    n += 1;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                n
            }));
        }
        for v in 1..=150u64 {
            current.store(v, Ordering::SeqCst);
            s.synchronize();
            // Everyone who could see v - 1 has left.
            retired_upto.store(v, Ordering::SeqCst);
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    }
}

//! Tests that need the crate's test-only hooks (`cfg(test)` items: broken
//! publication modes, a second writer that ignores the lock, pause points
//! and broken variants of the reader). Each scenario runs against the fix
//! and against the broken variant it guards against, so every test shows
//! it can fail.

#[path = "../../tests/common/mod.rs"]
mod common;

mod seed_replay;
mod stress;
mod warnings;
mod wrap;

use crate::mem::PublishMode;
use crate::{spte, Backing, Gpa, GuestMemory, MemFlags, MmuEvent};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A memslot update started on another thread, joined later.
#[derive(Clone, Default)]
struct Writer(Arc<Mutex<Option<JoinHandle<()>>>>);

impl Writer {
    /// Starts `update` on a thread and returns once `mem` shows a new
    /// generation: the update is published (odd with the fix) and waits
    /// for its grace period if a vCPU is inside its section.
    fn start_and_wait_published(
        &self,
        mem: &Arc<GuestMemory>,
        update: impl FnOnce(&GuestMemory) + Send + 'static,
    ) {
        let before = mem.generation();
        let m = mem.clone();
        let h = std::thread::spawn(move || update(&m));
        while mem.generation() == before {
            let ended = h.is_finished();
            if ended && mem.generation() == before {
                panic!("the update ended without publishing");
            }
            std::thread::yield_now();
        }
        *self.0.lock().unwrap() = Some(h);
    }

    fn is_finished(&self) -> bool {
        self.0
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|h| h.is_finished())
    }

    fn join(&self) {
        if let Some(h) = self.0.lock().unwrap().take() {
            h.join().unwrap();
        }
    }
}

/// A page that is toggled to make updates that leave everything else alone.
const SPARE: u64 = 0x80_0000;
/// The spare page's slot.
const SPARE_SLOT: u32 = 30;

/// One memslot update that changes nothing: the spare slot set again as it
/// is (its memory is kept, a new copy is published all the same).
fn idle_update(mem: &GuestMemory) {
    mem.set_user_memory_region(
        SPARE_SLOT,
        MemFlags::empty(),
        Gpa::new(SPARE),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
}

/// Idle updates (real ones, about 0.2 µs each) until the generation is
/// `target`.
fn advance_to(mem: &GuestMemory, target: u64) {
    while mem.generation() < target {
        idle_update(mem);
    }
    assert_eq!(mem.generation(), target);
}

/// Guest memory with RAM at [0, `ram`), the spare slot, and `mode`.
fn memory(ram: u64, mode: PublishMode) -> Arc<GuestMemory> {
    let mem = common::guest(ram);
    idle_update(&mem);
    mem.set_publish_mode(mode);
    mem
}

/// The generations of the MMIO sptes installed among `events`.
fn mmio_installs(events: &[MmuEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match *e {
            MmuEvent::SpteInstall { spte: s, .. } if spte::is_mmio_spte(s) => {
                Some(spte::get_mmio_spte_generation(s))
            }
            _ => None,
        })
        .collect()
}

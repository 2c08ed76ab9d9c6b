//! loom models of the SRCU grace period and of memslot publication.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p softmmu --release --lib loom`.
//! loom explores the thread interleavings (and the weak-memory outcomes it
//! models) of these small programs exhaustively, up to a preemption bound.

#![cfg(test)]

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;

use crate::mem::mapping::RcuCell;
use crate::mem::publish::{install_new, Generational, PublishMode};
use crate::spte::{get_mmio_spte_generation, make_mmio_spte, mmio_generation};
use crate::srcu::Srcu;
use crate::sync::AtomicU64;

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b
}

/// A reader that saw the old value inside its section never sees it retired
/// before it leaves.
#[test]
fn loom_srcu_waits_for_a_reader_of_the_old_value() {
    builder().check(|| {
        let srcu = Srcu::new();
        let cur = Arc::new(AtomicUsize::new(0));
        let retired = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let reader = srcu.register();
        let (c2, r2) = (cur.clone(), retired.clone());
        let t = thread::spawn(move || {
            let g = reader.read_lock();
            let v = c2.load(Acquire);
            assert!(
                !r2[v].load(Relaxed),
                "value {v} retired inside a read section"
            );
            drop(g);
        });
        cur.store(1, Release);
        srcu.synchronize();
        retired[0].store(true, Relaxed);
        t.join().unwrap();
    });
}

/// Two sections against two grace periods: the counter-slot flip and the
/// wait for stragglers of the other slot.
#[test]
fn loom_srcu_two_sections_two_grace_periods() {
    builder().check(|| {
        let srcu = Srcu::new();
        let cur = Arc::new(AtomicUsize::new(0));
        let retired = Arc::new([
            AtomicBool::new(false),
            AtomicBool::new(false),
            AtomicBool::new(false),
        ]);
        let mut reader = srcu.register();
        let (c2, r2) = (cur.clone(), retired.clone());
        let t = thread::spawn(move || {
            for _ in 0..2 {
                reader.enter();
                let v = c2.load(Acquire);
                assert!(
                    !r2[v].load(Relaxed),
                    "value {v} retired inside a read section"
                );
                reader.leave();
            }
        });
        for v in 1..=2 {
            cur.store(v, Release);
            srcu.synchronize();
            retired[v - 1].store(true, Relaxed);
        }
        t.join().unwrap();
    });
}

struct Slots {
    generation: AtomicU64,
    is_ram: bool,
    retired: AtomicBool,
}

impl Generational for Slots {
    fn generation(&self) -> &AtomicU64 {
        &self.generation
    }
}

/// The publish/lookup pair: a vCPU reads the generation then looks up the
/// gpa in the same published copy, and caches an MMIO decision with it,
/// while `install_new_memslots` turns the gpa into RAM. Whatever the
/// interleaving, an MMIO decision never matches the final generation, and
/// the copy a reader uses is not retired under it.
#[test]
fn loom_publish_lookup_never_leaves_a_matching_stale_mmio_spte() {
    builder().check(|| {
        let srcu = Srcu::new();
        let old = Arc::new(Slots {
            generation: AtomicU64::new(0),
            is_ram: false,
            retired: AtomicBool::new(false),
        });
        let cell = Arc::new(RcuCell::new(old, srcu.clone()));
        let mirror = Arc::new(AtomicU64::new(0));
        let mut reader = srcu.register();
        let c2 = cell.clone();
        let vcpu = thread::spawn(move || {
            reader.enter();
            let slots = c2.read(&reader).expect("inside a section");
            let gen = slots.generation.load(Acquire);
            let decision = slots.is_ram;
            assert!(
                !slots.retired.load(Relaxed),
                "copy retired during the section"
            );
            reader.leave();
            (gen, decision)
        });
        let current = cell.clone_current_locked();
        let new = Arc::new(Slots {
            generation: AtomicU64::new(0),
            is_ram: true,
            retired: AtomicBool::new(false),
        });
        let done = install_new(&cell, &current, new, PublishMode::Fixed, &mirror, || {});
        done.old.retired.store(true, Relaxed);
        let (gen, is_ram) = vcpu.join().unwrap();
        assert_eq!(done.new_generation, 2);
        if !is_ram {
            let spte = make_mmio_spte(0x10, 0, gen);
            assert_ne!(
                get_mmio_spte_generation(spte),
                mmio_generation(done.new_generation)
            );
        } else {
            assert_ne!(gen, 0, "RAM is only seen in the new copy");
        }
    });
}

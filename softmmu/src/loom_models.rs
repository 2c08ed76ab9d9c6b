//! loom models of the SRCU grace period and of memslot publication.
//!
//! Run with `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test
//! -p softmmu --release --lib loom` (`.ci/run` does; `--cfg loom` rebuilds
//! every crate, hence the separate target directory). loom explores the
//! thread interleavings (and the weak-memory outcomes it models) of these
//! small programs exhaustively, up to a preemption bound: 3 unless
//! `LOOM_MAX_PREEMPTIONS` says otherwise.
//!
//! The publication models run the production `install_new` and the
//! reader's half of the fix (`current_generation`, `may_cache_mmio`) in the
//! seed's reader order, and each runs against the broken scheme it guards
//! against too, which must fail (`#[should_panic]`): a model that cannot
//! tell the fix from the bug proves nothing.

#![cfg(test)]

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;

use crate::mem::mapping::RcuCell;
use crate::mem::publish::{
    current_generation, install_new, may_cache_mmio, Generational, PublishMode,
};
use crate::spte::{get_mmio_spte_generation, make_mmio_spte, mmio_generation, MMIO_GEN_MASK};
use crate::srcu::Srcu;
use crate::sync::AtomicU64;

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
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

fn slots(generation: u64, is_ram: bool) -> Arc<Slots> {
    Arc::new(Slots {
        generation: AtomicU64::new(generation),
        is_ram,
        retired: AtomicBool::new(false),
    })
}

/// One translation of a gfn by a vCPU, in the seed's reader order: decide
/// RAM or MMIO from the copy the vCPU holds, *then* read the generation of
/// the copy published now to tag the MMIO spte (none while it is odd).
/// `zap_epoch` is observed after the copy is loaded and before it is used,
/// as `Mmu::translate` does. Returns the zap epoch seen and the MMIO spte
/// made, if any.
fn translate(
    cell: &RcuCell<Slots>,
    reader: &mut crate::srcu::SrcuReader,
    zap_epoch: &AtomicUsize,
) -> (usize, Option<u64>) {
    reader.enter();
    let slots = cell.read(reader).expect("inside a section");
    let seen_zap = zap_epoch.load(Acquire);
    let is_ram = slots.is_ram;
    assert!(
        !slots.retired.load(Relaxed),
        "copy retired during the section"
    );
    let tag = current_generation(cell, reader).expect("inside a section");
    reader.leave();
    let spte = (!is_ram && may_cache_mmio(tag)).then(|| make_mmio_spte(0x10, 0, tag));
    (seen_zap, spte)
}

/// The seed's race: a vCPU translates while `install_new_memslots` turns
/// its gpa into RAM. Whatever the interleaving, an MMIO spte it made never
/// matches the final generation, and the copy it uses is not retired under
/// it.
fn publish_lookup(mode: PublishMode) {
    builder().check(move || {
        let srcu = Srcu::new();
        let cell = Arc::new(RcuCell::new(slots(0, false), srcu.clone()));
        let mirror = Arc::new(AtomicU64::new(0));
        let mut reader = srcu.register();
        let c2 = cell.clone();
        let vcpu = thread::spawn(move || translate(&c2, &mut reader, &AtomicUsize::new(0)).1);
        let current = cell.clone_current_locked();
        let done = install_new(&cell, &current, slots(0, true), mode, &mirror, || {});
        done.old.retired.store(true, Relaxed);
        assert_eq!(done.new_generation, 2);
        if let Some(spte) = vcpu.join().unwrap() {
            assert_ne!(
                get_mmio_spte_generation(spte),
                mmio_generation(done.new_generation),
                "a stale MMIO spte matches the final generation"
            );
        }
    });
}

#[test]
fn loom_seed_reader_order_never_leaves_a_matching_stale_mmio_spte() {
    publish_lookup(PublishMode::Fixed);
}

/// The pre-fix publication (final generation at once): the vCPU decides
/// from the old copy and tags with the new generation.
#[test]
#[should_panic(expected = "a stale MMIO spte matches the final generation")]
fn loom_catches_the_single_step_publication() {
    publish_lookup(PublishMode::SingleStep);
}

/// The wrap: the update from 0xffffe (stored value 0xffffe) to 0x100000
/// (stored 0) zaps every shadow page. A vCPU translating a gpa that stays
/// MMIO meanwhile, and translating again later (observing the zap epoch
/// first), must not be left holding an spte tagged 0xffffe: it would match
/// again 2^19 updates later.
fn wrap_zap(mode: PublishMode) {
    const BEFORE: u64 = MMIO_GEN_MASK - 1;
    builder().check(move || {
        let srcu = Srcu::new();
        let cell = Arc::new(RcuCell::new(slots(BEFORE, false), srcu.clone()));
        let mirror = Arc::new(AtomicU64::new(BEFORE));
        let zap_epoch = Arc::new(AtomicUsize::new(0));
        let mut reader = srcu.register();
        let (c2, z2) = (cell.clone(), zap_epoch.clone());
        let vcpu = thread::spawn(move || translate(&c2, &mut reader, &z2));
        let current = cell.clone_current_locked();
        let z3 = zap_epoch.clone();
        let done = install_new(&cell, &current, slots(0, false), mode, &mirror, move || {
            z3.fetch_add(1, Release);
        });
        assert_eq!(mmio_generation(done.new_generation), 0);
        let (seen_zap, spte) = vcpu.join().unwrap();
        let zapped = zap_epoch.load(Acquire) != seen_zap;
        if let Some(spte) = spte.filter(|_| !zapped) {
            assert_ne!(
                get_mmio_spte_generation(spte),
                BEFORE,
                "an MMIO spte of the pre-wrap generation survived the zap"
            );
        }
    });
}

#[test]
fn loom_the_wrap_zap_after_the_grace_period_leaves_no_pre_wrap_spte() {
    wrap_zap(PublishMode::Fixed);
}

/// The zap before publication: a vCPU that has seen it can still read the
/// old copy and its generation.
#[test]
#[should_panic(expected = "an MMIO spte of the pre-wrap generation survived the zap")]
fn loom_catches_the_zap_before_publication() {
    wrap_zap(PublishMode::EarlyWrapZap);
}

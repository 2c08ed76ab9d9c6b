//! The interleaving of Linux commit ee3d1570b586, replayed step by step.
//!
//! A vCPU inside its read section decides "MMIO" for a gpa using the old
//! memslots. A writer makes that gpa RAM: it publishes and then waits in
//! `synchronize` for the vCPU. The vCPU now reads the generation and tags its
//! MMIO spte with it, then leaves. Once `set_user_memory_region` returns, the
//! spte must never answer again. With the fix it carries the odd in-progress
//! generation (stored with bit 0 dropped, i.e. the old one) and misses; with
//! the pre-fix single-step publication it carries the final generation and
//! hits: the stale "MMIO" answer the seed's bug produced.

mod common;
use common::*;
use softmmu::spte::MMIO_GEN_MASK;
use softmmu::*;
use std::sync::Arc;
use std::time::Duration;

const GVA: u64 = 0x4000_0000;
const GPA: u64 = 0x20_0000;

struct Outcome {
    answer: Translation,
    events: Vec<MmuEvent>,
    tagged_with: u64,
    before: u64,
}

fn replay(mode: PublishMode) -> Outcome {
    let mem = guest(0x10_0000);
    mem.set_publish_mode_for_test(mode);
    let mut t = Tables::new(&mem, 0x1000);
    t.map(GVA, GPA, RW | US);
    let ctx = t.ctx();
    let mut mmu = Mmu::new(mem.clone());
    let rec = Arc::new(Recorder::default());
    mmu.set_sink(Some(rec.clone()));

    // 1. The vCPU, inside its section, decides from the old copy: MMIO.
    mmu.enter();
    assert!(!mmu.lookup_is_ram_for_test(Gpa::new(GPA)));
    let before = mem.generation();

    // 2. The update publishes and waits for the vCPU.
    let m2 = mem.clone();
    let writer = std::thread::spawn(move || {
        m2.set_user_memory_region(
            1,
            MemFlags::empty(),
            Gpa::new(GPA),
            0x1000,
            Backing::Anonymous,
        )
        .unwrap()
    });
    while mem.generation() == before {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !writer.is_finished(),
        "the writer must be waiting for the vCPU's section"
    );

    // 3. The vCPU tags its decision with the generation it reads now.
    let tagged_with = mem.generation();
    mmu.cache_mmio_for_test(&ctx, Gva::new(GVA), Gpa::new(GPA), tagged_with);
    mmu.leave();
    writer.join().unwrap();

    // 4. After install_new_memslots returned: the spte must not answer.
    rec.take();
    let answer = mmu.translate(&ctx, Gva::new(GVA + 8), READ).unwrap();
    Outcome {
        answer,
        events: rec.take(),
        tagged_with,
        before,
    }
}

#[test]
fn fixed_publication_never_hits_the_stale_spte() {
    let o = replay(PublishMode::Fixed);
    assert_eq!(
        o.tagged_with,
        o.before + 1,
        "the vCPU saw the odd in-progress generation"
    );
    assert!(
        matches!(o.answer, Translation::Ram { gpa, .. } if gpa == Gpa::new(GPA + 8)),
        "{:?}",
        o.answer
    );
    let miss = o.events.iter().find_map(|e| match *e {
        MmuEvent::MmioGenerationMiss {
            spte_gen,
            current_gen,
            ..
        } => Some((spte_gen, current_gen)),
        _ => None,
    });
    assert_eq!(
        miss,
        Some((o.before, o.before + 2)),
        "events: {:#?}",
        o.events
    );
    assert!(!o
        .events
        .iter()
        .any(|e| matches!(e, MmuEvent::MmioSpteHit { .. })));
}

/// The same replay against the pre-fix publication: the test sees the stale
/// hit, so it can fail.
#[test]
fn single_step_publication_is_caught_serving_a_stale_mmio_answer() {
    let o = replay(PublishMode::SingleStepForTest);
    assert_eq!(o.tagged_with, o.before + 2);
    assert_eq!(
        o.answer,
        Translation::Mmio {
            gpa: Gpa::new(GPA + 8)
        },
        "the stale spte answered"
    );
    assert!(o
        .events
        .iter()
        .any(|e| matches!(e, MmuEvent::MmioSpteHit { .. })));
}

fn wraparound(mode: PublishMode) -> (Translation, Vec<MmuEvent>, Vec<MmuEvent>) {
    let mem = guest(0x10_0000);
    mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(GPA),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    mem.set_publish_mode_for_test(mode);
    let mem_events = Arc::new(Recorder::default());
    mem.set_sink(Some(mem_events.clone()));
    let mut t = Tables::new(&mem, 0x1000);
    t.map(GVA, GPA, RW | US);
    let ctx = t.ctx();
    // The next update ends on a generation whose MMIO part is 0.
    mem.set_generation_for_test(MMIO_GEN_MASK + 1 - 2);
    let mut mmu = Mmu::new(mem.clone());
    let rec = Arc::new(Recorder::default());
    mmu.set_sink(Some(rec.clone()));
    // An MMIO spte from a full cycle ago, tagged 0 (the gpa was MMIO then).
    mmu.cache_mmio_for_test(&ctx, Gva::new(GVA), Gpa::new(GPA), 0);
    mmu.leave();
    mem.set_user_memory_region(
        2,
        MemFlags::empty(),
        Gpa::new(0x80_0000),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    assert_eq!(mem.generation() & MMIO_GEN_MASK, 0);
    let answer = mmu.translate(&ctx, Gva::new(GVA), READ).unwrap();
    (answer, rec.take(), mem_events.take())
}

#[test]
fn generation_wraparound_zaps_before_publishing() {
    let (answer, events, mem_events) = wraparound(PublishMode::Fixed);
    assert!(matches!(answer, Translation::Ram { .. }), "{answer:?}");
    assert!(events.contains(&MmuEvent::Zap {
        reason: ZapReason::GenerationWrap
    }));
    // The memory side announced the zap before the install.
    let zap = mem_events
        .iter()
        .position(|e| matches!(e, MmuEvent::Zap { .. }));
    let install = mem_events
        .iter()
        .position(|e| matches!(e, MmuEvent::MemslotInstall { .. }));
    assert!(zap.is_some() && zap < install, "{mem_events:?}");
}

#[test]
fn without_the_wraparound_zap_the_old_spte_matches_again() {
    let (answer, _, _) = wraparound(PublishMode::NoWrapZapForTest);
    assert_eq!(answer, Translation::Mmio { gpa: Gpa::new(GPA) });
}

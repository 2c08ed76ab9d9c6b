//! The interleaving of Linux commit ee3d1570b586, replayed step by step
//! through the real translation path.
//!
//! A vCPU inside its read section looks a gpa up in the memslots it holds:
//! no slot, MMIO. Before it reads the generation to tag its MMIO spte, a
//! writer makes that gpa RAM: it publishes and then waits in `synchronize`
//! for the vCPU. The vCPU now reads the generation and leaves. Once
//! `set_user_memory_region` returns, no stale answer may come back. With
//! the fix the vCPU read the odd in-progress generation and cached nothing;
//! with the pre-fix single-step publication it read the final generation,
//! cached "MMIO" under it, and that spte answers for RAM.

use super::common::*;
use super::{memory, mmio_installs, Writer};
use crate::mem::PublishMode;
use crate::mmu::test_hooks::Pause;
use crate::*;
use std::sync::Arc;
use std::time::Duration;

const GVA: u64 = 0x4000_0000;
const GPA: u64 = 0x20_0000;

struct Outcome {
    during: Translation,
    during_events: Vec<MmuEvent>,
    answer: Translation,
    events: Vec<MmuEvent>,
    before: u64,
}

fn replay(mode: PublishMode) -> Outcome {
    let mem = memory(0x10_0000, mode);
    let mut t = Tables::new(&mem, 0x1000);
    t.map(GVA, GPA, RW | US);
    let ctx = t.ctx();
    let mut mmu = Mmu::new(mem.clone());
    let rec = Arc::new(Recorder::default());
    mmu.set_sink(Some(rec.clone()));
    let before = mem.generation();

    // 1. The vCPU looks the gpa up in its copy: MMIO. Then, before it reads
    //    the generation to tag that decision:
    // 2. the update publishes and waits for the vCPU.
    let writer = Writer::default();
    let (w, m) = (writer.clone(), mem.clone());
    mmu.hooks().pause = Some((
        Pause::BeforeTag,
        Box::new(move || {
            w.start_and_wait_published(&m, |mem| {
                mem.set_user_memory_region(
                    1,
                    MemFlags::empty(),
                    Gpa::new(GPA),
                    0x1000,
                    Backing::Anonymous,
                )
                .unwrap()
            });
            std::thread::sleep(Duration::from_millis(20));
            assert!(!w.is_finished(), "the writer waits for the vCPU");
        }),
    ));
    mmu.enter();
    // 3. The vCPU reads the generation and tags (or not), then leaves.
    let during = mmu.translate(&ctx, Gva::new(GVA), READ).unwrap();
    let during_events = rec.take();
    mmu.leave();
    writer.join();

    // 4. After install_new_memslots returned: no stale answer.
    let answer = mmu.translate(&ctx, Gva::new(GVA + 8), READ).unwrap();
    Outcome {
        during,
        during_events,
        answer,
        events: rec.take(),
        before,
    }
}

#[test]
fn fixed_publication_never_serves_the_stale_answer() {
    let o = replay(PublishMode::Fixed);
    // The vCPU answered MMIO (right for its copy) without caching it: the
    // generation it read was the odd in-progress one.
    assert_eq!(o.during, Translation::Mmio { gpa: Gpa::new(GPA) });
    assert!(
        o.during_events.contains(&MmuEvent::MmioNotCached {
            gva: Gva::new(GVA),
            generation: o.before + 1,
        }),
        "{:#?}",
        o.during_events
    );
    assert_eq!(mmio_installs(&o.during_events), Vec::<u64>::new());
    assert!(
        matches!(o.answer, Translation::Ram { gpa, .. } if gpa == Gpa::new(GPA + 8)),
        "{:?}",
        o.answer
    );
    assert!(!o
        .events
        .iter()
        .any(|e| matches!(e, MmuEvent::MmioSpteHit { .. })));
}

/// The same replay against the pre-fix publication: the stale spte is
/// made and answers, so the test above can fail.
#[test]
fn single_step_publication_is_caught_serving_a_stale_mmio_answer() {
    let o = replay(PublishMode::SingleStep);
    assert_eq!(mmio_installs(&o.during_events), vec![o.before + 2]);
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

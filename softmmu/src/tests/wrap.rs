//! The MMIO generation's wraparound, replayed with real updates.
//!
//! An MMIO spte stores generation bits 1..=19, so the stored value of an
//! even generation comes back 2^19 updates later. Each scenario below lets
//! a vCPU meet the update whose generation wraps (0xffffe -> 0x100000,
//! stored 0) in one particular way, then leaves that vCPU idle for
//! 2^19 - 2 further updates (the generation reaches 0x1ffffc), and finally
//! makes the gpa RAM: that update ends on 0x1ffffe, whose stored value is
//! 0xffffe again. An spte made from the old copy or during the wrapping
//! update and still cached would now match and answer "MMIO" for RAM.
//!
//! The updates are real `set_user_memory_region` calls (about a million in
//! all, a fraction of a second in a release build): nothing moves the
//! generation but updates, so none of these tests needs to touch it.
//!
//! Each scenario also runs against the broken variant it guards against,
//! which must be caught.

use super::common::*;
use super::{advance_to, idle_update, memory, mmio_installs, Writer};
use crate::mem::PublishMode;
use crate::mmu::test_hooks::Pause;
use crate::spte::MMIO_GEN_MASK;
use crate::*;
use std::sync::{Arc, Mutex};

const GVA: u64 = 0x4000_0000;
/// In no slot until the last update.
const GPA: u64 = 0x20_0000;
/// The generation before the wrapping update.
const BEFORE_WRAP: u64 = MMIO_GEN_MASK - 1;
/// The generation before the update that brings the stored value of
/// `BEFORE_WRAP` back.
const BEFORE_REPLAY: u64 = BEFORE_WRAP + MMIO_GEN_MASK - 1;

/// A guest where GVA maps to GPA (not RAM), the generation just below the
/// wrap, and a vCPU with an event recorder.
struct Setup {
    mem: Arc<GuestMemory>,
    ctx: PagingCtx,
    mmu: Mmu,
    rec: Arc<Recorder>,
}

fn setup(mode: PublishMode) -> Setup {
    let mem = memory(0x10_0000, mode);
    let mut t = Tables::new(&mem, 0x1000);
    t.map(GVA, GPA, RW | US);
    let ctx = t.ctx();
    advance_to(&mem, BEFORE_WRAP);
    let mut mmu = Mmu::new(mem.clone());
    let rec = Arc::new(Recorder::default());
    mmu.set_sink(Some(rec.clone()));
    Setup { mem, ctx, mmu, rec }
}

impl Setup {
    /// After the wrapping update: 2^19 - 2 idle updates with the vCPU out
    /// of the guest, then GPA becomes RAM. What does the vCPU answer now?
    fn replay(mut self) -> Translation {
        assert_eq!(self.mem.generation() & MMIO_GEN_MASK, 0, "wrapped");
        advance_to(&self.mem, BEFORE_REPLAY);
        self.mem
            .set_user_memory_region(
                1,
                MemFlags::empty(),
                Gpa::new(GPA),
                0x1000,
                Backing::Anonymous,
            )
            .unwrap();
        assert_eq!(self.mem.generation() & MMIO_GEN_MASK, BEFORE_WRAP);
        self.mmu.translate(&self.ctx, Gva::new(GVA), READ).unwrap()
    }
}

fn is_ram(t: Translation) -> bool {
    matches!(t, Translation::Ram { gpa, .. } if gpa == Gpa::new(GPA))
}

/// Scenario 1: a vCPU that entered before the wrapping update translates
/// while the update waits for it (generation odd, 0xfffff).
fn odd_attempt(mode: PublishMode, cache_while_odd: bool) -> (Vec<MmuEvent>, Translation) {
    let mut s = setup(mode);
    s.mmu.hooks().cache_while_odd = cache_while_odd;
    s.mmu.enter();
    let writer = Writer::default();
    writer.start_and_wait_published(&s.mem, idle_update);
    let during = s.mmu.translate(&s.ctx, Gva::new(GVA), READ).unwrap();
    assert_eq!(during, Translation::Mmio { gpa: Gpa::new(GPA) });
    let events = s.rec.take();
    s.mmu.leave();
    writer.join();
    (events, s.replay())
}

#[test]
fn no_mmio_spte_is_made_while_the_generation_is_odd() {
    let (events, after) = odd_attempt(PublishMode::Fixed, false);
    assert_eq!(mmio_installs(&events), Vec::<u64>::new());
    assert!(
        events.contains(&MmuEvent::MmioNotCached {
            gva: Gva::new(GVA),
            generation: BEFORE_WRAP + 1
        }),
        "{events:#?}"
    );
    assert!(is_ram(after), "{after:?}");
}

/// softvm before the fix: sptes tagged with the odd generation (stored as
/// 0xffffe) and the zap before publication, which this vCPU had already
/// seen when it made the spte. It answers "MMIO" for RAM a cycle later.
#[test]
fn caching_while_odd_with_the_early_zap_is_caught() {
    let (events, after) = odd_attempt(PublishMode::EarlyWrapZap, true);
    assert_eq!(mmio_installs(&events), vec![BEFORE_WRAP]);
    assert_eq!(after, Translation::Mmio { gpa: Gpa::new(GPA) });
    // With the zap after the grace period the spte is zapped in time, but
    // the first test still catches its creation.
    let (events, after) = odd_attempt(PublishMode::Fixed, true);
    assert_eq!(mmio_installs(&events), vec![BEFORE_WRAP]);
    assert!(is_ram(after), "{after:?}");
}

/// Scenario 2: the vCPU read the generation (0xffffe, even) before the
/// wrapping update was published, and installs its spte from the old copy
/// while the update waits for it. Only a zap after the grace period
/// removes it.
fn old_copy_in_grace_period(mode: PublishMode) -> (Vec<MmuEvent>, Translation) {
    let mut s = setup(mode);
    let mem_events = Arc::new(Recorder::default());
    s.mem.set_sink(Some(mem_events.clone()));
    let writer = Writer::default();
    let (w, m) = (writer.clone(), s.mem.clone());
    s.mmu.hooks().pause = Some((
        Pause::BeforeInstall,
        Box::new(move || w.start_and_wait_published(&m, idle_update)),
    ));
    s.mmu.enter();
    let during = s.mmu.translate(&s.ctx, Gva::new(GVA), READ).unwrap();
    assert_eq!(during, Translation::Mmio { gpa: Gpa::new(GPA) });
    assert_eq!(mmio_installs(&s.rec.take()), vec![BEFORE_WRAP]);
    // The update is still in its grace period (this vCPU is inside).
    let in_grace = mem_events.take();
    s.mmu.leave();
    writer.join();
    (in_grace, s.replay())
}

#[test]
fn an_spte_from_the_old_copy_made_in_the_grace_period_is_zapped() {
    let (in_grace, after) = old_copy_in_grace_period(PublishMode::Fixed);
    assert!(
        !in_grace.iter().any(|e| matches!(e, MmuEvent::Zap { .. })),
        "the zap waits for the grace period: {in_grace:?}"
    );
    assert!(is_ram(after), "{after:?}");
}

#[test]
fn without_the_wrap_zap_the_old_spte_is_caught_matching_again() {
    let (_, after) = old_copy_in_grace_period(PublishMode::NoWrapZap);
    assert_eq!(after, Translation::Mmio { gpa: Gpa::new(GPA) });
    // The early zap is announced before the grace period.
    let (in_grace, _) = old_copy_in_grace_period(PublishMode::EarlyWrapZap);
    assert!(in_grace.contains(&MmuEvent::Zap {
        reason: ZapReason::GenerationWrap
    }));
}

/// Runs a vCPU's translation at the moment the wrap zap is announced.
struct TranslateAtZap {
    vcpu: Mutex<Option<(Mmu, PagingCtx)>>,
    answers: Mutex<Vec<Translation>>,
}

impl MmuSink for TranslateAtZap {
    fn event(&self, ev: &MmuEvent) {
        if !matches!(ev, MmuEvent::Zap { .. }) {
            return;
        }
        if let Some((mmu, ctx)) = self.vcpu.lock().unwrap().as_mut() {
            self.answers
                .lock()
                .unwrap()
                .push(mmu.translate(ctx, Gva::new(GVA), READ).unwrap());
            mmu.leave();
        }
    }
}

/// Scenario 3: a vCPU translates right when the writer zaps. With the zap
/// before publication it has seen the zap, reads the old copy and its
/// generation (0xffffe), and keeps that spte: "created from the old copy
/// after the zap".
fn translate_at_zap(mode: PublishMode) -> (Vec<u64>, Translation) {
    let mut s = setup(mode);
    let sink = Arc::new(TranslateAtZap {
        vcpu: Mutex::new(Some((s.mmu, s.ctx))),
        answers: Mutex::new(Vec::new()),
    });
    s.mem.set_sink(Some(sink.clone()));
    idle_update(&s.mem);
    s.mem.set_sink(None);
    let answers = std::mem::take(&mut *sink.answers.lock().unwrap());
    assert_eq!(answers, vec![Translation::Mmio { gpa: Gpa::new(GPA) }]);
    let Some((mmu, _)) = sink.vcpu.lock().unwrap().take() else {
        unreachable!("the vCPU is put back by nobody else")
    };
    s.mmu = mmu;
    let installed = mmio_installs(&s.rec.take());
    (installed, s.replay())
}

#[test]
fn a_vcpu_translating_at_the_zap_sees_the_new_generation() {
    let (installed, after) = translate_at_zap(PublishMode::Fixed);
    assert_eq!(installed, vec![0], "tagged with the wrapped generation");
    assert!(is_ram(after), "{after:?}");
}

#[test]
fn the_zap_before_publication_is_caught_being_outrun() {
    let (installed, after) = translate_at_zap(PublishMode::EarlyWrapZap);
    assert_eq!(installed, vec![BEFORE_WRAP]);
    assert_eq!(after, Translation::Mmio { gpa: Gpa::new(GPA) });
}

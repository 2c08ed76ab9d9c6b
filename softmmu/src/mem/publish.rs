//! `install_new_memslots`: publishing a new memslots copy, as the seed's fix
//! (Linux ee3d1570b586) does it.
//!
//! 1. If the generation the update will end on wraps the MMIO generation to
//!    0, every shadow page is zapped *first*: a vCPU must not be able to see
//!    the new generation while an spte tagged 0 a full cycle ago survives.
//! 2. The new copy gets `old + 1`: odd, "update in progress". MMIO sptes made
//!    now drop bit 0 and so carry `old`, which will never be current again;
//!    and the current generation, odd, matches no stored one.
//! 3. The copy is published and the SRCU grace period waits for every reader
//!    that may have looked at the old copy.
//! 4. The new copy's generation becomes `old + 2`, even again.
//! 5. Only now is the old copy released (its mappings unmapped if no longer
//!    shared).
//!
//! The code is generic over the published type so that the loom model checks
//! this very function.

use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;

use super::mapping::RcuCell;
use crate::spte::mmio_generation;
use crate::sync::AtomicU64;

/// How to publish: the fix, or (for tests that must be able to fail) the
/// broken variants it replaced.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PublishMode {
    /// The seed's fix: odd while in progress, even after the grace period.
    #[default]
    Fixed,
    /// Test only: the pre-fix scheme, one step (of 2, so that the stored
    /// layout's dropped bit 0 stays meaningless) at publication and nothing
    /// after the grace period. A vCPU that decided "MMIO" from the old copy
    /// can tag its spte with the final generation.
    SingleStepForTest,
    /// Test only: skip the zap on generation wraparound.
    NoWrapZapForTest,
}

/// Something published with a generation number.
pub(crate) trait Generational {
    fn generation(&self) -> &AtomicU64;
}

/// What an installation did.
pub(crate) struct Installed<T> {
    /// The copy no reader can see any more.
    pub(crate) old: Arc<T>,
    pub(crate) old_generation: u64,
    pub(crate) new_generation: u64,
    /// The old generation was odd: an update was interleaved with ours, which
    /// the writers' lock should make impossible (KVM's WARN_ON).
    pub(crate) warned_odd: bool,
}

/// Publishes `new` in place of the current copy. Writers must be serialised
/// by the caller. `mirror` receives every generation the current copy takes;
/// `zap_all` is called before publication when the MMIO generation wraps.
pub(crate) fn install_new<T: Generational>(
    cell: &RcuCell<T>,
    current: &T,
    new: Arc<T>,
    mode: PublishMode,
    mirror: &AtomicU64,
    zap_all: impl FnOnce(),
) -> Installed<T> {
    let old_generation = current.generation().load(Acquire);
    let warned_odd = old_generation & 1 != 0 && mode != PublishMode::SingleStepForTest;
    let new_generation = old_generation.wrapping_add(2);
    if mmio_generation(new_generation) == 0 && mode != PublishMode::NoWrapZapForTest {
        zap_all();
    }
    let published = match mode {
        PublishMode::SingleStepForTest => new_generation,
        _ => old_generation.wrapping_add(1),
    };
    new.generation().store(published, Release);
    let keep = new.clone();
    let old = cell.replace_with(new, || mirror.store(published, Release));
    keep.generation().store(new_generation, Release);
    mirror.store(new_generation, Release);
    Installed {
        old,
        old_generation,
        new_generation,
        warned_odd,
    }
}

//! `install_new_memslots`: publishing a new memslots copy, as the seed's fix
//! (Linux ee3d1570b586) does it, and the reader's half of the same fix.
//!
//! Writer ([`install_new`]), with the writers' lock held:
//!
//! 1. The new copy gets `old + 1`: odd, "update in progress". (Should `old`
//!    itself be odd, which only an unserialised second writer can cause, the
//!    update is counted as KVM's `WARN_ON` would and the copy gets the next
//!    odd value, so the rules below still hold.)
//! 2. The copy is published and the SRCU grace period waits for every reader
//!    that may have looked at the old copy.
//! 3. The new copy's generation becomes `old + 2`, even again.
//! 4. Only now, if the MMIO part of the generation wrapped to 0, are all
//!    shadow pages zapped (the seed's `kvm_arch_memslots_updated`): a vCPU
//!    that decided "MMIO" from the old copy may have cached that decision
//!    until the grace period ended, so a zap before it could be outrun.
//! 5. The old copy is returned; the caller releases it (its mappings are
//!    unmapped if no longer shared).
//!
//! Reader ([`current_generation`], [`may_cache_mmio`]), inside its read
//! section: the vCPU decides "this gfn is MMIO" from the copy it holds, and
//! *then* reads the generation of the copy published now to tag the MMIO
//! spte with. An odd generation means an update is in flight: no spte is
//! made and the access is answered as MMIO this once.
//!
//! Generations are `u64` and only ever grow (by one or two per step). At
//! one update per nanosecond they would wrap after 292 years; the additions
//! are checked anyway, because the front TLB and the MMIO sptes are only
//! valid while a generation value is never seen twice.
//!
//! The code is generic over the published type so that the loom models in
//! `loom_models.rs` check these very functions.

use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;

use super::mapping::RcuCell;
use crate::spte::MMIO_GEN_SHIFT;
use crate::srcu::SrcuReader;
use crate::sync::AtomicU64;

/// How to publish. Only [`PublishMode::Fixed`] exists outside this crate's
/// own tests; the other variants are the broken schemes the fix replaced,
/// kept so that tests and loom models can show they would catch them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum PublishMode {
    /// The seed's fix: odd while in progress, even after the grace period,
    /// the wrap zap after the grace period.
    #[default]
    Fixed,
    /// The pre-fix scheme: the final generation (old + 2, so that the stored
    /// layout's dropped bit 0 stays meaningless) at publication, nothing
    /// after the grace period. A vCPU that decided "MMIO" from the old copy
    /// can tag its spte with the final generation.
    #[cfg(test)]
    SingleStep,
    /// The wrap zap before publication (softvm before issue 15).
    #[cfg(test)]
    EarlyWrapZap,
    /// No zap when the MMIO generation wraps.
    #[cfg(test)]
    #[cfg_attr(loom, allow(dead_code))]
    NoWrapZap,
}

/// What a [`PublishMode`] does differently from the fix.
struct Plan {
    /// Publish the final generation at once (no odd phase).
    single_step: bool,
    /// Zap on a wrap before publishing.
    zap_early: bool,
    /// Zap on a wrap after the grace period.
    zap_late: bool,
}

impl PublishMode {
    fn plan(self) -> Plan {
        let fixed = Plan {
            single_step: false,
            zap_early: false,
            zap_late: true,
        };
        match self {
            PublishMode::Fixed => fixed,
            #[cfg(test)]
            PublishMode::SingleStep => Plan {
                single_step: true,
                ..fixed
            },
            #[cfg(test)]
            PublishMode::EarlyWrapZap => Plan {
                zap_early: true,
                zap_late: false,
                ..fixed
            },
            #[cfg(test)]
            PublishMode::NoWrapZap => Plan {
                zap_late: false,
                ..fixed
            },
        }
    }
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

/// The generations an update from `old` goes through: (published while in
/// progress, final). `None` only after 2^63 updates (see the module docs).
fn next_generations(old: u64) -> Option<(u64, u64)> {
    let in_progress = (old | 1).checked_add(if old & 1 == 0 { 0 } else { 2 })?;
    Some((in_progress, in_progress.checked_add(1)?))
}

/// Whether an update from `old` to `new` wrapped the MMIO generation (the
/// low [`MMIO_GEN_SHIFT`] bits) through 0.
fn mmio_wrapped(old: u64, new: u64) -> bool {
    old >> MMIO_GEN_SHIFT != new >> MMIO_GEN_SHIFT
}

/// Publishes `new` in place of the current copy. Writers must be serialised
/// by the caller. `mirror` receives every generation the current copy takes;
/// `zap_all` is called after the grace period when the MMIO generation
/// wraps.
///
/// # Panics
/// If the generation would overflow `u64` (never in practice: see the
/// module docs). Nothing has been published then.
pub(crate) fn install_new<T: Generational>(
    cell: &RcuCell<T>,
    current: &T,
    new: Arc<T>,
    mode: PublishMode,
    mirror: &AtomicU64,
    zap_all: impl FnOnce(),
) -> Installed<T> {
    let old_generation = current.generation().load(Acquire);
    let warned_odd = old_generation & 1 != 0;
    let (in_progress, new_generation) =
        next_generations(old_generation).expect("memslot generation overflow");
    let wrapped = mmio_wrapped(old_generation, new_generation);
    let plan = mode.plan();
    let published = if plan.single_step {
        new_generation
    } else {
        in_progress
    };
    let mut zap_all = Some(zap_all);
    if let Some(zap) = zap_all.take_if(|_| wrapped && plan.zap_early) {
        zap();
    }
    new.generation().store(published, Release);
    let keep = new.clone();
    let old = cell.replace_with(new, || {
        mirror.fetch_max(published, Release);
    });
    keep.generation().store(new_generation, Release);
    mirror.fetch_max(new_generation, Release);
    if let Some(zap) = zap_all.take_if(|_| wrapped && plan.zap_late) {
        zap();
    }
    Installed {
        old,
        old_generation,
        new_generation,
        warned_odd,
    }
}

/// The reader's half: the generation of the copy published now, read after
/// the memslot lookup (inside the same read section) to tag an MMIO spte
/// with. `None` outside a read section.
pub(crate) fn current_generation<T: Generational>(
    cell: &RcuCell<T>,
    reader: &SrcuReader,
) -> Option<u64> {
    Some(cell.read(reader)?.generation().load(Acquire))
}

/// Whether an MMIO spte may be tagged with `generation`: not while an
/// update is in flight (odd). Bit 0 is not stored, so an odd tag would read
/// back as the generation before the update, which comes back (and then
/// matches) 2^19 updates later if the spte outlives the wrap zap.
pub(crate) const fn may_cache_mmio(generation: u64) -> bool {
    generation & 1 == 0
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn an_update_goes_odd_then_even_and_never_back() {
        assert_eq!(next_generations(0), Some((1, 2)));
        assert_eq!(next_generations(8), Some((9, 10)));
        // From an odd generation (a WARN): the next odd one, then even.
        assert_eq!(next_generations(9), Some((11, 12)));
        assert_eq!(
            next_generations(u64::MAX - 3),
            Some((u64::MAX - 2, u64::MAX - 1))
        );
        assert_eq!(next_generations(u64::MAX - 2), None);
        assert_eq!(next_generations(u64::MAX - 1), None);
        assert_eq!(next_generations(u64::MAX), None);
    }

    #[test]
    fn the_wrap_is_the_step_onto_a_multiple_of_2_pow_20() {
        let g = (1u64 << MMIO_GEN_SHIFT) - 2;
        assert!(mmio_wrapped(g, g + 2));
        assert!(!mmio_wrapped(g - 2, g));
        assert!(!mmio_wrapped(g + 2, g + 4));
        assert!(may_cache_mmio(g) && !may_cache_mmio(g + 1));
    }
}

//! Ways for this crate's own tests to stop a translation at a chosen point
//! of the reader's half of the seed's fix, or to break that half. Compiled
//! only under `cfg(test)`: no build another crate can link contains them.
#![cfg_attr(loom, allow(dead_code))]

use super::Mmu;

/// Points of a translation that found no memslot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pause {
    /// After the memslot lookup, before the generation is read for the tag.
    BeforeTag,
    /// After the tag was read (and allowed), before the spte is installed.
    BeforeInstall,
}

/// What a test asked for.
#[derive(Default)]
pub(crate) struct ReaderHooks {
    /// Run once, on this vCPU's thread, when a translation reaches the point.
    pub(crate) pause: Option<(Pause, Box<dyn FnOnce() + Send>)>,
    /// The broken reader: tag MMIO sptes even with an odd generation.
    pub(crate) cache_while_odd: bool,
    /// Yield the thread between the lookup and the tag read, widening the
    /// seed's race window for the stress tests.
    pub(crate) yield_before_tag: bool,
}

impl ReaderHooks {
    pub(super) fn at(&mut self, point: Pause) {
        if point == Pause::BeforeTag && self.yield_before_tag {
            std::thread::yield_now();
        }
        if self.pause.as_ref().is_some_and(|(p, _)| *p == point) {
            if let Some((_, f)) = self.pause.take() {
                f();
            }
        }
    }
}

impl Mmu {
    pub(crate) fn hooks(&mut self) -> &mut ReaderHooks {
        &mut self.st.hooks
    }
}

//! Read-section ids: what makes a stale [`crate::Hva`] harmless.
//!
//! An `Hva` carries the id of the read section it was made in, and an
//! [`Mmu`](super::Mmu) refuses one whose id is not that of its open
//! section. That is only sound if an id is never issued twice in the life
//! of the process, by any MMU: an `Hva` can be sent to another thread and
//! presented to another vCPU's MMU, and the mapping it points into may be
//! gone once its own section ended.
//!
//! Ids come from one process-wide 64-bit counter, handed out in blocks of
//! 2^20 so that vCPUs touch the shared counter once per million sections
//! instead of on every entry. Block 0 is never handed out, so no id is 0
//! (0 means "no section"). The counter cannot wrap in practice: 2^64 ids
//! last 584 years at one section per nanosecond, far beyond what a vCPU
//! does (it leaves its section on exits, halts and periodically). It is
//! checked anyway: exhausting it panics rather than reuse an id.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// log2 of the ids in a block.
const BLOCK_BITS: u32 = 20;

/// The next block to hand out (block `b` holds ids `b << BLOCK_BITS ..`).
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

/// One MMU's supply of section ids.
pub(super) struct SectionIds {
    next: u64,
    /// One past the last id of the current block (0: no block yet).
    end: u64,
}

impl SectionIds {
    pub(super) const fn new() -> Self {
        SectionIds { next: 0, end: 0 }
    }

    /// A fresh, never-issued, non-zero id.
    ///
    /// # Panics
    /// After 2^64 - 2^21 ids in the whole process (see the module docs).
    pub(super) fn next(&mut self) -> u64 {
        self.next_from(&NEXT_BLOCK)
    }

    /// [`SectionIds::next`] with blocks from `blocks`.
    fn next_from(&mut self, blocks: &AtomicU64) -> u64 {
        if self.next == self.end {
            let block = blocks
                .fetch_update(Relaxed, Relaxed, |b| b.checked_add(1))
                .ok()
                .filter(|&b| b < LAST_BLOCK)
                .expect("read-section ids exhausted");
            self.next = block << BLOCK_BITS;
            // Cannot overflow: block < LAST_BLOCK.
            self.end = self.next + (1 << BLOCK_BITS);
        }
        let id = self.next;
        self.next += 1;
        id
    }
}

/// One past the last block handed out: its ids would need bit 64. (The
/// block below it is the last one; its ids end at `u64::MAX - 2^20 + 1`,
/// wasting one block to keep the arithmetic unchecked-safe.)
const LAST_BLOCK: u64 = (1 << (64 - BLOCK_BITS)) - 1;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_across_mmus_and_blocks() {
        let mut a = SectionIds::new();
        let mut b = SectionIds::new();
        let mut seen = HashSet::new();
        // More than a block for `a`, interleaved with `b`.
        for i in 0..(1u64 << BLOCK_BITS) + 10 {
            assert!(seen.insert(a.next()));
            if i % 1000 == 0 {
                assert!(seen.insert(b.next()));
            }
        }
        assert!(!seen.contains(&0));
    }

    /// At the end of the id space a request fails instead of wrapping to
    /// ids already issued (the old `mmu serial << 40 | count` scheme
    /// wrapped: MMU number 2^24 + 1 reused the ids of MMU number 1).
    #[test]
    fn the_last_block_is_used_up_and_then_ids_are_refused() {
        let blocks = AtomicU64::new(LAST_BLOCK - 1);
        let mut ids = SectionIds::new();
        let first = ids.next_from(&blocks);
        assert_eq!(first, (LAST_BLOCK - 1) << BLOCK_BITS);
        let mut last = first;
        for _ in 1..1u64 << BLOCK_BITS {
            let id = ids.next_from(&blocks);
            assert_eq!(id, last + 1);
            last = id;
        }
        assert_eq!(last, u64::MAX - (1 << BLOCK_BITS));
        let refused = std::panic::catch_unwind(move || ids.next_from(&blocks));
        assert!(refused.is_err(), "no id after the last block");
    }
}

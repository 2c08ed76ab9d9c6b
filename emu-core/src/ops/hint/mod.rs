//! Hints, fences and cache control: the reserved-NOP space and prefetches
//! (`nop`), LFENCE/SFENCE/MFENCE (`fence`), and CLFLUSH, CLFLUSHOPT and
//! CLWB (`cache`). None of them changes architectural state; what they
//! must get right is which faults they raise and, for the fences, the
//! order in which other vCPUs see memory.

mod cache;
mod fence;
mod nop;

use crate::exec::table::TableBuilder;

pub(crate) fn register(t: &mut TableBuilder) {
    nop::register(t);
    fence::register(t);
    cache::register(t);
}

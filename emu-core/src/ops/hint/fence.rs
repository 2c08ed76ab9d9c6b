//! LFENCE, SFENCE and MFENCE: ordering between vCPU threads.
//!
//! Guest RAM accesses are host atomics: loads `Acquire`, stores `Release`
//! (softmmu's `mem::ram`). That already gives every ordering x86's TSO
//! promises except one: a store followed by a load of another location may
//! be seen in the other order (the store-buffer case). The fences map onto
//! host fences as follows (Rust's fences are C++20's):
//!
//! - MFENCE is `fence(SeqCst)`. SeqCst fences are totally ordered; if
//!   vCPU A stores, fences, then loads, and vCPU B does the same with the
//!   locations swapped, the later of the two fences in that order makes
//!   its thread's load see the other thread's store (C++20 [atomics.fences]
//!   with [atomics.order]/4), so the store-buffer outcome where both loads
//!   miss is impossible, as MFENCE guarantees. It also orders everything
//!   else, which `Acquire`/`Release` already did.
//! - SFENCE is `fence(Release)`: every earlier access happens before every
//!   later store another thread synchronises with, which covers SFENCE's
//!   "earlier stores before later stores" (the only ordering the
//!   weakly-ordered non-temporal stores of real hardware need; softvm's
//!   stores are all `Release` anyway).
//! - LFENCE is `fence(Acquire)`: earlier loads are ordered before every
//!   later access. Its other promise, that later instructions do not start
//!   before it completes (used around RDTSC), holds trivially in an
//!   interpreter that runs one instruction at a time.
//!
//! On x86 hosts MFENCE compiles to MFENCE and the others to nothing but a
//! compiler barrier (the host's TSO gives them); on Arm hosts they become
//! DMB barriers.

use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, Mnemonic};
use std::sync::atomic::{fence, Ordering};

/// LFENCE — Load Fence
fn lfence(_x: &mut Exec, _: &Instruction) -> ExecResult {
    fence(Ordering::Acquire);
    Ok(())
}

/// SFENCE — Store Fence
fn sfence(_x: &mut Exec, _: &Instruction) -> ExecResult {
    fence(Ordering::Release);
    Ok(())
}

/// MFENCE — Memory Fence
fn mfence(_x: &mut Exec, _: &Instruction) -> ExecResult {
    fence(Ordering::SeqCst);
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    // Every ModRM.rm encoding of each (0F AE E8-EF, F0-F7, F8-FF).
    t.mnemonic(Mnemonic::Lfence, lfence, 0);
    t.mnemonic(Mnemonic::Sfence, sfence, 0);
    t.mnemonic(Mnemonic::Mfence, mfence, 0);
}

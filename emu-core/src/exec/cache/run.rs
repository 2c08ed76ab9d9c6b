//! The block loop: runs cached blocks (and uncached instructions through
//! `step`) until the vCPU's run loop must look (see the parent module).

use super::{classify, Blocks, K_ENDS, K_SERIALIZING, K_SYSTEM};
use crate::exception::Fault;
use crate::exec::fast::Ran;
use crate::exec::{step, Exec, StepResult};
use iced_x86::Instruction;
use std::sync::atomic::Ordering::Acquire;

/// Run instructions until something needs the run loop: an exception, an
/// exit, a signal (halt, interrupt shadow, mode change, shutdown, trap),
/// queued I/O, APIC activity, or `budget` instructions. Returns the result
/// of the last instruction and how many were attempted.
///
/// Instructions come from the block cache when possible and from
/// [`step`] otherwise; either way `ins` and `bytes` hold the last
/// instruction afterwards when it was decoded by `step` (always the case
/// for [`StepResult::Unimplemented`]).
pub fn run_batch(
    x: &mut Exec,
    cache: &mut Blocks,
    ins: &mut Instruction,
    bytes: &mut [u8; 16],
    budget: u64,
) -> (StepResult, u64) {
    cache.check_memory(x.mmu.memory());
    cache.forget_page();
    let budget = budget.max(1);
    if !cache.enabled || x.cpu.flags.test(crate::cpu::flags::TF) {
        cache.stats.uncached += 1;
        return (step(x, ins, bytes), 1);
    }
    x.prepare_hot();
    // Reads the VMM completed belong to the instruction that asked for
    // them, which is the first of this batch: it restarts through `step`,
    // so cached instructions never see completed reads (and I/O they
    // queue ends the batch, so they start with an empty queue).
    // What ran is counted by `instret` alone, plus the instruction that
    // ended the batch without retiring. `left` is what remains of the
    // budget; it lives in a register (a budget check that loads `instret`
    // right after the loop's last increment of it measured 10-20% slower
    // on loop-heavy guests).
    let base = x.instret;
    let attempted = |x: &Exec, retired: bool| x.instret.wrapping_sub(base) + u64::from(!retired);
    let mut left = budget;
    let mut uncached = x.io.has_completed();
    let mut last = None;
    loop {
        let block = if uncached {
            None
        } else {
            cache.lookup(x, last)
        };
        last = block.map(|b| b.1);
        let Some((e, counter)) = block else {
            uncached = false;
            cache.forget_page();
            cache.stats.uncached += 1;
            let r = step(x, ins, bytes);
            let serial = matches!(r, StepResult::Done) && classify(ins) & K_SERIALIZING != 0;
            if serial {
                cache.serialize(x.code);
            }
            if r != StepResult::Done {
                return (r, attempted(x, false));
            }
            left -= 1;
            if needs_loop(x) || left == 0 || serial {
                return (r, attempted(x, true));
            }
            x.signals.attention = false;
            // The instruction may have changed what the hot path relies on.
            x.prepare_hot();
            continue;
        };
        // A block that branches back to its own start runs again from here
        // while nothing changed its page (see `CodePages`).
        loop {
            let start = e.start as usize;
            let end = start + (e.len as u64).min(left) as usize;
            let retired = x.instret;
            // Only a block's first instruction can start with queued I/O:
            // an instruction that queues some ends its block.
            let queued = x.io.queue.len();
            let mut kind = 0;
            let mut faulted = false;
            // RIP is written back when the block stops, not after each
            // instruction: family handlers (which may read it) get it set
            // first (`fast::run`, which also starts `next_rip` at the
            // fall-through for the forms that branch), and a fault sets it
            // to the faulting instruction. (Taking a block's last `next`
            // after the loop instead of keeping `next` in a register
            // saves an instruction each but measured up to 13% slower.)
            let mut next = x.cpu.rip;
            for d in &cache.insns[start..end] {
                match crate::exec::fast::run(x, d, &mut cache.fault) {
                    Ran::Plain => {
                        x.instret = x.instret.wrapping_add(1);
                        next = d.next;
                        if x.signals.attention {
                            kind = K_ENDS;
                            break;
                        }
                    }
                    Ran::Branch => {
                        x.instret = x.instret.wrapping_add(1);
                        next = x.next_rip;
                        if d.kind & K_ENDS != 0 || x.signals.attention || next != d.next {
                            kind = d.kind | K_ENDS;
                            break;
                        }
                    }
                    Ran::Left => {
                        x.instret = x.instret.wrapping_add(1);
                        next = x.next_rip;
                        kind = d.kind | K_ENDS;
                        break;
                    }
                    Ran::Fault => {
                        x.cpu.rip = d.rip;
                        faulted = true;
                        break;
                    }
                }
            }
            if faulted {
                // `fast::run` leaves the reason of every `Ran::Fault` here.
                let f = cache.fault.take().unwrap_or(Fault::Unimplemented);
                cache.forget_page();
                return (cached_fault(x, f, queued, ins, bytes), attempted(x, false));
            }
            x.cpu.rip = next;
            // Only system instructions (which end the batch below) and MMIO
            // accesses (which set `attention`) raise what `needs_loop`
            // looks for, so a block that ended without either goes straight
            // on: into itself again if it branched back to its start (a
            // loop, or a RET to the return site it is, whose page is
            // unchanged: no mode or paging change happens without a system
            // instruction, so the same RIP is the same block), else to the
            // next lookup.
            left -= x.instret.wrapping_sub(retired);
            if kind & K_SYSTEM == 0 && !x.signals.attention && left != 0 {
                if next == e.rip && counter.load(Acquire) == e.version {
                    cache.stats.hits += 1;
                    continue;
                }
                break;
            }
            if kind & K_SERIALIZING != 0 {
                cache.serialize(x.code);
            }
            if needs_loop(x) || kind & K_SYSTEM != 0 || left == 0 {
                return (StepResult::Done, attempted(x, true));
            }
            break;
        }
        if x.signals.attention {
            x.signals.attention = false;
        }
    }
}

/// The result of a cached instruction that did not complete.
#[cold]
fn cached_fault(
    x: &mut Exec,
    f: Fault,
    queued: usize,
    ins: &mut Instruction,
    bytes: &mut [u8; 16],
) -> StepResult {
    match f {
        Fault::Exit => {
            x.io.queue.truncate(queued);
            StepResult::Exit
        }
        Fault::Exception(e) => {
            x.io.end_instruction();
            StepResult::Exception(e)
        }
        Fault::Unimplemented => {
            // A handler refused a form it does not support: decode again
            // through the slow path so `bytes` is filled.
            x.io.end_instruction();
            let _ = x.decode(ins, bytes);
            StepResult::Unimplemented
        }
        Fault::CodeNotInRam => {
            x.io.end_instruction();
            StepResult::CodeNotInRam
        }
    }
}

/// Whether the run loop must look at the vCPU before the next instruction.
#[inline]
fn needs_loop(x: &Exec) -> bool {
    let s = &x.signals;
    s.halt
        || s.shadow
        || s.mode_changed
        || s.shutdown
        || s.trap
        || !x.io.queue.is_empty()
        || x.sys.apic_touched
        || x.cpu.flags.test(crate::cpu::flags::TF)
}

//! String instructions: MOVS, STOS, LODS, SCAS, CMPS, INS, OUTS, with
//! REP/REPE/REPNE in both directions.
//!
//! A repeated instruction runs a bounded batch of iterations per step and
//! leaves RIP on itself until the count reaches zero, so interrupts and
//! VMM exits are taken between iterations as on hardware. Registers are
//! updated after every completed iteration, so a fault mid-way leaves the
//! architectural state the manuals describe.

use crate::cpu::flags::{mask, DF};
use crate::cpu::SegReg;
use crate::exception::{ExecResult, Fault};
use crate::exec::operand::seg_of;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, Mnemonic, OpKind};

/// Iterations per step before yielding to the run loop.
const BATCH: u64 = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Movs,
    Stos,
    Lods,
    Scas,
    Cmps,
    Ins,
    Outs,
}

/// Address size in bytes, from the implicit memory operand's kind.
fn addr_size(ins: &Instruction) -> u8 {
    for n in 0..ins.op_count() {
        match ins.op_kind(n) {
            OpKind::MemorySegSI | OpKind::MemoryESDI | OpKind::MemorySegDI => return 2,
            OpKind::MemorySegESI | OpKind::MemoryESEDI | OpKind::MemorySegEDI => return 4,
            OpKind::MemorySegRSI | OpKind::MemoryESRDI | OpKind::MemorySegRDI => return 8,
            _ => {}
        }
    }
    8
}

fn run(x: &mut Exec, ins: &Instruction, kind: Kind) -> ExecResult {
    let asz = addr_size(ins);
    let am = mask(asz);
    let size = ins.memory_size().size().max(match kind {
        Kind::Ins | Kind::Outs => ins.memory_size().size(),
        _ => 1,
    }) as u8;
    let step = if x.cpu.flags.test(DF) {
        (size as u64).wrapping_neg()
    } else {
        size as u64
    };
    let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
    let cond_rep = matches!(kind, Kind::Scas | Kind::Cmps);
    let src_seg = seg_of(ins.memory_segment());
    if matches!(kind, Kind::Ins | Kind::Outs) {
        let port = x.cpu.gpr[2] as u16;
        crate::ops::system::check_io(x, port, size)?;
    }
    let mut done = 0u64;
    loop {
        if rep && x.cpu.gpr[1] & am == 0 {
            return Ok(());
        }
        if rep && !cond_rep && matches!(kind, Kind::Movs | Kind::Stos) {
            let n = bulk(x, kind, size, src_seg, am, step, BATCH - done.min(BATCH))?;
            if n > 0 {
                let c = x.cpu.gpr[1].wrapping_sub(n) & am;
                x.set_gpr(1, asz, c);
                done += n;
                if c == 0 {
                    return Ok(());
                }
                if done >= BATCH {
                    x.next_rip = x.cpu.rip;
                    return Ok(());
                }
                continue;
            }
        }
        let queued = x.io.queue.len();
        let r = iteration(x, kind, size, src_seg, am, step);
        match r {
            Ok(()) => {}
            // Earlier iterations are committed; come back for this one.
            Err(Fault::Exit) if done > 0 => {
                x.next_rip = x.cpu.rip;
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        if !rep {
            return Ok(());
        }
        let c = x.cpu.gpr[1].wrapping_sub(1) & am;
        x.set_gpr(1, asz, c);
        done += 1;
        if cond_rep {
            let zf = x.cpu.flags.test(crate::cpu::flags::ZF);
            let stop = if ins.has_repe_prefix() { !zf } else { zf };
            if stop {
                return Ok(());
            }
        }
        if c == 0 {
            return Ok(());
        }
        if done >= BATCH || x.io.queue.len() > queued {
            x.next_rip = x.cpu.rip;
            return Ok(());
        }
    }
}

/// REP MOVS/STOS, forward, over RAM: as many elements as fit before the
/// next page boundary of source and destination, translated once and
/// copied element by element (so overlapping moves keep their
/// byte-by-byte meaning). Returns 0 when the fast case does not apply and
/// the caller takes the general path.
fn bulk(
    x: &mut Exec,
    kind: Kind,
    size: u8,
    src_seg: SegReg,
    am: u64,
    step: u64,
    limit: u64,
) -> ExecResult<u64> {
    use softmmu::{AccessKind, Translation, PAGE_SIZE};
    let sz = u64::from(size);
    if step != sz {
        return Ok(0);
    }
    let count = x.cpu.gpr[1] & am;
    let di = x.cpu.gpr[7] & am;
    let si = x.cpu.gpr[6] & am;
    // Elements before the destination (and source) page ends, without
    // wrapping the address size.
    let room =
        |la: u64, off: u64| ((PAGE_SIZE - (la & (PAGE_SIZE - 1))) / sz).min((am - off) / sz + 1);
    // Any fault is left to the element-by-element path, which takes it
    // with the architectural register state.
    let Ok(dla) = x.linear(SegReg::Es, di, size as usize, true) else {
        return Ok(0);
    };
    let mut n = count.min(limit).min(room(dla, di));
    let mut sla = 0;
    if kind == Kind::Movs {
        let Ok(l) = x.linear(src_seg, si, size as usize, false) else {
            return Ok(0);
        };
        sla = l;
        n = n.min(room(sla, si));
    }
    if n < 2 || dla & (sz - 1) != 0 {
        return Ok(0);
    }
    // The last element must pass the segment checks too.
    if x.linear(SegReg::Es, di + (n - 1) * sz, size as usize, true)
        .is_err()
    {
        return Ok(0);
    }
    let src = if kind == Kind::Movs {
        if x.linear(src_seg, si + (n - 1) * sz, size as usize, false)
            .is_err()
        {
            return Ok(0);
        }
        match x.translate_la(sla, AccessKind::Read) {
            Ok(Translation::Ram { hva, .. }) => Some(hva),
            _ => return Ok(0),
        }
    } else {
        None
    };
    let (dst, gpa) = match x.translate_la(dla, AccessKind::Write) {
        Ok(Translation::Ram { hva, gpa }) => (hva, gpa),
        _ => return Ok(0),
    };
    let value = x.cpu.gpr[0] & mask(size);
    for i in 0..n {
        let v = match src {
            Some(s) => x.mmu.load(s.offset(i * sz), size as usize),
            None => value,
        };
        x.mmu.store(dst.offset(i * sz), size as usize, v);
    }
    x.note_write(gpa.raw());
    x.set_gpr(7, (am.count_ones() / 8) as u8, di.wrapping_add(n * sz) & am);
    if kind == Kind::Movs {
        x.set_gpr(6, (am.count_ones() / 8) as u8, si.wrapping_add(n * sz) & am);
    }
    Ok(n)
}

fn iteration(
    x: &mut Exec,
    kind: Kind,
    size: u8,
    src_seg: SegReg,
    am: u64,
    step: u64,
) -> ExecResult {
    let si = x.cpu.gpr[6] & am;
    let di = x.cpu.gpr[7] & am;
    let asz = (am.count_ones() / 8) as u8;
    let sz = size as usize;
    match kind {
        Kind::Movs => {
            let v = x.read_seg(src_seg, si, sz)?;
            x.write_seg(SegReg::Es, di, sz, v)?;
            x.set_gpr(6, asz, si.wrapping_add(step) & am);
            x.set_gpr(7, asz, di.wrapping_add(step) & am);
        }
        Kind::Stos => {
            let v = x.cpu.gpr[0] & mask(size);
            x.write_seg(SegReg::Es, di, sz, v)?;
            x.set_gpr(7, asz, di.wrapping_add(step) & am);
        }
        Kind::Lods => {
            let v = x.read_seg(src_seg, si, sz)?;
            x.set_gpr(0, size, v);
            x.set_gpr(6, asz, si.wrapping_add(step) & am);
        }
        Kind::Scas => {
            let v = x.read_seg(SegReg::Es, di, sz)?;
            let a = x.cpu.gpr[0] & mask(size);
            x.cpu
                .flags
                .lazy_sub(size, a, v, false, a.wrapping_sub(v) & mask(size));
            x.set_gpr(7, asz, di.wrapping_add(step) & am);
        }
        Kind::Cmps => {
            let a = x.read_seg(src_seg, si, sz)?;
            let b = x.read_seg(SegReg::Es, di, sz)?;
            x.cpu
                .flags
                .lazy_sub(size, a, b, false, a.wrapping_sub(b) & mask(size));
            x.set_gpr(6, asz, si.wrapping_add(step) & am);
            x.set_gpr(7, asz, di.wrapping_add(step) & am);
        }
        Kind::Ins => {
            let la = x.linear(SegReg::Es, di, sz, true)?;
            x.probe_write(la, sz)?;
            let port = x.cpu.gpr[2] as u16;
            let v = x.io.pio_in(port, size)?;
            x.write_linear(la, sz, v)?;
            x.set_gpr(7, asz, di.wrapping_add(step) & am);
        }
        Kind::Outs => {
            let v = x.read_seg(src_seg, si, sz)?;
            let port = x.cpu.gpr[2] as u16;
            x.io.pio_out(port, size, v as u32);
            x.set_gpr(6, asz, si.wrapping_add(step) & am);
        }
    }
    Ok(())
}

macro_rules! string_op {
    ($name:ident, $kind:expr) => {
        fn $name(x: &mut Exec, ins: &Instruction) -> ExecResult {
            run(x, ins, $kind)
        }
    };
}
string_op!(movs, Kind::Movs);
string_op!(stos, Kind::Stos);
string_op!(lods, Kind::Lods);
string_op!(scas, Kind::Scas);
string_op!(cmps, Kind::Cmps);
string_op!(ins_, Kind::Ins);
string_op!(outs, Kind::Outs);

pub(crate) fn register(t: &mut TableBuilder) {
    use Mnemonic as M;
    for (m, h) in [
        (
            [M::Movsb, M::Movsw, M::Movsd, M::Movsq],
            movs as crate::exec::Handler,
        ),
        ([M::Stosb, M::Stosw, M::Stosd, M::Stosq], stos),
        ([M::Lodsb, M::Lodsw, M::Lodsd, M::Lodsq], lods),
        ([M::Scasb, M::Scasw, M::Scasd, M::Scasq], scas),
        ([M::Cmpsb, M::Cmpsw, M::Cmpsd, M::Cmpsq], cmps),
    ] {
        for mn in m {
            // MOVSD/CMPSD also name SSE instructions; only take the string forms.
            t.mnemonic_where(mn, h, 0, |c| !format!("{c:?}").contains("xmm"));
        }
    }
    for m in [M::Insb, M::Insw, M::Insd] {
        t.mnemonic(m, ins_, 0);
    }
    for m in [M::Outsb, M::Outsw, M::Outsd] {
        t.mnemonic(m, outs, 0);
    }
}

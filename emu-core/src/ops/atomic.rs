//! Exchange-and-compare family: XADD, CMPXCHG, CMPXCHG8B, CMPXCHG16B.
//! With LOCK (and for memory operands of these instructions generally) the
//! update is a host atomic on guest RAM, so guest spinlocks work across
//! vCPU threads.

use crate::cpu::flags::{mask, ZF};
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction, Mnemonic, OpKind};
use softmmu::{AccessKind, Translation};

/// XADD — Exchange and Add. With the same register as both operands the
/// sum wins (the destination is written last).
fn xadd(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let m = mask(size);
    let src_reg = ins.op1_register();
    let b = x.reg(src_reg);
    if ins.op0_kind() == OpKind::Register {
        let d = ins.op0_register();
        let a = x.reg(d);
        let r = a.wrapping_add(b) & m;
        x.cpu.flags.lazy_add(size, a, b, false, r);
        x.set_reg(src_reg, a);
        x.set_reg(d, r);
        return Ok(());
    }
    let mut flags = x.cpu.flags;
    let old = x.rmw_op0_with_flags(ins, &mut flags, &mut |f, a| {
        let r = a.wrapping_add(b) & m;
        f.lazy_add(size, a & m, b, false, r);
        Some(r)
    })?;
    x.cpu.flags = flags;
    x.set_reg(src_reg, old);
    Ok(())
}

/// CMPXCHG — Compare and Exchange. The destination is always written: a
/// failing compare stores the old value back (the SDM's `DEST <- TEMP`, so
/// a 32-bit register destination is zero-extended, as KVM's instruction
/// emulator and the reference guests of `shared/conformance` have it) and
/// loads it into the accumulator; a successful one leaves the accumulator
/// unwritten. Intel and AMD processors (an Intel Xeon, an AMD Zen 5)
/// leave the upper half of a register destination unchanged instead: a
/// known difference the differential tests list.
fn cmpxchg(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let size = x.osize(ins);
    let m = mask(size);
    let acc = x.cpu.gpr[0] & m;
    let src = x.reg(ins.op1_register());
    let mut flags = x.cpu.flags;
    let mut equal = false;
    let old = x.rmw_op0_with_flags(ins, &mut flags, &mut |f, a| {
        let a = a & m;
        f.lazy_sub(size, acc, a, false, acc.wrapping_sub(a) & m);
        equal = a == acc;
        if equal {
            Some(src)
        } else if ins.op0_kind() == OpKind::Register {
            Some(a)
        } else {
            None
        }
    })?;
    x.cpu.flags = flags;
    if !equal {
        x.set_gpr(0, size, old);
    }
    Ok(())
}

/// CMPXCHG8B/CMPXCHG16B — Compare and Exchange Bytes. CMPXCHG16B needs a
/// 16-byte aligned operand (#GP(0) otherwise).
fn cmpxchg_wide(x: &mut Exec, ins: &Instruction) -> ExecResult {
    if ins.op0_kind() != OpKind::Memory {
        return Err(Exception::ud().into());
    }
    let wide = ins.code() == Code::Cmpxchg16b_m128;
    let half = if wide { 8 } else { 4 };
    let hm = mask(half);
    let expect = (x.cpu.gpr[0] & hm) as u128 | (((x.cpu.gpr[2] & hm) as u128) << (half * 8));
    let new = (x.cpu.gpr[3] & hm) as u128 | (((x.cpu.gpr[1] & hm) as u128) << (half * 8));
    let (seg, off) = x.mem_loc(ins);
    let size = half as usize * 2;
    let la = x.linear(seg, off, size, true)?;
    if wide && la & 15 != 0 {
        return Err(Exception::gp(0).into());
    }
    let pg_off = la & (softmmu::PAGE_SIZE - 1);
    let old: u128 = match x.translate_la(la, AccessKind::Write)? {
        Translation::Ram { hva, gpa } if pg_off + size as u64 <= softmmu::PAGE_SIZE => {
            // The store may hit cached code.
            x.note_write(gpa.raw());
            if wide {
                x.mmu
                    .atomic_rmw128(hva, &mut |o| if o == expect { Some(new) } else { None })
            } else {
                x.mmu.atomic_rmw(hva, 8, &mut |o| {
                    if o as u128 == expect {
                        Some(new as u64)
                    } else {
                        None
                    }
                }) as u128
            }
        }
        _ => {
            x.probe_write(la, size)?;
            let lo = x.read_linear(la, half as usize, AccessKind::Read)? as u128;
            let hi = x.read_linear(x.wrap_la(la + half as u64), half as usize, AccessKind::Read)?
                as u128;
            let o = lo | (hi << (half * 8));
            let store = if o == expect { new } else { o };
            x.write_linear(la, half as usize, store as u64 & hm)?;
            x.write_linear(
                x.wrap_la(la + half as u64),
                half as usize,
                (store >> (half * 8)) as u64 & hm,
            )?;
            o
        }
    };
    let equal = old == expect;
    x.cpu.flags.set_arith(ZF, if equal { ZF } else { 0 });
    if !equal {
        x.set_gpr(0, half, old as u64 & hm);
        x.set_gpr(2, half, (old >> (half * 8)) as u64 & hm);
    }
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.mnemonic(Mnemonic::Xadd, xadd, 0);
    t.mnemonic(Mnemonic::Cmpxchg, cmpxchg, 0);
    t.mnemonic(Mnemonic::Cmpxchg8b, cmpxchg_wide, 0);
    t.mnemonic(Mnemonic::Cmpxchg16b, cmpxchg_wide, 0);
}

//! Identification and time: CPUID, RDTSC, RDTSCP; and UD2.

use crate::cpu::state::CR4_TSD;
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Instruction, Mnemonic};

/// CPUID — CPU Identification (from the vCPU's table; see `cpuid.rs`).
fn cpuid(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    let f = x.cpu.gpr[0] as u32;
    let i = x.cpu.gpr[1] as u32;
    let mut r = x.sys.cpuid.lookup(f, i);
    if f == 1 {
        // OSXSAVE mirrors CR4; the APIC bit follows IA32_APIC_BASE.EN.
        if x.cpu.apic_base & (1 << 11) == 0 {
            r[3] &= !crate::cpuid::LEAF1_EDX_APIC;
        }
        r[2] &= !crate::cpuid::LEAF1_ECX_OSXSAVE;
        if x.cpu.cr4 & crate::cpu::state::CR4_OSXSAVE != 0 {
            r[2] |= crate::cpuid::LEAF1_ECX_OSXSAVE;
        }
    }
    for (k, v) in r.iter().enumerate() {
        let idx = [0, 3, 1, 2][k];
        x.set_gpr(idx, 4, u64::from(*v));
    }
    Ok(())
}

/// The guest's time-stamp counter.
pub fn tsc(x: &Exec) -> u64 {
    x.cpu
        .tsc_offset
        .wrapping_add(x.sys.clock.now_tsc(x.instret))
}

fn check_tsd(x: &Exec) -> ExecResult {
    if x.cpu.cr4 & CR4_TSD != 0 && x.cpu.cpl() != 0 {
        return Err(Exception::gp(0).into());
    }
    Ok(())
}

/// RDTSC — Read Time-Stamp Counter
fn rdtsc(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    check_tsd(x)?;
    let t = tsc(x);
    x.set_gpr(0, 4, t & 0xffff_ffff);
    x.set_gpr(2, 4, t >> 32);
    Ok(())
}

/// RDTSCP — Read Time-Stamp Counter and Processor ID
fn rdtscp(x: &mut Exec, _ins: &Instruction) -> ExecResult {
    check_tsd(x)?;
    let t = tsc(x);
    x.set_gpr(0, 4, t & 0xffff_ffff);
    x.set_gpr(2, 4, t >> 32);
    x.set_gpr(1, 4, x.cpu.msrs.tsc_aux & 0xffff_ffff);
    Ok(())
}

/// UD2 — Undefined Instruction
fn ud2(_x: &mut Exec, _ins: &Instruction) -> ExecResult {
    Err(Exception::ud().into())
}

pub(crate) fn register(t: &mut TableBuilder) {
    t.mnemonic(Mnemonic::Cpuid, cpuid, 0);
    t.mnemonic(Mnemonic::Rdtsc, rdtsc, 0);
    t.mnemonic(Mnemonic::Rdtscp, rdtscp, 0);
    t.mnemonic(Mnemonic::Ud2, ud2, 0);
}

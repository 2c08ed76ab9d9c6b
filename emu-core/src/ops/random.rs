//! Random numbers: RDRAND and RDSEED, from the vCPU's deterministic
//! generator (`system::entropy`, keyed by the VM's seed).

use crate::cpu::flags::{ARITH, CF};
use crate::exception::ExecResult;
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction};

/// RDRAND — Read Random Number; RDSEED — Read Random SEED.
///
/// The generator never runs dry, so every execution returns a value with
/// CF = 1; OF, SF, ZF, AF and PF are cleared (SDM Vol. 2, RDRAND/RDSEED
/// "Flags Affected"). The 32-bit form zero-extends into the 64-bit
/// register as any 32-bit write does; the 16-bit form keeps the upper bits.
fn rdrand(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let v = x.sys.entropy.next_u64();
    x.set_reg(ins.op0_register(), v);
    x.cpu.flags.set_arith(ARITH, CF);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    for code in [
        Code::Rdrand_r16,
        Code::Rdrand_r32,
        Code::Rdrand_r64,
        Code::Rdseed_r16,
        Code::Rdseed_r32,
        Code::Rdseed_r64,
    ] {
        t.add(code, rdrand, 0);
    }
}

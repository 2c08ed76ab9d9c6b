//! The host's x87 as the reference. Each function starts from FNINIT,
//! loads the control word and the operands, runs the instruction, and
//! ends with FNSAVE, which stores the whole state (status word and
//! registers, including results the unmasked exception responses left)
//! and reinitializes the unit: only non-waiting instructions follow the
//! one under test, so an unmasked exception never traps.

use crate::fp::F80;
use std::arch::asm;

/// What FNSAVE stored: the status word and ST(0), ST(1).
#[derive(Clone, Copy, Debug)]
pub struct X87Out {
    pub fsw: u16,
    pub st0: F80,
    pub st1: F80,
    /// The memory operand a store wrote (or the sentinel it left).
    pub mem: u64,
}

/// FNSAVE's 32-bit protected-mode image (the format it uses in 64-bit
/// mode): 28 bytes of environment, then ST(0)..ST(7).
fn parse(save: &[u8; 108], mem: u64) -> X87Out {
    let reg = |i: usize| {
        let mut b = [0u8; 10];
        b.copy_from_slice(&save[28 + 10 * i..38 + 10 * i]);
        F80::from_bytes(&b)
    };
    X87Out {
        fsw: u16::from_le_bytes([save[4], save[5]]),
        st0: reg(0),
        st1: reg(1),
        mem,
    }
}

/// A value no store of the tests writes.
pub const SENTINEL: u64 = 0x5a5a_5a5a_5a5a_5a5a;

/// Run `ins` with ST(0) = a, ST(1) = b; `mem` is an 8-byte memory operand
/// (pre-filled with `mem_in`) the instruction may name as `[{o}]`.
macro_rules! x87 {
    ($name:ident, $($ins:literal),+) => {
        pub fn $name(a: F80, b: F80, fcw: u16, mem_in: u64) -> X87Out {
            let (ab, bb) = (a.to_bytes(), b.to_bytes());
            let mut save = [0u8; 108];
            let mut mem = mem_in;
            // SAFETY: the block reads the operands and the control word
            // through the pointers given, writes only `save` and `mem`,
            // and leaves the x87 initialized (FNSAVE); the x87 registers
            // are declared clobbered.
            unsafe {
                asm!(
                    "fninit",
                    "fldcw word ptr [{cw}]",
                    "fld tbyte ptr [{b}]",
                    "fld tbyte ptr [{a}]",
                    $($ins,)+
                    "fnsave [{s}]",
                    cw = in(reg) &fcw as *const u16,
                    a = in(reg) ab.as_ptr(),
                    b = in(reg) bb.as_ptr(),
                    o = in(reg) std::ptr::addr_of_mut!(mem),
                    s = in(reg) save.as_mut_ptr(),
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                );
            }
            parse(&save, mem)
        }
    };
}

x87!(fadd, "fadd st(0), st(1)", "/* {o} */");
x87!(fsub, "fsub st(0), st(1)", "/* {o} */");
x87!(fmul, "fmul st(0), st(1)", "/* {o} */");
x87!(fdiv, "fdiv st(0), st(1)", "/* {o} */");
x87!(fsqrt, "fsqrt", "/* {o} */");
x87!(fprem, "fprem", "/* {o} */");
x87!(fprem1, "fprem1", "/* {o} */");
x87!(frndint, "frndint", "/* {o} */");
x87!(fscale, "fscale", "/* {o} */");
x87!(fxtract, "fxtract", "/* {o} */");
x87!(fcom, "fcom st(1)", "/* {o} */");
x87!(fucom, "fucom st(1)", "/* {o} */");
x87!(fst32, "fst dword ptr [{o}]");
x87!(fst64, "fst qword ptr [{o}]");
x87!(fist16, "fist word ptr [{o}]");
x87!(fist32, "fist dword ptr [{o}]");
x87!(fistp64, "fld st(0)", "fistp qword ptr [{o}]");
x87!(fisttp16, "fld st(0)", "fisttp word ptr [{o}]");
x87!(fisttp32, "fld st(0)", "fisttp dword ptr [{o}]");
x87!(fisttp64, "fld st(0)", "fisttp qword ptr [{o}]");
x87!(fld32, "fld dword ptr [{o}]");
x87!(fld64, "fld qword ptr [{o}]");
x87!(fild16, "fild word ptr [{o}]");
x87!(fild32, "fild dword ptr [{o}]");
x87!(fild64, "fild qword ptr [{o}]");
x87!(fxam, "fxam", "/* {o} */");

//! Every form of the family: the CR0/CR4 checks, #MF for the forms with an
//! MMX register, the 16-byte alignment rule, and unmasked SIMD exceptions
//! (#XM, or #UD without CR4.OSXMMEXCPT; nothing written, the flag set).

use super::{all_forms, encode, kinds, memory_only, Kind, Setup, CR0, CR4};
use crate::cpu::state::{CR0_EM, CR0_TS, CR4_OSFXSR, CR4_OSXMMEXCPT};
use iced_x86::Code;

const UD: u8 = 6;
const NM: u8 = 7;
const GP: u8 = 13;
const MF: u8 = 16;
const XM: u8 = 19;

fn setup(code: Code) -> Setup {
    Setup::new(encode(code, memory_only(code), 0, 0))
}

/// Whether the form, with a memory operand or without, uses an MMX
/// register.
fn with_mmx(code: Code, mem: bool) -> bool {
    kinds(code)
        .iter()
        .any(|k| *k == Kind::Mm || (*k == Kind::MmOrMem && !mem))
}

#[test]
fn cr0_and_cr4_decide_first() {
    for code in all_forms() {
        let mut s = setup(code);
        assert_eq!(s.run().fault, None, "{code:?} with SSE enabled");
        s.cr0 = CR0 | CR0_EM;
        assert_eq!(s.run().fault, Some(UD), "{code:?} with CR0.EM");
        s.cr0 = CR0;
        s.cr4 = CR4 & !CR4_OSFXSR;
        assert_eq!(s.run().fault, Some(UD), "{code:?} without CR4.OSFXSR");
        s.cr4 = CR4;
        s.cr0 = CR0 | CR0_TS;
        assert_eq!(s.run().fault, Some(NM), "{code:?} with CR0.TS");
    }
}

#[test]
fn pending_x87_exception_stops_the_forms_with_an_mmx_register() {
    for code in all_forms() {
        // (Every form has a memory operand; LDMXCSR and STMXCSR only one.)
        for mem in [false, true] {
            let mut s = Setup::new(encode(code, mem, 0, 0));
            s.fpu.fcw = 0x037e;
            s.fpu.fsw = 0x0081; // IE and ES: an unmasked exception pending
            let want = if with_mmx(code, mem) { Some(MF) } else { None };
            assert_eq!(s.run().fault, want, "{code:?}, memory operand: {mem}");
        }
    }
}

#[test]
fn sixteen_byte_operands_must_be_aligned() {
    for code in all_forms() {
        let k = kinds(code);
        let Some(size) = k.iter().find_map(|k| match k {
            Kind::XmmOrMem(n) => Some(*n),
            Kind::MmOrMem | Kind::Gpr64OrMem => Some(8),
            Kind::Gpr32OrMem | Kind::Mem32 => Some(4),
            _ => None,
        }) else {
            continue;
        };
        let aligned = Setup::new(encode(code, true, 16, 0));
        assert_eq!(aligned.run().fault, None, "{code:?} aligned");
        let misaligned = Setup::new(encode(code, true, 8, 0));
        let want = if size == 16 { Some(GP) } else { None };
        assert_eq!(misaligned.run().fault, want, "{code:?} misaligned");
    }
}

/// Operands that make `code` raise an exception, and the MXCSR mask bit
/// that unmasks it: signaling NaNs of the source type (IE), or an integer
/// too wide for a single or double (PE). `None` for the forms that cannot
/// raise one.
fn trigger(code: Code) -> Option<(u128, u32)> {
    let m = format!("{:?}", code.mnemonic()).to_lowercase();
    let source = match m.strip_prefix("cvtt").or(m.strip_prefix("cvt")) {
        Some(rest) => rest.split('2').next().unwrap_or(""),
        None => &m[m.len() - 2..],
    };
    const IE: u32 = 7;
    const PE: u32 = 12;
    let inexact = u128::from_le_bytes([0xff, 0xff, 0xff, 0x7f].repeat(4).try_into().unwrap());
    match (m.as_str(), source) {
        ("rcpps" | "rcpss" | "rsqrtps" | "rsqrtss" | "ldmxcsr" | "stmxcsr", _) => None,
        ("cvtdq2pd" | "cvtpi2pd", _) => None,
        ("cvtsi2sd", _) if code == Code::Cvtsi2sd_xmm_rm32 => None,
        (_, "si" | "dq" | "pi") => Some((inexact, PE)),
        (_, "sd" | "pd") => Some((0x7ff4_0000_0000_0000_7ff4_0000_0000_0000, IE)),
        _ => Some((0x7fa0_0000_7fa0_0000_7fa0_0000_7fa0_0000, IE)),
    }
}

#[test]
fn unmasked_exceptions_write_nothing() {
    let mut checked = 0;
    for code in all_forms() {
        let Some((pattern, bit)) = trigger(code) else {
            continue;
        };
        for mem in [false, true] {
            let mut s = Setup::new(encode(code, mem, 0, 0xff));
            s.set_xmm(1, pattern);
            s.set_xmm(2, pattern);
            s.set_mm(1, pattern as u64);
            s.set_mm(2, pattern as u64);
            s.regs.rax = pattern as u64;
            s.regs.rcx = pattern as u64;
            s.mem = pattern.to_le_bytes().repeat(4);
            let flag = 1u32 << (bit - 7);
            // Masked: completes with the flag.
            s.fpu.mxcsr = 0x1f80;
            let a = s.run();
            assert_eq!(a.fault, None, "{code:?} masked");
            assert_eq!(a.fpu.mxcsr, 0x1f80 | flag, "{code:?} masked");
            // Unmasked: #XM, the flag, no result.
            s.fpu.mxcsr = 0x1f80 & !(1 << bit);
            let a = s.run();
            assert_eq!(a.fault, Some(XM), "{code:?} unmasked");
            assert_eq!(a.fpu.mxcsr & 0x3f, flag, "{code:?} unmasked");
            assert_eq!(a.xmm(1), pattern, "{code:?}: destination written");
            assert_eq!(a.fpu.fpr[1][..8], s.fpu.fpr[1][..8], "{code:?}");
            assert_eq!(a.regs.rax, pattern as u64, "{code:?}");
            // Without CR4.OSXMMEXCPT: #UD.
            s.cr4 = CR4 & !CR4_OSXMMEXCPT;
            assert_eq!(s.run().fault, Some(UD), "{code:?} without OSXMMEXCPT");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} cases");
}

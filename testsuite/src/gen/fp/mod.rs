//! MMX, SSE and x87 forms: which forms these are, the random x87/MMX/SSE
//! state a case starts from ([`state`]), their operands and immediates
//! ([`operands`]), and how their results are compared ([`check`]).

pub mod check;
pub mod operands;
pub mod state;
pub mod values;

use iced_x86::{Code, CpuidFeature as F, EncodingKind, Mnemonic, OpCodeOperandKind as K};
use values::Elem;

/// Which register file a form works on, for the state it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// The x87 stack (FPU features, FWAIT).
    X87,
    /// MMX registers (possibly with XMM ones: CVTPI2PS, MOVQ2DQ, ...).
    Mmx,
    /// XMM registers and MXCSR, FXSAVE/FXRSTOR.
    Sse,
    /// Not a floating-point or SIMD form.
    None,
}

fn has_kind(code: Code, f: impl Fn(K) -> bool) -> bool {
    code.op_code().op_kinds().iter().any(|k| f(*k))
}

fn is_mm_kind(k: K) -> bool {
    matches!(k, K::mm_reg | K::mm_rm | K::mm_or_mem)
}

fn is_xmm_kind(k: K) -> bool {
    matches!(k, K::xmm_reg | K::xmm_rm | K::xmm_or_mem)
}

/// The register file `code` uses (legacy encodings only: the VEX and EVEX
/// forms are AVX, outside this test).
pub fn unit(code: Code) -> Unit {
    if code.encoding() != EncodingKind::Legacy {
        return Unit::None;
    }
    let feats = code.cpuid_features();
    if feats
        .iter()
        .any(|f| matches!(f, F::FPU | F::FPU287 | F::FPU387))
        || code.mnemonic() == Mnemonic::Wait
    {
        Unit::X87
    } else if has_kind(code, is_mm_kind) || feats.contains(&F::MMX) {
        Unit::Mmx
    } else if has_kind(code, is_xmm_kind)
        || feats.contains(&F::FXSR)
        || matches!(code.mnemonic(), Mnemonic::Ldmxcsr | Mnemonic::Stmxcsr)
    {
        Unit::Sse
    } else {
        Unit::None
    }
}

/// Whether `code` is an MMX, SSE or x87 form (compared by the
/// floating-point differential test, not the integer one).
pub fn is_fp_form(code: Code) -> bool {
    unit(code) != Unit::None
}

/// The element type the form's operands are drawn from: the memory
/// operand's, else a guess from the mnemonic (MOVMSKPS: f32, PSRLW: u16).
pub fn elem_of(code: Code) -> Elem {
    if let Some(e) = Elem::of_memory(code.op_code().memory_size()) {
        return e;
    }
    if unit(code) == Unit::X87 {
        return Elem::F80;
    }
    let name = format!("{:?}", code.mnemonic()).to_ascii_lowercase();
    if name.ends_with("ps") || name.ends_with("ss") {
        Elem::F32
    } else if name.ends_with("pd") || name.ends_with("sd") {
        Elem::F64
    } else if name.ends_with('b') {
        Elem::Int(1)
    } else if name.ends_with('w') {
        Elem::Int(2)
    } else if name.ends_with('d') {
        Elem::Int(4)
    } else {
        Elem::Int(8)
    }
}

/// x87 forms that push onto the stack (they need an empty ST(7)).
pub fn pushes(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Fld | Fild
            | Fbld
            | Fld1
            | Fldl2t
            | Fldl2e
            | Fldpi
            | Fldlg2
            | Fldln2
            | Fldz
            | Fptan
            | Fsincos
            | Fxtract
    )
}

/// x87 forms that read ST(1) implicitly.
pub fn reads_st1(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Fpatan | Fyl2x | Fyl2xp1 | Fscale | Fprem | Fprem1 | Fcompp | Fucompp
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(unit(Code::Fadd_m32fp), Unit::X87);
        assert_eq!(unit(Code::Fisttp_m32int), Unit::X87);
        assert_eq!(unit(Code::Fcmovb_st0_sti), Unit::X87);
        assert_eq!(unit(Code::Wait), Unit::X87);
        assert_eq!(unit(Code::Emms), Unit::Mmx);
        assert_eq!(unit(Code::Cvtpi2ps_xmm_mmm64), Unit::Mmx);
        assert_eq!(unit(Code::Addps_xmm_xmmm128), Unit::Sse);
        assert_eq!(unit(Code::Ldmxcsr_m32), Unit::Sse);
        assert_eq!(unit(Code::Fxsave64_m512byte), Unit::Sse);
        assert_eq!(unit(Code::Add_rm64_r64), Unit::None);
        assert_eq!(unit(Code::Crc32_r32_rm8), Unit::None);
        assert_eq!(unit(Code::Movnti_m64_r64), Unit::None);
        assert_eq!(unit(Code::VEX_Vaddps_xmm_xmm_xmmm128), Unit::None);
    }

    #[test]
    fn element_types() {
        assert_eq!(elem_of(Code::Addps_xmm_xmmm128), Elem::F32);
        assert_eq!(elem_of(Code::Movmskpd_r32_xmm), Elem::F64);
        assert_eq!(elem_of(Code::Psrlw_xmm_imm8), Elem::Int(2));
        assert_eq!(elem_of(Code::Fild_m64int), Elem::Int(8));
        assert_eq!(elem_of(Code::Fbld_m80bcd), Elem::Bcd);
        assert_eq!(elem_of(Code::Fsin), Elem::F80);
    }
}

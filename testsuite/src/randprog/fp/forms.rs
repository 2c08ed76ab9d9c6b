//! Which forms random SSE and x87 programs draw, what they need, and how
//! x87 forms move the stack.

use crate::gen::fp::check::{approx, Approx};
use crate::gen::fp::{unit, Unit};
use crate::gen::skip_reason;
use iced_x86::{Code, Mnemonic, OpCodeOperandKind as K};

/// Which instructions a program draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpKind {
    /// SSE..SSE4.2 and MMX forms.
    Sse,
    /// x87 forms, with some MMX forms for the register aliasing.
    X87,
}

/// How to generate a program.
#[derive(Clone, Copy, Debug)]
pub struct FpOptions {
    pub kind: FpKind,
    pub steps: usize,
    /// Store a digest of the whole state after every step (to find the
    /// first step that differs).
    pub trace: bool,
}

/// Forms deliberately left out of the random SSE and x87 programs, with
/// the reason.
pub fn fp_exclusions() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1",
            "approximations whose last bits differ between implementations (the host differential test compares them within a tolerance)",
        ),
        (
            "RCPPS RCPSS RSQRTPS RSQRTSS",
            "approximation tables differ between vendors; left out unless softvm's model has the host's vendor",
        ),
        (
            "FNSTENV FNSAVE FXSAVE (as random steps)",
            "store the last-instruction pointers, which Intel and AMD update and store differently",
        ),
        (
            "FLDENV FRSTOR FXRSTOR LDMXCSR/FLDCW with unmasked exceptions",
            "whole-state loads are the host differential test's; programs keep every exception masked",
        ),
    ]
}

/// The forms the program needs besides the random ones.
pub fn prerequisites(kind: FpKind) -> Vec<Code> {
    let mut v = vec![Code::Fxrstor64_m512byte, Code::Fxsave64_m512byte];
    if kind == FpKind::X87 {
        v.extend([Code::Fnstenv_m28byte, Code::Fldenv_m28byte]);
    }
    v
}

/// Prerequisites emu-core does not implement yet.
pub fn missing_prerequisites(kind: FpKind) -> Vec<Code> {
    let have = emu_core::testing::implemented_codes();
    prerequisites(kind)
        .into_iter()
        .filter(|c| !have.contains(c))
        .collect()
}

fn kind_supported(k: K) -> bool {
    matches!(
        k,
        K::mm_reg
            | K::mm_rm
            | K::mm_or_mem
            | K::xmm_reg
            | K::xmm_rm
            | K::xmm_or_mem
            | K::st0
            | K::sti_opcode
            | K::mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r32_reg
            | K::r64_reg
            | K::imm8
            | K::ax
            | K::seg_rDI
    )
}

/// The forms a program of `kind` draws from: [`fp_candidates`]
/// implemented by emu-core.
pub fn fp_forms(kind: FpKind, same_vendor: bool) -> Vec<Code> {
    let have = emu_core::testing::implemented_codes();
    fp_candidates(kind, same_vendor)
        .into_iter()
        .filter(|c| have.contains(c))
        .collect()
}

/// The forms a program of `kind` may draw: comparable with the host
/// ([`skip_reason`]), operands this generator builds, minus
/// [`fp_exclusions`]. `same_vendor`: softvm's model has the host's vendor.
pub fn fp_candidates(kind: FpKind, same_vendor: bool) -> Vec<Code> {
    use Mnemonic::*;
    Code::values()
        .filter(|&c| {
            let u = unit(c);
            let wanted = match kind {
                FpKind::Sse => matches!(u, Unit::Sse | Unit::Mmx),
                FpKind::X87 => matches!(u, Unit::X87 | Unit::Mmx),
            };
            let excluded = match approx(c) {
                Approx::Transcendental => true,
                Approx::Reciprocal { .. } => !same_vendor,
                Approx::Exact => matches!(
                    c.mnemonic(),
                    Fnstenv | Fnsave | Fxsave | Fxsave64 | Fldenv | Frstor | Fxrstor | Fxrstor64
                ),
            };
            wanted
                && !excluded
                && skip_reason(c).is_none()
                && c.op_code().op_kinds().iter().all(|&k| kind_supported(k))
        })
        .collect()
}

/// Values on the x87 stack when an x87 program starts.
pub const START_DEPTH: i32 = 3;

/// How an x87 form changes the number of values on the stack: `Some(n)`
/// pushes or pops, `None` for the forms that set it outright (see
/// [`depth_after`]).
pub fn stack_effect(code: Code) -> Option<i32> {
    use Mnemonic::*;
    let m = code.mnemonic();
    if crate::gen::fp::pushes(m) {
        return Some(1);
    }
    Some(match m {
        Fstp | Fistp | Fisttp | Fbstp | Faddp | Fsubp | Fsubrp | Fmulp | Fdivp | Fdivrp | Fcomp
        | Fucomp | Ficomp | Fcomip | Fucomip | Ffreep | Fstpnce | Fpatan | Fyl2x | Fyl2xp1 => -1,
        Fcompp | Fucompp => -2,
        Fninit | Fnsave | Emms => return None,
        _ if unit(code) == Unit::Mmx => return None,
        _ => 0,
    })
}

/// The stack depth after `code`, as far as the generator keeps track
/// (it steers draws away from overflow and underflow, which would fill
/// the stack with indefinite values).
pub fn depth_after(code: Code, depth: i32) -> i32 {
    match stack_effect(code) {
        Some(n) => (depth + n).clamp(0, 8),
        None if unit(code) == Unit::Mmx && code.mnemonic() != Mnemonic::Emms => 8,
        None => 0,
    }
}

/// Whether a program of `kind` can be built: the prerequisites and at
/// least one form are implemented. The reason when not.
pub fn ready(kind: FpKind, same_vendor: bool) -> Result<(), String> {
    let missing = missing_prerequisites(kind);
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|c| format!("{c:?}")).collect();
        return Err(format!(
            "softvm does not implement {} yet",
            names.join(", ")
        ));
    }
    if fp_forms(kind, same_vendor).is_empty() {
        return Err(format!("softvm implements no {kind:?} form yet"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_hold() {
        for kind in [FpKind::Sse, FpKind::X87] {
            for c in fp_forms(kind, false) {
                assert_eq!(approx(c), Approx::Exact, "{c:?}");
                assert!(!matches!(
                    c.mnemonic(),
                    Mnemonic::Fnstenv | Mnemonic::Fxsave64
                ));
            }
        }
    }

    #[test]
    fn stack_depth_is_tracked() {
        assert_eq!(depth_after(Code::Fld1, 3), 4);
        assert_eq!(depth_after(Code::Fcompp, 3), 1);
        assert_eq!(depth_after(Code::Faddp_sti_st0, 0), 0);
        assert_eq!(depth_after(Code::Paddb_mm_mmm64, 2), 8);
        assert_eq!(depth_after(Code::Emms, 8), 0);
        assert_eq!(depth_after(Code::Fninit, 5), 0);
        assert_eq!(depth_after(Code::Fadd_m32fp, 5), 5);
    }
}

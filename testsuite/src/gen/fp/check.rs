//! How the x87/MMX/SSE state after a case is compared.
//!
//! Exact, bit for bit: FCW, FSW (TOP, flags, the condition codes the
//! manuals define for the form), the abridged tags, MXCSR, every ST(i)
//! including empty ones, every XMM register, and the last-instruction
//! pointers FIP and FOP (FDP too for a memory form) whenever an unmasked
//! x87 exception is pending after the instruction. Without a pending
//! exception AMD processors store them as zero in the FXSAVE image while
//! Intel ones store them, and FDP after a register form is left unchanged
//! by some and cleared by others, so only the pending case is the same
//! everywhere. Three exceptions, each with its reason:
//! - condition codes the SDM calls undefined for an instruction
//!   ([`fsw_undefined`]), as EFLAGS' undefined flags are;
//! - the x87 transcendentals (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1,
//!   FYL2X, FYL2XP1), whose last bits no manual fixes: compared within a
//!   tolerance, the difference in units in the last place recorded
//!   ([`Approx::Transcendental`]);
//! - RCPPS/RCPSS/RSQRTPS/RSQRTSS, whose tables differ between vendors:
//!   bit-exact when softvm's CPU model has the host's vendor, otherwise
//!   within the manuals' bound of 1.5 x 2^-12 relative error of each
//!   other's ([`Approx::Reciprocal`]).

use super::values::f80_to_f64;
use crate::native::fx::FxImage;
use iced_x86::{Code, Mnemonic};

const C0: u16 = 1 << 8;
const C1: u16 = 1 << 9;
const C2: u16 = 1 << 10;
const C3: u16 = 1 << 14;
const PE: u16 = 1 << 5;
/// FSW.ES: an unmasked exception is pending.
pub const ES: u16 = 1 << 7;

/// Condition codes of FSW that the SDM leaves undefined after `code`.
pub fn fsw_undefined(code: Code) -> u16 {
    use Mnemonic::*;
    if super::unit(code) != super::Unit::X87 {
        return 0;
    }
    match code.mnemonic() {
        Ffree | Ffreep | Fldcw | Fnop | Fnclex | Fclex | Fnstcw | Fstcw | Fnstenv | Fstenv
        | Fnstsw | Fstsw | Fneni | Feni | Fndisi | Fdisi | Fnsetpm | Fsetpm => C0 | C1 | C2 | C3,
        Fcom | Fcomp | Fcompp | Fucom | Fucomp | Fucompp | Ficom | Ficomp | Ftst | Fxam | Fprem
        | Fprem1 | Fcomi | Fcomip | Fucomi | Fucomip | Fldenv | Frstor | Fninit | Finit
        | Fnsave | Fsave | Wait => 0,
        Fsin | Fcos | Fsincos | Fptan => C0 | C3,
        _ => C0 | C2 | C3,
    }
}

/// How a form's results are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approx {
    Exact,
    /// x87 transcendental: ST registers within a tolerance.
    Transcendental,
    /// RCP/RSQRT approximations: the f32 elements of XMM registers
    /// (`packed`: all four, else the low one).
    Reciprocal {
        packed: bool,
    },
}

pub fn approx(code: Code) -> Approx {
    use Mnemonic::*;
    match code.mnemonic() {
        Fsin | Fcos | Fsincos | Fptan | Fpatan | F2xm1 | Fyl2x | Fyl2xp1 => Approx::Transcendental,
        Rcpps | Rsqrtps => Approx::Reciprocal { packed: true },
        Rcpss | Rsqrtss => Approx::Reciprocal { packed: false },
        _ => Approx::Exact,
    }
}

/// The CPU vendors of the host and of softvm's model, from CPUID leaf 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vendors {
    pub host: [u8; 12],
    pub emu: [u8; 12],
}

impl Vendors {
    pub fn same(&self) -> bool {
        self.host == self.emu
    }

    pub fn host_name(&self) -> String {
        String::from_utf8_lossy(&self.host).into_owned()
    }

    pub fn emu_name(&self) -> String {
        String::from_utf8_lossy(&self.emu).into_owned()
    }
}

/// The largest relative difference between two approximations the
/// manuals allow: each is within 1.5 x 2^-12 of the true value.
const RECIPROCAL_BOUND: f64 = 3.0 / 4096.0;
/// Transcendentals: this many units in the last place (of the 64-bit
/// significand) are accepted outright...
pub const TRANSCENDENTAL_ULPS: u64 = 1 << 10;
/// ...and so is an absolute difference below this, times max(1, |x|) and
/// 1 + y² (the argument reduction of FSIN/FCOS/FPTAN differs between
/// implementations by a few bits of pi, which shows as an absolute error
/// growing with the argument, amplified by FPTAN's slope).
const REDUCTION_ERROR: f64 = 1.0 / (1u64 << 56) as f64;

/// An 80-bit value in an order where neighbours differ by 1 (`None` for
/// NaNs and infinities).
fn f80_ordinal(se: u16, m: u64) -> Option<i128> {
    let e = se & 0x7fff;
    if e == 0x7fff {
        return None;
    }
    let mag = if e == 0 {
        i128::from(m)
    } else {
        (i128::from(e) << 63) | i128::from(m & !(1 << 63))
    };
    Some(if se & 0x8000 != 0 { -mag } else { mag })
}

/// The difference of two f32 values in units in the last place, when
/// both are finite, non-zero and of the same sign.
fn f32_ulps(a: u32, b: u32) -> Option<u64> {
    let finite_nonzero = |v: u32| v & 0x7f80_0000 != 0x7f80_0000 && v & 0x7fff_ffff != 0;
    if !finite_nonzero(a) || !finite_nonzero(b) || (a ^ b) >> 31 != 0 {
        return None;
    }
    Some(u64::from(a.abs_diff(b)))
}

/// What comparing the floating-point state found.
#[derive(Debug, Default)]
pub struct FpDiffs {
    /// Differences that fail the case.
    pub diffs: Vec<String>,
    /// The largest accepted approximation difference, in ulps.
    pub approx_ulps: Option<u64>,
}

/// Compares the state after an instance of `code` (input state `input`,
/// with a memory operand if `has_mem`) on the host and in the emulator.
pub fn compare(
    code: Code,
    has_mem: bool,
    input: &FxImage,
    host: &FxImage,
    emu: &FxImage,
    v: &Vendors,
) -> FpDiffs {
    let mut out = FpDiffs::default();
    if host.fsw() & ES != 0 {
        let mut pointers = vec![
            ("fip", host.fip(), emu.fip()),
            ("fop", u64::from(host.fop()), u64::from(emu.fop())),
        ];
        if has_mem {
            pointers.push(("fdp", host.fdp(), emu.fdp()));
        }
        for (name, h, e) in pointers {
            if h != e {
                out.diffs.push(format!(
                    "{name} (an exception is pending): host {h:#x} emulator {e:#x}"
                ));
            }
        }
    }
    let mode = approx(code);
    let mut fsw_mask = !fsw_undefined(code);
    // ST registers.
    for i in 0..8 {
        let (h, e) = (host.st_parts(i), emu.st_parts(i));
        if h == e {
            continue;
        }
        if mode == Approx::Transcendental {
            if let Some(ulps) = transcendental_close(input, h, e) {
                out.approx_ulps = out.approx_ulps.max(Some(ulps));
                // The rounding direction and inexactness of results that
                // differ in their last bits may differ too.
                fsw_mask &= !(C1 | PE);
                continue;
            }
        }
        out.diffs.push(format!(
            "st({i}): host {:04x}:{:016x} emulator {:04x}:{:016x}",
            h.0, h.1, e.0, e.1
        ));
    }
    let fields = [
        ("fcw", u64::from(host.fcw()), u64::from(emu.fcw()), u64::MAX),
        (
            "fsw",
            u64::from(host.fsw()),
            u64::from(emu.fsw()),
            u64::from(fsw_mask),
        ),
        ("ftw", u64::from(host.ftw()), u64::from(emu.ftw()), u64::MAX),
        (
            "mxcsr",
            u64::from(host.mxcsr()),
            u64::from(emu.mxcsr()),
            u64::MAX,
        ),
    ];
    for (name, h, e, mask) in fields {
        if (h ^ e) & mask != 0 {
            out.diffs.push(format!(
                "{name} (mask {mask:#x}): host {h:#x} emulator {e:#x}"
            ));
        }
    }
    for i in 0..16 {
        let (h, e) = (host.xmm(i), emu.xmm(i));
        if h == e {
            continue;
        }
        if let Approx::Reciprocal { packed } = mode {
            if !v.same() {
                if let Some(ulps) = reciprocal_close(h, e, packed) {
                    out.approx_ulps = out.approx_ulps.max(Some(ulps));
                    continue;
                }
            }
        }
        out.diffs
            .push(format!("xmm{i}: host {h:#034x} emulator {e:#034x}"));
    }
    out
}

/// Whether two transcendental results are close; their distance in ulps.
fn transcendental_close(input: &FxImage, h: (u16, u64), e: (u16, u64)) -> Option<u64> {
    let (a, b) = (f80_ordinal(h.0, h.1)?, f80_ordinal(e.0, e.1)?);
    let zero = |v: (u16, u64)| v.0 & 0x7fff == 0 && v.1 == 0;
    if zero(h) != zero(e) && a.abs_diff(b) > u128::from(TRANSCENDENTAL_ULPS) {
        return None;
    }
    let ulps = u64::try_from(a.abs_diff(b)).unwrap_or(u64::MAX);
    if ulps <= TRANSCENDENTAL_ULPS {
        return Some(ulps);
    }
    let (st0se, st0m) = input.st_parts(0);
    let x = f80_to_f64(st0se, st0m).abs();
    let (y1, y2) = (f80_to_f64(h.0, h.1), f80_to_f64(e.0, e.1));
    let y = y1.abs().max(y2.abs());
    let bound = REDUCTION_ERROR * x.max(1.0) * (1.0 + y * y);
    ((y1 - y2).abs() <= bound).then_some(ulps)
}

/// Whether two XMM values differ only by approximation within the bound;
/// the largest element difference in ulps.
fn reciprocal_close(h: u128, e: u128, packed: bool) -> Option<u64> {
    let lanes = if packed { 4 } else { 1 };
    let mut worst = 0;
    for k in 0..4 {
        let (a, b) = ((h >> (32 * k)) as u32, (e >> (32 * k)) as u32);
        if a == b {
            continue;
        }
        if k >= lanes {
            return None;
        }
        let ulps = f32_ulps(a, b)?;
        let (x, y) = (f64::from(f32::from_bits(a)), f64::from(f32::from_bits(b)));
        if ((x - y) / x).abs() > RECIPROCAL_BOUND {
            return None;
        }
        worst = worst.max(ulps);
    }
    Some(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_condition_codes() {
        assert_eq!(fsw_undefined(Code::Fadd_m32fp), C0 | C2 | C3);
        assert_eq!(fsw_undefined(Code::Fcom_m32fp), 0);
        assert_eq!(fsw_undefined(Code::Fsin), C0 | C3);
        assert_eq!(fsw_undefined(Code::Fnstsw_AX), C0 | C1 | C2 | C3);
        assert_eq!(fsw_undefined(Code::Addps_xmm_xmmm128), 0);
    }

    fn vendors(same: bool) -> Vendors {
        Vendors {
            host: *b"AuthenticAMD",
            emu: if same {
                *b"AuthenticAMD"
            } else {
                *b"GenuineIntel"
            },
        }
    }

    /// Compares from the default input state.
    fn cmp(code: Code, has_mem: bool, h: &FxImage, e: &FxImage, same: bool) -> FpDiffs {
        compare(code, has_mem, &FxImage::default(), h, e, &vendors(same))
    }

    #[test]
    fn reciprocals_are_exact_for_the_same_vendor_only() {
        let mut h = FxImage::default();
        let mut e = FxImage::default();
        h.set_xmm(3, u128::from(0.5f32.to_bits()));
        e.set_xmm(3, u128::from(0.5f32.to_bits() + 3));
        let c = cmp(Code::Rcpss_xmm_xmmm32, false, &h, &e, false);
        assert!(c.diffs.is_empty(), "{:?}", c.diffs);
        assert_eq!(c.approx_ulps, Some(3));
        let c = cmp(Code::Rcpss_xmm_xmmm32, false, &h, &e, true);
        assert_eq!(c.diffs.len(), 1);
        // Far off, or in an element the scalar form does not write.
        e.set_xmm(3, u128::from(0.6f32.to_bits()));
        let c = cmp(Code::Rcpss_xmm_xmmm32, false, &h, &e, false);
        assert_eq!(c.diffs.len(), 1);
        e.set_xmm(3, u128::from(0.5f32.to_bits()) | (1 << 40));
        let c = cmp(Code::Rcpss_xmm_xmmm32, false, &h, &e, false);
        assert_eq!(c.diffs.len(), 1);
    }

    #[test]
    fn pointers_only_while_an_exception_is_pending() {
        let mut h = FxImage::default();
        let mut e = FxImage::default();
        h.set_fip(0x1000);
        e.set_fip(0x2000);
        h.set_fdp(0x3000);
        let c = cmp(Code::Fadd_m32fp, true, &h, &e, false);
        assert!(c.diffs.is_empty());
        h.set_fsw(ES | 4);
        e.set_fsw(ES | 4);
        let c = cmp(Code::Fadd_m32fp, true, &h, &e, false);
        assert_eq!(c.diffs.len(), 2, "{:?}", c.diffs);
        let c = cmp(Code::Fadd_st0_sti, false, &h, &e, false);
        assert_eq!(c.diffs.len(), 1, "{:?}", c.diffs);
    }

    #[test]
    fn transcendentals_within_tolerance() {
        let mut h = FxImage::default();
        let mut e = FxImage::default();
        h.set_st_parts(0, 0x3ffe, 0xd000_0000_0000_0000);
        e.set_st_parts(0, 0x3ffe, 0xd000_0000_0000_0007);
        e.set_fsw(C1);
        let c = cmp(Code::Fsin, false, &h, &e, false);
        assert!(c.diffs.is_empty(), "{:?}", c.diffs);
        assert_eq!(c.approx_ulps, Some(7));
        e.set_st_parts(0, 0xbffe, 0xd000_0000_0000_0007);
        e.set_fsw(0);
        let c = cmp(Code::Fsin, false, &h, &e, false);
        assert_eq!(c.diffs.len(), 1, "sign differs: {:?}", c.diffs);
        // Exact forms accept no difference.
        e.set_st_parts(0, 0x3ffe, 0xd000_0000_0000_0001);
        let c = cmp(Code::Fsqrt, false, &h, &e, false);
        assert_eq!(c.diffs.len(), 1);
    }
}

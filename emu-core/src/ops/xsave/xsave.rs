//! XSAVE, XSAVEOPT, XSAVEC and XRSTOR (SDM Vol. 1, 13.7 to 13.10) for the
//! x87 and SSE state components.
//!
//! The optimisations, honestly: XSAVEOPT and XSAVEC use the *init*
//! optimisation (a component in its initial configuration is not written;
//! XSTATE_BV says so and XRSTOR initialises it). XSAVEOPT's *modified*
//! optimisation (skip what is unchanged since the last XRSTOR from the
//! same address) is not used: saving anyway is always correct.

use super::image::{
    self, get64, put64, Image, AREA, HEADER, MXCSR_PART, X87_PARTS, XCOMP_BV, XSTATE_BV,
};
use super::{edx_eax, xinuse, xmm_count, xsave_enabled, Area};
use crate::cpu::fpu::{mxcsr, xcr0};
use crate::cpu::model::Feature;
use crate::exception::{Exception, ExecResult, Fault};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction};

/// XCOMP_BV bit 63: the image is in the compacted format.
const COMPACTED: u64 = 1 << 63;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Save {
    /// XSAVE: every requested component.
    Standard,
    /// XSAVEOPT: requested components that are in use.
    Opt,
    /// XSAVEC: likewise, in the compacted format.
    Compacted,
}

/// The REX.W forms use the 64-bit x87 format.
fn wide(ins: &Instruction) -> bool {
    matches!(
        ins.code(),
        Code::Xsave64_mem | Code::Xsaveopt64_mem | Code::Xsavec64_mem | Code::Xrstor64_mem
    )
}

/// The common part of XSAVE, XSAVEOPT and XSAVEC. RFBM (the requested
/// feature bitmap) is XCR0 AND EDX:EAX.
fn save(x: &mut Exec, ins: &Instruction, kind: Save) -> ExecResult {
    xsave_enabled(x)?;
    let area = Area::of(x, ins, 64)?;
    let rfbm = x.cpu.xcr0 & edx_eax(x);
    let inuse = xinuse(x);
    let n = xmm_count(x);
    let mut img: Image = [0; AREA];
    let mut parts = Vec::with_capacity(6);
    let (store, header) = match kind {
        Save::Standard | Save::Opt => {
            // XSTATE_BV keeps the bits of components not requested.
            area.read(x, &mut img, (XSTATE_BV, XSTATE_BV + 8))?;
            let old = get64(&img, XSTATE_BV);
            let store = if kind == Save::Opt {
                rfbm & inuse
            } else {
                rfbm
            };
            put64(&mut img, XSTATE_BV, (old & !rfbm) | (inuse & rfbm));
            (store, (XSTATE_BV, XSTATE_BV + 8))
        }
        Save::Compacted => {
            // SSE state is saved (and marked) when MXCSR is not at its
            // initial value even if XINUSE[1] is 0 (SDM Vol. 2, XSAVEC).
            let mut store = rfbm & inuse;
            if rfbm & xcr0::SSE != 0 && x.cpu.fpu.mxcsr != mxcsr::DEFAULT {
                store |= xcr0::SSE;
            }
            put64(&mut img, XSTATE_BV, store);
            put64(&mut img, XCOMP_BV, rfbm | COMPACTED);
            (store, (XSTATE_BV, XCOMP_BV + 8))
        }
    };
    let f = &x.cpu.fpu;
    if store & xcr0::X87 != 0 {
        let pointers = image::saves_pointers(x.sys.gate.vendor, f);
        image::store_x87(&mut img, f, wide(ins), pointers);
        parts.extend(X87_PARTS);
    }
    // MXCSR: with SSE state in XSAVEC; whenever SSE (or AVX, which softvm
    // lacks) is requested in XSAVE and XSAVEOPT, where neither
    // optimisation applies to it.
    let with_mxcsr = match kind {
        Save::Compacted => store & xcr0::SSE != 0,
        _ => rfbm & xcr0::SSE != 0,
    };
    if with_mxcsr {
        image::store_mxcsr(&mut img, f);
        parts.push(MXCSR_PART);
    }
    if store & xcr0::SSE != 0 {
        image::store_xmm(&mut img, f, n);
        parts.push(image::xmm_part(n));
    }
    parts.push(header);
    area.write(x, &img, &parts)
}

/// XSAVE — Save Processor Extended States
fn xsave(x: &mut Exec, ins: &Instruction) -> ExecResult {
    save(x, ins, Save::Standard)
}

/// XSAVEOPT — Save Processor Extended States Optimized
fn xsaveopt(x: &mut Exec, ins: &Instruction) -> ExecResult {
    save(x, ins, Save::Opt)
}

/// XSAVEC — Save Processor Extended States with Compaction
fn xsavec(x: &mut Exec, ins: &Instruction) -> ExecResult {
    save(x, ins, Save::Compacted)
}

/// Whether the XSAVE header in `img` is acceptable to XRSTOR (SDM Vol. 1,
/// 13.8.1): bytes 16..23 are zero in both formats; the standard format
/// has XCOMP_BV = 0 and no XSTATE_BV bit outside XCR0; the compacted one
/// (only with XSAVEC) has no XCOMP_BV bit outside XCR0, no XSTATE_BV bit
/// outside XCOMP_BV and bytes 24..63 zero.
fn header_ok(img: &Image, xcr0: u64, compacted_ok: bool) -> bool {
    let bv = get64(img, XSTATE_BV);
    let comp = get64(img, XCOMP_BV);
    if get64(img, XCOMP_BV + 8) != 0 {
        return false;
    }
    if comp & COMPACTED == 0 {
        return comp == 0 && bv & !xcr0 == 0;
    }
    compacted_ok
        && comp & !COMPACTED & !xcr0 == 0
        && bv & !comp == 0
        && img[HEADER + 24..AREA].iter().all(|&b| b == 0)
}

/// XRSTOR — Restore Processor Extended States. For each requested
/// component, XSTATE_BV = 1 loads it from the image and 0 puts it in its
/// initial configuration. MXCSR: the standard form loads it from the
/// image whenever SSE is requested, the compacted form with SSE state (or
/// sets it to 1F80h when SSE state is initialised); a value with a bit
/// outside MXCSR_MASK is #GP(0).
fn xrstor(x: &mut Exec, ins: &Instruction) -> ExecResult {
    xsave_enabled(x)?;
    let area = Area::of(x, ins, 64)?;
    let gp = || -> Fault { Exception::gp(0).into() };
    let rfbm = x.cpu.xcr0 & edx_eax(x);
    let n = xmm_count(x);
    let mut img: Image = [0; AREA];
    area.read(x, &mut img, (HEADER, AREA))?;
    let compacted_ok = x.sys.gate.features.contains(Feature::Xsavec);
    if !header_ok(&img, x.cpu.xcr0, compacted_ok) {
        return Err(gp());
    }
    let bv = get64(&img, XSTATE_BV);
    let compacted = get64(&img, XCOMP_BV) & COMPACTED != 0;
    let mut f = x.cpu.fpu.clone();
    if rfbm & xcr0::X87 != 0 {
        if bv & xcr0::X87 != 0 {
            for p in X87_PARTS {
                area.read(x, &mut img, p)?;
            }
            image::load_x87(&img, &mut f, wide(ins));
        } else {
            image::init_x87(&mut f);
        }
    }
    if rfbm & xcr0::SSE != 0 {
        let load = bv & xcr0::SSE != 0;
        if load {
            area.read(x, &mut img, image::xmm_part(n))?;
            image::load_xmm(&img, &mut f, n);
        } else {
            image::init_xmm(&mut f, n);
        }
        if load || !compacted {
            area.read(x, &mut img, MXCSR_PART)?;
            f.mxcsr = image::image_mxcsr(&img).ok_or_else(gp)?;
        } else {
            f.mxcsr = mxcsr::DEFAULT;
        }
    }
    x.cpu.fpu = f;
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    t.add(Code::Xsave_mem, xsave, 0);
    t.add(Code::Xsave64_mem, xsave, 0);
    t.add(Code::Xsaveopt_mem, xsaveopt, 0);
    t.add(Code::Xsaveopt64_mem, xsaveopt, 0);
    t.add(Code::Xsavec_mem, xsavec, 0);
    t.add(Code::Xsavec64_mem, xsavec, 0);
    t.add(Code::Xrstor_mem, xrstor, 0);
    t.add(Code::Xrstor64_mem, xrstor, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bv: u64, comp: u64, extra: (usize, u8)) -> Image {
        let mut img = [0; AREA];
        put64(&mut img, XSTATE_BV, bv);
        put64(&mut img, XCOMP_BV, comp);
        img[extra.0] = extra.1;
        img
    }

    #[test]
    fn header_rules() {
        let ok = |img: &Image| header_ok(img, 3, true);
        assert!(ok(&header(3, 0, (0, 0))));
        assert!(!ok(&header(4, 0, (0, 0))), "XSTATE_BV bit outside XCR0");
        assert!(!ok(&header(1, 1, (0, 0))), "XCOMP_BV without bit 63");
        assert!(!ok(&header(1, 0, (HEADER + 16, 1))), "bytes 16..23");
        assert!(
            ok(&header(1, 0, (HEADER + 40, 1))),
            "standard: 24..63 ignored"
        );
        assert!(ok(&header(1, COMPACTED | 3, (0, 0))));
        assert!(
            !ok(&header(3, COMPACTED | 1, (0, 0))),
            "XSTATE_BV outside XCOMP_BV"
        );
        assert!(
            !ok(&header(1, COMPACTED | 5, (0, 0))),
            "XCOMP_BV outside XCR0"
        );
        assert!(!ok(&header(1, COMPACTED | 1, (HEADER + 40, 1))));
        assert!(!header_ok(&header(1, COMPACTED | 1, (0, 0)), 3, false));
        assert!(!header_ok(&header(3, 0, (0, 0)), 1, true));
    }
}

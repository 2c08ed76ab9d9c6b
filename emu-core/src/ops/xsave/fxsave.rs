//! FXSAVE and FXRSTOR: the 512-byte image of the x87, MMX and SSE state.

use super::image::{self, AREA, MXCSR_PART, X87_PARTS};
use super::{xmm_count, Area};
use crate::cpu::state::{CR0_EM, CR0_TS};
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::{Code, Instruction};

/// #NM while CR0.EM or CR0.TS is set (FXSAVE and FXRSTOR are x87
/// instructions for this check, SDM Vol. 3A Table 2-2), then the operand,
/// which must be 16-byte aligned.
fn fx_area(x: &Exec, ins: &Instruction) -> ExecResult<Area> {
    if x.cpu.cr0 & (CR0_EM | CR0_TS) != 0 {
        return Err(Exception::nm().into());
    }
    Area::of(x, ins, 16)
}

/// The REX.W forms use the 64-bit format (64-bit FIP/FDP, no FCS/FDS).
fn wide(ins: &Instruction) -> bool {
    matches!(
        ins.code(),
        Code::Fxsave64_m512byte | Code::Fxrstor64_m512byte
    )
}

/// FXSAVE — Save x87 FPU, MMX Technology, and SSE State
///
/// With CR4.OSFXSR clear the SDM lets a processor leave out XMM and MXCSR
/// ("implementation dependent"). softvm follows the operation Intel's SDM
/// gives for FXSAVE and FXRSTOR, which saves and loads them whatever CR4
/// says (Bochs and QEMU leave the XMM registers out instead; no Intel
/// processor was at hand to measure, and user mode on the AMD host cannot
/// clear CR4.OSFXSR). Bytes 416..511 (and 288..415 outside 64-bit mode)
/// are not written.
fn fxsave(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let area = fx_area(x, ins)?;
    let n = xmm_count(x);
    let f = &x.cpu.fpu;
    let mut img = [0u8; AREA];
    let pointers = image::saves_pointers(x.sys.gate.vendor, f);
    image::store_x87(&mut img, f, wide(ins), pointers);
    image::store_mxcsr(&mut img, f);
    image::store_xmm(&mut img, f, n);
    let parts = [X87_PARTS[0], MXCSR_PART, X87_PARTS[1], image::xmm_part(n)];
    area.write(x, &img, &parts)
}

/// FXRSTOR — Restore x87 FPU, MMX, XMM, and MXCSR State. An MXCSR with a
/// bit MXCSR_MASK does not allow raises #GP(0) and changes nothing. XMM
/// and MXCSR are loaded whatever CR4.OSFXSR says (see [`fxsave`]).
fn fxrstor(x: &mut Exec, ins: &Instruction) -> ExecResult {
    let area = fx_area(x, ins)?;
    let n = xmm_count(x);
    let mut img = [0u8; AREA];
    area.read(x, &mut img, (0, image::xmm_part(n).1))?;
    let mxcsr = image::image_mxcsr(&img).ok_or(Exception::gp(0))?;
    let mut f = x.cpu.fpu.clone();
    image::load_x87(&img, &mut f, wide(ins));
    f.mxcsr = mxcsr;
    image::load_xmm(&img, &mut f, n);
    x.cpu.fpu = f;
    Ok(())
}

pub(super) fn register(t: &mut TableBuilder) {
    t.add(Code::Fxsave_m512byte, fxsave, 0);
    t.add(Code::Fxsave64_m512byte, fxsave, 0);
    t.add(Code::Fxrstor_m512byte, fxrstor, 0);
    t.add(Code::Fxrstor64_m512byte, fxrstor, 0);
}

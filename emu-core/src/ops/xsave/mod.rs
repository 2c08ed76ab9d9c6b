//! Saving and restoring the x87, MMX and SSE state: FXSAVE/FXRSTOR
//! (`fxsave`), the XSAVE feature set XSAVE, XSAVEOPT, XSAVEC and XRSTOR
//! (`xsave`), and XGETBV/XSETBV (`xcr`). The image layout and the
//! state-component rules they share are in `image`.
//!
//! softvm keeps two XSAVE state components, x87 (bit 0) and SSE (bit 1),
//! both in the legacy region, so every XSAVE image is 576 bytes and the
//! compacted format (XSAVEC) places them exactly where the standard one
//! does; CPUID leaf 0xD reports that (`cpuid.rs`).
//!
//! Every save first checks every byte it is going to write, then writes:
//! a fault leaves memory untouched. Every restore reads and checks
//! everything before it changes any register: a fault leaves the state
//! as it was.

mod fxsave;
mod image;
mod xcr;
#[allow(clippy::module_inception)]
mod xsave;

use crate::cpu::fpu::xcr0;
use crate::cpu::state::{Mode, SegReg, CR0_TS, CR4_OSXSAVE};
use crate::exception::{Exception, ExecResult};
use crate::exec::table::TableBuilder;
use crate::exec::Exec;
use iced_x86::Instruction;
use image::Image;

pub(crate) fn register(t: &mut TableBuilder) {
    fxsave::register(t);
    xsave::register(t);
    xcr::register(t);
}

/// Where an image lives: the segment and offset of its first byte.
#[derive(Clone, Copy)]
struct Area {
    seg: SegReg,
    off: u64,
}

impl Area {
    /// The memory operand of `ins`, which must be aligned to `align`
    /// bytes in the linear address space (#GP(0) otherwise, whatever
    /// CR0.AM and EFLAGS.AC say).
    fn of(x: &Exec, ins: &Instruction, align: u64) -> ExecResult<Area> {
        let (seg, off) = x.mem_loc(ins);
        x.check_alignment(seg, off, align)?;
        Ok(Area { seg, off })
    }

    fn at(&self, k: usize) -> u64 {
        self.off.wrapping_add(k as u64)
    }

    /// Read bytes `a..b` of the image into `img[a..b]`.
    fn read(&self, x: &mut Exec, img: &mut Image, (a, b): (usize, usize)) -> ExecResult {
        x.read_bytes(self.seg, self.at(a), &mut img[a..b])
    }

    /// Write the byte ranges `parts` of `img`: every range is checked
    /// for writing before any is written.
    fn write(&self, x: &mut Exec, img: &Image, parts: &[(usize, usize)]) -> ExecResult {
        for &(a, b) in parts {
            x.probe_write_bytes(self.seg, self.at(a), b - a)?;
        }
        for &(a, b) in parts {
            x.write_bytes(self.seg, self.at(a), &img[a..b])?;
        }
        Ok(())
    }
}

/// XMM registers in the SSE state component: XMM8..XMM15 exist only in
/// 64-bit mode, and outside it images neither store nor load them.
fn xmm_count(x: &Exec) -> usize {
    if x.cpu.mode() == Mode::Long64 {
        16
    } else {
        8
    }
}

/// XINUSE: which components are not in their initial configuration.
/// softvm computes it from the registers when asked, which is exact
/// (hardware may only track it, and report a component in use that is
/// not; XINUSE[i] = 0 must mean "initial", and here it always does).
fn xinuse(x: &Exec) -> u64 {
    let f = &x.cpu.fpu;
    let mut v = 0;
    if !image::x87_is_init(f) {
        v |= xcr0::X87;
    }
    if !image::sse_is_init(f, xmm_count(x)) {
        v |= xcr0::SSE;
    }
    v
}

/// The checks of every XSAVE-family instruction: #UD while CR4.OSXSAVE is
/// clear (the feature itself is the gate's), then #NM while CR0.TS is set.
/// CR0.EM does not matter to them.
fn xsave_enabled(x: &Exec) -> ExecResult {
    if x.cpu.cr4 & CR4_OSXSAVE == 0 {
        return Err(Exception::ud().into());
    }
    if x.cpu.cr0 & CR0_TS != 0 {
        return Err(Exception::nm().into());
    }
    Ok(())
}

/// EDX:EAX, the instruction mask of XSAVE/XRSTOR and the value of XSETBV.
fn edx_eax(x: &Exec) -> u64 {
    (x.cpu.gpr[2] << 32) | (x.cpu.gpr[0] & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::image::AREA;
    use crate::cpu::fpu::xcr0;
    use crate::cpu::model::CpuModel;
    use crate::cpuid::Cpuid;

    /// CPUID leaf 0xD describes exactly the images these instructions
    /// write: x87 and SSE, 576 bytes in both formats, XSAVEOPT, XSAVEC and
    /// XGETBV with ECX = 1, no XSAVES.
    #[test]
    fn leaf_0xd_matches_the_images() {
        let t = Cpuid::for_model(&CpuModel::max(), 0, 1);
        let s0 = t.lookup(0xd, 0);
        assert_eq!(u64::from(s0[0]) | u64::from(s0[3]) << 32, xcr0::SUPPORTED);
        assert_eq!((s0[1], s0[2]), (AREA as u32, AREA as u32));
        let s1 = t.lookup(0xd, 1);
        assert_eq!(s1[0], 0b0111, "XSAVEOPT, XSAVEC, XGETBV1, not XSAVES");
        assert_eq!(s1[1], AREA as u32);
        assert_eq!((s1[2], s1[3]), (0, 0), "no supervisor state (IA32_XSS)");
        // Components 0 and 1 live in the legacy region: their sub-leaves
        // are zero, and so is everything above.
        for sub in 2..64 {
            assert_eq!(t.lookup(0xd, sub), [0; 4], "sub-leaf {sub}");
        }
    }
}

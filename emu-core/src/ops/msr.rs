//! Model-specific registers softvm implements (stored values; unknown
//! indices raise #GP(0) as on hardware).

use crate::cpu::state::{CR0_PG, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE};
use crate::cpu::SegReg;
use crate::exception::{Exception, ExecResult};
use crate::exec::Exec;

pub const IA32_TSC: u32 = 0x10;
pub const IA32_APIC_BASE: u32 = 0x1b;
pub const IA32_MTRRCAP: u32 = 0xfe;
pub const IA32_SYSENTER_CS: u32 = 0x174;
pub const IA32_SYSENTER_ESP: u32 = 0x175;
pub const IA32_SYSENTER_EIP: u32 = 0x176;
pub const IA32_MISC_ENABLE: u32 = 0x1a0;
pub const IA32_PAT: u32 = 0x277;
pub const IA32_MTRR_DEF_TYPE: u32 = 0x2ff;
pub const IA32_TSC_DEADLINE: u32 = 0x6e0;
pub const IA32_EFER: u32 = 0xc000_0080;
pub const IA32_STAR: u32 = 0xc000_0081;
pub const IA32_LSTAR: u32 = 0xc000_0082;
pub const IA32_CSTAR: u32 = 0xc000_0083;
pub const IA32_FMASK: u32 = 0xc000_0084;
pub const IA32_FS_BASE: u32 = 0xc000_0100;
pub const IA32_GS_BASE: u32 = 0xc000_0101;
pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const IA32_TSC_AUX: u32 = 0xc000_0103;

/// Fixed-range MTRR MSR indices, in `Msrs::mtrr_fixed` order.
const MTRR_FIXED: [u32; 11] = [
    0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
];

fn gp<T>() -> ExecResult<T> {
    Err(Exception::gp(0).into())
}

pub fn read(x: &mut Exec, index: u32) -> ExecResult<u64> {
    let m = &x.cpu.msrs;
    Ok(match index {
        IA32_TSC => crate::ops::misc::tsc(x),
        IA32_APIC_BASE => x.sys.apic.base(),
        IA32_MTRRCAP => 0x508, // 8 variable ranges, fixed ranges, WC
        IA32_SYSENTER_CS => m.sysenter_cs,
        IA32_SYSENTER_ESP => m.sysenter_esp,
        IA32_SYSENTER_EIP => m.sysenter_eip,
        IA32_MISC_ENABLE => m.misc_enable,
        IA32_PAT => m.pat,
        IA32_MTRR_DEF_TYPE => m.mtrr_def_type,
        IA32_TSC_DEADLINE => x.sys.apic.tsc_deadline(),
        0x800..=0x8ff => {
            x.sys.sync_apic_clock(x.instret);
            return x.sys.apic.read_msr(index).ok_or(Exception::gp(0).into());
        }
        IA32_EFER => x.cpu.efer,
        IA32_STAR => m.star,
        IA32_LSTAR => m.lstar,
        IA32_CSTAR => m.cstar,
        IA32_FMASK => m.sfmask,
        IA32_FS_BASE => x.cpu.sreg(SegReg::Fs).base,
        IA32_GS_BASE => x.cpu.sreg(SegReg::Gs).base,
        IA32_KERNEL_GS_BASE => m.kernel_gs_base,
        IA32_TSC_AUX => m.tsc_aux,
        0x200..=0x20f => m.mtrr_var[(index - 0x200) as usize],
        _ => match MTRR_FIXED.iter().position(|&i| i == index) {
            Some(k) => m.mtrr_fixed[k],
            None => return gp(),
        },
    })
}

fn canonical(v: u64) -> ExecResult<u64> {
    if crate::exec::mem::is_canonical(v) {
        Ok(v)
    } else {
        gp()
    }
}

pub fn write(x: &mut Exec, index: u32, v: u64) -> ExecResult {
    match index {
        IA32_TSC => {
            let now = x.sys.clock.now_tsc(x.instret);
            x.cpu.tsc_offset = v.wrapping_sub(now);
        }
        IA32_APIC_BASE => {
            x.sys.apic.set_base(v).or_else(|_| gp())?;
            x.cpu.apic_base = x.sys.apic.base();
            x.sys.apic_touched = true;
        }
        0x800..=0x8ff => {
            x.sys.sync_apic_clock(x.instret);
            let ipi = x.sys.apic.write_msr(index, v).or_else(|_| gp())?;
            if let Some(ipi) = ipi {
                x.sys.bus.send(&ipi);
            }
            x.sys.apic_touched = true;
        }
        IA32_SYSENTER_CS => x.cpu.msrs.sysenter_cs = v & 0xffff,
        IA32_SYSENTER_ESP => x.cpu.msrs.sysenter_esp = canonical(v)?,
        IA32_SYSENTER_EIP => x.cpu.msrs.sysenter_eip = canonical(v)?,
        IA32_MISC_ENABLE => x.cpu.msrs.misc_enable = v,
        IA32_PAT => {
            // Each entry must be a valid memory type (0, 1, 4, 5, 6, 7).
            if (0..8).any(|i| matches!((v >> (i * 8)) & 0xff, 2 | 3 | 8..=0xff)) {
                return gp();
            }
            x.cpu.msrs.pat = v;
        }
        IA32_MTRR_DEF_TYPE => x.cpu.msrs.mtrr_def_type = v,
        IA32_TSC_DEADLINE => {
            x.sys.sync_apic_clock(x.instret);
            x.sys.apic.set_tsc_deadline(v);
            x.sys.apic_touched = true;
        }
        IA32_EFER => {
            let allowed = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
            if v & !allowed != 0 {
                return gp();
            }
            let old = x.cpu.efer;
            // LME cannot change while paging is on; LMA is read-only.
            if x.cpu.cr0 & CR0_PG != 0 && (old ^ v) & EFER_LME != 0 {
                return gp();
            }
            x.cpu.efer = (v & !EFER_LMA) | (old & EFER_LMA);
            if (old ^ v) & EFER_NXE != 0 {
                x.mmu.flush(softmmu::Flush::All);
            }
        }
        IA32_STAR => x.cpu.msrs.star = v,
        IA32_LSTAR => x.cpu.msrs.lstar = canonical(v)?,
        IA32_CSTAR => x.cpu.msrs.cstar = canonical(v)?,
        IA32_FMASK => x.cpu.msrs.sfmask = v & 0xffff_ffff,
        IA32_FS_BASE => x.cpu.sreg_mut(SegReg::Fs).base = canonical(v)?,
        IA32_GS_BASE => x.cpu.sreg_mut(SegReg::Gs).base = canonical(v)?,
        IA32_KERNEL_GS_BASE => x.cpu.msrs.kernel_gs_base = canonical(v)?,
        IA32_TSC_AUX => x.cpu.msrs.tsc_aux = v & 0xffff_ffff,
        0x200..=0x20f => x.cpu.msrs.mtrr_var[(index - 0x200) as usize] = v,
        _ => match MTRR_FIXED.iter().position(|&i| i == index) {
            Some(k) => x.cpu.msrs.mtrr_fixed[k] = v,
            None => return gp(),
        },
    }
    Ok(())
}

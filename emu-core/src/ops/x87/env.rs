//! The x87 environment and state images: FSTENV/FNSTENV, FLDENV,
//! FSAVE/FNSAVE, FRSTOR, in the four formats of Intel SDM Vol. 1, 8.1.10
//! (Figures 8-9 to 8-12): 16- or 32-bit by operand size, and a protected
//! mode layout (FIP/FDP as offsets with their selectors) or a real-mode
//! one (real and virtual-8086 mode: the linear addresses, the opcode
//! beside the high bits of FIP). 64-bit mode uses the protected-mode
//! layouts, with the low 32 (or 16) bits of FIP and FDP.
//!
//! Reserved fields are stored as ones, as the processor does (measured on
//! the host: the upper halves of the control, status and tag word
//! doublewords and of the FDS doubleword read 0xffff).
//!
//! The tag word stored is the full one, derived from the register
//! contents; the one loaded keeps only "empty or not" (see `FpuState`).

use super::control::{load_fcw, update_es};
use crate::cpu::flags::VM;
use crate::cpu::fpu::{fcw, F80};
use crate::cpu::Mode;
use crate::exception::ExecResult;
use crate::exec::Exec;
use iced_x86::{Instruction, MemorySize};

/// Which image: 16- or 32-bit, protected- or real-mode layout.
#[derive(Clone, Copy, Debug)]
struct Layout {
    wide: bool,
    real: bool,
}

impl Layout {
    fn of(x: &Exec, ins: &Instruction) -> Layout {
        let wide = matches!(
            ins.memory_size(),
            MemorySize::FpuEnv28 | MemorySize::FpuState108
        );
        let real = x.cpu.mode() == Mode::Real || x.cpu.flags.get() & VM != 0;
        Layout { wide, real }
    }

    /// Bytes of the environment.
    fn env_len(self) -> usize {
        if self.wide {
            28
        } else {
            14
        }
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The environment image (`l.env_len()` bytes of the result).
fn store_env(x: &Exec, l: Layout) -> [u8; 28] {
    let f = &x.cpu.fpu;
    let mut b = [0xffu8; 28];
    let (fip, fdp) = if l.real {
        // Real-address mode: the linear addresses of the instruction
        // and of its operand.
        let lin = |sel: u16, off: u64| (u64::from(sel) << 4).wrapping_add(off) as u32;
        (lin(f.fcs, f.fip), lin(f.fds, f.fdp))
    } else {
        (f.fip as u32, f.fdp as u32)
    };
    let fop = f.fop & 0x7ff;
    let words = [f.fcw, f.fsw, f.full_tag_word()];
    if l.wide {
        for (i, w) in words.into_iter().enumerate() {
            put16(&mut b, 4 * i, w);
        }
        if l.real {
            put16(&mut b, 12, fip as u16);
            put32(&mut b, 16, ((fip >> 16) << 12) | u32::from(fop));
            put16(&mut b, 20, fdp as u16);
            put32(&mut b, 24, (fdp >> 16) << 12);
        } else {
            put32(&mut b, 12, fip);
            put16(&mut b, 16, f.fcs);
            put16(&mut b, 18, fop);
            put32(&mut b, 20, fdp);
            put16(&mut b, 24, f.fds);
        }
    } else {
        for (i, w) in words.into_iter().enumerate() {
            put16(&mut b, 2 * i, w);
        }
        put16(&mut b, 6, fip as u16);
        put16(&mut b, 10, fdp as u16);
        if l.real {
            put16(&mut b, 8, (((fip >> 16) & 0xf) << 12) as u16 | fop);
            put16(&mut b, 12, (((fdp >> 16) & 0xf) << 12) as u16);
        } else {
            put16(&mut b, 8, f.fcs);
            put16(&mut b, 12, f.fds);
        }
    }
    b
}

/// Load the environment from its image.
fn load_env(x: &mut Exec, l: Layout, b: &[u8]) {
    let step = if l.wide { 4 } else { 2 };
    let (cw, sw, tw) = (get16(b, 0), get16(b, step), get16(b, 2 * step));
    let f = &mut x.cpu.fpu;
    if l.wide {
        if l.real {
            let hi = get32(b, 16);
            f.fip = u64::from(get16(b, 12)) | u64::from((hi >> 12) & 0xffff) << 16;
            f.fop = hi as u16 & 0x7ff;
            f.fdp = u64::from(get16(b, 20)) | u64::from((get32(b, 24) >> 12) & 0xffff) << 16;
            f.fcs = 0;
            f.fds = 0;
        } else {
            f.fip = u64::from(get32(b, 12));
            f.fcs = get16(b, 16);
            f.fop = get16(b, 18) & 0x7ff;
            f.fdp = u64::from(get32(b, 20));
            f.fds = get16(b, 24);
        }
    } else if l.real {
        let hi = get16(b, 8);
        f.fip = u64::from(get16(b, 6)) | u64::from(hi >> 12) << 16;
        f.fop = hi & 0x7ff;
        f.fdp = u64::from(get16(b, 10)) | u64::from(get16(b, 12) >> 12) << 16;
        f.fcs = 0;
        f.fds = 0;
    } else {
        // The 16-bit protected-mode image has no opcode field.
        f.fop = 0;
        f.fip = u64::from(get16(b, 6));
        f.fcs = get16(b, 8);
        f.fdp = u64::from(get16(b, 10));
        f.fds = get16(b, 12);
    }
    f.fsw = sw;
    f.set_full_tag_word(tw);
    load_fcw(x, cw);
    update_es(x);
}

/// FNSTENV — Store x87 FPU Environment (no wait), then mask every
/// exception (which clears ES and B); FNSAVE (`SAVE`) — Store x87 FPU
/// State (no wait): the environment and ST(0) to ST(7), then FNINIT.
pub(super) fn store<const SAVE: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.x87_check(false)?;
    let l = Layout::of(x, ins);
    let n = l.env_len();
    let mut b = [0u8; 108];
    b[..n].copy_from_slice(&store_env(x, l)[..n]);
    let len = if SAVE {
        for i in 0..8 {
            b[n + 10 * i..n + 10 * i + 10].copy_from_slice(&x.cpu.fpu.st(i).to_bytes());
        }
        n + 80
    } else {
        n
    };
    let (s, o) = x.mem_loc(ins);
    x.write_bytes(s, o, &b[..len])?;
    if SAVE {
        x.cpu.fpu.finit();
    } else {
        x.cpu.fpu.fcw |= fcw::MASKS;
        update_es(x);
    }
    Ok(())
}

/// FLDENV — Load x87 FPU Environment; FRSTOR (`REGS`) — Restore x87 FPU
/// State: the environment, then ST(0) to ST(7) relative to the loaded
/// TOP.
pub(super) fn load<const REGS: bool>(x: &mut Exec, ins: &Instruction) -> ExecResult {
    x.x87_check(true)?;
    let l = Layout::of(x, ins);
    let n = l.env_len();
    let len = if REGS { n + 80 } else { n };
    let mut b = [0u8; 108];
    let (s, o) = x.mem_loc(ins);
    x.read_bytes(s, o, &mut b[..len])?;
    load_env(x, l, &b);
    if REGS {
        for i in 0..8 {
            let mut r = [0u8; 10];
            r.copy_from_slice(&b[n + 10 * i..n + 10 * i + 10]);
            let p = x.cpu.fpu.phys(i);
            x.cpu.fpu.regs[p] = F80::from_bytes(&r);
        }
    }
    Ok(())
}

//! The register file of one vCPU and the mode it derives from it.

use super::flags::Flags;
use super::fpu::{FpuState, F80};
use super::hot::HotSegs;
use crate::api_types::{DTable, Fpu, Regs, Segment, Sregs};

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_MP: u64 = 1 << 1;
pub const CR0_EM: u64 = 1 << 2;
pub const CR0_TS: u64 = 1 << 3;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_NE: u64 = 1 << 5;
pub const CR0_WP: u64 = 1 << 16;
pub const CR0_AM: u64 = 1 << 18;
pub const CR0_NW: u64 = 1 << 29;
pub const CR0_CD: u64 = 1 << 30;
pub const CR0_PG: u64 = 1 << 31;

pub const CR4_VME: u64 = 1 << 0;
pub const CR4_PVI: u64 = 1 << 1;
pub const CR4_TSD: u64 = 1 << 2;
pub const CR4_DE: u64 = 1 << 3;
pub const CR4_PSE: u64 = 1 << 4;
pub const CR4_PAE: u64 = 1 << 5;
pub const CR4_MCE: u64 = 1 << 6;
pub const CR4_PGE: u64 = 1 << 7;
pub const CR4_PCE: u64 = 1 << 8;
pub const CR4_OSFXSR: u64 = 1 << 9;
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
pub const CR4_UMIP: u64 = 1 << 11;
pub const CR4_FSGSBASE: u64 = 1 << 16;
pub const CR4_PCIDE: u64 = 1 << 17;
pub const CR4_OSXSAVE: u64 = 1 << 18;
pub const CR4_SMEP: u64 = 1 << 20;
pub const CR4_SMAP: u64 = 1 << 21;

pub const EFER_SCE: u64 = 1 << 0;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
pub const EFER_NXE: u64 = 1 << 11;

/// Segment registers in the order of their ModRM encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegReg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

/// The execution mode, derived from CR0.PE, EFER.LMA, CS.L and CS.D.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Real,
    Protected16,
    Protected32,
    /// Long mode, compatibility sub-mode with a 16- or 32-bit CS.
    Compat16,
    Compat32,
    Long64,
}

impl Mode {
    /// Default code size in bits, as iced-x86's decoder wants it.
    pub fn bitness(self) -> u32 {
        match self {
            Mode::Real | Mode::Protected16 | Mode::Compat16 => 16,
            Mode::Protected32 | Mode::Compat32 => 32,
            Mode::Long64 => 64,
        }
    }
}

/// Model-specific registers softvm stores.
#[derive(Clone, Debug, Default)]
pub struct Msrs {
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub tsc_aux: u64,
    pub pat: u64,
    pub misc_enable: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub mtrr_def_type: u64,
    pub mtrr_fixed: [u64; 11],
    pub mtrr_var: [u64; 16],
}

/// One vCPU's architectural state.
#[derive(Clone, Debug)]
pub struct Cpu {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub flags: Flags,
    seg: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: DTable,
    pub idtr: DTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub apic_base: u64,
    pub dr: [u64; 8],
    pub msrs: Msrs,
    /// x87, MMX and SSE registers.
    pub fpu: FpuState,
    /// XCR0 (XSETBV): the state components XSAVE manages; x87 always set.
    pub xcr0: u64,
    /// Guest TSC = host-independent virtual counter: instructions retired
    /// plus this offset, so runs are deterministic.
    pub tsc_offset: u64,
    pub instret: u64,
    mode: Mode,
    /// The hot memory path's view of the segments (see [`super::hot`]);
    /// cleared whenever a segment register or the mode changes.
    hot: HotSegs,
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

impl Cpu {
    /// State after RESET (Intel SDM Vol. 3A, 10.1.1), except that softvm
    /// starts the bootstrap processor wherever the VMM sets RIP.
    pub fn new() -> Cpu {
        let mut cpu = Cpu {
            gpr: [0; 16],
            rip: 0xfff0,
            flags: Flags::default(),
            seg: [Segment::real_mode(0, false); 6],
            ldtr: Segment {
                limit: 0xffff,
                type_: 2,
                present: 1,
                ..Segment::default()
            },
            tr: Segment {
                limit: 0xffff,
                type_: 0xb,
                present: 1,
                ..Segment::default()
            },
            gdtr: DTable {
                base: 0,
                limit: 0xffff,
            },
            idtr: DTable {
                base: 0,
                limit: 0xffff,
            },
            cr0: CR0_ET | CR0_NW | CR0_CD,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            apic_base: 0xfee0_0900,
            dr: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            msrs: Msrs {
                pat: 0x0007_0406_0007_0406,
                misc_enable: 1,
                ..Msrs::default()
            },
            fpu: FpuState::new(),
            xcr0: super::fpu::xcr0::X87,
            tsc_offset: 0,
            instret: 0,
            mode: Mode::Real,
            hot: HotSegs::default(),
        };
        cpu.seg[SegReg::Cs as usize] = Segment {
            base: 0xffff_0000,
            ..Segment::real_mode(0xf000, true)
        };
        cpu.update_mode();
        cpu
    }

    #[inline]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Recompute the cached mode; call after any write to CR0, EFER or CS.
    pub fn update_mode(&mut self) {
        self.hot = HotSegs::default();
        let cs = &self.seg[SegReg::Cs as usize];
        self.mode = if self.cr0 & CR0_PE == 0 {
            Mode::Real
        } else if self.efer & EFER_LMA != 0 {
            if cs.l != 0 {
                Mode::Long64
            } else if cs.db != 0 {
                Mode::Compat32
            } else {
                Mode::Compat16
            }
        } else if cs.db != 0 {
            Mode::Protected32
        } else {
            Mode::Protected16
        };
    }

    /// Current privilege level: CS.DPL in protected mode (its RPL is the
    /// same), 0 in real mode.
    #[inline]
    pub fn cpl(&self) -> u8 {
        if self.mode == Mode::Real {
            0
        } else {
            self.seg[SegReg::Ss as usize].dpl
        }
    }

    /// Summarise the segments for the hot memory path (see
    /// [`super::hot`]).
    pub fn prepare_hot(&mut self) {
        self.hot = HotSegs::of(self.mode, &self.seg);
    }

    /// All six segment registers (to restore after a failed transfer).
    pub fn segs(&self) -> [Segment; 6] {
        self.seg
    }

    /// Put back segment registers saved with [`Cpu::segs`].
    pub fn restore_segs(&mut self, saved: [Segment; 6]) {
        self.seg = saved;
        self.hot = HotSegs::default();
    }

    /// Turn the hot path off (outside the interpreter's runs, where
    /// interrupt delivery and the VMM change state without preparing it).
    pub fn clear_hot(&mut self) {
        self.hot.clear();
    }

    /// The hot memory path's segment summary.
    #[inline(always)]
    pub fn hot(&self) -> &HotSegs {
        &self.hot
    }

    #[inline]
    pub fn sreg(&self, s: SegReg) -> &Segment {
        &self.seg[s as usize]
    }

    #[inline]
    pub fn sreg_mut(&mut self, s: SegReg) -> &mut Segment {
        self.hot = HotSegs::default();
        &mut self.seg[s as usize]
    }

    pub fn get_regs(&self) -> Regs {
        let g = &self.gpr;
        Regs {
            rax: g[0],
            rcx: g[1],
            rdx: g[2],
            rbx: g[3],
            rsp: g[4],
            rbp: g[5],
            rsi: g[6],
            rdi: g[7],
            r8: g[8],
            r9: g[9],
            r10: g[10],
            r11: g[11],
            r12: g[12],
            r13: g[13],
            r14: g[14],
            r15: g[15],
            rip: self.rip,
            rflags: self.flags.get(),
        }
    }

    pub fn set_regs(&mut self, r: &Regs) {
        self.gpr = [
            r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ];
        self.rip = r.rip;
        self.flags.set(r.rflags);
    }

    pub fn get_sregs(&self) -> Sregs {
        Sregs {
            es: self.seg[0],
            cs: self.seg[1],
            ss: self.seg[2],
            ds: self.seg[3],
            fs: self.seg[4],
            gs: self.seg[5],
            tr: self.tr,
            ldt: self.ldtr,
            gdt: self.gdtr,
            idt: self.idtr,
            cr0: self.cr0,
            cr2: self.cr2,
            cr3: self.cr3,
            cr4: self.cr4,
            cr8: self.cr8,
            efer: self.efer,
            apic_base: self.apic_base,
        }
    }

    pub fn set_sregs(&mut self, s: &Sregs) {
        self.seg = [s.es, s.cs, s.ss, s.ds, s.fs, s.gs];
        self.hot = HotSegs::default();
        self.tr = s.tr;
        self.ldtr = s.ldt;
        self.gdtr = s.gdt;
        self.idtr = s.idt;
        self.cr0 = s.cr0;
        self.cr2 = s.cr2;
        self.cr3 = s.cr3;
        self.cr4 = s.cr4;
        self.cr8 = s.cr8;
        self.efer = s.efer;
        self.apic_base = s.apic_base;
        self.update_mode();
    }

    /// The FPU state in KVM's `kvm_fpu` shape.
    pub fn get_fpu(&self) -> Fpu {
        let f = &self.fpu;
        let mut out = Fpu {
            fpr: [[0; 16]; 8],
            fcw: f.fcw,
            fsw: f.fsw,
            ftwx: f.ftw,
            last_opcode: f.fop,
            last_ip: f.fip,
            last_dp: f.fdp,
            xmm: [[0; 16]; 16],
            mxcsr: f.mxcsr,
        };
        for i in 0..8 {
            out.fpr[i][..10].copy_from_slice(&f.st(i).to_bytes());
        }
        for (o, x) in out.xmm.iter_mut().zip(f.xmm.iter()) {
            *o = x.to_le_bytes();
        }
        out
    }

    /// Load the FPU state from KVM's `kvm_fpu` shape.
    pub fn set_fpu(&mut self, v: &Fpu) {
        let f = &mut self.fpu;
        f.fcw = v.fcw;
        f.fsw = v.fsw;
        f.ftw = v.ftwx;
        f.fop = v.last_opcode & 0x7ff;
        f.fip = v.last_ip;
        f.fdp = v.last_dp;
        f.mxcsr = v.mxcsr & super::fpu::mxcsr::WRITABLE;
        for i in 0..8 {
            let mut b = [0u8; 10];
            b.copy_from_slice(&v.fpr[i][..10]);
            let p = f.phys(i);
            f.regs[p] = F80::from_bytes(&b);
        }
        for (x, b) in f.xmm.iter_mut().zip(v.xmm.iter()) {
            *x = u128::from_le_bytes(*b);
        }
    }
}

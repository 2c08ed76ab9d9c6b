//! The x87 FPU, MMX and SSE register file of one vCPU.
//!
//! The x87 stack lives in eight *physical* registers R0..R7; ST(i) is
//! R[(TOP + i) mod 8], TOP being FSW bits 11..=13. MMX register MMi is the
//! significand of physical register Ri (not of ST(i)), as on hardware: an
//! MMX instruction writes the significand, sets the exponent field to all
//! ones, and leaves TOP = 0 with every register tagged valid.
//!
//! The tag word is kept in its abridged form (one bit per physical
//! register: 1 = holds a value, 0 = empty), the form FXSAVE stores. The
//! full two-bit tags that FSTENV/FSAVE store are derived from the register
//! contents when they are stored, which is what the processor does as well
//! (Intel SDM Vol. 1, 8.1.7): FLDENV/FRSTOR only keep "empty or not".

/// An 80-bit extended-precision value: a 64-bit significand with an
/// explicit integer bit (bit 63) and a sign plus 15-bit biased exponent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct F80 {
    pub signif: u64,
    /// Bit 15: sign; bits 0..=14: biased exponent.
    pub se: u16,
}

impl F80 {
    pub const ZERO: F80 = F80 { signif: 0, se: 0 };

    pub const fn new(se: u16, signif: u64) -> F80 {
        F80 { signif, se }
    }

    /// The ten bytes of the memory format (significand first).
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.signif.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; 10]) -> F80 {
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        F80 {
            signif: u64::from_le_bytes(s),
            se: u16::from_le_bytes([b[8], b[9]]),
        }
    }

    pub fn exponent(self) -> u16 {
        self.se & 0x7fff
    }

    pub fn sign(self) -> bool {
        self.se & 0x8000 != 0
    }

    /// The two-bit tag FSTENV/FSAVE report for a non-empty register
    /// holding this value: 0 valid, 1 zero, 2 special (NaN, infinity,
    /// denormal, pseudo-denormal, unnormal).
    pub fn tag(self) -> u16 {
        let e = self.exponent();
        if e == 0x7fff {
            2
        } else if e == 0 {
            if self.signif == 0 {
                1
            } else {
                2
            }
        } else if self.signif >> 63 == 0 {
            // Unnormal: a non-zero exponent without the integer bit.
            2
        } else {
            0
        }
    }
}

/// FCW bits.
pub mod fcw {
    /// Exception masks IM, DM, ZM, OM, UM, PM.
    pub const MASKS: u16 = 0x3f;
    /// Precision control (bits 8..=9): 0 single, 2 double, 3 extended.
    pub const PC_SHIFT: u16 = 8;
    /// Rounding control (bits 10..=11): 0 nearest, 1 down, 2 up, 3 zero.
    pub const RC_SHIFT: u16 = 10;
    /// After FINIT: all exceptions masked, 64-bit precision, nearest.
    pub const DEFAULT: u16 = 0x037f;
}

/// FSW bits.
pub mod fsw {
    pub const IE: u16 = 1 << 0;
    pub const DE: u16 = 1 << 1;
    pub const ZE: u16 = 1 << 2;
    pub const OE: u16 = 1 << 3;
    pub const UE: u16 = 1 << 4;
    pub const PE: u16 = 1 << 5;
    /// Stack fault (with IE: C1 says overflow (1) or underflow (0)).
    pub const SF: u16 = 1 << 6;
    /// Error summary: an unmasked exception is pending.
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u16 = 11;
    pub const TOP_MASK: u16 = 7 << 11;
    pub const C3: u16 = 1 << 14;
    /// FPU busy: mirrors ES on every processor since the 387.
    pub const B: u16 = 1 << 15;
    /// Exception flags IE..PE.
    pub const EXCEPTIONS: u16 = 0x3f;
}

/// MXCSR bits.
pub mod mxcsr {
    /// Exception flags IE, DE, ZE, OE, UE, PE (bits 0..=5).
    pub const FLAGS: u32 = 0x3f;
    /// Denormals are zeros.
    pub const DAZ: u32 = 1 << 6;
    /// Exception masks (bits 7..=12).
    pub const MASK_SHIFT: u32 = 7;
    pub const MASKS: u32 = 0x3f << 7;
    /// Rounding control (bits 13..=14).
    pub const RC_SHIFT: u32 = 13;
    /// Flush to zero.
    pub const FTZ: u32 = 1 << 15;
    /// After RESET: every exception masked, round to nearest.
    pub const DEFAULT: u32 = 0x1f80;
    /// The bits software may set (FXSAVE's MXCSR_MASK): DAZ is supported.
    /// Setting any other bit with LDMXCSR/FXRSTOR/XRSTOR is a #GP.
    pub const WRITABLE: u32 = 0xffff;
}

/// XCR0 components softvm keeps: x87 and SSE state.
pub mod xcr0 {
    pub const X87: u64 = 1 << 0;
    pub const SSE: u64 = 1 << 1;
    /// Every state component softvm implements (what CPUID leaf 0xD
    /// sub-leaf 0 reports as supported).
    pub const SUPPORTED: u64 = X87 | SSE;
}

/// The x87, MMX and SSE state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FpuState {
    /// Physical registers R0..R7.
    pub regs: [F80; 8],
    pub fcw: u16,
    /// Status word, TOP included (bits 11..=13).
    pub fsw: u16,
    /// Abridged tag word: bit i set = Ri is not empty.
    pub ftw: u8,
    /// Last x87 non-control instruction: opcode (11 bits), CS:IP, DS:DP.
    pub fop: u16,
    pub fip: u64,
    pub fcs: u16,
    pub fdp: u64,
    pub fds: u16,
    pub xmm: [u128; 16],
    pub mxcsr: u32,
}

impl Default for FpuState {
    fn default() -> Self {
        FpuState::new()
    }
}

impl FpuState {
    /// State after RESET (SDM Vol. 3A, Table 10-1): FCW 0x40, every
    /// register empty, XMM zero, MXCSR 0x1f80.
    pub fn new() -> FpuState {
        FpuState {
            regs: [F80::ZERO; 8],
            fcw: 0x0040,
            fsw: 0,
            ftw: 0,
            fop: 0,
            fip: 0,
            fcs: 0,
            fdp: 0,
            fds: 0,
            xmm: [0; 16],
            mxcsr: mxcsr::DEFAULT,
        }
    }

    /// FNINIT: the x87 part to its initial state (XMM and MXCSR kept).
    pub fn finit(&mut self) {
        self.fcw = fcw::DEFAULT;
        self.fsw = 0;
        self.ftw = 0;
        self.fop = 0;
        self.fip = 0;
        self.fcs = 0;
        self.fdp = 0;
        self.fds = 0;
    }

    #[inline]
    pub fn top(&self) -> usize {
        usize::from((self.fsw & fsw::TOP_MASK) >> fsw::TOP_SHIFT)
    }

    #[inline]
    pub fn set_top(&mut self, top: usize) {
        self.fsw = (self.fsw & !fsw::TOP_MASK) | (((top & 7) as u16) << fsw::TOP_SHIFT);
    }

    /// Physical register number of ST(i).
    #[inline]
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }

    /// Whether ST(i) is empty.
    #[inline]
    pub fn st_empty(&self, i: usize) -> bool {
        self.ftw & (1 << self.phys(i)) == 0
    }

    /// ST(i), whatever its tag.
    #[inline]
    pub fn st(&self, i: usize) -> F80 {
        self.regs[self.phys(i)]
    }

    /// Write ST(i) and tag it valid.
    #[inline]
    pub fn set_st(&mut self, i: usize, v: F80) {
        let p = self.phys(i);
        self.regs[p] = v;
        self.ftw |= 1 << p;
    }

    /// Tag ST(i) empty (FFREE).
    #[inline]
    pub fn free_st(&mut self, i: usize) {
        let p = self.phys(i);
        self.ftw &= !(1 << p);
    }

    /// The full 16-bit tag word FSTENV/FSAVE store (two bits per physical
    /// register, 3 = empty), derived from the contents.
    pub fn full_tag_word(&self) -> u16 {
        (0..8).fold(0u16, |w, p| {
            let t = if self.ftw & (1 << p) == 0 {
                3
            } else {
                self.regs[p].tag()
            };
            w | (t << (2 * p))
        })
    }

    /// Load the tag word from its full form (FLDENV/FRSTOR): only "empty
    /// (3) or not" is kept.
    pub fn set_full_tag_word(&mut self, w: u16) {
        self.ftw = (0..8).fold(0u8, |a, p| {
            if (w >> (2 * p)) & 3 == 3 {
                a
            } else {
                a | (1 << p)
            }
        });
    }

    /// MMX register `i` (the significand of physical register Ri).
    #[inline]
    pub fn mmx(&self, i: usize) -> u64 {
        self.regs[i & 7].signif
    }

    /// Write MMX register `i`: significand, exponent all ones (SDM Vol. 1,
    /// 9.5.1), and the MMX transition (TOP = 0, all tags valid).
    #[inline]
    pub fn set_mmx(&mut self, i: usize, v: u64) {
        self.regs[i & 7] = F80 {
            signif: v,
            se: 0xffff,
        };
        self.enter_mmx();
    }

    /// What every MMX instruction but EMMS does to the x87 state: TOP = 0
    /// and every register tagged valid.
    #[inline]
    pub fn enter_mmx(&mut self) {
        self.set_top(0);
        self.ftw = 0xff;
    }

    /// EMMS: every register tagged empty, and TOP = 0 as after any MMX
    /// instruction (SDM Vol. 1, Table 9-2; the host agrees).
    #[inline]
    pub fn emms(&mut self) {
        self.set_top(0);
        self.ftw = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn st_follows_top() {
        let mut f = FpuState::new();
        f.set_top(6);
        f.set_st(0, F80::new(0x3fff, 1 << 63));
        f.set_st(3, F80::new(0x4000, 1 << 63));
        assert_eq!(f.regs[6].se, 0x3fff);
        assert_eq!(f.regs[1].se, 0x4000);
        assert_eq!(f.ftw, (1 << 6) | (1 << 1));
        assert!(!f.st_empty(0) && f.st_empty(1) && !f.st_empty(3));
    }

    #[test]
    fn full_tag_word_is_derived_from_contents() {
        let mut f = FpuState::new();
        f.regs[0] = F80::new(0x3fff, 1 << 63); // valid
        f.regs[1] = F80::ZERO; // zero
        f.regs[2] = F80::new(0x7fff, 1 << 63); // infinity: special
        f.regs[3] = F80::new(0, 1); // denormal: special
        f.regs[4] = F80::new(0x3fff, 1); // unnormal: special
        f.ftw = 0b0001_1111;
        assert_eq!(f.full_tag_word(), 0xfe00 | 0b10_10_10_01_00);
        let mut g = FpuState::new();
        g.set_full_tag_word(f.full_tag_word());
        assert_eq!(g.ftw, f.ftw);
        g.set_full_tag_word(0x0000);
        assert_eq!(g.ftw, 0xff);
    }

    #[test]
    fn mmx_aliases_physical_registers() {
        let mut f = FpuState::new();
        f.set_top(5);
        f.set_mmx(2, 0x1122_3344_5566_7788);
        assert_eq!(f.regs[2], F80::new(0xffff, 0x1122_3344_5566_7788));
        assert_eq!(f.top(), 0);
        assert_eq!(f.ftw, 0xff);
        assert_eq!(f.mmx(2), 0x1122_3344_5566_7788);
        f.set_top(3);
        f.emms();
        assert_eq!(f.ftw, 0);
        assert_eq!(f.top(), 0);
    }

    #[test]
    fn f80_bytes_round_trip() {
        let v = F80::new(0xc00a, 0xdead_beef_0123_4567);
        assert_eq!(F80::from_bytes(&v.to_bytes()), v);
        assert_eq!(v.to_bytes()[9], 0xc0);
    }
}

//! The x87, MMX and SSE state as a 64-bit FXSAVE image.
//!
//! The native runner loads the guest's floating-point state with FXRSTOR64
//! and stores it with FXSAVE64, so the image is the common currency of the
//! differential tests: [`FxImage::to_fpu`] and [`FxImage::from_fpu`]
//! convert it to and from emu-core's `kvm_fpu`-shaped [`Fpu`].
//!
//! Layout (Intel SDM Vol. 1, 10.5.1, Table 10-2, REX.W form): FCW at 0,
//! FSW at 2, the abridged tag byte at 4, FOP at 6, FIP (64-bit) at 8, FDP
//! (64-bit) at 16, MXCSR at 24, MXCSR_MASK at 28, ST(i)/MMi at 32 + 16 i
//! (ten bytes each, in stack order), XMMi at 160 + 16 i.

use emu_core::Fpu;

/// Bytes of an FXSAVE image.
pub const FX_SIZE: usize = 512;

pub const OFF_FCW: usize = 0;
pub const OFF_FSW: usize = 2;
pub const OFF_FTW: usize = 4;
pub const OFF_FOP: usize = 6;
pub const OFF_FIP: usize = 8;
pub const OFF_FDP: usize = 16;
pub const OFF_MXCSR: usize = 24;
pub const OFF_MXCSR_MASK: usize = 28;
pub const OFF_ST: usize = 32;
pub const OFF_XMM: usize = 160;

/// FCW after FNINIT.
pub const FCW_INIT: u16 = 0x037f;
/// MXCSR after reset.
pub const MXCSR_INIT: u32 = 0x1f80;

/// A 64-bit FXSAVE image, 16-byte aligned as FXSAVE/FXRSTOR require.
#[derive(Clone, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct FxImage(pub [u8; FX_SIZE]);

impl Default for FxImage {
    /// The state after FNINIT with MXCSR at its reset value: every x87
    /// register empty, XMM zero, all exceptions masked.
    fn default() -> Self {
        let mut f = FxImage([0; FX_SIZE]);
        f.set_fcw(FCW_INIT);
        f.set_mxcsr(MXCSR_INIT);
        f
    }
}

impl std::fmt::Debug for FxImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FxImage {{ fcw: {:#06x}, fsw: {:#06x}, ftw: {:#04x}, mxcsr: {:#x}, st: [",
            self.fcw(),
            self.fsw(),
            self.ftw(),
            self.mxcsr()
        )?;
        for i in 0..8 {
            let (se, m) = self.st_parts(i);
            write!(f, "{se:04x}:{m:016x} ")?;
        }
        write!(f, "], xmm: [")?;
        for i in 0..16 {
            write!(f, "{:032x} ", self.xmm(i))?;
        }
        write!(f, "] }}")
    }
}

impl FxImage {
    fn get<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut b = [0u8; N];
        b.copy_from_slice(&self.0[off..off + N]);
        b
    }

    fn put(&mut self, off: usize, bytes: &[u8]) {
        self.0[off..off + bytes.len()].copy_from_slice(bytes);
    }

    pub fn fcw(&self) -> u16 {
        u16::from_le_bytes(self.get(OFF_FCW))
    }

    pub fn set_fcw(&mut self, v: u16) {
        self.put(OFF_FCW, &v.to_le_bytes());
    }

    pub fn fsw(&self) -> u16 {
        u16::from_le_bytes(self.get(OFF_FSW))
    }

    pub fn set_fsw(&mut self, v: u16) {
        self.put(OFF_FSW, &v.to_le_bytes());
    }

    /// TOP, FSW bits 11..=13.
    pub fn top(&self) -> usize {
        usize::from((self.fsw() >> 11) & 7)
    }

    /// Abridged tag word: bit i set = physical register Ri is not empty.
    pub fn ftw(&self) -> u8 {
        self.0[OFF_FTW]
    }

    pub fn set_ftw(&mut self, v: u8) {
        self.0[OFF_FTW] = v;
    }

    pub fn fop(&self) -> u16 {
        u16::from_le_bytes(self.get(OFF_FOP))
    }

    pub fn set_fop(&mut self, v: u16) {
        self.put(OFF_FOP, &v.to_le_bytes());
    }

    pub fn fip(&self) -> u64 {
        u64::from_le_bytes(self.get(OFF_FIP))
    }

    pub fn set_fip(&mut self, v: u64) {
        self.put(OFF_FIP, &v.to_le_bytes());
    }

    pub fn fdp(&self) -> u64 {
        u64::from_le_bytes(self.get(OFF_FDP))
    }

    pub fn set_fdp(&mut self, v: u64) {
        self.put(OFF_FDP, &v.to_le_bytes());
    }

    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes(self.get(OFF_MXCSR))
    }

    pub fn set_mxcsr(&mut self, v: u32) {
        self.put(OFF_MXCSR, &v.to_le_bytes());
    }

    /// The ten bytes of ST(i) (significand, then sign and exponent).
    pub fn st(&self, i: usize) -> [u8; 10] {
        self.get(OFF_ST + 16 * i)
    }

    pub fn set_st(&mut self, i: usize, v: &[u8; 10]) {
        self.put(OFF_ST + 16 * i, v);
    }

    /// ST(i) as (sign and exponent, significand).
    pub fn st_parts(&self, i: usize) -> (u16, u64) {
        let b = self.st(i);
        let mut m = [0u8; 8];
        m.copy_from_slice(&b[..8]);
        (u16::from_le_bytes([b[8], b[9]]), u64::from_le_bytes(m))
    }

    pub fn set_st_parts(&mut self, i: usize, se: u16, signif: u64) {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&signif.to_le_bytes());
        b[8..].copy_from_slice(&se.to_le_bytes());
        self.set_st(i, &b);
    }

    /// Physical register `p` (R0..R7), independent of TOP.
    pub fn phys_parts(&self, p: usize) -> (u16, u64) {
        self.st_parts((p + 8 - self.top()) & 7)
    }

    pub fn set_phys_parts(&mut self, p: usize, se: u16, signif: u64) {
        let i = (p + 8 - self.top()) & 7;
        self.set_st_parts(i, se, signif);
    }

    /// MMX register MMi (the significand of physical register Ri).
    pub fn mm(&self, i: usize) -> u64 {
        self.phys_parts(i).1
    }

    pub fn xmm(&self, i: usize) -> u128 {
        u128::from_le_bytes(self.get(OFF_XMM + 16 * i))
    }

    pub fn set_xmm(&mut self, i: usize, v: u128) {
        self.put(OFF_XMM + 16 * i, &v.to_le_bytes());
    }

    /// emu-core's `kvm_fpu` shape of this state.
    pub fn to_fpu(&self) -> Fpu {
        let mut f = Fpu {
            fcw: self.fcw(),
            fsw: self.fsw(),
            ftwx: self.ftw(),
            last_opcode: self.fop(),
            last_ip: self.fip(),
            last_dp: self.fdp(),
            mxcsr: self.mxcsr(),
            ..Fpu::default()
        };
        for i in 0..8 {
            f.fpr[i][..10].copy_from_slice(&self.st(i));
        }
        for i in 0..16 {
            f.xmm[i] = self.xmm(i).to_le_bytes();
        }
        f
    }

    /// The image FXSAVE64 would store for `f` (MXCSR_MASK and the reserved
    /// bytes zero).
    pub fn from_fpu(f: &Fpu) -> FxImage {
        let mut x = FxImage([0; FX_SIZE]);
        x.set_fcw(f.fcw);
        x.set_fsw(f.fsw);
        x.set_ftw(f.ftwx);
        x.set_fop(f.last_opcode);
        x.set_fip(f.last_ip);
        x.set_fdp(f.last_dp);
        x.set_mxcsr(f.mxcsr);
        for i in 0..8 {
            let mut b = [0u8; 10];
            b.copy_from_slice(&f.fpr[i][..10]);
            x.set_st(i, &b);
        }
        for i in 0..16 {
            x.set_xmm(i, u128::from_le_bytes(f.xmm[i]));
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_fpu() {
        let mut x = FxImage::default();
        x.set_fsw(0x3800 | 0x4100); // TOP = 7, C3, C0
        x.set_ftw(0b1000_0001);
        x.set_fop(0x5d9);
        x.set_fip(0x1234_5678_9abc);
        x.set_fdp(0xfedc_ba98);
        x.set_mxcsr(0x7fc0);
        x.set_st_parts(0, 0x3fff, 1 << 63);
        x.set_st_parts(7, 0xc005, 0xdead_beef_0000_0001);
        x.set_xmm(15, 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        let f = x.to_fpu();
        assert_eq!(f.fpr[0][8..10], [0xff, 0x3f]);
        assert_eq!(f.xmm[15][0], 0xff);
        assert_eq!(FxImage::from_fpu(&f), x);
    }

    #[test]
    fn physical_registers_follow_top() {
        let mut x = FxImage::default();
        x.set_fsw(5 << 11);
        x.set_phys_parts(5, 0x4000, 7);
        x.set_phys_parts(2, 0xffff, 9);
        assert_eq!(x.st_parts(0), (0x4000, 7));
        assert_eq!(x.st_parts(5), (0xffff, 9));
        assert_eq!(x.mm(2), 9);
        assert_eq!(x.top(), 5);
    }
}

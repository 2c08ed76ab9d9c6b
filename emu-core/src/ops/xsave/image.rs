//! The legacy region of FXSAVE and XSAVE images (SDM Vol. 1, 10.5.1 and
//! 13.4.1; Vol. 2, FXSAVE Tables 3-43 to 3-46) and the XSAVE header, as
//! byte buffers, and the state-component rules both families share:
//! which components are in use (XINUSE) and their initial configuration.
//!
//! Layout of the first 576 bytes:
//!
//! ```text
//!   0 FCW   2 FSW   4 FTW (abridged)   5 reserved   6 FOP
//!   8 FIP (64-bit format: 8 bytes)  or  FIP[31:0], 12 FCS, 14 reserved
//!  16 FDP (64-bit format: 8 bytes)  or  FDP[31:0], 20 FDS, 22 reserved
//!  24 MXCSR   28 MXCSR_MASK
//!  32 ST0..ST7, 16 bytes each (10 used, 6 reserved), in stack order
//! 160 XMM0..XMM15 (XMM8..15 only in 64-bit mode)
//! 416 reserved, 464 available to software: never written
//! 512 XSAVE header: XSTATE_BV, 520 XCOMP_BV, 528..575 reserved
//! ```
//!
//! The "64-bit format" is that of the REX.W forms (FXSAVE64, XSAVE64...):
//! FIP and FDP are stored as 64-bit offsets and FCS/FDS are not stored
//! (loading that format sets them to 0). Reserved bytes inside the x87
//! part (5, 14-15, 22-23 and the upper six bytes of each ST slot) are
//! written as zeros, as processors do (measured on the AMD host; Bochs
//! does the same for Intel).

use crate::cpu::fpu::{fsw, mxcsr, FpuState, F80};

pub const FCW: usize = 0;
pub const FSW: usize = 2;
pub const FTW: usize = 4;
pub const FOP: usize = 6;
pub const FIP: usize = 8;
pub const FCS: usize = 12;
pub const FDP: usize = 16;
pub const FDS: usize = 20;
pub const MXCSR: usize = 24;
pub const MXCSR_MASK: usize = 28;
pub const ST: usize = 32;
pub const XMM: usize = 160;
/// The XSAVE header, right after the 512-byte legacy region.
pub const HEADER: usize = 512;
pub const XSTATE_BV: usize = 512;
pub const XCOMP_BV: usize = 520;
/// Legacy region and header: all an XSAVE image of x87 and SSE state has.
pub const AREA: usize = 576;

/// The byte ranges of one state component in the legacy region.
pub const X87_PARTS: [(usize, usize); 2] = [(0, MXCSR), (ST, XMM)];
pub const MXCSR_PART: (usize, usize) = (MXCSR, ST);

/// The XMM byte range for `n` registers.
pub fn xmm_part(n: usize) -> (usize, usize) {
    (XMM, XMM + 16 * n)
}

/// A 576-byte image being built or read.
pub type Image = [u8; AREA];

fn put(img: &mut Image, at: usize, b: &[u8]) {
    img[at..at + b.len()].copy_from_slice(b);
}

pub fn get16(img: &Image, at: usize) -> u16 {
    u16::from_le_bytes([img[at], img[at + 1]])
}

pub fn get32(img: &Image, at: usize) -> u32 {
    u32::from_le_bytes(img[at..at + 4].try_into().unwrap_or([0; 4]))
}

pub fn get64(img: &Image, at: usize) -> u64 {
    u64::from_le_bytes(img[at..at + 8].try_into().unwrap_or([0; 8]))
}

pub fn put64(img: &mut Image, at: usize, v: u64) {
    put(img, at, &v.to_le_bytes());
}

/// Whether FXSAVE/XSAVE store the x87 instruction and data pointers and
/// the opcode: always on Intel processors; on AMD processors only while an
/// unmasked exception is pending (FSW.ES), measured on an AMD Zen host.
pub fn saves_pointers(vendor: crate::cpu::model::Vendor, f: &FpuState) -> bool {
    vendor == crate::cpu::model::Vendor::Intel || f.fsw & crate::cpu::fpu::fsw::ES != 0
}

/// Fill the x87 part (bytes 0..24 and 32..160) from `f`. Without
/// `pointers`, FOP, FIP, FCS, FDP and FDS are stored as zeros: what AMD
/// processors do when no unmasked exception is pending (FSW.ES clear; AMD
/// APM Vol. 4, FXSAVE and Vol. 2, 11.4.4.3), see [`saves_pointers`].
pub fn store_x87(img: &mut Image, f: &FpuState, wide: bool, pointers: bool) {
    img[..MXCSR].fill(0);
    put(img, FCW, &f.fcw.to_le_bytes());
    put(img, FSW, &f.fsw.to_le_bytes());
    img[FTW] = f.ftw;
    if !pointers {
        // The pointer fields stay zero.
    } else if wide {
        put(img, FOP, &(f.fop & 0x7ff).to_le_bytes());
        put(img, FIP, &f.fip.to_le_bytes());
        put(img, FDP, &f.fdp.to_le_bytes());
    } else {
        put(img, FOP, &(f.fop & 0x7ff).to_le_bytes());
        put(img, FIP, &(f.fip as u32).to_le_bytes());
        put(img, FCS, &f.fcs.to_le_bytes());
        put(img, FDP, &(f.fdp as u32).to_le_bytes());
        put(img, FDS, &f.fds.to_le_bytes());
    }
    for i in 0..8 {
        let at = ST + 16 * i;
        img[at..at + 16].fill(0);
        put(img, at, &f.st(i).to_bytes());
    }
}

/// Fill MXCSR and MXCSR_MASK.
pub fn store_mxcsr(img: &mut Image, f: &FpuState) {
    put(img, MXCSR, &f.mxcsr.to_le_bytes());
    put(img, MXCSR_MASK, &mxcsr::WRITABLE.to_le_bytes());
}

/// Fill XMM0..XMM(n-1).
pub fn store_xmm(img: &mut Image, f: &FpuState, n: usize) {
    for (i, v) in f.xmm.iter().take(n).enumerate() {
        put(img, XMM + 16 * i, &v.to_le_bytes());
    }
}

/// FCW as the processor keeps it: bit 6 reads as 1, bits 7 and 13..=15
/// as 0 (measured with FLDCW and FXRSTOR on the host).
pub fn normal_fcw(v: u16) -> u16 {
    (v & 0x1f3f) | 0x40
}

/// FSW with ES and B derived from the exception flags and masks: loading
/// a status word with an unmasked exception flag makes the exception
/// pending (the next waiting x87 instruction raises #MF), and ES without
/// one is dropped (measured with FXRSTOR on the host).
pub fn normal_fsw(fsw_in: u16, fcw: u16) -> u16 {
    let pending = fsw_in & fsw::EXCEPTIONS & !fcw & 0x3f != 0;
    let v = fsw_in & !(fsw::ES | fsw::B);
    if pending {
        v | fsw::ES | fsw::B
    } else {
        v
    }
}

/// Load the x87 part of `img` into `f`.
pub fn load_x87(img: &Image, f: &mut FpuState, wide: bool) {
    f.fcw = normal_fcw(get16(img, FCW));
    f.fsw = normal_fsw(get16(img, FSW), f.fcw);
    f.ftw = img[FTW];
    f.fop = get16(img, FOP) & 0x7ff;
    if wide {
        f.fip = get64(img, FIP);
        f.fdp = get64(img, FDP);
        f.fcs = 0;
        f.fds = 0;
    } else {
        f.fip = u64::from(get32(img, FIP));
        f.fcs = get16(img, FCS);
        f.fdp = u64::from(get32(img, FDP));
        f.fds = get16(img, FDS);
    }
    for i in 0..8 {
        let at = ST + 16 * i;
        let mut b = [0u8; 10];
        b.copy_from_slice(&img[at..at + 10]);
        let p = f.phys(i);
        f.regs[p] = F80::from_bytes(&b);
    }
}

/// Load XMM0..XMM(n-1).
pub fn load_xmm(img: &Image, f: &mut FpuState, n: usize) {
    for (i, v) in f.xmm.iter_mut().take(n).enumerate() {
        let at = XMM + 16 * i;
        let mut b = [0u8; 16];
        b.copy_from_slice(&img[at..at + 16]);
        *v = u128::from_le_bytes(b);
    }
}

/// MXCSR from an image, or `None` if it sets a bit MXCSR_MASK does not
/// allow (FXRSTOR and XRSTOR raise #GP(0) for that).
pub fn image_mxcsr(img: &Image) -> Option<u32> {
    let v = get32(img, MXCSR);
    (v & !mxcsr::WRITABLE == 0).then_some(v)
}

/// Whether the x87 state is in its initial configuration (SDM Vol. 1,
/// 13.6): FCW 037Fh, FSW 0, every register empty, FOP, FIP, FDP, FCS and
/// FDS 0, and every data register zero.
pub fn x87_is_init(f: &FpuState) -> bool {
    f.fcw == 0x037f
        && f.fsw == 0
        && f.ftw == 0
        && f.fop == 0
        && f.fip == 0
        && f.fcs == 0
        && f.fdp == 0
        && f.fds == 0
        && f.regs.iter().all(|r| *r == F80::ZERO)
}

/// Whether XMM0..XMM(n-1) are in their initial configuration (zero).
/// MXCSR is not part of this test (SDM Vol. 1, 13.6).
pub fn sse_is_init(f: &FpuState, n: usize) -> bool {
    f.xmm.iter().take(n).all(|&v| v == 0)
}

/// Put the x87 state in its initial configuration (XRSTOR of a component
/// whose XSTATE_BV bit is 0).
pub fn init_x87(f: &mut FpuState) {
    f.finit();
    f.regs = [F80::ZERO; 8];
}

/// Zero XMM0..XMM(n-1).
pub fn init_xmm(f: &mut FpuState, n: usize) {
    for v in f.xmm.iter_mut().take(n) {
        *v = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x87_round_trips_in_both_formats() {
        let mut f = FpuState::new();
        f.fcw = 0x027f;
        f.set_top(5);
        f.set_st(0, F80::new(0x3fff, 1 << 63));
        f.set_st(2, F80::new(0xc005, 0xdead_beef_0000_0001));
        f.fop = 0x5d9;
        f.fip = 0x1_2345_6789;
        f.fcs = 0x23;
        f.fdp = 0x9_8765_4321;
        f.fds = 0x2b;
        for wide in [false, true] {
            let mut img = [0xaau8; AREA];
            store_x87(&mut img, &f, wide, true);
            assert_eq!(img[5], 0);
            assert_eq!(&img[ST + 10..ST + 16], &[0; 6]);
            assert_eq!(img[MXCSR], 0xaa, "MXCSR is not part of x87 state");
            // ST0 is the first slot whatever TOP is.
            assert_eq!(get16(&img, ST + 8), 0x3fff);
            let mut g = FpuState::new();
            load_x87(&img, &mut g, wide);
            assert_eq!(g.regs, f.regs);
            assert_eq!((g.fcw, g.fsw, g.ftw, g.fop), (f.fcw, f.fsw, f.ftw, f.fop));
            if wide {
                assert_eq!((g.fip, g.fdp, g.fcs, g.fds), (f.fip, f.fdp, 0, 0));
            } else {
                assert_eq!(
                    (g.fip, g.fdp, g.fcs, g.fds),
                    (f.fip & 0xffff_ffff, f.fdp & 0xffff_ffff, f.fcs, f.fds)
                );
            }
        }
    }

    #[test]
    fn loaded_control_and_status_words_are_normalised() {
        assert_eq!(normal_fcw(0x0000), 0x0040);
        assert_eq!(normal_fcw(0xffff), 0x1f7f);
        // IE set and unmasked: pending. ES without a cause: dropped.
        assert_eq!(normal_fsw(0x0001, 0x0040), 0x8081);
        assert_eq!(normal_fsw(0x8080, 0x037f), 0x0000);
        assert_eq!(normal_fsw(0x3801, 0x037f), 0x3801);
    }

    #[test]
    fn init_configuration() {
        let mut f = FpuState::new();
        assert!(!x87_is_init(&f), "RESET leaves FCW 0040h, not 037Fh");
        init_x87(&mut f);
        assert!(x87_is_init(&f));
        f.xmm[9] = 1;
        assert!(sse_is_init(&f, 8) && !sse_is_init(&f, 16));
        init_xmm(&mut f, 16);
        assert!(sse_is_init(&f, 16));
    }
}

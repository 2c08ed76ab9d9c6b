//! The random x87/MMX/SSE state a case starts from: control words with
//! every rounding mode and precision, masked and unmasked exceptions,
//! sticky flags, FTZ and DAZ, a random stack top and tags, and register
//! contents drawn from [`super::values`] by the form's element type.

use super::values::{self, Elem};
use super::{elem_of, pushes, reads_st1, unit, Unit};
use crate::gen::Rng;
use crate::native::fx::FxImage;
use iced_x86::Code;

/// MXCSR bits: flags, DAZ, masks, rounding, FTZ (MM, bit 17, is AMD-only
/// and not in softvm's model).
pub const MXCSR_VALID: u32 = 0xffff;
const MXCSR_MASKS: u32 = 0x3f << 7;
const FCW_MASKS: u16 = 0x3f;
const FSW_ES: u16 = 1 << 7;
const FSW_SF: u16 = 1 << 6;
const FSW_B: u16 = 1 << 15;
const FSW_CC: u16 = 0x4700;

/// A random MXCSR: any rounding, FTZ and DAZ often, all exceptions masked
/// most of the time, some sticky flags.
pub fn mxcsr(rng: &mut Rng) -> u32 {
    let masks = if rng.chance(70) {
        MXCSR_MASKS
    } else {
        (rng.next_u64() as u32) & MXCSR_MASKS
    };
    let flags = if rng.chance(50) {
        0
    } else {
        rng.next_u64() as u32 & 0x3f
    };
    let mut v = masks | flags | ((rng.below(4) as u32) << 13);
    if rng.chance(25) {
        v |= 1 << 6; // DAZ
    }
    if rng.chance(25) {
        v |= 1 << 15; // FTZ
    }
    v
}

/// A random x87 control word: precision single, double or extended,
/// any rounding, exceptions mostly masked. Bit 6 reads as 1, as FNINIT
/// leaves it; precision 1 is reserved and not used.
pub fn fcw(rng: &mut Rng) -> u16 {
    let masks = if rng.chance(75) {
        FCW_MASKS
    } else {
        rng.next_u64() as u16 & FCW_MASKS
    };
    let pc = rng.pick(&[3u16, 3, 3, 2, 0]);
    let rc = rng.below(4) as u16;
    masks | 0x40 | (pc << 8) | (rc << 10)
}

/// A status word for control word `fcw`: any TOP and condition codes,
/// some sticky flags. ES and B say whether an unmasked exception is
/// pending; `pending` allows that (then the next waiting x87 instruction
/// takes #MF).
pub fn fsw(rng: &mut Rng, fcw: u16, pending: bool) -> u16 {
    let mut flags = if rng.chance(50) {
        0
    } else {
        rng.next_u64() as u16 & 0x3f
    };
    if !pending {
        flags &= fcw & FCW_MASKS;
    }
    if flags & 1 != 0 && rng.chance(30) {
        flags |= FSW_SF;
    }
    let top = rng.below(8) as u16;
    let mut v = flags | (top << 11) | (rng.next_u64() as u16 & FSW_CC);
    if flags & !fcw & FCW_MASKS != 0 {
        v |= FSW_ES | FSW_B;
    }
    v
}

/// Bytes of element type `e` as a 16-byte register.
fn xmm_value(rng: &mut Rng, e: Elem) -> u128 {
    let e = match e {
        Elem::F80 | Elem::Bcd => Elem::F64,
        e => e,
    };
    let mut b = [0u8; 16];
    values::fill(rng, e, &mut b);
    u128::from_le_bytes(b)
}

/// The state `code` starts from.
pub fn random_state(rng: &mut Rng, code: Code) -> FxImage {
    let u = unit(code);
    let elem = elem_of(code);
    let mut fx = FxImage::default();
    fx.set_mxcsr(mxcsr(rng));
    let cw = fcw(rng);
    fx.set_fcw(cw);
    let pending = matches!(u, Unit::X87 | Unit::Mmx) && rng.chance(4);
    let mmx_mode = u == Unit::Mmx && rng.chance(50);
    let sw = fsw(rng, cw, pending);
    // MMX instructions leave TOP = 0 and every register valid.
    fx.set_fsw(if mmx_mode { sw & !(7 << 11) } else { sw });
    fx.set_fop(rng.next_u64() as u16 & 0x7ff);
    fx.set_fip(rng.next_u64() & 0x7fff_ffff_ffff);
    fx.set_fdp(rng.next_u64() & 0x7fff_ffff_ffff);
    let mut ftw = 0u8;
    for p in 0..8 {
        if mmx_mode {
            let mut b = [0u8; 8];
            let e = match elem {
                Elem::Int(n) if n <= 8 => elem,
                _ => Elem::Int(rng.pick(&[1, 2, 4, 8])),
            };
            values::fill(rng, e, &mut b);
            fx.set_phys_parts(p, 0xffff, u64::from_le_bytes(b));
            ftw |= 1 << p;
        } else {
            let (se, m) = values::f80(rng);
            fx.set_phys_parts(p, se, m);
            if rng.chance(75) {
                ftw |= 1 << p;
            }
        }
    }
    if u == Unit::X87 {
        let phys = |i: usize| (fx.top() + i) & 7;
        let m = code.mnemonic();
        if rng.chance(92) {
            ftw |= 1 << phys(0);
        }
        if reads_st1(m) && rng.chance(92) {
            ftw |= 1 << phys(1);
        }
        if pushes(m) && rng.chance(85) {
            ftw &= !(1 << phys(7));
        }
    }
    fx.set_ftw(ftw);
    for i in 0..16 {
        let e = if rng.chance(70) {
            elem
        } else {
            rng.pick(&[
                Elem::F32,
                Elem::F64,
                Elem::Int(1),
                Elem::Int(2),
                Elem::Int(8),
            ])
        };
        fx.set_xmm(i, xmm_value(rng, e));
    }
    fx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_words_stay_loadable() {
        let mut rng = Rng::new(11);
        for i in 0..2000 {
            let code = [
                Code::Fadd_m32fp,
                Code::Paddb_mm_mmm64,
                Code::Addps_xmm_xmmm128,
            ][i % 3];
            let fx = random_state(&mut rng, code);
            assert_eq!(fx.mxcsr() & !MXCSR_VALID, 0);
            assert_ne!((fx.fcw() >> 8) & 3, 1, "reserved precision");
            let unmasked = fx.fsw() & !fx.fcw() & 0x3f;
            assert_eq!(fx.fsw() & FSW_ES != 0, unmasked != 0);
            assert_eq!(fx.fsw() & FSW_B != 0, unmasked != 0);
        }
    }

    #[test]
    fn push_forms_mostly_find_room() {
        let mut rng = Rng::new(12);
        let mut room = 0;
        for _ in 0..1000 {
            let fx = random_state(&mut rng, Code::Fld1);
            let st7 = (fx.top() + 7) & 7;
            if fx.ftw() & (1 << st7) == 0 {
                room += 1;
            }
        }
        assert!((800..1000).contains(&room), "{room}");
    }
}

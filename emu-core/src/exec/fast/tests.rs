//! The conditions the fast Jcc forms evaluate, against the manuals.
use crate::cpu::flags::{Flags, LazyOp, CF, OF, PF, SF, ZF};

/// The condition from the full RFLAGS value, as the manuals define it.
fn reference(f: &Flags, cc: u8) -> bool {
    let v = f.get();
    let t = |b: u64| v & b != 0;
    let r = match cc >> 1 {
        0 => t(OF),
        1 => t(CF),
        2 => t(ZF),
        3 => t(CF) || t(ZF),
        4 => t(SF),
        5 => t(PF),
        6 => t(SF) != t(OF),
        _ => t(ZF) || (t(SF) != t(OF)),
    };
    r ^ (cc & 1 != 0)
}

#[test]
fn fast_conditions_match_the_flags() {
    let vals = [
        0u64,
        1,
        2,
        0x7f,
        0x80,
        0xff,
        0x7fff_ffff,
        0x8000_0000,
        u64::MAX,
        5,
    ];
    for size in [1u8, 2, 4, 8] {
        let m = crate::cpu::flags::mask(size);
        for &a in &vals {
            for &b in &vals {
                let (a, b) = (a & m, b & m);
                let mut fs = Vec::new();
                let mut f = Flags::default();
                f.lazy_sub(size, a, b, false, a.wrapping_sub(b) & m);
                fs.push(f);
                f.lazy_add(size, a, b, false, a.wrapping_add(b) & m);
                fs.push(f);
                f.lazy_logic(size, a & b);
                fs.push(f);
                f.lazy_incdec(size, a, a.wrapping_sub(1) & m, false);
                fs.push(f);
                f.lazy_sub(size, a, b, true, a.wrapping_sub(b).wrapping_sub(1) & m);
                fs.push(f);
                let c = (b as u32 % (u32::from(size) * 8 - 1)) + 1;
                f.lazy_shift(LazyOp::Shl, size, a, c, (a << c) & m);
                fs.push(f);
                f.lazy_shift(LazyOp::Shr, size, a, c, a >> c);
                fs.push(f);
                for f in &fs {
                    for cc in 0..16 {
                        assert_eq!(
                            f.cond(cc),
                            reference(f, cc),
                            "size {size} a {a:#x} b {b:#x} cc {cc}"
                        );
                    }
                }
            }
        }
    }
}

//! The transcendentals against values computed to 200 decimal digits
//! (Python's `decimal`, π from Machin's formula) and rounded to nearest:
//! softvm's results are the correctly rounded ones, also for arguments
//! near multiples of π/2 and up to 2^63, where the host's own reduction
//! (with a π of about 66 bits) is not.

use crate::fp::{Env, Fp, F80};

fn fp() -> Fp {
    Fp::new(Env::x87(0x037f))
}

fn f(se: u16, sig: u64) -> F80 {
    F80::new(se, sig)
}

#[test]
fn trigonometric_values_are_correctly_rounded() {
    // (argument, sin, cos, tan)
    let table = [
        (
            f(0x3fff, 0x8000_0000_0000_0000),
            f(0x3ffe, 0xd76a_a478_4867_7021),
            f(0x3ffe, 0x8a51_407d_a834_5c92),
            f(0x3fff, 0xc759_22e5_f71d_2dc5),
        ),
        // π/2 rounded up and down: cos and tan come from π/2 - x alone.
        (
            f(0x3fff, 0xc90f_daa2_2168_c235),
            f(0x3fff, 0x8000_0000_0000_0000),
            f(0xbfbd, 0xece6_75d1_fc8f_8cbb),
            f(0xc040, 0x8a51_e04d_aabd_a35f),
        ),
        (
            f(0x3fff, 0xc90f_daa2_2168_c234),
            f(0x3fff, 0x8000_0000_0000_0000),
            f(0x3fbf, 0xc4c6_628b_80dc_1cd1),
            f(0x403e, 0xa686_7806_75d7_3f75),
        ),
        // 10^18, 2^63 - 1, and π/2·2^62 (to 64 bits).
        (
            f(0x403a, 0xde0b_6b3a_7640_0000),
            f(0xbffe, 0xfe33_3cc6_82e9_6d39),
            f(0x3ffb, 0xf26d_0396_03ac_d38c),
            f(0xc002, 0x8637_7fde_b056_9285),
        ),
        (
            f(0x403d, 0xffff_ffff_ffff_ffff),
            f(0x3ffe, 0xdf32_7e11_2abe_ef8f),
            f(0x3ffd, 0xfac0_35ec_4849_29c2),
            f(0x3fff, 0xe3de_9ed3_992f_3138),
        ),
        (
            f(0x403d, 0xc90f_daa2_2168_c235),
            f(0x3ffb, 0xec5f_4dee_a233_7239),
            f(0x3ffe, 0xfe4a_09a8_2fbf_4705),
            f(0x3ffb, 0xedf6_688b_811e_cfcd),
        ),
        (
            f(0x4002, 0xa000_0000_0000_0000),
            f(0xbffe, 0x8b44_f7af_9a7a_92ce),
            f(0xbffe, 0xd6cd_6448_6358_f905),
            f(0x3ffe, 0xa5fa_f9a5_f1bc_12f0),
        ),
    ];
    for (x, s, c, t) in table {
        assert_eq!(fp().sin(x), Some(s), "sin {x:x?}");
        assert_eq!(fp().cos(x), Some(c), "cos {x:x?}");
        assert_eq!(fp().tan(x), Some(t), "tan {x:x?}");
    }
    // 2^63 and beyond: out of range.
    assert_eq!(fp().sin(f(0x403e, 1 << 63)), None);
}

#[test]
fn other_values_are_correctly_rounded() {
    let one = f(0x3fff, 1 << 63);
    let three = f(0x4000, 0xc000_0000_0000_0000);
    assert_eq!(fp().atan2(one, three), f(0x3ffd, 0xa4bc_7d19_34f7_0924));
    assert_eq!(
        fp().atan2(f(0xbfff, 1 << 63), f(0xc000, 0xc000_0000_0000_0000)),
        f(0xc000, 0xb478_4afe_fac9_e110)
    );
    assert_eq!(fp().ylog2x(one, three), f(0x3fff, 0xcae0_0d1c_fdeb_43d0));
    assert_eq!(
        fp().ylog2x(
            f(0x4001, 0xa000_0000_0000_0000),
            f(0x3ffe, 0xc000_0000_0000_0000)
        ),
        f(0xc000, 0x84cf_df37_8533_d678)
    );
    assert_eq!(
        fp().exp2m1(f(0x3ffe, 1 << 63)),
        f(0x3ffd, 0xd413_cccf_e779_9211)
    );
    assert_eq!(
        fp().exp2m1(f(0xbffe, 0xc000_0000_0000_0000)),
        f(0xbffd, 0xcf90_1f5c_e48e_ad21)
    );
    assert_eq!(
        fp().ylog2xp1(one, f(0x3fd7, 1 << 63)),
        f(0x3fd7, 0xb8aa_3b29_5bbb_9b9e)
    );
}

//! RCPPS/RSQRTPS: the tables meet the architectural error bound for every
//! input; on an AMD host they equal the processor's results bit for bit.

use super::super::approx::{rcp, rsqrt};

/// |approx * exact^-1 - 1| <= 1.5 * 2^-12 (Intel SDM, RCPSS/RSQRTSS).
const BOUND: f64 = 1.5 / 4096.0;

#[test]
fn every_normal_input_is_within_the_bound() {
    // The result depends on the top 12 significand bits and, for RSQRT,
    // the exponent's parity: every such input, at the ends of its range.
    let mut worst = (0f64, 0f64);
    for i in 0..4096u32 {
        for low in [0, 0x7ff] {
            for e in [127u32, 128] {
                let x = (e << 23) | (i << 11) | low;
                let v = f64::from(f32::from_bits(x));
                let r = f64::from(f32::from_bits(rcp(x)));
                let s = f64::from(f32::from_bits(rsqrt(x)));
                let er = (r * v - 1.0).abs();
                let es = (s * v.sqrt() - 1.0).abs();
                worst = (worst.0.max(er), worst.1.max(es));
            }
        }
    }
    assert!(
        worst.0 <= BOUND && worst.1 <= BOUND,
        "worst relative errors {worst:?}"
    );
}

#[test]
fn special_inputs() {
    assert_eq!(rcp(0), 0x7f80_0000);
    assert_eq!(rcp(0x8000_0001), 0xff80_0000, "a denormal reads as zero");
    assert_eq!(rcp(0xff80_0000), 0x8000_0000);
    assert_eq!(rcp(0x7e80_0000), 0, "a tiny result is zero");
    assert_eq!(rcp(0x7f80_0001), 0x7fc0_0001, "NaNs are quieted");
    assert_eq!(rsqrt(0xbf80_0000), 0xffc0_0000);
    assert_eq!(rsqrt(0xff80_0000), 0xffc0_0000);
    assert_eq!(rsqrt(0x7f80_0000), 0);
    assert_eq!(rsqrt(0x8000_0000), 0xff80_0000);
}

/// Every input of three binades (the tables' whole domain) and a sample
/// of every exponent, sign and special value, under random MXCSR values
/// (which must not matter), compared with the host's RCPSS/RSQRTSS.
#[cfg(target_arch = "x86_64")]
#[test]
fn amd_host_agrees_bit_for_bit() {
    use crate::cpu::model::Vendor;
    if Vendor::host() != Vendor::Amd {
        println!("not an AMD host: the bound is checked, not the bits");
        return;
    }
    let mut inputs: Vec<u32> = (0..1u32 << 23)
        .flat_map(|m| [0x3f80_0000 | m, 0x4000_0000 | m])
        .collect();
    inputs.extend((0..1u32 << 23).map(|m| 0x3f00_0000 | m));
    let mut x = 0x1234_5678u32;
    for _ in 0..1 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        inputs.push(x);
    }
    let mut compared = 0u64;
    for (k, &a) in inputs.iter().enumerate() {
        let mxcsr = 0x1f80
            | ((k as u32 & 3) << 13)
            | ((k as u32 >> 2 & 1) << 15)
            | ((k as u32 >> 3 & 1) << 6);
        let (hr, hs, after) = host(a, mxcsr);
        assert_eq!(hr, rcp(a), "RCPSS {a:#010x}");
        assert_eq!(hs, rsqrt(a), "RSQRTSS {a:#010x}");
        assert_eq!(after, mxcsr, "MXCSR changed for {a:#010x}");
        compared += 2;
    }
    println!("RCPSS/RSQRTSS: {compared} results compared with the host");
}

/// The host's RCPSS and RSQRTSS of `a` under `mxcsr`, and MXCSR after.
#[cfg(target_arch = "x86_64")]
fn host(a: u32, mxcsr: u32) -> (u32, u32, u32) {
    let (mut r, mut s) = (u64::from(a), u64::from(a));
    let mut mx = mxcsr;
    let mut saved = 0u32;
    // SAFETY: the block uses only the registers named and the two local
    // u32s it is given pointers to, and restores the caller's MXCSR.
    unsafe {
        std::arch::asm!(
            "stmxcsr [{saved}]",
            "ldmxcsr [{mx}]",
            "rcpss {r}, {r}",
            "rsqrtss {s}, {s}",
            "stmxcsr [{mx}]",
            "ldmxcsr [{saved}]",
            r = inout(xmm_reg) r,
            s = inout(xmm_reg) s,
            saved = in(reg) std::ptr::addr_of_mut!(saved),
            mx = in(reg) std::ptr::addr_of_mut!(mx),
            options(nostack),
        );
    }
    (r as u32, s as u32, mx)
}

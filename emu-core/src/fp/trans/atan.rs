//! FPATAN: atan2 of ST(1) and ST(0) with the signs, zeros and infinities
//! of Intel SDM Vol. 2A, Table 3-29 (FPATAN), and the arctangent of a
//! ratio by Euler's series after reducing it below tan(π/8).

use super::super::big::Big;
use super::super::env::Fp;
use super::super::format::{Float, Val, F80};
use super::super::x87::PI;
use super::TINY;

/// tan(π/8) = √2 - 1, rounded up to 128 bits.
const TAN_PI_8: (u128, i32) = (0xd413_cccf_e779_9211_65f6_26cd_d52a_fa7d, -2);

fn pi() -> Big {
    Big::constant(PI)
}

/// atan t for t >= 0.
fn atan_abs(t: Big) -> Big {
    if t.is_zero() {
        return t;
    }
    if t.cmp_abs(Big::ONE).is_gt() {
        // atan t = π/2 - atan(1/t).
        return pi().scale(-1).sub(atan_abs(Big::ONE.div(t)));
    }
    if t.cmp_abs(Big::constant(TAN_PI_8)).is_gt() {
        // atan t = π/4 - atan((1 - t)/(1 + t)), the latter below π/8.
        let u = Big::ONE.sub(t).div(Big::ONE.add(t));
        return pi().scale(-2).sub(atan_abs(u));
    }
    if t.exp < TINY {
        // t - t³/3 + ...: just below t.
        return t.nudge(false);
    }
    // Euler: atan t = t/(1+t²) · Σ (2n)!!/(2n+1)!! · (t²/(1+t²))^n, all
    // terms positive, each below a seventh of the one before.
    let t2 = t.mul(t);
    let d = Big::ONE.add(t2);
    let y = t2.div(d);
    let (mut sum, mut term) = (Big::ONE, Big::ONE);
    let mut n = 1u32;
    loop {
        term = term.mul(y).mul_small(2 * n).div_small(2 * n + 1);
        if term.exp < -132 {
            break;
        }
        sum = sum.add(term);
        n += 1;
    }
    t.div(d).mul(sum)
}

impl Fp {
    /// FPATAN: the angle of the point (x, y) = (ST(0), ST(1)), in
    /// [-π, π].
    pub fn atan2(&mut self, y: F80, x: F80) -> F80 {
        let (vy, vx) = (self.operand(y), self.operand(x));
        if let Some(n) = self.nan2(vy, vx) {
            return n;
        }
        self.check_denormal(&[vy, vx]);
        let (sy, sx) = (vy.sign(), vx.sign());
        let frac = |n: i32| pi().scale(n);
        // The angle's magnitude, from the special cases or the ratio.
        let angle = match (vy, vx) {
            (Val::Zero { .. }, _) => {
                if sx {
                    pi()
                } else {
                    return F80::zero(sy);
                }
            }
            (Val::Inf { .. }, Val::Inf { .. }) => {
                if sx {
                    // 3π/4
                    frac(-1).add(frac(-2))
                } else {
                    frac(-2)
                }
            }
            (Val::Inf { .. }, _) | (_, Val::Zero { .. }) => frac(-1),
            (_, Val::Inf { .. }) => {
                if sx {
                    pi()
                } else {
                    return F80::zero(sy);
                }
            }
            (
                Val::Num {
                    exp: ey, sig: my, ..
                },
                Val::Num {
                    exp: ex, sig: mx, ..
                },
            ) => {
                let (ay, ax) = (
                    Big::from_parts(false, my, ey),
                    Big::from_parts(false, mx, ex),
                );
                let a = if ay.cmp_abs(ax).is_gt() {
                    frac(-1).sub(atan_abs(ax.div(ay)))
                } else {
                    atan_abs(ay.div(ax))
                };
                if sx {
                    pi().sub(a)
                } else {
                    a
                }
            }
            _ => unreachable!("NaNs are handled before"),
        };
        self.round_big(if sy { angle.neg() } else { angle })
    }
}

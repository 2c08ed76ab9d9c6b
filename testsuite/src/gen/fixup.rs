//! Instruction-specific constraints: values that keep a case inside the
//! buffer, avoid undefined results, steer branches to the landing pad, and
//! make interesting paths (successful CMPXCHG, long REPE runs) likely.

use super::build::{gpr_index, Builder, Mem, Op, Retry};
use super::fp;
use super::rng::width_mask;
use crate::native::{ARITH_FLAGS, DF, FLAGS_FIXED, IF};
use iced_x86::{Code, Instruction, Mnemonic, OpCodeOperandKind as K, OpKind, Register};

const RCX: usize = 1;
const RBX: usize = 3;
const RSP: usize = 4;
const RBP: usize = 5;
const RSI: usize = 6;
const RDI: usize = 7;

pub fn is_shift(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Rol | Ror | Rcl | Rcr | Shl | Sal | Shr | Sar | Shld | Shrd
    )
}

fn is_string(b: &Builder) -> bool {
    b.code
        .op_code()
        .op_kinds()
        .iter()
        .any(|k| matches!(k, K::seg_rSI | K::es_rDI))
}

fn is_compare_string(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Cmpsb | Cmpsw | Cmpsd | Cmpsq | Scasb | Scasw | Scasd | Scasq
    )
}

/// Operand width in bits of the form's r/m (or main) operand.
pub fn data_bits(code: Code) -> u32 {
    let op = code.op_code();
    match op.memory_size().size() {
        1 | 2 | 4 | 8 => op.memory_size().size() as u32 * 8,
        _ => match op.operand_size() {
            0 => 64,
            n => n,
        },
    }
}

/// Pins registers that address memory implicitly, before operands exist.
pub fn before_operands(b: &mut Builder) -> Result<(), Retry> {
    let base = b.env.mem_base;
    if fp::is_fp_form(b.code) {
        fp::operands::before_operands(b);
    } else if is_string(b) {
        b.addr32 = b.rng.chance(25);
        let op = b.code.op_code();
        b.rep = if op.can_use_repne_prefix() && b.rng.chance(35) {
            2
        } else if op.can_use_rep_prefix() && b.rng.chance(60) {
            1
        } else {
            0
        };
        let count = if b.rep != 0 {
            let any = b.rng.below(25);
            b.rng.pick(&[0, 0, 1, 2, 3, 7, any])
        } else {
            b.rng.reg_value(64)
        };
        let rsi = base + 0x400 + b.rng.below(0x600);
        let rdi = if b.rng.chance(20) {
            rsi.wrapping_add_signed(b.rng.range(-24, 24))
        } else {
            base + 0x1000 + b.rng.below(0x600)
        };
        let high = |b: &mut Builder| {
            if b.addr32 && b.rng.chance(50) {
                b.rng.next_u64() << 32
            } else {
                0
            }
        };
        // With ECX = 0, REP leaves the upper halves of RCX/RSI/RDI alone on
        // some CPUs and clears them on others (this Intel host clears
        // them); the manuals are silent, so only set them when the string
        // instruction really iterates.
        let iterates = b.rep == 0 || count & 0xffff_ffff != 0;
        let (hs, hd, hc) = if iterates {
            (high(b), high(b), high(b))
        } else {
            (0, 0, 0)
        };
        b.pin(RSI, rsi | hs);
        b.pin(RDI, rdi | hd);
        let count = if b.addr32 {
            (count & 0xffff_ffff) | hc
        } else {
            count
        };
        b.pin(RCX, count);
        if is_compare_string(b.mnemonic) && b.rep != 0 && b.rng.chance(60) {
            equal_run(b, rsi, rdi, count & 0xffff_ffff);
        }
    } else if b.code.op_code().op_kinds().contains(&K::seg_rBX_al) {
        b.addr32 = b.rng.chance(25);
        let high = if b.addr32 && b.rng.chance(50) {
            b.rng.next_u64() << 32
        } else {
            0
        };
        let rbx = base + 0x400 + b.rng.below(0x1000);
        b.pin(RBX, rbx | high);
    }
    use Mnemonic::*;
    match b.mnemonic {
        Enter | Leave => {
            let at = base + (b.env.mem_len * 3 / 4) as u64;
            let v = if b.rng.chance(90) {
                at.wrapping_add_signed(b.rng.range(-32, 32) * 8)
            } else {
                at.wrapping_add_signed(b.rng.range(-256, 256))
            };
            b.pin(RBP, v);
        }
        Loop | Loope | Loopne | Jrcxz | Jecxz => {
            let v = b
                .rng
                .pick(&[0, 1, 2, 0x1_0000_0000, 0x1_0000_0001, 0xffff_ffff]);
            let v = if b.rng.chance(25) {
                b.rng.reg_value(64)
            } else {
                v
            };
            b.pin(RCX, v);
        }
        _ => {}
    }
    Ok(())
}

/// Makes the first few string elements compare equal (CMPS: source =
/// destination; SCAS: destination = accumulator), so REPE runs on.
fn equal_run(b: &mut Builder, rsi: u64, rdi: u64, count: u64) {
    let size = b.code.op_code().memory_size().size();
    let n = b.rng.below(count.min(24) + 1);
    let down = b.rflags & DF != 0;
    let acc = b.gpr[0];
    let scas = matches!(
        b.mnemonic,
        Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd | Mnemonic::Scasq
    );
    for j in 0..n {
        let step = j * size as u64;
        let (s, d) = if down {
            (rsi.wrapping_sub(step), rdi.wrapping_sub(step))
        } else {
            (rsi + step, rdi + step)
        };
        let v = if scas { acc } else { b.read_mem(s, size) };
        b.write_mem(d, size, v);
    }
}

/// A shift or rotate count, biased to the boundaries.
fn shift_count(b: &mut Builder) -> u64 {
    let w = u64::from(data_bits(b.code));
    if matches!(b.mnemonic, Mnemonic::Shld | Mnemonic::Shrd) && w == 16 {
        // Counts above 16 give an undefined result for 16-bit operands.
        let any = b.rng.below(17);
        return b.rng.pick(&[0, 1, 2, 8, 15, 16, 32, 33, 47, 48, any]);
    }
    let (any, below_w) = (b.rng.below(256), b.rng.below(w));
    b.rng.pick(&[
        0,
        1,
        2,
        w - 1,
        w,
        w + 1,
        31,
        32,
        33,
        63,
        64,
        65,
        255,
        any,
        below_w,
    ])
}

/// The value of an immediate operand (zero-extended raw bits).
pub fn immediate(b: &mut Builder, i: u32, k: K) -> u64 {
    use Mnemonic::*;
    match (k, b.mnemonic) {
        (K::imm8, _) if fp::is_fp_form(b.code) => fp::operands::imm8(b),
        (K::imm8_const_1, _) => 1,
        (K::imm8, m) if is_shift(m) => shift_count(b),
        (K::imm8, Enter) if i == 1 => {
            let any = b.rng.below(256);
            b.rng.pick(&[0, 1, 2, 3, 4, 31, 32, 33, any])
        }
        (K::imm16, Enter) => {
            let any = b.rng.below(0x400);
            b.rng.pick(&[0, 8, 24, 0x3f8, any])
        }
        (K::imm16, Ret) => {
            let any = b.rng.below(0x100);
            b.rng.pick(&[0, 8, 0xfff8, any])
        }
        (K::imm8 | K::imm8sex16 | K::imm8sex32 | K::imm8sex64, _) => b.rng.edge(8),
        (K::imm16, _) => b.rng.edge(16),
        (K::imm32 | K::imm32sex64, _) => b.rng.edge(32),
        _ => b.rng.edge(64),
    }
}

pub fn set_immediate(ins: &mut Instruction, i: u32, k: K, v: u64) -> Result<(), Retry> {
    let op = ins.code().op_code();
    match k {
        K::imm8 | K::imm8_const_1 => {
            let second = i > 0 && matches!(op.op_kind(i - 1), K::imm8 | K::imm16);
            if second {
                ins.set_op_kind(i, OpKind::Immediate8_2nd);
                ins.set_immediate8_2nd(v as u8);
            } else {
                ins.set_op_kind(i, OpKind::Immediate8);
                ins.set_immediate8(v as u8);
            }
        }
        K::imm8sex16 => {
            ins.set_op_kind(i, OpKind::Immediate8to16);
            ins.set_immediate8to16(i16::from(v as u8 as i8));
        }
        K::imm8sex32 => {
            ins.set_op_kind(i, OpKind::Immediate8to32);
            ins.set_immediate8to32(i32::from(v as u8 as i8));
        }
        K::imm8sex64 => {
            ins.set_op_kind(i, OpKind::Immediate8to64);
            ins.set_immediate8to64(i64::from(v as u8 as i8));
        }
        K::imm16 => {
            ins.set_op_kind(i, OpKind::Immediate16);
            ins.set_immediate16(v as u16);
        }
        K::imm32 => {
            ins.set_op_kind(i, OpKind::Immediate32);
            ins.set_immediate32(v as u32);
        }
        K::imm32sex64 => {
            ins.set_op_kind(i, OpKind::Immediate32to64);
            ins.set_immediate32to64(i64::from(v as u32 as i32));
        }
        K::imm64 => {
            ins.set_op_kind(i, OpKind::Immediate64);
            ins.set_immediate64(v);
        }
        other => return Err(Retry(format!("operand kind {other:?} not generated"))),
    }
    Ok(())
}

fn bt_with_reg_offset(b: &Builder) -> bool {
    use Mnemonic::*;
    matches!(b.mnemonic, Bt | Bts | Btr | Btc)
        && matches!(
            b.code.op_code().op_kind(1),
            K::r16_reg | K::r32_reg | K::r64_reg
        )
}

/// Distance the effective address keeps from the buffer's ends.
pub fn mem_margin(b: &Builder) -> usize {
    if bt_with_reg_offset(b) {
        1024
    } else {
        64
    }
}

/// Required alignment of the memory operand.
pub fn mem_align(b: &mut Builder, size: usize) -> usize {
    if fp::is_fp_form(b.code) {
        fp::operands::mem_align(b, size)
    } else if b.code == Code::Cmpxchg16b_m128 && b.rng.chance(95) {
        16
    } else {
        1
    }
}

/// Puts an edge value at the memory operand.
pub fn fill_mem_operand(b: &mut Builder) {
    let Some(m) = b.ops.iter().find_map(|o| match o {
        Op::Mem(m) => Some(*m),
        _ => None,
    }) else {
        return;
    };
    if fp::is_fp_form(b.code) {
        return fp::operands::fill_mem(b, m);
    }
    let mut at = m.ea;
    let mut left = m.size;
    while left > 0 {
        let n = left.min(8);
        if !n.is_power_of_two() {
            break;
        }
        let v = b.rng.edge(n as u32 * 8);
        b.write_mem(at, n, v);
        at += n as u64;
        left -= n;
    }
}

/// Reads operand `o` of `bits` width.
fn value(b: &Builder, o: Op, bits: u32) -> u64 {
    match o {
        Op::Reg(r) => b.get(r),
        Op::Mem(m) => b.read_mem(m.ea, (bits / 8) as usize),
        Op::Imm(v) => v,
        _ => 0,
    }
}

/// Writes operand `o`; false if it is a pinned register.
fn set_value(b: &mut Builder, o: Op, bits: u32, v: u64) -> bool {
    match o {
        Op::Reg(r) if b.is_pinned(r) => false,
        Op::Reg(r) => {
            b.set(r, v);
            true
        }
        Op::Mem(m) => {
            b.write_mem(m.ea, (bits / 8) as usize, v);
            true
        }
        _ => false,
    }
}

fn set_reg(b: &mut Builder, r: Register, v: u64) -> bool {
    set_value(b, Op::Reg(r), r.size() as u32 * 8, v)
}

fn acc(bits: u32) -> Register {
    match bits {
        8 => Register::AL,
        16 => Register::AX,
        32 => Register::EAX,
        _ => Register::RAX,
    }
}

fn dxreg(bits: u32) -> Register {
    match bits {
        16 => Register::DX,
        32 => Register::EDX,
        _ => Register::RDX,
    }
}

/// Value constraints that do not depend on the encoding.
pub fn before_encoding(b: &mut Builder) -> Result<(), Retry> {
    use Mnemonic::*;
    if fp::is_fp_form(b.code) {
        fp::operands::before_encoding(b);
        return Ok(());
    }
    let bits = data_bits(b.code);
    let ops = b.ops.clone();
    match b.mnemonic {
        Div | Idiv => divide(b, ops[0], bits),
        Bt | Bts | Btr | Btc if bt_with_reg_offset(b) => {
            if let (Op::Mem(_), Op::Reg(r)) = (ops[0], ops[1]) {
                let off = b.rng.range(-2048, 2047) as u64;
                if !set_reg(b, r, off) {
                    return Err(Retry("BT offset register is pinned".into()));
                }
            }
        }
        Bsf | Bsr if value(b, ops[1], bits) == 0 => {
            let v = 1u64 << b.rng.below(u64::from(bits));
            if !set_value(b, ops[1], bits, v) {
                return Err(Retry("BSF/BSR source is pinned".into()));
            }
        }
        Cmpxchg if b.rng.chance(50) => {
            let v = value(b, ops[0], bits);
            set_reg(b, acc(bits), v);
        }
        Cmpxchg8b | Cmpxchg16b if b.rng.chance(50) => {
            if let Op::Mem(m) = ops[0] {
                let half = if b.mnemonic == Cmpxchg8b { 4 } else { 8 };
                let lo = b.read_mem(m.ea, half);
                let hi = b.read_mem(m.ea + half as u64, half);
                let hb = half as u32 * 8;
                set_reg(b, acc(hb), lo);
                set_reg(b, dxreg(hb), hi);
            }
        }
        Bextr if b.rng.chance(60) => {
            let ctl = b.rng.below(72) | (b.rng.below(72) << 8);
            set_value(b, ops[2], bits, (value(b, ops[2], bits) & !0xffff) | ctl);
        }
        Bzhi if b.rng.chance(60) => {
            let n = b.rng.below(72);
            set_value(b, ops[2], bits, (value(b, ops[2], bits) & !0xff) | n);
        }
        m if is_shift(m) && ops.iter().any(|o| matches!(o, Op::Reg(Register::CL))) => {
            let c = shift_count(b);
            if !set_reg(b, Register::CL, c) {
                let cl = b.get(Register::CL);
                if matches!(m, Shld | Shrd) && bits == 16 && (cl & 31) > 16 {
                    return Err(Retry("16-bit SHLD/SHRD count pinned above 16".into()));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// DIV/IDIV: mostly a quotient that fits; a few deliberate #DE cases
/// (zero divisor, quotient overflow). If the divisor is one of the dividend
/// registers, or they are pinned by the address, the values stay random.
fn divide(b: &mut Builder, divisor: Op, bits: u32) {
    let signed = b.mnemonic == Mnemonic::Idiv;
    let dividend_regs: &[usize] = if bits == 8 { &[0] } else { &[0, 2] };
    if dividend_regs.iter().any(|n| b.pinned[*n]) {
        return;
    }
    if let Op::Reg(r) = divisor {
        if dividend_regs.contains(&gpr_index(r)) {
            return;
        }
    }
    let mask = width_mask(bits);
    let sext = |v: u64| -> i128 {
        let s = 128 - bits;
        (i128::from(v) << s) >> s
    };
    let mode = b.rng.below(100);
    let (d, dividend): (u64, u128) = if mode < 4 {
        (
            0,
            (u128::from(b.rng.next_u64()) << 64) | u128::from(b.rng.next_u64()),
        )
    } else if mode < 8 {
        if signed {
            (mask, (-(1i128 << (bits - 1))) as u128)
        } else {
            let d = b.rng.edge(bits).max(1);
            (d, u128::from(d) << bits)
        }
    } else if signed {
        let d = loop {
            let d = b.rng.edge(bits);
            if d != 0 {
                break d;
            }
        };
        let (ds, q) = (sext(d), sext(b.rng.edge(bits)));
        let prod = q * ds;
        let r = i128::from(b.rng.below(ds.unsigned_abs() as u64));
        let r = if prod < 0 || (prod == 0 && b.rng.chance(50)) {
            -r
        } else {
            r
        };
        (d, (prod + r) as u128)
    } else {
        let d = b.rng.edge(bits).max(1);
        let q = b.rng.edge(bits);
        let r = b.rng.below(d);
        (d, u128::from(q) * u128::from(d) + u128::from(r))
    };
    if !set_value(b, divisor, bits, d) {
        return;
    }
    let wide: u128 = if bits == 64 {
        u128::MAX
    } else {
        (1u128 << (2 * bits)) - 1
    };
    let dividend = dividend & wide;
    if bits == 8 {
        b.set(Register::AX, dividend as u64 & 0xffff);
    } else {
        b.set(acc(bits), dividend as u64 & mask);
        b.set(dxreg(bits), (dividend >> bits) as u64 & mask);
    }
}

/// LOCK and REP prefixes.
pub fn prefixes(b: &mut Builder, ins: &mut Instruction) {
    let op = b.code.op_code();
    let mem_dest = matches!(b.ops.first(), Some(Op::Mem(m)) if m.size > 0);
    if op.can_use_lock_prefix() && mem_dest && b.rng.chance(30) {
        ins.set_has_lock_prefix(true);
    }
    match b.rep {
        1 if is_compare_string(b.mnemonic) => ins.set_has_repe_prefix(true),
        1 => ins.set_has_rep_prefix(true),
        2 => ins.set_has_repne_prefix(true),
        _ => {}
    }
}

/// Values that depend on the instruction length: indirect branch targets,
/// return addresses, and the flags image POPF loads.
pub fn after_encoding(b: &mut Builder) -> Result<(), Retry> {
    let fall = b.env.insn_addr + b.len as u64;
    let target = if b.rng.chance(50) {
        b.env.taken_target
    } else {
        fall
    };
    let rsp = b.gpr[RSP];
    match b.code {
        Code::Jmp_rm64 | Code::Call_rm64 => match b.ops[0] {
            Op::Reg(r) => set_reg(b, r, target)
                .then_some(())
                .ok_or_else(|| Retry("branch target register is pinned".into()))?,
            Op::Mem(Mem { ea, .. }) => b.write_mem(ea, 8, target),
            _ => {}
        },
        Code::Retnq | Code::Retnq_imm16 => b.write_mem(rsp, 8, target),
        Code::Popfq | Code::Popfw => {
            let size = if b.code == Code::Popfq { 8 } else { 2 };
            let v = (b.rng.next_u64() & (ARITH_FLAGS | DF)) | IF | FLAGS_FIXED;
            b.write_mem(rsp, size, v);
        }
        _ => {}
    }
    Ok(())
}

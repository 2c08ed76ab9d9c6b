//! One random step of an SSE or x87 program: operands, immediates and the
//! memory contents some forms need to stay defined.

use super::POOL;
use crate::gen::fp::{operands, state, values};
use crate::gen::Rng;
use crate::randprog::alu::BUF_LEN;
use iced_x86::{Code, Instruction, Mnemonic, OpCodeOperandKind as K, OpKind, Register};

fn reg(first: Register, n: u64) -> Register {
    Register::try_from(first as usize + n as usize).expect("register")
}

fn sized(full: Register, bits: u32) -> Register {
    let n = full.number();
    match bits {
        32 => Register::try_from(Register::EAX as usize + n).expect("register"),
        _ => full,
    }
}

/// A buffer offset for an access of `size` bytes: 16-byte operands and
/// larger aligned, the others at any offset.
pub fn offset(rng: &mut Rng, size: usize) -> u32 {
    let room = u64::from(BUF_LEN) - size.max(16) as u64 - 16;
    let d = rng.below(room) as u32;
    if size >= 16 {
        d & !15
    } else if rng.chance(50) {
        d & !(size.next_power_of_two() as u32 - 1)
    } else {
        d
    }
}

fn set_mem(ins: &mut Instruction, i: u32, off: u32) {
    ins.set_op_kind(i, OpKind::Memory);
    ins.set_memory_base(Register::R14);
    ins.set_memory_index(Register::None);
    ins.set_memory_displacement64(u64::from(off));
    ins.set_memory_displ_size(if off < 0x80 { 1 } else { 8 });
}

/// One random step: instructions that prepare it, the instruction itself.
pub struct Step {
    pub pre: Vec<Instruction>,
    pub ins: Instruction,
}

/// Stores `bytes` at `[r14 + off]` with immediate moves (no register
/// touched).
fn store_imm(pre: &mut Vec<Instruction>, off: u32, bytes: &[u8]) -> Option<()> {
    for (k, chunk) in bytes.chunks(4).enumerate() {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        let at = off + 4 * k as u32;
        let mut m = Instruction::with2(
            if chunk.len() == 4 {
                Code::Mov_rm32_imm32
            } else {
                Code::Mov_rm16_imm16
            },
            iced_x86::MemoryOperand::with_base_displ(Register::R14, i64::from(at)),
            if chunk.len() == 4 {
                u32::from_le_bytes(b)
            } else {
                u32::from(u16::from_le_bytes([b[0], b[1]]))
            },
        )
        .ok()?;
        m.set_memory_displ_size(8);
        pre.push(m);
    }
    Some(())
}

/// One random instance of `code`. ST(i) operands are mostly among the
/// `depth` registers the stack holds.
pub fn build(code: Code, rng: &mut Rng, depth: i32) -> Option<Step> {
    use Mnemonic::*;
    let op = code.op_code();
    let size = op.memory_size().size();
    let mut pre = Vec::new();
    let mut ins = Instruction::default();
    ins.set_code(code);
    let mut mem_off = None;
    for (i, &k) in op.op_kinds().iter().enumerate() {
        let i = i as u32;
        let reg_kind = match k {
            K::mm_reg | K::mm_rm => Some(reg(Register::MM0, rng.below(8))),
            K::xmm_reg | K::xmm_rm => Some(reg(Register::XMM0, rng.below(16))),
            K::st0 => Some(Register::ST0),
            K::sti_opcode => {
                let n = if rng.chance(90) { depth.clamp(1, 8) } else { 8 };
                Some(reg(Register::ST0, rng.below(n as u64)))
            }
            K::ax => Some(Register::AX),
            K::r32_reg => Some(sized(rng.pick(&POOL), 32)),
            K::r64_reg => Some(rng.pick(&POOL)),
            K::mm_or_mem | K::xmm_or_mem | K::r32_or_mem | K::r64_or_mem if rng.chance(50) => {
                Some(match k {
                    K::mm_or_mem => reg(Register::MM0, rng.below(8)),
                    K::xmm_or_mem => reg(Register::XMM0, rng.below(16)),
                    K::r32_or_mem => sized(rng.pick(&POOL), 32),
                    _ => rng.pick(&POOL),
                })
            }
            _ => None,
        };
        if let Some(r) = reg_kind {
            ins.set_op_kind(i, OpKind::Register);
            ins.set_op_register(i, r);
            continue;
        }
        match k {
            K::imm8 => {
                ins.set_op_kind(i, OpKind::Immediate8);
                ins.set_immediate8(operands::imm8_for(code, rng) as u8);
            }
            K::seg_rDI => {
                let off = offset(rng, 16);
                let mut lea = Instruction::with2(
                    Code::Lea_r64_m,
                    Register::RDI,
                    iced_x86::MemoryOperand::with_base_displ(Register::R14, i64::from(off)),
                )
                .ok()?;
                lea.set_memory_displ_size(8);
                pre.push(lea);
                ins.set_op_kind(i, OpKind::MemorySegRDI);
            }
            _ => {
                let off = offset(rng, size);
                set_mem(&mut ins, i, off);
                mem_off = Some(off);
            }
        }
    }
    // Memory contents some forms need to stay defined and masked.
    match (code.mnemonic(), mem_off) {
        (Fbld, Some(off)) => store_imm(&mut pre, off, &values::bcd(rng, true))?,
        (Ldmxcsr, Some(off)) => {
            let v = state::mxcsr(rng) | (0x3f << 7);
            store_imm(&mut pre, off, &v.to_le_bytes())?
        }
        (Fldcw, Some(off)) => {
            let v = state::fcw(rng) | 0x3f;
            store_imm(&mut pre, off, &v.to_le_bytes())?
        }
        _ => {}
    }
    if matches!(
        code.mnemonic(),
        Pcmpestri | Pcmpestrm | Pcmpestri64 | Pcmpestrm64
    ) {
        for r in [Register::RAX, Register::RDX] {
            let len = rng.range(-20, 20);
            pre.push(Instruction::with2(Code::Mov_r64_imm64, r, len).ok()?);
        }
    }
    iced_x86::Encoder::new(64).encode(&ins, 0).ok()?;
    Some(Step { pre, ins })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_encode() {
        let mut rng = Rng::new(1);
        for code in [
            Code::Addps_xmm_xmmm128,
            Code::Paddb_mm_mmm64,
            Code::Fadd_st0_sti,
            Code::Fbld_m80bcd,
            Code::Ldmxcsr_m32,
            Code::Maskmovdqu_rDI_xmm_xmm,
            Code::Pcmpestri64_xmm_xmmm128_imm8,
            Code::Cvtsi2sd_xmm_rm64,
            Code::Fnstsw_AX,
        ] {
            for _ in 0..20 {
                let s = build(code, &mut rng, 8).unwrap_or_else(|| panic!("{code:?}"));
                assert_eq!(s.ins.code(), code);
            }
        }
    }
}

//! Choosing the fast form of a decoded instruction.

use super::{FastOp, ADD, ALU, AND, CMP, OR, SUB, TEST, XOR};
use crate::exec::mem::is_canonical;
use crate::ops::control::SETCC;
use crate::ops::mov::CMOVCC;
use iced_x86::{Code, CodeSize, Instruction, Mnemonic, OpKind, Register};

/// The fast form of `ins`, if it has one.
pub fn select(ins: &Instruction) -> Option<FastOp> {
    use Code::*;
    use FastOp::*;
    if ins.has_lock_prefix() || ins.has_rep_prefix() || ins.has_repne_prefix() {
        return None;
    }
    let reg = |n: u32| ins.op_kind(n) == OpKind::Register;
    let mem = |n: u32| ins.op_kind(n) == OpKind::Memory;
    let rr = ins.op_count() == 2 && reg(0) && reg(1);
    let r0 = ins.op_count() >= 1 && reg(0);
    let low8 = |r: Register| {
        r.size() == 1 && !matches!(r, Register::AH | Register::CH | Register::DH | Register::BH)
    };
    let long = ins.code_size() == CodeSize::Code64;
    let branch_ok = long && is_canonical(ins.near_branch_target());
    let shapes = [
        (Form::Rm64R64, rr),
        (Form::Rm32R32, rr),
        (Form::Rm64Imm8, r0),
        (Form::Rm64Imm32, r0),
        (Form::Rm32Imm8, r0),
        (Form::Rm32Imm32, r0),
        (Form::R64Rm64, mem(1)),
        (Form::R32Rm32, mem(1)),
    ];
    let alu_op = match ins.mnemonic() {
        Mnemonic::Add => Some(ADD),
        Mnemonic::Sub => Some(SUB),
        Mnemonic::And => Some(AND),
        Mnemonic::Or => Some(OR),
        Mnemonic::Xor => Some(XOR),
        Mnemonic::Cmp => Some(CMP),
        Mnemonic::Test => Some(TEST),
        _ => None,
    };
    if let Some(op) = alu_op {
        for (k, &(form, ok)) in shapes.iter().enumerate() {
            if ok && is_form(ins.code(), op, form) {
                return Some(ALU[usize::from(op)][k]);
            }
        }
    }
    Some(match ins.code() {
        Add_rm64_r64 if mem(0) => AddM64r,
        Add_rm32_r32 if mem(0) => AddM32r,
        Add_rm8_r8 if mem(0) && low8(ins.op1_register()) => AddM8r,
        Add_rm64_imm8 if mem(0) => AddM64i8,
        Add_rm64_imm32 if mem(0) => AddM64i,
        Add_rm32_imm8 if mem(0) => AddM32i8,
        Add_rm32_imm32 if mem(0) => AddM32i,
        Add_rm8_imm8 if mem(0) => AddM8i,
        Sub_rm64_r64 if mem(0) => SubM64r,
        Sub_rm32_r32 if mem(0) => SubM32r,
        Sub_rm8_r8 if mem(0) && low8(ins.op1_register()) => SubM8r,
        Sub_rm64_imm8 if mem(0) => SubM64i8,
        Sub_rm64_imm32 if mem(0) => SubM64i,
        Sub_rm32_imm8 if mem(0) => SubM32i8,
        Sub_rm32_imm32 if mem(0) => SubM32i,
        Sub_rm8_imm8 if mem(0) => SubM8i,
        And_rm64_r64 if mem(0) => AndM64r,
        And_rm32_r32 if mem(0) => AndM32r,
        And_rm8_r8 if mem(0) && low8(ins.op1_register()) => AndM8r,
        And_rm64_imm8 if mem(0) => AndM64i8,
        And_rm64_imm32 if mem(0) => AndM64i,
        And_rm32_imm8 if mem(0) => AndM32i8,
        And_rm32_imm32 if mem(0) => AndM32i,
        And_rm8_imm8 if mem(0) => AndM8i,
        Or_rm64_r64 if mem(0) => OrM64r,
        Or_rm32_r32 if mem(0) => OrM32r,
        Or_rm8_r8 if mem(0) && low8(ins.op1_register()) => OrM8r,
        Or_rm64_imm8 if mem(0) => OrM64i8,
        Or_rm64_imm32 if mem(0) => OrM64i,
        Or_rm32_imm8 if mem(0) => OrM32i8,
        Or_rm32_imm32 if mem(0) => OrM32i,
        Or_rm8_imm8 if mem(0) => OrM8i,
        Xor_rm64_r64 if mem(0) => XorM64r,
        Xor_rm32_r32 if mem(0) => XorM32r,
        Xor_rm8_r8 if mem(0) && low8(ins.op1_register()) => XorM8r,
        Xor_rm64_imm8 if mem(0) => XorM64i8,
        Xor_rm64_imm32 if mem(0) => XorM64i,
        Xor_rm32_imm8 if mem(0) => XorM32i8,
        Xor_rm32_imm32 if mem(0) => XorM32i,
        Xor_rm8_imm8 if mem(0) => XorM8i,
        Inc_rm64 if mem(0) => IncM64,
        Dec_rm64 if mem(0) => DecM64,
        Inc_rm32 if mem(0) => IncM32,
        Dec_rm32 if mem(0) => DecM32,
        Inc_rm8 if mem(0) => IncM8,
        Dec_rm8 if mem(0) => DecM8,
        Cmp_rm8_imm8 if mem(0) => CmpMi8b,
        Cmp_rm32_imm8 if mem(0) => CmpMi32b,
        Cmp_rm64_imm8 if mem(0) => CmpMi64b,
        Cmp_rm32_imm32 if mem(0) => CmpMi32d,
        Cmp_rm64_imm32 if mem(0) => CmpMi64d,
        Cmp_rm64_r64 if mem(0) => CmpMr64,
        Cmp_rm32_r32 if mem(0) => CmpMr32,
        Inc_rm64 if r0 => Inc64,
        Dec_rm64 if r0 => Dec64,
        Inc_rm32 if r0 => Inc32,
        Dec_rm32 if r0 => Dec32,
        Mov_rm64_r64 | Mov_r64_rm64 if rr => MovRr64,
        Mov_rm32_r32 | Mov_r32_rm32 if rr => MovRr32,
        Mov_r64_imm64 => MovRi64,
        Mov_rm64_imm32 if r0 => MovRi64s,
        Mov_r32_imm32 => MovRi32,
        Mov_rm32_imm32 if r0 => MovRi32,
        Mov_r64_rm64 if mem(1) => MovLoad64,
        Mov_r32_rm32 if mem(1) => MovLoad32,
        Mov_rm64_r64 if mem(0) => MovStore64,
        Mov_rm32_r32 if mem(0) => MovStore32,
        Mov_rm8_r8 if mem(0) && low8(ins.op1_register()) => MovStore8,
        Mov_rm64_imm32 if mem(0) => MovStoreImm64,
        Mov_rm32_imm32 if mem(0) => MovStoreImm32,
        Mov_rm16_imm16 if mem(0) => MovStoreImm16,
        Mov_rm8_imm8 if mem(0) => MovStoreImm8,
        Movzx_r32_rm8 if mem(1) => Movzx32m8,
        Movzx_r64_rm8 if mem(1) => Movzx64m8,
        Movzx_r32_rm16 if mem(1) => Movzx32m16,
        Movzx_r64_rm16 if mem(1) => Movzx64m16,
        Movsx_r32_rm8 if mem(1) => Movsx32m8,
        Movsx_r64_rm8 if mem(1) => Movsx64m8,
        Movsx_r32_rm16 if mem(1) => Movsx32m16,
        Movsx_r64_rm16 if mem(1) => Movsx64m16,
        Movsxd_r64_rm32 if mem(1) => Movsxd64m32,
        Movzx_r32_rm8 if rr && low8(ins.op1_register()) => Movzx32r8,
        Movzx_r64_rm8 if rr && low8(ins.op1_register()) => Movzx64r8,
        Movsx_r32_rm8 if rr && low8(ins.op1_register()) => Movsx32r8,
        Movsx_r64_rm8 if rr && low8(ins.op1_register()) => Movsx64r8,
        Movzx_r32_rm16 if rr => Movzx32r16,
        Movzx_r64_rm16 if rr => Movzx64r16,
        Movsx_r32_rm16 if rr => Movsx32r16,
        Movsx_r64_rm16 if rr => Movsx64r16,
        Movsxd_r64_rm32 if rr => Movsxd64r32,
        _ if CMOVCC.contains(&ins.mnemonic()) && ins.op0_register().size() >= 4 => {
            match (ins.op0_register().size(), rr) {
                (4, true) => Cmov32r,
                (4, false) => Cmov32m,
                (_, true) => Cmov64r,
                (_, false) => Cmov64m,
            }
        }
        _ if SETCC.contains(&ins.mnemonic()) && mem(0) => SetccM,
        _ if SETCC.contains(&ins.mnemonic()) && r0 && low8(ins.op0_register()) => SetccR,
        Lea_r64_m => Lea64,
        Lea_r32_m => Lea32,
        Shl_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => Shl64,
        Shr_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => Shr64,
        Sar_rm64_imm8 if r0 && ins.immediate8() & 63 != 0 => Sar64,
        Shl_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => Shl32,
        Shr_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => Shr32,
        Sar_rm32_imm8 if r0 && ins.immediate8() & 31 != 0 => Sar32,
        Imul_r64_rm64 if rr => Imul64,
        Imul_r64_rm64_imm8 if reg(1) => Imul64i8,
        Imul_r64_rm64_imm32 if reg(1) => Imul64i32,
        Mul_rm64 if r0 => Mul64,
        Push_r64 => Push64,
        Pop_r64 if ins.op0_register() != Register::RSP => Pop64,
        Jmp_rel8_64 | Jmp_rel32_64 if branch_ok => JmpRel,
        Call_rel32_64 if branch_ok => CallRel,
        Retnq if long => Ret64,
        Jmp_rel8_16 | Jmp_rel16 | Jmp_rel8_32 | Jmp_rel32_32 if !long => JmpChecked,
        Push_r32 if !long => Push32,
        Pop_r32 if !long => Pop32,
        Call_rel32_32 if !long => Call32,
        Retnd if !long => Ret32,
        c if c.is_jcc_short_or_near() && !long => JccChecked,
        c if c.is_jcc_short_or_near() && branch_ok => {
            const JCC: [FastOp; 16] = [
                Jcc0, Jcc1, Jcc2, Jcc3, Jcc4, Jcc5, Jcc6, Jcc7, Jcc8, Jcc9, Jcc10, Jcc11, Jcc12,
                Jcc13, Jcc14, Jcc15,
            ];
            *JCC.get(usize::from(crate::ops::control::cc(ins)))?
        }
        _ => return None,
    })
}

/// Operand shapes of the ALU codes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Rm64R64,
    Rm32R32,
    Rm64Imm8,
    Rm64Imm32,
    Rm32Imm8,
    Rm32Imm32,
    R64Rm64,
    R32Rm32,
}

/// Whether `c` is ALU operation `op` in shape `form` (register-register
/// shapes accept both directions of the encoding).
fn is_form(c: Code, op: u8, form: Form) -> bool {
    use Code::*;
    let codes: &[Code] = match (op, form) {
        (ADD, Form::Rm64R64) => &[Add_rm64_r64, Add_r64_rm64],
        (ADD, Form::Rm32R32) => &[Add_rm32_r32, Add_r32_rm32],
        (ADD, Form::Rm64Imm8) => &[Add_rm64_imm8],
        (ADD, Form::Rm64Imm32) => &[Add_rm64_imm32, Add_RAX_imm32],
        (ADD, Form::Rm32Imm8) => &[Add_rm32_imm8],
        (ADD, Form::Rm32Imm32) => &[Add_rm32_imm32, Add_EAX_imm32],
        (ADD, Form::R64Rm64) => &[Add_r64_rm64],
        (ADD, Form::R32Rm32) => &[Add_r32_rm32],
        (SUB, Form::Rm64R64) => &[Sub_rm64_r64, Sub_r64_rm64],
        (SUB, Form::Rm32R32) => &[Sub_rm32_r32, Sub_r32_rm32],
        (SUB, Form::Rm64Imm8) => &[Sub_rm64_imm8],
        (SUB, Form::Rm64Imm32) => &[Sub_rm64_imm32, Sub_RAX_imm32],
        (SUB, Form::Rm32Imm8) => &[Sub_rm32_imm8],
        (SUB, Form::Rm32Imm32) => &[Sub_rm32_imm32, Sub_EAX_imm32],
        (SUB, Form::R64Rm64) => &[Sub_r64_rm64],
        (SUB, Form::R32Rm32) => &[Sub_r32_rm32],
        (AND, Form::Rm64R64) => &[And_rm64_r64, And_r64_rm64],
        (AND, Form::Rm32R32) => &[And_rm32_r32, And_r32_rm32],
        (AND, Form::Rm64Imm8) => &[And_rm64_imm8],
        (AND, Form::Rm64Imm32) => &[And_rm64_imm32, And_RAX_imm32],
        (AND, Form::Rm32Imm8) => &[And_rm32_imm8],
        (AND, Form::Rm32Imm32) => &[And_rm32_imm32, And_EAX_imm32],
        (AND, Form::R64Rm64) => &[And_r64_rm64],
        (AND, Form::R32Rm32) => &[And_r32_rm32],
        (OR, Form::Rm64R64) => &[Or_rm64_r64, Or_r64_rm64],
        (OR, Form::Rm32R32) => &[Or_rm32_r32, Or_r32_rm32],
        (OR, Form::Rm64Imm8) => &[Or_rm64_imm8],
        (OR, Form::Rm64Imm32) => &[Or_rm64_imm32, Or_RAX_imm32],
        (OR, Form::Rm32Imm8) => &[Or_rm32_imm8],
        (OR, Form::Rm32Imm32) => &[Or_rm32_imm32, Or_EAX_imm32],
        (OR, Form::R64Rm64) => &[Or_r64_rm64],
        (OR, Form::R32Rm32) => &[Or_r32_rm32],
        (XOR, Form::Rm64R64) => &[Xor_rm64_r64, Xor_r64_rm64],
        (XOR, Form::Rm32R32) => &[Xor_rm32_r32, Xor_r32_rm32],
        (XOR, Form::Rm64Imm8) => &[Xor_rm64_imm8],
        (XOR, Form::Rm64Imm32) => &[Xor_rm64_imm32, Xor_RAX_imm32],
        (XOR, Form::Rm32Imm8) => &[Xor_rm32_imm8],
        (XOR, Form::Rm32Imm32) => &[Xor_rm32_imm32, Xor_EAX_imm32],
        (XOR, Form::R64Rm64) => &[Xor_r64_rm64],
        (XOR, Form::R32Rm32) => &[Xor_r32_rm32],
        (CMP, Form::Rm64R64) => &[Cmp_rm64_r64, Cmp_r64_rm64],
        (CMP, Form::Rm32R32) => &[Cmp_rm32_r32, Cmp_r32_rm32],
        (CMP, Form::Rm64Imm8) => &[Cmp_rm64_imm8],
        (CMP, Form::Rm64Imm32) => &[Cmp_rm64_imm32, Cmp_RAX_imm32],
        (CMP, Form::Rm32Imm8) => &[Cmp_rm32_imm8],
        (CMP, Form::Rm32Imm32) => &[Cmp_rm32_imm32, Cmp_EAX_imm32],
        (CMP, Form::R64Rm64) => &[Cmp_r64_rm64],
        (CMP, Form::R32Rm32) => &[Cmp_r32_rm32],
        (TEST, Form::Rm64R64) => &[Test_rm64_r64],
        (TEST, Form::Rm32R32) => &[Test_rm32_r32],
        (TEST, Form::Rm64Imm32) => &[Test_rm64_imm32, Test_RAX_imm32],
        (TEST, Form::Rm32Imm32) => &[Test_rm32_imm32, Test_EAX_imm32],
        _ => &[],
    };
    codes.contains(&c)
}

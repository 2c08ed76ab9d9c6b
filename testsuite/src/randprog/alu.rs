//! Random integer instruction sequences with a flags-and-results checksum.

use super::STATUS;
use crate::gen::{is_near_branch, skip_reason, Rng};
use crate::guest;
use crate::kvm::kit::{Kit, Stash, RESUME, SCRATCH};
use iced_x86::code_asm::*;
use iced_x86::{
    Code, Instruction, InstructionInfoFactory, MemoryOperand, Mnemonic, OpAccess,
    OpCodeOperandKind as K, Register,
};

/// The data buffer random memory operands address, as `[r14 + disp]`.
pub const BUF: u64 = SCRATCH + 0x2000;
pub const BUF_LEN: u32 = 0x1000;
/// Per-step checksums when tracing.
pub const TRACE: u64 = SCRATCH + 0x4000;
pub(super) const TRACE_MAX: usize = 0x7000 / 8;

const OF: u64 = 0x800;
const AF: u64 = 0x10;
const CF: u64 = 0x1;

/// Registers random instructions use. RSP is the stack, R12 a scratch
/// register of the checksum code, R14 the buffer base, R15 the checksum.
pub(super) const POOL: [Register; 12] = [
    Register::RAX,
    Register::RBX,
    Register::RCX,
    Register::RDX,
    Register::RSI,
    Register::RDI,
    Register::RBP,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
    Register::R13,
];

fn sized(full: Register, bits: u32, rng: &mut Rng) -> Register {
    let n = full.number();
    match bits {
        8 => {
            // AH..BH exist only without REX; leave them to the generator's
            // luck (they are valid when no other operand needs REX).
            let legacy_high = n < 4 && rng.chance(15);
            if legacy_high {
                [Register::AH, Register::CH, Register::DH, Register::BH][n]
            } else {
                let lows = [
                    Register::AL,
                    Register::CL,
                    Register::DL,
                    Register::BL,
                    Register::SPL,
                    Register::BPL,
                    Register::SIL,
                    Register::DIL,
                ];
                if n < 8 {
                    lows[n]
                } else {
                    Register::try_from(Register::R8L as usize + n - 8).expect("register")
                }
            }
        }
        16 => Register::try_from(Register::AX as usize + n).expect("register"),
        32 => Register::try_from(Register::EAX as usize + n).expect("register"),
        _ => full,
    }
}

#[derive(Clone, Copy, Debug)]
enum Opnd {
    Reg(Register),
    Mem(u32),
    Imm(i64),
    Imm64(u64),
}

fn mem(disp: u32) -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::R14, i64::from(disp))
}

/// How a memory operand at buffer offset `off` is addressed.
#[derive(Clone, Copy, Debug)]
enum Addr {
    /// `[r14 + off]`
    Base,
    /// `[r14 + r12*scale + disp]`, R12 set to `index` just before.
    Indexed { index: u32, scale: u32 },
    /// `[r14d + off]` (0x67 prefix).
    Addr32,
}

impl Addr {
    fn operand(self, off: u32) -> MemoryOperand {
        match self {
            Addr::Base => mem(off),
            Addr::Indexed { index, scale } => MemoryOperand::with_base_index_scale_displ_size(
                Register::R14,
                Register::R12,
                scale,
                i64::from(off) - i64::from(index * scale),
                1,
            ),
            Addr::Addr32 => MemoryOperand::with_base_displ(Register::R14D, i64::from(off)),
        }
    }
}

fn make(code: Code, ops: &[Opnd], addr: Addr) -> Option<Instruction> {
    use Opnd::*;
    let mem = |off: u32| addr.operand(off);
    match *ops {
        [] => Ok(Instruction::with(code)),
        [Reg(r)] => Instruction::with1(code, r),
        [Mem(m)] => Instruction::with1(code, mem(m)),
        [Reg(a), Reg(b)] => Instruction::with2(code, a, b),
        [Reg(a), Mem(m)] => Instruction::with2(code, a, mem(m)),
        [Mem(m), Reg(b)] => Instruction::with2(code, mem(m), b),
        [Reg(a), Imm(v)] => Instruction::with2(code, a, v),
        [Reg(a), Imm64(v)] => Instruction::with2(code, a, v),
        [Mem(m), Imm(v)] => Instruction::with2(code, mem(m), v as i32),
        [Reg(a), Reg(b), Reg(c)] => Instruction::with3(code, a, b, c),
        [Reg(a), Reg(b), Imm(v)] => Instruction::with3(code, a, b, v as i32),
        [Reg(a), Reg(b), Mem(m)] => Instruction::with3(code, a, b, mem(m)),
        [Reg(a), Mem(m), Reg(c)] => Instruction::with3(code, a, mem(m), c),
        [Reg(a), Mem(m), Imm(v)] => Instruction::with3(code, a, mem(m), v as i32),
        [Mem(m), Reg(b), Reg(c)] => Instruction::with3(code, mem(m), b, c),
        [Mem(m), Reg(b), Imm(v)] => Instruction::with3(code, mem(m), b, v as i32),
        _ => return None,
    }
    .ok()
}

fn is_shift(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Shl | Sal | Shr | Sar | Rol | Ror | Rcl | Rcr | Shld | Shrd
    )
}

fn kind_supported(k: K) -> bool {
    matches!(
        k,
        K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r8_reg
            | K::r8_opcode
            | K::r16_reg
            | K::r16_opcode
            | K::r16_rm
            | K::r32_reg
            | K::r32_opcode
            | K::r32_rm
            | K::r32_vvvv
            | K::r64_reg
            | K::r64_opcode
            | K::r64_rm
            | K::r64_vvvv
            | K::mem
            | K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8sex64
            | K::imm16
            | K::imm32
            | K::imm32sex64
            | K::imm64
            | K::al
            | K::ax
            | K::eax
            | K::rax
            | K::cl
    )
}

/// The instruction forms random programs draw from: implemented by
/// emu-core, comparable with the host (see [`crate::gen::skip_reason`]),
/// not MMX, SSE or x87 (the programs compare general registers and
/// memory, and run without CR4.OSFXSR), no control transfer, no stack or
/// string instruction (strings have a generator of their own), operands
/// this generator builds, minus [`super::exclusions`].
pub fn alu_forms(include_excluded: bool) -> Vec<Code> {
    use Mnemonic::*;
    emu_core::testing::implemented_codes()
        .into_iter()
        .filter(|&c| {
            let m = c.mnemonic();
            let op = c.op_code();
            skip_reason(c).is_none()
                && !crate::gen::fp::is_fp_form(c)
                && !is_near_branch(c)
                && !matches!(
                    m,
                    Push | Pop
                        | Pushf
                        | Pushfq
                        | Popf
                        | Popfq
                        | Enter
                        | Leave
                        | Xlatb
                        | Cld
                        | Std
                        | Clflush
                        | Clflushopt
                        | Movsb
                        | Movsw
                        | Movsd
                        | Movsq
                        | Stosb
                        | Stosw
                        | Stosd
                        | Stosq
                        | Lodsb
                        | Lodsw
                        | Lodsd
                        | Lodsq
                        | Scasb
                        | Scasw
                        | Scasd
                        | Scasq
                        | Cmpsb
                        | Cmpsw
                        | Cmpsd
                        | Cmpsq
                )
                && (include_excluded || c != Code::Bswap_r16)
                && (include_excluded || !(is_0f0d_register_form(c) && super::host_is_amd()))
                && !matches!(
                    c,
                    Code::Cmpxchg486_rm8_r8 | Code::Cmpxchg486_rm16_r16 | Code::Cmpxchg486_rm32_r32
                )
                && !op.op_kinds().is_empty()
                && op.op_kinds().iter().all(|&k| kind_supported(k))
        })
        .collect()
}

/// The register forms of 0F 0D (iced decodes the memory forms as
/// PREFETCH): a NOP on Intel processors, #UD on AMD ones.
fn is_0f0d_register_form(c: Code) -> bool {
    matches!(
        c,
        Code::Reservednop_rm16_r16_0F0D
            | Code::Reservednop_rm32_r32_0F0D
            | Code::Reservednop_rm64_r64_0F0D
    )
}

/// How to generate an ALU program.
#[derive(Clone, Copy, Debug)]
pub struct AluOptions {
    /// Random instructions (string instructions count as one).
    pub steps: usize,
    /// Print the checksum after every step (to find the first step that
    /// differs).
    pub trace: bool,
    /// Also draw the forms of [`super::exclusions`] (to check whether an
    /// exclusion is still needed).
    pub include_excluded: bool,
}

impl AluOptions {
    pub fn new(steps: usize) -> AluOptions {
        AluOptions {
            steps,
            trace: false,
            include_excluded: false,
        }
    }
}

/// One generated instruction and what the checksum code needs to know.
struct Gen {
    ins: Instruction,
    /// Instructions emitted before it (operand fixups).
    pre: Vec<Instruction>,
    flags: u64,
    may_fault: bool,
    /// Buffer offset of the memory operand.
    mem_off: Option<u32>,
}

fn imm_for(k: K, rng: &mut Rng) -> Opnd {
    match k {
        K::imm8_const_1 => Opnd::Imm(1),
        K::imm8 => Opnd::Imm(rng.range(-128, 255)),
        K::imm8sex16 | K::imm8sex32 | K::imm8sex64 => Opnd::Imm(rng.range(-128, 127)),
        K::imm16 => Opnd::Imm(rng.edge(16) as u16 as i16 as i64),
        K::imm32 | K::imm32sex64 => Opnd::Imm(rng.edge(32) as u32 as i32 as i64),
        _ => Opnd::Imm64(rng.reg_value(64)),
    }
}

fn width_of(k: K) -> u32 {
    match k {
        K::r8_or_mem | K::r8_reg | K::r8_opcode | K::al | K::cl => 8,
        K::r16_or_mem | K::r16_reg | K::r16_opcode | K::r16_rm | K::ax => 16,
        K::r32_or_mem | K::r32_reg | K::r32_opcode | K::r32_rm | K::r32_vvvv | K::eax => 32,
        _ => 64,
    }
}

/// Build one random instance of `code`, or `None` when this draw cannot be
/// encoded (the caller draws again).
fn build(code: Code, rng: &mut Rng, include_excluded: bool) -> Option<Gen> {
    let m = code.mnemonic();
    let kinds = code.op_code().op_kinds();
    let aligned16 = code == Code::Cmpxchg16b_m128;
    let mut pre = Vec::new();
    let mut ops = Vec::new();
    let mut width = 0;
    // BT* with a register bit offset into memory may address far away.
    let bt_mem_reg = matches!(
        m,
        Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
    );
    let mem_disp = |rng: &mut Rng| -> u32 {
        let d = rng.below(u64::from(BUF_LEN) - 48) as u32;
        if aligned16 {
            d & !15
        } else if rng.chance(30) {
            d & 0x78
        } else {
            d
        }
    };
    for (i, &k) in kinds.iter().enumerate() {
        let o = match k {
            K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem => {
                let force_mem = code == Code::Cmpxchg_rm32_r32 && !include_excluded;
                if force_mem || rng.chance(40) {
                    Opnd::Mem(mem_disp(rng))
                } else {
                    Opnd::Reg(sized(rng.pick(&POOL), width_of(k), rng))
                }
            }
            K::mem => Opnd::Mem(mem_disp(rng)),
            K::al => Opnd::Reg(Register::AL),
            K::ax => Opnd::Reg(Register::AX),
            K::eax => Opnd::Reg(Register::EAX),
            K::rax => Opnd::Reg(Register::RAX),
            K::cl => Opnd::Reg(Register::CL),
            K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8sex64
            | K::imm16
            | K::imm32
            | K::imm32sex64
            | K::imm64 => imm_for(k, rng),
            _ => Opnd::Reg(sized(rng.pick(&POOL), width_of(k), rng)),
        };
        if i == 0 {
            width = width_of(k);
        }
        ops.push(o);
    }
    // Shift and rotate counts: choose them, so the flags they define are
    // known.
    let mut count: Option<u32> = None;
    if is_shift(m) {
        let last = kinds.len() - 1;
        let c = match kinds[last] {
            K::imm8_const_1 => 1,
            K::cl => {
                let c = pick_count(rng, width);
                pre.push(Instruction::with2(Code::Mov_r8_imm8, Register::CL, i64::from(c)).ok()?);
                c
            }
            _ => {
                let c = pick_count(rng, width);
                ops[last] = Opnd::Imm(i64::from(c));
                c
            }
        };
        // 16-bit SHLD/SHRD by more than 16 leave the result undefined.
        let c = if matches!(m, Mnemonic::Shld | Mnemonic::Shrd) && width == 16 {
            let c = c & 15;
            match kinds[last] {
                K::cl => {
                    pre.clear();
                    pre.push(
                        Instruction::with2(Code::Mov_r8_imm8, Register::CL, i64::from(c)).ok()?,
                    );
                }
                _ => ops[last] = Opnd::Imm(i64::from(c)),
            }
            c
        } else {
            c
        };
        count = Some(c);
    }
    // BSF/BSR: make the source non-zero (the destination is undefined for
    // zero on paper).
    if matches!(m, Mnemonic::Bsf | Mnemonic::Bsr) {
        let bit = rng.below(u64::from(width)) as i64;
        match ops[1] {
            Opnd::Reg(r) => {
                pre.push(Instruction::with2(Code::Bts_rm64_imm8, r.full_register(), bit).ok()?)
            }
            Opnd::Mem(d) => {
                pre.push(Instruction::with2(Code::Bts_rm64_imm8, mem(d), bit as i32).ok()?)
            }
            _ => return None,
        }
    }
    // BT* into memory with a register offset: keep the offset small.
    if bt_mem_reg {
        if let (Opnd::Mem(_), Opnd::Reg(r)) = (ops[0], ops[1]) {
            let and = match width {
                16 => Code::And_rm16_imm8,
                32 => Code::And_rm32_imm8,
                _ => Code::And_rm64_imm8,
            };
            pre.push(Instruction::with2(and, r, 0x7fi64).ok()?);
        }
    }
    // DIV/IDIV: usually make the quotient fit; #DE is caught otherwise.
    let divide = matches!(m, Mnemonic::Div | Mnemonic::Idiv);
    if divide && rng.chance(80) {
        let signed = m == Mnemonic::Idiv;
        let ext = match (width, signed) {
            (8, false) => Instruction::with2(Code::Mov_r8_imm8, Register::AH, 0i64).ok()?,
            (_, false) => {
                Instruction::with2(Code::Xor_r32_rm32, Register::EDX, Register::EDX).ok()?
            }
            (8, true) => Instruction::with(Code::Cbw),
            (16, true) => Instruction::with(Code::Cwd),
            (32, true) => Instruction::with(Code::Cdq),
            _ => Instruction::with(Code::Cqo),
        };
        pre.push(ext);
        if let Opnd::Reg(r) = ops[0] {
            if r.full_register() != Register::RAX && r.full_register() != Register::RDX {
                pre.push(Instruction::with2(Code::Bts_rm64_imm8, r.full_register(), 0i64).ok()?);
            }
        }
    }
    // Addressing of the memory operand, if any.
    let mem_off = ops.iter().find_map(|o| match o {
        Opnd::Mem(d) => Some(*d),
        _ => None,
    });
    let addr = match (mem_off, rng.below(10)) {
        (Some(off), 0..=2) => {
            let scale = rng.pick(&[1u32, 2, 4, 8]);
            let index = rng.below(u64::from(off / scale) + 1) as u32;
            pre.push(
                Instruction::with2(Code::Mov_r32_imm32, Register::R12D, i64::from(index)).ok()?,
            );
            Addr::Indexed { index, scale }
        }
        (Some(_), 3) => Addr::Addr32,
        _ => Addr::Base,
    };
    let mut ins = make(code, &ops, addr)?;
    // AH..BH cannot be encoded next to a REX prefix: draw again.
    iced_x86::Encoder::new(64).encode(&ins, 0).ok()?;
    if ins.op0_kind() == iced_x86::OpKind::Memory
        && code.op_code().can_use_lock_prefix()
        && rng.chance(40)
    {
        ins.set_has_lock_prefix(true);
    }
    let mut flags = emu_core::testing::defined_flags(code)? & STATUS;
    if let Some(c) = count {
        flags = shift_flags(m, width, c);
    }
    Some(Gen {
        ins,
        pre,
        flags,
        may_fault: divide,
        mem_off,
    })
}

fn pick_count(rng: &mut Rng, width: u32) -> u32 {
    match rng.below(4) {
        0 => rng.pick(&[0, 1, 2]),
        1 => rng.pick(&[width - 1, width, width + 1, 31, 32, 33]),
        2 => rng.below(u64::from(width)) as u32,
        _ => rng.below(256) as u32,
    }
}

/// The flags a shift or rotate of `width` bits by `count` defines.
fn shift_flags(m: Mnemonic, width: u32, count: u32) -> u64 {
    use Mnemonic::*;
    let masked = count & if width == 64 { 63 } else { 31 };
    if masked == 0 {
        // Nothing changes: the previous (defined) flags stay.
        return STATUS;
    }
    let of = if masked == 1 { 0 } else { OF };
    match m {
        Rol | Ror | Rcl | Rcr => STATUS & !of,
        Shld | Shrd => STATUS & !AF & !of,
        _ => {
            let cf = if width <= 16 && masked >= width {
                CF
            } else {
                0
            };
            STATUS & !AF & !of & !cf
        }
    }
}

/// Emit the checksum code after an instruction: fold the defined flags,
/// then clear the undefined ones for what follows; fold every written
/// register and the memory qword written.
fn fold(
    a: &mut CodeAssembler,
    ins: &Instruction,
    flags: u64,
    mem_off: Option<u32>,
) -> Result<(), IcedError> {
    a.pushfq()?;
    a.pop(r12)?;
    a.and(r12d, flags as i32 | 2)?;
    a.push(r12)?;
    a.xor(r15, r12)?;
    a.rol(r15, 5)?;
    let mut f = InstructionInfoFactory::new();
    let info = f.info(ins);
    let mut done: Vec<Register> = Vec::new();
    for u in info.used_registers() {
        let r = u.register();
        if !r.is_gpr()
            || !matches!(
                u.access(),
                OpAccess::Write
                    | OpAccess::CondWrite
                    | OpAccess::ReadWrite
                    | OpAccess::ReadCondWrite
            )
        {
            continue;
        }
        let full = r.full_register();
        if matches!(
            full,
            Register::RSP | Register::R12 | Register::R14 | Register::R15
        ) || done.contains(&full)
        {
            continue;
        }
        done.push(full);
        a.add_instruction(Instruction::with2(Code::Xor_r64_rm64, Register::R15, full)?)?;
        a.rol(r15, 7)?;
    }
    let writes_memory = info.used_memory().iter().any(|m| {
        matches!(
            m.access(),
            OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
        )
    });
    if let (true, Some(d)) = (writes_memory, mem_off) {
        a.add_instruction(Instruction::with2(
            Code::Xor_r64_rm64,
            Register::R15,
            mem(d & !7),
        )?)?;
        a.rol(r15, 3)?;
    }
    a.popfq()
}

/// One random string instruction with its set-up, and what it defines.
fn string_op(a: &mut CodeAssembler, rng: &mut Rng) -> Result<Instruction, IcedError> {
    let size = rng.pick(&[1u32, 2, 4, 8]);
    let n = rng.below(13) as u32;
    let back = rng.chance(20);
    let span = n * size + 16;
    let (lo, hi) = if back {
        (span, BUF_LEN - 16)
    } else {
        (0, BUF_LEN - span - 16)
    };
    let mut addr = || lo + rng.below(u64::from(hi - lo)) as u32;
    let (s, d) = (addr(), addr());
    a.lea(rsi, ptr(r14 + s))?;
    a.lea(rdi, ptr(r14 + d))?;
    a.mov(ecx, n)?;
    if back {
        a.std()?;
    }
    // MOVS A4, CMPS A6, STOS AA, LODS AC, SCAS AE; odd opcodes for
    // 16/32/64-bit with 66 or REX.W.
    let which = rng.below(5) as usize;
    let opcode = [0xa4u8, 0xaa, 0xac, 0xae, 0xa6][which] + u8::from(size > 1);
    let mut bytes = Vec::new();
    // Any prefix: none, REP/REPE or REPNE (REPNE on MOVS/STOS/LODS acts
    // as REP).
    match rng.below(3) {
        1 => bytes.push(0xf3),
        2 => bytes.push(if which >= 3 { 0xf2 } else { 0xf3 }),
        _ => {}
    }
    match size {
        2 => bytes.push(0x66),
        8 => bytes.push(0x48),
        _ => {}
    }
    bytes.push(opcode);
    a.db(&bytes)?;
    let ins = crate::gen::decode(&bytes, 0);
    if back {
        a.cld()?;
    }
    Ok(ins)
}

/// Records the [`POOL`] registers by name (ring 3).
pub(super) fn stash_pool(a: &mut CodeAssembler, st: &mut Stash) -> Result<(), IcedError> {
    let names = [
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r13",
    ];
    for (name, r) in names
        .iter()
        .zip([rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r13])
    {
        st.put(a, name, r)?;
    }
    Ok(())
}

/// Folds the whole buffer at R14 into R15 (clobbers RCX, RSI, flags).
pub(super) fn fold_buffer(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(ecx, BUF_LEN / 8)?;
    a.mov(rsi, r14)?;
    let mut lp = a.create_label();
    a.set_label(&mut lp)?;
    a.xor(r15, qword_ptr(rsi))?;
    a.rol(r15, 1)?;
    a.add(rsi, 8)?;
    a.dec(ecx)?;
    a.jnz(lp)
}

/// Prints the per-step checksums of a tracing run (kernel mode).
pub(super) fn show_trace(a: &mut CodeAssembler, k: &Kit, steps: usize) -> Result<(), IcedError> {
    for i in 0..steps.min(TRACE_MAX) {
        k.show_mem(a, &format!("step {i}"), TRACE + 8 * i as u64)?;
    }
    Ok(())
}

/// A random ALU program: `steps` instructions in ring 3, then the
/// checksum and all registers printed. With `trace`, the checksum after
/// every step is printed too (to find the first step that differs).
pub fn alu_program(seed: u64, opts: &AluOptions) -> Result<(Vec<u8>, Vec<String>), IcedError> {
    let AluOptions {
        steps,
        trace,
        include_excluded,
    } = *opts;
    let forms = alu_forms(include_excluded);
    let mut rng = Rng::new(seed ^ 0xa1a1_0000_0000_0000);
    let mut listing = Vec::new();
    let image = guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            a.mov(r14, BUF)?;
            for i in 0..u64::from(BUF_LEN / 8) {
                a.mov(rax, rng.reg_value(64))?;
                a.mov(qword_ptr(r14 + i * 8), rax)?;
            }
            for r in POOL {
                a.add_instruction(Instruction::with2(
                    Code::Mov_r64_imm64,
                    r,
                    rng.reg_value(64),
                )?)?;
            }
            a.xor(r15, r15)?;
            a.push(rng.below(0x1000) as i32 & 0x8d5)?;
            a.popfq()?;
            let mut step = 0;
            while step < steps.min(TRACE_MAX) {
                if rng.chance(6) {
                    let ins = string_op(a, &mut rng)?;
                    listing.push(format!(
                        "{step}: {} (rsi/rdi/rcx set up before)",
                        crate::gen::format_instr(&ins)
                    ));
                    // CMPS/SCAS define all status flags, the others
                    // change none.
                    fold(a, &ins, STATUS, None)?;
                    a.xor(r15, rsi)?;
                    a.rol(r15, 3)?;
                    a.xor(r15, rdi)?;
                } else {
                    let code = rng.pick(&forms);
                    let Some(g) = build(code, &mut rng, include_excluded) else {
                        continue;
                    };
                    for p in &g.pre {
                        a.add_instruction(*p)?;
                    }
                    let mut after = a.create_label();
                    if g.may_fault {
                        // (R12 may hold an index already.)
                        a.push(rax)?;
                        a.lea(rax, ptr(after))?;
                        a.mov(qword_ptr(RESUME), rax)?;
                        a.pop(rax)?;
                    }
                    a.add_instruction(g.ins)?;
                    a.set_label(&mut after)?;
                    if g.may_fault {
                        a.mov(qword_ptr(RESUME), 0)?;
                    } else {
                        a.nop()?;
                    }
                    listing.push(format!("{step}: {}", crate::gen::format_instr(&g.ins)));
                    fold(a, &g.ins, g.flags, g.mem_off)?;
                }
                if trace {
                    a.mov(qword_ptr(TRACE + 8 * step as u64), r15)?;
                }
                step += 1;
            }
            stash_pool(a, &mut st)?;
            fold_buffer(a)?;
            st.put(a, "checksum", r15)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        if trace {
            show_trace(a, &k, listing.len())?;
        }
        guest::exit(a, 0)
    })?;
    Ok((image, listing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_cover_the_integer_families() {
        let forms = alu_forms(false);
        for m in [
            Mnemonic::Add,
            Mnemonic::Adc,
            Mnemonic::Sbb,
            Mnemonic::Imul,
            Mnemonic::Div,
            Mnemonic::Shld,
            Mnemonic::Rcr,
            Mnemonic::Bts,
            Mnemonic::Bsf,
            Mnemonic::Cmpxchg,
            Mnemonic::Xadd,
            Mnemonic::Cmovg,
            Mnemonic::Setb,
            Mnemonic::Movbe,
            Mnemonic::Andn,
            Mnemonic::Mulx,
            Mnemonic::Adcx,
        ] {
            assert!(forms.iter().any(|c| c.mnemonic() == m), "{m:?} missing");
        }
        assert!(!forms.contains(&Code::Bswap_r16));
    }

    #[test]
    fn programs_are_reproducible() {
        let (a, la) = alu_program(7, &AluOptions::new(100)).unwrap();
        let (b, lb) = alu_program(7, &AluOptions::new(100)).unwrap();
        assert_eq!(a, b);
        assert_eq!(la, lb);
        assert_eq!(la.len(), 100);
        let (c, _) = alu_program(8, &AluOptions::new(100)).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn shift_flags_follow_the_manual() {
        assert_eq!(shift_flags(Mnemonic::Shl, 32, 0), STATUS);
        assert_eq!(shift_flags(Mnemonic::Shl, 32, 32), STATUS);
        assert_eq!(shift_flags(Mnemonic::Shl, 32, 1), STATUS & !AF);
        assert_eq!(shift_flags(Mnemonic::Shl, 8, 9), STATUS & !AF & !OF & !CF);
        assert_eq!(shift_flags(Mnemonic::Rol, 8, 8), STATUS & !OF);
    }
}

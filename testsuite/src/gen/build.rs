//! Operand selection and encoding of one case.

use super::rng::{width_mask, Rng};
use super::{decode, fixup, flags, fp, Case, Env};
use crate::native::fx::FxImage;
use crate::native::{gprs, regs_from_gprs, ARITH_FLAGS, DF, FLAGS_FIXED, IF};
use emu_core::Regs;
use iced_x86::{Code, Encoder, Instruction, Mnemonic, OpCodeOperandKind as K, OpKind, Register};

/// The generator hit a combination it cannot use; try again.
#[derive(Debug)]
pub struct Retry(pub String);

macro_rules! retry {
    ($($t:tt)*) => { return Err(Retry(format!($($t)*))) };
}

/// A memory operand that was placed in the buffer.
#[derive(Clone, Copy, Debug)]
pub struct Mem {
    /// Effective address (before any instruction-specific adjustment).
    pub ea: u64,
    /// Bytes accessed at `ea` (0 for LEA-like forms).
    pub size: usize,
}

/// One operand as generated.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Reg(Register),
    Mem(Mem),
    /// An immediate, zero-extended.
    Imm(u64),
    /// A relative branch (targets the landing pad).
    Branch,
    /// A string operand (`[rSI]`/`[rDI]`); addresses are in RSI/RDI.
    Str,
}

pub struct Builder<'a> {
    pub env: &'a Env,
    pub rng: &'a mut Rng,
    pub code: Code,
    pub mnemonic: Mnemonic,
    pub gpr: [u64; 16],
    /// Registers whose value is fixed by an address; fixups must not change
    /// them.
    pub pinned: [bool; 16],
    pub rflags: u64,
    pub mem: Vec<u8>,
    pub ops: Vec<Op>,
    /// 32-bit address size (0x67).
    pub addr32: bool,
    /// String prefix: 0 none, 1 REP/REPE (F3), 2 REPNE (F2).
    pub rep: u8,
    pub len: usize,
    /// (base, index, scale, displacement, displ_size) of the r/m operand.
    pub mem_operand: Option<(Register, Register, u32, u64, u32)>,
    /// The x87/MMX/SSE state the case starts from.
    pub fp: FxImage,
}

pub const RSP: usize = 4;

const GPR8: [Register; 19] = [
    Register::AL,
    Register::CL,
    Register::DL,
    Register::BL,
    Register::AH,
    Register::CH,
    Register::DH,
    Register::BH,
    Register::BPL,
    Register::SIL,
    Register::DIL,
    Register::R8L,
    Register::R9L,
    Register::R10L,
    Register::R11L,
    Register::R12L,
    Register::R13L,
    Register::R14L,
    Register::R15L,
];

/// The GPR number (encoding order) of a general register of any width.
pub fn gpr_index(r: Register) -> usize {
    r.full_register().number()
}

fn is_high8(r: Register) -> bool {
    matches!(r, Register::AH | Register::CH | Register::DH | Register::BH)
}

/// The value of register `r` (any width, zero-extended) in `regs`;
/// segment registers read as 0 (flat segments).
pub fn read_reg(regs: &Regs, r: Register) -> u64 {
    if r.is_segment_register() {
        return 0;
    }
    let v = gprs(regs)[gpr_index(r)];
    if is_high8(r) {
        (v >> 8) & 0xff
    } else {
        v & width_mask(r.size() as u32 * 8)
    }
}

/// A general register of `bits` width other than RSP and its parts.
fn reg_of_width(bits: u32, n: usize) -> Register {
    let first = match bits {
        16 => Register::AX,
        32 => Register::EAX,
        _ => Register::RAX,
    };
    // iced numbers the 16/32/64-bit GPRs consecutively in encoding order.
    let r = Register::try_from(first as usize + n).expect("register exists");
    debug_assert_eq!(gpr_index(r), n);
    r
}

impl<'a> Builder<'a> {
    pub fn new(code: Code, env: &'a Env, rng: &'a mut Rng) -> Builder<'a> {
        let mut gpr = [0u64; 16];
        for v in gpr.iter_mut() {
            let bits = rng.pick(&[8, 16, 32, 64, 64]);
            *v = rng.reg_value(bits);
        }
        let mut rflags = (rng.next_u64() & ARITH_FLAGS) | IF | FLAGS_FIXED;
        if rng.chance(30) {
            rflags |= DF;
        }
        let mut mem = vec![0u8; env.mem_len];
        rng.fill(&mut mem);
        let mut pinned = [false; 16];
        // The guest stack sits in the middle of the buffer.
        let mid = env.mem_base + (env.mem_len / 2) as u64;
        gpr[RSP] = if rng.chance(90) {
            mid.wrapping_add_signed(rng.range(-32, 32) * 8)
        } else {
            mid.wrapping_add_signed(rng.range(-256, 256))
        };
        pinned[RSP] = true;
        let fp = fp::state::random_state(rng, code);
        Builder {
            env,
            rng,
            code,
            mnemonic: code.mnemonic(),
            gpr,
            pinned,
            rflags,
            mem,
            ops: Vec::new(),
            addr32: false,
            rep: 0,
            len: 0,
            mem_operand: None,
            fp,
        }
    }

    pub fn get(&self, r: Register) -> u64 {
        read_reg(&regs_from_gprs(&self.gpr, 0, 0), r)
    }

    /// Sets the `r`-sized part of its register (other bits unchanged).
    pub fn set(&mut self, r: Register, v: u64) {
        let full = &mut self.gpr[gpr_index(r)];
        if is_high8(r) {
            *full = (*full & !0xff00) | ((v & 0xff) << 8);
        } else {
            let m = width_mask(r.size() as u32 * 8);
            *full = (*full & !m) | (v & m);
        }
    }

    pub fn is_pinned(&self, r: Register) -> bool {
        self.pinned[gpr_index(r)]
    }

    /// Pins a full register to `v`.
    pub fn pin(&mut self, n: usize, v: u64) {
        self.gpr[n] = v;
        self.pinned[n] = true;
    }

    pub fn read_mem(&self, ea: u64, size: usize) -> u64 {
        let off = (ea - self.env.mem_base) as usize;
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&self.mem[off..off + size]);
        u64::from_le_bytes(b)
    }

    pub fn write_mem(&mut self, ea: u64, size: usize, v: u64) {
        let off = (ea - self.env.mem_base) as usize;
        self.mem[off..off + size].copy_from_slice(&v.to_le_bytes()[..size]);
    }

    fn pick_reg(&mut self, bits: u32) -> Register {
        if bits == 8 {
            return self.rng.pick(&GPR8);
        }
        let mut n = self.rng.below(15) as usize;
        if n >= RSP {
            n += 1;
        }
        reg_of_width(bits, n)
    }

    pub fn build(mut self) -> Result<Case, Retry> {
        fixup::before_operands(&mut self)?;
        let op = self.code.op_code();
        let msize = op.memory_size().size();
        for i in 0..op.op_count() {
            let k = op.op_kind(i);
            let o = match k {
                K::r8_reg | K::r8_opcode => Op::Reg(self.pick_reg(8)),
                K::r16_reg | K::r16_reg_mem | K::r16_rm | K::r16_opcode => {
                    Op::Reg(self.pick_reg(16))
                }
                K::r32_reg | K::r32_reg_mem | K::r32_rm | K::r32_opcode | K::r32_vvvv => {
                    Op::Reg(self.pick_reg(32))
                }
                K::r64_reg | K::r64_reg_mem | K::r64_rm | K::r64_opcode | K::r64_vvvv => {
                    Op::Reg(self.pick_reg(64))
                }
                K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem => {
                    let bits = match k {
                        K::r8_or_mem => 8,
                        K::r16_or_mem => 16,
                        K::r32_or_mem => 32,
                        _ => 64,
                    };
                    if self.rng.chance(50) {
                        Op::Reg(self.pick_reg(bits))
                    } else {
                        Op::Mem(self.place_mem(msize)?)
                    }
                }
                K::mem => Op::Mem(self.place_mem(msize)?),
                K::mm_reg | K::mm_rm => Op::Reg(fp::operands::mm(&mut self)),
                K::xmm_reg | K::xmm_rm => Op::Reg(fp::operands::xmm(&mut self)),
                K::mm_or_mem | K::xmm_or_mem => {
                    if self.rng.chance(50) {
                        Op::Mem(self.place_mem(msize)?)
                    } else if k == K::mm_or_mem {
                        Op::Reg(fp::operands::mm(&mut self))
                    } else {
                        Op::Reg(fp::operands::xmm(&mut self))
                    }
                }
                K::st0 => Op::Reg(Register::ST0),
                K::sti_opcode => Op::Reg(fp::operands::sti(&mut self)),
                K::mem_offs => Op::Mem(self.place_moffs(msize)),
                K::al => Op::Reg(Register::AL),
                K::cl => Op::Reg(Register::CL),
                K::ax => Op::Reg(Register::AX),
                K::eax => Op::Reg(Register::EAX),
                K::rax => Op::Reg(Register::RAX),
                K::br64_1 | K::br64_4 => Op::Branch,
                K::seg_rSI | K::es_rDI | K::seg_rDI => Op::Str,
                K::seg_rBX_al => {
                    let ea = self.get(Register::RBX) + self.get(Register::AL);
                    let ea = if self.addr32 { ea & 0xffff_ffff } else { ea };
                    Op::Mem(Mem { ea, size: 1 })
                }
                _ => Op::Imm(fixup::immediate(&mut self, i, k)),
            };
            self.ops.push(o);
        }
        if self
            .ops
            .iter()
            .any(|o| matches!(o, Op::Mem(m) if m.size > 0))
        {
            fixup::fill_mem_operand(&mut self);
        }
        fixup::before_encoding(&mut self)?;
        let instr = self.instruction()?;
        let mut enc = Encoder::new(64);
        let len = enc
            .encode(&instr, self.env.insn_addr)
            .map_err(|e| Retry(format!("encode: {e}")))?;
        let bytes = enc.take_buffer();
        let decoded = decode(&bytes, self.env.insn_addr);
        if decoded.code() != self.code || decoded.len() != len {
            retry!("{:?} re-decodes as {:?}", self.code, decoded.code());
        }
        self.len = len;
        fixup::after_encoding(&mut self)?;
        let regs = regs_from_gprs(&self.gpr, self.env.insn_addr, self.rflags);
        let (flags_defined, flags_undefined) = flags::instance_flags(&decoded, &regs);
        let mem_ea = self.ops.iter().find_map(|o| match o {
            Op::Mem(m) => Some(m.ea),
            _ => None,
        });
        Ok(Case {
            code: self.code,
            bytes,
            instr: decoded,
            regs,
            mem: self.mem,
            flags_defined,
            flags_undefined,
            fp: self.fp,
            mem_ea,
        })
    }

    /// Picks an effective address for an access of `size` bytes and builds
    /// a memory operand that reaches it, setting base/index registers.
    fn place_mem(&mut self, size: usize) -> Result<Mem, Retry> {
        let margin = fixup::mem_margin(self) as u64;
        let lo = self.env.mem_base + margin;
        let hi = self.env.mem_base + self.env.mem_len as u64 - margin - size as u64;
        let mut ea = lo + self.rng.below(hi - lo);
        let align = fixup::mem_align(self, size);
        if align > 1 {
            ea &= !(align as u64 - 1);
        } else if size.is_power_of_two() && size <= 8 && self.rng.chance(60) {
            ea &= !(size as u64 - 1);
        }
        self.addr32 = self.rng.chance(15);
        let form = self.rng.below(100);
        let (base, index, scale, disp, dsize);
        if form < 7 {
            base = if self.addr32 {
                Register::EIP
            } else {
                Register::RIP
            };
            (index, scale, disp, dsize) = (Register::None, 1, ea, 0);
        } else if form < 12 {
            // [disp32] through a SIB without base or index.
            base = Register::None;
            (index, scale, disp) = (Register::None, 1, ea);
            dsize = if self.addr32 { 4 } else { 8 };
        } else {
            let bits = if self.addr32 { 32 } else { 64 };
            base = if form < 22 {
                Register::None
            } else {
                reg_of_width(bits, self.rng.below(16) as usize)
            };
            let mut idx = if self.rng.chance(50) {
                Register::None
            } else {
                self.pick_reg(bits)
            };
            if idx != Register::None && base != Register::None && gpr_index(idx) == gpr_index(base)
            {
                idx = Register::None;
            }
            if base == Register::None && idx == Register::None {
                idx = self.pick_reg(bits);
            }
            index = idx;
            scale = self.rng.pick(&[1u32, 2, 4, 8]);
            let amask = width_mask(bits);
            // The index: free registers take any value when a free base can
            // compensate, otherwise a small one so that disp fits.
            let base_free = base != Register::None && !self.is_pinned(base);
            let idx_val = if index == Register::None {
                0
            } else if self.is_pinned(index) {
                self.gpr[gpr_index(index)]
            } else {
                let v = if base_free {
                    self.rng.reg_value(bits)
                } else {
                    self.rng.range(-0x800, 0x800) as u64
                };
                self.pin_addr_reg(index, v);
                v
            };
            let scaled = idx_val.wrapping_mul(u64::from(scale));
            if base_free {
                let d = match self.rng.below(3) {
                    0 => 0,
                    1 => self.rng.range(-128, 127),
                    _ => self.rng.range(i32::MIN as i64, i32::MAX as i64),
                };
                let b = ea.wrapping_sub(d as u64).wrapping_sub(scaled);
                self.pin_addr_reg(base, b);
                disp = d as u64;
            } else {
                let b = if base == Register::None {
                    0
                } else {
                    self.gpr[gpr_index(base)]
                };
                let d = ea.wrapping_sub(b).wrapping_sub(scaled) & amask;
                let fits = if self.addr32 {
                    true
                } else {
                    i32::try_from(d as i64).is_ok()
                };
                if !fits {
                    retry!("displacement does not fit");
                }
                disp = d;
            }
            let d = disp & amask;
            let small = if self.addr32 {
                (d as u32 as i32) >= -128 && (d as u32 as i32) <= 127
            } else {
                (d as i64) >= -128 && (d as i64) <= 127
            };
            dsize = if base == Register::None {
                if self.addr32 {
                    4
                } else {
                    8
                }
            } else if d == 0 && self.rng.chance(70) {
                0
            } else if small && self.rng.chance(70) {
                1
            } else if self.addr32 {
                4
            } else {
                8
            };
        }
        let disp = if self.addr32 {
            disp & 0xffff_ffff
        } else if base == Register::RIP {
            disp
        } else {
            disp as i64 as i32 as i64 as u64
        };
        self.mem_operand = Some((base, index, scale, disp, dsize));
        Ok(Mem { ea, size })
    }

    /// Sets an address register: with 32-bit addressing only the low 32 bits
    /// count, so the upper half gets random bits.
    fn pin_addr_reg(&mut self, r: Register, v: u64) {
        let n = gpr_index(r);
        let v = if self.addr32 {
            let high = if self.rng.chance(50) {
                0
            } else {
                self.rng.next_u64() << 32
            };
            high | (v & 0xffff_ffff)
        } else {
            v
        };
        self.pin(n, v);
    }

    /// A `moffs` operand (MOV AL/AX/EAX/RAX <-> [abs]).
    fn place_moffs(&mut self, size: usize) -> Mem {
        let lo = self.env.mem_base + 64;
        let hi = self.env.mem_base + self.env.mem_len as u64 - 64;
        let ea = lo + self.rng.below(hi - lo);
        self.addr32 = self.rng.chance(20);
        let dsize = if self.addr32 { 4 } else { 8 };
        self.mem_operand = Some((Register::None, Register::None, 1, ea, dsize));
        Mem { ea, size }
    }

    /// Assembles the iced Instruction from the chosen operands.
    fn instruction(&mut self) -> Result<Instruction, Retry> {
        let mut ins = Instruction::default();
        ins.set_code(self.code);
        let op = self.code.op_code();
        for (i, o) in self.ops.clone().iter().enumerate() {
            let i = i as u32;
            match *o {
                Op::Reg(r) => {
                    ins.set_op_kind(i, OpKind::Register);
                    ins.set_op_register(i, r);
                }
                Op::Mem(_) if op.op_kind(i) == K::seg_rBX_al => {
                    ins.set_op_kind(i, OpKind::Memory);
                    ins.set_memory_base(if self.addr32 {
                        Register::EBX
                    } else {
                        Register::RBX
                    });
                    ins.set_memory_index(Register::AL);
                    ins.set_memory_index_scale(1);
                }
                Op::Mem(_) => {
                    let (base, index, scale, disp, dsize) =
                        self.mem_operand.expect("memory operand placed");
                    ins.set_op_kind(i, OpKind::Memory);
                    ins.set_memory_base(base);
                    ins.set_memory_index(index);
                    ins.set_memory_index_scale(scale);
                    ins.set_memory_displacement64(disp);
                    ins.set_memory_displ_size(dsize);
                }
                Op::Imm(v) => fixup::set_immediate(&mut ins, i, op.op_kind(i), v)?,
                Op::Branch => {
                    ins.set_op_kind(i, OpKind::NearBranch64);
                    ins.set_near_branch64(self.env.taken_target);
                }
                Op::Str => {
                    let kind = match (op.op_kind(i), self.addr32) {
                        (K::seg_rSI, false) => OpKind::MemorySegRSI,
                        (K::seg_rSI, true) => OpKind::MemorySegESI,
                        (K::seg_rDI, false) => OpKind::MemorySegRDI,
                        (K::seg_rDI, true) => OpKind::MemorySegEDI,
                        (_, false) => OpKind::MemoryESRDI,
                        (_, true) => OpKind::MemoryESEDI,
                    };
                    ins.set_op_kind(i, kind);
                }
            }
        }
        fixup::prefixes(self, &mut ins);
        Ok(ins)
    }
}

//! Edge cases through emu-core's `step64`, with hand-computed expectations,
//! each also compared against the host CPU when the host can run x86-64
//! code: shift and rotate counts, INT_MIN / -1, division by zero, ADC/SBB
//! carry chains over 256-bit numbers, and string instructions with RCX = 0
//! and DF = 1.

use emu_core::testing::{defined_flags, step64, FlatMem, StepError};
use emu_core::Regs;
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
use testsuite::gen::{diff, width_mask, Case, Env};
use testsuite::native::{NativeRunner, ARITH_FLAGS, DF};

const CF: u64 = 1;
const ZF: u64 = 1 << 6;
const OF: u64 = 1 << 11;

/// Runs instructions in emu-core and, when possible, on the host.
struct Harness {
    runner: Option<NativeRunner>,
    env: Env,
    compared: usize,
}

/// What the emulator produced.
struct Emu {
    result: Result<(), StepError>,
    regs: Regs,
    mem: Vec<u8>,
}

impl Harness {
    fn new() -> Harness {
        match NativeRunner::new(2) {
            Ok(r) => Harness {
                env: diff::env_of(&r),
                runner: Some(r),
                compared: 0,
            },
            Err(e) => {
                eprintln!("edge-cases: no comparison with the host: {e}");
                Harness {
                    runner: None,
                    env: Env {
                        mem_base: 0x20_0000,
                        mem_len: 8192,
                        insn_addr: 0x10_0800,
                        taken_target: 0x10_07e0,
                    },
                    compared: 0,
                }
            }
        }
    }

    fn base(&self) -> u64 {
        self.env.mem_base
    }

    fn zero_mem(&self) -> Vec<u8> {
        vec![0; self.env.mem_len]
    }

    /// Runs `ins` on `regs` and `mem`; panics if the host disagrees.
    fn run(&mut self, ins: &Instruction, regs: Regs, mem: Vec<u8>) -> Emu {
        let mut enc = Encoder::new(64);
        enc.encode(ins, self.env.insn_addr).expect("encodable");
        let bytes = enc.take_buffer();
        let case = Case::from_parts(&self.env, &bytes, regs, mem);
        if let Some(runner) = self.runner.as_mut() {
            let run = diff::run_both(runner, &case);
            let defined = defined_flags(case.code).unwrap_or_else(|| {
                panic!("{:?} `{}` is not implemented", case.code, case.disasm())
            });
            match diff::verdict(&case, &run, defined) {
                diff::Verdict::Match => {}
                diff::Verdict::Mismatch(d) => panic!("{}", diff::report(&case, &run, 0, 0, &d)),
                diff::Verdict::Unimplemented(w) => panic!("{} unimplemented: {w}", case.disasm()),
            }
            self.compared += 1;
            return Emu {
                result: run.emu.result,
                regs: run.emu.regs,
                mem: run.emu.mem,
            };
        }
        let mut regs = case.regs;
        let mut fm = FlatMem {
            base: self.env.mem_base,
            bytes: case.mem.clone(),
        };
        let result = step64(&mut regs, &case.bytes, &mut fm);
        Emu {
            result,
            regs,
            mem: fm.bytes,
        }
    }
}

fn ok(e: &Emu, what: &str) {
    assert!(e.result.is_ok(), "{what}: {:?}", e.result);
}

fn regs(rflags: u64) -> Regs {
    Regs {
        rflags,
        ..Regs::default()
    }
}

fn reg_of(bits: u32, n: u32) -> Register {
    let first = match bits {
        8 => Register::AL,
        16 => Register::AX,
        32 => Register::EAX,
        _ => Register::RAX,
    };
    Register::try_from(first as usize + n as usize).expect("register")
}

// ---------------------------------------------------------------- shifts

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shift {
    Shl,
    Shr,
    Sar,
    Rol,
    Ror,
    Rcl,
    Rcr,
}

/// The iced Code called `name`.
fn code(name: &str) -> Code {
    Code::values()
        .find(|c| format!("{c:?}") == name)
        .unwrap_or_else(|| panic!("no Code {name}"))
}

/// `<op>_rm<bits>_<suffix>`, e.g. `Shl_rm32_CL`.
fn shift_code(op: Shift, bits: u32, suffix: &str) -> Code {
    code(&format!("{op:?}_rm{bits}_{suffix}"))
}

/// Reference result of a shift/rotate of the low `bits` of `v` by `count`
/// (before masking) with carry-in `cf`: (result, CF after), CF `None` when
/// the manuals leave it undefined.
fn reference(op: Shift, bits: u32, v: u64, count: u64, cf: bool) -> (u64, Option<bool>) {
    let mask = width_mask(bits);
    let v = v & mask;
    let c = count & if bits == 64 { 63 } else { 31 };
    if c == 0 {
        return (v, Some(cf));
    }
    let w = u64::from(bits);
    let bit = |x: u64, i: u64| (x >> i) & 1 == 1;
    match op {
        Shift::Shl => {
            let r = if c >= w { 0 } else { (v << c) & mask };
            let cf = (c <= w).then(|| bit(v, w - c));
            (r, if c >= w { None } else { cf })
        }
        Shift::Shr => {
            let r = if c >= w { 0 } else { v >> c };
            (r, if c >= w { None } else { Some(bit(v, c - 1)) })
        }
        Shift::Sar => {
            let s = 64 - w;
            let sv = ((v << s) as i64) >> s;
            let r = (sv >> c.min(63)) as u64 & mask;
            let cf = (sv >> (c - 1).min(63)) & 1 == 1;
            (r, Some(cf))
        }
        Shift::Rol | Shift::Ror => {
            let k = c % w;
            let r = if k == 0 {
                v
            } else if op == Shift::Rol {
                ((v << k) | (v >> (w - k))) & mask
            } else {
                ((v >> k) | (v << (w - k))) & mask
            };
            let cf = if op == Shift::Rol {
                bit(r, 0)
            } else {
                bit(r, w - 1)
            };
            (r, Some(cf))
        }
        Shift::Rcl | Shift::Rcr => {
            // Rotate through a (w+1)-bit value [CF : v].
            let k = c % (w + 1);
            let mut r = v;
            let mut carry = cf;
            for _ in 0..k {
                if op == Shift::Rcl {
                    let out = bit(r, w - 1);
                    r = ((r << 1) | u64::from(carry)) & mask;
                    carry = out;
                } else {
                    let out = bit(r, 0);
                    r = (r >> 1) | (u64::from(carry) << (w - 1));
                    carry = out;
                }
            }
            (r, Some(carry))
        }
    }
}

#[test]
fn shift_and_rotate_counts() {
    let mut h = Harness::new();
    let ops = [
        Shift::Shl,
        Shift::Shr,
        Shift::Sar,
        Shift::Rol,
        Shift::Ror,
        Shift::Rcl,
        Shift::Rcr,
    ];
    for op in ops {
        for bits in [8u32, 16, 32, 64] {
            let w = u64::from(bits);
            let counts = [0, 1, 2, w - 1, w, w + 1, 9, 17, 31, 32, 33, 63, 64, 65, 255];
            let values = [
                0x8000_0000_0000_0001u64 >> (64 - w) | 1,
                u64::MAX,
                0xa5a5_a5a5_a5a5_a5a5,
                1,
            ];
            for count in counts {
                for (vi, v) in values.iter().enumerate() {
                    for cf in [false, true] {
                        let flags = if cf { ARITH_FLAGS } else { ARITH_FLAGS & !CF };
                        // Through CL, with RDX as the operand.
                        let dst = reg_of(bits, 2);
                        let ins = Instruction::with2(shift_code(op, bits, "CL"), dst, Register::CL)
                            .unwrap();
                        let mut r = regs(flags);
                        r.rdx = 0x1122_3344_5566_7788 ^ (vi as u64);
                        r.rdx = (r.rdx & !width_mask(bits)) | (v & width_mask(bits));
                        r.rcx = 0xffff_ff00 | count;
                        let e = h.run(&ins, r, h.zero_mem());
                        ok(&e, &format!("{op:?}{bits} by CL={count}"));
                        check_shift(op, bits, *v, count, cf, &r, &e);
                        // Through an immediate, on memory.
                        let m = MemoryOperand::with_base_displ(Register::RBX, 0x10);
                        let ins = if count == 1 && vi == 0 {
                            Instruction::with2(shift_code(op, bits, "1"), m, 1u32).unwrap()
                        } else {
                            Instruction::with2(shift_code(op, bits, "imm8"), m, count as u32)
                                .unwrap()
                        };
                        let mut mem = h.zero_mem();
                        mem[0x110..0x118].copy_from_slice(&v.to_le_bytes());
                        let mut r = regs(flags);
                        r.rbx = h.base() + 0x100;
                        let e = h.run(&ins, r, mem);
                        ok(&e, &format!("{op:?}{bits} [mem] by {count}"));
                        let got = u64::from_le_bytes(e.mem[0x110..0x118].try_into().unwrap());
                        let (want, _) = reference(op, bits, *v, count, cf);
                        assert_eq!(
                            got & width_mask(bits),
                            want,
                            "{op:?}{bits} [mem] by {count}"
                        );
                        assert_eq!(got & !width_mask(bits), v & !width_mask(bits));
                    }
                }
            }
        }
    }
    eprintln!("edge-cases: shifts compared with the host: {}", h.compared);
}

fn check_shift(op: Shift, bits: u32, v: u64, count: u64, cf: bool, input: &Regs, e: &Emu) {
    let what = format!("{op:?}{bits} {v:#x} by {count} (CF={cf})");
    let (want, want_cf) = reference(op, bits, v, count, cf);
    let mask = width_mask(bits);
    assert_eq!(e.regs.rdx & mask, want, "{what}: result");
    let upper = if bits == 32 { 0 } else { input.rdx & !mask };
    assert_eq!(e.regs.rdx & !mask, upper, "{what}: bits above the operand");
    let masked = count & if bits == 64 { 63 } else { 31 };
    if masked == 0 {
        assert_eq!(
            e.regs.rflags & ARITH_FLAGS,
            input.rflags & ARITH_FLAGS,
            "{what}: a zero count leaves the flags alone"
        );
    } else if let Some(c) = want_cf {
        assert_eq!(e.regs.rflags & CF != 0, c, "{what}: CF");
    }
    if masked == 1 {
        let msb = (want >> (bits - 1)) & 1 == 1;
        let of = match op {
            Shift::Shl | Shift::Rol | Shift::Rcl => msb != (e.regs.rflags & CF != 0),
            Shift::Shr => (v >> (bits - 1)) & 1 == 1,
            Shift::Sar => false,
            Shift::Ror | Shift::Rcr => msb != ((want >> (bits - 2)) & 1 == 1),
        };
        assert_eq!(e.regs.rflags & OF != 0, of, "{what}: OF");
    }
}

#[test]
fn double_shift_counts() {
    let mut h = Harness::new();
    use Code::*;
    let forms = [
        (Shld_rm16_r16_CL, 16u32, true),
        (Shld_rm32_r32_CL, 32, true),
        (Shld_rm64_r64_CL, 64, true),
        (Shrd_rm16_r16_CL, 16, false),
        (Shrd_rm32_r32_CL, 32, false),
        (Shrd_rm64_r64_CL, 64, false),
    ];
    for (code, bits, left) in forms {
        let w = u64::from(bits);
        for count in [0, 1, 2, w - 1, w, 32, 64] {
            if bits == 16 && count & 31 > 16 {
                continue; // undefined result
            }
            let ins =
                Instruction::with3(code, reg_of(bits, 0), reg_of(bits, 3), Register::CL).unwrap();
            let mut r = regs(ARITH_FLAGS);
            r.rax = 0x8123_4567_89ab_cdef;
            r.rbx = 0xfedc_ba98_7654_3211;
            r.rcx = count;
            let e = h.run(&ins, r, h.zero_mem());
            ok(&e, &format!("{code:?} by {count}"));
            let mask = width_mask(bits);
            let c = count & if bits == 64 { 63 } else { 31 };
            let (d, s) = (u128::from(r.rax & mask), u128::from(r.rbx & mask));
            let want = if c == 0 {
                d as u64
            } else if left {
                ((((d << w) | s) << c) >> w) as u64 & mask
            } else {
                ((((s << w) | d) >> c) as u64) & mask
            };
            assert_eq!(e.regs.rax & mask, want, "{code:?} by {count}");
            if c == 0 {
                assert_eq!(
                    e.regs.rflags & ARITH_FLAGS,
                    ARITH_FLAGS,
                    "{code:?} by 0: flags"
                );
            }
        }
    }
}

// -------------------------------------------------------------- division

fn div_code(signed: bool, bits: u32) -> Code {
    code(&format!("{}_rm{bits}", if signed { "Idiv" } else { "Div" }))
}

/// Sets the dividend of a `bits`-wide division.
fn dividend(r: &mut Regs, bits: u32, value: i128) {
    let v = value as u128;
    if bits == 8 {
        r.rax = (r.rax & !0xffff) | (v as u64 & 0xffff);
    } else {
        let mask = width_mask(bits);
        r.rax = (r.rax & !mask) | (v as u64 & mask);
        r.rdx = (r.rdx & !mask) | ((v >> bits) as u64 & mask);
    }
}

fn expect_de(e: &Emu, what: &str) {
    match &e.result {
        Err(StepError::Exception { vector: 0, .. }) => {}
        other => panic!("{what}: expected #DE, got {other:?}"),
    }
}

#[test]
fn idiv_int_min_by_minus_one_raises_de() {
    let mut h = Harness::new();
    for bits in [8u32, 16, 32, 64] {
        let min = -(1i128 << (bits - 1));
        // Register divisor.
        let ins = Instruction::with1(div_code(true, bits), reg_of(bits, 1)).unwrap();
        let mut r = regs(0);
        r.rcx = u64::MAX;
        dividend(&mut r, bits, min);
        expect_de(
            &h.run(&ins, r, h.zero_mem()),
            &format!("idiv{bits} INT_MIN/-1"),
        );
        // Memory divisor.
        let ins = Instruction::with1(
            div_code(true, bits),
            MemoryOperand::with_base_displ(Register::RBX, 8),
        )
        .unwrap();
        let mut mem = h.zero_mem();
        mem[8..16].fill(0xff);
        let mut r = regs(0);
        r.rbx = h.base();
        dividend(&mut r, bits, min);
        expect_de(&h.run(&ins, r, mem), &format!("idiv{bits} INT_MIN/[-1]"));
        // Neighbours that fit: INT_MIN / 1 and (INT_MIN + 1) / -1.
        for (num, den, q) in [(min, 1i128, min), (min + 1, -1, -(min + 1))] {
            let ins = Instruction::with1(div_code(true, bits), reg_of(bits, 1)).unwrap();
            let mut r = regs(0);
            r.rcx = den as u64;
            dividend(&mut r, bits, num);
            let e = h.run(&ins, r, h.zero_mem());
            ok(&e, &format!("idiv{bits} {num}/{den}"));
            let quotient = if bits == 8 {
                e.regs.rax & 0xff
            } else {
                e.regs.rax & width_mask(bits)
            };
            assert_eq!(
                quotient,
                q as u64 & width_mask(bits),
                "idiv{bits} {num}/{den}"
            );
        }
    }
    // The most negative quotient that fits: -256 / 2 = -128.
    let ins = Instruction::with1(Code::Idiv_rm8, Register::CL).unwrap();
    let mut r = regs(0);
    r.rcx = 2;
    dividend(&mut r, 8, -256);
    let e = h.run(&ins, r, h.zero_mem());
    ok(&e, "idiv8 -256/2");
    assert_eq!(e.regs.rax & 0xffff, 0x0080);
}

#[test]
fn div_by_zero_raises_de() {
    let mut h = Harness::new();
    for signed in [false, true] {
        for bits in [8u32, 16, 32, 64] {
            let ins = Instruction::with1(div_code(signed, bits), reg_of(bits, 3)).unwrap();
            let mut r = regs(0);
            r.rax = 1234;
            r.rbx = 0xffff_ffff_ffff_ff00 & !width_mask(bits);
            let e = h.run(&ins, r, h.zero_mem());
            expect_de(&e, &format!("div{bits} signed={signed} by 0"));
            let ins = Instruction::with1(
                div_code(signed, bits),
                MemoryOperand::with_base_displ(Register::RSI, 0x20),
            )
            .unwrap();
            let mut r = regs(0);
            r.rsi = h.base();
            let e = h.run(&ins, r, h.zero_mem());
            expect_de(&e, &format!("div{bits} signed={signed} by [0]"));
        }
    }
}

// ------------------------------------------------------- ADC/SBB chains

fn limbs(x: [u64; 4]) -> Vec<u8> {
    x.iter().flat_map(|l| l.to_le_bytes()).collect()
}

/// a + b (or a - b) over 4 limbs: (result, carry/borrow out).
fn wide(a: [u64; 4], b: [u64; 4], sub: bool) -> ([u64; 4], bool) {
    let mut out = [0; 4];
    let mut c = false;
    for i in 0..4 {
        let (r, c1) = if sub {
            let (r1, b1) = a[i].overflowing_sub(b[i]);
            let (r2, b2) = r1.overflowing_sub(u64::from(c));
            (r2, b1 || b2)
        } else {
            let (r1, c1) = a[i].overflowing_add(b[i]);
            let (r2, c2) = r1.overflowing_add(u64::from(c));
            (r2, c1 || c2)
        };
        out[i] = r;
        c = c1;
    }
    (out, c)
}

#[test]
fn adc_sbb_carry_chains_over_256_bits() {
    let mut h = Harness::new();
    let pairs: [([u64; 4], [u64; 4]); 4] = [
        ([u64::MAX; 4], [1, 0, 0, 0]),
        ([0; 4], [1, 0, 0, 0]),
        (
            [u64::MAX, 0, u64::MAX, 0x8000_0000_0000_0000],
            [u64::MAX, u64::MAX, 0, 0x8000_0000_0000_0000],
        ),
        (
            [
                0x0123_4567_89ab_cdef,
                0xfedc_ba98_7654_3210,
                0xffff_ffff_0000_0000,
                0x7fff_ffff_ffff_ffff,
            ],
            [
                0xffff_ffff_ffff_ffff,
                0x0000_0000_ffff_ffff,
                0x0000_0001_0000_0000,
                1,
            ],
        ),
    ];
    for (a, b) in pairs {
        for sub in [false, true] {
            let (want, want_c) = wide(a, b, sub);
            // Registers: rax = a[i], rbx = b[i], CF chained.
            let mut carry = false;
            let mut got = [0u64; 4];
            for i in 0..4 {
                let code = match (sub, i) {
                    (false, 0) => Code::Add_r64_rm64,
                    (false, _) => Code::Adc_r64_rm64,
                    (true, 0) => Code::Sub_r64_rm64,
                    (true, _) => Code::Sbb_r64_rm64,
                };
                let ins = Instruction::with2(code, Register::RAX, Register::RBX).unwrap();
                let mut r = regs(if carry { CF } else { 0 });
                r.rax = a[i];
                r.rbx = b[i];
                let e = h.run(&ins, r, h.zero_mem());
                ok(&e, "carry chain");
                got[i] = e.regs.rax;
                carry = e.regs.rflags & CF != 0;
            }
            assert_eq!((got, carry), (want, want_c), "registers, sub={sub}");
            // Memory: [rdi + 8i] op= rax, with CF chained and the buffer
            // carried from step to step; ADC/SBB all the way (CF=0 first).
            let mut mem = h.zero_mem();
            mem[0x200..0x220].copy_from_slice(&limbs(a));
            let mut carry = false;
            for (i, limb) in b.iter().enumerate() {
                let code = if sub {
                    Code::Sbb_rm64_r64
                } else {
                    Code::Adc_rm64_r64
                };
                let m = MemoryOperand::with_base_displ(Register::RDI, 8 * i as i64);
                let ins = Instruction::with2(code, m, Register::RAX).unwrap();
                let mut r = regs(if carry { CF } else { 0 });
                r.rdi = h.base() + 0x200;
                r.rax = *limb;
                let e = h.run(&ins, r, mem);
                ok(&e, "memory carry chain");
                carry = e.regs.rflags & CF != 0;
                mem = e.mem;
            }
            assert_eq!(&mem[0x200..0x220], &limbs(want)[..], "memory, sub={sub}");
            assert_eq!(carry, want_c, "memory carry out, sub={sub}");
        }
    }
    // 32-bit ADC writes zero-extend.
    let ins = Instruction::with2(Code::Adc_r32_rm32, Register::EAX, Register::EBX).unwrap();
    let mut r = regs(CF);
    r.rax = 0xdead_beef_ffff_ffff;
    r.rbx = 0;
    let e = h.run(&ins, r, h.zero_mem());
    ok(&e, "adc eax");
    assert_eq!(e.regs.rax, 0);
    assert_eq!(e.regs.rflags & (CF | ZF), CF | ZF);
}

// ---------------------------------------------------- string instructions

fn pattern(h: &Harness) -> Vec<u8> {
    let mut mem = h.zero_mem();
    for (i, b) in mem.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    mem
}

#[test]
fn rep_string_ops_with_rcx_zero_change_nothing() {
    let mut h = Harness::new();
    let forms = [
        Instruction::with_rep_movsb(64).unwrap(),
        Instruction::with_rep_stosq(64).unwrap(),
        Instruction::with_repe_cmpsb(64).unwrap(),
        Instruction::with_repne_scasb(64).unwrap(),
        Instruction::with_rep_lodsd(64).unwrap(),
    ];
    for ins in forms {
        for df in [0, DF] {
            let mut r = regs(ARITH_FLAGS & !ZF | df);
            r.rsi = h.base() + 0x400;
            r.rdi = h.base() + 0x1000;
            r.rax = 0x1111_2222_3333_4444;
            let mem = pattern(&h);
            let e = h.run(&ins, r, mem.clone());
            ok(&e, "rep with rcx=0");
            assert_eq!(
                (e.regs.rsi, e.regs.rdi, e.regs.rcx, e.regs.rax),
                (r.rsi, r.rdi, 0, r.rax)
            );
            assert_eq!(
                e.regs.rflags & (ARITH_FLAGS | DF),
                r.rflags & (ARITH_FLAGS | DF)
            );
            assert!(e.mem == mem, "memory changed");
        }
    }
}

#[test]
fn rep_movsb_and_stosq_with_df_set_go_down() {
    let mut h = Harness::new();
    // rep movsb, 5 bytes, DF=1: copies [rsi-4..=rsi] to [rdi-4..=rdi].
    let mut r = regs(DF);
    r.rsi = h.base() + 0x400;
    r.rdi = h.base() + 0x1000;
    r.rcx = 5;
    let mem = pattern(&h);
    let e = h.run(&Instruction::with_rep_movsb(64).unwrap(), r, mem.clone());
    ok(&e, "rep movsb DF=1");
    assert_eq!(
        (e.regs.rsi, e.regs.rdi, e.regs.rcx),
        (r.rsi - 5, r.rdi - 5, 0)
    );
    assert_eq!(&e.mem[0x1000 - 4..=0x1000], &mem[0x400 - 4..=0x400]);
    assert_eq!(e.mem[0x1000 - 5], mem[0x1000 - 5]);
    assert_eq!(e.mem[0x1001], mem[0x1001]);
    // rep stosq, 3 qwords, DF=1.
    let mut r = regs(DF);
    r.rdi = h.base() + 0x1000;
    r.rcx = 3;
    r.rax = 0x0102_0304_0506_0708;
    let e = h.run(&Instruction::with_rep_stosq(64).unwrap(), r, mem.clone());
    ok(&e, "rep stosq DF=1");
    assert_eq!((e.regs.rdi, e.regs.rcx), (r.rdi - 24, 0));
    for k in 0..3 {
        let at = 0x1000 - 8 * k;
        assert_eq!(&e.mem[at..at + 8], &r.rax.to_le_bytes());
    }
    assert_eq!(
        &e.mem[0x1000 - 24..0x1000 - 16],
        &mem[0x1000 - 24..0x1000 - 16]
    );
}

#[test]
fn repe_cmpsb_and_repne_scasb_with_df_set() {
    let mut h = Harness::new();
    // repe cmpsb, DF=1: the first two bytes (going down) match, the third
    // differs, so three comparisons run and RCX ends at 4 - 3 = 1.
    let mut mem = pattern(&h);
    let (s, d) = (0x400, 0x1000);
    mem[d] = mem[s];
    mem[d - 1] = mem[s - 1];
    mem[d - 2] = mem[s - 2].wrapping_add(1);
    let mut r = regs(DF);
    r.rsi = h.base() + s as u64;
    r.rdi = h.base() + d as u64;
    r.rcx = 4;
    let e = h.run(&Instruction::with_repe_cmpsb(64).unwrap(), r, mem);
    ok(&e, "repe cmpsb DF=1");
    assert_eq!(
        (e.regs.rsi, e.regs.rdi, e.regs.rcx),
        (r.rsi - 3, r.rdi - 3, 1)
    );
    assert_eq!(e.regs.rflags & ZF, 0);
    // repne scasb, DF=1: AL found at the fourth byte going down.
    let mut mem = pattern(&h);
    for k in 0..10 {
        mem[d - k] = 0x11;
    }
    mem[d - 3] = 0x5a;
    let mut r = regs(DF);
    r.rdi = h.base() + d as u64;
    r.rcx = 10;
    r.rax = 0x5a;
    let e = h.run(&Instruction::with_repne_scasb(64).unwrap(), r, mem);
    ok(&e, "repne scasb DF=1");
    assert_eq!((e.regs.rdi, e.regs.rcx), (r.rdi - 4, 6));
    assert_eq!(e.regs.rflags & ZF, ZF);
}

//! MMX and SSE integer forms end to end: guests that run them through the
//! decoder, the dispatch table and guest memory, and check what the kernel
//! unit tests cannot see: which control-register bits make them fault and
//! with what, the 16-byte alignment rule form by form, all-or-nothing
//! stores across a page end, MMIO in pieces, the zeroing rules of the
//! scalar and 64-bit moves, segment overrides, and the MMX transition of
//! the x87 state (read back through the vCPU API).
//!
//! A probe prints `name:` and then `-` if the instruction completed, or
//! the letter of the exception its handler caught (U #UD, N #NM, G #GP,
//! P #PF); the handler resumes after the probe.

use emu_core::{VcpuExit, Vm, VmConfig};
use iced_x86::code_asm::*;
use softmmu::{Backing, MemFlags};
use testsuite::guest::{self, DATA, PML4};

type AsmResult = Result<(), IcedError>;
/// Code a case emits, with its name.
type Case<'a> = (&'a str, &'a dyn Fn(&mut CodeAssembler) -> AsmResult);

/// Where a handler resumes (a qword the probe sets).
const RECOVER: u64 = DATA + 0x8000;
const IDT: u64 = DATA + 0x9000;
/// 16-byte aligned scratch buffers.
const BUF: u64 = DATA + 0x1_0000;
const BUF2: u64 = DATA + 0x1_1000;
/// The 2 MiB page at 6 MiB is unmapped by the guests that need a hole.
const HOLE: u64 = 6 << 20;
/// Guest-physical address with no RAM or device: accesses exit to us.
const MMIO: u64 = 0xc000_0000;
/// A port the guest writes to pause for an FPU-state check.
const CHECKPOINT: u16 = 0xf5;

const CR0_MP: u32 = 1 << 1;
const CR0_EM: u32 = 1 << 2;
const CR0_TS: u32 = 1 << 3;
const CR4_OSFXSR: u32 = 1 << 9;

/// What a run produced.
#[derive(Default)]
struct Run {
    serial: String,
    mmio_writes: Vec<(u64, Vec<u8>)>,
    mmio_reads: Vec<(u64, usize)>,
    /// The x87/SSE state at each checkpoint and at the end.
    fpu: Vec<emu_core::Fpu>,
}

fn run(img: &[u8]) -> Run {
    run_with(img, None)
}

/// [`run`], with the x87/SSE state `fpu` loaded first.
fn run_with(img: &[u8], fpu: Option<emu_core::Fpu>) -> Run {
    let vm = Vm::new(VmConfig::default());
    vm.set_user_memory_region(0, MemFlags::empty(), 0, 64 << 20, Backing::Anonymous)
        .unwrap();
    let b = loader::load(
        img,
        vm.memory(),
        &loader::LoadOptions {
            mem_size: 64 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let mut v = vm.create_vcpu(0);
    v.set_sregs(&b.sregs);
    v.set_regs(&b.regs);
    if let Some(f) = fpu {
        v.set_fpu(&f);
    }
    v.set_instruction_limit(Some(1_000_000));
    let mut r = Run::default();
    loop {
        let mut checkpoint = false;
        match v.run() {
            VcpuExit::IoOut(0x3f8, d) => r.serial.push(d[0] as char),
            VcpuExit::IoOut(CHECKPOINT, _) => checkpoint = true,
            VcpuExit::IoOut(0xf4, _) => break,
            VcpuExit::MmioWrite(gpa, d) => r.mmio_writes.push((gpa, d.to_vec())),
            VcpuExit::MmioRead(gpa, d) => {
                r.mmio_reads.push((gpa, d.len()));
                // Each byte of the device reads as its address's low byte.
                for (i, b) in d.iter_mut().enumerate() {
                    *b = (gpa as u8).wrapping_add(i as u8);
                }
            }
            other => panic!("unexpected exit {other:?}; output {:?}", r.serial),
        }
        if checkpoint {
            r.fpu.push(v.get_fpu());
        }
    }
    r.fpu.push(v.get_fpu());
    r
}

/// The exception handlers: print the letter, drop the error code if
/// there is one, resume at [`RECOVER`].
fn handlers(a: &mut CodeAssembler) -> AsmResult {
    let mut over = a.create_label();
    a.jmp(over)?;
    let mut labels = Vec::new();
    for (vector, letter, error_code) in [
        (6u64, "U", false),
        (7, "N", false),
        (13, "G", true),
        (14, "P", true),
    ] {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        if error_code {
            a.add(rsp, 8)?;
        }
        guest::print(a, letter)?;
        a.mov(rax, qword_ptr(RECOVER))?;
        a.mov(qword_ptr(rsp), rax)?;
        a.iretq()?;
        labels.push((vector, l));
    }
    a.set_label(&mut over)?;
    for (vector, l) in labels {
        guest::set_idt_gate(a, IDT, vector, l)?;
    }
    guest::load_idt(a, IDT)
}

/// CR0.MP set, EM and TS clear, CR4.OSFXSR as `osfxsr`.
fn sse_on(a: &mut CodeAssembler, osfxsr: bool) -> AsmResult {
    a.mov(rax, cr0)?;
    a.and(eax, !(CR0_EM | CR0_TS) as i32)?;
    a.or(eax, CR0_MP as i32)?;
    a.mov(cr0, rax)?;
    a.mov(rax, cr4)?;
    if osfxsr {
        a.or(eax, CR4_OSFXSR as i32)?;
    } else {
        a.and(eax, !CR4_OSFXSR as i32)?;
    }
    a.mov(cr4, rax)
}

/// Set CR0 bits.
fn cr0_set(a: &mut CodeAssembler, bits: u32) -> AsmResult {
    a.mov(rax, cr0)?;
    a.or(eax, bits as i32)?;
    a.mov(cr0, rax)
}

fn probe(
    a: &mut CodeAssembler,
    name: &str,
    body: impl FnOnce(&mut CodeAssembler) -> AsmResult,
) -> AsmResult {
    let mut after = a.create_label();
    guest::print(a, &format!("{name}:"))?;
    a.lea(rax, ptr(after))?;
    a.mov(qword_ptr(RECOVER), rax)?;
    body(a)?;
    guest::print(a, "-")?;
    a.set_label(&mut after)?;
    guest::print(a, "\n")
}

/// A guest body with the handlers installed.
fn guest(body: impl FnOnce(&mut CodeAssembler, CodeLabel) -> AsmResult) -> Vec<u8> {
    guest::long_mode(|a| {
        handlers(a)?;
        let puthex = guest::puthex_routine_after_jump(a)?;
        body(a, puthex)?;
        guest::exit(a, 0)
    })
    .unwrap()
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn control_bits_decide_ud_and_nm() {
    // The outcome under OSFXSR=0, TS, EM and EM+TS. The MMX-register forms
    // ignore OSFXSR; MOVQ2DQ, with an XMM operand, does not. CRC32 and
    // MOVNTI work on general registers only and make none of these checks.
    // EM is checked before TS.
    let forms: [(Case, &str); 7] = [
        (("movdqa", &|a| a.movdqa(xmm0, xmm1)), "UNUU"),
        (("paddb-mm", &|a| a.paddb(mm0, mm1)), "-NUU"),
        (("pshufb-mm", &|a| a.pshufb(mm0, mm1)), "-NUU"),
        (("movq2dq", &|a| a.movq2dq(xmm0, mm1)), "UNUU"),
        (("emms", &|a| a.emms()), "-NUU"),
        (("crc32", &|a| a.crc32(eax, ebx)), "----"),
        (("movnti", &|a| a.movnti(dword_ptr(BUF), ebx)), "----"),
    ];
    let modes = ["OSFXSR=0", "TS", "EM", "EM+TS"];
    let img = guest(|a, _| {
        for mode in modes {
            guest::print(a, &format!("{mode}\n"))?;
            sse_on(a, mode != "OSFXSR=0")?;
            if mode.contains("EM") {
                cr0_set(a, CR0_EM)?;
            }
            if mode.contains("TS") {
                cr0_set(a, CR0_TS)?;
            }
            for ((name, f), _) in forms {
                probe(a, name, f)?;
            }
        }
        sse_on(a, true)
    });
    let mut want = String::new();
    for (i, mode) in modes.iter().enumerate() {
        want += &format!("{mode}\n");
        for ((name, _), outcomes) in forms {
            want += &format!("{name}:{}\n", &outcomes[i..i + 1]);
        }
    }
    assert_eq!(lines(&run(&img).serial), lines(&want));
}

#[test]
fn sixteen_byte_operands_of_the_aligned_forms_must_be_aligned() {
    /// A 16-byte memory form: name, whether it must be aligned, and the
    /// code for the operand at `BUF + offset`.
    type Wide = (&'static str, bool, fn(&mut CodeAssembler, u64) -> AsmResult);
    fn m(off: u64) -> AsmMemoryOperand {
        xmmword_ptr(BUF + off)
    }
    let wide: [Wide; 14] = [
        ("movdqa", true, |a, o| a.movdqa(xmm0, m(o))),
        ("movaps-st", true, |a, o| a.movaps(m(o), xmm0)),
        ("movntdq", true, |a, o| a.movntdq(m(o), xmm0)),
        ("movntdqa", true, |a, o| a.movntdqa(xmm0, m(o))),
        ("paddb", true, |a, o| a.paddb(xmm0, m(o))),
        ("ptest", true, |a, o| a.ptest(xmm0, m(o))),
        ("pshufd", true, |a, o| a.pshufd(xmm0, m(o), 0x1b)),
        ("movshdup", true, |a, o| a.movshdup(xmm0, m(o))),
        ("psllw", true, |a, o| a.psllw(xmm0, m(o))),
        ("movdqu", false, |a, o| a.movdqu(xmm0, m(o))),
        ("movupd-st", false, |a, o| a.movupd(m(o), xmm0)),
        ("lddqu", false, |a, o| a.lddqu(xmm0, m(o))),
        ("pcmpestri", false, |a, o| a.pcmpestri(xmm0, m(o), 0x0c)),
        ("pcmpistrm", false, |a, o| a.pcmpistrm(xmm0, m(o), 0x0c)),
    ];
    // Narrower operands never need alignment.
    let narrow: [Case; 8] = [
        ("movsd", &|a| a.movsd_2(xmm0, qword_ptr(BUF + 4))),
        ("movq", &|a| a.movq(xmm0, qword_ptr(BUF + 1))),
        ("movhps", &|a| a.movhps(xmm0, qword_ptr(BUF + 3))),
        ("pmovzxbw", &|a| a.pmovzxbw(xmm0, qword_ptr(BUF + 1))),
        ("insertps", &|a| a.insertps(xmm0, dword_ptr(BUF + 1), 0x10)),
        ("pextrw", &|a| a.pextrw(word_ptr(BUF + 1), xmm0, 3)),
        ("punpcklbw-mm", &|a| a.punpcklbw(mm0, dword_ptr(BUF + 1))),
        ("paddb-mm", &|a| a.paddb(mm0, qword_ptr(BUF + 1))),
    ];
    let img = guest(|a, _| {
        sse_on(a, true)?;
        for off in [0u64, 8] {
            guest::print(a, &format!("+{off}\n"))?;
            for (name, _, f) in wide {
                probe(a, name, |a| f(a, off))?;
            }
        }
        guest::print(a, "narrow\n")?;
        for (name, f) in narrow {
            probe(a, name, f)?;
        }
        Ok(())
    });
    let mut want = String::new();
    for off in [0, 8] {
        want += &format!("+{off}\n");
        for (name, aligned, _) in wide {
            let fault = if aligned && off % 16 != 0 { "G" } else { "-" };
            want += &format!("{name}:{fault}\n");
        }
    }
    want += "narrow\n";
    for (name, _) in narrow {
        want += &format!("{name}:-\n");
    }
    assert_eq!(lines(&run(&img).serial), lines(&want));
}

/// Unmap the 2 MiB page at [`HOLE`] (clobbers RAX).
fn unmap_hole(a: &mut CodeAssembler) -> AsmResult {
    a.mov(qword_ptr(PML4 + 0x2000 + 3 * 8), 0)?;
    a.invlpg(ptr(HOLE))
}

/// Print the qword at `at`.
fn show(a: &mut CodeAssembler, puthex: CodeLabel, at: u64) -> AsmResult {
    a.mov(rax, qword_ptr(at))?;
    a.call(puthex)
}

/// Print both quadwords of an XMM register (high first), through BUF2.
fn show_xmm(a: &mut CodeAssembler, puthex: CodeLabel, r: AsmRegisterXmm) -> AsmResult {
    a.movdqu(xmmword_ptr(BUF2), r)?;
    show(a, puthex, BUF2 + 8)?;
    show(a, puthex, BUF2)
}

/// xmm <- the 16 bytes `v` (through BUF2; clobbers RAX).
fn load_xmm(a: &mut CodeAssembler, r: AsmRegisterXmm, v: u128) -> AsmResult {
    a.mov(rax, v as u64)?;
    a.mov(qword_ptr(BUF2), rax)?;
    a.mov(rax, (v >> 64) as u64)?;
    a.mov(qword_ptr(BUF2 + 8), rax)?;
    a.movdqu(r, xmmword_ptr(BUF2))
}

#[test]
fn stores_across_a_missing_page_change_nothing() {
    let img = guest(|a, puthex| {
        sse_on(a, true)?;
        unmap_hole(a)?;
        a.mov(rax, 0x1111_1111_1111_1111u64)?;
        a.mov(qword_ptr(HOLE - 8), rax)?;
        load_xmm(a, xmm1, 0xaaaa_aaaa_aaaa_aaaa_bbbb_bbbb_bbbb_bbbbu128)?;
        probe(a, "movdqu", |a| a.movdqu(xmmword_ptr(HOLE - 8), xmm1))?;
        show(a, puthex, HOLE - 8)?;
        // Only the first byte selected, and it lies on the mapped page:
        // the whole 16 bytes are checked first all the same.
        load_xmm(a, xmm2, 0x80)?;
        a.mov(rdi, HOLE - 8)?;
        probe(a, "maskmovdqu", |a| a.maskmovdqu(xmm1, xmm2))?;
        show(a, puthex, HOLE - 8)?;
        a.mov(rdi, HOLE - 4)?;
        probe(a, "maskmovq", |a| {
            a.movdq2q(mm1, xmm1)?;
            a.movdq2q(mm2, xmm2)?;
            a.maskmovq(mm1, mm2)
        })?;
        show(a, puthex, HOLE - 8)?;
        probe(a, "movq-mm", |a| a.movq(qword_ptr(HOLE - 4), mm1))?;
        probe(a, "pextrq", |a| a.pextrq(qword_ptr(HOLE - 4), xmm1, 0))?;
        probe(a, "movhps", |a| a.movhps(qword_ptr(HOLE - 2), xmm1))?;
        show(a, puthex, HOLE - 8)?;
        // A load that faults leaves the register as it was.
        probe(a, "movdqu-ld", |a| a.movdqu(xmm1, xmmword_ptr(HOLE - 8)))?;
        show_xmm(a, puthex, xmm1)
    });
    let want = "\
movdqu:P
1111111111111111
maskmovdqu:P
1111111111111111
maskmovq:P
1111111111111111
movq-mm:P
pextrq:P
movhps:P
1111111111111111
movdqu-ld:P
AAAAAAAAAAAAAAAA
BBBBBBBBBBBBBBBB
";
    assert_eq!(lines(&run(&img).serial), lines(want));
}

#[test]
fn masked_and_partial_stores_write_only_their_bytes() {
    let img = guest(|a, puthex| {
        sse_on(a, true)?;
        let fill = |a: &mut CodeAssembler| -> AsmResult {
            a.mov(rax, 0x1111_1111_1111_1111u64)?;
            a.mov(qword_ptr(BUF), rax)?;
            a.mov(qword_ptr(BUF + 8), rax)
        };
        load_xmm(a, xmm1, 0xffee_ddcc_bbaa_9988_7766_5544_3322_1100)?;
        // Bytes 0, 2, 3 and 15 selected (bit 7 of the mask byte).
        load_xmm(a, xmm2, 0x8000_0000_0000_0000_0000_0000_ff80_0080)?;
        fill(a)?;
        a.mov(rdi, BUF)?;
        a.maskmovdqu(xmm1, xmm2)?;
        show(a, puthex, BUF + 8)?;
        show(a, puthex, BUF)?;
        // MASKMOVQ through an FS override: FS.base + RDI.
        fill(a)?;
        a.mov(ecx, 0xc000_0100u32)?;
        a.mov(eax, (BUF - 0x100) as u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.mov(edi, 0x100)?;
        a.movdq2q(mm1, xmm1)?;
        a.movdq2q(mm2, xmm2)?;
        // fs maskmovq mm1, mm2
        a.db(&[0x64, 0x0f, 0xf7, 0xca])?;
        a.emms()?;
        show(a, puthex, BUF)?;
        // Extracts and scalar stores write their size only.
        fill(a)?;
        a.pextrb(byte_ptr(BUF + 1), xmm1, 14)?;
        a.pextrw(word_ptr(BUF + 2), xmm1, 7)?;
        a.extractps(dword_ptr(BUF + 4), xmm1, 1)?;
        a.movss(dword_ptr(BUF + 8), xmm1)?;
        show(a, puthex, BUF)?;
        show(a, puthex, BUF + 8)?;
        // Across a 4 KiB page boundary, both ways.
        a.movdqu(xmmword_ptr(BUF + 0xff8), xmm1)?;
        a.movdqu(xmm3, xmmword_ptr(BUF + 0xff9))?;
        show_xmm(a, puthex, xmm3)
    });
    let want = "\
FF11111111111111
1111111133221100
1111111133221100
77665544FFEEEE11
1111111133221100
00FFEEDDCCBBAA99
8877665544332211
";
    assert_eq!(lines(&run(&img).serial), lines(want));
}

#[test]
fn scalar_and_quadword_moves_zero_or_merge_as_the_sdm_says() {
    let ones = |a: &mut CodeAssembler| a.pcmpeqb(xmm0, xmm0);
    let img = guest(|a, puthex| {
        sse_on(a, true)?;
        a.mov(rax, 0x1111_1111_1111_1111u64)?;
        a.mov(qword_ptr(BUF), rax)?;
        a.mov(qword_ptr(BUF + 8), rax)?;
        load_xmm(a, xmm1, 0x3333_3333_3333_3333_2222_2222_2222_2222)?;
        let cases: [Case; 13] = [
            ("movss m", &|a| a.movss(xmm0, dword_ptr(BUF))),
            ("movss r", &|a| a.movss(xmm0, xmm1)),
            ("movsd m", &|a| a.movsd_2(xmm0, qword_ptr(BUF))),
            ("movsd r", &|a| a.movsd_2(xmm0, xmm1)),
            ("movq m", &|a| a.movq(xmm0, qword_ptr(BUF))),
            ("movq r", &|a| a.movq(xmm0, xmm1)),
            // movq xmm0, xmm1 in its 66 0F D6 (store) encoding
            ("movq r st", &|a| a.db(&[0x66, 0x0f, 0xd6, 0xc8])),
            ("movd r32", &|a| {
                a.mov(rax, -2i64)?;
                a.movd(xmm0, eax)
            }),
            ("movlps", &|a| a.movlps(xmm0, qword_ptr(BUF))),
            ("movhpd", &|a| a.movhpd(xmm0, qword_ptr(BUF))),
            ("movhlps", &|a| a.movhlps(xmm0, xmm1)),
            ("movlhps", &|a| a.movlhps(xmm0, xmm1)),
            ("movddup", &|a| a.movddup(xmm0, xmm1)),
        ];
        for (name, f) in cases {
            guest::print(a, &format!("{name}\n"))?;
            ones(a)?;
            f(a)?;
            show_xmm(a, puthex, xmm0)?;
        }
        // General-register destinations are zero-extended from 32 bits.
        let gprs: [Case; 5] = [
            ("movd eax", &|a| a.movd(eax, xmm1)),
            ("pextrb", &|a| a.pextrb(eax, xmm1, 15)),
            ("pextrw", &|a| a.pextrw(eax, xmm1, 6)),
            ("movmskps", &|a| a.movmskps(rax, xmm1)),
            ("pcmpistri", &|a| {
                a.mov(rcx, -1i64)?;
                a.pcmpistri(xmm1, xmm1, 0x08)?;
                a.mov(rax, rcx)
            }),
        ];
        for (name, f) in gprs {
            guest::print(a, &format!("{name}\n"))?;
            a.mov(rax, -1i64)?;
            f(a)?;
            a.call(puthex)?;
        }
        Ok(())
    });
    let want = "\
movss m
0000000000000000
0000000011111111
movss r
FFFFFFFFFFFFFFFF
FFFFFFFF22222222
movsd m
0000000000000000
1111111111111111
movsd r
FFFFFFFFFFFFFFFF
2222222222222222
movq m
0000000000000000
1111111111111111
movq r
0000000000000000
2222222222222222
movq r st
0000000000000000
2222222222222222
movd r32
0000000000000000
00000000FFFFFFFE
movlps
FFFFFFFFFFFFFFFF
1111111111111111
movhpd
1111111111111111
FFFFFFFFFFFFFFFF
movhlps
FFFFFFFFFFFFFFFF
3333333333333333
movlhps
2222222222222222
FFFFFFFFFFFFFFFF
movddup
2222222222222222
2222222222222222
movd eax
0000000022222222
pextrb
0000000000000033
pextrw
0000000000003333
movmskps
0000000000000000
pcmpistri
0000000000000000
";
    assert_eq!(lines(&run(&img).serial), lines(want));
}

/// TOP (FSW bits 11..=13).
fn top(f: &emu_core::Fpu) -> u16 {
    f.fsw >> 11 & 7
}

#[test]
fn mmx_instructions_switch_the_x87_unit_to_mmx_state() {
    let img = guest(|a, _| {
        sse_on(a, true)?;
        unmap_hole(a)?;
        a.mov(rax, 0x1234_5678_9abc_def0u64)?;
        a.mov(qword_ptr(BUF), rax)?;
        let checkpoint = |a: &mut CodeAssembler| -> AsmResult {
            a.mov(dx, CHECKPOINT as u32)?;
            a.out(dx, al)
        };
        // 0: a fault leaves the state as it was.
        probe(a, "paddb", |a| a.paddb(mm0, qword_ptr(HOLE)))?;
        checkpoint(a)?;
        // 1: EMMS, from TOP = 5.
        a.emms()?;
        checkpoint(a)?;
        // 2: a load.
        a.movq(mm3, qword_ptr(BUF))?;
        checkpoint(a)?;
        // 3: EMMS.
        a.emms()?;
        checkpoint(a)?;
        // 4: an instruction that only reads an MM register.
        a.pmovmskb(eax, mm3)?;
        checkpoint(a)?;
        // 5: a store to memory, after EMMS.
        a.emms()?;
        a.movq(qword_ptr(BUF + 8), mm3)?;
        checkpoint(a)?;
        // 6: MOVDQ2Q writes MM1.
        a.emms()?;
        a.pcmpeqb(xmm1, xmm1)?;
        a.movdq2q(mm1, xmm1)
    });
    // Start with TOP = 5 and only R5 in use.
    let start = emu_core::Fpu {
        fsw: 5 << 11,
        ftwx: 1 << 5,
        ..Default::default()
    };
    let r = run_with(&img, Some(start));
    assert_eq!(r.serial, "paddb:P\n");
    let f = &r.fpu;
    assert_eq!(f.len(), 7);
    assert_eq!((top(&f[0]), f[0].ftwx), (5, 1 << 5), "after a fault");
    // EMMS empties every register and sets TOP to 0 (SDM Vol. 1, Table
    // 9-2; what the host does too).
    assert_eq!((top(&f[1]), f[1].ftwx), (0, 0), "after EMMS");
    assert_eq!((top(&f[2]), f[2].ftwx), (0, 0xff), "after MOVQ mm3, m64");
    // MM3 is physical register 3, ST(3) now that TOP is 0: the value and
    // an all-ones exponent field.
    let reg3 = &f[2].fpr[3];
    assert_eq!(&reg3[..8], &0x1234_5678_9abc_def0u64.to_le_bytes());
    assert_eq!(&reg3[8..10], &[0xff, 0xff]);
    assert_eq!((top(&f[3]), f[3].ftwx), (0, 0), "after EMMS");
    assert_eq!(f[4].ftwx, 0xff, "after PMOVMSKB r32, mm");
    assert_eq!(f[5].ftwx, 0xff, "after MOVQ m64, mm");
    assert_eq!(f[6].ftwx, 0xff, "after MOVDQ2Q");
    assert_eq!(&f[6].fpr[1][..10], &[0xff; 10]);
}

#[test]
fn wide_operands_reach_mmio_in_aligned_pieces() {
    let img = guest(|a, puthex| {
        sse_on(a, true)?;
        load_xmm(a, xmm1, 0xffee_ddcc_bbaa_9988_7766_5544_3322_1100)?;
        a.mov(rbx, MMIO)?;
        a.movdqu(xmmword_ptr(rbx), xmm1)?;
        a.movdqu(xmmword_ptr(rbx + 0x24), xmm1)?;
        load_xmm(a, xmm2, 0x8000_0000_0000_0000_0000_0000_ff80_0080)?;
        a.mov(rdi, MMIO + 0x40)?;
        a.maskmovdqu(xmm1, xmm2)?;
        a.movdqa(xmm3, xmmword_ptr(rbx + 0x60))?;
        show_xmm(a, puthex, xmm3)?;
        a.pxor(xmm3, xmm3)?;
        a.paddb(xmm3, xmmword_ptr(rbx + 0x70))?;
        show_xmm(a, puthex, xmm3)
    });
    let r = run(&img);
    let w = |off: u64, b: &[u8]| (MMIO + off, b.to_vec());
    let x: Vec<u8> = (0..16).map(|i| i * 0x11).collect();
    assert_eq!(
        r.mmio_writes,
        vec![
            w(0, &x[..8]),
            w(8, &x[8..]),
            w(0x24, &x[..4]),
            w(0x28, &x[4..12]),
            w(0x30, &x[12..]),
            w(0x40, &x[..1]),
            w(0x42, &x[2..4]),
            w(0x4f, &x[15..]),
        ]
    );
    assert_eq!(
        r.mmio_reads,
        vec![
            (MMIO + 0x60, 8),
            (MMIO + 0x68, 8),
            (MMIO + 0x70, 8),
            (MMIO + 0x78, 8)
        ]
    );
    assert_eq!(
        lines(&r.serial),
        lines("6F6E6D6C6B6A6968\n6766656463626160\n7F7E7D7C7B7A7978\n7776757473727170\n")
    );
}

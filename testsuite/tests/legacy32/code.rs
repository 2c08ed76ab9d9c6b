//! The 32-bit guest of `legacy32`, and the table code it shares with the
//! host run.

use super::*;
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;
use testsuite::image;

/// The adjust and AAM/AAD blocks: entries (AX, FLAGS) stored at ES:EDI
/// in the order of [`inputs`](super::inputs). Faults nowhere, so the
/// host can run it too.
pub fn table(a: &mut CodeAssembler) -> Result<(), IcedError> {
    // The adjust blocks: ECX counts 0..1024.
    for (_, opcode) in ADJUST {
        let mut lp = a.create_label();
        let mut even = a.create_label();
        a.xor(ecx, ecx)?;
        a.set_label(&mut lp)?;
        a.mov(ebx, ecx)?;
        a.shr(ebx, 8)?;
        a.and(ebx, 1)?;
        a.mov(edx, ecx)?;
        a.shr(edx, 9)?;
        a.and(edx, 1)?;
        a.shl(edx, 4)?;
        a.or(ebx, edx)?;
        a.test(ecx, 1)?;
        a.jz(even)?;
        a.or(ebx, u32::from(OF | SF | ZF | PF))?;
        a.set_label(&mut even)?;
        a.or(ebx, 2)?;
        a.movzx(eax, cl)?;
        a.mov(edx, eax)?;
        a.xor(edx, 0x5a)?;
        a.shl(edx, 8)?;
        a.or(eax, edx)?;
        a.push(ebx)?;
        a.popfd()?;
        a.db(&[opcode])?;
        a.pushfd()?;
        a.pop(ebx)?;
        a.stosw()?;
        a.mov(eax, ebx)?;
        a.stosw()?;
        a.inc(ecx)?;
        a.cmp(ecx, 1024)?;
        a.jb(lp)?;
    }
    // AAM and AAD over each base: ECX counts 0..512.
    for (opcode, aad) in [(0xd4u8, false), (0xd5u8, true)] {
        for b in BASES {
            let mut lp = a.create_label();
            let mut low = a.create_label();
            a.xor(ecx, ecx)?;
            a.set_label(&mut lp)?;
            a.mov(ebx, 2)?;
            a.cmp(ecx, 256)?;
            a.jb(low)?;
            a.mov(ebx, 2 | u32::from(ARITH))?;
            a.set_label(&mut low)?;
            a.movzx(eax, cl)?;
            if aad {
                a.imul_3(edx, eax, 7)?;
                a.add(edx, 3)?;
                a.and(edx, 0xff)?;
            } else {
                a.mov(edx, eax)?;
                a.xor(edx, 0x5a)?;
            }
            a.shl(edx, 8)?;
            a.or(eax, edx)?;
            a.push(ebx)?;
            a.popfd()?;
            a.db(&[opcode, b])?;
            a.pushfd()?;
            a.pop(ebx)?;
            a.stosw()?;
            a.mov(eax, ebx)?;
            a.stosw()?;
            a.inc(ecx)?;
            a.cmp(ecx, 512)?;
            a.jb(lp)?;
        }
    }
    Ok(())
}

/// Label addresses for `mov r32, imm32` (32-bit code cannot take a
/// label's address with LEA): the first assembly records which labels
/// are wanted, the second has their addresses. `mov r32, imm32` is
/// always five bytes, so both assemblies have the same layout.
struct Addrs {
    known: Vec<u32>,
    used: Vec<CodeLabel>,
}

impl Addrs {
    /// `mov r, <address of l>`; returns the slot of `l`, which a
    /// forward reference must [`Addrs::fix`] once the label is set (a
    /// label is a value that `set_label` completes).
    fn mov(
        &mut self,
        a: &mut CodeAssembler,
        r: AsmRegister32,
        l: CodeLabel,
    ) -> Result<usize, IcedError> {
        let slot = self.used.len();
        let v = self.known.get(slot).copied().unwrap_or(0x1000_0000);
        self.used.push(l);
        a.mov(r, v)?;
        Ok(slot)
    }

    fn fix(&mut self, slot: usize, l: CodeLabel) {
        self.used[slot] = l;
    }
}

/// Emit `body` expecting it may fault: the handler resumes after it and
/// the vector (0xff for none) goes to `out` (EDI, advanced).
fn record_vector(
    a: &mut CodeAssembler,
    ad: &mut Addrs,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<(), IcedError> {
    let mut after = a.create_label();
    a.mov(dword_ptr(VEC as u32), 0xff)?;
    let slot = ad.mov(a, eax, after)?;
    a.mov(dword_ptr(RESUME as u32), eax)?;
    body(a)?;
    a.set_label(&mut after)?;
    ad.fix(slot, after);
    a.mov(eax, dword_ptr(VEC as u32))?;
    a.stosd()?;
    a.mov(dword_ptr(RESUME as u32), 0)?;
    Ok(())
}

pub fn guest() -> Result<Vec<u8>, IcedError> {
    let mut ad = Addrs {
        known: Vec::new(),
        used: Vec::new(),
    };
    let (_, ips) = assemble(&mut ad)?;
    ad.known = ips;
    ad.used.clear();
    let (code, _) = assemble(&mut ad)?;
    let mut head = image::multiboot_header().to_vec();
    head.resize(16, 0);
    head.extend(code);
    Ok(image::elf(
        false,
        LOAD + 16,
        &[image::Segment {
            paddr: LOAD,
            memsz: head.len() as u64,
            data: head,
        }],
    ))
}

/// The code and the addresses of the labels `ad` was asked for.
fn assemble(ad: &mut Addrs) -> Result<(Vec<u8>, Vec<u32>), IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut start = a.create_label();
    a.jmp(start)?;
    // Exception stubs and the common handler: record the vector and the
    // faulting EIP, resume at [RESUME] (an exception with no resume point
    // ends the run with exit code 3).
    let mut common = a.create_label();
    let mut stubs = Vec::new();
    for v in 0u32..32 {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        if !matches!(v, 8 | 10..=14 | 17) {
            a.push(0)?;
        }
        a.push(v as i32)?;
        a.jmp(common)?;
        stubs.push(l);
    }
    let mut unexpected = a.create_label();
    a.set_label(&mut common)?;
    a.push(eax)?;
    a.mov(eax, dword_ptr(esp + 4))?;
    a.mov(dword_ptr(VEC as u32), eax)?;
    a.mov(eax, dword_ptr(esp + 12))?;
    a.mov(dword_ptr(FAULT_EIP as u32), eax)?;
    a.mov(eax, dword_ptr(RESUME as u32))?;
    a.test(eax, eax)?;
    a.jz(unexpected)?;
    a.mov(dword_ptr(esp + 12), eax)?;
    a.mov(dword_ptr(RESUME as u32), 0)?;
    a.pop(eax)?;
    a.add(esp, 8)?;
    a.iretd()?;
    a.set_label(&mut unexpected)?;
    a.mov(dx, 0xf4)?;
    a.mov(eax, 1)?;
    a.out(dx, eax)?;
    a.hlt()?;

    a.set_label(&mut start)?;
    a.cli()?;
    a.mov(esp, STACK as u32)?;
    a.mov(ebx, cs)?;
    for (v, l) in stubs.iter().enumerate() {
        let at = (IDT + 8 * v as u64) as u32;
        ad.mov(&mut a, eax, *l)?;
        a.mov(word_ptr(at), ax)?;
        a.mov(word_ptr(at + 2), bx)?;
        a.mov(word_ptr(at + 4), 0x8e00)?;
        a.shr(eax, 16)?;
        a.mov(word_ptr(at + 6), ax)?;
    }
    a.mov(word_ptr(DATA as u32), 0xff)?;
    a.mov(eax, IDT as u32)?;
    a.mov(dword_ptr(DATA as u32 + 2), eax)?;
    a.lidt(ptr(DATA as u32))?;
    a.cld()?;
    a.mov(edi, OUT as u32)?;

    table(&mut a)?;
    // SALC with CF clear and set (other status flags set).
    for f in [2 | ARITH & !CF, 2 | ARITH] {
        a.push(i32::from(f))?;
        a.popfd()?;
        a.mov(eax, 0x1234_5600)?;
        a.db(&[0xd6])?;
        a.pushfd()?;
        a.pop(ebx)?;
        a.shl(ebx, 16)?;
        a.movzx(eax, al)?;
        a.or(eax, ebx)?;
        a.stosd()?;
    }
    // BOUND: bounds [0, 10] at DATA+0x100 (32-bit) and DATA+0x110 (16-bit).
    a.mov(dword_ptr(DATA as u32 + 0x100), 0)?;
    a.mov(dword_ptr(DATA as u32 + 0x104), 10)?;
    a.mov(word_ptr(DATA as u32 + 0x110), 0)?;
    a.mov(word_ptr(DATA as u32 + 0x112), 10)?;
    // 62 15 disp32: bound edx, [disp32].
    let d = ((DATA + 0x100) as u32).to_le_bytes();
    let bound32 = [0x62u8, 0x15, d[0], d[1], d[2], d[3]];
    let d16 = ((DATA + 0x110) as u32).to_le_bytes();
    let bound16 = [0x66u8, 0x62, 0x15, d16[0], d16[1], d16[2], d16[3]];
    let mut at_bound = a.create_label();
    for edx_value in [5u32, 0xffff_ffff, 11] {
        a.mov(edx, edx_value)?;
        if edx_value == 11 {
            record_vector(&mut a, ad, |a| {
                a.set_label(&mut at_bound)?;
                a.db(&bound32)
            })?;
        } else {
            record_vector(&mut a, ad, |a| a.db(&bound32))?;
        }
    }
    ad.mov(&mut a, eax, at_bound)?;
    a.cmp(eax, dword_ptr(FAULT_EIP as u32))?;
    a.sete(al)?;
    a.movzx(eax, al)?;
    a.stosd()?;
    a.mov(edx, 11)?;
    record_vector(&mut a, ad, |a| a.db(&bound16))?;
    // AAM 0.
    record_vector(&mut a, ad, |a| a.db(&[0xd4, 0x00]))?;
    // ARPL with a register destination (63 D8: arpl eax, ebx).
    a.mov(eax, 0xabcd_0010u32)?;
    a.mov(ebx, 0x23)?;
    a.push(2)?;
    a.popfd()?;
    a.db(&[0x63, 0xd8])?;
    a.pushfd()?;
    a.pop(ebx)?;
    a.stosd()?;
    a.mov(eax, ebx)?;
    a.stosd()?;
    let zf_to_31 = |a: &mut CodeAssembler| -> Result<(), IcedError> {
        a.pushfd()?;
        a.pop(ebx)?;
        a.and(ebx, u32::from(ZF))?;
        a.shl(ebx, 25)?;
        a.or(eax, ebx)
    };
    a.mov(eax, 0x13)?;
    a.mov(ebx, 0x10)?;
    a.push(2 | i32::from(ZF))?;
    a.popfd()?;
    a.db(&[0x63, 0xd8])?;
    zf_to_31(&mut a)?;
    a.stosd()?;
    // ARPL with a memory destination (63 1D disp32: arpl [DATA+0x120], bx).
    a.mov(dword_ptr(DATA as u32 + 0x120), 0x8)?;
    a.mov(ebx, 3)?;
    a.db(&[0x63, 0x1d])?;
    a.dd(&[(DATA + 0x120) as u32])?;
    a.mov(eax, dword_ptr(DATA as u32 + 0x120))?;
    zf_to_31(&mut a)?;
    a.stosd()?;
    // UD0 (with a ModRM byte), UD1, UD2, UD1 with a memory operand.
    for bytes in [
        &[0x0f, 0xff, 0xc0][..],
        &[0x0f, 0xb9, 0xc0],
        &[0x0f, 0x0b],
        &[0x0f, 0xb9, 0x05, 0xf0, 0xff, 0xff, 0xff],
    ] {
        record_vector(&mut a, ad, |a| a.db(bytes))?;
    }
    a.mov(dx, 0xf4)?;
    a.xor(eax, eax)?;
    a.out(dx, eax)?;
    a.hlt()?;
    let r = a.assemble_options(
        LOAD + 16,
        BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )?;
    let ips = ad
        .used
        .iter()
        .map(|l| r.label_ip(l).map(|v| v as u32))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((r.inner.code_buffer, ips))
}

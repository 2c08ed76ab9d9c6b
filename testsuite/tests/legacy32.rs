//! The forms 64-bit mode dropped, in a 32-bit protected-mode guest: the
//! decimal-arithmetic instructions over every AL and incoming CF/AF (and
//! AAM/AAD over several bases), SALC, BOUND (#BR as a fault), ARPL on a
//! register and on memory, AAM 0 (#DE), and UD0/UD1/UD2 (#UD).
//!
//! The guest writes a table of (AX, FLAGS) results to RAM. On softvm every
//! entry must equal a reference model written here from the SDM's
//! pseudocode, undefined flags included (softvm's `max` model is an Intel
//! processor: OF cleared, SF/ZF/PF from AL, AAM/AAD clearing CF and AF).
//! When /dev/kvm is usable, the same guest runs on the host processor: the
//! defined results must match the model, and the undefined flags the host
//! computes are printed next to the Intel model's (this host being AMD,
//! that is the measurement the vendor model needs).

use testsuite::backend::{load_image, run_guest, Backend, RunLimits, SoftvmBackend};
use testsuite::image;

const LOAD: u64 = 0x10_0000;
const IDT: u64 = 0x20_0000;
const RESUME: u64 = 0x20_1000;
const VEC: u64 = 0x20_1004;
const FAULT_EIP: u64 = 0x20_1008;
const DATA: u64 = 0x20_2000;
const STACK: u64 = 0x28_0000;
const OUT: u64 = 0x30_0000;

const CF: u16 = 1;
const PF: u16 = 1 << 2;
const AF: u16 = 1 << 4;
const ZF: u16 = 1 << 6;
const SF: u16 = 1 << 7;
const OF: u16 = 1 << 11;
const ARITH: u16 = CF | PF | AF | ZF | SF | OF;

/// The adjust instructions and the bases of AAM/AAD, in table order.
const ADJUST: [(&str, u8); 4] = [("daa", 0x27), ("das", 0x2f), ("aaa", 0x37), ("aas", 0x3f)];
const BASES: [u8; 4] = [10, 16, 7, 255];

/// One table entry: AX and FLAGS after the instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    ax: u16,
    flags: u16,
}

/// The inputs of entry `i` of a 1024-entry adjust block: AL, AH, and the
/// incoming flags (CF from bit 8, AF from bit 9, OF/SF/ZF/PF set for odd
/// AL so that "unchanged" would show).
fn adjust_input(i: u32) -> (u16, u16) {
    let al = i & 0xff;
    let ah = al ^ 0x5a;
    let mut f = 2 | ((i >> 8) & 1) as u16 | (((i >> 9) & 1) as u16) << 4;
    if al & 1 != 0 {
        f |= OF | SF | ZF | PF;
    }
    ((ah << 8 | al) as u16, f)
}

/// The inputs of entry `i` of a 512-entry AAM/AAD block: all status flags
/// set for the second half.
fn base_input(i: u32, aad: bool) -> (u16, u16) {
    let al = i & 0xff;
    let ah = if aad { (al * 7 + 3) & 0xff } else { al ^ 0x5a };
    let f = if i >= 256 { 2 | ARITH } else { 2 };
    ((ah << 8 | al) as u16, f)
}

fn szp(v: u8) -> u16 {
    let mut f = 0;
    if v == 0 {
        f |= ZF;
    }
    if v & 0x80 != 0 {
        f |= SF;
    }
    if v.count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

/// The SDM's operations, with the undefined flags of P6-family Intel
/// processors. Returns AX and the status flags.
fn model(op: &str, ax: u16, flags: u16, imm: u8) -> (u16, u16) {
    let (al, ah) = (ax as u8, (ax >> 8) as u8);
    let (cf, af) = (flags & CF != 0, flags & AF != 0);
    match op {
        "daa" | "das" => {
            let sub = op == "das";
            let (mut new_al, mut new_cf, mut new_af) = (al, false, false);
            if al & 0x0f > 9 || af {
                let (v, carry) = if sub {
                    al.overflowing_sub(6)
                } else {
                    al.overflowing_add(6)
                };
                new_al = v;
                new_cf = cf || carry;
                new_af = true;
            }
            if al > 0x99 || cf {
                new_al = if sub {
                    new_al.wrapping_sub(0x60)
                } else {
                    new_al.wrapping_add(0x60)
                };
                new_cf = true;
            } else if !sub {
                new_cf = false;
            }
            let f = szp(new_al) | if new_cf { CF } else { 0 } | if new_af { AF } else { 0 };
            ((ax & 0xff00) | u16::from(new_al), f)
        }
        "aaa" | "aas" => {
            if al & 0x0f > 9 || af {
                let v = if op == "aaa" {
                    ax.wrapping_add(0x106)
                } else {
                    ax.wrapping_sub(0x106)
                };
                let v = v & 0xff0f;
                (v, szp(v as u8) | CF | AF)
            } else {
                let v = ax & 0xff0f;
                (v, szp(v as u8))
            }
        }
        "aam" => {
            let (q, r) = (al / imm, al % imm);
            (u16::from(q) << 8 | u16::from(r), szp(r))
        }
        "aad" => {
            let v = al.wrapping_add(ah.wrapping_mul(imm));
            (u16::from(v), szp(v))
        }
        _ => unreachable!("{op}"),
    }
}

/// The flags the manuals leave undefined after `op`.
fn undefined(op: &str) -> u16 {
    match op {
        "daa" | "das" => OF,
        "aaa" | "aas" => OF | SF | ZF | PF,
        _ => OF | AF | CF,
    }
}

/// Every table entry in order: (instruction, imm, input AX, input flags).
fn inputs() -> Vec<(&'static str, u8, u16, u16)> {
    let mut v = Vec::new();
    for (op, _) in ADJUST {
        for i in 0..1024 {
            let (ax, f) = adjust_input(i);
            v.push((op, 0, ax, f));
        }
    }
    for (op, aad) in [("aam", false), ("aad", true)] {
        for b in BASES {
            for i in 0..512 {
                let (ax, f) = base_input(i, aad);
                v.push((op, b, ax, f));
            }
        }
    }
    v
}

/// The misc records after the table, each a 32-bit word.
const MISC: [&str; 12] = [
    "salc cf=0 (al | flags<<16)",
    "salc cf=1",
    "bound in range: vector",
    "bound below: vector",
    "bound above: vector",
    "bound faulting eip is the bound",
    "bound16 above: vector",
    "aam 0: vector",
    "arpl eax,ebx raise: eax",
    "arpl eax,ebx raise: flags",
    "arpl no change: eax | zf<<31",
    "arpl mem: word | zf<<31",
];
const UD_RECORDS: usize = 4;

/// The guest, built with iced-x86's assembler (in a module of its own:
/// its register names would shadow the model's variables).
mod code {
    use super::*;
    use iced_x86::code_asm::*;
    use iced_x86::BlockEncoderOptions;

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
}

/// Run the guest on `b`; the table entries and the misc records.
fn run_on(b: &mut dyn Backend) -> (Vec<Entry>, Vec<u32>, Result<u32, String>) {
    let img = load_image(&code::guest().expect("guest assembles")).expect("guest loads");
    let rec = run_guest(b, &img, RunLimits::default()).expect("backend runs");
    let n = inputs().len();
    let mut raw = vec![0u8; n * 4 + (MISC.len() + UD_RECORDS) * 4];
    b.read_memory(OUT, &mut raw).expect("table readable");
    let word = |i: usize| u32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().unwrap());
    let entries = (0..n)
        .map(|i| Entry {
            ax: word(i) as u16,
            flags: (word(i) >> 16) as u16,
        })
        .collect();
    let misc = (n..n + MISC.len() + UD_RECORDS).map(word).collect();
    let end = rec.exit_code.ok_or_else(|| {
        format!(
            "no exit code; last exits: {:?}",
            &rec.exits[rec.exits.len().saturating_sub(3)..]
        )
    });
    (entries, misc, end)
}

/// Differences of `got` from the model, ignoring the flags in `ignore`
/// (a per-instruction mask).
fn differences(got: &[Entry], ignore: impl Fn(&str) -> u16) -> Vec<String> {
    let mut out = Vec::new();
    for ((op, imm, ax, f), e) in inputs().into_iter().zip(got) {
        let (want_ax, want_f) = model(op, ax, f, imm);
        let mask = ARITH & !ignore(op);
        if e.ax != want_ax || e.flags & mask != want_f & mask {
            out.push(format!(
                "{op} {imm:3} ax={ax:04x} flags={f:03x}: got ax={:04x} flags={:03x}, model ax={want_ax:04x} flags={want_f:03x}",
                e.ax,
                e.flags & ARITH
            ));
        }
    }
    out
}

fn check_misc(misc: &[u32], who: &str) {
    let salc0 = misc[0];
    let salc1 = misc[1];
    assert_eq!(salc0 & 0xff, 0, "{who}: SALC with CF clear");
    assert_eq!(salc1 & 0xff, 0xff, "{who}: SALC with CF set");
    assert_eq!(
        (salc0 >> 16) as u16 & ARITH,
        ARITH & !CF,
        "{who}: SALC keeps flags"
    );
    assert_eq!(&misc[2..5], &[0xff, 5, 5], "{who}: BOUND vectors");
    assert_eq!(misc[5], 1, "{who}: #BR is a fault at the BOUND");
    assert_eq!(misc[6], 5, "{who}: BOUND r16");
    assert_eq!(misc[7], 0, "{who}: AAM 0 is #DE");
    assert_eq!(misc[8] & 0xffff, 0x0013, "{who}: ARPL raises RPL");
    assert_eq!(misc[9] as u16 & ZF, ZF, "{who}: ARPL sets ZF");
    assert_eq!(misc[10], 0x13, "{who}: ARPL without change clears ZF");
    assert_eq!(misc[11], 0x8000_000b, "{who}: ARPL on memory");
    assert_eq!(&misc[12..16], &[6, 6, 6, 6], "{who}: UD0/UD1/UD2 are #UD");
}

#[test]
fn legacy_forms_in_32_bit_mode_match_the_sdm_model() {
    let mut soft = SoftvmBackend::new(50_000_000).expect("softvm backend");
    let (entries, misc, code) = run_on(&mut soft);
    assert_eq!(code, Ok(0), "guest ended badly");
    let diff = differences(&entries, |_| 0);
    assert!(
        diff.is_empty(),
        "{} entries differ from the model, first:\n{}",
        diff.len(),
        diff[..diff.len().min(20)].join("\n")
    );
    check_misc(&misc, "softvm");
    assert_eq!(misc[8] >> 16, 0xabcd, "ARPL r32 keeps bits 16..31");
    println!(
        "legacy32: {} entries and {} records as modelled",
        entries.len(),
        misc.len()
    );
}

#[test]
fn legacy_forms_on_the_host_through_kvm() {
    if let Err(why) = testsuite::kvm::available() {
        println!("skipping the /dev/kvm run: {why}");
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let mut k = testsuite::kvm::KvmBackend::new(std::time::Duration::from_secs(60))
            .expect("kvm backend");
        let (entries, misc, code) = run_on(&mut k);
        match code {
            Ok(0) => {}
            Err(e) if e.contains("InternalError") => {
                println!("KVM could not run the guest (its emulator): {e}");
                return;
            }
            other => panic!("guest ended badly on KVM: {other:?}"),
        }
        let diff = differences(&entries, undefined);
        assert!(
            diff.is_empty(),
            "{} defined results differ from the host, first:\n{}",
            diff.len(),
            diff[..diff.len().min(20)].join("\n")
        );
        check_misc(&misc, "host");
        println!("KVM's host undefined flags against the Intel model:");
        summarize(&entries);
        println!("host ARPL r32 upper bits: {:#06x}", misc[8] >> 16);
        if std::env::var_os("LEGACY32_DUMP").is_some() {
            for d in differences(&entries, |_| 0) {
                println!("{d}");
            }
        }
    }
}

/// The table on the host processor, in user mode: the table code runs in
/// compatibility mode (Linux's 32-bit user code segment 0x23), reached by
/// a far jump from a 64-bit trampoline in memory below 2 GiB. It runs in a
/// forked child, so a kernel without 32-bit segments costs a skip, not the
/// test process.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod host {
    use super::Entry;
    use iced_x86::code_asm::*;

    const SIZE: usize = 0x20000;
    const RET64: u64 = 0x100;
    const CODE32: u64 = 0x200;
    const SAVE: u64 = 0x8000;
    const FAR32: u64 = 0x8010;
    const FAR64: u64 = 0x8020;
    const OUT: u64 = 0x9000;
    const STACK: u64 = 0x1f000;
    /// Linux's user code and data selectors.
    const USER32_CS: u16 = 0x23;
    const USER_DS: u16 = 0x2b;
    const USER_CS: u16 = 0x33;

    fn code(base: u64) -> Result<Vec<(u64, Vec<u8>)>, IcedError> {
        let mut e = CodeAssembler::new(64)?;
        for r in [rbx, rbp, r12, r13, r14, r15] {
            e.push(r)?;
        }
        e.mov(rax, rsp)?;
        e.mov(qword_ptr(base + SAVE), rax)?;
        e.jmp(fword_ptr(base + FAR32))?;
        let mut r = CodeAssembler::new(64)?;
        r.mov(rsp, qword_ptr(base + SAVE))?;
        for g in [r15, r14, r13, r12, rbp, rbx] {
            r.pop(g)?;
        }
        r.ret()?;
        let mut c = CodeAssembler::new(32)?;
        c.mov(ax, i32::from(USER_DS))?;
        c.mov(ds, ax)?;
        c.mov(es, ax)?;
        c.mov(esp, (base + STACK) as u32)?;
        c.cld()?;
        c.mov(edi, (base + OUT) as u32)?;
        super::code::table(&mut c)?;
        c.jmp(fword_ptr((base + FAR64) as u32))?;
        let far = |off: u64, sel: u16| {
            let mut v = (off as u32).to_le_bytes().to_vec();
            v.extend(sel.to_le_bytes());
            v
        };
        Ok(vec![
            (0, e.assemble(base)?),
            (RET64, r.assemble(base + RET64)?),
            (CODE32, c.assemble(base + CODE32)?),
            (FAR32, far(base + CODE32, USER32_CS)),
            (FAR64, far(base + RET64, USER_CS)),
        ])
    }

    /// The table as the host computes it, or why it could not be run.
    pub fn table(n: usize) -> Result<Vec<Entry>, String> {
        // SAFETY: a fresh anonymous shared mapping, owned here until the
        // munmap below; nothing else refers to it.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let base = mem as u64;
        let result = (|| {
            let parts = code(base).map_err(|e| e.to_string())?;
            for (off, bytes) in &parts {
                // SAFETY: every part lies inside the mapping (offsets and
                // sizes above are far below SIZE).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        mem.cast::<u8>().add(*off as usize),
                        bytes.len(),
                    )
                };
            }
            // SAFETY: fork in a test process: the child only runs the
            // generated code (no allocation, no locks) and `_exit`s.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: the trampoline saves and restores every
                // callee-saved register and RSP and returns; the rest is
                // clobbered, as the C ABI allows.
                unsafe {
                    let f: extern "C" fn() = std::mem::transmute(mem);
                    f();
                    libc::_exit(0);
                }
            }
            if pid < 0 {
                return Err(format!("fork: {}", std::io::Error::last_os_error()));
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return Err(format!(
                    "the compatibility-mode child did not finish (status {status:#x}): \
                     no 32-bit user code segment?"
                ));
            }
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                // SAFETY: OUT + 4n is inside the mapping (n entries of 4
                // bytes, n < 0x4000).
                let w = unsafe {
                    mem.cast::<u8>()
                        .add(OUT as usize + 4 * i)
                        .cast::<u32>()
                        .read_unaligned()
                };
                out.push(Entry {
                    ax: w as u16,
                    flags: (w >> 16) as u16,
                });
            }
            Ok(out)
        })();
        // SAFETY: unmapping what mmap returned, no longer used.
        unsafe { libc::munmap(mem, SIZE) };
        result
    }
}

/// The decimal-adjust table on the host CPU itself (ring 3, compatibility
/// mode): the defined results must match the model; the undefined flags
/// the host computes are printed against the Intel model, per flag.
#[test]
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn decimal_arithmetic_on_the_host_cpu() {
    let n = inputs().len();
    let entries = match host::table(n) {
        Ok(t) => t,
        Err(why) => {
            println!("skipping the host run: {why}");
            return;
        }
    };
    let diff = differences(&entries, undefined);
    assert!(
        diff.is_empty(),
        "{} defined results differ from the host, first:\n{}",
        diff.len(),
        diff[..diff.len().min(20)].join("\n")
    );
    let vendor = emu_core::cpu::model::Vendor::host();
    println!("host ({vendor:?}) undefined flags against the Intel model:");
    summarize(&entries);
    if std::env::var_os("LEGACY32_DUMP").is_some() {
        for ((op, imm, in_ax, in_f), e) in inputs().into_iter().zip(&entries) {
            println!(
                "DUMP {op} {imm} {in_ax:04x} {in_f:03x} {:04x} {:03x}",
                e.ax,
                e.flags & ARITH
            );
        }
    }
}

fn summarize(entries: &[Entry]) {
    let ins = inputs();
    for op in ["daa", "das", "aaa", "aas", "aam", "aad"] {
        let mut per_flag = Vec::new();
        for (name, bit) in [
            ("CF", CF),
            ("PF", PF),
            ("AF", AF),
            ("ZF", ZF),
            ("SF", SF),
            ("OF", OF),
        ] {
            if undefined(op) & bit == 0 {
                continue;
            }
            let (mut n, mut differ) = (0, 0);
            for ((o, imm, in_ax, in_f), e) in ins.iter().zip(entries) {
                if *o != op {
                    continue;
                }
                n += 1;
                if e.flags & bit != model(o, *in_ax, *in_f, *imm).1 & bit {
                    differ += 1;
                }
            }
            per_flag.push(format!("{name} differs in {differ}/{n}"));
        }
        println!("  {op}: {}", per_flag.join(", "));
    }
}

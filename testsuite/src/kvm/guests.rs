//! Hand-written deterministic guests for the KVM comparison.
//!
//! Each one is a multiboot image built with [`crate::guest::long_mode`]
//! (or a 32-bit variant here) that prints what it observes over COM1 and
//! ends with a write to the exit port and `hlt`. None of them depends on
//! timing or on CPUID values beyond softvm's model (which both backends
//! get).
//!
//! Guests whose point is computation (atomics, shifts, mul/div, SETcc and
//! CMOVcc, bit instructions, the stack) run it in ring 3 through
//! [`Kit::user`] and print from ring 0 afterwards: on the nested kvm_pvm
//! /dev/kvm of CI machines ring 0 goes through KVM's instruction emulator,
//! ring 3 runs on the host CPU. System guests (exceptions, segments,
//! paging, port I/O, MMIO) run in ring 0 and so exercise that emulator;
//! `int-n` is not comparable there (the emulator cannot do INT n outside
//! real mode) but is on a hardware-virtualized /dev/kvm.

use super::kit::{self, expect_fault, print, Kit, Stash, SCRATCH};
use super::Guest;
use crate::guest;
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

/// The status flags (CF PF AF ZF SF OF).
const STATUS: u32 = 0x8d5;

/// Builds one guest image.
type Builder = fn() -> Result<Vec<u8>, IcedError>;

/// Every hand-written guest, by name.
pub fn all() -> Result<Vec<Guest>, IcedError> {
    let list: Vec<(&str, Builder)> = vec![
        ("hello", hello),
        ("exceptions", exceptions),
        ("segments-and-gates", segments),
        ("strings", strings),
        ("atomics", atomics),
        ("shifts", shifts),
        ("muldiv", muldiv),
        ("port-io", port_io),
        ("setcc-cmovcc", setcc_cmovcc),
        ("paging-4k", paging),
        ("mmio", mmio),
        ("ring3", ring3),
        ("protected-mode-32", protected_mode_32),
        ("self-modifying", self_modifying),
        ("bits-and-flags", bits_and_flags),
        ("stack-and-far", stack_and_far),
        ("cpuid", cpuid),
        ("int-n", int_n),
        ("ring3-data-segments", iretq_nulls_segments),
        ("pushad-32", pushad_32),
        ("x87-long-mode", super::x87::long_mode),
    ];
    list.into_iter()
        .map(|(name, f)| Ok(Guest::new(name, f()?, false)))
        .collect()
}

/// Guests that show known differences, each with the reason it is not
/// counted: they still run, and the report says whether they still differ.
pub fn known_differences() -> Result<Vec<(Guest, &'static str)>, IcedError> {
    Ok(vec![
        (
            Guest::new("cmpxchg-r32-fail", cmpxchg_r32_fail()?, false),
            "hardware quirk: this host CPU leaves the register destination of a failed 32-bit CMPXCHG unchanged (upper half kept); softvm zero-extends it",
        ),
    ])
}

/// PUSHAD/POPAD in 32-bit protected mode.
fn pushad_32() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    a.mov(esp, 0x8_0000)?;
    a.mov(eax, 0x1111_1111)?;
    a.mov(ebx, 0x2222_2222)?;
    a.pushad()?;
    a.xor(eax, eax)?;
    a.mov(ebx, 7)?;
    a.popad()?;
    a.mov(dx, 0xf4)?;
    a.out(dx, eax)?;
    a.hlt()?;
    let code = a.assemble(guest::LOAD + 16)?;
    let mut head = crate::image::multiboot_header().to_vec();
    head.resize(16, 0);
    head.extend(code);
    let segs = [crate::image::Segment {
        paddr: guest::LOAD,
        memsz: head.len() as u64,
        data: head,
    }];
    Ok(crate::image::elf(false, guest::LOAD + 16, &segs))
}

/// The data segment registers in ring 3 after IRETQ from ring 0: DS and
/// FS (DPL 0) are nulled.
fn iretq_nulls_segments() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            a.xor(eax, eax)?;
            a.mov(ax, ds)?;
            st.put(a, "ring 3 ds", rax)?;
            a.push(fs)?;
            a.pop(rbx)?;
            st.put(a, "ring 3 fs", rbx)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

/// A guest whose only job is the failed `CMPXCHG r32, r32` with a register
/// destination (hardware zero-extends the destination on some CPUs and
/// not on others; see the crate docs of [`crate::randprog`]).
pub fn cmpxchg_r32_fail() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        // In ring 3, which runs natively on kvm_pvm (ring 0 goes through
        // KVM's emulator, which zero-extends).
        k.user(a, |a| {
            a.mov(rax, 0x1111_1111_2222_2222u64)?;
            a.mov(rbx, 0x3333_3333_4444_4444u64)?;
            a.mov(rcx, 0x5555_5555_6666_6666u64)?;
            // EAX != EBX: the comparison fails, EAX gets EBX.
            a.cmpxchg(ebx, ecx)?;
            st.put(a, "rax", rax)?;
            st.put(a, "rbx", rbx)?;
            st.put(a, "rcx", rcx)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

fn hello() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        guest::print(a, "hello from 64-bit\n")?;
        guest::exit(a, 0)
    })
}

fn set_flags(a: &mut CodeAssembler, f: u32) -> Result<(), IcedError> {
    a.push(f as i32)?;
    a.popfq()
}

/// Fold RAX into R15 (checksum), preserving flags.
fn fold(a: &mut CodeAssembler, r: AsmRegister64) -> Result<(), IcedError> {
    a.pushfq()?;
    a.xor(r15, r)?;
    a.rol(r15, 7)?;
    a.popfq()
}

/// Fold the status flags into R15 (flags preserved).
fn fold_flags(a: &mut CodeAssembler, mask: u32) -> Result<(), IcedError> {
    a.pushfq()?;
    a.push(rax)?;
    a.mov(rax, qword_ptr(rsp + 8))?;
    a.and(eax, mask)?;
    a.xor(r15, rax)?;
    a.rol(r15, 5)?;
    a.pop(rax)?;
    a.popfq()
}

/// #DE, #UD, #GP, #SS, #PF and #NP through the IDT, resumed with IRETQ.
fn exceptions() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        print(a, "divide by zero\n")?;
        a.mov(eax, 100)?;
        a.xor(edx, edx)?;
        a.xor(ecx, ecx)?;
        expect_fault(a, |a| a.div(ecx))?;
        print(a, "quotient overflow (32-bit, 8-bit, idiv MIN/-1)\n")?;
        a.mov(edx, 5)?;
        a.xor(eax, eax)?;
        a.mov(ecx, 2)?;
        expect_fault(a, |a| a.div(ecx))?;
        a.mov(ax, 0x1000)?;
        a.mov(cl, 2)?;
        expect_fault(a, |a| a.div(cl))?;
        a.mov(rax, 0x8000_0000_0000_0000u64)?;
        a.cqo()?;
        a.mov(rcx, -1i64)?;
        expect_fault(a, |a| a.idiv(rcx))?;
        k.show(a, "rax", rax)?;
        k.show(a, "rdx", rdx)?;
        print(a, "ud2, lock on a register, lock mov, into\n")?;
        expect_fault(a, |a| a.ud2())?;
        a.mov(eax, 1)?;
        a.mov(ebx, 2)?;
        expect_fault(a, |a| a.db(&[0xf0, 0x01, 0xd8]))?;
        k.show(a, "rax", rax)?;
        a.mov(rbx, SCRATCH)?;
        expect_fault(a, |a| a.db(&[0xf0, 0x89, 0x03]))?;
        expect_fault(a, |a| a.db(&[0xce]))?;
        print(a, "non-canonical load, store, stack reference\n")?;
        a.mov(rax, 0x8000_0000_0000_0000u64)?;
        expect_fault(a, |a| a.mov(rbx, qword_ptr(rax)))?;
        expect_fault(a, |a| a.mov(qword_ptr(rax + 8), rbx))?;
        a.mov(rbp, 0x0000_8000_0000_1000u64)?;
        expect_fault(a, |a| a.mov(rbx, qword_ptr(rbp + 8)))?;
        print(a, "rdmsr/wrmsr of an unknown msr\n")?;
        a.mov(ecx, 0xdead_beefu32)?;
        expect_fault(a, |a| a.rdmsr())?;
        expect_fault(a, |a| a.wrmsr())?;
        print(
            a,
            "page faults: not present read/write, read-only write with WP\n",
        )?;
        // PD 0 is at PML4 + 0x2000; entry 16 maps 32 MiB (RAM, unused).
        let pde = guest::PML4 + 0x2000 + 16 * 8;
        a.mov(rax, qword_ptr(pde))?;
        a.and(rax, -2i32)?;
        a.mov(qword_ptr(pde), rax)?;
        a.mov(rbx, 0x200_0000u64)?;
        a.invlpg(ptr(rbx))?;
        expect_fault(a, |a| a.mov(eax, dword_ptr(rbx + 0x123)))?;
        expect_fault(a, |a| a.mov(dword_ptr(rbx + 0x1f_fffc), eax))?;
        // Entry 17 (34 MiB) read-only.
        a.mov(rax, qword_ptr(pde + 8))?;
        a.and(rax, -3i32)?;
        a.mov(qword_ptr(pde + 8), rax)?;
        a.mov(rbx, 0x220_0000u64)?;
        a.invlpg(ptr(rbx))?;
        a.mov(dword_ptr(rbx + 0x40), 0x1234_5678)?;
        a.mov(eax, dword_ptr(rbx + 0x40))?;
        k.show(a, "written with WP=0", rax)?;
        a.mov(rax, cr0)?;
        a.bts(rax, 16)?;
        a.mov(cr0, rax)?;
        expect_fault(a, |a| a.mov(dword_ptr(rbx + 0x44), 0x1234_5678))?;
        expect_fault(a, |a| a.add(qword_ptr(rbx + 0x3f), rax))?;
        a.mov(eax, dword_ptr(rbx + 0x44))?;
        k.show(a, "after the faulting write", rax)?;
        // A page-crossing read from a mapped page into the unmapped one.
        a.mov(rbx, 0x200_0000u64 - 4)?;
        expect_fault(a, |a| a.mov(rax, qword_ptr(rbx)))?;
        k.show_mem(a, "exceptions", kit::EXC_COUNT)?;
        guest::exit(a, 0)
    })
}

/// Segment loads (#GP, #NP, null selectors), the IDT limit, LTR.
fn segments() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        // Extend the GDT: 0x30 data not present, 0x38 execute-only code,
        // 0x40/0x48 a 64-bit TSS.
        let gdt = guest::GDT;
        a.mov(rax, 0x00cf_1200_0000_ffffu64)?;
        a.mov(qword_ptr(gdt + 0x30), rax)?;
        a.mov(rax, 0x00af_9800_0000_ffffu64)?;
        a.mov(qword_ptr(gdt + 0x38), rax)?;
        let tss = kit::TSS;
        let low = 0x67 | ((tss & 0xff_ffff) << 16) | (0x89u64 << 40) | (((tss >> 24) & 0xff) << 56);
        a.mov(rax, low)?;
        a.mov(qword_ptr(gdt + 0x40), rax)?;
        a.mov(qword_ptr(gdt + 0x48), 0)?;
        a.mov(word_ptr(SCRATCH), 0x4f)?;
        a.mov(rax, gdt)?;
        a.mov(qword_ptr(SCRATCH + 2), rax)?;
        a.lgdt(ptr(SCRATCH))?;
        print(
            a,
            "selector beyond the limit, not present, execute-only code, rpl > dpl\n",
        )?;
        a.mov(eax, 0x80)?;
        expect_fault(a, |a| a.mov(ds, ax))?;
        a.mov(eax, 0x30)?;
        expect_fault(a, |a| a.mov(ds, ax))?;
        expect_fault(a, |a| a.mov(ss, ax))?;
        a.mov(eax, 0x38)?;
        expect_fault(a, |a| a.mov(es, ax))?;
        a.mov(eax, 0x13)?;
        expect_fault(a, |a| a.mov(fs, ax))?;
        print(a, "null selectors in 64-bit mode\n")?;
        a.xor(eax, eax)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(fs, ax)?;
        a.mov(gs, ax)?;
        a.mov(rbx, SCRATCH)?;
        a.mov(qword_ptr(rbx), rbx)?;
        a.mov(rcx, qword_ptr(rbx))?;
        k.show(a, "through null ds", rcx)?;
        a.mov(eax, 0x10)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(ax, ds)?;
        k.show(a, "ds", rax)?;
        a.mov(rax, 0x1234_5678_0000_0000u64)?;
        a.mov(ax, fs)?;
        k.show(a, "mov r64, fs", rax)?;
        a.mov(rax, -1i64)?;
        a.mov(eax, gs)?;
        k.show(a, "mov r32, gs", rax)?;
        print(a, "ltr\n")?;
        a.mov(eax, 0x40)?;
        a.ltr(ax)?;
        a.str(ax)?;
        k.show(a, "tr", rax)?;
        a.mov(eax, 0x40)?;
        // The descriptor is busy now: loading it again faults.
        expect_fault(a, |a| a.ltr(ax))?;
        a.mov(al, byte_ptr(gdt + 0x45))?;
        k.show(a, "tss type byte", rax)?;
        print(a, "a page fault beyond the IDT limit: #GP\n")?;
        a.mov(word_ptr(kit::IDTR), 14 * 16 - 1)?;
        a.lidt(ptr(kit::IDTR))?;
        a.mov(rbx, 0x0000_7fff_ffff_f000u64)?;
        expect_fault(a, |a| a.mov(rax, qword_ptr(rbx)))?;
        a.sidt(ptr(SCRATCH + 0x100))?;
        a.mov(rax, qword_ptr(SCRATCH + 0x100))?;
        k.show(a, "sidt low", rax)?;
        a.sgdt(ptr(SCRATCH + 0x100))?;
        a.mov(rax, qword_ptr(SCRATCH + 0x100))?;
        k.show(a, "sgdt low", rax)?;
        guest::exit(a, 0)
    })
}

/// MOVS/STOS/LODS/SCAS/CMPS in every size, with and without REP, both
/// directions, overlapping copies.
fn strings() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        let buf = SCRATCH;
        // Fill 512 bytes with a pattern.
        a.mov(rdi, buf)?;
        a.mov(ecx, 512)?;
        a.mov(eax, 0x11)?;
        let mut lp = a.create_label();
        a.set_label(&mut lp)?;
        a.mov(byte_ptr(rdi), al)?;
        a.add(al, 0x1d)?;
        a.inc(rdi)?;
        a.dec(ecx)?;
        a.jnz(lp)?;
        a.xor(r15, r15)?;
        let dump = |a: &mut CodeAssembler, k: &Kit, name: &str| -> Result<(), IcedError> {
            // Fold 1 KiB of the buffer and the string registers.
            a.push(rcx)?;
            a.push(rsi)?;
            a.mov(rsi, buf)?;
            a.mov(ecx, 128)?;
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            a.xor(r15, qword_ptr(rsi))?;
            a.rol(r15, 3)?;
            a.add(rsi, 8)?;
            a.dec(ecx)?;
            a.jnz(l)?;
            a.pop(rsi)?;
            a.pop(rcx)?;
            print(a, name)?;
            print(a, "\n")?;
            k.show(a, " sum", r15)?;
            k.show(a, " rsi", rsi)?;
            k.show(a, " rdi", rdi)?;
            k.show(a, " rcx", rcx)?;
            k.show(a, " rax", rax)?;
            k.show_flags(a, " flags", STATUS | 0x400)
        };
        a.cld()?;
        a.mov(rsi, buf)?;
        a.mov(rdi, buf + 0x203)?;
        a.mov(ecx, 37)?;
        a.rep().movsb()?;
        dump(a, &k, "rep movsb")?;
        a.mov(rsi, buf + 1)?;
        a.mov(rdi, buf + 0x241)?;
        a.mov(ecx, 9)?;
        a.rep().movsw()?;
        a.mov(ecx, 5)?;
        a.rep().movsd()?;
        a.mov(ecx, 3)?;
        a.rep().movsq()?;
        dump(a, &k, "rep movsw/d/q")?;
        // Overlapping forward copy (replicates the first 8 bytes).
        a.mov(rsi, buf + 0x10)?;
        a.mov(rdi, buf + 0x18)?;
        a.mov(ecx, 40)?;
        a.rep().movsb()?;
        dump(a, &k, "overlapping movsb")?;
        a.std()?;
        a.mov(rsi, buf + 0x1f8)?;
        a.mov(rdi, buf + 0x1fc)?;
        a.mov(ecx, 11)?;
        a.rep().movsd()?;
        a.cld()?;
        dump(a, &k, "backward movsd")?;
        a.mov(rax, 0xa5a5_5a5a_1234_abcdu64)?;
        a.mov(rdi, buf + 0x100)?;
        a.mov(ecx, 7)?;
        a.rep().stosb()?;
        a.mov(ecx, 3)?;
        a.rep().stosw()?;
        a.mov(ecx, 3)?;
        a.rep().stosd()?;
        a.mov(ecx, 3)?;
        a.rep().stosq()?;
        a.stosb()?;
        dump(a, &k, "stos")?;
        a.mov(rsi, buf + 0x31)?;
        a.lodsb()?;
        a.lodsw()?;
        a.lodsd()?;
        a.lodsq()?;
        dump(a, &k, "lods")?;
        // SCAS: search for a byte that is there, and one that is not.
        a.mov(rdi, buf)?;
        a.mov(ecx, 200)?;
        a.mov(al, byte_ptr(buf + 77))?;
        a.repne().scasb()?;
        dump(a, &k, "repne scasb (found)")?;
        a.mov(rdi, buf + 0x100)?;
        a.mov(ecx, 4)?;
        a.mov(ax, 0x1234)?;
        a.repe().scasw()?;
        dump(a, &k, "repe scasw")?;
        a.mov(rdi, buf + 0x300)?;
        a.mov(ecx, 8)?;
        a.mov(rax, 0x0102_0304_0506_0708u64)?;
        a.repne().scasq()?;
        dump(a, &k, "repne scasq (not found)")?;
        // CMPS: equal prefix, then a difference.
        a.mov(rsi, buf + 0x10)?;
        a.mov(rdi, buf + 0x18)?;
        a.mov(ecx, 100)?;
        a.repe().cmpsb()?;
        dump(a, &k, "repe cmpsb")?;
        a.mov(rsi, buf)?;
        a.mov(rdi, buf + 0x200)?;
        a.mov(ecx, 6)?;
        a.repe().cmpsd()?;
        dump(a, &k, "repe cmpsd")?;
        a.std()?;
        a.mov(rsi, buf + 0x80)?;
        a.mov(rdi, buf + 0x180)?;
        a.mov(ecx, 5)?;
        a.repne().cmpsw()?;
        a.cld()?;
        dump(a, &k, "std repne cmpsw")?;
        // REP with RCX = 0 does nothing; a 32-bit address-size STOS wraps
        // nothing here but uses EDI/ECX.
        a.xor(ecx, ecx)?;
        a.mov(rdi, buf)?;
        a.rep().stosq()?;
        a.mov(ecx, 3)?;
        a.mov(edi, (buf + 0x3c0) as u32)?;
        a.db(&[0x67, 0xf3, 0xaa])?;
        dump(a, &k, "rcx=0, addr32 rep stosb")?;
        guest::exit(a, 0)
    })
}

/// CMPXCHG (not the failing 32-bit register form), XADD, XCHG,
/// CMPXCHG8B/16B, LOCK prefixes.
fn atomics() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            let m = SCRATCH + 0x40;
            a.xor(r15, r15)?;
            a.mov(rax, 0x1122_3344_5566_7788u64)?;
            a.mov(qword_ptr(m), rax)?;
            a.mov(qword_ptr(m + 8), rax)?;
            let fold_all = |a: &mut CodeAssembler| -> Result<(), IcedError> {
                fold_flags(a, STATUS)?;
                fold(a, rax)?;
                fold(a, rbx)?;
                fold(a, rcx)?;
                fold(a, rdx)?;
                a.push(rax)?;
                a.mov(rax, qword_ptr(m))?;
                fold(a, rax)?;
                a.mov(rax, qword_ptr(m + 8))?;
                fold(a, rax)?;
                a.pop(rax)
            };
            // Memory destinations, success and failure, all sizes.
            a.mov(rax, 0x1122_3344_5566_7788u64)?;
            a.mov(rcx, 0xdead_beef_cafe_f00du64)?;
            a.lock().cmpxchg(qword_ptr(m), rcx)?;
            fold_all(a)?;
            a.lock().cmpxchg(qword_ptr(m), rcx)?;
            fold_all(a)?;
            a.mov(eax, 0xcafe_f00du32)?;
            a.cmpxchg(dword_ptr(m), ecx)?;
            fold_all(a)?;
            a.cmpxchg(dword_ptr(m + 4), ecx)?;
            fold_all(a)?;
            a.cmpxchg(word_ptr(m + 8), cx)?;
            fold_all(a)?;
            a.mov(al, 0x88)?;
            a.cmpxchg(byte_ptr(m + 8), cl)?;
            fold_all(a)?;
            a.cmpxchg(byte_ptr(m + 9), ch)?;
            fold_all(a)?;
            st.put(a, "cmpxchg mem", r15)?;
            // Register destinations (8, 16 and 64 bits; the failed 32-bit form
            // is its own guest).
            a.mov(rax, 0x10u64)?;
            a.mov(rbx, 0x10u64)?;
            a.mov(rcx, 0x99u64)?;
            a.cmpxchg(rbx, rcx)?;
            fold_all(a)?;
            a.cmpxchg(rbx, rcx)?;
            fold_all(a)?;
            a.mov(rbx, 0xffff_ffff_0000_0010u64)?;
            a.mov(eax, 0x10)?;
            a.cmpxchg(ebx, ecx)?;
            fold_all(a)?;
            a.cmpxchg(bx, cx)?;
            fold_all(a)?;
            a.cmpxchg(bl, ch)?;
            fold_all(a)?;
            st.put(a, "cmpxchg reg", r15)?;
            st.put(a, "rax", rax)?;
            st.put(a, "rbx", rbx)?;
            // XADD.
            a.mov(rbx, 0x7fff_ffff_ffff_fff0u64)?;
            a.mov(rcx, 0x20u64)?;
            a.lock().xadd(qword_ptr(m), rcx)?;
            fold_all(a)?;
            a.xadd(rbx, rcx)?;
            fold_all(a)?;
            a.xadd(ebx, ecx)?;
            fold_all(a)?;
            a.xadd(word_ptr(m + 2), bx)?;
            fold_all(a)?;
            a.xadd(cl, bh)?;
            fold_all(a)?;
            a.xadd(dl, dl)?;
            fold_all(a)?;
            st.put(a, "xadd", r15)?;
            // XCHG (implicitly locked with memory).
            a.xchg(qword_ptr(m), rbx)?;
            a.xchg(ecx, edx)?;
            a.xchg(ax, bx)?;
            a.xchg(byte_ptr(m + 3), ah)?;
            fold_all(a)?;
            st.put(a, "xchg", r15)?;
            // CMPXCHG8B/16B: failure then success.
            let m16 = SCRATCH + 0x100;
            a.mov(rax, 0x0123_4567_89ab_cdefu64)?;
            a.mov(qword_ptr(m16), rax)?;
            a.mov(rax, 0xfedc_ba98_7654_3210u64)?;
            a.mov(qword_ptr(m16 + 8), rax)?;
            a.mov(rax, 0x1111u64)?;
            a.mov(rdx, 0x2222u64)?;
            a.mov(rbx, 0x3333_4444_5555_6666u64)?;
            a.mov(rcx, 0x7777_8888_9999_aaaau64)?;
            a.cmpxchg8b(qword_ptr(m16))?;
            fold_all(a)?;
            st.put(a, "cmpxchg8b fail rax", rax)?;
            st.put(a, "cmpxchg8b fail rdx", rdx)?;
            a.lock().cmpxchg8b(qword_ptr(m16))?;
            fold_all(a)?;
            a.mov(rax, qword_ptr(m16))?;
            st.put(a, "cmpxchg8b ok mem", rax)?;
            a.xor(eax, eax)?;
            a.xor(edx, edx)?;
            a.cmpxchg16b(xmmword_ptr(m16))?;
            fold_all(a)?;
            st.put(a, "cmpxchg16b fail rax", rax)?;
            st.put(a, "cmpxchg16b fail rdx", rdx)?;
            a.lock().cmpxchg16b(xmmword_ptr(m16))?;
            fold_all(a)?;
            a.mov(rax, qword_ptr(m16 + 8))?;
            st.put(a, "cmpxchg16b ok mem", rax)?;
            // Misaligned CMPXCHG16B faults with #GP(0).
            expect_fault(a, |a| a.cmpxchg16b(xmmword_ptr(m16 + 8)))?;
            st.put(a, "sum", r15)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

/// Operand values that stress shifts and arithmetic.
const VALUES: [u64; 8] = [
    0,
    1,
    0x80,
    0x8000_0001,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_ffff,
    0x1234_5678_9abc_def1,
];

/// Shifts and rotates of every size by CL = 0, 1, width-1, width, 33,
/// with the defined flags (OF only for counts of 1; AF never).
fn shifts() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            a.xor(r15, r15)?;
            type Op = fn(&mut CodeAssembler) -> Result<(), IcedError>;
            let ops: Vec<(&str, [Op; 4])> = vec![
                (
                    "shl",
                    [
                        |a| a.shl(bl, cl),
                        |a| a.shl(bx, cl),
                        |a| a.shl(ebx, cl),
                        |a| a.shl(rbx, cl),
                    ],
                ),
                (
                    "shr",
                    [
                        |a| a.shr(bl, cl),
                        |a| a.shr(bx, cl),
                        |a| a.shr(ebx, cl),
                        |a| a.shr(rbx, cl),
                    ],
                ),
                (
                    "sar",
                    [
                        |a| a.sar(bl, cl),
                        |a| a.sar(bx, cl),
                        |a| a.sar(ebx, cl),
                        |a| a.sar(rbx, cl),
                    ],
                ),
                (
                    "rol",
                    [
                        |a| a.rol(bl, cl),
                        |a| a.rol(bx, cl),
                        |a| a.rol(ebx, cl),
                        |a| a.rol(rbx, cl),
                    ],
                ),
                (
                    "ror",
                    [
                        |a| a.ror(bl, cl),
                        |a| a.ror(bx, cl),
                        |a| a.ror(ebx, cl),
                        |a| a.ror(rbx, cl),
                    ],
                ),
                (
                    "rcl",
                    [
                        |a| a.rcl(bl, cl),
                        |a| a.rcl(bx, cl),
                        |a| a.rcl(ebx, cl),
                        |a| a.rcl(rbx, cl),
                    ],
                ),
                (
                    "rcr",
                    [
                        |a| a.rcr(bl, cl),
                        |a| a.rcr(bx, cl),
                        |a| a.rcr(ebx, cl),
                        |a| a.rcr(rbx, cl),
                    ],
                ),
            ];
            for (name, forms) in &ops {
                for (w, op) in forms.iter().enumerate() {
                    let width = 8u32 << w;
                    for count in [0u32, 1, width - 1, width, 33] {
                        for (i, v) in VALUES.iter().enumerate() {
                            if i % 2 == (count as usize) % 2 {
                                continue;
                            }
                            a.mov(rbx, *v)?;
                            a.mov(ecx, count)?;
                            // Start with CF set and OF set: shifts by 0 keep them.
                            set_flags(a, 0x803 | if i % 3 == 0 { 0x40 } else { 0 })?;
                            op(a)?;
                            let masked = count & if width == 64 { 63 } else { 31 };
                            let mut mask = STATUS & !0x10;
                            if masked != 1 {
                                mask &= !0x800;
                            }
                            fold_flags(a, mask)?;
                            fold(a, rbx)?;
                        }
                    }
                }
                st.put(a, name, r15)?;
            }
            // Immediate and by-one forms, SHLD/SHRD (counts below 16 for
            // 16-bit operands: larger ones leave the result undefined).
            a.mov(rbx, 0x8123_4567_89ab_cdefu64)?;
            a.mov(rdx, 0xfedc_ba98_7654_3210u64)?;
            for c in [0u32, 1, 4, 15] {
                a.mov(ecx, c)?;
                set_flags(a, 0x1)?;
                a.shld(bx, dx, cl)?;
                fold_flags(
                    a,
                    if c == 1 {
                        STATUS & !0x10
                    } else {
                        STATUS & !0x810
                    },
                )?;
                fold(a, rbx)?;
                a.shrd(ebx, edx, cl)?;
                fold_flags(
                    a,
                    if c == 1 {
                        STATUS & !0x10
                    } else {
                        STATUS & !0x810
                    },
                )?;
                fold(a, rbx)?;
                a.shld(rbx, rdx, c)?;
                fold_flags(
                    a,
                    if c == 1 {
                        STATUS & !0x10
                    } else {
                        STATUS & !0x810
                    },
                )?;
                fold(a, rbx)?;
                a.shrd(qword_ptr(SCRATCH), rdx, cl)?;
                fold_flags(
                    a,
                    if c == 1 {
                        STATUS & !0x10
                    } else {
                        STATUS & !0x810
                    },
                )?;
                a.shl(rbx, 1)?;
                fold_flags(a, STATUS & !0x10)?;
                a.sar(bx, 1)?;
                fold_flags(a, STATUS & !0x10)?;
                a.ror(ebx, 1)?;
                fold_flags(a, 0x801)?;
                a.rcr(bl, 1)?;
                fold_flags(a, 0x801)?;
                a.sar(rbx, 63)?;
                fold_flags(a, STATUS & !0x810)?;
                a.rol(word_ptr(SCRATCH + 6), 9)?;
                fold_flags(a, 0x1)?;
                fold(a, rbx)?;
            }
            a.mov(rax, qword_ptr(SCRATCH))?;
            fold(a, rax)?;
            st.put(a, "imm, shld/shrd", r15)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

/// MUL/IMUL (one, two and three operands) and DIV/IDIV of every size.
fn muldiv() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            a.xor(r15, r15)?;
            // CF and OF are defined after multiplications, none after divisions.
            for (i, v) in VALUES.iter().enumerate() {
                for w in VALUES.iter().skip(i % 3) {
                    a.mov(rax, *v)?;
                    a.mov(rbx, *w)?;
                    a.mov(rdx, 0x5555u64)?;
                    a.mul(bl)?;
                    fold_flags(a, 0x801)?;
                    fold(a, rax)?;
                    a.imul(bx)?;
                    fold_flags(a, 0x801)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mul(ebx)?;
                    fold_flags(a, 0x801)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mov(rax, *v)?;
                    a.imul(rbx)?;
                    fold_flags(a, 0x801)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mov(rcx, *v)?;
                    a.imul_2(ecx, ebx)?;
                    fold_flags(a, 0x801)?;
                    fold(a, rcx)?;
                    a.imul_3(rcx, rbx, -7)?;
                    fold_flags(a, 0x801)?;
                    fold(a, rcx)?;
                    a.imul_3(cx, bx, 0x1234)?;
                    fold_flags(a, 0x801)?;
                    fold(a, rcx)?;
                }
            }
            st.put(a, "mul", r15)?;
            for dividend in [
                0u64,
                1,
                0x1234_5678_9abc_def0,
                0xffff_ffff_ffff_fff9,
                0x8000_0000_0000_0000,
            ] {
                for divisor in [1u64, 3, 0x7f, 0x8001, 0xffff_ffff_ffff_fffd, 0x1_0000_0001] {
                    // Unsigned: zero high halves so the quotient fits.
                    a.mov(rax, dividend)?;
                    a.xor(edx, edx)?;
                    a.mov(rbx, divisor)?;
                    a.div(rbx)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mov(rax, dividend)?;
                    a.xor(edx, edx)?;
                    a.div(ebx)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mov(rax, dividend & 0xffff)?;
                    a.xor(edx, edx)?;
                    a.or(ebx, 0x100)?;
                    a.div(bx)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.movzx(eax, al)?;
                    a.or(bl, 1)?;
                    a.div(bl)?;
                    fold(a, rax)?;
                    // Signed, sign-extended dividends; divisors are never -1
                    // with a minimum dividend here.
                    a.mov(rax, dividend >> 1)?;
                    a.cqo()?;
                    a.mov(rbx, divisor)?;
                    a.idiv(rbx)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mov(rax, dividend)?;
                    a.cdq()?;
                    a.idiv(ebx)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mov(rax, dividend)?;
                    a.cwd()?;
                    a.idiv(bx)?;
                    fold(a, rax)?;
                    fold(a, rdx)?;
                    a.mov(rax, dividend)?;
                    a.cbw()?;
                    a.and(bl, 0x7d)?;
                    a.or(bl, 2)?;
                    a.idiv(bl)?;
                    fold(a, rax)?;
                }
            }
            st.put(a, "div", r15)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

/// IN/OUT of every size, immediate and DX ports, single string I/O, the
/// exit port written several times.
fn port_io() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        a.mov(al, 0x5a)?;
        a.out(0x80, al)?;
        a.mov(ax, 0x1234)?;
        a.out(0x84, ax)?;
        a.mov(eax, 0x89ab_cdefu32)?;
        a.out(0x88, eax)?;
        a.mov(dx, 0x510)?;
        a.out(dx, ax)?;
        a.mov(dx, 0xcf8)?;
        a.mov(eax, 0x8000_0000u32)?;
        a.out(dx, eax)?;
        a.mov(rax, -1i64)?;
        a.in_(al, 0x71)?;
        k.show(a, "in al, 0x71", rax)?;
        a.mov(dx, 0x3fd)?;
        a.in_(al, dx)?;
        k.show(a, "line status", rax)?;
        a.mov(dx, 0xcfc)?;
        a.in_(eax, dx)?;
        k.show(a, "in eax", rax)?;
        a.mov(rax, 0x1111_2222_3333_4444u64)?;
        a.in_(ax, 0x60)?;
        k.show(a, "in ax", rax)?;
        // One-element string I/O.
        a.mov(rsi, SCRATCH)?;
        a.mov(qword_ptr(rsi), 0x7766_5544)?;
        a.mov(dx, 0x90)?;
        a.outsb()?;
        a.outsw()?;
        a.outsd()?;
        a.mov(rdi, SCRATCH + 0x20)?;
        a.insb()?;
        a.insw()?;
        a.insd()?;
        k.show(a, "rsi", rsi)?;
        k.show(a, "rdi", rdi)?;
        k.show_mem(a, "ins data", SCRATCH + 0x20)?;
        // The exit port with a byte, then the final word.
        a.mov(al, 7)?;
        a.out(0xf4, al)?;
        print(a, "still running\n")?;
        guest::exit(a, 0x21)
    })
}

/// SETcc and CMOVcc of all conditions over many flag combinations.
fn setcc_cmovcc() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            a.xor(r15, r15)?;
            a.mov(rsi, SCRATCH)?;
            a.mov(rax, 0x0123_4567_89ab_cdefu64)?;
            a.mov(qword_ptr(rsi), rax)?;
            // Combinations of CF, PF, ZF, SF, OF.
            for bits in 0u32..32 {
                let f = [0x1, 0x4, 0x40, 0x80, 0x800]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, b)| b)
                    .sum::<u32>();
                set_flags(a, f | 0x2)?;
                a.mov(rbx, -1i64)?;
                a.mov(rcx, 0xffff_ffff_0000_0000u64)?;
                a.mov(rdx, rcx)?;
                a.seto(bl)?;
                a.setno(bh)?;
                a.setb(byte_ptr(rsi + 8))?;
                a.setae(byte_ptr(rsi + 9))?;
                a.sete(byte_ptr(rsi + 10))?;
                a.setne(byte_ptr(rsi + 11))?;
                a.setbe(byte_ptr(rsi + 12))?;
                a.seta(byte_ptr(rsi + 13))?;
                a.sets(byte_ptr(rsi + 14))?;
                a.setns(byte_ptr(rsi + 15))?;
                a.setp(byte_ptr(rsi + 16))?;
                a.setnp(byte_ptr(rsi + 17))?;
                a.setl(byte_ptr(rsi + 18))?;
                a.setge(byte_ptr(rsi + 19))?;
                a.setle(byte_ptr(rsi + 20))?;
                a.setg(byte_ptr(rsi + 21))?;
                fold(a, rbx)?;
                a.push(rax)?;
                a.mov(rax, qword_ptr(rsi + 8))?;
                fold(a, rax)?;
                a.mov(rax, qword_ptr(rsi + 16))?;
                fold(a, rax)?;
                a.pop(rax)?;
                // 32-bit CMOVcc zero-extends even when the condition is false.
                a.cmovo(ecx, eax)?;
                a.cmovb(rdx, qword_ptr(rsi))?;
                fold(a, rcx)?;
                fold(a, rdx)?;
                a.mov(rcx, rdx)?;
                a.cmove(cx, ax)?;
                a.cmovbe(edx, dword_ptr(rsi + 4))?;
                fold(a, rcx)?;
                fold(a, rdx)?;
                a.cmovs(rcx, rax)?;
                a.cmovp(ecx, edx)?;
                a.cmovl(dx, word_ptr(rsi + 2))?;
                a.cmovle(rdx, rbx)?;
                a.cmovno(r8d, eax)?;
                a.cmovae(r9, rax)?;
                a.cmovne(r10w, ax)?;
                a.cmova(r11d, dword_ptr(rsi))?;
                a.cmovns(r12, rax)?;
                a.cmovnp(r13d, eax)?;
                a.cmovge(r14w, ax)?;
                a.cmovg(r8, rcx)?;
                for r in [rcx, rdx, r8, r9, r10, r11, r12, r13, r14] {
                    fold(a, r)?;
                }
            }
            st.put(a, "sum", r15)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

/// 4 KiB pages in a region of their own (PML4 entry 1): mapping,
/// unmapping with INVLPG, read-only pages with and without CR0.WP,
/// aliases, accessed/dirty bits, a CR3 reload, a 2 MiB page.
fn paging() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        let pdpt = 0x40_0000u64;
        let pd = pdpt + 0x1000;
        let pt = pdpt + 0x2000;
        let frames = 0x50_0000u64;
        let va = 0x80_0000_0000u64;
        // Tables: PML4[1] -> pdpt, pdpt[0] -> pd, pd[0] -> pt, pd[1] = 2 MiB.
        a.mov(rax, pdpt | 3)?;
        a.mov(qword_ptr(guest::PML4 + 8), rax)?;
        a.mov(rax, pd | 3)?;
        a.mov(qword_ptr(pdpt), rax)?;
        a.mov(rax, pt | 3)?;
        a.mov(qword_ptr(pd), rax)?;
        a.mov(rax, 0x60_0000u64 | 0x83)?;
        a.mov(qword_ptr(pd + 8), rax)?;
        a.mov(rax, cr0)?;
        a.bts(rax, 16)?;
        a.mov(cr0, rax)?;
        // PTEs: 0,1 rw; 2 ro; 3 absent; 4 aliases frame 0.
        for (i, e) in [
            (0u64, frames | 3),
            (1, (frames + 0x1000) | 3),
            (2, (frames + 0x2000) | 1),
            (4, frames | 3),
        ] {
            a.mov(rax, e)?;
            a.mov(qword_ptr(pt + i * 8), rax)?;
        }
        a.mov(rbx, va)?;
        a.mov(rax, 0x1111_2222_3333_4444u64)?;
        a.mov(qword_ptr(rbx + 0x10), rax)?;
        a.mov(rcx, qword_ptr(rbx + 0x4010))?;
        k.show(a, "alias read", rcx)?;
        a.mov(dword_ptr(rbx + 0x4018), 0x5555_6666)?;
        a.mov(rcx, qword_ptr(rbx + 0x18))?;
        k.show(a, "alias write", rcx)?;
        // A write crossing from page 0 into page 1.
        a.mov(qword_ptr(rbx + 0xffc), rax)?;
        a.mov(rcx, qword_ptr(rbx + 0xff8))?;
        k.show(a, "crossing", rcx)?;
        a.mov(rcx, qword_ptr(rbx + 0x1000))?;
        k.show(a, "page 1", rcx)?;
        a.mov(rcx, qword_ptr(rbx + 0x2000))?;
        print(a, "faults\n")?;
        expect_fault(a, |a| a.mov(qword_ptr(rbx + 0x2008), rax))?;
        expect_fault(a, |a| a.mov(rcx, qword_ptr(rbx + 0x3008)))?;
        expect_fault(a, |a| a.mov(qword_ptr(rbx + 0x5000), rax))?;
        expect_fault(a, |a| a.mov(rcx, qword_ptr(rbx + 0x2ffc)))?;
        // CR0.WP clear: supervisor writes to read-only pages succeed.
        a.mov(rax, cr0)?;
        a.btr(rax, 16)?;
        a.mov(cr0, rax)?;
        a.mov(dword_ptr(rbx + 0x2010), 0x77)?;
        a.mov(rax, cr0)?;
        a.bts(rax, 16)?;
        a.mov(cr0, rax)?;
        expect_fault(a, |a| a.mov(dword_ptr(rbx + 0x2010), 0x78))?;
        a.mov(ecx, dword_ptr(rbx + 0x2010))?;
        k.show(a, "ro page", rcx)?;
        // Accessed and dirty bits of the pages used so far.
        for i in [0u64, 1, 2, 4] {
            a.mov(rcx, qword_ptr(pt + i * 8))?;
            a.and(ecx, 0x60)?;
            k.show(a, &format!("pte{i} a/d"), rcx)?;
        }
        a.mov(rcx, qword_ptr(pd))?;
        a.and(ecx, 0x60)?;
        k.show(a, "pde a/d", rcx)?;
        // Remap page 0 to frame 1 with INVLPG; then unmap it.
        a.mov(rax, (frames + 0x1000) | 3)?;
        a.mov(qword_ptr(pt), rax)?;
        a.invlpg(ptr(rbx))?;
        a.mov(rcx, qword_ptr(rbx))?;
        k.show(a, "remapped", rcx)?;
        a.mov(qword_ptr(pt), 0)?;
        a.invlpg(ptr(rbx))?;
        expect_fault(a, |a| a.mov(rcx, qword_ptr(rbx + 0x7)))?;
        // Map it back with a CR3 reload instead.
        a.mov(rax, frames | 3)?;
        a.mov(qword_ptr(pt), rax)?;
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)?;
        a.mov(rcx, qword_ptr(rbx + 0x10))?;
        k.show(a, "back", rcx)?;
        // The 2 MiB page and making it read-only.
        a.mov(rdx, va + 0x20_0000)?;
        a.mov(qword_ptr(rdx + 0x1_2340), rdx)?;
        a.mov(rcx, qword_ptr(0x61_2340u64))?;
        k.show(a, "2m page", rcx)?;
        a.mov(rax, 0x60_0000u64 | 0x81)?;
        a.mov(qword_ptr(pd + 8), rax)?;
        a.invlpg(ptr(rdx + 0x1_2340))?;
        expect_fault(a, |a| a.mov(qword_ptr(rdx + 0x1_2340), rax))?;
        // The accessed bit of an entry whose access faulted is the CPU's
        // business; the dirty bit is not.
        a.mov(rcx, qword_ptr(pd + 8))?;
        a.and(ecx, -0x21)?;
        k.show(a, "2m pde", rcx)?;
        // Not-present PDPT entry, then PML4 entry.
        a.mov(qword_ptr(pdpt), 0)?;
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)?;
        expect_fault(a, |a| a.mov(rcx, qword_ptr(rbx)))?;
        a.mov(qword_ptr(guest::PML4 + 8), 0)?;
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)?;
        expect_fault(a, |a| a.mov(qword_ptr(rbx + 0x100), rcx))?;
        guest::exit(a, 0)
    })
}

/// Reads and writes of guest-physical addresses outside RAM (MMIO exits)
/// through simple moves of every size.
fn mmio() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        let base = 0xd000_0000u64;
        a.mov(rbx, base)?;
        a.mov(byte_ptr(rbx), 0x12)?;
        a.mov(word_ptr(rbx + 0x10), 0x3456)?;
        a.mov(dword_ptr(rbx + 0x20), 0x789a_bcdeu32 as i32)?;
        a.mov(rax, 0x0102_0304_0506_0708u64)?;
        a.mov(qword_ptr(rbx + 0x30), rax)?;
        a.xor(eax, eax)?;
        a.mov(al, byte_ptr(rbx + 1))?;
        k.show(a, "byte", rax)?;
        a.movzx(ecx, word_ptr(rbx + 0x12))?;
        k.show(a, "word", rcx)?;
        a.mov(edx, dword_ptr(rbx + 0x24))?;
        k.show(a, "dword", rdx)?;
        a.mov(rsi, qword_ptr(rbx + 0x38))?;
        k.show(a, "qword", rsi)?;
        a.mov(rbx, 0xfebf_f000u64)?;
        a.mov(ecx, dword_ptr(rbx))?;
        k.show(a, "below the apic", rcx)?;
        guest::exit(a, 0)
    })
}

/// Ring 3 through IRETQ and back through an exception: the data segment
/// registers nulled on the way out, #GP and #PF taken in ring 3 with the
/// stack switch from the TSS, user stores and loads.
fn ring3() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        a.mov(rbx, 0x1234u64)?;
        k.user(a, |a| {
            // (Segment selectors and RFLAGS.IF read in ring 3 are the
            // host's on kvm_pvm: not compared here.)
            st.put(a, "user rsp", rsp)?;
            st.put(a, "rbx from ring 0", rbx)?;
            a.mov(qword_ptr(SCRATCH + 0x40), rbx)?;
            a.add(qword_ptr(SCRATCH + 0x40), rbx)?;
            st.mem(a, "user store", SCRATCH + 0x40)?;
            st.flags(a, "user rflags", 0x0cd7)?;
            expect_fault(a, |a| a.hlt())?;
            expect_fault(a, |a| a.mov(rax, cr0))?;
            expect_fault(a, |a| a.cli())?;
            expect_fault(a, |a| a.mov(rax, qword_ptr(0x40_0000u64)))?;
            expect_fault(a, |a| a.mov(qword_ptr(0x40_0010u64), rax))?;
            expect_fault(a, |a| a.lgdt(ptr(SCRATCH)))?;
            a.mov(rcx, 0x1234_5678u64)?;
            a.mov(qword_ptr(SCRATCH + 0x80), rcx)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        a.mov(ax, ss)?;
        k.show(a, "kernel ss after the return", rax)?;
        k.show_mem(a, "exceptions", kit::EXC_COUNT)?;
        guest::exit(a, 0)
    })
}

/// INT n from ring 0, through an absent gate, beyond the IDT limit, and
/// from ring 3 through DPL 0 and DPL 3 gates. (On the nested kvm_pvm
/// /dev/kvm of CI machines the first INT n already ends in an emulation
/// failure: KVM's emulator does not do INT n outside real mode.)
fn int_n() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        print(a, "a software interrupt through a gate, an absent gate\n")?;
        let mut h = a.create_label();
        let mut over = a.create_label();
        a.jmp(over)?;
        a.set_label(&mut h)?;
        a.push(0)?;
        a.push(0x21)?;
        a.jmp(k.common)?;
        a.set_label(&mut over)?;
        kit::set_gate(a, 0x21, h, 0)?;
        expect_fault(a, |a| a.int(0x21))?;
        // Gate 0x22 is all zeros: not present.
        expect_fault(a, |a| a.int(0x22))?;
        let mut h80 = a.create_label();
        let mut over80 = a.create_label();
        a.jmp(over80)?;
        a.set_label(&mut h80)?;
        a.push(0)?;
        a.push(0x80)?;
        a.jmp(k.common)?;
        a.set_label(&mut over80)?;
        kit::set_gate(a, 0x80, h80, 3)?;
        k.user(a, |a| {
            expect_fault(a, |a| a.int(0x80))?;
            expect_fault(a, |a| a.int(0x21))?;
            Ok(())
        })?;
        a.mov(word_ptr(kit::IDTR), 0x30 * 16 - 1)?;
        a.lidt(ptr(kit::IDTR))?;
        expect_fault(a, |a| a.int(0x40))?;
        k.show_mem(a, "exceptions", kit::EXC_COUNT)?;
        guest::exit(a, 0)
    })
}

/// A guest that stays in 32-bit protected mode (paging off): an IDT of
/// 8-byte gates, #DE, #UD, #GP on a bad selector, INT n, string moves.
fn protected_mode_32() -> Result<Vec<u8>, IcedError> {
    // 32-bit code cannot take label addresses RIP-relative: assemble once
    // to learn them, then again with the addresses as immediates (fixed
    // size encodings, so nothing moves).
    let (_, addrs) = pm32_pass(&[0; 9])?;
    let (code, again) = pm32_pass(&addrs)?;
    debug_assert_eq!(addrs, again);
    let mut head = crate::image::multiboot_header().to_vec();
    head.resize(16, 0);
    head.extend(code);
    let segs = [crate::image::Segment {
        paddr: guest::LOAD,
        memsz: head.len() as u64,
        data: head,
    }];
    Ok(crate::image::elf(false, guest::LOAD + 16, &segs))
}

/// One assembly of the 32-bit guest, given the label addresses of the
/// previous pass (4 stubs, then 5 resume points); returns the code and
/// this pass's addresses.
fn pm32_pass(addrs: &[u32; 9]) -> Result<(Vec<u8>, [u32; 9]), IcedError> {
    let idt = 0x30_0000u32;
    let resume_slot = 0x30_1000u32;
    let mut a = CodeAssembler::new(32)?;
    let mut labels: Vec<CodeLabel> = Vec::new();
    let print32 = |a: &mut CodeAssembler, s: &str| -> Result<(), IcedError> {
        a.mov(dx, 0x3f8)?;
        for c in s.bytes() {
            a.mov(al, u32::from(c))?;
            a.out(dx, al)?;
        }
        Ok(())
    };
    a.mov(esp, 0x8_0000)?;
    let mut over = a.create_label();
    let mut hex = a.create_label();
    let mut common = a.create_label();
    a.jmp(over)?;
    // hex: print EAX as 8 digits and a space.
    a.set_label(&mut hex)?;
    for r in [eax, ebx, ecx, edx] {
        a.push(r)?;
    }
    a.mov(ebx, eax)?;
    a.mov(ecx, 8)?;
    a.mov(dx, 0x3f8)?;
    let mut lp = a.create_label();
    let mut dig = a.create_label();
    a.set_label(&mut lp)?;
    a.rol(ebx, 4)?;
    a.mov(al, bl)?;
    a.and(al, 15)?;
    a.add(al, 0x30)?;
    a.cmp(al, 0x39)?;
    a.jbe(dig)?;
    a.add(al, 7)?;
    a.set_label(&mut dig)?;
    a.out(dx, al)?;
    a.dec(ecx)?;
    a.jnz(lp)?;
    a.mov(al, 0x20)?;
    a.out(dx, al)?;
    for r in [edx, ecx, ebx, eax] {
        a.pop(r)?;
    }
    a.ret()?;
    // Stubs for vectors 0, 6, 13 and 0x30, then the common handler:
    // [esp] vector, [esp+4] error code, [esp+8] EIP; resumes at the
    // address in the resume slot.
    let vectors = [0u8, 6, 13, 0x30];
    for v in vectors {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        if v != 13 {
            a.push(0)?;
        }
        a.push(i32::from(v))?;
        a.jmp(common)?;
        labels.push(l);
    }
    a.set_label(&mut common)?;
    // Eight pushes, as PUSHAD would (see the pushad-32 guest).
    for r in [eax, ecx, edx, ebx, esp, ebp, esi, edi] {
        a.push(r)?;
    }
    print32(&mut a, "#")?;
    a.mov(eax, dword_ptr(esp + 32))?;
    a.call(hex)?;
    a.mov(eax, dword_ptr(esp + 36))?;
    a.call(hex)?;
    a.mov(eax, dword_ptr(esp + 40))?;
    a.call(hex)?;
    print32(&mut a, "\n")?;
    // Resume without IRETD (which KVM's emulator cannot do in protected
    // mode): drop vector, error code and the EIP, CS, EFLAGS frame.
    for r in [edi, esi, ebp] {
        a.pop(r)?;
    }
    a.add(esp, 4)?;
    for r in [ebx, edx, ecx, eax] {
        a.pop(r)?;
    }
    a.add(esp, 20)?;
    a.jmp(dword_ptr(resume_slot))?;
    a.set_label(&mut over)?;
    for (i, v) in vectors.iter().enumerate() {
        let at = idt + u32::from(*v) * 8;
        a.mov(eax, addrs[i])?;
        a.mov(word_ptr(at), ax)?;
        a.mov(word_ptr(at + 2), 0x08)?;
        a.mov(word_ptr(at + 4), 0x8e00)?;
        a.shr(eax, 16)?;
        a.mov(word_ptr(at + 6), ax)?;
    }
    a.mov(word_ptr(0x30_1100u32), 0x7ff)?;
    a.mov(dword_ptr(0x30_1102u32), idt)?;
    a.lidt(ptr(0x30_1100u32))?;
    print32(&mut a, "32-bit protected mode\n")?;
    let mut fault = |a: &mut CodeAssembler,
                     body: &dyn Fn(&mut CodeAssembler) -> Result<(), IcedError>|
     -> Result<(), IcedError> {
        let k = labels.len();
        a.mov(esi, addrs[k])?;
        a.mov(dword_ptr(resume_slot), esi)?;
        body(a)?;
        let mut after = a.create_label();
        a.set_label(&mut after)?;
        a.nop()?;
        labels.push(after);
        Ok(())
    };
    a.mov(eax, 7)?;
    a.xor(edx, edx)?;
    a.xor(ecx, ecx)?;
    fault(&mut a, &|a| a.div(ecx))?;
    fault(&mut a, &|a| a.ud2())?;
    a.mov(eax, 0x1234)?;
    fault(&mut a, &|a| a.mov(ds, ax))?;
    // An MMIO read with paging off.
    a.mov(eax, dword_ptr(0xd000_0000u32))?;
    a.call(hex)?;
    // String copy and a checksum in 32-bit code.
    a.mov(esi, 0x10_0000)?;
    a.mov(edi, 0x31_0000)?;
    a.mov(ecx, 64)?;
    a.cld()?;
    a.rep().movsd()?;
    a.mov(esi, 0x31_0000)?;
    a.mov(ecx, 64)?;
    a.xor(ebx, ebx)?;
    let mut sum = a.create_label();
    a.set_label(&mut sum)?;
    a.lodsd()?;
    a.rol(ebx, 5)?;
    a.xor(ebx, eax)?;
    a.dec(ecx)?;
    a.jnz(sum)?;
    a.mov(eax, ebx)?;
    a.call(hex)?;
    a.mov(ax, 0x1234)?;
    a.mov(bx, 0x8765)?;
    a.imul(bx)?;
    a.shl(eax, 16)?;
    a.mov(ax, dx)?;
    a.call(hex)?;
    a.pushfd()?;
    a.pop(eax)?;
    a.and(eax, 0x8d5)?;
    a.call(hex)?;
    print32(&mut a, "\n")?;
    a.mov(dx, 0xf4)?;
    a.xor(eax, eax)?;
    a.out(dx, eax)?;
    a.hlt()?;
    let r = a.assemble_options(
        guest::LOAD + 16,
        BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS,
    )?;
    let mut out = [0u32; 9];
    for (i, l) in labels.iter().enumerate() {
        out[i] = r.label_ip(l)? as u32;
    }
    Ok((r.inner.code_buffer, out))
}

/// Code that rewrites instructions ahead of itself and in a loop body.
fn self_modifying() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        a.xor(r15, r15)?;
        let mut body = a.create_label();
        let mut done = a.create_label();
        a.xor(ebx, ebx)?;
        // mov eax, imm32 whose immediate the loop rewrites.
        a.set_label(&mut body)?;
        a.db(&[0xb8, 0x01, 0x00, 0x00, 0x00])?;
        fold(a, rax)?;
        a.lea(rdi, ptr(body))?;
        a.add(dword_ptr(rdi + 1), 0x1111)?;
        a.inc(ebx)?;
        a.cmp(ebx, 10)?;
        a.jb(body)?;
        k.show(a, "patched loop", r15)?;
        // Replace an upcoming `nop; nop; nop; nop; nop` with `add ecx, 1234h`.
        let mut ahead = a.create_label();
        a.mov(ecx, 1)?;
        a.lea(rdi, ptr(ahead))?;
        a.mov(byte_ptr(rdi), 0x81)?;
        a.mov(byte_ptr(rdi + 1), 0xc1)?;
        a.mov(dword_ptr(rdi + 2), 0x1234)?;
        a.set_label(&mut ahead)?;
        a.db(&[0x90; 6])?;
        k.show(a, "patched ahead", rcx)?;
        // Copy a routine into data memory and call it.
        let mut routine = a.create_label();
        a.jmp(done)?;
        a.set_label(&mut routine)?;
        a.lea(rax, ptr(rdi + rdi * 2 + 5))?;
        a.ret()?;
        a.set_label(&mut done)?;
        a.lea(rsi, ptr(routine))?;
        a.mov(rdi, SCRATCH + 0x800)?;
        a.mov(ecx, 8)?;
        a.rep().movsb()?;
        a.mov(rdi, 7u64)?;
        a.mov(rax, SCRATCH + 0x800)?;
        a.call(rax)?;
        k.show(a, "copied routine", rax)?;
        // Patch the copy and call again.
        a.mov(byte_ptr(SCRATCH + 0x800 + 4), 0x40)?;
        a.mov(rax, SCRATCH + 0x800)?;
        a.call(rax)?;
        k.show(a, "patched copy", rax)?;
        guest::exit(a, 0)
    })
}

/// Bit instructions, LAHF/SAHF, ADC/SBB chains, BMI1/BMI2/ADX, LZCNT,
/// TZCNT, MOVBE, BSWAP, sign and zero extension.
fn bits_and_flags() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            a.xor(r15, r15)?;
            let m = SCRATCH + 0x1000;
            for i in 0..8u64 {
                a.mov(rax, 0x0f1e_2d3c_4b5a_6978u64.rotate_left(i as u32 * 8) ^ i)?;
                a.mov(qword_ptr(m + i * 8), rax)?;
            }
            // BT* with register offsets reaching outside the operand, both signs.
            a.mov(rsi, m + 32)?;
            for off in [-200i64, -1, 0, 5, 63, 64, 130, 255] {
                a.mov(rcx, off as u64)?;
                a.bts(qword_ptr(rsi), rcx)?;
                fold_flags(a, 1)?;
                a.btr(dword_ptr(rsi), ecx)?;
                fold_flags(a, 1)?;
                a.btc(word_ptr(rsi), cx)?;
                fold_flags(a, 1)?;
                a.bt(qword_ptr(rsi), rcx)?;
                fold_flags(a, 1)?;
                a.mov(rdx, qword_ptr(rsi))?;
                a.btc(rdx, rcx)?;
                fold_flags(a, 1)?;
                a.bts(edx, 37)?;
                fold_flags(a, 1)?;
                fold(a, rdx)?;
            }
            for i in 0..8u64 {
                a.mov(rax, qword_ptr(m + i * 8))?;
                fold(a, rax)?;
            }
            st.put(a, "bt*", r15)?;
            // BSF/BSR (non-zero sources), TZCNT/LZCNT (any source).
            for v in [
                1u64,
                0x80,
                0x8000_0000,
                0x0010_0000_0000_0000,
                0xffff_0000_0000_0000,
                0,
            ] {
                a.mov(rbx, v)?;
                if v != 0 {
                    a.bsf(rax, rbx)?;
                    fold_flags(a, 0x40)?;
                    fold(a, rax)?;
                    a.bsr(rax, rbx)?;
                    fold(a, rax)?;
                }
                a.tzcnt(rax, rbx)?;
                fold_flags(a, 0x41)?;
                fold(a, rax)?;
                a.lzcnt(ecx, ebx)?;
                fold_flags(a, 0x41)?;
                fold(a, rcx)?;
                a.lzcnt(cx, bx)?;
                fold_flags(a, 0x41)?;
                fold(a, rcx)?;
            }
            st.put(a, "bsf/bsr/tzcnt/lzcnt", r15)?;
            // LAHF/SAHF, CMC/STC/CLC, ADC/SBB chains over 256-bit numbers.
            a.mov(ah, 0xd5)?;
            a.sahf()?;
            a.lahf()?;
            fold(a, rax)?;
            a.cmc()?;
            a.lahf()?;
            fold(a, rax)?;
            a.stc()?;
            a.mov(rax, -1i64)?;
            a.adc(rax, 0)?;
            fold_flags(a, STATUS)?;
            fold(a, rax)?;
            a.clc()?;
            for i in 0..4u64 {
                a.mov(rax, qword_ptr(m + i * 8))?;
                a.adc(qword_ptr(m + 32 + i * 8), rax)?;
            }
            fold_flags(a, STATUS)?;
            for i in 0..4u64 {
                a.mov(rax, qword_ptr(m + 32 + i * 8))?;
                a.sbb(rax, qword_ptr(m + i * 8 + 8))?;
                a.sbb(eax, 0x7fff_ffff)?;
                a.adc(ax, word_ptr(m + 2))?;
                a.sbb(al, -1)?;
                fold_flags(a, STATUS)?;
                fold(a, rax)?;
            }
            st.put(a, "adc/sbb", r15)?;
            // BMI1, BMI2, ADX.
            a.mov(rbx, 0xf0f0_1234_5678_9abcu64)?;
            a.mov(rcx, 0x0000_0000_0000_0c04u64)?;
            a.andn(rax, rcx, rbx)?;
            fold_flags(a, 0x8c1)?;
            fold(a, rax)?;
            a.bextr(rax, rbx, rcx)?;
            fold_flags(a, 0x841)?;
            fold(a, rax)?;
            a.blsi(eax, ebx)?;
            fold_flags(a, 0x8c1)?;
            fold(a, rax)?;
            a.blsmsk(rax, rbx)?;
            fold_flags(a, 0x8c1)?;
            fold(a, rax)?;
            a.blsr(rax, qword_ptr(m))?;
            fold_flags(a, 0x8c1)?;
            fold(a, rax)?;
            a.bzhi(rax, rbx, rcx)?;
            fold_flags(a, 0x8c1)?;
            fold(a, rax)?;
            a.mov(rdx, 0x1234_5678u64)?;
            a.mulx(r8, r9, rbx)?;
            fold(a, r8)?;
            fold(a, r9)?;
            a.pdep(rax, rbx, rcx)?;
            fold(a, rax)?;
            a.pext(eax, ebx, ecx)?;
            fold(a, rax)?;
            a.rorx(rax, rbx, 13)?;
            fold(a, rax)?;
            a.sarx(rax, rbx, rcx)?;
            fold(a, rax)?;
            a.shlx(eax, ebx, ecx)?;
            fold(a, rax)?;
            a.shrx(rax, qword_ptr(m), rcx)?;
            fold(a, rax)?;
            set_flags(a, 0x801)?;
            a.adcx(rax, rbx)?;
            a.adox(rcx, rbx)?;
            a.adcx(eax, ecx)?;
            a.adox(ecx, dword_ptr(m))?;
            fold_flags(a, STATUS)?;
            fold(a, rax)?;
            fold(a, rcx)?;
            st.put(a, "bmi/adx", r15)?;
            // MOVBE, BSWAP, extensions.
            a.movbe(rax, qword_ptr(m))?;
            fold(a, rax)?;
            a.movbe(word_ptr(m + 8), ax)?;
            a.movbe(ecx, dword_ptr(m + 6))?;
            fold(a, rcx)?;
            a.bswap(rcx)?;
            a.bswap(eax)?;
            fold(a, rax)?;
            fold(a, rcx)?;
            a.movsx(rax, byte_ptr(m + 7))?;
            a.movsx(ecx, ax)?;
            a.movzx(rdx, cx)?;
            a.movsxd(rbx, ecx)?;
            a.cdqe()?;
            a.cwde()?;
            a.cbw()?;
            a.cqo()?;
            for r in [rax, rbx, rcx, rdx] {
                fold(a, r)?;
            }
            st.put(a, "movbe/bswap/ext", r15)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

/// PUSH/POP of every size, ENTER/LEAVE, near CALL/RET with an immediate,
/// far CALL/JMP/RET, PUSHF/POPF.
fn stack_and_far() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        k.user(a, |a| {
            a.mov(rbp, 0x1111u64)?;
            a.push(0x1234_5678)?;
            a.push(-2)?;
            a.db(&[0x66, 0x68, 0x88, 0x77])?; // push word 0x7788
            a.pop(ax)?;
            st.put(a, "pop ax", rax)?;
            a.pop(rax)?;
            st.put(a, "pop rax", rax)?;
            a.pop(qword_ptr(SCRATCH))?;
            st.mem(a, "pop mem", SCRATCH)?;
            a.enter(0x20, 0)?;
            st.put(a, "enter rsp-rbp", rsp)?;
            a.mov(qword_ptr(rbp - 8), rbp)?;
            a.leave()?;
            st.put(a, "leave rbp", rbp)?;
            a.enter(0x10, 2)?;
            a.mov(rax, rsp)?;
            a.sub(rax, rbp)?;
            st.put(a, "enter 0x10,2 rsp-rbp", rax)?;
            a.leave()?;
            // Near call to a routine that returns with `ret 16`.
            let mut f = a.create_label();
            let mut over = a.create_label();
            a.jmp(over)?;
            a.set_label(&mut f)?;
            a.mov(rax, qword_ptr(rsp + 8))?;
            a.ret_1(16)?;
            a.set_label(&mut over)?;
            a.push(0x55)?;
            a.push(0x66)?;
            a.call(f)?;
            st.put(a, "ret 16 rax", rax)?;
            st.put(a, "rsp", rsp)?;
            // Far call through memory and a far return.
            let mut far = a.create_label();
            let mut after = a.create_label();
            a.jmp(after)?;
            a.set_label(&mut far)?;
            // A 32-bit far call pushed CS and EIP as dwords; return with
            // a 32-bit RETF (CB, not REX.W CB).
            a.mov(eax, dword_ptr(rsp + 4))?;
            a.db(&[0xcb])?;
            a.set_label(&mut after)?;
            a.lea(rax, ptr(far))?;
            a.mov(dword_ptr(SCRATCH + 0x10), eax)?;
            a.mov(word_ptr(SCRATCH + 0x14), 0x2b)?;
            a.call(fword_ptr(SCRATCH + 0x10))?;
            st.put(a, "far call cs", rax)?;
            // Far jump to a 32-bit-displacement pointer (m16:32) and back.
            let mut far2 = a.create_label();
            let mut back = a.create_label();
            a.lea(rax, ptr(far2))?;
            a.mov(dword_ptr(SCRATCH + 0x20), eax)?;
            a.mov(word_ptr(SCRATCH + 0x24), 0x2b)?;
            a.jmp(fword_ptr(SCRATCH + 0x20))?;
            a.set_label(&mut far2)?;
            a.mov(r8d, 0x5a5a)?;
            a.jmp(back)?;
            a.set_label(&mut back)?;
            // PUSHF/POPF: AC, DF, and the bits that cannot change.
            a.push(0x0004_0cd7)?;
            a.popfq()?;
            a.pushfq()?;
            a.pop(rax)?;
            // IF as seen by ring 3 is the host's on kvm_pvm.
            a.and(eax, !0x200)?;
            st.put(a, "flags", rax)?;
            a.cld()?;
            a.push(2)?;
            a.popfq()?;
            a.db(&[0x66, 0x9c])?; // pushfw
            a.pop(ax)?;
            a.and(eax, !0x200)?;
            st.put(a, "pushfw", rax)?;
            Ok(())
        })?;
        st.print(a, &k)?;
        guest::exit(a, 0)
    })
}

/// CPUID leaves of softvm's model, which both backends are given.
fn cpuid() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        for (leaf, sub) in [
            (0u32, 0u32),
            (1, 0),
            (7, 0),
            (0x8000_0000, 0),
            (0x8000_0001, 0),
            (0x8000_0002, 0),
            (0x8000_0003, 0),
            (0x8000_0004, 0),
            (0x8000_0008, 0),
        ] {
            a.mov(eax, leaf)?;
            a.mov(ecx, sub)?;
            a.cpuid()?;
            // APIC ID and the initial APIC-related bits in EBX are the
            // vCPU's, not the model's; the rest is compared.
            if leaf == 1 {
                a.and(ebx, 0x00ff_ffff)?;
            }
            // The nested kvm_pvm /dev/kvm of CI machines reports the host's
            // leaf 1 ECX/EDX and leaf 7 whatever KVM_SET_CPUID2 said, so
            // those are not compared.
            if leaf == 1 {
                a.xor(ecx, ecx)?;
                a.xor(edx, edx)?;
            }
            if leaf == 7 {
                a.xor(eax, eax)?;
                a.xor(ebx, ebx)?;
                a.xor(ecx, ecx)?;
                a.xor(edx, edx)?;
            }
            print(a, &format!("{leaf:08x}:"))?;
            for r in [rax, rbx, rcx, rdx] {
                print(a, " ")?;
                k.hex(a, r, 8)?;
            }
            print(a, "\n")?;
        }
        guest::exit(a, 0)
    })
}

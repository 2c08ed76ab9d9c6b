//! Exceptions and their delivery. Guests make the CPU raise #DE, #UD, #BP,
//! #PF (not present, write to read-only with CR0.WP, NX fetch, user access
//! to a supervisor page, and a fault that IRETQ retries after the handler
//! fixed the PTE), #GP (non-canonical, privileged instruction and INT n DPL
//! at CPL 3, segment limits in protected mode), #SS, #NP and #DF; the
//! handlers record vector, error code, CR2 and the frame, the guest prints
//! them and the tests compare. Also: IST stacks, the TSS stack switch from
//! CPL 3, triple faults ending in `Shutdown`, and the same in 32-bit
//! protected mode through a 32-bit IDT (with 32-bit paging).

mod common;

use common::k64::{self, Rip, K64};
use common::*;
use iced_x86::code_asm::*;
use testsuite::{guest, image};

const MAGIC: u64 = 0x5eed_1234_abcd_0042;

/// Print `text` and the record qword at `off` (k64).
fn rec(a: &mut CodeAssembler, k: &K64, text: &str, off: u64) -> AsmResult {
    k64::show(a, k, text, k64::REC + off)
}

#[test]
fn long_mode_exceptions() {
    use k64::*;
    let mut s = Setup::new();
    s.pt.map_4k(TEST, TEST, 0); // not present
    s.pt.map_4k(TEST + 0x1000, TEST + 0x1000, P); // read-only
    s.pt.map_4k(TEST + 0x2000, TEST + 0x2000, P | RW | NX);
    s.pt.map_4k(TEST + 0x3000, TEST + 0x3000, 0); // made present by the handler
    s.pt.map_4k(TEST + 0x8000, TEST + 0x8000, P | RW | (1 << 51)); // reserved bit
                                                                   // TEST+0x9000 maps TEST+0xa000 until the guest points it at +0xb000.
    s.pt.map_4k(TEST + 0x9000, TEST + 0xa000, P | RW);
    let remap_pte = s.pt.pte_addr(TEST + 0x9000);
    s.extra
        .push((TEST + 0xa000, 0xaaaau64.to_le_bytes().to_vec()));
    s.extra
        .push((TEST + 0xb000, 0xbbbbu64.to_le_bytes().to_vec()));
    let poke_pte = s.pt.pte_addr(TEST + 0x3000);
    s.extra.push((TEST + 0x3000, MAGIC.to_le_bytes().to_vec()));
    s.extra.push((TEST + 0x2000, vec![0xc3]));

    // User code: each entry faults at once (or returns with SYSCALL 0).
    let (user, e) = user_code(|a| {
        let mut entries = Vec::new();
        let snippets: [&dyn Fn(&mut CodeAssembler) -> AsmResult; 8] = [
            &|a| a.mov(qword_ptr(TEST + 0x5000), rax), // supervisor page
            &|a| a.hlt(),
            &|a| a.mov(rax, cr0),
            &|a| a.int3(),
            &|a| a.int(0x0d),
            &|a| a.int3(),
            &|a| a.int1(),
            &|a| a.sgdt(ptr(USER_DATA)),
        ];
        for f in snippets {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            f(a)?;
            a.xor(eax, eax)?;
            a.syscall()?;
            entries.push(l);
        }
        Ok(entries)
    });
    s.extra.push(user);

    let img = guest::long_mode(|a| {
        let k = install(a)?;
        let mut stub40 = a.create_label();
        let mut over = a.create_label();
        a.jmp(over)?;
        a.set_label(&mut stub40)?;
        a.push(-1)?;
        a.push(0x40)?;
        a.jmp(k.common)?;
        a.set_label(&mut over)?;
        k64::set_gate(a, 0x40, stub40, 2, 0x8e)?;
        // A valid gate type with P=0 (vector 0x42); 0x43 stays all zero.
        k64::set_gate(a, 0x42, stub40, 0, 0x0e)?;

        // #DE, #UD are faults (RIP at the instruction), #BP a trap.
        a.mov(eax, 1)?;
        a.xor(edx, edx)?;
        a.xor(ecx, ecx)?;
        check(a, &k, "de", Rip::Fault, false, |a| a.div(ecx))?;
        check(a, &k, "ud", Rip::Fault, false, |a| a.ud2())?;
        check(a, &k, "bp", Rip::After, false, |a| a.int3())?;

        // Page faults: error code bits P(0) W(1) U(2) I/D(4), CR2.
        check(a, &k, "pf-read-np", Rip::Fault, false, |a| {
            a.mov(rax, qword_ptr(TEST))
        })?;
        a.mov(ecx, 0x77)?;
        check(a, &k, "pf-write-np", Rip::Fault, false, |a| {
            a.mov(qword_ptr(TEST + 8), rcx)
        })?;
        check(a, &k, "pf-write-ro", Rip::Fault, false, |a| {
            a.mov(qword_ptr(TEST + 0x1010), rcx)
        })?;
        // With CR0.WP=0 the supervisor may write read-only pages.
        a.mov(rax, cr0)?;
        a.btr(rax, 16)?;
        a.mov(cr0, rax)?;
        check(a, &k, "ro-write-wp0", Rip::Skip, false, |a| {
            a.mov(qword_ptr(TEST + 0x1010), rcx)
        })?;
        a.mov(rax, cr0)?;
        a.bts(rax, 16)?;
        a.mov(cr0, rax)?;
        rec(a, &k, "  val=", TEST + 0x1010 - REC)?;
        print(a, "\n")?;
        a.mov(ecx, (TEST + 0x2000) as u32)?;
        check(a, &k, "pf-fetch-nx", Rip::Skip, false, |a| a.jmp(rcx))?;
        rec(a, &k, "  rip=", RIP)?;
        print(a, "\n")?;
        // The handler makes the page present; IRETQ retries the load.
        a.mov(rax, poke_pte)?;
        a.mov(qword_ptr(REC + POKE_ADDR), rax)?;
        a.mov(rax, (TEST + 0x3000) | P | RW)?;
        a.mov(qword_ptr(REC + POKE_VAL), rax)?;
        a.xor(ecx, ecx)?;
        check(a, &k, "pf-retry", Rip::Fault, true, |a| {
            a.mov(rcx, qword_ptr(TEST + 0x3000))
        })?;
        a.mov(rax, rcx)?;
        show_rax(a, &k, "  val=")?;
        print(a, "\n")?;

        // A reserved bit in a PTE (MAXPHYADDR is 48): RSVD=1 in the error code.
        check(a, &k, "pf-rsvd", Rip::Fault, false, |a| {
            a.mov(rax, qword_ptr(TEST + 0x8000))
        })?;

        // INTO is invalid in 64-bit mode; an unknown MSR is #GP(0).
        check(a, &k, "into-64", Rip::Fault, false, |a| a.db(&[0xce]))?;
        a.mov(ecx, 0x1234_5678)?;
        check(a, &k, "rdmsr-unknown", Rip::Fault, false, |a| a.rdmsr())?;
        // INVLPG after changing a PTE: the new translation is used.
        print(a, "invlpg a=")?;
        a.mov(rax, qword_ptr(TEST + 0x9000))?;
        a.call(k.hex)?;
        a.mov(rax, (TEST + 0xb000) | P | RW)?;
        a.mov(qword_ptr(remap_pte), rax)?;
        a.invlpg(ptr(TEST + 0x9000))?;
        print(a, " b=")?;
        a.mov(rax, qword_ptr(TEST + 0x9000))?;
        a.call(k.hex)?;
        print(a, "\n")?;

        // #GP and #SS for non-canonical addresses (by segment).
        a.mov(rcx, 0x0000_8000_0000_0000u64)?;
        a.mov(rbp, rcx)?;
        check(a, &k, "gp-noncanon", Rip::Fault, false, |a| {
            a.mov(rax, qword_ptr(rcx))
        })?;
        check(a, &k, "ss-noncanon", Rip::Fault, false, |a| {
            a.mov(rax, qword_ptr(rbp))
        })?;
        a.xor(ebp, ebp)?;
        // #NP: a not-present IDT gate (error code: IDT bit, vector), and a
        // not-present data segment (its selector).
        check(a, &k, "np-gate", Rip::Fault, false, |a| a.int(0x42))?;
        check(a, &k, "gp-bad-gate", Rip::Fault, false, |a| a.int(0x43))?;
        // A gate whose target is not canonical: #GP(0) at the INT.
        a.mov(rax, (u64::from(KCODE) << 16) | (0x8e << 40))?;
        a.mov(qword_ptr(IDT + 0x44 * 16), rax)?;
        a.mov(qword_ptr(IDT + 0x44 * 16 + 8), 0x8000)?;
        check(a, &k, "gp-gate-noncanon", Rip::Fault, false, |a| {
            a.int(0x44)
        })?;
        a.mov(ecx, u32::from(NP_DATA))?;
        check(a, &k, "np-seg", Rip::Fault, false, |a| a.mov(ds, cx))?;

        // #PF while the #PF gate is not present: #NP during delivery of a
        // page fault is a double fault (error code 0), on IST1.
        a.and(byte_ptr(IDT + 14 * 16 + 5), 0x7f)?;
        check(a, &k, "df", Rip::Skip, false, |a| {
            a.mov(rax, qword_ptr(TEST))
        })?;
        a.or(byte_ptr(IDT + 14 * 16 + 5), 0x80u32 as i32)?;
        rec(a, &k, "  frame=", FRAME)?;
        print(a, "\n")?;

        // IST2: the frame is at the IST top each time, and holds the old RSP.
        for name in ["ist2", "ist2-again"] {
            a.mov(qword_ptr(SCRATCH), rsp)?;
            check(a, &k, name, Rip::After, false, |a| a.int(0x40))?;
            rec(a, &k, "  frame=", FRAME)?;
            a.mov(rax, qword_ptr(REC + RSP))?;
            a.sub(rax, qword_ptr(SCRATCH))?;
            show_rax(a, &k, " rsp-delta=")?;
            print(a, "\n")?;
        }

        // Far returns and jumps to a non-canonical RIP fault at the
        // instruction (#GP(0)), before anything changes.
        a.mov(rcx, 0x0000_8000_0000_0000u64)?;
        a.mov(rdx, rsp)?;
        a.push(KDATA as i32)?;
        a.push(rdx)?;
        a.pushfq()?;
        a.push(KCODE as i32)?;
        a.push(rcx)?;
        check(a, &k, "iretq-noncanon", Rip::Fault, false, |a| a.iretq())?;
        a.add(rsp, 40)?;
        a.push(KCODE as i32)?;
        a.push(rcx)?;
        check(a, &k, "retfq-noncanon", Rip::Fault, false, |a| a.retf())?;
        a.add(rsp, 16)?;
        a.mov(qword_ptr(SCRATCH), rcx)?;
        a.mov(word_ptr(SCRATCH + 8), KCODE as i32)?;
        a.mov(ecx, SCRATCH as u32)?;
        check(a, &k, "jmp-far-noncanon", Rip::Fault, false, |a| {
            a.jmp(tword_ptr(rcx))
        })?;
        // LTR of the (now busy) TSS.
        a.mov(ecx, u32::from(TSS_SEL))?;
        check(a, &k, "ltr-busy", Rip::Fault, false, |a| a.ltr(cx))?;

        // A #PF while pushing the frame of #BP (INT3) or #UD is delivered
        // as #PF, whose own push faults again: #DF, on the IST1 stack.
        for (name, int3) in [("df-stack-int3", true), ("df-stack-ud2", false)] {
            let mut resume = a.create_label();
            a.mov(qword_ptr(SCRATCH + 8), rsp)?;
            a.call(k.clear)?;
            a.lea(rax, ptr(resume))?;
            a.mov(qword_ptr(REC + FIXUP), rax)?;
            a.mov(rsp, TEST + 0x1000)?;
            if int3 {
                a.int3()?;
            } else {
                a.ud2()?;
            }
            a.set_label(&mut resume)?;
            a.mov(rsp, qword_ptr(SCRATCH + 8))?;
            print(a, name)?;
            print(a, ": ")?;
            a.xor(ebx, ebx)?;
            a.call(k.report)?;
            rec(a, &k, "  cr2=", CR2)?;
            print(a, "\n")?;
        }

        // From CPL 3: stack switch to TSS.RSP0, user CS/SS/RSP in the frame.
        user_check(a, &k, "user-write-sup", e[0], 2, e[0])?;
        rec(a, &k, "  frame=", FRAME)?;
        rec(a, &k, " ss=", SS)?;
        rec(a, &k, " rsp=", RSP)?;
        print(a, "\n")?;
        user_check(a, &k, "user-hlt", e[1], 2, e[1])?;
        user_check(a, &k, "user-mov-cr0", e[2], 2, e[2])?;
        // INT3 / INT n to a DPL 0 gate: #GP(vector*8+2) at the instruction.
        user_check(a, &k, "user-int3-dpl0", e[3], 2, e[3])?;
        user_check(a, &k, "user-int0d-dpl0", e[4], 2, e[4])?;
        // With a DPL 3 gate INT3 is delivered as #BP (a trap).
        a.mov(byte_ptr(IDT + 3 * 16 + 5), 0xee)?;
        user_check(a, &k, "user-int3-dpl3", e[5], 2, e[5] + 1)?;
        // INT1 (ICEBP) is not checked against the gate DPL: #DB, a trap.
        user_check(a, &k, "user-int1", e[6], 2, e[6] + 1)?;
        // SGDT at CPL 3 works, unless CR4.UMIP is set.
        user_check(a, &k, "user-sgdt", e[7], 2, 0)?;
        a.mov(rax, cr4)?;
        a.bts(rax, 11)?;
        a.mov(cr4, rax)?;
        user_check(a, &k, "user-sgdt-umip", e[7], 2, e[7])?;
        exit(a, 0x5a)
    })
    .unwrap();

    let out = run_image(&img, &s.blobs());
    eprintln!(
        "long-mode exceptions: {} instructions in {:?}",
        out.instructions, out.elapsed
    );
    out.assert(
        "de: v=0 e=- cs=8 rip=ok n=1\n\
         ud: v=6 e=- cs=8 rip=ok n=1\n\
         bp: v=3 e=- cs=8 rip=ok n=1\n\
         pf-read-np: v=e e=0 cr2=400000 cs=8 rip=ok n=1\n\
         pf-write-np: v=e e=2 cr2=400008 cs=8 rip=ok n=1\n\
         pf-write-ro: v=e e=3 cr2=401010 cs=8 rip=ok n=1\n\
         ro-write-wp0: v=ff e=0 cs=0 n=0\n  val=77\n\
         pf-fetch-nx: v=e e=11 cr2=402000 cs=8 n=1\n  rip=402000\n\
         pf-retry: v=e e=0 cr2=403000 cs=8 rip=ok n=1\n  val=5eed1234abcd0042\n\
         pf-rsvd: v=e e=9 cr2=408000 cs=8 rip=ok n=1\n\
         into-64: v=6 e=- cs=8 rip=ok n=1\n\
         rdmsr-unknown: v=d e=0 cs=8 rip=ok n=1\n\
         invlpg a=aaaa b=bbbb\n\
         gp-noncanon: v=d e=0 cs=8 rip=ok n=1\n\
         ss-noncanon: v=c e=0 cs=8 rip=ok n=1\n\
         np-gate: v=b e=212 cs=8 rip=ok n=1\n\
         gp-bad-gate: v=d e=21a cs=8 rip=ok n=1\n\
         gp-gate-noncanon: v=d e=0 cs=8 rip=ok n=1\n\
         np-seg: v=b e=50 cs=8 rip=ok n=1\n\
         df: v=8 e=0 cs=8 n=1\n  frame=33ffd8\n\
         ist2: v=40 e=- cs=8 rip=ok n=1\n  frame=347fd8 rsp-delta=0\n\
         ist2-again: v=40 e=- cs=8 rip=ok n=1\n  frame=347fd8 rsp-delta=0\n\
         iretq-noncanon: v=d e=0 cs=8 rip=ok n=1\n\
         retfq-noncanon: v=d e=0 cs=8 rip=ok n=1\n\
         jmp-far-noncanon: v=d e=0 cs=8 rip=ok n=1\n\
         ltr-busy: v=d e=40 cs=8 rip=ok n=1\n\
         df-stack-int3: v=8 e=0 cs=8 n=1\n  cr2=400ff8\n\
         df-stack-ud2: v=8 e=0 cs=8 n=1\n  cr2=400ff8\n\
         user-write-sup: v=e e=7 cr2=405000 cs=2b rip=ok n=1\n  frame=32ffd8 ss=23 rsp=700000\n\
         user-hlt: v=d e=0 cs=2b rip=ok n=1\n\
         user-mov-cr0: v=d e=0 cs=2b rip=ok n=1\n\
         user-int3-dpl0: v=d e=1a cs=2b rip=ok n=1\n\
         user-int0d-dpl0: v=d e=6a cs=2b rip=ok n=1\n\
         user-int3-dpl3: v=3 e=- cs=2b rip=ok n=1\n\
         user-int1: v=1 e=- cs=2b rip=ok n=1\n\
         user-sgdt: v=ff e=0 cs=0 n=0\n\
         user-sgdt-umip: v=d e=0 cs=2b rip=ok n=1\n",
        0x5a,
    );
}

/// UD2 with an IDT limit of 0: #UD cannot be delivered (#GP), nor can the
/// #GP, which makes a #DF that cannot be delivered either: shutdown.
#[test]
fn triple_fault_ends_in_shutdown() {
    let img = guest::long_mode(|a| {
        print(a, "before\n")?;
        a.mov(word_ptr(guest::DATA), 0)?;
        a.mov(qword_ptr(guest::DATA + 2), 0)?;
        a.lidt(ptr(guest::DATA))?;
        a.ud2()?;
        print(a, "after\n")?;
        exit(a, 1)
    })
    .unwrap();
    let out = run_image(&img, &[]);
    assert_eq!(
        (out.serial.as_str(), &out.end),
        ("before\n", &End::Shutdown)
    );
}

/// A page fault with both the #PF and the #DF gates not present: #NP while
/// delivering #PF is a double fault, and #NP while delivering #DF shuts the
/// processor down.
#[test]
fn double_fault_without_handler_ends_in_shutdown() {
    use k64::*;
    let mut s = Setup::new();
    s.pt.map_4k(TEST, TEST, 0);
    let img = guest::long_mode(|a| {
        let k = install(a)?;
        // A working #PF handler first, to show the guest is otherwise fine.
        check(a, &k, "pf", Rip::Fault, false, |a| {
            a.mov(rax, qword_ptr(TEST))
        })?;
        a.and(byte_ptr(IDT + 14 * 16 + 5), 0x7f)?;
        a.and(byte_ptr(IDT + 8 * 16 + 5), 0x7f)?;
        a.mov(rax, qword_ptr(TEST))?;
        print(a, "after\n")?;
        exit(a, 1)
    })
    .unwrap();
    let out = run_image(&img, &s.blobs());
    assert_eq!(
        (out.serial.as_str(), &out.end),
        ("pf: v=e e=0 cr2=400000 cs=8 rip=ok n=1\n", &End::Shutdown)
    );
}

// ---------------------------------------------------------------------
// 32-bit protected mode: a small kernel with a 32-bit IDT and TSS.

mod pm32 {
    pub const LOAD: u64 = 0x10_0000;
    pub const GDT: u64 = 0x11_0000;
    pub const GDTR: u64 = GDT + 0x100;
    pub const IDTR: u64 = GDT + 0x110;
    pub const IDT: u64 = 0x11_1000;
    pub const TSS: u64 = 0x11_2000;
    pub const PD: u64 = 0x12_0000;
    pub const PT: u64 = 0x12_1000;
    pub const REC: u64 = 0x13_0000;
    pub const KSTACK: u32 = 0x19_0000;
    pub const ESP0: u32 = 0x1a_0000;
    /// 4 MiB user page: code, then the stack at its middle.
    pub const USER: u64 = 0x80_0000;
    pub const USER_STACK: u32 = 0x90_0000;
    /// 4 KiB pages at 4 MiB: +0 not present, +0x1000 read-only.
    pub const TEST: u32 = 0x40_0000;
    // Record offsets (dwords).
    pub const VEC: u32 = 0;
    pub const ERR: u32 = 4;
    pub const CR2: u32 = 8;
    pub const EIP: u32 = 12;
    pub const CS: u32 = 16;
    pub const FRAME: u32 = 32;
    pub const COUNT: u32 = 36;
    pub const FIXUP: u32 = 40;
    pub const RETK: u32 = 44;
    pub const KSAVE: u32 = 48;
    /// INT 0x80: count, frame address, CS and SS of the frame, then the
    /// EAX of each call.
    pub const I80_N: u32 = 0x40;
    pub const I80_FRAME: u32 = 0x44;
    pub const I80_CS: u32 = 0x48;
    pub const I80_SS: u32 = 0x4c;
    pub const I80_EAX: u32 = 0x50;

    pub const KCODE: u16 = 0x08;
    pub const KDATA: u16 = 0x10;
    /// Base 0x500000, limit 0xfff.
    pub const SMALL: u16 = 0x18;
    pub const UCODE: u16 = 0x23;
    pub const UDATA: u16 = 0x2b;
    pub const TSS_SEL: u16 = 0x30;
    pub const NP_DATA: u16 = 0x38;
    /// Expand-down, limit 0xfff: offsets 0x1000..=0xffffffff are valid.
    pub const DOWN: u16 = 0x40;
    /// The LDT descriptor; the LDT has a data segment at index 1 (base
    /// 0x500000).
    pub const LDT_SEL: u16 = 0x48;
    pub const LDT: u64 = 0x11_4000;
    pub const LDT_DATA: u16 = 0x0c;
    /// A code segment with limit 0xfff.
    pub const SMALL_CODE: u16 = 0x50;
}

fn pm32_tables() -> Vec<(u64, Vec<u8>)> {
    use pm32::*;
    let gdt = [
        0,
        desc(0, 0xf_ffff, 0x9a, 0xc),
        desc(0, 0xf_ffff, 0x92, 0xc),
        desc(0x50_0000, 0xfff, 0x92, 0x4),
        desc(0, 0xf_ffff, 0xfa, 0xc),
        desc(0, 0xf_ffff, 0xf2, 0xc),
        desc(TSS as u32, 0x67, 0x89, 0),
        desc(0, 0xf_ffff, 0x12, 0xc),
        desc(0, 0xfff, 0x96, 0x4),
        desc(LDT as u32, 0x17, 0x82, 0),
        desc(0, 0xfff, 0x9a, 0x4),
    ];
    let mut g = qwords(&gdt);
    g.resize(0x100, 0);
    let mut p = pseudo((gdt.len() * 8 - 1) as u16, GDT);
    p.resize(16, 0);
    g.extend(p);
    g.extend(pseudo(0x7ff, IDT));
    let mut tss = vec![0u8; 0x68];
    tss[4..8].copy_from_slice(&ESP0.to_le_bytes());
    tss[8..10].copy_from_slice(&KDATA.to_le_bytes());
    tss[0x66..0x68].copy_from_slice(&0x68u16.to_le_bytes());
    // 32-bit paging: 4 MiB pages (PSE), supervisor, except the user page
    // and a page table for [4 MiB, 8 MiB).
    let mut pd = vec![0u32; 1024];
    for (i, e) in pd.iter_mut().enumerate().take(16) {
        *e = ((i as u32) << 22) | 0x83;
    }
    pd[1] = PT as u32 | 0x7;
    pd[2] = USER as u32 | 0x87;
    let mut pt = vec![0u32; 1024];
    for (i, e) in pt.iter_mut().enumerate() {
        *e = (TEST + ((i as u32) << 12)) | 0x3;
    }
    pt[0] = 0;
    pt[1] = (TEST + 0x1000) | 0x1;
    let dw = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let ldt = qwords(&[0, desc(0x50_0000, 0xfff, 0x92, 0x4), 0]);
    vec![
        (GDT, g),
        (TSS, tss),
        (PD, dw(&pd)),
        (PT, dw(&pt)),
        (LDT, ldt),
        (0x50_0000, 0xfeed_5eedu32.to_le_bytes().to_vec()),
    ]
}

/// A multiboot image whose 32-bit entry (at LOAD+16) is `code`.
fn multiboot(code: Vec<u8>) -> Vec<u8> {
    let mut head = image::multiboot_header().to_vec();
    head.resize(16, 0);
    head.extend(code);
    image::elf(
        false,
        pm32::LOAD + 16,
        &[image::Segment {
            paddr: pm32::LOAD,
            memsz: head.len() as u64,
            data: head,
        }],
    )
}

#[test]
fn protected_mode_32bit_exceptions() {
    use pm32::*;
    // User code: INT 0x80 twice (first with EAX = DS as IRETD left it),
    // then HLT (#GP); a second entry reads a supervisor page.
    let ((ucode_at, ucode), ue) = chunk_labels(32, USER, USER, |a| {
        let mut u0 = a.create_label();
        let mut u_hlt = a.create_label();
        let mut u1_entry = a.create_label();
        let mut u1 = a.create_label();
        let mut u_retf = a.create_label();
        let mut u_retf_hlt = a.create_label();
        a.set_label(&mut u0)?;
        a.mov(eax, ds)?;
        a.int(0x80)?;
        a.mov(ax, UDATA as i32)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(eax, 0x1234)?;
        a.int(0x80)?;
        a.set_label(&mut u_hlt)?;
        a.hlt()?;
        a.set_label(&mut u1_entry)?;
        a.mov(ax, UDATA as i32)?;
        a.mov(ds, ax)?;
        a.set_label(&mut u1)?;
        a.mov(eax, dword_ptr(0x10_0000))?;
        a.hlt()?;
        a.set_label(&mut u_retf)?;
        a.mov(eax, ds)?;
        a.int(0x80)?;
        a.set_label(&mut u_retf_hlt)?;
        a.hlt()?;
        Ok(vec![u0, u_hlt, u1, u1_entry, u_retf, u_retf_hlt])
    });

    let ((_, code), _) = chunk_refs(32, LOAD + 16, LOAD + 16, |a, r| {
        let rec = |off: u32| u64::from(REC as u32 + off);
        let mut over = a.create_label();
        a.cli()?;
        a.mov(esp, KSTACK)?;
        a.jmp(over)?;
        let hex = puthex32(a)?;

        // Stubs and the common handler.
        let stubs: Vec<usize> = (0..32).map(|_| r.declare()).collect();
        let mut common = a.create_label();
        for (v, id) in stubs.iter().enumerate() {
            r.place(a, *id)?;
            if !matches!(v, 8 | 10..=14 | 17) {
                a.push(-1)?;
            }
            a.push(v as i32)?;
            a.jmp(common)?;
        }
        let mut nofix = a.create_label();
        let mut plain = a.create_label();
        let mut retk = a.create_label();
        a.set_label(&mut common)?;
        a.push(eax)?;
        a.push(ebx)?;
        a.mov(ebx, REC as u32)?;
        for (slot, off) in [(8, VEC), (12, ERR), (16, EIP), (20, CS)] {
            a.mov(eax, dword_ptr(esp + slot))?;
            a.mov(dword_ptr(ebx + off).ss(), eax)?;
        }
        a.mov(eax, cr2)?;
        a.mov(dword_ptr(ebx + CR2).ss(), eax)?;
        a.lea(eax, dword_ptr(esp + 16))?;
        a.mov(dword_ptr(ebx + FRAME).ss(), eax)?;
        a.inc(dword_ptr(ebx + COUNT).ss())?;
        a.mov(eax, dword_ptr(ebx + FIXUP).ss())?;
        a.test(eax, eax)?;
        a.jz(nofix)?;
        a.mov(dword_ptr(esp + 16), eax)?;
        a.mov(dword_ptr(ebx + FIXUP).ss(), 0)?;
        a.jmp(plain)?;
        a.set_label(&mut nofix)?;
        a.cmp(dword_ptr(ebx + RETK).ss(), 0)?;
        a.jne(retk)?;
        a.set_label(&mut plain)?;
        a.pop(ebx)?;
        a.pop(eax)?;
        a.add(esp, 8)?;
        a.iretd()?;
        a.set_label(&mut retk)?;
        a.mov(dword_ptr(ebx + RETK).ss(), 0)?;
        a.mov(esp, dword_ptr(ebx + KSAVE).ss())?;
        a.mov(ax, KDATA as i32)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.ret()?;

        // INT 0x80 (DPL 3): record the frame, IRETD back. The user's DS
        // may be null, so the stores go through SS (the kernel's).
        let h80 = r.declare();
        r.place(a, h80)?;
        a.mov(ebx, dword_ptr(rec(I80_N)).ss())?;
        a.mov(dword_ptr(ebx * 4 + rec(I80_EAX) as i32).ss(), eax)?;
        a.inc(dword_ptr(rec(I80_N)).ss())?;
        a.mov(dword_ptr(rec(I80_FRAME)).ss(), esp)?;
        a.mov(eax, dword_ptr(esp + 4))?;
        a.mov(dword_ptr(rec(I80_CS)).ss(), eax)?;
        a.mov(eax, dword_ptr(esp + 16))?;
        a.mov(dword_ptr(rec(I80_SS)).ss(), eax)?;
        a.iretd()?;

        // clear, report (EBX: expected EIP or 0), call_user (EDI, ESI).
        let mut clear = a.create_label();
        a.set_label(&mut clear)?;
        a.mov(dword_ptr(rec(VEC)), 0xff)?;
        for off in [ERR, CR2, EIP, CS, COUNT] {
            a.mov(dword_ptr(rec(off)), 0)?;
        }
        a.ret()?;
        let mut report = a.create_label();
        let mut e_hex = a.create_label();
        let mut e_done = a.create_label();
        let mut no_cr2 = a.create_label();
        let mut no_rip = a.create_label();
        let mut rip_bad = a.create_label();
        a.set_label(&mut report)?;
        print(a, "v=")?;
        a.mov(eax, dword_ptr(rec(VEC)))?;
        a.call(hex)?;
        print(a, " e=")?;
        a.mov(eax, dword_ptr(rec(ERR)))?;
        a.cmp(eax, -1)?;
        a.jne(e_hex)?;
        print(a, "-")?;
        a.jmp(e_done)?;
        a.set_label(&mut e_hex)?;
        a.call(hex)?;
        a.set_label(&mut e_done)?;
        a.cmp(dword_ptr(rec(VEC)), 14)?;
        a.jne(no_cr2)?;
        print(a, " cr2=")?;
        a.mov(eax, dword_ptr(rec(CR2)))?;
        a.call(hex)?;
        a.set_label(&mut no_cr2)?;
        print(a, " cs=")?;
        a.mov(eax, dword_ptr(rec(CS)))?;
        a.call(hex)?;
        a.test(ebx, ebx)?;
        a.jz(no_rip)?;
        print(a, " eip=")?;
        a.cmp(ebx, dword_ptr(rec(EIP)))?;
        a.jne(rip_bad)?;
        print(a, "ok")?;
        a.jmp(no_rip)?;
        a.set_label(&mut rip_bad)?;
        a.mov(eax, dword_ptr(rec(EIP)))?;
        a.call(hex)?;
        a.set_label(&mut no_rip)?;
        print(a, " n=")?;
        a.mov(eax, dword_ptr(rec(COUNT)))?;
        a.call(hex)?;
        print(a, "\n")?;
        a.ret()?;
        let mut call_user = a.create_label();
        a.set_label(&mut call_user)?;
        a.mov(dword_ptr(rec(KSAVE)), esp)?;
        a.mov(dword_ptr(rec(RETK)), 1)?;
        a.push(UDATA as i32)?;
        a.push(esi)?;
        a.push(2)?;
        a.push(UCODE as i32)?;
        a.push(edi)?;
        a.iretd()?;
        // The same with a far return to the outer privilege level.
        let mut call_user_retf = a.create_label();
        a.set_label(&mut call_user_retf)?;
        a.mov(dword_ptr(rec(KSAVE)), esp)?;
        a.mov(dword_ptr(rec(RETK)), 1)?;
        a.push(UDATA as i32)?;
        a.push(esi)?;
        a.push(UCODE as i32)?;
        a.push(edi)?;
        a.retf()?;

        // Set-up: GDT, segments, TR, IDT (32 exceptions + INT 0x80).
        a.set_label(&mut over)?;
        a.lgdt(ptr(GDTR))?;
        jmp_far32_label(a, r)?;
        a.mov(ax, KDATA as i32)?;
        for s in [ds, es, ss, fs, gs] {
            a.mov(s, ax)?;
        }
        a.mov(ax, TSS_SEL as i32)?;
        a.ltr(ax)?;
        let gate = |a: &mut CodeAssembler, v: u32, target: u32, attr: u32| -> AsmResult {
            let at = IDT + 8 * u64::from(v);
            a.mov(
                dword_ptr(at),
                ((u32::from(KCODE)) << 16) | (target & 0xffff),
            )?;
            a.mov(dword_ptr(at + 4), (target & 0xffff_0000) | (attr << 8))
        };
        for (v, id) in stubs.iter().enumerate() {
            gate(a, v as u32, r.addr(*id), 0x8e)?;
        }
        gate(a, 0x80, r.addr(h80), 0xee)?;
        a.lidt(ptr(IDTR))?;

        // A check: fixup after the body, EBX = expected EIP.
        let check = |a: &mut CodeAssembler,
                     r: &mut Refs,
                     name: &str,
                     rip: Rip,
                     body: &dyn Fn(&mut CodeAssembler) -> AsmResult|
         -> AsmResult {
            let at = r.declare();
            let after = r.declare();
            let resume = r.declare();
            a.call(clear)?;
            a.mov(dword_ptr(rec(FIXUP)), r.addr(resume))?;
            r.place(a, at)?;
            body(a)?;
            r.place(a, after)?;
            a.nop()?;
            r.place(a, resume)?;
            a.mov(dword_ptr(rec(FIXUP)), 0)?;
            print(a, name)?;
            print(a, ": ")?;
            match rip {
                Rip::Fault => a.mov(ebx, r.addr(at))?,
                Rip::After => a.mov(ebx, r.addr(after))?,
                Rip::Skip => a.xor(ebx, ebx)?,
            }
            a.call(report)
        };
        a.mov(eax, 1)?;
        a.xor(edx, edx)?;
        a.xor(ecx, ecx)?;
        check(a, r, "de", Rip::Fault, &|a| a.div(ecx))?;
        check(a, r, "ud", Rip::Fault, &|a| a.ud2())?;
        check(a, r, "bp", Rip::After, &|a| a.int3())?;
        // INTO: #OF (a trap) only when OF=1.
        a.mov(al, 0x7f)?;
        a.add(al, 1)?;
        check(a, r, "into", Rip::After, &|a| a.into())?;
        a.xor(eax, eax)?;
        check(a, r, "into-no-of", Rip::Skip, &|a| a.into())?;
        // Segment limits and types.
        a.mov(cx, SMALL as u32)?;
        a.mov(es, cx)?;
        check(a, r, "gp-limit", Rip::Fault, &|a| {
            a.mov(eax, dword_ptr(0x1000).es())
        })?;
        check(a, r, "gp-limit-straddle", Rip::Fault, &|a| {
            a.mov(eax, dword_ptr(0xffe).es())
        })?;
        check(a, r, "limit-ok", Rip::Fault, &|a| {
            a.mov(eax, dword_ptr(0xffc).es())
        })?;
        a.mov(cx, DOWN as u32)?;
        a.mov(es, cx)?;
        check(a, r, "gp-expand-down", Rip::Fault, &|a| {
            a.mov(eax, dword_ptr(0x800).es())
        })?;
        check(a, r, "expand-down-ok", Rip::Fault, &|a| {
            a.mov(eax, dword_ptr(0x2000).es())
        })?;
        check(a, r, "gp-write-cs", Rip::Fault, &|a| {
            a.mov(dword_ptr(0x2000).cs(), eax)
        })?;
        a.mov(cx, NP_DATA as u32)?;
        check(a, r, "np-seg", Rip::Fault, &|a| a.mov(es, cx))?;
        // Segment-register loads: SS must be a writable DPL=CPL data
        // segment with RPL=CPL; no system descriptors; within the GDT.
        a.mov(cx, UDATA as u32)?;
        check(a, r, "gp-ss-rpl3", Rip::Fault, &|a| a.mov(ss, cx))?;
        a.xor(ecx, ecx)?;
        check(a, r, "gp-ss-null", Rip::Fault, &|a| a.mov(ss, cx))?;
        a.mov(cx, TSS_SEL as u32)?;
        check(a, r, "gp-ds-tss", Rip::Fault, &|a| a.mov(ds, cx))?;
        a.mov(cx, 0x80)?;
        check(a, r, "gp-ds-gdt-limit", Rip::Fault, &|a| a.mov(ds, cx))?;
        // A data segment from the LDT.
        a.mov(cx, LDT_SEL as u32)?;
        a.lldt(cx)?;
        a.mov(cx, LDT_DATA as u32)?;
        a.mov(es, cx)?;
        print(a, "ldt es:0=")?;
        a.mov(eax, dword_ptr(0).es())?;
        a.call(hex)?;
        print(a, " sldt=")?;
        a.xor(eax, eax)?;
        a.sldt(ax)?;
        a.call(hex)?;
        print(a, "\n")?;
        // RETF beyond the limit of the target code segment.
        a.push(SMALL_CODE as i32)?;
        a.push(0x10_0000)?;
        check(a, r, "gp-retf-limit", Rip::Fault, &|a| a.retf())?;
        a.add(esp, 8)?;
        a.mov(cx, KDATA as u32)?;
        a.mov(es, cx)?;

        // 32-bit paging (4 MiB PSE pages plus one page table), CR0.WP.
        a.mov(eax, cr4)?;
        a.or(eax, 0x10)?;
        a.mov(cr4, eax)?;
        a.mov(eax, PD as u32)?;
        a.mov(cr3, eax)?;
        a.mov(eax, cr0)?;
        a.or(eax, 0x8001_0000u32 as i32)?;
        a.mov(cr0, eax)?;
        check(a, r, "pf-read-np", Rip::Fault, &|a| {
            a.mov(eax, dword_ptr(u64::from(TEST) + 4))
        })?;
        check(a, r, "pf-write-ro", Rip::Fault, &|a| {
            a.mov(dword_ptr(u64::from(TEST) + 0x1008), eax)
        })?;

        // Ring 3 through IRETD; INT 0x80 switches to SS0:ESP0 from the TSS.
        a.call(clear)?;
        a.mov(edi, ue[0] as u32)?;
        a.mov(esi, USER_STACK)?;
        a.call(call_user)?;
        print(a, "user-int80 n=")?;
        a.mov(eax, dword_ptr(rec(I80_N)))?;
        a.call(hex)?;
        print(a, " ds=")?;
        a.mov(eax, dword_ptr(rec(I80_EAX)))?;
        a.call(hex)?;
        print(a, " eax=")?;
        a.mov(eax, dword_ptr(rec(I80_EAX + 4)))?;
        a.call(hex)?;
        print(a, " frame=")?;
        a.mov(eax, dword_ptr(rec(I80_FRAME)))?;
        a.call(hex)?;
        print(a, " cs=")?;
        a.mov(eax, dword_ptr(rec(I80_CS)))?;
        a.call(hex)?;
        print(a, " ss=")?;
        a.mov(eax, dword_ptr(rec(I80_SS)))?;
        a.call(hex)?;
        print(a, "\nuser-hlt: ")?;
        a.mov(ebx, ue[1] as u32)?;
        a.call(report)?;
        a.call(clear)?;
        a.mov(edi, ue[3] as u32)?;
        a.mov(esi, USER_STACK)?;
        a.call(call_user)?;
        print(a, "user-read-sup: ")?;
        a.mov(ebx, ue[2] as u32)?;
        a.call(report)?;

        // RETF to CPL 3 also nulls DS (DPL 0).
        a.mov(dword_ptr(rec(I80_N)), 0)?;
        a.call(clear)?;
        a.mov(edi, ue[4] as u32)?;
        a.mov(esi, USER_STACK)?;
        a.call(call_user_retf)?;
        print(a, "retf-user n=")?;
        a.mov(eax, dword_ptr(rec(I80_N)))?;
        a.call(hex)?;
        print(a, " ds=")?;
        a.mov(eax, dword_ptr(rec(I80_EAX)))?;
        a.call(hex)?;
        print(a, " cs=")?;
        a.mov(eax, dword_ptr(rec(I80_CS)))?;
        a.call(hex)?;
        print(a, "\nretf-user-hlt: ")?;
        a.mov(ebx, ue[5] as u32)?;
        a.call(report)?;

        // #DF: the #PF gate not present.
        a.and(byte_ptr(IDT + 14 * 8 + 5), 0x7f)?;
        check(a, r, "df", Rip::Skip, &|a| {
            a.mov(eax, dword_ptr(u64::from(TEST)))
        })?;
        exit(a, 0x5a)
    });
    let mut blobs = pm32_tables();
    blobs.push((ucode_at, ucode));
    let out = run_image(&multiboot(code), &blobs);
    eprintln!(
        "32-bit exceptions: {} instructions in {:?}",
        out.instructions, out.elapsed
    );
    out.assert(
        "de: v=0 e=- cs=8 eip=ok n=1\n\
         ud: v=6 e=- cs=8 eip=ok n=1\n\
         bp: v=3 e=- cs=8 eip=ok n=1\n\
         into: v=4 e=- cs=8 eip=ok n=1\n\
         into-no-of: v=ff e=0 cs=0 n=0\n\
         gp-limit: v=d e=0 cs=8 eip=ok n=1\n\
         gp-limit-straddle: v=d e=0 cs=8 eip=ok n=1\n\
         limit-ok: v=ff e=0 cs=0 eip=0 n=0\n\
         gp-expand-down: v=d e=0 cs=8 eip=ok n=1\n\
         expand-down-ok: v=ff e=0 cs=0 eip=0 n=0\n\
         gp-write-cs: v=d e=0 cs=8 eip=ok n=1\n\
         np-seg: v=b e=38 cs=8 eip=ok n=1\n\
         gp-ss-rpl3: v=d e=28 cs=8 eip=ok n=1\n\
         gp-ss-null: v=d e=0 cs=8 eip=ok n=1\n\
         gp-ds-tss: v=d e=30 cs=8 eip=ok n=1\n\
         gp-ds-gdt-limit: v=d e=80 cs=8 eip=ok n=1\n\
         ldt es:0=feed5eed sldt=48\n\
         gp-retf-limit: v=d e=0 cs=8 eip=ok n=1\n\
         pf-read-np: v=e e=0 cr2=400004 cs=8 eip=ok n=1\n\
         pf-write-ro: v=e e=3 cr2=401008 cs=8 eip=ok n=1\n\
         user-int80 n=2 ds=0 eax=1234 frame=19ffec cs=23 ss=2b\n\
         user-hlt: v=d e=0 cs=23 eip=ok n=1\n\
         user-read-sup: v=e e=5 cr2=100000 cs=23 eip=ok n=1\n\
         retf-user n=1 ds=0 cs=23\n\
         retf-user-hlt: v=d e=0 cs=23 eip=ok n=1\n\
         df: v=8 e=0 cs=8 n=1\n",
        0x5a,
    );
}

/// Reload CS with the kernel code selector by a far jump to the next
/// instruction.
fn jmp_far32_label(a: &mut CodeAssembler, r: &mut Refs) -> AsmResult {
    let next = r.declare();
    jmp_far32(a, pm32::KCODE, r.addr(next))?;
    r.place(a, next)?;
    a.nop()
}

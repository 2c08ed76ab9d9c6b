//! What Intel and AMD processors do differently with the fast system-call
//! instructions (SDM Vol. 2 and APM Vol. 3 on SYSCALL, SYSRET, SYSENTER,
//! SYSEXIT and RDPRU), each guest run on a vCPU of either vendor
//! (`max,vendor=...`):
//! - SYSCALL in compatibility mode: #UD on Intel; AMD enters CSTAR's target;
//! - SYSCALL and SYSRET in legacy protected mode: #UD on Intel; AMD runs
//!   them (STAR's EIP, 32-bit flat segments, IF cleared and set again);
//! - SYSRET to a non-canonical RIP: #GP(0) in ring 0 on Intel; AMD returns
//!   and the fetch faults in ring 3;
//! - SYSRET's SS: a flat ring-3 data segment on Intel; AMD loads only the
//!   selector, so a null SS stays unusable (#SS on the first push);
//! - SYSENTER and SYSEXIT in long mode: run on Intel, #UD on AMD;
//! - RDPRU, which softvm does not advertise: #UD on both.

mod common;

use common::k64::*;
use common::*;
use iced_x86::code_asm::*;
use testsuite::guest;

const INTEL: &str = "GenuineIntel";
const AMD: &str = "AuthenticAMD";
const CSTAR: u32 = 0xc000_0083;
const SYSENTER_CS: u32 = 0x174;
const SYSENTER_ESP: u32 = 0x175;
const SYSENTER_EIP: u32 = 0x176;
/// Compatibility-mode user code.
const COMPAT: u64 = USER + 0x8000;

/// The `--cpu` line of the `max` model with `vendor`.
fn model(vendor: &str) -> String {
    format!("max,vendor={vendor}")
}

/// User code: 64-bit entry points and the compatibility-mode ones.
struct User {
    blobs: Vec<(u64, Vec<u8>)>,
    /// 64-bit: SYSRET (32-bit) to `c_syscall` through the kernel.
    to_compat: u64,
    /// Compatibility mode: `mov eax, 0x77; syscall; ud2`.
    c_syscall: u64,
    /// Compatibility mode: `push eax; ud2`.
    c_push: u64,
    /// 64-bit: `ud2`.
    ud2: u64,
}

fn user() -> User {
    let (compat, c) = chunk_labels(32, COMPAT, COMPAT, |a| {
        let mut sc = a.create_label();
        let mut push = a.create_label();
        a.set_label(&mut sc)?;
        a.mov(eax, 0x77)?;
        a.syscall()?;
        a.ud2()?;
        a.set_label(&mut push)?;
        a.push(eax)?;
        a.ud2()?;
        Ok(vec![sc, push])
    });
    let (code, e) = user_code(|a| {
        let mut to_compat = a.create_label();
        let mut ud = a.create_label();
        a.set_label(&mut to_compat)?;
        a.mov(edi, c[0] as u32)?;
        a.mov(eax, 4)?;
        a.syscall()?;
        a.set_label(&mut ud)?;
        a.ud2()?;
        Ok(vec![to_compat, ud])
    });
    User {
        blobs: vec![code, compat],
        to_compat: e[0],
        c_syscall: c[0],
        c_push: c[1],
        ud2: e[1],
    }
}

/// Build and run a 64-bit kernel whose body `body(vendor)` emits, on a
/// vCPU of `vendor`.
fn run_on(
    vendor: &str,
    body: impl FnOnce(&mut CodeAssembler, &K64, &User) -> AsmResult,
) -> Outcome {
    let u = user();
    let mut s = Setup::new();
    s.extra.extend(u.blobs.iter().cloned());
    let img = guest::long_mode(|a| {
        let k = install(a)?;
        body(a, &k, &u)?;
        exit(a, 0x5a)
    })
    .expect("kernel assembles");
    run_image_on(&model(vendor), &img, &s.blobs())
}

/// Emit: call a routine that saves the kernel stack for the exception
/// handler's return path (so that a fault at any CPL returns here), then
/// runs `body`; afterwards print `name: ` and the record, expecting the
/// frame RIP `rip` (0: not checked).
fn through_fault(
    a: &mut CodeAssembler,
    k: &K64,
    name: &str,
    rip: u64,
    body: impl FnOnce(&mut CodeAssembler) -> AsmResult,
) -> AsmResult {
    let mut routine = a.create_label();
    let mut back = a.create_label();
    a.call(k.clear)?;
    a.call(routine)?;
    a.jmp(back)?;
    a.set_label(&mut routine)?;
    a.mov(qword_ptr(REC + KSAVE), rsp)?;
    a.mov(qword_ptr(REC + RETK), 1)?;
    body(a)?;
    a.set_label(&mut back)?;
    a.mov(qword_ptr(REC + RETK), 0)?;
    print(a, name)?;
    print(a, ": ")?;
    a.mov(rbx, rip)?;
    a.call(k.report)
}

/// SYSCALL from compatibility mode: #UD on Intel; on AMD the CSTAR entry
/// records what it got (RCX relative to the next instruction, R11, RAX, CS,
/// SS, RFLAGS) and returns from the user code.
fn compat_syscall(vendor: &str) -> Outcome {
    run_on(vendor, |a, k, u| {
        let mut entry = a.create_label();
        let mut over = a.create_label();
        a.jmp(over)?;
        a.set_label(&mut entry)?;
        a.mov(qword_ptr(SCRATCH), rcx)?;
        a.mov(qword_ptr(SCRATCH + 8), r11)?;
        a.mov(qword_ptr(SCRATCH + 16), rax)?;
        a.pushfq()?;
        a.pop(qword_ptr(SCRATCH + 40))?;
        a.xor(eax, eax)?;
        a.mov(ax, cs)?;
        a.mov(qword_ptr(SCRATCH + 24), rax)?;
        a.mov(ax, ss)?;
        a.mov(qword_ptr(SCRATCH + 32), rax)?;
        a.jmp(k.leave_user)?;
        a.set_label(&mut over)?;
        a.lea(rax, ptr(entry))?;
        wrmsr_rax(a, CSTAR)?;
        for i in 0..6 {
            a.mov(qword_ptr(SCRATCH + 8 * i), 0)?;
        }
        // The SYSCALL follows a 5-byte MOV.
        user_check(a, k, "compat-syscall", u.to_compat, 2, u.c_syscall + 5)?;
        // RCX is the EIP after the SYSCALL (5 bytes of MOV, 2 of SYSCALL).
        a.mov(rax, qword_ptr(SCRATCH))?;
        a.test(rax, rax)?;
        let mut keep = a.create_label();
        a.jz(keep)?;
        a.sub(rax, (u.c_syscall + 7) as i32)?;
        a.mov(qword_ptr(SCRATCH), rax)?;
        a.set_label(&mut keep)?;
        show(a, k, "cstar: rcx-next=", SCRATCH)?;
        show(a, k, " r11=", SCRATCH + 8)?;
        show(a, k, " rax=", SCRATCH + 16)?;
        show(a, k, " cs=", SCRATCH + 24)?;
        show(a, k, " ss=", SCRATCH + 32)?;
        show(a, k, " rflags=", SCRATCH + 40)?;
        print(a, "\n")
    })
}

#[test]
fn syscall_in_compatibility_mode() {
    compat_syscall(INTEL).assert(
        "compat-syscall: v=6 e=- cs=1b rip=ok n=1\n\
         cstar: rcx-next=0 r11=0 rax=0 cs=0 ss=0 rflags=0\n",
        0x5a,
    );
    // R11 holds the compatibility-mode RFLAGS (2, as the kernel's SYSRET
    // left them); FMASK leaves the kernel 2 too.
    compat_syscall(AMD).assert(
        "compat-syscall: v=ff e=0 cs=0 rip=0 n=0\n\
         cstar: rcx-next=0 r11=2 rax=77 cs=8 ss=10 rflags=2\n",
        0x5a,
    );
}

/// SYSRETQ to a non-canonical RCX.
fn sysret_noncanonical(vendor: &str) -> Outcome {
    let amd = vendor == AMD;
    run_on(vendor, |a, k, _| {
        let target = 0x0000_8000_0000_0000u64;
        let mut at = a.create_label();
        // The kernel's SYSRETQ is at `at`: find its address first.
        a.lea(rax, ptr(at))?;
        a.mov(qword_ptr(SCRATCH), rax)?;
        let rip = if amd { target } else { 0 };
        through_fault(a, k, "sysret-noncanonical", rip, |a| {
            a.mov(rcx, target)?;
            a.mov(r11d, 2)?;
            a.set_label(&mut at)?;
            a.sysretq()
        })?;
        // Whether the frame RIP is the SYSRETQ itself.
        a.mov(rax, qword_ptr(REC + RIP))?;
        a.cmp(rax, qword_ptr(SCRATCH))?;
        a.sete(al)?;
        a.movzx(eax, al)?;
        show_rax(a, k, "at-sysret=")?;
        print(a, "\n")
    })
}

#[test]
fn sysret_to_a_noncanonical_rip() {
    // Intel: #GP(0) in ring 0, at the SYSRETQ.
    sysret_noncanonical(INTEL).assert("sysret-noncanonical: v=d e=0 cs=8 n=1\nat-sysret=1\n", 0x5a);
    // AMD: back in ring 3, the fetch at the non-canonical RIP faults.
    sysret_noncanonical(AMD).assert(
        "sysret-noncanonical: v=d e=0 cs=2b rip=ok n=1\nat-sysret=0\n",
        0x5a,
    );
}

/// SYSRET (32-bit) to compatibility mode with a null SS, then a PUSH.
fn sysret_null_ss(vendor: &str, push: u64) -> Outcome {
    run_on(vendor, |a, k, u| {
        through_fault(a, k, "sysret-null-ss", push, |a| {
            a.xor(eax, eax)?;
            a.mov(ss, ax)?;
            a.mov(rsp, USER_STACK)?;
            a.mov(ecx, u.c_push as u32)?;
            a.mov(r11d, 2)?;
            a.sysret()
        })?;
        show(a, k, "ss=", REC + SS)?;
        print(a, "\n")
    })
}

#[test]
fn sysret_loads_ss_by_vendor() {
    let u = user();
    // Intel: SS is a flat ring-3 data segment; the PUSH works and the UD2
    // after it faults.
    sysret_null_ss(INTEL, u.c_push + 1)
        .assert("sysret-null-ss: v=6 e=- cs=1b rip=ok n=1\nss=23\n", 0x5a);
    // AMD: only the selector changed; the null SS's unusable cache stays
    // and the PUSH raises #SS(0).
    sysret_null_ss(AMD, u.c_push).assert("sysret-null-ss: v=c e=0 cs=1b rip=ok n=1\nss=23\n", 0x5a);
}

/// SYSENTER and SYSEXITQ at CPL 0 in 64-bit mode.
fn sysenter_sysexit(vendor: &str) -> Outcome {
    run_on(vendor, |a, k, u| {
        let mut after = a.create_label();
        wrmsr_imm(a, SYSENTER_CS, u64::from(KCODE))?;
        wrmsr_imm(a, SYSENTER_ESP, SE_STACK)?;
        a.lea(rax, ptr(after))?;
        wrmsr_rax(a, SYSENTER_EIP)?;
        // SYSENTER goes on after itself with RSP = SE_STACK (Intel).
        a.mov(qword_ptr(SCRATCH), rsp)?;
        a.mov(qword_ptr(SCRATCH + 8), 0)?;
        check(a, k, "sysenter", Rip::Skip, false, |a| {
            a.sysenter()?;
            a.set_label(&mut after)?;
            a.mov(qword_ptr(SCRATCH + 8), rsp)?;
            a.mov(rsp, qword_ptr(SCRATCH))
        })?;
        show(a, k, "rsp-after-sysenter=", SCRATCH + 8)?;
        print(a, "\n")?;
        // SYSEXITQ to a UD2 in ring 3 (Intel), or #UD in ring 0 (AMD).
        through_fault(a, k, "sysexitq", 0, |a| {
            a.mov(rdx, u.ud2)?;
            a.mov(rcx, USER_STACK)?;
            a.sysexitq()
        })
    })
}

#[test]
fn sysenter_and_sysexit_in_long_mode() {
    sysenter_sysexit(INTEL).assert(
        "sysenter: v=ff e=0 cs=0 n=0\n\
         rsp-after-sysenter=360000\n\
         sysexitq: v=6 e=- cs=2b n=1\n",
        0x5a,
    );
    sysenter_sysexit(AMD).assert(
        "sysenter: v=6 e=- cs=8 n=1\n\
         rsp-after-sysenter=0\n\
         sysexitq: v=6 e=- cs=8 n=1\n",
        0x5a,
    );
}

#[test]
fn rdpru_is_ud_without_the_feature() {
    for vendor in [INTEL, AMD] {
        run_on(vendor, |a, k, _| {
            check(a, k, "rdpru", Rip::Fault, false, |a| a.rdpru())
        })
        .assert("rdpru: v=6 e=- cs=8 rip=ok n=1\n", 0x5a);
    }
}

// ---------------------------------------------------------------------
// Legacy protected mode (no long mode): a 32-bit kernel of its own.

/// Where the legacy-mode guest keeps its GDT, IDT and variables.
const L_DATA: u64 = 0x20_0000;
const L_GDTR: u64 = L_DATA + 0x100;
const L_IDTR: u64 = L_DATA + 0x110;
const L_IDT: u64 = L_DATA + 0x1000;
/// The number of SYSCALLs that reached the ring-0 target.
const L_COUNT: u64 = L_DATA + 0x2000;
/// The instruction the exception handler expects to fault.
const L_EXPECT: u64 = L_DATA + 0x2008;
const L_STACK: u64 = 0x28_0000;

/// A 32-bit protected-mode kernel (paging off) that runs SYSCALL at CPL 0
/// (or, with `sysret_first`, SYSRET): its target prints ECX (relative to
/// the next instruction), CS, SS and IF, SYSRETs to ring 3, which reads its
/// CS, SS and EFLAGS and makes a SYSCALL again; the target prints those
/// and exits. An exception prints its vector and where it happened
/// relative to the instruction expected to fault, and exits.
fn legacy(vendor: &str, sysret_first: bool) -> Outcome {
    let code_at = guest::LOAD + 16;
    let ((_, code), ids) = chunk_refs(32, code_at, code_at, |a, r| {
        let hex = puthex32(a)?;
        let [target, after_k, user3, after_u, ud, gp, other] = [(); 7].map(|_| r.declare());
        let mut second = a.create_label();
        let mut fault = a.create_label();
        // CS keeps the loader's flat ring-0 code segment cached; the IDT's
        // gates and SYSCALL use selector 0x08 of this GDT.
        a.lgdt(dword_ptr(L_GDTR as u32))?;
        a.mov(ax, 0x10)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(ss, ax)?;
        a.mov(esp, L_STACK as u32)?;
        a.lidt(dword_ptr(L_IDTR as u32))?;
        a.mov(ecx, EFER)?;
        a.rdmsr()?;
        a.or(eax, 1)?;
        a.wrmsr()?;
        a.mov(ecx, STAR)?;
        a.mov(eax, r.addr(target))?;
        a.mov(edx, (0x18 << 16) | 0x08)?;
        a.wrmsr()?;
        // IF set before SYSCALL (which clears it), clear before SYSRET
        // (which sets it).
        a.push(if sysret_first { 2 } else { 0x202 })?;
        a.popfd()?;
        a.mov(dword_ptr(L_EXPECT as u32), r.addr(after_k))?;
        if sysret_first {
            a.mov(dword_ptr(L_COUNT as u32), 1)?;
            a.mov(ecx, r.addr(user3))?;
            r.place(a, after_k)?;
            a.sysret()?;
        } else {
            r.place(a, after_k)?;
            a.syscall()?;
        }
        a.hlt()?;

        // The SYSCALL target (ring 0). `line` prints ECX relative to the
        // instruction after the SYSCALL at `next`, and the CS, SS and
        // EFLAGS.IF in EBX, ESI and EDI.
        let line = |a: &mut CodeAssembler, prefix: &str, next: u32| -> AsmResult {
            print(a, prefix)?;
            print(a, "ecx-next=")?;
            a.mov(eax, ecx)?;
            a.sub(eax, next)?;
            a.call(hex)?;
            for (text, reg) in [(" cs=", ebx), (" ss=", esi), (" if=", edi)] {
                print(a, text)?;
                a.mov(eax, reg)?;
                a.call(hex)?;
            }
            print(a, "\n")
        };
        r.place(a, target)?;
        a.inc(dword_ptr(L_COUNT as u32))?;
        a.cmp(dword_ptr(L_COUNT as u32), 1)?;
        a.jne(second)?;
        a.mov(ebx, cs)?;
        a.mov(esi, ss)?;
        a.pushfd()?;
        a.pop(edi)?;
        a.and(edi, 0x200)?;
        line(a, "sc: ", r.addr(after_k) + 2)?;
        a.mov(ecx, r.addr(user3))?;
        a.sysret()?;
        a.set_label(&mut second)?;
        a.and(edi, 0x200)?;
        line(a, "user: ", r.addr(after_u))?;
        print(a, "now: cs=")?;
        a.mov(eax, cs)?;
        a.call(hex)?;
        print(a, "\n")?;
        exit(a, 0x5a)?;

        // Ring 3.
        r.place(a, user3)?;
        a.mov(ebx, cs)?;
        a.mov(esi, ss)?;
        a.pushfd()?;
        a.pop(edi)?;
        a.syscall()?;
        r.place(a, after_u)?;
        a.hlt()?;

        // Exceptions (ring 0 only: no TSS): vector, then EIP - expected.
        for (id, v, err) in [(ud, 6, false), (gp, 13, true), (other, 0xff, false)] {
            r.place(a, id)?;
            if err {
                a.add(esp, 4)?;
            }
            a.mov(ebx, v)?;
            a.jmp(fault)?;
        }
        a.set_label(&mut fault)?;
        print(a, "fault: v=")?;
        a.mov(eax, ebx)?;
        a.call(hex)?;
        print(a, " at-expected+")?;
        a.mov(eax, dword_ptr(esp))?;
        a.sub(eax, dword_ptr(L_EXPECT as u32))?;
        a.call(hex)?;
        print(a, "\n")?;
        exit(a, 0x5a)
    });
    let labels = &ids[4..];
    let mut image_data = testsuite::image::multiboot_header().to_vec();
    image_data.resize(16, 0);
    image_data.extend(code);
    let image = testsuite::image::elf(
        false,
        code_at,
        &[testsuite::image::Segment {
            paddr: guest::LOAD,
            memsz: image_data.len() as u64,
            data: image_data,
        }],
    );
    let gdt = [
        0,
        desc(0, 0xf_ffff, 0x9a, 0xc), // 0x08 code32 DPL0
        desc(0, 0xf_ffff, 0x92, 0xc), // 0x10 data DPL0
        desc(0, 0xf_ffff, 0xfa, 0xc), // 0x18 code32 DPL3
        desc(0, 0xf_ffff, 0xf2, 0xc), // 0x20 data DPL3
    ];
    let mut data = qwords(&gdt);
    data.resize(0x100, 0);
    let mut p = pseudo((gdt.len() * 8 - 1) as u16, L_DATA);
    p.resize(16, 0);
    data.extend(p);
    data.extend(pseudo(32 * 8 - 1, L_IDT));
    data.resize(0x1000, 0);
    let gates: Vec<u64> = (0..32u32)
        .map(|v| {
            let h = match v {
                6 => labels[0],
                13 => labels[1],
                _ => labels[2],
            };
            gate32(0x08, h as u32, 0x8e)
        })
        .collect();
    data.extend(qwords(&gates));
    data.resize(0x2010, 0);
    run_image_on(&model(vendor), &image, &[(L_DATA, data)])
}

#[test]
fn syscall_and_sysret_in_legacy_mode() {
    // Intel: #UD at the SYSCALL, and at the SYSRET.
    legacy(INTEL, false).assert("fault: v=6 at-expected+0\n", 0x5a);
    legacy(INTEL, true).assert("fault: v=6 at-expected+0\n", 0x5a);
    // AMD: STAR's EIP with CS 0x08, SS 0x10 and IF cleared; SYSRET to ring
    // 3 with CS 0x1b, SS 0x23 and IF set; SYSCALL from ring 3 back to CS 8.
    legacy(AMD, false).assert(
        "sc: ecx-next=0 cs=8 ss=10 if=0\n\
         user: ecx-next=0 cs=1b ss=23 if=200\n\
         now: cs=8\n",
        0x5a,
    );
    legacy(AMD, true).assert("user: ecx-next=0 cs=1b ss=23 if=200\nnow: cs=8\n", 0x5a);
}

//! Privilege levels. A small 64-bit kernel (tests/common, `k64`) enters
//! CPL 3 with IRETQ (selectors 0x2b/0x23, TSS.RSP0 set and loaded with LTR)
//! and user code calls back in with SYSCALL (EFER.SCE, STAR, LSTAR, FMASK
//! set with WRMSR) and SYSENTER; the tests check SYSRET/SYSEXIT round trips
//! (also into compatibility mode), user and supervisor pages, SMEP and SMAP
//! (with STAC/CLAC and EFLAGS.AC), port I/O against IOPL and the TSS I/O
//! bitmap, SWAPGS and RDFSBASE/WRFSBASE.

mod common;

use common::k64::*;
use common::*;
use iced_x86::code_asm::*;
use testsuite::guest;

/// Compatibility-mode user code.
const COMPAT: u64 = USER + 0x8000;
const SYSENTER_CS: u32 = 0x174;
const SYSENTER_ESP: u32 = 0x175;
const SYSENTER_EIP: u32 = 0x176;

/// Entry points of the user code (64-bit unless noted).
struct User {
    blobs: Vec<(u64, Vec<u8>)>,
    sys: u64,
    sys_end: u64,
    compat_syscall: u64,
    /// Compatibility mode: the SYSCALL that must raise #UD.
    c_syscall: u64,
    syscall_plain: u64,
    sysret_cpl3: u64,
    rw: u64,
    read_sup: u64,
    write_sup: u64,
    write_ro: u64,
    not_present: u64,
    fetch_sup: u64,
    stac: u64,
    clac: u64,
    func: u64,
    se: u64,
    sysexit_cpl3: u64,
    sysenter_only: u64,
    io: u64,
    out81: u64,
    out_word: u64,
    out_dword: u64,
    in81: u64,
    outsb81: u64,
    cli: u64,
    iopl3: u64,
    swapgs: u64,
    rdfsbase: u64,
    touch: u64,
}

/// Emit `mov eax, n; syscall` (RAX = n).
fn sys(a: &mut CodeAssembler, n: u32) -> AsmResult {
    a.mov(eax, n)?;
    a.syscall()
}

fn user() -> User {
    // Compatibility-mode pieces (CPL 3, CS 0x1b).
    let (compat, c) = chunk_labels(32, COMPAT, COMPAT, |a| {
        let mut back = a.create_label();
        let mut c_sc = a.create_label();
        let mut c_se = a.create_label();
        // After SYSRET (32-bit): DEC EAX is 0x48 here; store the result
        // and RETF to the 64-bit code whose far pointer is on the stack.
        a.set_label(&mut back)?;
        a.mov(ax, UDATA as i32)?;
        a.mov(ds, ax)?;
        a.mov(eax, 5)?;
        a.db(&[0x48])?;
        a.mov(dword_ptr(USER_DATA), eax)?;
        a.retf()?;
        // SYSCALL is #UD in compatibility mode on Intel processors.
        a.set_label(&mut c_sc)?;
        a.syscall()?;
        // After SYSEXIT (32-bit): SYSENTER back, to RBX (set by the caller)
        // in 64-bit mode. EDI = CS:SS:100.
        a.set_label(&mut c_se)?;
        a.mov(edi, cs)?;
        a.shl(edi, 8)?;
        a.mov(eax, ss)?;
        a.or(edi, eax)?;
        a.shl(edi, 16)?;
        a.or(edi, 100)?;
        a.xor(esi, esi)?;
        a.mov(edx, ebx)?;
        a.mov(ecx, esp)?;
        a.sysenter()?;
        Ok(vec![back, c_sc, c_se])
    });
    let (c_back, c_syscall, c_se) = (c[0], c[1], c[2]);

    let (code, e) = user_code(|a| {
        let mut l: Vec<CodeLabel> = Vec::new();
        let mut label = |a: &mut CodeAssembler| -> AsmResult<usize> {
            let mut x = a.create_label();
            a.set_label(&mut x)?;
            l.push(x);
            Ok(l.len() - 1)
        };
        // sys: SYSCALL round trips.
        let i_sys = label(a)?;
        a.xor(eax, eax)?;
        a.mov(ax, cs)?;
        a.mov(rdi, rax)?;
        sys(a, 1)?;
        a.xor(eax, eax)?;
        a.mov(ax, ss)?;
        a.mov(rdi, rax)?;
        sys(a, 1)?;
        let mut lp = a.create_label();
        a.xor(r13d, r13d)?;
        a.mov(r12d, 1)?;
        a.set_label(&mut lp)?;
        a.mov(rdi, r12)?;
        a.imul_3(rsi, r12, 0x100)?;
        sys(a, 2)?;
        a.add(r13, rax)?;
        a.inc(r12)?;
        a.cmp(r12, 6)?;
        a.jne(lp)?;
        a.mov(rdi, r13)?;
        sys(a, 1)?;
        // DF survives (FMASK clears it in the kernel, SYSRET restores R11).
        a.std()?;
        sys(a, 2)?;
        a.pushfq()?;
        a.pop(rdi)?;
        a.cld()?;
        a.and(edi, 0x400)?;
        sys(a, 1)?;
        // RSP is the same after the round trip.
        a.mov(rbx, rsp)?;
        sys(a, 2)?;
        a.sub(rbx, rsp)?;
        a.mov(rdi, rbx)?;
        sys(a, 1)?;
        // RCX held the return RIP.
        let mut ret_a = a.create_label();
        sys(a, 2)?;
        a.set_label(&mut ret_a)?;
        a.lea(rdi, ptr(ret_a))?;
        a.sub(rdi, rcx)?;
        sys(a, 1)?;
        // SYSRET to compatibility mode; back by RETF through m16:32.
        let mut back64 = a.create_label();
        a.lea(rax, ptr(back64))?;
        a.mov(dword_ptr(rsp - 8), eax)?;
        a.mov(dword_ptr(rsp - 4), UCODE64 as i32)?;
        a.sub(rsp, 8)?;
        a.mov(edi, c_back as u32)?;
        sys(a, 4)?;
        a.set_label(&mut back64)?;
        a.mov(edi, dword_ptr(USER_DATA))?;
        sys(a, 1)?;
        // The last call: R11 gets these RFLAGS, the kernel runs with them
        // masked by FMASK.
        a.mov(eax, 0x4_04d7)?;
        a.push(rax)?;
        a.popfq()?;
        a.mov(eax, 0)?;
        a.syscall()?;
        let i_sys_end = label(a)?;
        a.ud2()?;

        let i_compat_sc = label(a)?;
        a.mov(edi, c_syscall as u32)?;
        sys(a, 4)?;
        let i_plain = label(a)?;
        sys(a, 0)?;
        let i_sysret = label(a)?;
        a.sysretq()?;

        // User pages.
        let i_rw = label(a)?;
        a.mov(rax, qword_ptr(TEST + 0x6000))?;
        a.add(rax, 1)?;
        a.mov(qword_ptr(TEST + 0x6000), rax)?;
        a.mov(rdi, qword_ptr(TEST + 0x4000))?;
        sys(a, 1)?;
        a.mov(rdi, qword_ptr(TEST + 0x6000))?;
        sys(a, 1)?;
        sys(a, 0)?;
        let i_read_sup = label(a)?;
        a.mov(rax, qword_ptr(0x10_0000))?;
        sys(a, 0)?;
        let i_write_sup = label(a)?;
        a.mov(qword_ptr(0x10_0000), rax)?;
        sys(a, 0)?;
        let i_write_ro = label(a)?;
        a.mov(qword_ptr(TEST + 0x4000), rax)?;
        sys(a, 0)?;
        let i_np = label(a)?;
        a.mov(rax, qword_ptr(TEST + 0x7000))?;
        sys(a, 0)?;
        let i_fetch = label(a)?;
        a.mov(eax, 0x10_0010)?;
        a.jmp(rax)?;
        let i_stac = label(a)?;
        a.stac()?;
        sys(a, 0)?;
        let i_clac = label(a)?;
        a.clac()?;
        sys(a, 0)?;
        // A function on a user page, called by the kernel (SMEP test).
        let i_func = label(a)?;
        a.mov(eax, 0x5a5a)?;
        a.ret()?;

        // SYSENTER/SYSEXIT: RDI = CS:SS:n, ESI = what the kernel does
        // (0 SYSEXITQ, 1 SYSEXIT to compatibility mode, 2 return).
        let i_se = label(a)?;
        let mut se_lp = a.create_label();
        let mut se_back = a.create_label();
        let pack = |a: &mut CodeAssembler| -> AsmResult {
            a.mov(edi, cs)?;
            a.shl(edi, 8)?;
            a.mov(eax, ss)?;
            a.or(edi, eax)?;
            a.shl(edi, 16)
        };
        a.mov(r12d, 1)?;
        a.set_label(&mut se_lp)?;
        pack(a)?;
        a.or(rdi, r12)?;
        a.xor(esi, esi)?;
        a.lea(rdx, ptr(se_back))?;
        a.mov(rcx, rsp)?;
        a.sysenter()?;
        a.set_label(&mut se_back)?;
        a.inc(r12)?;
        a.cmp(r12, 4)?;
        a.jne(se_lp)?;
        let mut se_final = a.create_label();
        a.xor(edi, edi)?;
        a.mov(esi, 1)?;
        a.mov(edx, c_se as u32)?;
        a.mov(rcx, rsp)?;
        a.lea(rbx, ptr(se_final))?;
        a.sysenter()?;
        a.set_label(&mut se_final)?;
        pack(a)?;
        a.or(edi, 0x77)?;
        a.mov(esi, 2)?;
        a.sysenter()?;
        let i_sysexit = label(a)?;
        a.sysexitq()?;
        let i_sysenter_only = label(a)?;
        a.mov(esi, 2)?;
        a.sysenter()?;

        // Port I/O at CPL 3 with IOPL 0: the bitmap allows 0x3f8 and 0x80.
        let i_io = label(a)?;
        a.mov(dx, 0x3f8)?;
        a.mov(al, b'U' as u32)?;
        a.out(dx, al)?;
        a.mov(al, b'\n' as u32)?;
        a.out(dx, al)?;
        a.mov(al, 0x42)?;
        a.out(0x80, al)?;
        a.in_(al, 0x80)?;
        a.mov(word_ptr(USER_DATA + 0x10), 0x0a53)?;
        a.mov(esi, (USER_DATA + 0x10) as u32)?;
        a.mov(ecx, 2)?;
        a.rep().outsb()?;
        sys(a, 0)?;
        let i_out81 = label(a)?;
        a.out(0x81, al)?;
        sys(a, 0)?;
        let i_out_word = label(a)?;
        a.mov(dx, 0x3f7)?;
        a.out(dx, ax)?;
        sys(a, 0)?;
        let i_out_dword = label(a)?;
        a.mov(dx, 0x3f8)?;
        a.out(dx, eax)?;
        sys(a, 0)?;
        let i_in81 = label(a)?;
        a.in_(al, 0x81)?;
        sys(a, 0)?;
        let i_outsb81 = label(a)?;
        a.mov(dx, 0x81)?;
        a.mov(esi, USER_DATA as u32)?;
        a.outsb()?;
        sys(a, 0)?;
        let i_cli = label(a)?;
        a.cli()?;
        sys(a, 0)?;
        let i_iopl3 = label(a)?;
        a.mov(al, 0x99)?;
        a.out(0x81, al)?;
        a.cli()?;
        sys(a, 0)?;

        // SWAPGS is CPL 0 only; RDFSBASE works at CPL 3 with CR4.FSGSBASE.
        let i_swapgs = label(a)?;
        a.swapgs()?;
        sys(a, 0)?;
        let i_rdfsbase = label(a)?;
        a.rdfsbase(rdi)?;
        sys(a, 1)?;
        sys(a, 0)?;
        // Read the user data page and print it.
        let i_touch = label(a)?;
        a.mov(rdi, qword_ptr(USER_DATA))?;
        sys(a, 1)?;
        sys(a, 0)?;
        let idx = [
            i_sys,
            i_sys_end,
            i_compat_sc,
            i_plain,
            i_sysret,
            i_rw,
            i_read_sup,
            i_write_sup,
            i_write_ro,
            i_np,
            i_fetch,
            i_stac,
            i_clac,
            i_func,
            i_se,
            i_sysexit,
            i_sysenter_only,
            i_io,
            i_out81,
            i_out_word,
            i_out_dword,
            i_in81,
            i_outsb81,
            i_cli,
            i_iopl3,
            i_swapgs,
            i_rdfsbase,
            i_touch,
        ];
        Ok(idx.iter().map(|&i| l[i]).collect())
    });
    assert!(
        code.0 + (code.1.len() as u64) < COMPAT,
        "user code too long"
    );
    User {
        blobs: vec![code, compat],
        sys: e[0],
        sys_end: e[1],
        compat_syscall: e[2],
        c_syscall,
        syscall_plain: e[3],
        sysret_cpl3: e[4],
        rw: e[5],
        read_sup: e[6],
        write_sup: e[7],
        write_ro: e[8],
        not_present: e[9],
        fetch_sup: e[10],
        stac: e[11],
        clac: e[12],
        func: e[13],
        se: e[14],
        sysexit_cpl3: e[15],
        sysenter_only: e[16],
        io: e[17],
        out81: e[18],
        out_word: e[19],
        out_dword: e[20],
        in81: e[21],
        outsb81: e[22],
        cli: e[23],
        iopl3: e[24],
        swapgs: e[25],
        rdfsbase: e[26],
        touch: e[27],
    }
}

/// Build and run a kernel whose body is `body`, with `setup` adjusting the
/// host side.
fn run(
    name: &str,
    setup: impl FnOnce(&mut Setup),
    body: impl FnOnce(&mut CodeAssembler, &K64) -> AsmResult,
) -> Outcome {
    let mut s = Setup::new();
    s.extra.extend(user().blobs);
    setup(&mut s);
    let img = guest::long_mode(|a| {
        let k = install(a)?;
        body(a, &k)?;
        exit(a, 0x5a)
    })
    .unwrap();
    let out = run_image(&img, &s.blobs());
    eprintln!(
        "{name}: {} instructions in {:?}",
        out.instructions, out.elapsed
    );
    out
}

#[test]
fn syscall_sysret_round_trips() {
    let u = user();
    let out = run(
        "syscall",
        |_| {},
        |a, k| {
            a.call(k.clear)?;
            a.mov(rdi, u.sys)?;
            a.mov(esi, USER_STACK as u32)?;
            a.mov(edx, 2)?;
            a.call(k.call_user)?;
            show(a, k, "sc n=", REC + SC_COUNT)?;
            show(a, k, " cs=", REC + SC_CS)?;
            show(a, k, " ss=", REC + SC_SS)?;
            print(a, " rcx=")?;
            a.mov(rax, qword_ptr(REC + SC_RCX))?;
            a.mov(rcx, u.sys_end)?;
            a.sub(rax, rcx)?;
            a.call(k.hex)?;
            show(a, k, " r11=", REC + SC_R11)?;
            show(a, k, " kfl=", REC + SC_RFL)?;
            print(a, "\n")?;
            user_check(a, k, "compat-syscall", u.compat_syscall, 2, u.c_syscall)?;
            user_check(a, k, "user-sysret", u.sysret_cpl3, 2, u.sysret_cpl3)?;
            // SYSRETQ to a non-canonical RCX: #GP(0) at CPL 0 (Intel).
            a.mov(rcx, 0x0000_8000_0000_0000u64)?;
            a.mov(r11d, 2)?;
            check(a, k, "sysret-noncanon", Rip::Fault, false, |a| a.sysretq())?;
            // Without EFER.SCE, SYSCALL is #UD.
            rdmsr_rax(a, EFER)?;
            a.btr(rax, 0)?;
            wrmsr_rax(a, EFER)?;
            user_check(
                a,
                k,
                "syscall-no-sce",
                u.syscall_plain,
                2,
                u.syscall_plain + 5,
            )?;
            rdmsr_rax(a, EFER)?;
            a.bts(rax, 0)?;
            wrmsr_rax(a, EFER)
        },
    );
    out.assert(
        "2b\n23\nf0f\n400\n0\n0\n4\n\
         sc n=11 cs=8 ss=10 rcx=0 r11=404d7 kfl=d7\n\
         compat-syscall: v=6 e=- cs=1b rip=ok n=1\n\
         user-sysret: v=d e=0 cs=2b rip=ok n=1\n\
         sysret-noncanon: v=d e=0 cs=8 rip=ok n=1\n\
         syscall-no-sce: v=6 e=- cs=2b rip=ok n=1\n",
        0x5a,
    );
}

#[test]
fn user_and_supervisor_pages() {
    let u = user();
    let out = run(
        "pages",
        |s| {
            s.pt.map_4k(TEST + 0x4000, TEST + 0x4000, P | US); // user, read-only
            s.pt.map_4k(TEST + 0x6000, TEST + 0x6000, P | RW | US);
            s.pt.map_4k(TEST + 0x7000, TEST + 0x7000, 0);
            s.extra
                .push((TEST + 0x4000, 0x4444u64.to_le_bytes().to_vec()));
        },
        |a, k| {
            user_check(a, k, "user-rw", u.rw, 2, 0)?;
            user_check(a, k, "user-read-sup", u.read_sup, 2, u.read_sup)?;
            user_check(a, k, "user-write-sup", u.write_sup, 2, u.write_sup)?;
            user_check(a, k, "user-write-ro", u.write_ro, 2, u.write_ro)?;
            user_check(a, k, "user-not-present", u.not_present, 2, u.not_present)?;
            user_check(a, k, "user-fetch-sup", u.fetch_sup, 2, 0x10_0010)?;
            // The supervisor may write the user's read-only page while
            // CR0.WP=0, not with WP=1.
            a.mov(ecx, 0x55)?;
            check(a, k, "sup-write-user-ro", Rip::Fault, false, |a| {
                a.mov(qword_ptr(TEST + 0x4000), rcx)
            })?;
            show(a, k, "  user-page=", TEST + 0x6000)?;
            print(a, "\n")
        },
    );
    out.assert(
        "4444\n1\n\
         user-rw: v=ff e=0 cs=0 n=0\n\
         user-read-sup: v=e e=5 cr2=100000 cs=2b rip=ok n=1\n\
         user-write-sup: v=e e=7 cr2=100000 cs=2b rip=ok n=1\n\
         user-write-ro: v=e e=7 cr2=404000 cs=2b rip=ok n=1\n\
         user-not-present: v=e e=4 cr2=407000 cs=2b rip=ok n=1\n\
         user-fetch-sup: v=e e=15 cr2=100010 cs=2b rip=ok n=1\n\
         sup-write-user-ro: v=e e=3 cr2=404000 cs=8 rip=ok n=1\n  user-page=1\n",
        0x5a,
    );
}

#[test]
fn smep_and_smap() {
    let u = user();
    let out = run(
        "smep/smap",
        |_| {},
        |a, k| {
            // CPUID.(7,0):EBX advertises SMEP (bit 7) and SMAP (bit 20).
            a.mov(eax, 7)?;
            a.xor(ecx, ecx)?;
            a.cpuid()?;
            a.mov(r12d, ebx)?;
            a.mov(eax, r12d)?;
            a.shr(eax, 7)?;
            a.and(eax, 1)?;
            show_rax(a, k, "cpuid7 smep=")?;
            a.mov(eax, r12d)?;
            a.shr(eax, 20)?;
            a.and(eax, 1)?;
            show_rax(a, k, " smap=")?;
            print(a, "\n")?;
            // Without SMEP the kernel may run code on a user page.
            a.mov(rcx, u.func)?;
            a.call(rcx)?;
            show_rax(a, k, "user-func=")?;
            print(a, "\n")?;
            // CR4.SMEP: a supervisor fetch from a user page faults (I/D=1).
            a.mov(rax, cr4)?;
            a.bts(rax, 20)?;
            a.mov(cr4, rax)?;
            a.mov(rcx, u.func)?;
            check(a, k, "smep-fetch", Rip::Skip, false, |a| a.jmp(rcx))?;
            show(a, k, "  rip=", REC + RIP)?;
            print(a, "\n")?;
            // CR4.SMAP: supervisor data accesses to user pages fault
            // unless EFLAGS.AC=1 (STAC, or POPF).
            a.mov(rax, cr4)?;
            a.bts(rax, 21)?;
            a.mov(cr4, rax)?;
            a.mov(ecx, 0x66)?;
            check(a, k, "smap-read", Rip::Fault, false, |a| {
                a.mov(rax, qword_ptr(USER_DATA))
            })?;
            check(a, k, "smap-write", Rip::Fault, false, |a| {
                a.mov(qword_ptr(USER_DATA), rcx)
            })?;
            a.stac()?;
            check(a, k, "smap-write-stac", Rip::Skip, false, |a| {
                a.mov(qword_ptr(USER_DATA), rcx)
            })?;
            check(a, k, "smap-read-stac", Rip::Skip, false, |a| {
                a.mov(r8, qword_ptr(USER_DATA))
            })?;
            a.mov(rax, r8)?;
            show_rax(a, k, "  val=")?;
            print(a, "\n")?;
            a.clac()?;
            check(a, k, "smap-read-clac", Rip::Fault, false, |a| {
                a.mov(rax, qword_ptr(USER_DATA))
            })?;
            a.pushfq()?;
            a.or(qword_ptr(rsp), 0x4_0000)?;
            a.popfq()?;
            check(a, k, "smap-read-popf-ac", Rip::Skip, false, |a| {
                a.mov(rax, qword_ptr(USER_DATA))
            })?;
            a.clac()?;
            // CLAC between two accesses of one straight run of code: the
            // second must fault although the first filled the TLB.
            check(a, k, "smap-clac-in-line", Rip::Skip, false, |a| {
                a.stac()?;
                a.mov(rax, qword_ptr(USER_DATA))?;
                a.clac()?;
                a.mov(rax, qword_ptr(USER_DATA))
            })?;
            // STAC/CLAC are #UD at CPL 3; user code still reaches its pages.
            user_check(a, k, "user-stac", u.stac, 2, u.stac)?;
            user_check(a, k, "user-clac", u.clac, 2, u.clac)?;
            user_check(a, k, "user-under-smap", u.touch, 2, 0)
        },
    );
    out.assert(
        &format!(
            "cpuid7 smep=1 smap=1\n\
             user-func=5a5a\n\
             smep-fetch: v=e e=11 cr2={func:x} cs=8 n=1\n  rip={func:x}\n\
             smap-read: v=e e=1 cr2=680000 cs=8 rip=ok n=1\n\
             smap-write: v=e e=3 cr2=680000 cs=8 rip=ok n=1\n\
             smap-write-stac: v=ff e=0 cs=0 n=0\n\
             smap-read-stac: v=ff e=0 cs=0 n=0\n  val=66\n\
             smap-read-clac: v=e e=1 cr2=680000 cs=8 rip=ok n=1\n\
             smap-read-popf-ac: v=ff e=0 cs=0 n=0\n\
             smap-clac-in-line: v=e e=1 cr2=680000 cs=8 n=1\n\
             user-stac: v=6 e=- cs=2b rip=ok n=1\n\
             user-clac: v=6 e=- cs=2b rip=ok n=1\n\
             66\n\
             user-under-smap: v=ff e=0 cs=0 n=0\n",
            func = u.func
        ),
        0x5a,
    );
}

#[test]
fn sysenter_sysexit_round_trips() {
    let u = user();
    let log = SCRATCH + 0x100;
    let out = run(
        "sysenter",
        |_| {},
        |a, k| {
            // The SYSENTER entry: log RDI, RSP, IF, CS, SS; then SYSEXITQ,
            // SYSEXIT (to compatibility mode) or return from call_user.
            let mut entry = a.create_label();
            let mut over = a.create_label();
            let mut to32 = a.create_label();
            let mut back = a.create_label();
            a.jmp(over)?;
            a.set_label(&mut entry)?;
            a.pushfq()?;
            a.pop(rax)?;
            a.and(eax, 0x200)?;
            a.or(qword_ptr(SCRATCH + 24), rax)?;
            a.mov(rax, qword_ptr(SCRATCH))?;
            a.mov(qword_ptr(rax * 8 + log as i32), rdi)?;
            a.inc(qword_ptr(SCRATCH))?;
            a.mov(qword_ptr(SCRATCH + 16), rsp)?;
            a.xor(eax, eax)?;
            a.mov(ax, cs)?;
            a.mov(qword_ptr(SCRATCH + 32), rax)?;
            a.mov(ax, ss)?;
            a.mov(qword_ptr(SCRATCH + 40), rax)?;
            a.cmp(esi, 1)?;
            a.je(to32)?;
            a.cmp(esi, 2)?;
            a.je(back)?;
            a.sysexitq()?;
            a.set_label(&mut to32)?;
            a.sysexit()?;
            a.set_label(&mut back)?;
            a.mov(qword_ptr(REC + RETK), 0)?;
            a.mov(rsp, qword_ptr(REC + KSAVE))?;
            a.mov(ax, KDATA as i32)?;
            a.mov(ds, ax)?;
            a.mov(es, ax)?;
            a.ret()?;
            a.set_label(&mut over)?;
            wrmsr_imm(a, SYSENTER_CS, u64::from(KCODE))?;
            wrmsr_imm(a, SYSENTER_ESP, SE_STACK)?;
            a.lea(rax, ptr(entry))?;
            wrmsr_rax(a, SYSENTER_EIP)?;

            a.call(k.clear)?;
            a.mov(rdi, u.se)?;
            a.mov(esi, USER_STACK as u32)?;
            a.mov(edx, 0x202)?;
            a.call(k.call_user)?;
            show(a, k, "se n=", SCRATCH)?;
            for i in 0..6 {
                show(a, k, " ", log + 8 * i)?;
            }
            show(a, k, " rsp=", SCRATCH + 16)?;
            show(a, k, " if=", SCRATCH + 24)?;
            show(a, k, " cs=", SCRATCH + 32)?;
            show(a, k, " ss=", SCRATCH + 40)?;
            print(a, "\n")?;
            user_check(a, k, "user-sysexit", u.sysexit_cpl3, 2, u.sysexit_cpl3)?;
            // SYSENTER with IA32_SYSENTER_CS = 0: #GP(0).
            wrmsr_imm(a, SYSENTER_CS, 0)?;
            user_check(
                a,
                k,
                "sysenter-cs0",
                u.sysenter_only,
                2,
                u.sysenter_only + 5,
            )
        },
    );
    out.assert(
        "se n=6 2b230001 2b330002 2b330003 0 1b230064 2b330077 rsp=360000 if=0 cs=8 ss=10\n\
         user-sysexit: v=d e=0 cs=2b rip=ok n=1\n\
         sysenter-cs0: v=d e=0 cs=2b rip=ok n=1\n",
        0x5a,
    );
}

#[test]
fn port_io_iopl_and_bitmap() {
    let u = user();
    let out = run(
        "io",
        |s| s.io_allow = vec![0x3f8, 0x80],
        |a, k| {
            user_check(a, k, "user-io", u.io, 2, 0)?;
            user_check(a, k, "out-81", u.out81, 2, u.out81)?;
            user_check(a, k, "out-word-3f7", u.out_word, 2, u.out_word + 4)?;
            user_check(a, k, "out-dword-3f8", u.out_dword, 2, u.out_dword + 4)?;
            user_check(a, k, "in-81", u.in81, 2, u.in81)?;
            user_check(a, k, "outsb-81", u.outsb81, 2, u.outsb81 + 9)?;
            user_check(a, k, "cli-iopl0", u.cli, 2, u.cli)?;
            // IOPL 3: every port, and CLI, are allowed.
            user_check(a, k, "iopl3", u.iopl3, 0x3002, 0)
        },
    );
    out.assert(
        "U\nS\n\
         user-io: v=ff e=0 cs=0 n=0\n\
         out-81: v=d e=0 cs=2b rip=ok n=1\n\
         out-word-3f7: v=d e=0 cs=2b rip=ok n=1\n\
         out-dword-3f8: v=d e=0 cs=2b rip=ok n=1\n\
         in-81: v=d e=0 cs=2b rip=ok n=1\n\
         outsb-81: v=d e=0 cs=2b rip=ok n=1\n\
         cli-iopl0: v=d e=0 cs=2b rip=ok n=1\n\
         iopl3: v=ff e=0 cs=0 n=0\n",
        0x5a,
    );
    assert_eq!(out.ports, vec![(0x80, 0x42), (0x81, 0x99)]);
}

#[test]
fn swapgs_and_fsgsbase() {
    let u = user();
    let (a_base, b_base, c_base) = (SCRATCH, SCRATCH + 0x100, SCRATCH + 0x200);
    let out = run(
        "swapgs",
        |s| {
            s.extra.push((a_base, 0x1111u64.to_le_bytes().to_vec()));
            s.extra.push((b_base, 0x2222u64.to_le_bytes().to_vec()));
            s.extra.push((c_base + 8, 0x3333u64.to_le_bytes().to_vec()));
        },
        |a, k| {
            a.mov(rax, a_base)?;
            wrmsr_rax(a, GS_BASE)?;
            a.mov(rax, b_base)?;
            wrmsr_rax(a, KERNEL_GS_BASE)?;
            a.mov(rax, qword_ptr(0).gs())?;
            show_rax(a, k, "gs:0=")?;
            a.swapgs()?;
            a.mov(rax, qword_ptr(0).gs())?;
            show_rax(a, k, " swapgs gs:0=")?;
            rdmsr_rax(a, GS_BASE)?;
            show_rax(a, k, " gsbase=")?;
            rdmsr_rax(a, KERNEL_GS_BASE)?;
            show_rax(a, k, " kgsbase=")?;
            a.swapgs()?;
            print(a, "\n")?;
            // RDFSBASE is #UD until CR4.FSGSBASE is set.
            check(a, k, "rdfsbase-off", Rip::Fault, false, |a| a.rdfsbase(rax))?;
            a.mov(rax, cr4)?;
            a.bts(rax, 16)?;
            a.mov(cr4, rax)?;
            a.mov(rax, c_base)?;
            a.wrfsbase(rax)?;
            rdmsr_rax(a, FS_BASE)?;
            show_rax(a, k, "fsbase=")?;
            a.mov(rax, qword_ptr(8).fs())?;
            show_rax(a, k, " fs:8=")?;
            a.rdgsbase(rax)?;
            show_rax(a, k, " rdgsbase=")?;
            // The 32-bit form zero-extends.
            a.mov(rax, 0x1234_5678_9abc_def0u64)?;
            a.wrgsbase(eax)?;
            a.rdgsbase(rax)?;
            show_rax(a, k, " gs32=")?;
            print(a, "\n")?;
            a.mov(rcx, 0x0000_8000_0000_0000u64)?;
            check(a, k, "wrfsbase-noncanon", Rip::Fault, false, |a| {
                a.wrfsbase(rcx)
            })?;
            user_check(a, k, "user-swapgs", u.swapgs, 2, u.swapgs)?;
            user_check(a, k, "user-rdfsbase", u.rdfsbase, 2, 0)
        },
    );
    out.assert(
        "gs:0=1111 swapgs gs:0=2222 gsbase=300900 kgsbase=300800\n\
         rdfsbase-off: v=6 e=- cs=8 rip=ok n=1\n\
         fsbase=300a00 fs:8=3333 rdgsbase=300800 gs32=9abcdef0\n\
         wrfsbase-noncanon: v=d e=0 cs=8 rip=ok n=1\n\
         user-swapgs: v=d e=0 cs=2b rip=ok n=1\n\
         300a00\n\
         user-rdfsbase: v=ff e=0 cs=0 n=0\n",
        0x5a,
    );
}

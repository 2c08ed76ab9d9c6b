//! The x87's system rules, on softvm: #NM from CR0.TS and CR0.EM (WAIT's
//! own rule with CR0.MP), #MF at the next waiting instruction with
//! CR0.NE (the no-wait forms and WAIT included), the environment images
//! of 64-bit mode (the guest the KVM comparison also runs, with FCS,
//! which that comparison cannot check) and of real mode (Intel SDM Vol. 1,
//! Figures 8-10 and 8-12: linear instruction and operand pointers, the
//! opcode beside the high bits of FIP).

mod common;

use common::k64;
use common::*;
use iced_x86::code_asm::*;
use testsuite::guest;
use testsuite::kvm::x87::{cr0_set, CR0_EM, CR0_MP, CR0_NE, CR0_TS};

#[test]
fn device_not_available_and_math_fault() {
    use k64::*;
    let s = Setup::new();
    let img = guest::long_mode(|a| {
        let k = install(a)?;
        cr0_set(a, CR0_NE | CR0_MP, CR0_EM | CR0_TS)?;
        a.fninit()?;
        // CR0.TS: every x87 instruction, waiting or not; WAIT only with MP.
        cr0_set(a, CR0_TS, 0)?;
        check(a, &k, "ts fadd", Rip::Fault, false, |a| a.fadd_2(st0, st1))?;
        check(a, &k, "ts fninit", Rip::Fault, false, |a| a.fninit())?;
        check(a, &k, "ts+mp wait", Rip::Fault, false, |a| a.wait())?;
        cr0_set(a, 0, CR0_MP)?;
        check(a, &k, "ts wait", Rip::Skip, false, |a| a.wait())?;
        // CR0.EM: the x87 instructions, not WAIT.
        cr0_set(a, CR0_EM | CR0_MP, CR0_TS)?;
        check(a, &k, "em fld1", Rip::Fault, false, |a| a.fld1())?;
        check(a, &k, "em fnstsw", Rip::Fault, false, |a| a.fnstsw(ax))?;
        check(a, &k, "em wait", Rip::Skip, false, |a| a.wait())?;
        cr0_set(a, 0, CR0_EM)?;
        // An unmasked divide-by-zero: pending, not raised by FDIV.
        a.mov(word_ptr(SCRATCH), 0x037b)?;
        a.fldcw(word_ptr(SCRATCH))?;
        a.fld1()?;
        a.fldz()?;
        check(a, &k, "fdiv 1/0", Rip::Skip, false, |a| a.fdivp(st1, st0))?;
        // #NM comes before #MF.
        cr0_set(a, CR0_TS, 0)?;
        check(a, &k, "ts+pending fnop", Rip::Fault, false, |a| a.fnop())?;
        a.clts()?;
        check(a, &k, "pending fnop", Rip::Fault, false, |a| a.fnop())?;
        check(a, &k, "pending wait", Rip::Fault, false, |a| a.wait())?;
        check(a, &k, "pending fldcw", Rip::Fault, false, |a| {
            a.fldcw(word_ptr(SCRATCH))
        })?;
        check(a, &k, "pending fnstsw", Rip::Skip, false, |a| {
            a.fnstsw(word_ptr(SCRATCH + 4))
        })?;
        a.movzx(eax, word_ptr(SCRATCH + 4))?;
        show_rax(a, &k, "  fsw=")?;
        print(a, "\n")?;
        check(a, &k, "pending fnstcw", Rip::Skip, false, |a| {
            a.fnstcw(word_ptr(SCRATCH + 2))
        })?;
        // CR0.NE clear: the FERR# line is not modelled; the instruction
        // runs as with IGNNE# asserted.
        cr0_set(a, 0, CR0_NE)?;
        check(a, &k, "ne=0 fnop", Rip::Skip, false, |a| a.fnop())?;
        cr0_set(a, CR0_NE, 0)?;
        check(a, &k, "pending fnclex", Rip::Skip, false, |a| a.fnclex())?;
        check(a, &k, "fnop after fnclex", Rip::Skip, false, |a| a.fnop())?;
        exit(a, 0)
    })
    .unwrap();
    let out = run_image(&img, &s.blobs());
    out.assert(
        "ts fadd: v=7 e=- cs=8 rip=ok n=1\n\
         ts fninit: v=7 e=- cs=8 rip=ok n=1\n\
         ts+mp wait: v=7 e=- cs=8 rip=ok n=1\n\
         ts wait: v=ff e=0 cs=0 n=0\n\
         em fld1: v=7 e=- cs=8 rip=ok n=1\n\
         em fnstsw: v=7 e=- cs=8 rip=ok n=1\n\
         em wait: v=ff e=0 cs=0 n=0\n\
         fdiv 1/0: v=ff e=0 cs=0 n=0\n\
         ts+pending fnop: v=7 e=- cs=8 rip=ok n=1\n\
         pending fnop: v=10 e=- cs=8 rip=ok n=1\n\
         pending wait: v=10 e=- cs=8 rip=ok n=1\n\
         pending fldcw: v=10 e=- cs=8 rip=ok n=1\n\
         pending fnstsw: v=ff e=0 cs=0 n=0\n  fsw=b084\n\
         pending fnstcw: v=ff e=0 cs=0 n=0\n\
         ne=0 fnop: v=ff e=0 cs=0 n=0\n\
         pending fnclex: v=ff e=0 cs=0 n=0\n\
         fnop after fnclex: v=ff e=0 cs=0 n=0\n",
        0,
    );
}

/// The output with every `ip=` value (code addresses) blanked.
fn without_ips(s: &str) -> String {
    s.lines()
        .map(|l| match l.find(" ip=") {
            Some(i) => format!("{} ip=*{}", &l[..i], &l[i + 12..]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The guest of the KVM comparison (`kvm_diff`, where it matches the
/// host CPU), with FCS shown: the selector of the ring-3 code, 0x2b.
#[test]
fn long_mode_pointers_and_pending_exceptions() {
    let img = testsuite::kvm::x87::long_mode_guest(true).unwrap();
    let out = run_image(&img, &[]);
    assert_eq!(out.end, End::Exit(0), "{}", out.serial);
    let want = "\
1/0 with ZE unmasked: no fault, nothing written, ES set
fsw: B084
#MF at fnop, fwait and fld1; fnstsw, fnstcw, fnstenv run
#10 e=0000 ip=* cs=002B cr2=0000000000000000
#10 e=0000 ip=* cs=002B cr2=0000000000000000
#10 e=0000 ip=* cs=002B cr2=0000000000000000
env after fdivp: 037B FFFF B084 FFFF 1FFF FFFF 0000 0000 002B 06F9 0000 0000 0000 FFFF
fnstenv masked everything: fnop runs
fsw: 3004
fnclex; 1/0 masked sets ZE; fldcw unmasking it makes it pending
#10 e=0000 ip=* cs=002B cr2=0000000000000000
fsw before and after fldcw: 2804 A884
pointers after fld dword [opnd]
env32: 037F FFFF 3800 FFFF 3FFF FFFF 0000 0000 002B 0104 0000 0000 0000 FFFF
env16: 037F 3800 3FFF 0000 002B 0000 0000
save env: 037F FFFF 3800 FFFF 3FFF FFFF 0000 0000 002B 0104 0000 0000 0000 FFFF
save st0: 0000 0000 0000 C000 3FFF
after fnsave: 037F FFFF 0000 FFFF FFFF FFFF 0000 0000 0000 0000 0000 0000 0000 FFFF
after frstor: 037F FFFF 3800 FFFF 3FFF FFFF 0000 0000 002B 0104 0000 0000 0000 FFFF";
    assert_eq!(without_ips(&out.serial), want);
}

/// Real mode (CS = 0x1800, DS = 0x1234): FNSTENV and FNSAVE store the
/// linear addresses of the instruction and of its operand, 20 bits of
/// them in the 16-bit image and 32 in the 32-bit one, the opcode in the
/// low 11 bits of the word (or doubleword) that holds FIP's high bits;
/// FLDENV reads that layout back.
#[test]
fn real_mode_environment_images() {
    const CODE: u64 = 0x1_8000;
    let image = |fip: u32, fop: u16, fdp: u32| -> Vec<u16> {
        vec![
            0x037f,
            0xffff,
            0,
            0xffff,
            0xffff,
            0xffff,
            fip as u16,
            0xffff,
            ((fip >> 16) << 12) as u16 | fop,
            (fip >> 20) as u16,
            fdp as u16,
            0xffff,
            ((fdp >> 16) << 12) as u16,
            (fdp >> 20) as u16,
        ]
    };
    let loaded = image(0x12_3456, 0x5a5, 0x6789a);
    let ((c, code), labels) = chunk_labels(16, CODE, 0, |a| {
        let mut at = a.create_label();
        a.cli()?;
        a.xor(ax, ax)?;
        a.mov(ss, ax)?;
        a.mov(sp, 0x7000)?;
        let hex = puthex32(a)?;
        a.mov(ax, 0x1234)?;
        a.mov(ds, ax)?;
        a.mov(dword_ptr(0x10), 0x3fc0_0000)?; // 1.5
        a.fninit()?;
        a.set_label(&mut at)?;
        a.fld(dword_ptr(0x10))?;
        a.fnstenv(ptr(0x100))?;
        a.db(&[0x66])?;
        a.fnstenv(ptr(0x200))?;
        a.fnsave(ptr(0x300))?;
        a.fnstenv(ptr(0x400))?;
        for (i, w) in loaded.iter().enumerate() {
            a.mov(word_ptr(0x500 + 2 * i as u64), u32::from(*w))?;
        }
        a.db(&[0x66])?;
        a.fldenv(ptr(0x500))?;
        a.fnstenv(ptr(0x600))?;
        a.db(&[0x66])?;
        a.fnstenv(ptr(0x700))?;
        for (name, off, n) in [
            ("env16", 0x100u64, 7),
            ("env32", 0x200, 14),
            ("save", 0x300, 12),
            ("after fnsave", 0x400, 7),
            ("fldenv, env16", 0x600, 7),
            ("fldenv, env32", 0x700, 14),
        ] {
            print(a, name)?;
            print(a, ":")?;
            for i in 0..n {
                print(a, " ")?;
                a.movzx(eax, word_ptr(off + 2 * i))?;
                a.call(hex)?;
            }
            print(a, "\n")?;
        }
        exit(a, 0)?;
        Ok(vec![at])
    });
    let fip = (CODE + labels[0]) as u32;
    let fdp = 0x12340 + 0x10;
    let fop = 0x106; // D9 /0 with ModR/M 06 (disp16)
    let hexs = |w: &[u16]| {
        w.iter()
            .map(|v| format!("{v:x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let env16 = |fip: u32, fop: u16, fdp: u32, sw: u16, tw: u16| {
        vec![
            0x037f,
            sw,
            tw,
            fip as u16,
            (((fip >> 16) & 0xf) << 12) as u16 | fop,
            fdp as u16,
            (((fdp >> 16) & 0xf) << 12) as u16,
        ]
    };
    let mut env32 = image(fip, fop, fdp);
    env32[2] = 0x3800;
    env32[4] = 0x3fff;
    let mut want_loaded = loaded.clone();
    want_loaded[4] = 0xffff;
    let want = format!(
        "env16: {}\nenv32: {}\nsave: {} 0 0 0 c000 3fff\nafter fnsave: {}\n\
         fldenv, env16: {}\nfldenv, env32: {}\n",
        hexs(&env16(fip, fop, fdp, 0x3800, 0x3fff)),
        hexs(&env32),
        hexs(&env16(fip, fop, fdp, 0x3800, 0x3fff)),
        hexs(&env16(0, 0, 0, 0, 0xffff)),
        hexs(&env16(0x12_3456, 0x5a5, 0x6789a, 0, 0xffff)),
        hexs(&want_loaded),
    );
    let out = run_real(&[(c, code)], (CODE >> 4) as u16, 0);
    out.assert(&want, 0);
}

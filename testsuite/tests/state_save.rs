//! 64-bit guests for the XSAVE family, FXSAVE/FXRSTOR, XGETBV/XSETBV,
//! RDRAND/RDSEED, RDPMC, the cache-line instructions, hints and fences:
//! what each prints must be what the SDM says (faults with their vectors
//! and error codes, XCR0 rules, image layouts and header semantics), and
//! RDRAND must repeat for a seed and change with it.

use emu_core::{VcpuExit, Vm, VmConfig};
use iced_x86::code_asm::*;
use softmmu::{Backing, MemFlags};
use testsuite::guest;
use testsuite::kvm::kit::{expect_fault, print, Kit, SCRATCH};

const MEM: u64 = 64 << 20;
/// Images: two FXSAVE areas and two XSAVE areas (64-byte aligned).
const FX1: u64 = SCRATCH;
const FX2: u64 = SCRATCH + 0x400;
const XS1: u64 = SCRATCH + 0x800;
const XS2: u64 = SCRATCH + 0xc00;
/// Guest-physical addresses outside RAM (MMIO) but inside the identity
/// map, and outside the map.
const MMIO: u64 = 0x1000_0000;
const UNMAPPED: u64 = 0x1_4000_0000;

/// Run `image` with RDRAND seed `seed`: the serial output, with the RIP
/// and CS of exception lines left out (they depend on code layout).
fn run(image: &[u8], seed: u64) -> String {
    let vm = Vm::new(VmConfig {
        seed,
        ..VmConfig::default()
    });
    vm.set_user_memory_region(0, MemFlags::empty(), 0, MEM, Backing::Anonymous)
        .unwrap();
    let boot = loader::load(
        image,
        vm.memory(),
        &loader::LoadOptions {
            mem_size: MEM,
            ..Default::default()
        },
    )
    .unwrap();
    let mut vcpu = vm.create_vcpu(0);
    vcpu.set_sregs(&boot.sregs);
    vcpu.set_regs(&boot.regs);
    vcpu.set_instruction_limit(Some(10_000_000));
    vcpu.set_exit_on_unimplemented(true);
    let mut out = String::new();
    loop {
        match vcpu.run() {
            VcpuExit::IoOut(0x3f8, d) => out.push(d[0] as char),
            VcpuExit::IoOut(0xf4, _) => break,
            other => panic!("unexpected exit {other:?}; output so far:\n{out}"),
        }
    }
    out.lines()
        .map(|l| match l.split_once(" ip=") {
            Some((head, rest)) if l.starts_with("#0E") => {
                format!("{head} {}", rest.split(' ').nth(2).unwrap_or(""))
            }
            Some((head, _)) => head.to_string(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn put(a: &mut CodeAssembler, addr: u64, v: u64) -> Result<(), IcedError> {
    a.mov(rax, v)?;
    a.mov(qword_ptr(addr), rax)
}

/// Fill `len` bytes at `addr` with the byte `b`.
fn fill(a: &mut CodeAssembler, addr: u64, len: u32, b: u8) -> Result<(), IcedError> {
    a.mov(rdi, addr)?;
    a.mov(ecx, len)?;
    a.mov(al, u32::from(b))?;
    a.rep().stosb()
}

fn set_edx_eax_ecx(a: &mut CodeAssembler, v: u64, ecx_v: u32) -> Result<(), IcedError> {
    a.mov(eax, v as u32)?;
    a.mov(edx, (v >> 32) as u32)?;
    a.mov(ecx, ecx_v)
}

fn cr4_or(a: &mut CodeAssembler, bits: u64) -> Result<(), IcedError> {
    a.mov(rax, cr4)?;
    a.mov(rdx, bits)?;
    a.or(rax, rdx)?;
    a.mov(cr4, rax)
}

fn xcr_guest() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        print(a, "== xgetbv without OSXSAVE\n")?;
        a.xor(ecx, ecx)?;
        expect_fault(a, |a| a.xgetbv())?;
        cr4_or(a, (1 << 18) | (1 << 9) | (1 << 10))?;
        print(a, "== xcr0 at reset\n")?;
        a.xor(ecx, ecx)?;
        a.xgetbv()?;
        k.show(a, "xcr0", rax)?;
        print(a, "== invalid xsetbv: 0, 2, 7, ecx=1, 1<<32\n")?;
        for (v, c) in [(0u64, 0u32), (2, 0), (7, 0), (3, 1), (1 | 1 << 32, 0)] {
            set_edx_eax_ecx(a, v, c)?;
            expect_fault(a, |a| a.xsetbv())?;
        }
        print(a, "== xsetbv 3\n")?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xsetbv()?;
        a.xor(ecx, ecx)?;
        a.xgetbv()?;
        k.show(a, "xcr0", rax)?;
        print(
            a,
            "== xinuse (FCW 0040h after RESET: x87 in use; XMM zero)\n",
        )?;
        a.mov(ecx, 1)?;
        a.xgetbv()?;
        k.show(a, "xinuse", rax)?;
        print(a, "== xgetbv ecx=2\n")?;
        a.mov(ecx, 2)?;
        expect_fault(a, |a| a.xgetbv())?;
        print(a, "== ring 3: xgetbv works, xsetbv is #GP(0)\n")?;
        k.enable_user(a)?;
        k.user(a, |a| {
            a.xor(ecx, ecx)?;
            a.xgetbv()?;
            a.mov(rbx, rax)?;
            set_edx_eax_ecx(a, 3, 0)?;
            expect_fault(a, |a| a.xsetbv())
        })?;
        k.show(a, "xcr0", rbx)?;
        guest::exit(a, 0)
    })
}

#[test]
fn xgetbv_and_xsetbv() {
    let out = run(&xcr_guest().unwrap(), 1);
    let want = "\
== xgetbv without OSXSAVE
#06 e=0000
== xcr0 at reset
xcr0=0000000000000001
== invalid xsetbv: 0, 2, 7, ecx=1, 1<<32
#0D e=0000
#0D e=0000
#0D e=0000
#0D e=0000
#0D e=0000
== xsetbv 3
xcr0=0000000000000003
== xinuse (FCW 0040h after RESET: x87 in use; XMM zero)
xinuse=0000000000000001
== xgetbv ecx=2
#0D e=0000
== ring 3: xgetbv works, xsetbv is #GP(0)
#0D e=0000
xcr0=0000000000000003";
    assert_eq!(out, want);
}

/// A legacy-region image at `at`: FCW 027Fh, FSW with TOP = 7, R7 valid
/// holding `st0`, MXCSR `mxcsr`, XMM0 and XMM15 patterns.
fn legacy_image(a: &mut CodeAssembler, at: u64, mxcsr: u32) -> Result<(), IcedError> {
    fill(a, at, 512, 0)?;
    put(a, at, 0x0080_3800_027f)?; // FCW, FSW (TOP 7), FTW = R7
    put(a, at + 24, u64::from(mxcsr))?;
    put(a, at + 32, 0xc90f_daa2_2168_c235)?; // ST0 = pi
    put(a, at + 40, 0x4000)?;
    put(a, at + 160, 0x0011_2233_4455_6677)?;
    put(a, at + 168, 0x8899_aabb_ccdd_eeff)?;
    put(a, at + 400, 0x0f0f_0f0f_0f0f_0f0f)?;
    put(a, at + 408, 0xf0f0_f0f0_f0f0_f0f0)
}

fn show_image(k: &Kit, a: &mut CodeAssembler, at: u64, offs: &[u64]) -> Result<(), IcedError> {
    for &o in offs {
        k.show_mem(a, &format!("{o:03}"), at + o)?;
    }
    Ok(())
}

fn fxsave_guest() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        cr4_or(a, (1 << 9) | (1 << 10))?;
        legacy_image(a, FX1, 0x1fa0)?;
        print(a, "== fxrstor; fxsave (bytes 464.. untouched: AA)\n")?;
        a.fxrstor(ptr(FX1))?;
        fill(a, FX2, 512, 0xaa)?;
        a.fxsave(ptr(FX2))?;
        show_image(
            &k,
            a,
            FX2,
            &[0, 8, 16, 24, 32, 40, 160, 168, 400, 408, 416, 504],
        )?;
        print(a, "== fxsave64: 64-bit FIP/FDP, same data\n")?;
        fill(a, FX2, 512, 0xaa)?;
        a.fxsave64(ptr(FX2))?;
        show_image(&k, a, FX2, &[0, 8, 16, 24])?;
        print(
            a,
            "== fxrstor with a reserved MXCSR bit, then fxsave: unchanged\n",
        )?;
        legacy_image(a, FX1, 0x1_0000)?;
        put(a, FX1 + 160, 0x1234)?;
        expect_fault(a, |a| a.fxrstor(ptr(FX1)))?;
        a.fxsave(ptr(FX2))?;
        show_image(&k, a, FX2, &[24, 160])?;
        print(a, "== misaligned fxsave, fxrstor\n")?;
        expect_fault(a, |a| a.fxsave(ptr(FX2 + 8)))?;
        expect_fault(a, |a| a.fxrstor(ptr(FX2 + 4)))?;
        print(a, "== CR0.TS: #NM\n")?;
        a.mov(rax, cr0)?;
        a.or(eax, 8)?;
        a.mov(cr0, rax)?;
        expect_fault(a, |a| a.fxsave(ptr(FX2)))?;
        a.clts()?;
        guest::exit(a, 0)
    })
}

#[test]
fn fxsave_and_fxrstor() {
    let out = run(&fxsave_guest().unwrap(), 1);
    let want = "\
== fxrstor; fxsave (bytes 464.. untouched: AA)
000=000000803800027F
008=0000000000000000
016=0000000000000000
024=0000FFFF00001FA0
032=C90FDAA22168C235
040=0000000000004000
160=0011223344556677
168=8899AABBCCDDEEFF
400=0F0F0F0F0F0F0F0F
408=F0F0F0F0F0F0F0F0
416=AAAAAAAAAAAAAAAA
504=AAAAAAAAAAAAAAAA
== fxsave64: 64-bit FIP/FDP, same data
000=000000803800027F
008=0000000000000000
016=0000000000000000
024=0000FFFF00001FA0
== fxrstor with a reserved MXCSR bit, then fxsave: unchanged
#0D e=0000
024=0000FFFF00001FA0
160=0011223344556677
== misaligned fxsave, fxrstor
#0D e=0000
#0D e=0000
== CR0.TS: #NM
#07 e=0000";
    assert_eq!(out, want);
}

fn xsave_guest() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        cr4_or(a, (1 << 18) | (1 << 9) | (1 << 10))?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xsetbv()?;
        legacy_image(a, FX1, 0x1fa0)?;
        a.fxrstor(ptr(FX1))?;

        print(a, "== xsave rfbm=3 keeps XSTATE_BV bits outside RFBM\n")?;
        fill(a, XS1, 576, 0)?;
        put(a, XS1 + 512, 0x4)?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xsave(ptr(XS1))?;
        show_image(&k, a, XS1, &[0, 24, 32, 160, 512, 520])?;

        print(
            a,
            "== xrstor XSTATE_BV=1: SSE to its init state, MXCSR from the image\n",
        )?;
        put(a, XS1 + 512, 1)?;
        put(a, XS1 + 24, 0x1f80)?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xrstor(ptr(XS1))?;
        a.mov(ecx, 1)?;
        a.xgetbv()?;
        k.show(a, "xinuse", rax)?;
        a.fxsave(ptr(FX2))?;
        show_image(&k, a, FX2, &[24, 160])?;

        print(a, "== xsaveopt: SSE in its init state is not written\n")?;
        fill(a, XS2, 576, 0xaa)?;
        put(a, XS2 + 512, 0)?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xsaveopt(ptr(XS2))?;
        show_image(&k, a, XS2, &[0, 24, 160, 512, 520])?;

        print(a, "== xsavec: compacted header, MXCSR != 1F80h saves SSE\n")?;
        fill(a, XS2, 576, 0xaa)?;
        put(a, FX1 + 24, 0x1fa0)?;
        a.fxrstor(ptr(FX1))?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xsavec(ptr(XS2))?;
        show_image(&k, a, XS2, &[0, 24, 160, 512, 520, 528])?;

        print(a, "== xrstor of the compacted image, then xsave\n")?;
        fill(a, XS2 + 528, 48, 0)?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xrstor(ptr(XS2))?;
        fill(a, XS1, 576, 0)?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xsave(ptr(XS1))?;
        show_image(&k, a, XS1, &[0, 24, 160, 512, 520])?;

        print(
            a,
            "== compacted XRSTOR with XSTATE_BV[1]=0 sets MXCSR to 1F80h\n",
        )?;
        put(a, XS2 + 512, 1)?;
        set_edx_eax_ecx(a, 3, 0)?;
        a.xrstor(ptr(XS2))?;
        a.fxsave(ptr(FX2))?;
        show_image(&k, a, FX2, &[24, 160])?;

        print(
            a,
            "== bad headers: XCOMP_BV=1, bytes 16..23, XSTATE_BV bit 2, compacted bytes 24..\n",
        )?;
        for (off, v) in [(520u64, 1u64), (528, 1), (512, 4)] {
            fill(a, XS1 + 512, 64, 0)?;
            put(a, XS1 + off, v)?;
            set_edx_eax_ecx(a, 3, 0)?;
            expect_fault(a, |a| a.xrstor(ptr(XS1)))?;
        }
        fill(a, XS1 + 512, 64, 0)?;
        put(a, XS1 + 520, 1 << 63 | 3)?;
        put(a, XS1 + 560, 1)?;
        expect_fault(a, |a| a.xrstor(ptr(XS1)))?;

        print(a, "== misaligned xsave, CR0.TS\n")?;
        set_edx_eax_ecx(a, 3, 0)?;
        expect_fault(a, |a| a.xsave(ptr(XS1 + 16)))?;
        a.mov(rax, cr0)?;
        a.or(eax, 8)?;
        a.mov(cr0, rax)?;
        expect_fault(a, |a| a.xsave(ptr(XS1)))?;
        a.clts()?;
        guest::exit(a, 0)
    })
}

#[test]
fn xsave_xrstor_xsaveopt_xsavec() {
    let out = run(&xsave_guest().unwrap(), 1);
    let want = "\
== xsave rfbm=3 keeps XSTATE_BV bits outside RFBM
000=000000803800027F
024=0000FFFF00001FA0
032=C90FDAA22168C235
160=0011223344556677
512=0000000000000007
520=0000000000000000
== xrstor XSTATE_BV=1: SSE to its init state, MXCSR from the image
xinuse=0000000000000001
024=0000FFFF00001F80
160=0000000000000000
== xsaveopt: SSE in its init state is not written
000=000000803800027F
024=0000FFFF00001F80
160=AAAAAAAAAAAAAAAA
512=0000000000000001
520=AAAAAAAAAAAAAAAA
== xsavec: compacted header, MXCSR != 1F80h saves SSE
000=000000803800027F
024=0000FFFF00001FA0
160=0011223344556677
512=0000000000000003
520=8000000000000003
528=AAAAAAAAAAAAAAAA
== xrstor of the compacted image, then xsave
000=000000803800027F
024=0000FFFF00001FA0
160=0011223344556677
512=0000000000000003
520=0000000000000000
== compacted XRSTOR with XSTATE_BV[1]=0 sets MXCSR to 1F80h
024=0000FFFF00001F80
160=0000000000000000
== bad headers: XCOMP_BV=1, bytes 16..23, XSTATE_BV bit 2, compacted bytes 24..
#0D e=0000
#0D e=0000
#0D e=0000
#0D e=0000
== misaligned xsave, CR0.TS
#0D e=0000
#07 e=0000";
    assert_eq!(out, want);
}

fn misc_guest() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        print(a, "== rdrand/rdseed: values, then flags (CF only)\n")?;
        a.mov(rax, 0x5a5a_5a5a_5a5a_5a5au64)?;
        a.mov(rbx, rax)?;
        a.mov(rcx, rax)?;
        a.rdrand(rax)?;
        k.show(a, "rdrand64", rax)?;
        a.rdrand(ebx)?;
        k.show(a, "rdrand32", rbx)?;
        a.rdseed(cx)?;
        k.show(a, "rdseed16", rcx)?;
        a.push(0x8d4)?;
        a.popfq()?;
        a.rdseed(rax)?;
        k.show_flags(a, "flags", 0x8d5)?;
        print(a, "== rdpmc at CPL 0 (no counters)\n")?;
        a.xor(ecx, ecx)?;
        expect_fault(a, |a| a.rdpmc())?;
        print(
            a,
            "== clflush/clflushopt/clwb: MMIO line (no access), unmapped, non-canonical\n",
        )?;
        a.mov(rax, MMIO)?;
        a.clflush(byte_ptr(rax))?;
        a.clflushopt(byte_ptr(rax))?;
        a.clwb(byte_ptr(rax))?;
        a.mov(rax, UNMAPPED)?;
        expect_fault(a, |a| a.clflush(byte_ptr(rax)))?;
        expect_fault(a, |a| a.clwb(byte_ptr(rax)))?;
        a.mov(rax, 0x8000_0000_0000_0000u64)?;
        expect_fault(a, |a| a.clflushopt(byte_ptr(rax)))?;
        print(a, "== prefetches, reserved NOPs and fences never fault\n")?;
        a.mov(rax, 0x8000_0000_0000_0000u64)?;
        a.prefetcht0(byte_ptr(rax))?;
        a.prefetchnta(byte_ptr(rax))?;
        a.prefetchw(byte_ptr(rax))?;
        a.mov(rbx, UNMAPPED)?;
        a.prefetcht2(byte_ptr(rbx))?;
        a.db(&[0x0f, 0x19, 0x00])?; // reserved NOP [rax]
        a.db(&[0x0f, 0x0d, 0x00])?; // prefetch [rax]
        a.db(&[0x0f, 0x0d, 0x18])?; // 0F 0D /3 [rax]
        a.db(&[0x0f, 0x0d, 0x10])?; // PREFETCHWT1 [rax], not advertised: a NOP
        a.lfence()?;
        a.sfence()?;
        a.mfence()?;
        a.pause()?;
        print(a, "ok\n")?;
        print(a, "== ud0, ud1, ud1 with an unmapped memory operand\n")?;
        expect_fault(a, |a| a.db(&[0x0f, 0xff, 0xc0]))?;
        expect_fault(a, |a| a.db(&[0x0f, 0xb9, 0xc0]))?;
        expect_fault(a, |a| a.db(&[0x0f, 0xb9, 0x03]))?;
        guest::exit(a, 0)
    })
}

#[test]
fn random_numbers_counters_cache_lines_and_hints() {
    let img = misc_guest().unwrap();
    let out = run(&img, 1);
    let value = |o: &str, name: &str| -> String {
        o.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing in\n{o}"))
            .to_string()
    };
    let rest: Vec<&str> = out.lines().filter(|l| !l.starts_with("rd")).collect();
    let want = "\
== rdrand/rdseed: values, then flags (CF only)
flags=0001
== rdpmc at CPL 0 (no counters)
#0D e=0000
== clflush/clflushopt/clwb: MMIO line (no access), unmapped, non-canonical
#0E e=0000 cr2=0000000140000000
#0E e=0000 cr2=0000000140000000
#0D e=0000
== prefetches, reserved NOPs and fences never fault
ok
== ud0, ud1, ud1 with an unmapped memory operand
#06 e=0000
#06 e=0000
#06 e=0000";
    assert_eq!(rest.join("\n"), want);
    // The 32- and 16-bit forms write their register's width only.
    assert!(value(&out, "rdrand32").starts_with("00000000"));
    assert!(value(&out, "rdseed16").starts_with("5A5A5A5A5A5A"));
    // Same seed, same numbers; another seed, others.
    assert_eq!(run(&img, 1), out);
    let other = run(&img, 2);
    for name in ["rdrand64", "rdrand32", "rdseed16"] {
        assert_ne!(value(&other, name), value(&out, name), "{name}");
    }
}

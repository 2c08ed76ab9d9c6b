//! The decoded-instruction cache against self- and cross-modifying code:
//! every guest runs with the cache on and off and must print the
//! architecturally right result both ways.

use emu_core::{MpState, Vcpu, VcpuExit, Vm, VmConfig};
use iced_x86::code_asm::*;
use softmmu::{Backing, Gpa, MemFlags};
use testsuite::guest;

const MEM: u64 = 64 << 20;
/// A page the guests write code into.
const CODE: u64 = 0x40_0000;
/// Code for the second vCPU.
const PATCHER: u64 = 0x40_1000;

fn boot(image: &[u8], vcpus: u32) -> (Vm, Vcpu) {
    let vm = Vm::new(VmConfig {
        vcpus,
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
    (vm, vcpu)
}

/// Run until the exit port; serial output and the exit value.
fn run(image: &[u8], cache: bool) -> (String, u32) {
    let (_vm, mut vcpu) = boot(image, 1);
    vcpu.set_code_cache(cache);
    let mut out = String::new();
    loop {
        match vcpu.run() {
            VcpuExit::IoOut(0x3f8, d) => out.push(d[0] as char),
            VcpuExit::IoOut(0xf4, d) => return (out, u32::from_le_bytes(d.try_into().unwrap())),
            other => panic!("unexpected exit {other:?}; output so far {out:?}"),
        }
    }
}

/// Both ways, and the same answer.
fn check(image: &[u8], want: &str) {
    for cache in [true, false] {
        let (out, code) = run(image, cache);
        assert_eq!(out, want, "cache {cache}");
        assert_eq!(code, 0, "cache {cache}");
    }
}

/// Run with an instruction limit: instructions retired, RBX, RIP and the
/// serial bytes written when the guest exits or the limit stops it.
fn retired(image: &[u8], cache: bool, limit: u64) -> (u64, u64, u64, u32) {
    let (_vm, mut vcpu) = boot(image, 1);
    vcpu.set_code_cache(cache);
    vcpu.set_instruction_limit(Some(limit));
    let mut exits = 0;
    loop {
        match vcpu.run() {
            VcpuExit::IoOut(0x3f8, _) => exits += 1,
            VcpuExit::IoOut(0xf4, _) | VcpuExit::InstructionLimit => break,
            other => panic!("unexpected exit {other:?}"),
        }
    }
    (
        vcpu.instructions(),
        vcpu.get_regs().rbx,
        vcpu.get_regs().rip,
        exits,
    )
}

/// Emit stores that put `bytes` at `at` (clobbers RAX, RDI).
fn emit_copy(a: &mut CodeAssembler, at: u64, bytes: &[u8]) -> Result<(), IcedError> {
    a.mov(rdi, at)?;
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut q = [0x90u8; 8];
        q[..chunk.len()].copy_from_slice(chunk);
        a.mov(rax, u64::from_le_bytes(q))?;
        a.mov(qword_ptr(rdi + (i * 8) as i32), rax)?;
    }
    Ok(())
}

/// `mov eax, imm32; ret` assembled at `at`.
fn mov_eax_ret(at: u64, imm: u32) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(eax, imm).unwrap();
    a.ret().unwrap();
    a.assemble(at).unwrap()
}

#[test]
fn store_into_the_next_instruction() {
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut target = a.create_label();
        a.lea(rdi, qword_ptr(target))?;
        // The imm32 of `mov eax, imm32` (B8 id) is at +1.
        a.mov(dword_ptr(rdi + 1), 0x2222_2222)?;
        a.set_label(&mut target)?;
        a.mov(eax, 0x1111_1111)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    check(&img, "0000000022222222\n");
}

#[test]
fn store_into_a_loop_body() {
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut lp = a.create_label();
        let mut patch = a.create_label();
        a.mov(ecx, 10)?;
        a.xor(ebx, ebx)?;
        a.set_label(&mut lp)?;
        a.cmp(ecx, 5)?;
        a.jne(patch)?;
        a.lea(rdi, qword_ptr(patch))?;
        // add rbx, imm8 is 48 83 C3 ib: the immediate is at +3.
        a.mov(byte_ptr(rdi + 3), 7)?;
        a.set_label(&mut patch)?;
        a.add(rbx, 1)?;
        a.dec(ecx)?;
        a.jnz(lp)?;
        a.mov(rax, rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    // Five iterations add 1, five add 7.
    check(&img, "0000000000000028\n");
}

/// Blocks continue at the targets of direct JMPs and CALLs in their page
/// and run through conditional branches (side exits): forward and backward
/// jumps, `call` to the next instruction, calls in both arms of a branch.
#[test]
fn followed_jumps_calls_and_side_exits() {
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut here = a.create_label();
        let mut back = a.create_label();
        let mut fwd = a.create_label();
        let mut f = a.create_label();
        let mut after = a.create_label();
        let mut lp = a.create_label();
        let mut odd = a.create_label();
        let mut join = a.create_label();
        // `call` to the next instruction pushes that instruction's address.
        a.call(here)?;
        a.set_label(&mut here)?;
        a.pop(rbx)?;
        a.lea(rcx, qword_ptr(here))?;
        a.sub(rbx, rcx)?;
        a.jmp(fwd)?;
        a.set_label(&mut back)?;
        a.add(rbx, 0x100)?;
        a.jmp(after)?;
        a.set_label(&mut fwd)?;
        a.add(rbx, 0x10)?;
        a.jmp(back)?;
        // f: rax += rdi
        a.set_label(&mut f)?;
        a.add(rax, rdi)?;
        a.ret()?;
        a.set_label(&mut after)?;
        a.xor(eax, eax)?;
        a.mov(ecx, 10)?;
        a.set_label(&mut lp)?;
        a.mov(edi, ecx)?;
        a.test(ecx, 1)?;
        a.jnz(odd)?;
        a.call(f)?;
        a.jmp(join)?;
        a.set_label(&mut odd)?;
        a.shl(rdi, 8)?;
        a.call(f)?;
        a.set_label(&mut join)?;
        a.dec(ecx)?;
        a.jnz(lp)?;
        a.add(rax, rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    // Evens 2+4+6+8+10 = 0x1e, odds (1+3+5+7+9) << 8 = 0x1900, and 0x110.
    check(&img, "0000000000001A2E\n");
}

/// A block that ends in a Jcc back to its own start holds several copies
/// of the loop (the Jcc followed while another copy fits). Loops of every
/// trip count leave it at every copy, through the loop's own Jcc not taken
/// and through a side exit in the middle, and under instruction limits
/// that stop the run inside a copy; cache on and off must agree on the
/// output and on the instructions retired.
#[test]
fn unrolled_loops_leave_at_every_copy() {
    const TOP: u64 = 50;
    const EXIT_AT: u64 = 37;
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut outer = a.create_label();
        let mut inner = a.create_label();
        let mut out = a.create_label();
        a.xor(ebx, ebx)?;
        a.mov(esi, 1)?;
        a.set_label(&mut outer)?;
        a.mov(ecx, esi)?;
        a.set_label(&mut inner)?;
        a.lea(rbx, qword_ptr(rbx + rcx * 2))?;
        a.cmp(ecx, EXIT_AT as i32)?;
        a.je(out)?;
        a.dec(ecx)?;
        a.jnz(inner)?;
        a.set_label(&mut out)?;
        a.inc(esi)?;
        a.cmp(esi, TOP as i32)?;
        a.jbe(outer)?;
        a.mov(rax, rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    // Each n adds 2c for c = n down to 1, or down to EXIT_AT if n reaches it.
    let want: u64 = (1..=TOP)
        .map(|n| {
            let low = if n >= EXIT_AT { EXIT_AT } else { 1 };
            (low..=n).sum::<u64>() * 2
        })
        .sum();
    check(&img, &format!("{want:016X}\n"));
    let total = retired(&img, false, 10_000_000).0;
    assert_eq!(retired(&img, true, 10_000_000).0, total);
    // Limits that fall inside every copy of the inner loop at some point.
    for limit in (total / 2..total / 2 + 60).chain([total - 1, 1, 7, 100]) {
        assert_eq!(
            retired(&img, true, limit),
            retired(&img, false, limit),
            "limit {limit}"
        );
    }
}

/// Branches whose target is the instruction after them (CALL to the next
/// instruction, RET to the byte after it, JMP and Jcc both ways to the
/// next instruction): the block goes on there as if they had not branched.
#[test]
fn branches_to_their_own_fall_through() {
    const ROUNDS: u32 = 40;
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut top = a.create_label();
        let mut after_call = a.create_label();
        let mut after_ret = a.create_label();
        let mut after_jmp = a.create_label();
        let mut after_jz = a.create_label();
        a.xor(ebx, ebx)?;
        a.mov(esi, ROUNDS)?;
        a.set_label(&mut top)?;
        a.call(after_call)?;
        a.set_label(&mut after_call)?;
        a.pop(rax)?;
        a.lea(rcx, qword_ptr(after_call))?;
        a.sub(rax, rcx)?; // 0 unless the return address was wrong
        a.lea(rbx, qword_ptr(rbx + rax + 1))?;
        a.lea(rcx, qword_ptr(after_ret))?;
        a.push(rcx)?;
        a.ret()?;
        a.set_label(&mut after_ret)?;
        a.add(rbx, 2)?;
        a.jmp(after_jmp)?;
        a.set_label(&mut after_jmp)?;
        a.add(rbx, 4)?;
        a.test(esi, 1)?;
        a.jz(after_jz)?;
        a.set_label(&mut after_jz)?;
        a.add(rbx, 8)?;
        a.dec(esi)?;
        a.jnz(top)?;
        a.mov(rax, rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    check(&img, &format!("{:016X}\n", 15 * ROUNDS));
    let total = retired(&img, false, 10_000_000).0;
    for limit in (1..120).chain([total - 1, total]) {
        assert_eq!(
            retired(&img, true, limit),
            retired(&img, false, limit),
            "limit {limit}"
        );
    }
}

/// Returns that go where the block predicted and returns that do not: a
/// callee the block followed (static prediction), a callee entered through
/// an indirect call from two alternating sites (the prediction read from
/// the stack when its block was built is wrong half the time), a callee
/// that rewrites its return address, and one that drops a frame.
#[test]
fn predicted_and_mispredicted_returns() {
    const ROUNDS: u64 = 30;
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut top = a.create_label();
        let mut even = a.create_label();
        let mut join = a.create_label();
        let mut after_g = a.create_label();
        let mut f = a.create_label();
        let mut f2 = a.create_label();
        let mut g = a.create_label();
        let mut h = a.create_label();
        let mut hw = a.create_label();
        a.xor(ebx, ebx)?;
        a.mov(esi, ROUNDS as u32)?;
        a.lea(rdi, qword_ptr(f2))?;
        a.set_label(&mut top)?;
        a.call(f)?;
        a.add(rbx, rax)?;
        a.test(esi, 1)?;
        a.jz(even)?;
        a.call(rdi)?;
        a.add(rbx, rax)?;
        a.add(rbx, 0x10)?;
        a.jmp(join)?;
        a.set_label(&mut even)?;
        a.call(rdi)?;
        a.add(rbx, rax)?;
        a.add(rbx, 0x100)?;
        a.set_label(&mut join)?;
        a.call(g)?;
        a.add(rbx, 0x1000)?; // skipped: g returns to after_g
        a.set_label(&mut after_g)?;
        a.add(rbx, 0x2_0000)?;
        a.call(hw)?;
        a.add(rbx, 0x40_0000)?;
        a.dec(esi)?;
        a.jnz(top)?;
        a.mov(rax, rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)?;
        a.set_label(&mut f)?;
        a.mov(eax, 1)?;
        a.ret()?;
        a.set_label(&mut f2)?;
        a.mov(eax, 2)?;
        a.ret()?;
        a.set_label(&mut g)?;
        a.lea(rcx, qword_ptr(after_g))?;
        a.mov(qword_ptr(rsp), rcx)?;
        a.ret()?;
        a.set_label(&mut hw)?;
        a.call(h)?;
        a.add(rbx, 0x4_0000)?; // skipped: h returns to hw's caller
        a.ret()?;
        a.set_label(&mut h)?;
        a.add(rsp, 8)?;
        a.ret()
    })
    .unwrap();
    let want = ROUNDS * (1 + 2 + 0x2_0000 + 0x40_0000) + ROUNDS / 2 * (0x10 + 0x100);
    check(&img, &format!("{want:016X}\n"));
    let total = retired(&img, false, 10_000_000).0;
    for limit in (1..200).chain([total - 1, total]) {
        assert_eq!(
            retired(&img, true, limit),
            retired(&img, false, limit),
            "limit {limit}"
        );
    }
}

/// PUSH, POP, CALL and RET on stacks at every alignment, including slots
/// that cross a page end: the aligned ones go through the MMU's stack page,
/// the others the usual way, and a page change moves the stack page.
#[test]
fn stacks_at_every_alignment_and_across_pages() {
    const ROUNDS: u64 = 3;
    const PAGE_END: u64 = 0x60_1000;
    let bases = [0x10u64, 0x0c, 0x0b, 0x08, 0x04, 0x11, 0x14];
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut f = a.create_label();
        let mut round = a.create_label();
        a.xor(ebx, ebx)?;
        a.mov(r12d, ROUNDS as u32)?;
        a.set_label(&mut round)?;
        for (k, off) in bases.iter().enumerate() {
            a.mov(r15, rsp)?;
            a.mov(rsp, PAGE_END + off)?;
            a.mov(eax, 0x1000 + k as u32)?;
            a.mov(ecx, 0x10_0000 * (k as u32 + 1))?;
            a.push(rax)?;
            a.push(rcx)?;
            a.call(f)?;
            a.pop(rdx)?;
            a.pop(rsi)?;
            a.add(rbx, rdx)?;
            a.add(rbx, rsi)?;
            a.mov(rsp, r15)?;
        }
        a.dec(r12d)?;
        a.jnz(round)?;
        a.mov(rax, rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)?;
        a.set_label(&mut f)?;
        a.mov(rdi, qword_ptr(rsp + 8))?;
        a.add(rbx, rdi)?;
        a.ret()
    })
    .unwrap();
    let want: u64 = ROUNDS
        * (0..bases.len() as u64)
            .map(|k| 2 * 0x10_0000 * (k + 1) + 0x1000 + k)
            .sum::<u64>();
    check(&img, &format!("{want:016X}\n"));
    let total = retired(&img, false, 10_000_000).0;
    for limit in (1..150).step_by(7).chain([total - 1, total]) {
        assert_eq!(
            retired(&img, true, limit),
            retired(&img, false, limit),
            "limit {limit}"
        );
    }
}

/// A store, after a followed jump in the same block, into the instruction
/// the block would run next.
#[test]
fn store_after_a_followed_jump() {
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut skip = a.create_label();
        let mut target = a.create_label();
        a.lea(rdi, qword_ptr(target))?;
        a.jmp(skip)?;
        a.int3()?;
        a.set_label(&mut skip)?;
        // The imm32 of `mov eax, imm32` (B8 id) is at +1.
        a.mov(dword_ptr(rdi + 1), 0x6666_6666)?;
        a.set_label(&mut target)?;
        a.mov(eax, 0x1111_1111)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    check(&img, "0000000066666666\n");
}

#[test]
fn write_code_then_jump_to_it() {
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        emit_copy(a, CODE, &mov_eax_ret(CODE, 0x3333_3333))?;
        a.mov(rbx, CODE)?;
        a.call(rbx)?;
        a.call(puthex)?;
        // Rewrite the routine already run (and cached) and call it again,
        // then a third time with only its immediate changed.
        emit_copy(a, CODE, &mov_eax_ret(CODE, 0x4444_4444))?;
        a.call(rbx)?;
        a.call(puthex)?;
        a.mov(rdi, CODE)?;
        a.mov(dword_ptr(rdi + 1), 0x5555_5555)?;
        a.call(rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    check(
        &img,
        "0000000033333333\n0000000044444444\n0000000055555555\n",
    );
}

#[test]
fn string_store_over_code() {
    // REP STOSB overwrites a cached routine with `mov eax, imm32; ret`
    // assembled elsewhere and copied with REP MOVSB.
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let other = CODE + 0x800;
        emit_copy(a, CODE, &mov_eax_ret(CODE, 0x6666_6666))?;
        emit_copy(a, other, &mov_eax_ret(CODE, 0x7777_7777))?;
        a.mov(rbx, CODE)?;
        a.call(rbx)?;
        a.call(puthex)?;
        a.mov(rsi, other)?;
        a.mov(rdi, CODE)?;
        a.mov(ecx, 6)?;
        a.rep().movsb()?;
        a.call(rbx)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    check(&img, "0000000066666666\n0000000077777777\n");
}

/// vCPU 0 calls the routine at CODE in a loop and reports EAX on port
/// 0x80; between its reports the test lets vCPU 1 (or the VMM) rewrite the
/// routine, and vCPU 0 must see the new code.
fn caller_image() -> Vec<u8> {
    guest::long_mode(|a| {
        emit_copy(a, CODE, &mov_eax_ret(CODE, 0x1111_1111))?;
        // vCPU 1's code: patch the immediate, report, halt.
        let mut p = CodeAssembler::new(64)?;
        p.mov(rdi, CODE)?;
        p.mov(dword_ptr(rdi + 1), 0x2222_2222)?;
        p.mov(eax, 1)?;
        p.out(0x80, eax)?;
        p.hlt()?;
        emit_copy(a, PATCHER, &p.assemble(PATCHER)?)?;
        let mut lp = a.create_label();
        a.set_label(&mut lp)?;
        a.mov(rbx, CODE)?;
        a.call(rbx)?;
        a.out(0x80, eax)?;
        a.jmp(lp)
    })
    .unwrap()
}

fn next_report(vcpu: &mut Vcpu) -> u32 {
    match vcpu.run() {
        VcpuExit::IoOut(0x80, d) => u32::from_le_bytes(d.try_into().unwrap()),
        other => panic!("unexpected exit {other:?}"),
    }
}

#[test]
fn another_vcpu_rewrites_cached_code() {
    for cache in [true, false] {
        let (vm, mut v0) = boot(&caller_image(), 2);
        v0.set_code_cache(cache);
        assert_eq!(next_report(&mut v0), 0x1111_1111);
        assert_eq!(next_report(&mut v0), 0x1111_1111);
        let mut v1 = vm.create_vcpu(1);
        v1.set_code_cache(cache);
        v1.set_sregs(&v0.get_sregs());
        let mut r = v0.get_regs();
        r.rip = PATCHER;
        v1.set_regs(&r);
        v1.set_mp_state(MpState::Runnable);
        assert_eq!(next_report(&mut v1), 1);
        assert_eq!(next_report(&mut v0), 0x2222_2222, "cache {cache}");
    }
}

#[test]
fn vmm_rewrites_cached_code() {
    let (vm, mut v0) = boot(&caller_image(), 1);
    assert_eq!(next_report(&mut v0), 0x1111_1111);
    vm.memory()
        .write_phys(Gpa::new(CODE + 1), &0x3333_3333u32.to_le_bytes())
        .unwrap();
    for _ in 0..3 {
        assert_eq!(next_report(&mut v0), 0x3333_3333);
    }
    assert!(v0.code_cache_stats().hits > 0);
}

#[test]
fn cached_and_uncached_benchmarks_agree() {
    for b in testsuite::bench::all(testsuite::bench::Scale::Test) {
        if b.vcpus > 1 {
            continue;
        }
        let mut sums = Vec::new();
        for cache in [true, false] {
            let vm = Vm::new(VmConfig::default());
            let mem = b.memory_mib << 20;
            vm.set_user_memory_region(0, MemFlags::empty(), 0, mem, Backing::Anonymous)
                .unwrap();
            let boot = loader::load(
                &b.image,
                vm.memory(),
                &loader::LoadOptions {
                    mem_size: mem,
                    ..Default::default()
                },
            )
            .unwrap();
            let mut vcpu = vm.create_vcpu(0);
            vcpu.set_sregs(&boot.sregs);
            vcpu.set_regs(&boot.regs);
            vcpu.set_code_cache(cache);
            vcpu.set_instruction_limit(Some(50_000_000));
            let mut out = String::new();
            let mut fw_cfg = 0usize;
            let status = loop {
                match vcpu.run() {
                    VcpuExit::IoOut(0x3f8, d) => out.push(d[0] as char),
                    VcpuExit::IoOut(0xf4, d) => break u32::from_le_bytes(d.try_into().unwrap()),
                    VcpuExit::IoOut(0x510, _) => fw_cfg = 0,
                    VcpuExit::IoIn(0x511, d) => {
                        d[0] = b"QEMU".get(fw_cfg).copied().unwrap_or(0);
                        fw_cfg += 1;
                    }
                    VcpuExit::IoOut(..) | VcpuExit::MmioWrite(..) => {}
                    VcpuExit::MmioRead(_, d) => d.fill(0xff),
                    other => panic!("{}: unexpected exit {other:?}; output {out:?}", b.name),
                }
            };
            assert_eq!(status, 0, "{}: {out}", b.name);
            let sum = testsuite::bench::parse_checksum(&out);
            assert_eq!(sum, b.expected, "{} (cache {cache}): {out}", b.name);
            sums.push(sum);
        }
        assert_eq!(sums[0], sums[1], "{}", b.name);
    }
}

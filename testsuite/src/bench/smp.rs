//! LOCK-heavy SMP guests: the boot CPU starts the others with INIT and
//! SIPI (xAPIC), and every CPU hammers two shared counters with LOCK XADD
//! and a LOCK CMPXCHG retry loop. The final counters do not depend on the
//! interleaving, so the checksum is fixed.
//!
//! When the APs do not check in (a VMM without SMP), the guest prints
//! `skip: ...` and exits with [`SKIP_EXIT`](super::SKIP_EXIT).

use super::{build, must, Bench, Scale, SKIP_EXIT};
use crate::guest::{self, GDT, PML4};
use iced_x86::code_asm::*;

/// Real-mode start of the APs (SIPI vector 0x08).
const TRAMP: u64 = 0x8000;
const TRAMP_PM32: u64 = TRAMP + 0x100;
const TRAMP_LM64: u64 = TRAMP + 0x200;
const TRAMP_GDT: u64 = TRAMP + 0x300;
const TRAMP_GDTR: u64 = TRAMP + 0x380;
const TRAMP_LEN: usize = 0x400;
/// Mailbox: AP entry point, arrived count, go flag, done count, stack index.
const MAIL: u64 = 0x8f00;
const M_ENTRY: u64 = 0;
const M_ARRIVED: u64 = 8;
const M_GO: u64 = 16;
const M_DONE: u64 = 24;
const M_INDEX: u64 = 32;
/// The shared counters, on separate cache lines.
const CTR1: u64 = 0x50_0000;
const CTR2: u64 = CTR1 + 64;
/// AP stacks: 4 KiB each above this.
const AP_STACKS: u64 = 0x60_0000;
const APIC: u64 = 0xfee0_0000;
/// Spins the boot CPU waits for the APs to check in.
const ARRIVE_SPINS: u32 = 20_000_000;

/// The AP start-up code: real mode -> 32-bit protected mode -> long mode,
/// then a jump to the address in the mailbox.
fn trampoline() -> Result<Vec<u8>, IcedError> {
    let mut out = vec![0u8; TRAMP_LEN];
    let mut r = CodeAssembler::new(16)?;
    r.cli()?;
    r.xor(ax, ax)?;
    r.mov(ds, ax)?;
    r.lgdt(word_ptr(TRAMP_GDTR as u32))?;
    r.mov(eax, cr0)?;
    r.or(eax, 1)?;
    r.mov(cr0, eax)?;
    r.jmp_far(0x08, TRAMP_PM32 as u32)?;
    let real = r.assemble(0)?;

    let mut p = CodeAssembler::new(32)?;
    p.mov(ax, 0x10)?;
    p.mov(ds, ax)?;
    p.mov(es, ax)?;
    p.mov(ss, ax)?;
    p.mov(eax, cr4)?;
    p.or(eax, 1 << 5)?;
    p.mov(cr4, eax)?;
    p.mov(eax, PML4 as u32)?;
    p.mov(cr3, eax)?;
    p.mov(ecx, 0xc000_0080u32)?;
    p.rdmsr()?;
    p.or(eax, 1 << 8)?;
    p.wrmsr()?;
    p.mov(eax, cr0)?;
    p.or(eax, 0x8000_0001u32 as i32)?;
    p.mov(cr0, eax)?;
    p.lgdt(dword_ptr((GDT + 0x100) as u32))?;
    p.jmp_far(0x08, TRAMP_LM64 as u32)?;
    let pm32 = p.assemble(TRAMP_PM32)?;

    let mut l = CodeAssembler::new(64)?;
    l.mov(ax, 0x10)?;
    l.mov(ds, ax)?;
    l.mov(es, ax)?;
    l.mov(ss, ax)?;
    l.mov(rax, MAIL + M_ENTRY)?;
    l.mov(rax, qword_ptr(rax))?;
    l.jmp(rax)?;
    let lm64 = l.assemble(TRAMP_LM64)?;

    let put = |out: &mut Vec<u8>, at: u64, b: &[u8]| {
        let at = (at - TRAMP) as usize;
        out[at..at + b.len()].copy_from_slice(b);
    };
    put(&mut out, TRAMP, &real);
    put(&mut out, TRAMP_PM32, &pm32);
    put(&mut out, TRAMP_LM64, &lm64);
    put(
        &mut out,
        TRAMP_GDT + 8,
        &0x00cf_9a00_0000_ffffu64.to_le_bytes(),
    );
    put(
        &mut out,
        TRAMP_GDT + 16,
        &0x00cf_9200_0000_ffffu64.to_le_bytes(),
    );
    let mut gdtr = [0u8; 6];
    gdtr[..2].copy_from_slice(&23u16.to_le_bytes());
    gdtr[2..].copy_from_slice(&(TRAMP_GDT as u32).to_le_bytes());
    put(&mut out, TRAMP_GDTR, &gdtr);
    Ok(out)
}

fn delay(a: &mut CodeAssembler, spins: u32) -> Result<(), IcedError> {
    let mut l = a.create_label();
    a.mov(ecx, spins)?;
    a.set_label(&mut l)?;
    a.pause()?;
    a.dec(ecx)?;
    a.jnz(l)
}

/// `cpus` CPUs, each doing `iters` LOCK XADD + LOCK CMPXCHG increments.
pub fn lock(scale: Scale, cpus: u32) -> Bench {
    let iters: u64 = match scale {
        Scale::Full => 1_500_000,
        Scale::Test => 1_000,
    };
    let image = build(|a| {
        let tramp = trampoline()?;
        let mut tramp_data = a.create_label();
        let mut ap_entry = a.create_label();
        let mut work = a.create_label();
        let mut start = a.create_label();
        let mut skip_cpus = a.create_label();
        let mut skip_aps = a.create_label();
        let mut all_here = a.create_label();
        let mut done = a.create_label();
        a.jmp(start)?;

        // work: iters rounds of LOCK XADD on CTR1 and a CMPXCHG loop on
        // CTR2 adding ((old CTR1) & 7) + 1.
        a.set_label(&mut work)?;
        {
            let mut w = a.create_label();
            let mut retry = a.create_label();
            a.mov(rcx, iters)?;
            a.mov(rsi, CTR1)?;
            a.mov(rdi, CTR2)?;
            a.set_label(&mut w)?;
            a.mov(eax, 1)?;
            a.lock().xadd(qword_ptr(rsi), rax)?;
            a.and(eax, 7)?;
            a.inc(eax)?;
            a.mov(r8, rax)?;
            a.mov(rax, qword_ptr(rdi))?;
            a.set_label(&mut retry)?;
            a.lea(rdx, qword_ptr(rax + r8))?;
            a.lock().cmpxchg(qword_ptr(rdi), rdx)?;
            a.jne(retry)?;
            a.dec(rcx)?;
            a.jnz(w)?;
            a.ret()?;
        }

        // The APs arrive here in long mode.
        a.set_label(&mut ap_entry)?;
        {
            let mut wait_go = a.create_label();
            let mut park = a.create_label();
            a.mov(rbx, MAIL)?;
            a.mov(eax, 1)?;
            a.lock().xadd(qword_ptr(rbx + M_INDEX), rax)?;
            a.inc(rax)?;
            a.shl(rax, 12)?;
            a.mov(rsp, AP_STACKS)?;
            a.add(rsp, rax)?;
            a.lock().inc(qword_ptr(rbx + M_ARRIVED))?;
            a.set_label(&mut wait_go)?;
            a.pause()?;
            a.cmp(qword_ptr(rbx + M_GO), 0)?;
            a.je(wait_go)?;
            a.call(work)?;
            a.mov(rbx, MAIL)?;
            a.lock().inc(qword_ptr(rbx + M_DONE))?;
            a.set_label(&mut park)?;
            a.cli()?;
            a.hlt()?;
            a.jmp(park)?;
        }

        a.set_label(&mut tramp_data)?;
        a.db(&tramp)?;

        a.set_label(&mut start)?;
        // The CPU count from fw_cfg must cover what the benchmark needs.
        a.mov(dx, 0x510)?;
        a.mov(eax, 0x05)?;
        a.out(dx, ax)?;
        a.mov(dx, 0x511)?;
        a.in_(al, dx)?;
        a.movzx(ebx, al)?;
        a.in_(al, dx)?;
        a.movzx(eax, al)?;
        a.shl(eax, 8)?;
        a.or(ebx, eax)?;
        a.cmp(ebx, cpus)?;
        a.jb(skip_cpus)?;
        // Trampoline to 0x8000, mailbox and counters cleared.
        a.lea(rsi, qword_ptr(tramp_data))?;
        a.mov(rdi, TRAMP)?;
        a.mov(ecx, TRAMP_LEN as u32)?;
        a.rep().movsb()?;
        a.mov(rbx, MAIL)?;
        a.lea(rax, qword_ptr(ap_entry))?;
        a.mov(qword_ptr(rbx + M_ENTRY), rax)?;
        a.xor(eax, eax)?;
        for off in [M_ARRIVED, M_GO, M_DONE, M_INDEX] {
            a.mov(qword_ptr(rbx + off), rax)?;
        }
        a.mov(rdi, CTR1)?;
        a.mov(qword_ptr(rdi), rax)?;
        a.mov(qword_ptr(rdi + 64), rax)?;
        // xAPIC: software-enable, INIT to all others, then SIPI twice.
        a.mov(rdi, APIC)?;
        a.mov(dword_ptr(rdi + 0xf0), 0x1ff)?;
        a.mov(dword_ptr(rdi + 0x310), 0)?;
        a.mov(dword_ptr(rdi + 0x300), 0x000c_4500)?;
        delay(a, 100_000)?;
        a.mov(dword_ptr(rdi + 0x300), 0x000c_4600 | (TRAMP >> 12) as u32)?;
        delay(a, 10_000)?;
        a.mov(dword_ptr(rdi + 0x300), 0x000c_4600 | (TRAMP >> 12) as u32)?;
        // Wait for the APs to check in.
        a.mov(ecx, ARRIVE_SPINS)?;
        {
            let mut wa = a.create_label();
            a.set_label(&mut wa)?;
            a.cmp(qword_ptr(rbx + M_ARRIVED), (cpus - 1) as i32)?;
            a.jae(all_here)?;
            a.pause()?;
            a.dec(ecx)?;
            a.jnz(wa)?;
            a.jmp(skip_aps)?;
        }
        a.set_label(&mut all_here)?;
        a.mov(qword_ptr(rbx + M_GO), 1)?;
        a.call(work)?;
        a.mov(rbx, MAIL)?;
        {
            let mut wd = a.create_label();
            a.set_label(&mut wd)?;
            a.pause()?;
            a.cmp(qword_ptr(rbx + M_DONE), (cpus - 1) as i32)?;
            a.jb(wd)?;
        }
        a.mov(rdi, CTR1)?;
        a.mov(rax, qword_ptr(rdi + 64))?;
        a.imul_3(rax, rax, 1_000_003)?;
        a.add(rax, qword_ptr(rdi))?;
        a.jmp(done)?;

        a.set_label(&mut skip_cpus)?;
        guest::print(a, "skip: fw_cfg reports fewer CPUs than needed\n")?;
        guest::exit(a, SKIP_EXIT)?;
        a.set_label(&mut skip_aps)?;
        guest::print(a, "skip: the APs did not start (no INIT/SIPI support?)\n")?;
        guest::exit(a, SKIP_EXIT)?;
        a.set_label(&mut done)?;
        a.nop()
    });
    let total = iters * u64::from(cpus);
    // Every old value 0..total of CTR1 is seen once.
    let ctr2: u64 = (0..total).map(|v| (v & 7) + 1).sum();
    let name = match cpus {
        2 => "lock-smp2",
        4 => "lock-smp4",
        _ => "lock-smp",
    };
    Bench {
        name,
        about: "LOCK XADD and LOCK CMPXCHG on shared counters from every vCPU",
        image: must(image, name),
        memory_mib: 128,
        vcpus: cpus,
        expected: Some(ctr2.wrapping_mul(1_000_003).wrapping_add(total)),
    }
}

//! Page-table-heavy random access: the guest maps 256 MiB with 4 KiB pages
//! (its own page tables) and reads and writes qwords at random addresses,
//! so nearly every access misses any small TLB.

use super::{build, emit_xorshift, must, xorshift, Bench, Scale};
use crate::guest::PML4;
use iced_x86::code_asm::*;
use std::collections::HashMap;

/// Guest-virtual base of the mapped region (PML4 slot 2).
const VA_BASE: u64 = 2 << 39;
/// Physical base of the region: 128 MiB..384 MiB of the 512 MiB of RAM,
/// clear of the top of RAM where QEMU's firmware keeps its tables.
const PA_BASE: u64 = 0x0800_0000;
/// The page-table pages: a PDPT, a page directory, then the page tables.
const PDPT: u64 = 0x100_0000;
const PD: u64 = PDPT + 0x1000;
const PT0: u64 = PDPT + 0x2000;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const MUL: u64 = 0xff51_afd7_ed55_8ccd;

fn params(scale: Scale) -> (u64, u64) {
    match scale {
        // (region bytes, accesses)
        Scale::Full => (256 << 20, 8_000_000),
        Scale::Test => (256 << 20, 5_000),
    }
}

fn model(region: u64, n: u64) -> u64 {
    let mut mem: HashMap<u64, u64> = HashMap::new();
    let (mut x, mut acc) = (SEED, 0u64);
    for _ in 0..n {
        x = xorshift(x);
        let off = x & (region - 1) & !7;
        let v = mem.get(&off).copied().unwrap_or(0);
        acc = acc.wrapping_mul(MUL).wrapping_add(v).wrapping_add(x);
        mem.insert(off, acc ^ x);
    }
    acc
}

/// Random qword reads and writes over 256 MiB of 4 KiB pages.
pub fn random_access(scale: Scale) -> Bench {
    let (region, n) = params(scale);
    let pages = region >> 12;
    let tables = pages / 512;
    let image = build(|a| {
        let mut pd_loop = a.create_label();
        let mut pt_loop = a.create_label();
        let mut lp = a.create_label();
        // PDPT[0] -> PD; the PDPT and PD are zeroed first.
        a.mov(rdi, PDPT)?;
        a.xor(eax, eax)?;
        a.mov(ecx, 1024)?;
        a.rep().stosq()?;
        a.mov(rax, PD | 3)?;
        a.mov(rdi, PDPT)?;
        a.mov(qword_ptr(rdi), rax)?;
        // PD[i] -> PT0 + i * 4096
        a.mov(rdi, PD)?;
        a.mov(rax, PT0 | 3)?;
        a.mov(ecx, tables as u32)?;
        a.set_label(&mut pd_loop)?;
        a.mov(qword_ptr(rdi), rax)?;
        a.add(rdi, 8)?;
        a.add(rax, 0x1000)?;
        a.dec(ecx)?;
        a.jnz(pd_loop)?;
        // PT entries: page j -> PA_BASE + j * 4096 (tables are contiguous)
        a.mov(rdi, PT0)?;
        a.mov(rax, PA_BASE | 3)?;
        a.mov(ecx, pages as u32)?;
        a.set_label(&mut pt_loop)?;
        a.mov(qword_ptr(rdi), rax)?;
        a.add(rdi, 8)?;
        a.add(rax, 0x1000)?;
        a.dec(ecx)?;
        a.jnz(pt_loop)?;
        // PML4[2] -> PDPT, then reload CR3.
        a.mov(rdi, PML4)?;
        a.mov(rax, PDPT | 3)?;
        a.mov(qword_ptr(rdi + 16), rax)?;
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)?;
        // The random walk.
        a.mov(rbx, SEED)?;
        a.xor(r14, r14)?;
        a.mov(r8, MUL)?;
        a.mov(r9, VA_BASE)?;
        a.mov(r10, (region - 1) & !7)?;
        a.mov(r12, n)?;
        a.set_label(&mut lp)?;
        emit_xorshift(a, rbx, rax)?;
        a.mov(rsi, rbx)?;
        a.and(rsi, r10)?;
        a.imul_2(r14, r8)?;
        a.add(r14, qword_ptr(r9 + rsi))?;
        a.add(r14, rbx)?;
        a.mov(rax, r14)?;
        a.xor(rax, rbx)?;
        a.mov(qword_ptr(r9 + rsi), rax)?;
        a.dec(r12)?;
        a.jnz(lp)?;
        a.mov(rax, r14)
    });
    Bench {
        name: "pagetable-random",
        about: "random qword read+write over 256 MiB mapped with 4 KiB pages",
        image: must(image, "pagetable-random"),
        memory_mib: 512,
        vcpus: 1,
        expected: Some(model(region, n)),
    }
}

//! REP MOVS/STOS take a page-at-a-time fast path over RAM; these guests
//! check that it keeps the architectural meaning: overlapping moves copy
//! element by element, and a fault part-way leaves RCX/RDI/RSI counting
//! exactly the elements already done.

use emu_core::{VcpuExit, Vm, VmConfig};
use iced_x86::code_asm::*;
use softmmu::{Backing, MemFlags};
use testsuite::guest::{self, DATA, PML4};

fn run(img: &[u8]) -> String {
    let vm = Vm::new(VmConfig::default());
    vm.set_user_memory_region(0, MemFlags::empty(), 0, 64 << 20, Backing::Anonymous)
        .unwrap();
    let b = loader::load(
        img,
        vm.memory(),
        &loader::LoadOptions {
            mem_size: 64 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let mut v = vm.create_vcpu(0);
    v.set_sregs(&b.sregs);
    v.set_regs(&b.regs);
    v.set_instruction_limit(Some(10_000_000));
    let mut out = String::new();
    loop {
        match v.run() {
            VcpuExit::IoOut(0x3f8, d) => out.push(d[0] as char),
            VcpuExit::IoOut(0xf4, _) => return out,
            other => panic!("unexpected exit {other:?}; output {out:?}"),
        }
    }
}

#[test]
fn overlapping_forward_movsb_replicates_the_pattern() {
    let src = DATA + 0x1_0000;
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        a.mov(rax, 0x0706_0504_0302_0100u64)?;
        a.mov(qword_ptr(src), rax)?;
        // Copy 3000 bytes from src to src + 3: each byte comes from 3 back.
        a.mov(rsi, src)?;
        a.mov(rdi, src + 3)?;
        a.mov(ecx, 3000)?;
        a.cld()?;
        a.rep().movsb()?;
        a.mov(rax, qword_ptr(src + 2992))?;
        a.call(puthex)?;
        a.mov(rax, rdi)?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    // Bytes at 2992.. are the pattern 0,1,2 repeating from offset 0:
    // 2992 % 3 = 1, so 01 02 00 01 02 00 01 02 (little-endian qword).
    let want = format!(
        "{:016X}\n{:016X}\n",
        0x0201_0002_0100_0201u64,
        src + 3 + 3000
    );
    assert_eq!(run(&img), want);
}

#[test]
fn rep_stosq_faulting_on_the_next_page_leaves_exact_counts() {
    // Unmap the 2 MiB page at 6 MiB, store 1024 qwords starting 2 KiB
    // before it: 256 stores succeed, the 257th faults.
    const HOLE: u64 = 6 << 20;
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut handler = a.create_label();
        let mut start = a.create_label();
        a.jmp(start)?;
        a.set_label(&mut handler)?;
        a.mov(rax, cr2)?;
        a.call(puthex)?;
        a.mov(rax, rcx)?;
        a.call(puthex)?;
        a.mov(rax, rdi)?;
        a.call(puthex)?;
        a.mov(rax, qword_ptr(HOLE - 8))?;
        a.call(puthex)?;
        guest::exit(a, 0)?;
        a.set_label(&mut start)?;
        let idt = DATA + 0x9000;
        guest::set_idt_gate(a, idt, 14, handler)?;
        guest::load_idt(a, idt)?;
        // PD entry 3 of the first GiB maps 6 MiB: clear it.
        a.mov(qword_ptr(PML4 + 0x2000 + 3 * 8), 0)?;
        a.invlpg(ptr(HOLE))?;
        a.mov(rax, 0x1122_3344_5566_7788u64)?;
        a.mov(rdi, HOLE - 2048)?;
        a.mov(ecx, 1024)?;
        a.rep().stosq()?;
        guest::exit(a, 1)
    })
    .unwrap();
    let want = format!(
        "{:016X}\n{:016X}\n{:016X}\n{:016X}\n",
        HOLE,
        1024 - 256,
        HOLE,
        0x1122_3344_5566_7788u64
    );
    assert_eq!(run(&img), want);
}

//! The guest kit itself: a built guest boots in softvm and talks to us.

use emu_core::{VcpuExit, Vm, VmConfig};
use iced_x86::code_asm::*;
use softmmu::{Backing, MemFlags};
use testsuite::guest;

/// Run a guest image, collecting serial output, until it writes the exit port.
fn run(image: &[u8]) -> (String, u32) {
    let vm = Vm::new(VmConfig::default());
    vm.set_user_memory_region(0, MemFlags::empty(), 0, 64 << 20, Backing::Anonymous)
        .unwrap();
    let boot = loader::load(
        image,
        vm.memory(),
        &loader::LoadOptions {
            mem_size: 64 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let mut vcpu = vm.create_vcpu(0);
    vcpu.set_sregs(&boot.sregs);
    vcpu.set_regs(&boot.regs);
    vcpu.set_instruction_limit(Some(10_000_000));
    let mut out = String::new();
    loop {
        match vcpu.run() {
            VcpuExit::IoOut(0x3f8, d) => out.push(d[0] as char),
            VcpuExit::IoOut(0xf4, d) => return (out, u32::from_le_bytes(d.try_into().unwrap())),
            other => panic!("unexpected exit {other:?}; output so far {out:?}"),
        }
    }
}

#[test]
fn long_mode_guest_prints_and_exits() {
    let img = guest::long_mode(|a| {
        guest::print(a, "hi from 64-bit\n")?;
        let puthex = guest::puthex_routine_after_jump(a)?;
        a.mov(rax, 0x1234_5678_9abc_def0u64)?;
        a.call(puthex)?;
        guest::exit(a, 7)
    })
    .unwrap();
    let (out, code) = run(&img);
    assert_eq!(out, "hi from 64-bit\n123456789ABCDEF0\n");
    assert_eq!(code, 7);
}

//! The devices test kernels use, through `softvm run`: an interrupt line of
//! pc-testdev routed by the I/O APIC to the local APIC, and a PIT channel-2
//! delay loop.

use iced_x86::code_asm::*;
use std::process::Command;
use testsuite::guest::{self, APIC, DATA};

const IOAPIC: u64 = 0xfec0_0000;
const FLAG: u64 = DATA + 0x8000;
const IDT: u64 = DATA + 0x9000;

fn run(img: &[u8], name: &str) -> std::process::Output {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, img).unwrap();
    Command::new(env!("CARGO_BIN_EXE_softvm"))
        .arg("run")
        .arg(&f)
        .args(["--timeout", "30"])
        .output()
        .unwrap()
}

#[test]
fn testdev_line_through_the_ioapic_interrupts_the_cpu() {
    let img = guest::long_mode(|a| {
        let mut handler = a.create_label();
        let mut start = a.create_label();
        a.jmp(start)?;
        a.set_label(&mut handler)?;
        a.mov(qword_ptr(FLAG), 0x61)?;
        a.mov(rbx, APIC)?;
        a.mov(dword_ptr(rbx + 0xb0), 0)?;
        a.iretq()?;
        a.set_label(&mut start)?;
        guest::set_idt_gate(a, IDT, 0x61, handler)?;
        guest::load_idt(a, IDT)?;
        a.mov(rbx, APIC)?;
        a.mov(dword_ptr(rbx + 0xf0), 0x1ff)?;
        // I/O APIC pin 5: vector 0x61, fixed, edge, destination APIC 0.
        a.mov(rbx, IOAPIC)?;
        a.mov(dword_ptr(rbx), 0x10 + 2 * 5)?;
        a.mov(dword_ptr(rbx + 0x10), 0x61)?;
        a.mov(dword_ptr(rbx), 0x10 + 2 * 5 + 1)?;
        a.mov(dword_ptr(rbx + 0x10), 0)?;
        // Read back the version register: 24 entries.
        a.mov(dword_ptr(rbx), 1)?;
        a.mov(eax, dword_ptr(rbx + 0x10))?;
        a.shr(eax, 16)?;
        a.cmp(eax, 0x17)?;
        let mut bad = a.create_label();
        a.jne(bad)?;
        a.sti()?;
        // Raise pc-testdev line 5.
        a.mov(dx, 0x2005)?;
        a.mov(al, 1)?;
        a.out(dx, al)?;
        a.nop()?;
        a.cmp(qword_ptr(FLAG), 0x61)?;
        a.jne(bad)?;
        guest::print(a, "irq 5 delivered\n")?;
        guest::exit(a, 0)?;
        a.set_label(&mut bad)?;
        guest::exit(a, 1)
    })
    .unwrap();
    let o = run(&img, "ioapic.elf");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "irq 5 delivered\n");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn pit_channel_two_delay_loop_finishes() {
    // 11932 ticks of 1.193182 MHz = 10 ms: program channel 2 in mode 0,
    // open its gate, and poll OUT2 on port 0x61 until it rises.
    let img = guest::long_mode(|a| {
        a.in_(al, 0x61)?;
        a.and(al, 0xfc)?;
        a.or(al, 1)?;
        a.out(0x61, al)?;
        a.mov(al, 0xb0)?; // channel 2, lobyte/hibyte, mode 0
        a.out(0x43, al)?;
        a.mov(al, (11932 & 0xff) as u32)?;
        a.out(0x42, al)?;
        a.mov(al, (11932 >> 8) as u32)?;
        a.out(0x42, al)?;
        a.xor(ecx, ecx)?;
        let mut poll = a.create_label();
        a.set_label(&mut poll)?;
        a.inc(rcx)?;
        a.in_(al, 0x61)?;
        a.test(al, 0x20)?;
        a.jz(poll)?;
        // It took more than one poll: time really had to pass.
        a.cmp(rcx, 10)?;
        let mut fast = a.create_label();
        a.jb(fast)?;
        guest::print(a, "pit delay done\n")?;
        guest::exit(a, 0)?;
        a.set_label(&mut fast)?;
        guest::exit(a, 1)
    })
    .unwrap();
    let t = std::time::Instant::now();
    let o = run(&img, "pit.elf");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "pit delay done\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(t.elapsed() >= std::time::Duration::from_millis(10));
}

#[test]
fn serial_receive_reads_stdin_when_asked() {
    // Echo COM1 input in upper case until a newline.
    let img = guest::long_mode(|a| {
        let mut wait = a.create_label();
        let mut done = a.create_label();
        a.set_label(&mut wait)?;
        a.mov(dx, 0x3fd)?;
        a.in_(al, dx)?;
        a.test(al, 1)?;
        a.jz(wait)?;
        a.mov(dx, 0x3f8)?;
        a.in_(al, dx)?;
        a.cmp(al, 10)?;
        a.je(done)?;
        a.and(al, 0xdf)?;
        a.out(dx, al)?;
        a.jmp(wait)?;
        a.set_label(&mut done)?;
        guest::print(a, "\n")?;
        guest::exit(a, 0)
    })
    .unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("echo.elf");
    std::fs::write(&f, &img).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_softvm"))
        .arg("run")
        .arg(&f)
        .args(["--stdin", "--timeout", "30"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "HELLO\n");
    assert_eq!(o.status.code(), Some(1));
}

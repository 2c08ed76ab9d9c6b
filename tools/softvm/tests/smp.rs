//! `softvm run --vcpus N` as a user runs it: the guest starts its
//! application processors with INIT/SIPI and they all count.

use iced_x86::code_asm::*;
use std::process::Command;
use testsuite::guest::{self, DATA};

const COUNTER: u64 = DATA + 0x8000;
const ARRIVED: u64 = DATA + 0x8008;

fn count_loop(a: &mut CodeAssembler, n: i32) -> Result<(), IcedError> {
    a.mov(ecx, n)?;
    let mut l = a.create_label();
    a.set_label(&mut l)?;
    a.lock().inc(qword_ptr(COUNTER))?;
    a.dec(ecx)?;
    a.jnz(l)
}

/// Starts the APs, counts, waits for `aps` APs, prints the total in hex.
fn smp_guest(aps: i32) -> Vec<u8> {
    guest::long_mode_smp(
        |a| {
            let puthex = guest::puthex_routine_after_jump(a)?;
            guest::start_aps(a)?;
            count_loop(a, 1000)?;
            let mut w = a.create_label();
            a.set_label(&mut w)?;
            a.pause()?;
            a.cmp(qword_ptr(ARRIVED), aps)?;
            a.jne(w)?;
            a.mov(rax, qword_ptr(COUNTER))?;
            a.call(puthex)?;
            guest::exit(a, 0)
        },
        |a| {
            count_loop(a, 1000)?;
            a.lock().inc(qword_ptr(ARRIVED))?;
            let mut park = a.create_label();
            a.set_label(&mut park)?;
            a.cli()?;
            a.hlt()?;
            a.jmp(park)
        },
    )
    .unwrap()
}

fn run(img: &[u8], args: &[&str]) -> std::process::Output {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("smp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(format!("g{}.elf", args.join("_")));
    std::fs::write(&f, img).unwrap();
    Command::new(env!("CARGO_BIN_EXE_softvm"))
        .arg("run")
        .arg(&f)
        .args(args)
        .args(["--timeout", "60"])
        .output()
        .unwrap()
}

#[test]
fn four_vcpus_count_together() {
    let o = run(&smp_guest(3), &["--vcpus", "4"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{:016X}\n", 4000)
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stderr.is_empty());
}

#[test]
fn init_sipi_is_harmless_with_one_vcpu() {
    // Test kernels broadcast INIT/SIPI even when alone: nobody answers, so
    // this guest waits for 0 APs.
    let o = run(&smp_guest(0), &["--vcpus", "1"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{:016X}\n", 1000)
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn vcpus_that_all_halt_forever_end_with_status_10() {
    let img = guest::long_mode_smp(
        |a| {
            guest::start_aps(a)?;
            a.cli()?;
            a.hlt()?;
            guest::exit(a, 5)
        },
        |a| {
            a.cli()?;
            a.hlt()
        },
    )
    .unwrap();
    let o = run(&img, &["--vcpus", "2"]);
    assert_eq!(o.status.code(), Some(10));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("halted"), "{e}");
}

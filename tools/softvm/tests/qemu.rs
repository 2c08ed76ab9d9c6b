//! The QEMU-compatible front end as kvm-unit-tests' scripts use it:
//! `softvm qemu ARGS` and softvm invoked through a `qemu-system-x86_64`
//! link, with the command line of `x86/run`, and the probes of
//! `scripts/arch-run.bash` and `scripts/runtime.bash`.

use iced_x86::code_asm::*;
use std::path::PathBuf;
use std::process::{Command, Output};
use testsuite::guest;

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("qemu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn qemu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softvm"))
        .arg("qemu")
        .args(args)
        .output()
        .unwrap()
}

/// Prints its multiboot command line, then exits with the CPU count fw_cfg
/// reports.
fn guest_image() -> Vec<u8> {
    guest::long_mode(|a| {
        guest::print(a, "cmdline: ")?;
        // EBX still holds the multiboot information (0x9000): print the
        // string at its cmdline field.
        a.mov(esi, dword_ptr(0x9000 + 16))?;
        a.mov(dx, 0x3f8)?;
        let mut next = a.create_label();
        let mut done = a.create_label();
        a.set_label(&mut next)?;
        a.mov(al, byte_ptr(rsi))?;
        a.test(al, al)?;
        a.jz(done)?;
        a.out(dx, al)?;
        a.inc(rsi)?;
        a.jmp(next)?;
        a.set_label(&mut done)?;
        guest::print(a, "\n")?;
        a.mov(dx, 0x510)?;
        a.mov(ax, 5)?;
        a.out(dx, ax)?;
        a.mov(dx, 0x511)?;
        a.in_(al, dx)?;
        a.movzx(eax, al)?;
        a.mov(dx, 0xf4)?;
        a.out(dx, eax)?;
        a.hlt()
    })
    .unwrap()
}

fn kvm_unit_tests_line(kernel: &str) -> Vec<&str> {
    vec![
        "--no-reboot",
        "-nodefaults",
        "-global",
        "kvm-pit.lost_tick_policy=discard",
        "-device",
        "pc-testdev",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x4",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-machine",
        "accel=tcg",
        "-kernel",
        kernel,
        "-smp",
        "2",
        "-m",
        "256",
        "-append",
        "first second",
        "-cpu",
        "max",
    ]
}

#[test]
fn a_kvm_unit_tests_command_line_runs_the_guest() {
    let d = scratch("run");
    let k = d.join("t.flat");
    std::fs::write(&k, guest_image()).unwrap();
    let ks = k.to_str().unwrap();
    let o = qemu(&kvm_unit_tests_line(ks));
    assert_eq!(text(&o.stderr), "");
    assert_eq!(text(&o.stdout), format!("cmdline: {ks} first second\n"));
    assert_eq!(o.status.code(), Some((2 << 1) | 1), "fw_cfg says -smp 2");
}

#[test]
fn a_qemu_system_x86_64_link_is_the_front_end() {
    let d = scratch("link");
    let link = d.join("qemu-system-x86_64");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_softvm"), &link).unwrap();
    let k = d.join("t.flat");
    std::fs::write(&k, guest_image()).unwrap();
    let o = Command::new(&link)
        .args(kvm_unit_tests_line(k.to_str().unwrap()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    // The probes of arch-run.bash: --help grepped for QEMU, the first line
    // of -h parsed as "QEMU emulator version MAJOR.MINOR.MICRO".
    let help = Command::new(&link).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("QEMU"));
    let h = Command::new(&link).arg("-h").output().unwrap();
    let first = text(&h.stdout).lines().next().unwrap().to_string();
    let words: Vec<&str> = first.split([' ', '.']).collect();
    assert_eq!(&words[..3], ["QEMU", "emulator", "version"], "{first}");
    for w in &words[3..6] {
        w.parse::<u32>().unwrap_or_else(|_| panic!("{first}"));
    }
    // A missing kernel reads like QEMU's error (runtime.bash greps it).
    let o = Command::new(&link)
        .args(["-kernel", "_NO_FILE_4Uhere_", "-smp", "1"])
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert_eq!(
        e,
        "qemu-system-x86_64: could not load kernel '_NO_FILE_4Uhere_': No such file or directory\n"
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn device_help_lists_exactly_the_devices_that_exist() {
    for probe in ["help", "?"] {
        let o = qemu(&["-device", probe]);
        assert_eq!(o.status.code(), Some(0));
        let out = text(&o.stdout);
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("name \""))
            .map(|l| &l[..l.find('"').unwrap()])
            .collect();
        assert_eq!(names, ["isa-debug-exit", "pc-testdev"], "{out}");
        // x86/run greps `"pc-testdev"` with the quotes, and pci-testdev.
        assert!(out.contains("\"pc-testdev\""));
        assert!(!out.contains("pci-testdev"));
    }
    // Each listed device is accepted, anything else refused by name.
    let d = scratch("dev");
    let k = d.join("t.flat");
    std::fs::write(&k, guest_image()).unwrap();
    let o = qemu(&["-kernel", k.to_str().unwrap(), "-device", "pci-testdev"]);
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("pci-testdev"), "{e}");
}

#[test]
fn other_probes_and_refusals() {
    let out = |args: &[&str]| {
        let o = qemu(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        text(&o.stdout)
    };
    assert!(out(&["--version"]).starts_with("QEMU emulator version "));
    assert!(out(&["-machine", "help"]).contains("pc "));
    assert!(out(&["-cpu", "help"]).contains("max"));
    for (args, want) in [
        (&["-kernel", "k", "-S"][..], "gdb"),
        (&["-kernel", "k", "-cpu", "max,+warp-drive"], "warp-drive"),
        (&["-kernel", "k", "-smp", "300"], "Invalid SMP CPUs 300"),
        (&["-kernel", "k", "-bogus"], "-bogus"),
    ] {
        let o = qemu(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = text(&o.stderr);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn serial_to_a_file_and_without_the_exit_device() {
    let d = scratch("serial");
    let k = d.join("t.flat");
    std::fs::write(&k, guest_image()).unwrap();
    let log = d.join("serial.log");
    let file = format!("file:{}", log.display());
    let o = qemu(&[
        "-kernel",
        k.to_str().unwrap(),
        "-serial",
        &file,
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
        "-display",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(text(&o.stdout), "");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .starts_with("cmdline: "));
    // Without isa-debug-exit port 0xf4 is nothing: the guest's HLT after
    // it, with interrupts off, halts the machine for good (status 10).
    let o = qemu(&["-kernel", k.to_str().unwrap(), "-nographic"]);
    assert_eq!(o.status.code(), Some(10), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("cmdline: "));
}

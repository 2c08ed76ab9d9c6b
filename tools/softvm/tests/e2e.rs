//! End-to-end tests of `softvm run` as a user meets it: small guests built
//! with the guest kit (multiboot images entering long mode, and a bare-metal
//! ELF64 program), run by the `softvm` binary, judged by stdout, stderr and
//! the process status. Also every command's `--help`, and malformed inputs.

use iced_x86::code_asm::*;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testsuite::guest;
use testsuite::image::{self, Segment};

fn softvm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softvm"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// softvm's own outcomes come with exactly one line on stderr.
fn one_line_stderr(o: &Output) -> String {
    let s = stderr(o);
    assert_eq!(s.lines().count(), 1, "stderr should be one line: {s:?}");
    assert!(s.ends_with('\n'), "{s:?}");
    assert!(s.starts_with("softvm: "), "{s:?}");
    s
}

fn long_mode(body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    guest::long_mode(body).unwrap()
}

/// An instruction emu-core does not implement, as (bytes, disassembly).
/// Chosen at test time from candidates, so the test stays valid when one of
/// them gets implemented.
fn unimplemented_instruction() -> (Vec<u8>, String) {
    let implemented = emu_core::testing::implemented_codes();
    let candidates: [&[u8]; 6] = [
        &[0xd9, 0xe8],                         // fld1
        &[0xd9, 0xfe],                         // fsin
        &[0xd9, 0xeb],                         // fldpi
        &[0xde, 0xc1],                         // faddp st(1), st
        &[0x66, 0x0f, 0x38, 0xdc, 0xc1],       // aesenc xmm0, xmm1
        &[0x66, 0x0f, 0x3a, 0x44, 0xc1, 0x00], // pclmulqdq xmm0, xmm1, 0
    ];
    for bytes in candidates {
        let ins = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE).decode();
        assert!(!ins.is_invalid());
        if !implemented.contains(&ins.code()) {
            let mut text = String::new();
            IntelFormatter::new().format(&ins, &mut text);
            return (bytes.to_vec(), text);
        }
    }
    panic!("every candidate instruction is implemented now: add an unimplemented one");
}

/// A bare-metal ELF64 program (no multiboot header), entered in long mode
/// by the loader's ELF64 contract: it checks EFER.LMA, uses the boot stack
/// (call/ret), prints over COM1 and exits with 0.
fn elf64_guest() -> Vec<u8> {
    const AT: u64 = 0x10_0000;
    let mut a = CodeAssembler::new(64).unwrap();
    let mut routine = a.create_label();
    let mut bad = a.create_label();
    guest::print(&mut a, "ELF64 ").unwrap();
    a.call(routine).unwrap();
    a.mov(ecx, 0xc000_0080u32).unwrap();
    a.rdmsr().unwrap();
    a.bt(eax, 10).unwrap();
    a.jae(bad).unwrap();
    a.cmp(rsp, 0x9_0000).unwrap();
    a.jne(bad).unwrap();
    guest::print(&mut a, "long mode\n").unwrap();
    guest::exit(&mut a, 0).unwrap();
    a.set_label(&mut bad).unwrap();
    guest::print(&mut a, "wrong boot state\n").unwrap();
    guest::exit(&mut a, 1).unwrap();
    a.set_label(&mut routine).unwrap();
    guest::print(&mut a, "bare-metal ").unwrap();
    a.ret().unwrap();
    let code = a.assemble(AT).unwrap();
    let seg = Segment {
        paddr: AT,
        memsz: code.len() as u64 + 0x1000,
        data: code,
    };
    image::elf(true, AT, &[seg])
}

/// The guests, written once into a directory shared by the tests.
fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-guests");
        std::fs::create_dir_all(&dir).unwrap();
        let (unsup, _) = unimplemented_instruction();
        let images: Vec<(&str, Vec<u8>)> = vec![
            (
                "pass.elf",
                long_mode(|a| {
                    guest::print(a, "hello from a softvm guest\n")?;
                    guest::exit(a, 0)
                }),
            ),
            (
                "fail.elf",
                long_mode(|a| {
                    guest::print(a, "this test fails\n")?;
                    guest::exit(a, 1)
                }),
            ),
            ("skip.elf", long_mode(|a| guest::exit(a, 38))),
            ("status85.elf", long_mode(|a| guest::exit(a, 0x2a))),
            (
                "triple.elf",
                long_mode(|a| {
                    guest::print(a, "about to fault\n")?;
                    a.mov(rax, guest::DATA)?;
                    a.mov(qword_ptr(rax), 0)?;
                    a.mov(word_ptr(rax + 8), 0)?;
                    a.lidt(ptr(rax))?;
                    a.ud2()
                }),
            ),
            (
                "spin.elf",
                long_mode(|a| {
                    let mut l = a.create_label();
                    a.set_label(&mut l)?;
                    a.inc(rcx)?;
                    a.jmp(l)
                }),
            ),
            (
                "unsupported.elf",
                long_mode(|a| {
                    guest::print(a, "before\n")?;
                    a.db(&unsup)?;
                    guest::exit(a, 0)
                }),
            ),
            (
                "halt.elf",
                long_mode(|a| {
                    a.cli()?;
                    a.hlt()
                }),
            ),
            (
                "poweroff.elf",
                long_mode(|a| {
                    guest::print(a, "bye\n")?;
                    a.mov(dx, 0x8900)?;
                    for c in b"Shutdown" {
                        a.mov(al, u32::from(*c))?;
                        a.out(dx, al)?;
                    }
                    a.hlt()
                }),
            ),
            (
                // Exits with the CPU count fw_cfg reports.
                "cpus.elf",
                long_mode(|a| {
                    a.mov(dx, 0x510)?;
                    a.mov(ax, 5)?;
                    a.out(dx, ax)?;
                    a.mov(dx, 0x511)?;
                    a.in_(al, dx)?;
                    a.movzx(eax, al)?;
                    a.mov(dx, 0xf4)?;
                    a.out(dx, eax)?;
                    a.hlt()
                }),
            ),
            ("elf64.elf", elf64_guest()),
        ];
        for (name, img) in images {
            // Write then rename: concurrent test runs see whole files.
            let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, img).unwrap();
            std::fs::rename(&tmp, dir.join(name)).unwrap();
        }
        dir
    })
}

fn guest_path(name: &str) -> String {
    guests().join(name).to_str().unwrap().to_string()
}

fn run(name: &str, extra: &[&str]) -> Output {
    let p = guest_path(name);
    let mut args = vec!["run", p.as_str()];
    args.extend_from_slice(extra);
    softvm(&args)
}

#[test]
fn passing_guest_prints_and_exits_1() {
    let o = run("pass.elf", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello from a softvm guest\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn guest_statuses_are_odd_and_silent() {
    for (name, want, out) in [
        ("fail.elf", 3, "this test fails\n"),
        ("skip.elf", 77, ""),
        ("status85.elf", 85, ""),
    ] {
        let o = run(name, &[]);
        assert_eq!(o.status.code(), Some(want), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o), out, "{name}");
        assert_eq!(
            stderr(&o),
            "",
            "{name}: a guest status prints nothing of softvm's"
        );
    }
}

#[test]
fn power_off_is_status_0() {
    let o = run("poweroff.elf", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "bye\n");
    assert_eq!(stderr(&o), "");
}

#[test]
fn triple_fault_is_status_4_with_rip() {
    let o = run("triple.elf", &[]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stdout(&o), "about to fault\n");
    let e = one_line_stderr(&o);
    assert!(e.contains("triple fault") && e.contains("rip 0x"), "{e}");
    assert!(e.contains("triple.elf"), "{e}");
}

#[test]
fn spinning_guest_times_out_with_124() {
    let t = Instant::now();
    let o = run("spin.elf", &["--timeout", "1"]);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    let e = one_line_stderr(&o);
    assert!(e.contains("timeout") && e.contains("rip 0x"), "{e}");
    assert_eq!(stdout(&o), "");
}

#[test]
fn instruction_budget_is_status_8() {
    let o = run("spin.elf", &["--max-instructions", "5000"]);
    assert_eq!(o.status.code(), Some(8));
    let e = one_line_stderr(&o);
    assert!(e.contains("5000"), "{e}");
}

#[test]
fn unsupported_instruction_is_status_6_with_disassembly() {
    let (bytes, text) = unimplemented_instruction();
    let o = run("unsupported.elf", &[]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert_eq!(stdout(&o), "before\n");
    let e = one_line_stderr(&o);
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert!(e.contains("unsupported instruction"), "{e}");
    assert!(e.contains("rip 0x"), "{e}");
    assert!(e.contains(&text), "{e} should name {text}");
    assert!(e.contains(&hex.join(" ")), "{e} should show the bytes");
}

#[test]
fn dead_halt_is_status_10() {
    let o = run("halt.elf", &[]);
    assert_eq!(o.status.code(), Some(10));
    one_line_stderr(&o);
}

#[test]
fn fw_cfg_reports_vcpus() {
    assert_eq!(run("cpus.elf", &[]).status.code(), Some(3));
    let o = run("cpus.elf", &["--vcpus", "3"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn bare_metal_elf64_runs_in_long_mode() {
    let o = run("elf64.elf", &[]);
    assert_eq!(stdout(&o), "ELF64 bare-metal long mode\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");
}

#[test]
fn every_command_has_help() {
    for args in [
        &["help"][..],
        &["--help"],
        &["-h"],
        &["run", "--help"],
        &["run", "-h"],
        &["run", "x.elf", "--vcpus", "2", "--help"],
        &["help", "run"],
        &["test", "--help"],
        &["test", "-h"],
        &["help", "test"],
        &["trace", "--help"],
        &["bench", "--help"],
        &["demo", "--help"],
        &["help", "demo"],
    ] {
        let o = softvm(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
        let out = stdout(&o);
        let cmd = args
            .iter()
            .find(|a| ["run", "test", "trace", "bench", "demo"].contains(a));
        let want = match cmd {
            Some(&"run") => "Usage: softvm run [OPTIONS] <FILE>",
            Some(&"test") => "Usage: softvm test [OPTIONS] <PATH>...",
            Some(&"trace") => "Usage: softvm trace [OPTIONS] <FILE>",
            Some(&"bench") => "Usage: softvm bench [OPTIONS] <DIR>",
            Some(_) => "Usage: softvm demo",
            None => "Usage: softvm <COMMAND>",
        };
        assert!(out.contains(want), "{args:?}: {out}");
    }
    // `demo --help` is help, not the demo.
    assert!(!stdout(&softvm(&["demo", "--help"])).contains("booting"));
    // The overview lists every command; each command's text its options.
    let top = stdout(&softvm(&["help"]));
    for c in ["run", "test", "trace", "demo", "bench", "qemu"] {
        assert!(top.contains(&format!("  {c} ")), "help lacks {c}: {top}");
    }
    assert!(stdout(&softvm(&["run", "--help"])).contains("--max-instructions"));
    let t = stdout(&softvm(&["test", "--help"]));
    for w in [
        "--jobs",
        "--junit",
        "--tap",
        "--timeout",
        "softvm-tests.txt",
        "N passed, M failed",
    ] {
        assert!(t.contains(w), "test --help lacks {w}");
    }
    // `-h` as the value of --cmdline is not a request for help.
    let o = softvm(&["run", "/nonexistent.elf", "--cmdline", "-h"]);
    assert_eq!(o.status.code(), Some(2));
    // No command at all: clap's usage on stderr, a usage status.
    let o = softvm(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage: softvm <COMMAND>"));
}

#[test]
fn version_and_conventional_option_forms() {
    for v in ["--version", "-V"] {
        let o = softvm(&[v]);
        assert_eq!(o.status.code(), Some(0), "{v}");
        assert_eq!(
            stdout(&o),
            format!("softvm {}\n", env!("CARGO_PKG_VERSION")),
            "{v}"
        );
    }
    // --flag=value and `--` before the file.
    let p = guest_path("pass.elf");
    let o = softvm(&["run", "--timeout=20", "--vcpus=2", "--", &p]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello from a softvm guest\n");
}

#[test]
fn usage_errors_suggest_and_name_ranges() {
    let p = guest_path("pass.elf");
    for (args, wants) in [
        (vec!["run", &p, "--vcpu", "2"], vec!["--vcpu", "--vcpus"]),
        (vec!["run", &p, "--vcpus", "1000"], vec!["1000", "1 to 255"]),
        (vec!["run", &p, "--memory", "1K"], vec!["1K", "2M to 64G"]),
        (vec!["run", &p, "--cpu", "486"], vec!["486", "max", "host"]),
        (vec!["rnn", &p], vec!["rnn", "run"]),
        (vec!["help", "frobnicate"], vec!["frobnicate"]),
    ] {
        let o = softvm(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
        let e = one_line_stderr(&o);
        for w in wants {
            assert!(e.contains(w), "{args:?}: {e} lacks {w}");
        }
    }
}

/// `--timeout inf` (or 1e300) used to panic (status 12, or 101 with a
/// closed stderr): it is a usage error now, whatever stderr is.
#[test]
fn absurd_timeouts_are_usage_errors_even_with_stderr_closed() {
    let p = guest_path("spin.elf");
    for t in ["inf", "1e300", "NaN", "-1", "0"] {
        let o = softvm(&["run", &p, "--timeout", t]);
        assert_eq!(o.status.code(), Some(2), "{t}: {}", stderr(&o));
        let e = one_line_stderr(&o);
        assert!(e.contains("--timeout") && e.contains("finite"), "{e}");
        // stderr a pipe nobody reads: still status 2, never 101.
        let mut child = Command::new(env!("CARGO_BIN_EXE_softvm"))
            .args(["run", &p, "--timeout", t])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        assert_eq!(
            child.wait().unwrap().code(),
            Some(2),
            "{t} with stderr closed"
        );
    }
}

/// Malformed inputs each give status 2, nothing on stdout and one line on
/// stderr naming the file.
#[test]
fn malformed_inputs_are_one_line_errors() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pass = std::fs::read(guest_path("pass.elf")).unwrap();
    let elf64 = std::fs::read(guest_path("elf64.elf")).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.elf", Vec::new()),
        ("truncated-header.elf", pass[..40].to_vec()),
        ("truncated-multiboot.elf", pass[..0x1100].to_vec()),
        ("truncated-elf64.elf", elf64[..elf64.len() - 20].to_vec()),
        ("random.flat", random),
        ("text.elf", b"#!/bin/sh\necho not a kernel\n".to_vec()),
    ];
    for (name, bytes) in &cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let o = softvm(&["run", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{name}");
        let e = one_line_stderr(&o);
        assert!(e.contains(name), "{name}: {e}");
    }
    // A directory is not a kernel either.
    let o = softvm(&["run", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    one_line_stderr(&o);
    std::fs::remove_dir_all(&dir).unwrap();
}

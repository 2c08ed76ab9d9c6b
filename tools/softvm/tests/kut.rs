//! `softvm test` on a kvm-unit-tests tree: a scratch tree laid out as a
//! built kvm-unit-tests is (`config.mak`, `build-head`, `x86/unittests.cfg`,
//! `x86/*.flat`), with guests from the guest kit standing in for the
//! suite's kernels: one echoes what it was given (command line, CPU count,
//! memory, the environment module), the others end as the suite's kernels
//! end (pass, fail, skip, a crash, a hang).

use iced_x86::code_asm::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use testsuite::guest;

mod common;
use common::{exits, long_mode, spin, triple_fault};

/// A scratch tree, removed when the test passes (kept on failure).
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str, cfg: &str) -> Tree {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("kut-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("x86")).unwrap();
        std::fs::write(
            d.join("config.mak"),
            "ARCH=x86_64\nTEST_DIR=x86\nENVIRON_DEFAULT=yes\n",
        )
        .unwrap();
        std::fs::write(d.join("build-head"), "0123abcd\n").unwrap();
        std::fs::write(d.join("x86/unittests.cfg"), cfg).unwrap();
        for (name, image) in [
            ("echo", echo()),
            ("pass", exits(0, "SUMMARY: 3 tests\n")),
            (
                "fail",
                exits(
                    1,
                    "PASS: a\nFAIL: b: went wrong\nSUMMARY: 2 tests, 1 unexpected failures\n",
                ),
            ),
            (
                "skip",
                exits(38, "SKIP: no such feature\nSUMMARY: 1 tests, 1 skipped\n"),
            ),
            (
                "abort",
                exits(64, "Unhandled exception 13 #GP(0) at ip 0000000000400123\n"),
            ),
            ("triple", triple_fault()),
            ("spin", spin()),
        ] {
            std::fs::write(d.join(format!("x86/{name}.flat")), image).unwrap();
        }
        Tree(d)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.0.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Emit a loop printing RCX bytes from RSI (clobbers AL, DX, RCX, RSI).
fn print_bytes(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut lp = a.create_label();
    let mut done = a.create_label();
    a.mov(dx, 0x3f8)?;
    a.set_label(&mut lp)?;
    a.test(rcx, rcx)?;
    a.jz(done)?;
    a.mov(al, byte_ptr(rsi))?;
    a.out(dx, al)?;
    a.inc(rsi)?;
    a.dec(rcx)?;
    a.jmp(lp)?;
    a.set_label(&mut done)?;
    a.nop()
}

/// A kernel that prints its multiboot command line, the CPU count of
/// fw_cfg, `mem_upper`, the module count and the first module's bytes,
/// then passes.
fn echo() -> Vec<u8> {
    long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        // EBX holds the multiboot information's address.
        a.mov(ebx, ebx)?;
        guest::print(a, "cmdline: ")?;
        a.mov(esi, dword_ptr(rbx + 16))?;
        let mut lp = a.create_label();
        let mut done = a.create_label();
        a.mov(dx, 0x3f8)?;
        a.set_label(&mut lp)?;
        a.mov(al, byte_ptr(rsi))?;
        a.test(al, al)?;
        a.jz(done)?;
        a.out(dx, al)?;
        a.inc(rsi)?;
        a.jmp(lp)?;
        a.set_label(&mut done)?;
        guest::print(a, "\ncpus: ")?;
        a.mov(dx, 0x510)?;
        a.mov(ax, 5)?;
        a.out(dx, ax)?;
        a.mov(dx, 0x511)?;
        a.in_(al, dx)?;
        a.movzx(ecx, al)?;
        a.in_(al, dx)?;
        a.movzx(eax, al)?;
        a.shl(eax, 8)?;
        a.or(eax, ecx)?;
        a.call(puthex)?;
        guest::print(a, "mem_upper: ")?;
        a.mov(eax, dword_ptr(rbx + 8))?;
        a.call(puthex)?;
        guest::print(a, "mods: ")?;
        a.mov(eax, dword_ptr(rbx + 20))?;
        a.call(puthex)?;
        let mut no_mods = a.create_label();
        a.test(eax, eax)?;
        a.jz(no_mods)?;
        a.mov(edi, dword_ptr(rbx + 24))?;
        a.mov(esi, dword_ptr(rdi))?;
        a.mov(ecx, dword_ptr(rdi + 4))?;
        a.sub(ecx, esi)?;
        print_bytes(a)?;
        a.set_label(&mut no_mods)?;
        guest::print(a, "SUMMARY: 1 tests\n")?;
        guest::exit(a, 0)
    })
}

fn softvm(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_softvm"));
    c.args(args);
    for v in [
        "MAX_SMP",
        "TIMEOUT",
        "CHECK",
        "MACHINE",
        "KVM_UNIT_TESTS_ENV",
        "TARGET",
    ] {
        c.env_remove(v);
    }
    c.envs(envs.iter().copied());
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The verdict lines, sorted (the tests finish in any order).
fn verdicts(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = stdout(o)
        .lines()
        .filter(|l| {
            ["PASS ", "FAIL ", "SKIP ", "ERROR "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| {
            // Wall times vary: keep the verdict, name and reason.
            match l.find(" (") {
                Some(i) if l.starts_with("PASS") => {
                    let rest = l[i..].find("): ").map(|j| &l[i + j + 1..]).unwrap_or("");
                    format!("{}{rest}", &l[..i])
                }
                _ => l.to_string(),
            }
        })
        .collect();
    v.sort();
    v
}

const VERDICTS_CFG: &str = "\
[pass]
file = pass.flat
groups = basic
[fail]
file = fail.flat
groups = basic
[skip_self]
file = skip.flat
[abort]
file = abort.flat
[triple]
file = triple.flat
[hang]
file = spin.flat
timeout = 1s
[extra]
file = pass.flat
groups = nodefault extra
[kvm_only]
file = pass.flat
accel = kvm
[i386_only]
file = pass.flat
arch = i386
[checked]
file = pass.flat
check = /nonexistent/softvm-check=Y
[missing]
file = nothere.flat
[refused]
file = pass.flat
qemu_params = -device hyperv-testdev
[bad_timeout]
file = pass.flat
timeout = soon
[disabled]
file = pass.flat
disabled_if = [[ \"$ARCH\" == x86_64 && -f config.mak ]]
[enabled]
file = pass.flat
disabled_if = [[ \"$ARCH\" == arm64 ]]
";

#[test]
fn every_verdict_of_the_status_rules_and_the_skips_before_a_start() {
    let t = Tree::new("verdicts", VERDICTS_CFG);
    let o = softvm(&["test", t.path().to_str().unwrap(), "-j", "4"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stderr(&o), "");
    let missing = t.path().join("x86/nothere.flat");
    // softvm's words after "triple fault" are not this test's business.
    let got: Vec<String> = verdicts(&o)
        .into_iter()
        .map(|l| match l.find(" at rip ") {
            Some(i) if l.starts_with("ERROR triple:") => l[..i].to_string(),
            _ => l,
        })
        .collect();
    assert_eq!(
        got,
        [
            "ERROR abort: status 129 (guest exit 64): Unhandled exception 13 #GP(0) at ip 0000000000400123".to_string(),
            "ERROR bad_timeout: its section (line 33): timeout: invalid time interval \"soon\"".into(),
            "ERROR hang: timeout; duration=1s".into(),
            "ERROR triple: status 4 (triple fault".into(),
            "FAIL fail: 2 tests, 1 unexpected failures; first: FAIL: b: went wrong".into(),
            "PASS enabled: 3 tests".into(),
            "PASS pass: 3 tests".into(),
            "SKIP checked: /nonexistent/softvm-check not equal to Y".into(),
            "SKIP disabled: disabled because: [[ \"$ARCH\" == x86_64 && -f config.mak ]]".into(),
            "SKIP extra: test marked as manual run only".into(),
            "SKIP i386_only: i386 only".into(),
            "SKIP kvm_only: kvm only, but ACCEL=tcg (softvm is not kvm)".into(),
            format!("SKIP missing: Test file '{}' not found", missing.display()),
            "SKIP refused: qemu-system-x86_64: -device hyperv-testdev: softvm has no device 'hyperv-testdev' (-device help lists the devices it has)".into(),
            "SKIP skip_self: no such feature (1 tests, 1 skipped)".into(),
        ]
    );
    assert_eq!(
        stdout(&o).lines().last().unwrap(),
        "2 passed, 1 failed, 8 skipped, 4 errors"
    );
}

const ECHO_CFG: &str = "\
[args]
file = echo.flat
smp = $MAX_SMP
test_args = \"a  b `echo $MAX_SMP`\"' c' # a comment, to the end of the command

qemu_params = -m 64

[multi]
file = echo.flat
qemu_params = \"\"\"
-smp 3 \\
-m 96
\"\"\"

[where]
file = echo.flat
test_args = `pwd`
";

/// A test's log, with its command line first.
fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap()
}

/// The value after `key: ` in an echo kernel's output.
fn echoed<'a>(log: &'a str, key: &str) -> &'a str {
    log.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|l| l.strip_prefix(": ")))
        .unwrap_or_else(|| panic!("no {key} in {log}"))
}

#[test]
fn the_options_reach_the_kernel_as_the_suites_runner_gives_them() {
    let t = Tree::new("echo", ECHO_CFG);
    let logs = t.path().join("logs");
    let o = softvm(
        &[
            "test",
            t.path().to_str().unwrap(),
            "--logs",
            logs.to_str().unwrap(),
        ],
        &[("MAX_SMP", "2")],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let kernel = t.path().join("x86/echo.flat").display().to_string();
    let args = log(&logs, "args");
    // Quotes group, backticks ran (with MAX_SMP), the comment went, and
    // took the options after it (the runner pastes them behind the
    // arguments): the machine has the default 128 MiB, not 64.
    assert_eq!(echoed(&args, "cmdline"), format!("{kernel} a  b 2 c"));
    assert_eq!(echoed(&args, "cpus"), "0000000000000002");
    assert_eq!(echoed(&args, "mem_upper"), format!("{:016X}", 127 * 1024));
    assert_eq!(echoed(&args, "mods"), "0000000000000001");
    assert!(
        args.starts_with(&format!(
            "softvm qemu --no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard \
             -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none \
             -serial stdio -machine accel=tcg -kernel {kernel} -smp 2 -append 'a  b 2 c' \
             -initrd kvm-unit-tests.env\n"
        )),
        "{args}"
    );
    // The environment module, as the suite's runner writes it for TCG.
    assert!(
        args.contains("\nTARGET=\nQEMU_ACCEL=tcg\nQEMU_VERSION_STRING=QEMU emulator version "),
        "{args}"
    );
    assert!(
        args.contains("\nQEMU_MAJOR=7\n") && args.contains("\nKERNEL_VERSION="),
        "{args}"
    );
    assert!(
        args.contains("\nERRATA_FORCE=y\nSUMMARY: 1 tests\n"),
        "{args}"
    );
    assert!(
        args.ends_with("\nPASS args (") || args.contains("\nPASS args ("),
        "{args}"
    );
    let env = std::fs::read_to_string(logs.join("kvm-unit-tests.env")).unwrap();
    assert!(args.contains(&env), "{env}");
    // A """ value: its lines are options, a backslash continues one; 96
    // MiB is 95 MiB above the first, in KiB.
    let multi = log(&logs, "multi");
    assert_eq!(echoed(&multi, "cpus"), "0000000000000003");
    assert_eq!(echoed(&multi, "mem_upper"), format!("{:016X}", 95 * 1024));
    assert_eq!(echoed(&multi, "cmdline"), kernel);
    // Commands run in the tree's top directory, as the runner's do.
    let root = t.path().canonicalize().unwrap();
    assert_eq!(
        echoed(&log(&logs, "where"), "cmdline"),
        format!("{kernel} {}", root.display())
    );
}

const SELECT_CFG: &str = "\
[one]
file = pass.flat
groups = basic
[two]
file = pass.flat
groups = basic slow nodefault
[three]
file = fail.flat
groups = other
";

/// The names in the verdict lines, in order of name.
fn names(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = verdicts(o)
        .iter()
        .map(|l| l.split([' ', ':']).nth(1).unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn selection_by_name_group_and_all() {
    let t = Tree::new("select", SELECT_CFG);
    let root = t.path().to_str().unwrap();
    let o = softvm(&["test", root], &[]);
    assert_eq!(names(&o), ["one", "three", "two"]);
    assert!(verdicts(&o).contains(&"SKIP two: test marked as manual run only".to_string()));
    // Named, a nodefault test runs.
    let o = softvm(&["test", root, "--only", "two,one"], &[]);
    assert_eq!(verdicts(&o), ["PASS one: 3 tests", "PASS two: 3 tests"]);
    assert_eq!(o.status.code(), Some(0));
    let o = softvm(&["test", root, "--only", "two", "--only", "three"], &[]);
    assert_eq!(names(&o), ["three", "two"]);
    // A group takes its nodefault tests too.
    let o = softvm(&["test", root, "--group", "slow"], &[]);
    assert_eq!(verdicts(&o), ["PASS two: 3 tests"]);
    let o = softvm(&["test", root, "-g", "basic"], &[]);
    assert_eq!(verdicts(&o), ["PASS one: 3 tests", "PASS two: 3 tests"]);
    let o = softvm(&["test", root, "--all"], &[]);
    assert_eq!(verdicts(&o)[2], "PASS two: 3 tests");
    // The file, or the directory that holds it, is the same tree.
    for p in [t.path().join("x86/unittests.cfg"), t.path().join("x86")] {
        let o = softvm(&["test", p.to_str().unwrap(), "--only", "one"], &[]);
        assert_eq!(verdicts(&o), ["PASS one: 3 tests"], "{}", p.display());
    }
    // Typos are usage errors, named.
    for (args, want) in [
        (
            vec!["--only", "on"],
            "softvm: --only on: no test of that name in the paths given\n",
        ),
        (
            vec!["--group", "nope"],
            "softvm: --group nope: no test of the paths is in that group\n",
        ),
        (
            vec!["--vcpus", "2"],
            "softvm: --vcpus: a kvm-unit-tests tree's unittests.cfg sets this for each test \
             (only --timeout and --max-instructions apply to it)\n",
        ),
    ] {
        let mut a = vec!["test", root];
        a.extend(args);
        let o = softvm(&a, &[]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(stderr(&o), want);
    }
}

#[test]
fn the_runners_environment_variables() {
    let cfg = "[spin]\nfile = spin.flat\n[checked]\nfile = pass.flat\ncheck = /nonexistent=1\n\
               [wide]\nfile = pass.flat\nmachine = q35\n[smp]\nfile = echo.flat\nsmp = $MAX_SMP\n";
    let t = Tree::new("environment", cfg);
    let root = t.path().to_str().unwrap();
    let yes = t.path().join("yes");
    std::fs::write(&yes, "Y\n").unwrap();
    let check = format!("{}=Y", yes.display());
    let logs = t.path().join("logs");
    let o = softvm(
        &["test", root, "--logs", logs.to_str().unwrap()],
        &[("TIMEOUT", "0.5"), ("CHECK", &check), ("MACHINE", "pc")],
    );
    assert_eq!(
        verdicts(&o),
        [
            "ERROR spin: timeout; duration=0.5".to_string(),
            "PASS checked: 3 tests".into(),
            "PASS smp: 1 tests".into(),
            "SKIP wide: q35 only".into(),
        ]
    );
    // Without MAX_SMP, the host's online CPUs, as getconf counts them.
    let getconf = Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .unwrap();
    let n: u32 = String::from_utf8_lossy(&getconf.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(echoed(&log(&logs, "smp"), "cpus"), format!("{n:016X}"));
    // --timeout is over TIMEOUT, which is over the section's.
    let o = softvm(
        &["test", root, "--only", "spin", "--timeout", "0.3"],
        &[("TIMEOUT", "9")],
    );
    assert_eq!(verdicts(&o), ["ERROR spin: timeout; duration=0.3s"]);
    let o = softvm(&["test", root, "--only", "spin"], &[("TIMEOUT", "1x")]);
    assert_eq!(
        stderr(&o),
        "softvm: TIMEOUT=1x: invalid time interval \"1x\"\n"
    );
}

#[test]
fn the_users_environment_file() {
    let t = Tree::new("userenv", "[e]\nfile = echo.flat\n");
    let mine = t.path().join("mine.env");
    std::fs::write(&mine, "BOOTLOADER=1\nERRATA_x=y\n").unwrap();
    let logs = t.path().join("logs");
    let run = |envs: &[(&str, &str)]| {
        let o = softvm(
            &[
                "test",
                t.path().to_str().unwrap(),
                "--logs",
                logs.to_str().unwrap(),
            ],
            envs,
        );
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        log(&logs, "e")
    };
    let mine_s = mine.to_str().unwrap();
    // Added to the generated file, after what the runner writes itself.
    let l = run(&[("KVM_UNIT_TESTS_ENV", mine_s)]);
    assert!(
        l.contains("KERNEL_EXTRAVERSION=")
            && l.contains("\nBOOTLOADER=1\nERRATA_x=y\nERRATA_FORCE=y\nSUMMARY"),
        "{l}"
    );
    // Without ENVIRON_DEFAULT, the user's file as it is, or no module.
    std::fs::write(
        t.path().join("config.mak"),
        "ARCH=x86_64\nENVIRON_DEFAULT=no\n",
    )
    .unwrap();
    let l = run(&[("KVM_UNIT_TESTS_ENV", mine_s)]);
    assert!(
        l.contains("mods: 0000000000000001\nBOOTLOADER=1\nERRATA_x=y\nSUMMARY"),
        "{l}"
    );
    let l = run(&[]);
    assert!(l.contains("mods: 0000000000000000\nSUMMARY"), "{l}");
    assert!(!l.lines().next().unwrap().contains("-initrd"), "{l}");
}

#[test]
fn reports_count_errors_apart() {
    let t = Tree::new("reports", VERDICTS_CFG);
    let md = t.path().join("results.md");
    let junit = t.path().join("junit.xml");
    let o = softvm(
        &[
            "test",
            t.path().to_str().unwrap(),
            "--only",
            "pass,fail,triple,kvm_only",
            "--markdown",
            md.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--tap",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let tap = stdout(&o);
    assert!(tap.starts_with("TAP version 13\n1..4\n"), "{tap}");
    let triple = &tap[tap.find(" - triple\n").unwrap()..];
    assert!(triple.lines().nth(3) == Some("  severity: error"), "{tap}");
    assert!(
        tap.ends_with("# 1 passed, 1 failed, 1 skipped, 1 error\n"),
        "{tap}"
    );
    let x = t.read("junit.xml");
    assert!(
        x.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""),
        "{x}"
    );
    assert!(x.contains("<error message=\"status 4 (triple fault"), "{x}");
    let m = t.read("results.md");
    let lines: Vec<&str> = m.lines().collect();
    assert!(lines[0].starts_with("Results of `softvm test "), "{m}");
    assert!(lines[0].ends_with(" on kvm-unit-tests 0123abcd."), "{m}");
    assert!(
        lines[2].starts_with(
            "1 of 4 tests: 1 passed, 1 failed, 1 skipped, 1 error. The passing tests took "
        ),
        "{m}"
    );
    assert_eq!(
        lines[4..6],
        [
            "| Test | Verdict | Reason | Time (s) |",
            "|---|---|---|---:|"
        ]
    );
    // In the file's order, each with its reason.
    let rows: Vec<Vec<&str>> = lines[6..]
        .iter()
        .map(|l| l.split(" | ").collect())
        .collect();
    assert_eq!(rows.len(), 4, "{m}");
    assert_eq!(rows[0][..3], ["| pass", "PASS", "3 tests"]);
    assert_eq!(
        rows[1][..3],
        [
            "| fail",
            "FAIL",
            "2 tests, 1 unexpected failures; first: FAIL: b: went wrong"
        ]
    );
    assert_eq!(rows[2][..2], ["| triple", "ERROR"]);
    assert!(rows[2][2].starts_with("status 4 (triple fault"), "{m}");
    assert_eq!(
        rows[3],
        [
            "| kvm_only",
            "SKIP",
            "kvm only, but ACCEL=tcg (softvm is not kvm)",
            "– |"
        ]
    );
}

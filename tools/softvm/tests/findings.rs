//! One test per finding of the command-line review (issue 16) not covered
//! beside the code it concerns: the full exit status in `softvm test`,
//! the 8-bit status of `softvm run` said on stderr, JUnit's timestamp and
//! hostname and its survival of Ctrl-C, `bench --timeout`, and `trace`
//! ending at once when its reader goes away.

use iced_x86::code_asm::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testsuite::guest;

fn softvm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softvm"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("findings-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn exits(v: u32) -> Vec<u8> {
    guest::long_mode(|a| {
        guest::print(a, "bye\n")?;
        guest::exit(a, v)
    })
    .unwrap()
}

fn spin() -> Vec<u8> {
    guest::long_mode(|a| {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.inc(rcx)?;
        a.jmp(l)
    })
    .unwrap()
}

/// Wait for `child` at most `limit`; kill it (and fail) after that.
fn wait_at_most(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exit_values_of_0x80_and_more_fail_in_softvm_test() {
    let d = scratch("status");
    std::fs::write(d.join("x80.elf"), exits(0x80)).unwrap();
    std::fs::write(d.join("ok.elf"), exits(0)).unwrap();
    let o = softvm(&["test", d.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL x80.elf: status 257 (guest exit 128)"),
        "{out}"
    );
    assert!(out.contains("PASS ok.elf"), "{out}");
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed"));
    // A manifest may expect the full value.
    std::fs::write(d.join("softvm-tests.txt"), "x80 status=257\n").unwrap();
    let o = softvm(&["test", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

#[test]
fn softvm_run_keeps_the_8_bit_status_and_says_so() {
    let d = scratch("run8");
    let g = d.join("x80.elf");
    std::fs::write(&g, exits(0x80)).unwrap();
    let o = softvm(&[std::ffi::OsStr::new("run"), g.as_os_str()]);
    assert_eq!(o.status.code(), Some(1), "QEMU's 8-bit status");
    let e = text(&o.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("0x80") && e.contains("257") && e.contains("8 bits"),
        "{e}"
    );
    // Below 0x80 the status is whole and stderr silent.
    std::fs::write(&g, exits(0x7f)).unwrap();
    let o = softvm(&[std::ffi::OsStr::new("run"), g.as_os_str()]);
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(text(&o.stderr), "");
}

#[test]
fn junit_has_timestamp_and_hostname() {
    let d = scratch("junit-attrs");
    std::fs::write(d.join("ok.elf"), exits(0)).unwrap();
    let report = d.join("r.xml");
    let o = softvm(&[
        "test",
        d.to_str().unwrap(),
        "--junit",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let x = std::fs::read_to_string(&report).unwrap();
    let suite = x
        .lines()
        .find(|l| l.trim_start().starts_with("<testsuite "))
        .unwrap();
    let attr = |k: &str| {
        let at = suite
            .find(&format!(" {k}=\""))
            .unwrap_or_else(|| panic!("{k}: {suite}"));
        let v = &suite[at + k.len() + 3..];
        v[..v.find('"').unwrap()].to_string()
    };
    let stamp = attr("timestamp");
    // ISO 8601 without a zone: YYYY-MM-DDTHH:MM:SS
    assert_eq!(stamp.len(), 19, "{stamp}");
    assert_eq!(&stamp[10..11], "T", "{stamp}");
    assert!(stamp.starts_with("20"), "{stamp}");
    assert!(!attr("hostname").is_empty());
}

#[test]
fn an_interrupted_run_leaves_no_truncated_junit() {
    let d = scratch("junit-int");
    std::fs::write(d.join("spin.elf"), spin()).unwrap();
    let report = d.join("r.xml");
    let previous = "<?xml version=\"1.0\"?>\n<testsuites name=\"earlier\"/>\n";
    std::fs::write(&report, previous).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_softvm"))
        .args(["test", d.to_str().unwrap(), "--timeout", "30", "--junit"])
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let k = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    wait_at_most(&mut child, Duration::from_secs(10));
    // Ctrl-C: the earlier report is intact (the new one never half-written).
    assert_eq!(std::fs::read_to_string(&report).unwrap(), previous);
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bench_takes_a_timeout() {
    let d = scratch("bench");
    std::fs::write(d.join("spin.elf"), spin()).unwrap();
    let t = Instant::now();
    let o = softvm(&["bench", d.to_str().unwrap(), "--timeout", "1"]);
    let took = t.elapsed();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(14), "{out}{}", text(&o.stderr));
    assert!(out.contains("FAIL: status 124 (timeout"), "{out}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let o = softvm(&["bench", d.to_str().unwrap(), "--timeout", "inf"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn trace_ends_at_once_when_its_reader_goes_away() {
    let d = scratch("epipe");
    let g = d.join("spin.elf");
    std::fs::write(&g, spin()).unwrap();
    // Like `softvm trace spin.elf --limit 100000000 | head -1`.
    let mut child = Command::new(env!("CARGO_BIN_EXE_softvm"))
        .args(["trace", "--insn", "--limit", "100000000"])
        .arg(&g)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let out = child.stdout.take().unwrap();
    BufReader::new(out).read_line(&mut first).unwrap();
    assert!(first.starts_with("insn"), "{first}");
    // The reader is gone (dropped with the BufReader).
    let t = Instant::now();
    let s = wait_at_most(&mut child, Duration::from_secs(5));
    println!("trace ended {:?} after its reader went away", t.elapsed());
    assert_eq!(s.code(), Some(141), "ends as a SIGPIPE death reports");
    let mut e = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut e).unwrap();
    assert_eq!(e, "", "a closed pipe is not an error to report");
}

//! `softvm test` as CI meets it: directories of guests built with the guest
//! kit, a manifest, the plain lines, the closing line, JUnit XML and TAP,
//! and the errors that stop the runner before it starts.

use iced_x86::code_asm::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testsuite::guest;
use testsuite::image::{self, Segment};

mod common;
use common::{exits, long_mode, spin, triple_fault};

fn softvm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
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

fn one_line_stderr(o: &Output) -> String {
    let s = stderr(o);
    assert_eq!(s.lines().count(), 1, "stderr should be one line: {s:?}");
    assert!(s.starts_with("softvm: "), "{s:?}");
    s
}

/// The last line of stdout: the closing line.
fn closing(o: &Output) -> String {
    stdout(o).lines().last().unwrap_or_default().to_string()
}

/// A scratch directory, removed when the test passes (kept on failure).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("suite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn put(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn d(s: &Scratch) -> &str {
    s.path().to_str().unwrap()
}

fn f(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A guest that jumps to code outside RAM (gpa 0x10000000, beyond the
/// default 128 MiB): softvm runs code from RAM only, status 6. (Every
/// instruction the default model advertises is implemented, so this is
/// how a guest meets softvm's "cannot run this" status.)
fn unsupported() -> Vec<u8> {
    long_mode(|a| {
        a.mov(eax, 0x1000_0000u32)?;
        a.jmp(rax)
    })
}

/// Exits with byte `index` of fw_cfg item `key`.
fn fw_cfg_byte(key: u32, index: usize) -> Vec<u8> {
    long_mode(|a| {
        a.mov(dx, 0x510)?;
        a.mov(ax, key)?;
        a.out(dx, ax)?;
        a.mov(dx, 0x511)?;
        for _ in 0..=index {
            a.in_(al, dx)?;
        }
        a.movzx(eax, al)?;
        a.mov(dx, 0xf4)?;
        a.out(dx, eax)?;
        a.hlt()
    })
}

/// Prints the multiboot command line, then exits with 0.
fn echo_cmdline() -> Vec<u8> {
    long_mode(|a| {
        let mut lp = a.create_label();
        let mut done = a.create_label();
        a.mov(esi, dword_ptr(rbx + 16))?;
        a.mov(dx, 0x3f8)?;
        a.set_label(&mut lp)?;
        a.mov(al, byte_ptr(rsi))?;
        a.test(al, al)?;
        a.jz(done)?;
        a.out(dx, al)?;
        a.inc(rsi)?;
        a.jmp(lp)?;
        a.set_label(&mut done)?;
        guest::exit(a, 0)
    })
}

/// A bare-metal ELF64 program that prints and passes.
fn elf64() -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    guest::print(&mut a, "hello from ELF64\n").unwrap();
    guest::exit(&mut a, 0).unwrap();
    let code = a.assemble(0x20_0000).unwrap();
    image::elf(
        true,
        0x20_0000,
        &[Segment {
            paddr: 0x20_0000,
            memsz: code.len() as u64,
            data: code,
        }],
    )
}

/// The mixed directory: 4 passes, 4 failures, 1 skip.
fn mixed(name: &str) -> Scratch {
    let s = Scratch::new(name);
    s.put("pass.elf", &exits(0, "hello, suite\n"));
    s.put("fail.elf", &exits(1, "failing on purpose\n"));
    s.put("skip.elf", &exits(38, "skipping\n"));
    s.put("triple.elf", &triple_fault());
    s.put("spin.elf", &spin());
    s.put("unsupported.flat", &unsupported());
    s.put("elf64.elf", &elf64());
    s.put("status85.flat", &exits(0x2a, "eighty-five\n"));
    s.put("expect-fail.elf", &exits(1, "I fail, as expected\n"));
    s.put("README.txt", b"not a test: wrong extension\n");
    s.put(
        "softvm-tests.txt",
        b"# expectations\nstatus85   status=85 output=\"eighty-five\"\nexpect-fail.elf status=3 # fails by design\npass output=hello\n",
    );
    s
}

const MIXED_NAMES: [&str; 9] = [
    "elf64.elf",
    "expect-fail.elf",
    "fail.elf",
    "pass.elf",
    "skip.elf",
    "spin.elf",
    "status85.flat",
    "triple.elf",
    "unsupported.flat",
];

#[test]
fn plain_lines_closing_line_and_junit() {
    let s = mixed("junit");
    let junit = s.path().join("report.xml");
    let t = Instant::now();
    let o = softvm(&[
        "test",
        d(&s),
        "--timeout",
        "1",
        "--jobs",
        "4",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stderr(&o), "", "not a terminal: no progress bar");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    assert_eq!(closing(&o), "4 passed, 4 failed, 1 skipped");
    let line = |name: &str| -> &str {
        let hits: Vec<&&str> = lines
            .iter()
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|n| n.trim_end_matches(':') == name)
            })
            .collect();
        assert_eq!(hits.len(), 1, "{name}: {out}");
        hits[0]
    };
    for name in ["pass.elf", "elf64.elf", "status85.flat", "expect-fail.elf"] {
        let l = line(name);
        assert!(
            l.starts_with(&format!("PASS {name} (")) && l.ends_with(" s)"),
            "{l}"
        );
    }
    assert!(line("skip.elf").starts_with("SKIP skip.elf"));
    assert!(
        line("fail.elf").starts_with("FAIL fail.elf: status 3 (guest exit 1)"),
        "{out}"
    );
    let l = line("triple.elf");
    assert!(
        l.starts_with("FAIL triple.elf: status 4 (triple fault at rip 0x"),
        "{l}"
    );
    assert!(
        line("spin.elf").starts_with("FAIL spin.elf: status 124 (timeout"),
        "{out}"
    );
    assert!(
        line("unsupported.flat")
            .starts_with("FAIL unsupported.flat: status 6 (cannot run code at rip 0x10000000"),
        "{out}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = parse_xml(&xml);
    let suite = doc
        .iter()
        .find(|e| e.name == "testsuite")
        .expect("a testsuite element");
    assert_eq!(suite.attr("tests"), "9");
    assert_eq!(suite.attr("failures"), "4");
    assert_eq!(suite.attr("skipped"), "1");
    assert!(suite.attr("time").parse::<f64>().unwrap() > 0.0);
    let cases: Vec<&Element> = doc.iter().filter(|e| e.name == "testcase").collect();
    let names: Vec<&str> = cases.iter().map(|c| c.attr("name")).collect();
    assert_eq!(names, MIXED_NAMES, "testcases in name order");
    for c in &cases {
        c.attr("time").parse::<f64>().unwrap();
    }
    assert_eq!(doc.iter().filter(|e| e.name == "failure").count(), 4);
    assert_eq!(doc.iter().filter(|e| e.name == "skipped").count(), 1);
    let failure = |test: &str| {
        doc.iter()
            .find(|e| e.name == "failure" && e.parent_name == Some(test.to_string()))
            .map(|e| e.attr("message").to_string())
    };
    assert!(failure("triple.elf").unwrap().contains("triple fault"));
    assert!(failure("fail.elf").unwrap().contains("status 3"));
    assert!(failure("pass.elf").is_none());
    // Each testcase's serial output, escaped, in system-out.
    let out_of = |test: &str| {
        doc.iter()
            .find(|e| e.name == "system-out" && e.parent_name == Some(test.to_string()))
            .map(|e| e.text.clone())
    };
    assert_eq!(out_of("pass.elf").as_deref(), Some("hello, suite\n"));
    assert_eq!(out_of("elf64.elf").as_deref(), Some("hello from ELF64\n"));
    assert_eq!(out_of("fail.elf").as_deref(), Some("failing on purpose\n"));
}

#[test]
fn tap_output() {
    let s = mixed("tap");
    let o = softvm(&["test", d(&s), "--tap", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "TAP version 13");
    assert_eq!(lines[1], "1..9");
    let oks: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("ok "))
        .collect();
    let not_oks: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("not ok "))
        .collect();
    assert_eq!(oks.len(), 5, "{out}");
    assert_eq!(not_oks.len(), 4, "{out}");
    // Numbers 1..=9, each once, in order of the lines.
    let nums: Vec<usize> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("ok ").or_else(|| l.strip_prefix("not ok ")))
        .map(|r| r.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(nums, (1..=9).collect::<Vec<_>>());
    let skip: Vec<&&str> = oks.iter().filter(|l| l.contains(" # SKIP ")).collect();
    assert_eq!(skip.len(), 1);
    assert!(skip[0].contains("- skip.elf # SKIP"));
    let triple = not_oks
        .iter()
        .find(|l| l.ends_with("- triple.elf"))
        .unwrap();
    // A YAML diagnostic block follows a failure.
    let i = lines.iter().position(|l| l == triple).unwrap();
    assert_eq!(lines[i + 1], "  ---");
    assert!(
        lines[i + 2].starts_with("  message: \"status 4 (triple fault"),
        "{out}"
    );
    assert!(lines[i + 3..].contains(&"  ..."));
    assert!(
        !out.contains("PASS ") && !out.contains("FAIL "),
        "TAP replaces the plain lines"
    );
    // The closing line is a TAP comment, so a TAP consumer ignores it.
    assert_eq!(closing(&o), "# 4 passed, 4 failed, 1 skipped");
}

#[test]
fn manifest_settings_and_expectations() {
    let s = Scratch::new("manifest");
    s.put("cpus.elf", &fw_cfg_byte(5, 0));
    s.put("ram.elf", &fw_cfg_byte(3, 3));
    s.put("cmdline.elf", &echo_cmdline());
    s.put("wrong-output.elf", &exits(0, "something else\n"));
    s.put("not-run.elf", &spin());
    s.put("b77.elf", &exits(38, ""));
    s.put(
        "softvm-tests.txt",
        br#"
* timeout=20   # every test here
cpus      vcpus=3 status=7
ram.elf   memory=256M status=33    # byte 3 of 0x10000000, (0x10 << 1) | 1
cmdline   cmdline="console=ttyS0 \"quoted\"" output="console=ttyS0" output="\"quoted\""
wrong-output output="the expected text"
not-run   skip="would spin for 20 s"
b77       status=77
"#,
    );
    let t = Instant::now();
    let o = softvm(&["test", d(&s)]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the skipped test must not run"
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    let by_name: HashMap<&str, &str> = out
        .lines()
        .filter_map(|l| Some((l.split_whitespace().nth(1)?.trim_end_matches(':'), l)))
        .collect();
    for n in ["cpus.elf", "ram.elf", "cmdline.elf", "b77.elf"] {
        assert!(by_name[n].starts_with("PASS "), "{out}");
    }
    assert_eq!(
        by_name["not-run.elf"],
        "SKIP not-run.elf: would spin for 20 s"
    );
    assert_eq!(
        by_name["wrong-output.elf"],
        "FAIL wrong-output.elf: status 1, but the output lacks \"the expected text\""
    );
    assert_eq!(closing(&o), "4 passed, 1 failed, 1 skipped");

    // Without the manifest, the expectations are the defaults.
    std::fs::remove_file(s.path().join("softvm-tests.txt")).unwrap();
    let o = softvm(&[
        "test",
        &format!("{}/cpus.elf", d(&s)),
        &format!("{}/b77.elf", d(&s)),
        "--vcpus",
        "2",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("FAIL cpus.elf: status 5 (guest exit 2), expected 1"),
        "{out}"
    );
    assert!(out.contains("SKIP b77.elf"), "{out}");
    assert_eq!(closing(&o), "0 passed, 1 failed, 1 skipped");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn all_passing_is_status_0() {
    let s = Scratch::new("allpass");
    let a = s.put("a.elf", &exits(0, "a\n"));
    let b = s.put("b.flat", &elf64());
    let c = s.put("c.elf", &exits(38, ""));
    // Files named directly, one of them twice: it runs once.
    let o = softvm(&["test", f(&a), f(&b), f(&a), f(&c), "-j", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(closing(&o), "2 passed, 0 failed, 1 skipped");
    let o = softvm(&["test", f(&a), f(&b)]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(closing(&o), "2 passed, 0 failed");
    assert_eq!(stdout(&o).lines().count(), 3);
}

#[test]
fn malformed_test_binaries_fail_with_the_load_error() {
    let s = Scratch::new("malformed");
    let good = exits(0, "");
    s.put("empty.elf", b"");
    s.put("truncated.elf", &good[..100]);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..2048)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    s.put("random.flat", &random);
    let junit = s.path().join("out.xml");
    let o = softvm(&["test", d(&s), "--junit", f(&junit)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");
    let out = stdout(&o);
    for n in ["empty.elf", "truncated.elf", "random.flat"] {
        let l = out
            .lines()
            .find(|l| l.starts_with(&format!("FAIL {n}: status 2 (")))
            .unwrap_or_else(|| panic!("{n}: {out}"));
        assert!(l.contains(n), "the load error names the file: {l}");
    }
    assert_eq!(closing(&o), "0 passed, 3 failed");
    let doc = parse_xml(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(doc.iter().filter(|e| e.name == "failure").count(), 3);
}

#[test]
fn runner_errors_are_one_line_and_status_2() {
    let empty = Scratch::new("empty-dir");
    empty.put("notes.txt", b"no tests here");
    let bad = Scratch::new("bad-manifest");
    bad.put("a.elf", &exits(0, ""));
    bad.put("softvm-tests.txt", b"a status=1\na frobnicate=2\n");
    let typo = Scratch::new("typo-manifest");
    typo.put("a.elf", &exits(0, ""));
    typo.put("softvm-tests.txt", b"# comment\nb status=3\n");
    let good = Scratch::new("good-dir");
    good.put("a.elf", &exits(0, ""));
    let p = |s: &Scratch| s.path().to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![p(&empty)], "no test binaries"),
        (vec!["/nonexistent/tests".into()], "/nonexistent/tests"),
        (vec![p(&bad)], "softvm-tests.txt:2: unknown setting"),
        (vec![p(&typo)], "softvm-tests.txt:2: no test named b"),
        (vec![], "<PATH>"),
        (vec![p(&good), "--jobs".into(), "0".into()], "--jobs"),
        (
            vec![p(&good), "--timeout".into(), "soon".into()],
            "--timeout",
        ),
        (vec![p(&good), "--memory".into(), "1K".into()], "--memory"),
        (vec![p(&good), "--frobnicate".into()], "--frobnicate"),
        (
            vec![
                p(&good),
                "--junit".into(),
                "/nonexistent/dir/report.xml".into(),
            ],
            "report.xml",
        ),
    ];
    for (args, want) in cases {
        let mut full = vec!["test".to_string()];
        full.extend(args.iter().cloned());
        let o = softvm(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{args:?}");
        let e = one_line_stderr(&o);
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

/// An element of a parsed XML document: its name, attributes, the name
/// attribute of its nearest `testcase` ancestor, and its text content.
struct Element {
    name: String,
    attrs: HashMap<String, String>,
    parent_name: Option<String>,
    text: String,
}

impl Element {
    fn attr(&self, k: &str) -> &str {
        self.attrs
            .get(k)
            .unwrap_or_else(|| panic!("<{}> has no {k}", self.name))
    }
}

fn unescape(s: &str) -> String {
    assert!(!s.contains('<'), "raw < in text: {s:?}");
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').expect("an unterminated entity") + i;
        out.push(match &rest[i + 1..end] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e => panic!("unknown entity &{e};"),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A minimal XML parser, enough to check well-formedness: one root, tags
/// balanced and properly nested, attributes quoted, entities known.
fn parse_xml(xml: &str) -> Vec<Element> {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .expect("an XML declaration");
    let mut elements: Vec<Element> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        let text = unescape(&rest[..lt]);
        if let Some(&top) = stack.last() {
            elements[top].text.push_str(&text);
        } else {
            assert!(text.trim().is_empty(), "text outside the root: {text:?}");
        }
        let gt = rest[lt..].find('>').expect("an unterminated tag") + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().expect("a close tag without an open tag");
            assert_eq!(elements[open].name, name.trim(), "mismatched close tag");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs_text) = tag.split_once(' ').unwrap_or((tag, ""));
        let mut attrs = HashMap::new();
        loop {
            attrs_text = attrs_text.trim_start();
            if attrs_text.is_empty() {
                break;
            }
            let (k, v) = attrs_text
                .split_once("=\"")
                .expect("attribute values in double quotes");
            let end = v.find('"').expect("an unterminated attribute");
            assert!(
                attrs
                    .insert(k.trim().to_string(), unescape(&v[..end]))
                    .is_none(),
                "attribute {k} twice"
            );
            attrs_text = &v[end + 1..];
        }
        if stack.is_empty() {
            roots += 1;
        }
        let parent_name = stack
            .iter()
            .rev()
            .find(|&&i| elements[i].name == "testcase")
            .map(|&i| elements[i].attrs["name"].clone());
        elements.push(Element {
            name: name.to_string(),
            attrs,
            parent_name,
            text: String::new(),
        });
        if !self_closing {
            stack.push(elements.len() - 1);
        }
    }
    assert!(rest.trim().is_empty(), "text after the root");
    assert!(stack.is_empty(), "unclosed elements");
    assert_eq!(roots, 1, "exactly one root element");
    elements
}

#[test]
fn the_xml_checker_rejects_broken_xml() {
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    for bad in [
        "<a><b></a></b>",
        "<a>",
        "<a></a><b></b>",
        "<a x=1></a>",
        "<a>&bogus;</a>",
        "<a>x < y</a>",
    ] {
        let doc = format!("{decl}{bad}");
        assert!(
            std::panic::catch_unwind(|| parse_xml(&doc)).is_err(),
            "{bad}"
        );
    }
    let ok = parse_xml(&format!("{decl}<a k=\"&lt;v&gt;\"><b/>t&amp;t</a>"));
    assert_eq!(ok[0].attr("k"), "<v>");
    assert_eq!(ok[0].text, "t&t");
}

/// Exits with CPUID.1:ECX bit 23 (POPCNT): status 3 with it, 1 without.
fn popcnt_bit() -> Vec<u8> {
    long_mode(|a| {
        a.mov(eax, 1)?;
        a.cpuid()?;
        a.mov(eax, ecx)?;
        a.shr(eax, 23)?;
        a.and(eax, 1)?;
        a.mov(dx, 0xf4)?;
        a.out(dx, eax)?;
        a.hlt()
    })
}

#[test]
fn manifest_cpu_seed_and_clock_reach_the_machine() {
    let s = Scratch::new("cpu");
    let img = popcnt_bit();
    s.put("with.elf", &img);
    s.put("without.elf", &img);
    s.put("seeded.elf", &img);
    s.put(
        "softvm-tests.txt",
        br#"
with      status=3
without   cpu=max,-popcnt status=1
seeded    cpu=max,-popcnt seed=0x2a clock=deterministic status=1
"#,
    );
    let o = softvm(&["test", d(&s)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(closing(&o), "3 passed, 0 failed", "{}", stdout(&o));
    // A bad value is refused with the manifest's file and line.
    s.put("softvm-tests.txt", b"with clock=sometimes\n");
    let o = softvm(&["test", d(&s)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("softvm-tests.txt:1: bad clock"),
        "{}",
        stderr(&o)
    );
}

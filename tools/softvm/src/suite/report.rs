//! What `softvm test` prints: the progress bar or plain lines, TAP, the
//! closing line, and the JUnit XML file.

use super::exec::RunResult;
use softvm_machine::status;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Why it failed, on one line.
    Fail(String),
    /// Why it was skipped.
    Skip(String),
    /// Why it ended in neither a pass, a fail nor a skip of its own (a
    /// kvm-unit-tests kernel that crashed, hung or hit something softvm
    /// lacks: any status but 1, 3 and 77).
    Error(String),
}

impl Verdict {
    /// The verdict's word in lines and tables.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail(_) => "FAIL",
            Verdict::Skip(_) => "SKIP",
            Verdict::Error(_) => "ERROR",
        }
    }

    /// Why it did not pass.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Pass => None,
            Verdict::Fail(w) | Verdict::Skip(w) | Verdict::Error(w) => Some(w),
        }
    }

    /// Whether it makes the run fail.
    pub fn is_bad(&self) -> bool {
        matches!(self, Verdict::Fail(_) | Verdict::Error(_))
    }
}

/// A finished test with everything the reports need.
#[derive(Clone, Debug)]
pub struct Finished {
    pub name: String,
    pub path: PathBuf,
    pub verdict: Verdict,
    /// `None` when the test was skipped without running.
    pub result: Option<RunResult>,
    /// The command line that stands for the run (`softvm qemu ...`), if
    /// it was built from one.
    pub command: Option<String>,
    /// Lines it wrote to stderr besides softvm's diagnostic (warnings).
    pub notes: Vec<String>,
    /// The test's own summary line (kvm-unit-tests' `SUMMARY:`).
    pub summary: Option<String>,
}

impl Finished {
    /// A test that ended with `verdict`, nothing else known yet.
    pub fn new(name: &str, path: &std::path::Path, verdict: Verdict) -> Finished {
        Finished {
            name: name.to_string(),
            path: path.to_path_buf(),
            verdict,
            result: None,
            command: None,
            notes: Vec::new(),
            summary: None,
        }
    }

    pub fn time(&self) -> Duration {
        self.result.as_ref().map_or(Duration::ZERO, |r| r.time)
    }

    pub fn output(&self) -> String {
        self.result.as_ref().map_or_else(String::new, |r| {
            String::from_utf8_lossy(&r.output).into_owned()
        })
    }
}

/// Counts so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub errors: usize,
}

impl Counts {
    pub fn add(&mut self, v: &Verdict) {
        match v {
            Verdict::Pass => self.passed += 1,
            Verdict::Fail(_) => self.failed += 1,
            Verdict::Skip(_) => self.skipped += 1,
            Verdict::Error(_) => self.errors += 1,
        }
    }

    /// The counts of `tests`.
    pub fn of(tests: &[Finished]) -> Counts {
        let mut c = Counts::default();
        for t in tests {
            c.add(&t.verdict);
        }
        c
    }

    /// The closing line: `N passed, M failed`, then `, K skipped` and
    /// `, E errors` when there are any.
    pub fn closing_line(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            let _ = write!(s, ", {} skipped", self.skipped);
        }
        if self.errors > 0 {
            let e = if self.errors == 1 { "error" } else { "errors" };
            let _ = write!(s, ", {} {e}", self.errors);
        }
        s
    }

    pub fn done(&self) -> usize {
        self.passed + self.failed + self.skipped + self.errors
    }
}

/// The progress bar line: `[#####.....] 12/40  pass 11 fail 1`.
pub fn progress_bar(c: &Counts, total: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (c.done() * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let mut s = format!(
        "[{}{}] {}/{}  pass {} fail {}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        c.done(),
        total,
        c.passed,
        c.failed
    );
    if c.skipped > 0 {
        let _ = write!(s, " skip {}", c.skipped);
    }
    if c.errors > 0 {
        let _ = write!(s, " error {}", c.errors);
    }
    s
}

/// Prints results as they come: plain lines or TAP on stdout, and on a
/// terminal a progress bar on stderr.
pub struct Reporter {
    total: usize,
    tap: bool,
    bar: bool,
    counts: Counts,
}

const CLEAR_LINE: &str = "\r\x1b[2K";

impl Reporter {
    /// A reporter printing TAP (or plain lines) and a progress bar if `bar`.
    pub fn new_with(tap: bool, bar: bool) -> Reporter {
        Reporter {
            total: 0,
            tap,
            bar,
            counts: Counts::default(),
        }
    }

    pub fn set_total(&mut self, total: usize) {
        self.total = total;
    }

    pub fn start(&mut self) {
        if self.tap {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "TAP version 13\n1..{}", self.total);
            let _ = o.flush();
        }
        self.draw_bar();
    }

    fn draw_bar(&self) {
        if self.bar {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "{CLEAR_LINE}{}", progress_bar(&self.counts, self.total));
            let _ = e.flush();
        }
    }

    fn clear_bar(&self) {
        if self.bar {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "{CLEAR_LINE}");
            let _ = e.flush();
        }
    }

    pub fn finished(&mut self, f: &Finished) {
        self.counts.add(&f.verdict);
        let text = if self.tap {
            Some(tap_entry(self.counts.done(), f))
        } else if !self.bar || f.verdict.is_bad() {
            // On a terminal only failures and errors are worth a line
            // above the bar.
            Some(plain_line(f))
        } else {
            None
        };
        if let Some(text) = text {
            self.clear_bar();
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(text.as_bytes());
            let _ = o.flush();
        }
        self.draw_bar();
    }

    /// Clear the bar and print the closing line (in TAP, as a comment:
    /// a TAP consumer must not read it as a test line).
    pub fn finish(&mut self) {
        self.clear_bar();
        let mut o = std::io::stdout().lock();
        let prefix = if self.tap { "# " } else { "" };
        let _ = writeln!(o, "{prefix}{}", self.counts.closing_line());
        let _ = o.flush();
    }
}

/// `PASS name (0.12 s)` (with the test's summary if it has one: `PASS
/// name (0.12 s): 12 tests`), `FAIL name: why`, `SKIP name: why`,
/// `ERROR name: why`, with a newline.
pub fn plain_line(f: &Finished) -> String {
    match (f.verdict.reason(), &f.summary) {
        (None, None) => format!("PASS {} ({:.2} s)\n", f.name, f.time().as_secs_f64()),
        (None, Some(sum)) => format!(
            "PASS {} ({:.2} s): {}\n",
            f.name,
            f.time().as_secs_f64(),
            one_line(sum)
        ),
        (Some(why), _) => format!("{} {}: {}\n", f.verdict.word(), f.name, one_line(why)),
    }
}

/// Lines of serial output shown in a TAP diagnostic block.
const TAP_OUTPUT_LINES: usize = 20;

/// One TAP test line (number `n`), with a YAML block for failures.
pub fn tap_entry(n: usize, f: &Finished) -> String {
    let name = f.name.replace('\\', "\\\\").replace('#', "\\#");
    match &f.verdict {
        Verdict::Pass => format!("ok {n} - {name}\n"),
        Verdict::Skip(why) => format!("ok {n} - {name} # SKIP {}\n", one_line(why)),
        Verdict::Fail(why) | Verdict::Error(why) => {
            let mut s = format!(
                "not ok {n} - {name}\n  ---\n  message: {}\n  severity: {}\n",
                yaml_quote(why),
                if matches!(f.verdict, Verdict::Error(_)) {
                    "error"
                } else {
                    "fail"
                }
            );
            if let Some(r) = &f.result {
                let _ = writeln!(s, "  status: {}", r.status);
                let _ = writeln!(s, "  duration_ms: {}", r.time.as_millis());
            }
            let out = f.output();
            let lines: Vec<&str> = out.lines().collect();
            if !lines.is_empty() {
                s.push_str("  output: |\n");
                for l in &lines[lines.len().saturating_sub(TAP_OUTPUT_LINES)..] {
                    let _ = writeln!(s, "    {}", printable(l));
                }
            }
            s.push_str("  ...\n");
            s
        }
    }
}

pub fn one_line(s: &str) -> String {
    printable(&s.replace(['\n', '\r'], " "))
}

/// Control characters replaced, so a line stays one line in any report.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn yaml_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// What the test wrote to stderr: the notes (warnings), then softvm's
/// diagnostic.
pub fn stderr_lines(f: &Finished) -> Vec<String> {
    let mut v = f.notes.clone();
    if let Some(m) = f.result.as_ref().and_then(|r| r.message.as_ref()) {
        v.push(m.clone());
    }
    v
}

/// Escape text for XML 1.0 content or attribute values; characters XML
/// cannot carry at all become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// The JUnit XML report: one `testsuite` named "softvm" with a `testcase`
/// per test (in `tests` order), the captured serial output in `system-out`,
/// failures with their reason and status meaning, skips with theirs. The
/// suite carries the start time (`timestamp`, ISO 8601 in UTC) and the
/// `hostname`, which JUnit consumers show and some require.
pub fn junit(tests: &[Finished], wall: Duration, started: SystemTime) -> String {
    let c = Counts::of(tests);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let attrs = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\"",
        tests.len(),
        c.failed,
        c.errors,
        c.skipped,
        wall.as_secs_f64()
    );
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    // JUnit's timestamp has no zone designator: the time is in UTC.
    let stamp = stamp.trim_end_matches('Z');
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let _ = writeln!(
        x,
        "<testsuites name=\"softvm\" {attrs} timestamp=\"{}\">",
        xml_escape(stamp)
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"softvm\" {attrs} timestamp=\"{}\" hostname=\"{}\">",
        xml_escape(stamp),
        xml_escape(&host)
    );
    for t in tests {
        let _ = writeln!(
            x,
            "    <testcase name=\"{}\" classname=\"softvm\" file=\"{}\" time=\"{:.3}\">",
            xml_escape(&t.name),
            xml_escape(&t.path.display().to_string()),
            t.time().as_secs_f64()
        );
        match &t.verdict {
            Verdict::Pass => {}
            Verdict::Fail(why) | Verdict::Error(why) => {
                let (tag, default) = match t.verdict {
                    Verdict::Error(_) => ("error", "error"),
                    _ => ("failure", "failure"),
                };
                let ty = t
                    .result
                    .as_ref()
                    .map_or_else(|| default.into(), |r| status::meaning(r.status));
                let _ = writeln!(
                    x,
                    "      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>",
                    xml_escape(why),
                    xml_escape(&ty),
                    xml_escape(why)
                );
            }
            Verdict::Skip(why) => {
                let _ = writeln!(x, "      <skipped message=\"{}\"/>", xml_escape(why));
            }
        }
        if let Some(r) = &t.result {
            let mut out = String::from_utf8_lossy(&r.output).into_owned();
            if r.dropped > 0 {
                let _ = write!(
                    out,
                    "\n[softvm: {} more bytes of output dropped]\n",
                    r.dropped
                );
            }
            if !out.is_empty() {
                let _ = writeln!(x, "      <system-out>{}</system-out>", xml_escape(&out));
            }
        }
        let err = stderr_lines(t);
        if !err.is_empty() {
            let _ = writeln!(
                x,
                "      <system-err>{}</system-err>",
                xml_escape(&err.join("\n"))
            );
        }
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin(name: &str, verdict: Verdict, out: &[u8]) -> Finished {
        Finished {
            result: Some(RunResult {
                status: 3,
                message: None,
                output: out.to_vec(),
                dropped: 0,
                time: Duration::from_millis(120),
            }),
            ..Finished::new(name, &PathBuf::from(format!("d/{name}")), verdict)
        }
    }

    #[test]
    fn closing_line() {
        let mut c = Counts::default();
        c.add(&Verdict::Pass);
        c.add(&Verdict::Fail("x".into()));
        assert_eq!(c.closing_line(), "1 passed, 1 failed");
        c.add(&Verdict::Skip("y".into()));
        assert_eq!(c.closing_line(), "1 passed, 1 failed, 1 skipped");
        c.add(&Verdict::Error("z".into()));
        assert_eq!(c.closing_line(), "1 passed, 1 failed, 1 skipped, 1 error");
        c.add(&Verdict::Error("z".into()));
        assert_eq!(c.closing_line(), "1 passed, 1 failed, 1 skipped, 2 errors");
        assert_eq!(c.done(), 5);
    }

    #[test]
    fn bar() {
        let c = Counts {
            passed: 11,
            failed: 1,
            skipped: 0,
            errors: 0,
        };
        assert_eq!(
            progress_bar(&c, 40),
            "[######..............] 12/40  pass 11 fail 1"
        );
        let c = Counts { errors: 2, ..c };
        assert_eq!(
            progress_bar(&c, 40),
            "[#######.............] 14/40  pass 11 fail 1 error 2"
        );
        assert_eq!(
            progress_bar(&Counts::default(), 0),
            "[####################] 0/0  pass 0 fail 0"
        );
    }

    #[test]
    fn lines() {
        assert_eq!(
            plain_line(&fin("a.elf", Verdict::Pass, b"")),
            "PASS a.elf (0.12 s)\n"
        );
        assert_eq!(
            plain_line(&fin("a.elf", Verdict::Fail("status 3".into()), b"")),
            "FAIL a.elf: status 3\n"
        );
        let t = tap_entry(
            2,
            &fin(
                "a#b",
                Verdict::Fail("status \"3\"".into()),
                b"one\ntwo\x07\n",
            ),
        );
        assert_eq!(
            t,
            "not ok 2 - a\\#b\n  ---\n  message: \"status \\\"3\\\"\"\n  severity: fail\n  status: 3\n  duration_ms: 120\n  output: |\n    one\n    two\u{fffd}\n  ...\n"
        );
        let e = tap_entry(4, &fin("e", Verdict::Error("status 6 (x)".into()), b""));
        assert!(
            e.starts_with("not ok 4 - e\n  ---\n  message: \"status 6 (x)\"\n  severity: error\n"),
            "{e}"
        );
        assert_eq!(
            plain_line(&fin("e", Verdict::Error("status 6\n(x)".into()), b"")),
            "ERROR e: status 6 (x)\n"
        );
        let mut p = fin("k", Verdict::Pass, b"");
        p.summary = Some("12 tests, 1 skipped".into());
        assert_eq!(plain_line(&p), "PASS k (0.12 s): 12 tests, 1 skipped\n");
        assert_eq!(
            tap_entry(3, &fin("s", Verdict::Skip("no\napic".into()), b"")),
            "ok 3 - s # SKIP no apic\n"
        );
    }

    #[test]
    fn xml() {
        assert_eq!(
            xml_escape("a<b>&\"'\x01\n"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{fffd}\n"
        );
        let x = junit(
            &[
                fin("p", Verdict::Pass, b"hi <there>\n"),
                fin("f", Verdict::Fail("status 3 (guest exit 1)".into()), b""),
                Finished {
                    notes: vec!["warning: w".into()],
                    ..fin("e", Verdict::Error("status 3 (x)".into()), b"")
                },
            ],
            Duration::from_secs(1),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
        );
        assert!(x.contains("<testsuite name=\"softvm\" tests=\"3\" failures=\"1\" errors=\"1\" skipped=\"0\" time=\"1.000\" timestamp=\"2025-12-06T05:46:40\" hostname=\""), "{x}");
        assert!(
            x.contains("<error message=\"status 3 (x)\" type=\"guest exit 1\">status 3 (x)</error>\n      <system-err>warning: w</system-err>"),
            "{x}"
        );
        assert!(
            x.contains("<system-out>hi &lt;there&gt;\n</system-out>"),
            "{x}"
        );
        assert!(
            x.contains("<failure message=\"status 3 (guest exit 1)\" type=\"guest exit 1\">"),
            "{x}"
        );
    }

    #[test]
    fn meanings() {
        assert_eq!(status::meaning(1), "guest exit 0");
        assert_eq!(status::meaning(85), "guest exit 42");
        assert_eq!(status::meaning(4), "triple fault");
        assert_eq!(status::meaning(124), "timeout");
        assert_eq!(status::meaning(257), "guest exit 128");
    }
}

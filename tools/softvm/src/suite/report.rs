//! What `softvm test` prints: the progress bar or plain lines, TAP, the
//! closing line, and the JUnit XML file.

use super::exec::RunResult;
use softvm_machine::status;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A JUnit report's destination. The report is written to a temporary
/// file in the same directory and renamed over the destination only when
/// complete, so an interrupted run (Ctrl-C) leaves the previous report or
/// none, never a truncated one.
pub struct JunitFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl JunitFile {
    /// Check now that the directory takes files, so a bad path fails
    /// before the tests run.
    pub fn create(path: &Path) -> std::io::Result<JunitFile> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "junit.xml".into());
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::File::create(&tmp)?;
        std::fs::remove_file(&tmp)?;
        if path.is_dir() {
            return Err(std::io::Error::other("is a directory"));
        }
        Ok(JunitFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// Write `xml` and move it into place.
    pub fn commit(self, xml: &str) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.path.display());
        std::fs::write(&self.tmp, xml).map_err(err)?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&self.tmp);
            err(e)
        })
    }
}

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Why it failed, on one line.
    Fail(String),
    /// Why it was skipped.
    Skip(String),
}

/// A finished test with everything the reports need.
#[derive(Clone, Debug)]
pub struct Finished {
    pub name: String,
    pub path: PathBuf,
    pub verdict: Verdict,
    /// `None` when the test was skipped without running.
    pub result: Option<RunResult>,
}

impl Finished {
    pub fn time(&self) -> Duration {
        self.result.as_ref().map_or(Duration::ZERO, |r| r.time)
    }

    fn output(&self) -> String {
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
}

impl Counts {
    pub fn add(&mut self, v: &Verdict) {
        match v {
            Verdict::Pass => self.passed += 1,
            Verdict::Fail(_) => self.failed += 1,
            Verdict::Skip(_) => self.skipped += 1,
        }
    }

    /// The closing line: `N passed, M failed` and `, K skipped` if K > 0.
    pub fn closing_line(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            let _ = write!(s, ", {} skipped", self.skipped);
        }
        s
    }

    fn done(&self) -> usize {
        self.passed + self.failed + self.skipped
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
        } else if !self.bar || matches!(f.verdict, Verdict::Fail(_)) {
            // On a terminal only failures are worth a line above the bar.
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

/// `PASS name (0.12 s)`, `FAIL name: why`, `SKIP name: why`, with a newline.
pub fn plain_line(f: &Finished) -> String {
    match &f.verdict {
        Verdict::Pass => format!("PASS {} ({:.2} s)\n", f.name, f.time().as_secs_f64()),
        Verdict::Fail(why) => format!("FAIL {}: {why}\n", f.name),
        Verdict::Skip(why) => format!("SKIP {}: {why}\n", f.name),
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
        Verdict::Fail(why) => {
            let mut s = format!(
                "not ok {n} - {name}\n  ---\n  message: {}\n",
                yaml_quote(why)
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

fn one_line(s: &str) -> String {
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
    let mut c = Counts::default();
    for t in tests {
        c.add(&t.verdict);
    }
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let attrs = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\"",
        tests.len(),
        c.failed,
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
            Verdict::Fail(why) => {
                let ty = t
                    .result
                    .as_ref()
                    .map_or_else(|| "failure".into(), |r| status::meaning(r.status));
                let _ = writeln!(
                    x,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
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
            if let Some(m) = &r.message {
                let _ = writeln!(x, "      <system-err>{}</system-err>", xml_escape(m));
            }
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
            name: name.into(),
            path: PathBuf::from(format!("d/{name}")),
            verdict,
            result: Some(RunResult {
                status: 3,
                message: None,
                output: out.to_vec(),
                dropped: 0,
                time: Duration::from_millis(120),
            }),
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
    }

    #[test]
    fn bar() {
        let c = Counts {
            passed: 11,
            failed: 1,
            skipped: 0,
        };
        assert_eq!(
            progress_bar(&c, 40),
            "[######..............] 12/40  pass 11 fail 1"
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
            "not ok 2 - a\\#b\n  ---\n  message: \"status \\\"3\\\"\"\n  status: 3\n  duration_ms: 120\n  output: |\n    one\n    two\u{fffd}\n  ...\n"
        );
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
            ],
            Duration::from_secs(1),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
        );
        assert!(x.contains("<testsuite name=\"softvm\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"1.000\" timestamp=\"2025-12-06T05:46:40\" hostname=\""), "{x}");
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

//! `--markdown FILE`: the results as a Markdown table (test, verdict, the
//! reason for each that does not pass, wall time), with a header naming
//! what ran, on what, and the totals, ready to paste into a README.

use super::report::{Counts, Finished, Verdict};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// What the header says about the run.
#[derive(Clone, Debug)]
pub struct Context {
    /// What was given to `softvm test`.
    pub paths: Vec<String>,
    /// The kvm-unit-tests commits of the trees (their `build-head`).
    pub build_heads: Vec<String>,
    pub jobs: usize,
    pub started: SystemTime,
    pub wall: Duration,
}

/// A table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    super::report::one_line(s).replace('|', "\\|")
}

/// The document.
pub fn render(tests: &[Finished], cx: &Context) -> String {
    let c = Counts::of(tests);
    let mut m = String::new();
    let date = humantime::format_rfc3339_seconds(cx.started).to_string();
    let _ = write!(
        m,
        "Results of `softvm test {}` (softvm {}, {} jobs, {})",
        cx.paths.join(" "),
        env!("CARGO_PKG_VERSION"),
        cx.jobs,
        date.get(..10).unwrap_or(&date)
    );
    if !cx.build_heads.is_empty() {
        let _ = write!(m, " on kvm-unit-tests {}", cx.build_heads.join(", "));
    }
    m.push_str(".\n\n");
    let pass_time: Duration = tests
        .iter()
        .filter(|t| t.verdict == Verdict::Pass)
        .map(Finished::time)
        .sum();
    let _ = writeln!(
        m,
        "{} of {} tests: {}. The passing tests took {:.1} s together; the whole run {:.1} s.\n",
        c.passed,
        tests.len(),
        c.closing_line(),
        pass_time.as_secs_f64(),
        cx.wall.as_secs_f64()
    );
    m.push_str("| Test | Verdict | Reason | Time (s) |\n|---|---|---|---:|\n");
    for t in tests {
        let reason = t
            .verdict
            .reason()
            .map(str::to_string)
            .or_else(|| t.summary.clone())
            .unwrap_or_default();
        let time = match &t.result {
            Some(r) => format!("{:.2}", r.time.as_secs_f64()),
            None => "–".into(),
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {time} |",
            cell(&t.name),
            t.verdict.word(),
            cell(&reason)
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::super::exec::RunResult;
    use super::*;
    use std::path::Path;

    fn ran(name: &str, v: Verdict, ms: u64) -> Finished {
        Finished {
            result: Some(RunResult {
                status: 1,
                message: None,
                output: Vec::new(),
                dropped: 0,
                time: Duration::from_millis(ms),
            }),
            ..Finished::new(name, Path::new(name), v)
        }
    }

    #[test]
    fn the_table() {
        let mut p = ran("apic", Verdict::Pass, 1500);
        p.summary = Some("12 tests".into());
        let tests = [
            p,
            ran("sieve", Verdict::Pass, 2250),
            ran(
                "debug",
                Verdict::Fail("25 tests, 18 unexpected failures | x".into()),
                300,
            ),
            Finished::new("pmu", Path::new("pmu"), Verdict::Skip("kvm only".into())),
            ran(
                "emulator",
                Verdict::Error("status 6 (unsupported\ninstruction)".into()),
                40,
            ),
        ];
        let cx = Context {
            paths: vec!["/work/kut".into()],
            build_heads: vec!["1da1819e".into()],
            jobs: 2,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
            wall: Duration::from_secs(10),
        };
        assert_eq!(
            render(&tests, &cx),
            format!(
                "Results of `softvm test /work/kut` (softvm {}, 2 jobs, 2025-12-06) on kvm-unit-tests 1da1819e.\n\n\
                 2 of 5 tests: 2 passed, 1 failed, 1 skipped, 1 error. The passing tests took 3.8 s together; the whole run 10.0 s.\n\n\
                 | Test | Verdict | Reason | Time (s) |\n|---|---|---|---:|\n\
                 | apic | PASS | 12 tests | 1.50 |\n\
                 | sieve | PASS |  | 2.25 |\n\
                 | debug | FAIL | 25 tests, 18 unexpected failures \\| x | 0.30 |\n\
                 | pmu | SKIP | kvm only | – |\n\
                 | emulator | ERROR | status 6 (unsupported instruction) | 0.04 |\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

//! One kvm-unit-tests test: its QEMU command line, built when it starts,
//! and the verdict on its run by the suite's status rules.

use super::shell::{self, Word};
use super::{cfg::Section, parse_duration, Settings, Tree, DEFAULT_TIMEOUT};
use crate::qemu::{self, Request};
use crate::suite::exec::RunResult;
use crate::suite::report::Verdict;
use softvm_machine::{status, MachineConfig};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The options kvm-unit-tests' `x86/run` gives QEMU before the kernel's
/// own (`-device pci-testdev` only if QEMU lists it, which softvm does
/// not); the accelerator is TCG's, as softvm's verdicts are compared with.
const X86_RUN: &[&str] = &[
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
];

/// The name the environment file goes by in command lines and logs.
pub const ENV_FILE_NAME: &str = "kvm-unit-tests.env";

/// A test ready to start.
#[derive(Debug)]
pub struct KutTest {
    tree: Arc<Tree>,
    kernel: PathBuf,
    /// `-smp N -append ARGS OPTIONS`, as shell words.
    words: Vec<Word>,
    timeout: Option<Duration>,
    /// The section's timeout text, for the verdict on a timeout.
    timeout_text: String,
    max_instructions: Option<u64>,
}

/// A test's machine, built at its start.
#[derive(Debug)]
pub struct Started {
    pub config: MachineConfig,
    /// The command line that stands for it (`softvm qemu ...`).
    pub command: String,
    /// What went to stderr: front-end warnings, commands' error output.
    pub notes: Vec<String>,
}

/// Why a test did not start.
#[derive(Debug)]
pub enum NotStarted {
    /// The front end refused an option before loading the kernel: the
    /// suite's runner reports that as a skip, with the refusal.
    Skip(String, String),
    /// Anything else: an error of the test's configuration.
    Error(String, Option<String>),
}

/// The shell text of a section's options, as the suite's runner pastes it.
fn shell_text(sec: &Section) -> String {
    let mut t = format!("-smp {}", sec.smp.as_deref().unwrap_or("1"));
    if let Some(a) = sec.test_args.as_deref().filter(|a| !a.trim().is_empty()) {
        t.push_str(" -append ");
        t.push_str(a);
    }
    if let Some(p) = &sec.params {
        t.push(' ');
        t.push_str(p);
    }
    t
}

impl KutTest {
    /// The test of `sec`; an error is a defect of the section's values.
    pub fn new(
        tree: Arc<Tree>,
        sec: &Section,
        kernel: PathBuf,
        s: &Settings,
    ) -> Result<KutTest, String> {
        let words = shell::lex(&shell_text(sec)).map_err(|e| e.to_string())?;
        let (timeout, timeout_text) = match &s.timeout {
            Some((t, text)) => (*t, text.clone()),
            None => {
                let text = sec
                    .timeout
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TIMEOUT.into());
                let t = parse_duration(&text).map_err(|e| format!("timeout: {e}"))?;
                (t, text)
            }
        };
        Ok(KutTest {
            tree,
            kernel,
            words,
            timeout,
            timeout_text,
            max_instructions: s.max_instructions,
        })
    }

    /// Expand the options (running their commands now), parse them with
    /// the QEMU front end and build the machine.
    pub fn start(&self) -> Result<Started, NotStarted> {
        let ex = Expander {
            tree: &self.tree,
            notes: RefCell::new(Vec::new()),
        };
        let words = shell::expand(&self.words, &ex)
            .map_err(|e| NotStarted::Error(format!("the options' shell text: {e}"), None))?;
        let mut argv: Vec<String> = X86_RUN.iter().map(|s| s.to_string()).collect();
        argv.push(self.kernel.display().to_string());
        argv.extend(words);
        let mut command = format!(
            "softvm qemu {}",
            argv.iter()
                .map(|a| shell::quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if self.tree.env_file.is_some() {
            command.push_str(&format!(" -initrd {ENV_FILE_NAME}"));
        }
        let mut notes = ex.notes.into_inner();
        let launch = match qemu::parse(&argv) {
            Ok(Request::Run(l)) => *l,
            Ok(Request::Print(_)) => {
                return Err(NotStarted::Skip(
                    "the options ask QEMU for a listing, not a run".into(),
                    command,
                ))
            }
            Err(e) => {
                return Err(NotStarted::Skip(
                    format!("qemu-system-x86_64: {e}"),
                    command,
                ))
            }
        };
        notes.extend(
            launch
                .warnings
                .iter()
                .map(|w| format!("qemu-system-x86_64: warning: {w}")),
        );
        let mut config = launch.config;
        // x86/run appends the environment file as the last -initrd, which
        // replaces any the options give.
        config.modules = match &self.tree.env_file {
            Some(env) => vec![loader::Module::new(ENV_FILE_NAME.to_string(), env.clone())],
            None => qemu::load_modules(&launch.initrd)
                .map_err(|e| NotStarted::Error(e, Some(command.clone())))?,
        };
        config.timeout = self.timeout;
        config.max_instructions = self.max_instructions;
        Ok(Started {
            config,
            command,
            notes,
        })
    }

    pub fn kernel(&self) -> &PathBuf {
        &self.kernel
    }

    pub fn timeout_text(&self) -> &str {
        &self.timeout_text
    }
}

/// Expansion in a tree: `MAX_SMP`, then `config.mak`'s variables, then
/// the environment; commands run by `sh -c` in the tree's directory.
struct Expander<'a> {
    tree: &'a Tree,
    notes: RefCell<Vec<String>>,
}

impl shell::Env for Expander<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if name == "MAX_SMP" {
            return Some(self.tree.max_smp.clone());
        }
        self.tree
            .mak
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }

    fn run(&self, cmd: &str) -> Result<String, String> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&self.tree.root)
            .envs(self.tree.mak.iter().map(|(k, v)| (k, v)))
            .env("MAX_SMP", &self.tree.max_smp)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run sh -c {cmd:?}: {e}"))?;
        let err = String::from_utf8_lossy(&out.stderr);
        self.notes
            .borrow_mut()
            .extend(err.lines().map(|l| format!("{cmd}: {l}")));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The report's own summary line (`SUMMARY: 12 tests, 1 skipped`) among
/// the last five lines of output, as the suite's runner extracts it.
pub fn summary(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(5)..]
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("SUMMARY: "))
        .map(|s| s.trim_end_matches('\r').to_string())
}

/// The first line of output starting with `prefix`.
fn first_line<'a>(output: &'a str, prefix: &str) -> Option<&'a str> {
    output
        .lines()
        .find(|l| l.starts_with(prefix))
        .map(|l| l.trim_end_matches('\r'))
}

/// Why a kernel skipped: its first `SKIP:` report, or else the last line
/// it printed before its summary (`PKU not enabled`).
fn skip_detail(output: &str) -> Option<&str> {
    if let Some(l) = first_line(output, "SKIP: ") {
        return Some(&l["SKIP: ".len()..]);
    }
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let end = lines.iter().rposition(|l| l.starts_with("SUMMARY: "))?;
    lines[..end]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .copied()
}

/// The line that tells why a kernel gave up: an unexpected exception, an
/// assertion or an abort.
fn fatal_line(output: &str) -> Option<&str> {
    output
        .lines()
        .find(|l| {
            l.starts_with("Unhandled exception")
                || l.contains("assert failed")
                || l.starts_with("ABORT")
        })
        .map(|l| l.trim_end_matches('\r'))
}

/// The verdict on a run by the suite's status rules (1 passed, 77 skipped,
/// 3 failed, anything else an error), with the report's summary.
pub fn judge(r: &RunResult, timeout_text: &str) -> (Verdict, Option<String>) {
    let out = String::from_utf8_lossy(&r.output);
    let sum = summary(&out);
    let v = match r.status {
        1 => Verdict::Pass,
        77 => Verdict::Skip(match (skip_detail(&out), &sum) {
            (Some(d), Some(sum)) => format!("{d} ({sum})"),
            (Some(d), None) => d.to_string(),
            (None, Some(sum)) => sum.clone(),
            (None, None) => "the test skipped itself (status 77)".into(),
        }),
        3 => {
            let mut why = sum
                .clone()
                .unwrap_or_else(|| "status 3 (guest exit 1)".into());
            if let Some(f) = first_line(&out, "FAIL: ") {
                why.push_str("; first: ");
                why.push_str(f);
            }
            Verdict::Fail(why)
        }
        s => {
            let mut why = match (&r.message, s) {
                (_, 124) => format!("timeout; duration={timeout_text}"),
                (Some(m), _) => format!("status {s} ({m})"),
                (None, _) => format!("status {s} ({})", status::meaning(s)),
            };
            if let Some(l) = fatal_line(&out) {
                why.push_str(": ");
                why.push_str(l);
            }
            Verdict::Error(why)
        }
    };
    (v, sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: u64, output: &str, message: Option<&str>) -> RunResult {
        RunResult {
            status,
            message: message.map(str::to_string),
            output: output.as_bytes().to_vec(),
            dropped: 0,
            time: Duration::from_millis(5),
        }
    }

    #[test]
    fn the_status_rules() {
        let out = "PASS: a\nFAIL: b: no\nFAIL: c\nSUMMARY: 3 tests, 2 unexpected failures\r\n";
        assert_eq!(
            judge(&result(1, "PASS: a\nSUMMARY: 1 tests\n", None), "90s"),
            (Verdict::Pass, Some("1 tests".into()))
        );
        assert_eq!(
            judge(&result(3, out, None), "90s").0,
            Verdict::Fail("3 tests, 2 unexpected failures; first: FAIL: b: no".into())
        );
        let skip = |out: &str| judge(&result(77, out, None), "90s").0;
        assert_eq!(
            skip("SKIP: x: no\n\nSUMMARY: 1 tests, 1 skipped\n"),
            Verdict::Skip("x: no (1 tests, 1 skipped)".into())
        );
        assert_eq!(skip("SKIP: x: no\n"), Verdict::Skip("x: no".into()));
        assert_eq!(
            skip("boot\nPKU not enabled\n\nSUMMARY: 0 tests\n"),
            Verdict::Skip("PKU not enabled (0 tests)".into())
        );
        assert_eq!(skip("SUMMARY: 0 tests\n"), Verdict::Skip("0 tests".into()));
        assert_eq!(
            skip(""),
            Verdict::Skip("the test skipped itself (status 77)".into())
        );
        assert_eq!(
            judge(&result(124, "", Some("timeout after 90 s")), "90s").0,
            Verdict::Error("timeout; duration=90s".into())
        );
        assert_eq!(
            judge(
                &result(6, "", Some("unsupported instruction at rip 0x1: fsin")),
                "90s"
            )
            .0,
            Verdict::Error("status 6 (unsupported instruction at rip 0x1: fsin)".into())
        );
        assert_eq!(
            judge(
                &result(129, "a\nUnhandled exception 13 #GP(0) at ip 1\nb\n", None),
                "90s"
            )
            .0,
            Verdict::Error(
                "status 129 (guest exit 64): Unhandled exception 13 #GP(0) at ip 1".into()
            )
        );
        // 0: the guest powered off without the exit device.
        assert!(matches!(
            judge(&result(0, "", None), "90s").0,
            Verdict::Error(_)
        ));
    }

    #[test]
    fn the_summary_is_among_the_last_five_lines() {
        assert_eq!(
            summary("SUMMARY: 2 tests\n1\n2\n3\n4\n"),
            Some("2 tests".into())
        );
        assert_eq!(summary("SUMMARY: 2 tests\n1\n2\n3\n4\n5\n"), None);
        assert_eq!(summary(""), None);
    }

    #[test]
    fn options_are_pasted_as_the_runner_pastes_them() {
        let sec = Section {
            smp: Some("$MAX_SMP".into()),
            test_args: Some("'ipi'".into()),
            params: Some("-machine pit=off".into()),
            ..Section::default()
        };
        assert_eq!(
            shell_text(&sec),
            "-smp $MAX_SMP -append 'ipi' -machine pit=off"
        );
        assert_eq!(shell_text(&Section::default()), "-smp 1");
    }
}

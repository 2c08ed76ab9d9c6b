//! `softvm test`: run many test binaries in parallel and report on them.
//!
//! Each test runs in-process (the same machine as `softvm run`, its serial
//! output captured) on a rayon pool of `--jobs` threads. The verdict comes
//! from the process status `softvm run` would have given, checked against
//! the expectations of the directory's manifest ([`manifest`]).

mod exec;
mod manifest;
mod report;

use crate::cli::MachineOpts;
use manifest::Manifest;
use report::{Finished, Reporter, Verdict};
use softvm_machine::{status, MachineConfig};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const AFTER: &str = "Each PATH is a test binary (any file name) or a directory, from which every
*.elf and *.flat file is taken (not recursively), in name order. The tests run in parallel, each
in its own machine with its serial output captured. A test passes when it ends with status 1 (it
wrote 0 to port 0xf4), skips with status 77 (it wrote 38), and fails otherwise, unless the
directory's manifest says otherwise. The full status is judged: a guest exit value of 0x80 or more
(status 257 and up) is not mistaken for the 8-bit status a process would show.

Manifest: a file softvm-tests.txt in a test directory gives per-test expectations and settings,
one line per test: the file name (or the name without .elf/.flat), then settings; a line named *
gives defaults for all. Settings override the options above. '#' starts a comment; double quotes
group a value with blanks.
  status=N          expected status (default 1; the full value, e.g. 257 for exit value 0x80)
  output=TEXT       the serial output must contain TEXT (repeatable)
  skip[=REASON]     do not run the test; report it skipped
  vcpus=N  memory=SIZE  cpu=MODEL  cmdline=TEXT  module=FILE (repeatable)
  timeout=SECS  max-instructions=N
Example:
  *        timeout=30
  status   status=85 output=\"exit status test\"
  smp.elf  vcpus=4 memory=256M
  apic     skip=\"needs an I/O APIC\"

Output: on a terminal, a progress bar on stderr (and a line per failure); otherwise one line per
finished test on stdout: 'PASS name (0.12 s)', 'FAIL name: status 4 (triple fault at rip ...)',
'SKIP name: reason'. Then a closing line on stdout: 'N passed, M failed', with ', K skipped' if
any (with --tap, as a '# ' comment after the plan and the test lines).

Exit status (the runner's own convention, unlike softvm run): 0 when no test failed, 1 when any
failed, 2 on a usage error, an unreadable PATH, a directory without tests or a bad manifest.";

/// `softvm test PATH...`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER)]
pub struct TestArgs {
    /// Test binaries, or directories of *.elf and *.flat files
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Tests run at once, 1 to 1024 [default: the number of CPUs]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,
    /// Also write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print TAP version 13 instead of PASS/FAIL lines
    #[arg(long)]
    pub tap: bool,
    /// Machine options for every test (the manifest overrides them); the
    /// timeout defaults to 60 s per test
    #[command(flatten)]
    pub machine: MachineOpts,
}

/// The extension-less name of a test file, if it has a test extension.
pub fn strip_test_ext(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".elf")
        .or_else(|| file_name.strip_suffix(".flat"))
        .filter(|s| !s.is_empty())
}

fn is_test_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(strip_test_ext)
        .is_some()
        && p.is_file()
}

/// The options of `softvm test`, resolved.
#[derive(Clone, Debug)]
struct Options {
    paths: Vec<String>,
    jobs: usize,
    tap: bool,
    /// Every test's machine before its manifest line is applied.
    base: MachineConfig,
}

/// Seconds a test may run when neither the command line nor the
/// manifest says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One test to run.
#[derive(Clone, Debug)]
struct Test {
    name: String,
    path: PathBuf,
    cfg: MachineConfig,
    status: u64,
    output: Vec<String>,
    skip: Option<String>,
}

/// The test files named by `paths`, each with its directory, in order.
fn collect(paths: &[String]) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    for p in paths {
        let path = PathBuf::from(p);
        let meta = std::fs::metadata(&path).map_err(|e| format!("{p}: {e}"))?;
        if meta.is_dir() {
            let rd = std::fs::read_dir(&path).map_err(|e| format!("{p}: {e}"))?;
            let mut found = Vec::new();
            for ent in rd {
                let ent = ent.map_err(|e| format!("{p}: {e}"))?;
                let f = ent.path();
                if is_test_file(&f) {
                    found.push(f);
                }
            }
            if found.is_empty() {
                return Err(format!(
                    "{p}: no test binaries (*.elf, *.flat) in this directory"
                ));
            }
            found.sort();
            if let Some(m) = Manifest::load(&path)? {
                check_manifest_names(&m, &found)?;
            }
            files.extend(found.into_iter().map(|f| (f, path.clone())));
        } else {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            files.push((path, dir));
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|(f, _)| seen.insert(f.clone()));
    Ok(files)
}

/// Every manifest line must name a test of its directory (catches typos).
fn check_manifest_names(m: &Manifest, found: &[PathBuf]) -> Result<(), String> {
    for (name, _, line) in &m.entries {
        let known = found.iter().any(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|f| manifest::names_match(name, f))
        });
        if !known {
            return Err(format!(
                "{}:{line}: no test named {name} in this directory",
                m.path.display()
            ));
        }
    }
    Ok(())
}

/// Tests with their settings: command-line defaults, then the manifest.
fn plan(o: &Options) -> Result<Vec<Test>, String> {
    let files = collect(&o.paths)?;
    let mut manifests: HashMap<PathBuf, Option<Arc<Manifest>>> = HashMap::new();
    let mut name_count: HashMap<String, usize> = HashMap::new();
    for (f, _) in &files {
        *name_count.entry(file_name(f)).or_default() += 1;
    }
    let mut tests = Vec::new();
    for (path, dir) in files {
        let m = match manifests.get(&dir) {
            Some(m) => m.clone(),
            None => {
                let m = Manifest::load(&dir)?.map(Arc::new);
                manifests.insert(dir.clone(), m.clone());
                m
            }
        };
        let fname = file_name(&path);
        let e = m.map(|m| m.lookup(&fname)).unwrap_or_default();
        let mut modules = Vec::new();
        for mp in &e.modules {
            let data = std::fs::read(mp).map_err(|err| format!("{}: {err}", mp.display()))?;
            modules.push(loader::Module {
                name: mp.display().to_string(),
                data,
            });
        }
        let mut cfg = o.base.clone();
        cfg.vcpus = e.vcpus.unwrap_or(cfg.vcpus);
        cfg.memory = e.memory.unwrap_or(cfg.memory);
        if let Some(c) = &e.cpu {
            cfg.cpu = c.clone();
        }
        cfg.seed = e.seed.unwrap_or(cfg.seed);
        cfg.clock = e.clock.unwrap_or(cfg.clock);
        if let Some(c) = &e.cmdline {
            cfg.cmdline = c.clone();
        }
        cfg.modules.extend(modules);
        cfg.timeout = e.timeout.or(cfg.timeout).or(Some(DEFAULT_TIMEOUT));
        cfg.max_instructions = e.max_instructions.or(cfg.max_instructions);
        let name = if name_count[&fname] > 1 {
            path.display().to_string()
        } else {
            fname
        };
        tests.push(Test {
            name,
            path,
            cfg,
            status: e.status.unwrap_or(1),
            output: e.output,
            skip: e.skip,
        });
    }
    Ok(tests)
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The verdict on a run against the test's expectations.
fn judge(t: &Test, r: &exec::RunResult) -> Verdict {
    if r.status != t.status {
        if r.status == 77 {
            return Verdict::Skip("guest skipped (status 77)".into());
        }
        let detail = r
            .message
            .clone()
            .unwrap_or_else(|| status::meaning(r.status));
        let mut why = format!("status {} ({detail})", r.status);
        if t.status != 1 || r.message.is_none() {
            why.push_str(&format!(", expected {}", t.status));
        }
        return Verdict::Fail(why);
    }
    let out = String::from_utf8_lossy(&r.output);
    if let Some(missing) = t.output.iter().find(|s| !out.contains(s.as_str())) {
        let mut why = format!("status {}, but the output lacks {missing:?}", r.status);
        if r.dropped > 0 {
            why.push_str(&format!(
                " (after {} bytes the output was cut)",
                r.output.len()
            ));
        }
        return Verdict::Fail(why);
    }
    Verdict::Pass
}

fn error(msg: &str) -> i32 {
    crate::diag(&format!("softvm: {msg}"));
    status::USAGE
}

/// `softvm test`; returns the process status.
pub fn cmd_test(a: TestArgs) -> i32 {
    let mut base = MachineConfig::default();
    if let Err(e) = a.machine.apply(&mut base) {
        return error(&format!("{e:#}"));
    }
    let o = Options {
        paths: a.paths,
        jobs: a.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            usize::from,
        ),
        tap: a.tap,
        base,
    };
    let tests = match plan(&o) {
        Ok(t) => t,
        Err(m) => return error(&m),
    };
    // Fail early on an unwritable report path; the report itself is
    // written to a temporary file beside it and renamed into place, so an
    // interrupted run never leaves a truncated report.
    let junit = match &a.junit {
        Some(p) => match report::JunitFile::create(p) {
            Ok(f) => Some(f),
            Err(e) => return error(&format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let bar = std::io::stderr().is_terminal()
        && std::env::var_os("TERM").as_deref() != Some("dumb".as_ref());
    let start = Instant::now();
    let started_at = std::time::SystemTime::now();
    let finished = run_all(tests, o.jobs, Reporter::new_with(o.tap, bar));
    let failed = finished
        .iter()
        .any(|f| matches!(f.verdict, Verdict::Fail(_)));
    if let Some(f) = junit {
        let xml = report::junit(&finished, start.elapsed(), started_at);
        if let Err(e) = f.commit(&xml) {
            return error(&e);
        }
    }
    i32::from(failed)
}

/// Run every test on a pool of `jobs` threads, reporting each as it ends;
/// returns them all in the original order.
fn run_all(tests: Vec<Test>, jobs: usize, mut reporter: Reporter) -> Vec<Finished> {
    let n = tests.len();
    reporter.set_total(n);
    let tests = Arc::new(tests);
    let (tx, rx) = mpsc::channel::<(usize, Finished)>();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("softvm-runner-{i}"))
        .panic_handler(|_| {})
        .build();
    reporter.start();
    match pool {
        Ok(pool) => {
            for i in 0..n {
                let t = &tests[i];
                if let Some(why) = &t.skip {
                    let _ = tx.send((i, skipped(t, why)));
                    continue;
                }
                let (tests, tx) = (tests.clone(), tx.clone());
                pool.spawn(move || {
                    let t = &tests[i];
                    let r = exec::run(&t.name, t.path.clone(), t.cfg.clone());
                    let f = Finished {
                        name: t.name.clone(),
                        path: t.path.clone(),
                        verdict: judge(t, &r),
                        result: Some(r),
                    };
                    let _ = tx.send((i, f));
                });
            }
        }
        Err(e) => {
            for (i, t) in tests.iter().enumerate() {
                let f = lost(t, &format!("cannot start the thread pool: {e}"));
                let _ = tx.send((i, f));
            }
        }
    }
    drop(tx);
    let mut done: Vec<Option<Finished>> = vec![None; n];
    for (i, f) in rx {
        reporter.finished(&f);
        done[i] = Some(f);
    }
    let out = done
        .into_iter()
        .zip(tests.iter())
        .map(|(f, t)| {
            f.unwrap_or_else(|| {
                let f = lost(t, "internal error in softvm: the runner lost this test");
                reporter.finished(&f);
                f
            })
        })
        .collect();
    reporter.finish();
    out
}

fn skipped(t: &Test, why: &str) -> Finished {
    Finished {
        name: t.name.clone(),
        path: t.path.clone(),
        verdict: Verdict::Skip(why.to_string()),
        result: None,
    }
}

fn lost(t: &Test, why: &str) -> Finished {
    Finished {
        name: t.name.clone(),
        path: t.path.clone(),
        verdict: Verdict::Fail(why.to_string()),
        result: None,
    }
}

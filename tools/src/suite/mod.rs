//! `softvm test`: run many test binaries in parallel and report on them.
//!
//! Each test runs in-process (the same machine as `softvm run`, its serial
//! output captured) on a rayon pool of `--jobs` threads. The verdict comes
//! from the process status `softvm run` would have given, checked against
//! the expectations of the directory's manifest ([`manifest`]).

mod exec;
pub mod manifest;
mod report;

use crate::machine::RunConfig;
use crate::status;
use manifest::Manifest;
use report::{Finished, Reporter, Verdict};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub const HELP: &str = "softvm test — run many test kernels and report on them

Usage:
  softvm test PATH... [options]

Each PATH is a test binary (any file name) or a directory, from which every
*.elf and *.flat file is taken (not recursively), in name order. The tests
run in parallel, each in its own machine with its serial output captured.
A test passes when it ends with status 1 (it wrote 0 to port 0xf4), skips
with status 77 (it wrote 38), and fails otherwise, unless the directory's
manifest says otherwise.

Options:
  -j, --jobs N             tests run at once (default: the number of CPUs)
  --junit FILE             also write a JUnit XML report to FILE
  --tap                    print TAP version 13 instead of PASS/FAIL lines
  --timeout SECS           stop each test after SECS seconds, a failure with
                           status 124 (default 60)
  --vcpus N                vCPUs of each machine (default 1)
  --memory SIZE            guest RAM of each machine (default 128M)
  --max-instructions N     stop each test after N instructions (status 8)
  -h, --help               this text

Manifest: a file softvm-tests.txt in a test directory gives per-test
expectations and settings, one line per test: the file name (or the name
without .elf/.flat), then settings; a line named * gives defaults for all.
Settings override the options above. '#' starts a comment; double quotes
group a value with blanks.
  status=N          expected process status (default 1)
  output=TEXT       the serial output must contain TEXT (repeatable)
  skip[=REASON]     do not run the test; report it skipped
  vcpus=N  memory=SIZE  cmdline=TEXT  module=FILE (repeatable)
  timeout=SECS  max-instructions=N
Example:
  *        timeout=30
  status   status=85 output=\"exit status test\"
  smp.elf  vcpus=4 memory=256M
  apic     skip=\"needs an I/O APIC\"

Output: on a terminal, a progress bar on stderr (and a line per failure);
otherwise one line per finished test on stdout: 'PASS name (0.12 s)',
'FAIL name: status 4 (triple fault at rip ...)', 'SKIP name: reason'. Then a
closing line on stdout: 'N passed, M failed', with ', K skipped' if any.

Exit status (the runner's own convention, unlike softvm run): 0 when no
test failed, 1 when any failed, 2 on a usage error, an unreadable PATH, a
directory without tests or a bad manifest.
";

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

pub(crate) fn parse_vcpus(v: &str) -> Option<u32> {
    v.parse().ok().filter(|n| (1..=255).contains(n))
}

pub(crate) fn parse_memory(v: &str) -> Option<u64> {
    crate::cli::parse_size(v).filter(|&m| m >= 2 << 20)
}

pub(crate) fn parse_timeout(v: &str) -> Option<f64> {
    v.parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e9)
}

/// The command line of `softvm test`.
#[derive(Clone, Debug, PartialEq)]
struct Options {
    paths: Vec<String>,
    jobs: usize,
    junit: Option<PathBuf>,
    tap: bool,
    timeout: f64,
    vcpus: u32,
    memory: u64,
    max_instructions: Option<u64>,
}

/// Parse the arguments; `Ok(None)` asks for the help text.
fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        paths: Vec::new(),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        junit: None,
        tap: false,
        timeout: 60.0,
        vcpus: 1,
        memory: 128 << 20,
        max_instructions: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "-j" | "--jobs" => {
                let v = val(a)?;
                o.jobs = v
                    .parse()
                    .ok()
                    .filter(|&n| (1..=1024).contains(&n))
                    .ok_or(format!("bad {a}: {v}"))?;
            }
            "--junit" => o.junit = Some(PathBuf::from(val(a)?)),
            "--tap" => o.tap = true,
            "--timeout" => {
                let v = val(a)?;
                o.timeout = parse_timeout(&v).ok_or(format!("bad --timeout: {v}"))?;
            }
            "--vcpus" => {
                let v = val(a)?;
                o.vcpus = parse_vcpus(&v).ok_or(format!("bad --vcpus: {v}"))?;
            }
            "--memory" => {
                let v = val(a)?;
                o.memory = parse_memory(&v).ok_or(format!("bad --memory: {v}"))?;
            }
            "--max-instructions" => {
                let v = val(a)?;
                o.max_instructions = Some(
                    v.parse()
                        .ok()
                        .filter(|&n: &u64| n > 0)
                        .ok_or(format!("bad --max-instructions: {v}"))?,
                );
            }
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            s => o.paths.push(s.to_string()),
        }
    }
    if o.paths.is_empty() {
        return Err("test needs at least one PATH".into());
    }
    Ok(Some(o))
}

/// One test to run.
#[derive(Clone, Debug)]
struct Test {
    name: String,
    path: PathBuf,
    cfg: RunConfig,
    status: i32,
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
        let cfg = RunConfig {
            vcpus: e.vcpus.unwrap_or(o.vcpus),
            memory: e.memory.unwrap_or(o.memory),
            cmdline: e.cmdline.clone().unwrap_or_default(),
            modules,
            timeout: Some(Duration::from_secs_f64(e.timeout.unwrap_or(o.timeout))),
            max_instructions: e.max_instructions.or(o.max_instructions),
            serial_stdin: false,
        };
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
            .unwrap_or_else(|| report::status_meaning(r.status));
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
    eprintln!("softvm: {msg}");
    status::USAGE
}

/// `softvm test ARGS`; returns the process status.
pub fn cmd_test(args: &[String]) -> i32 {
    let o = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return 0;
        }
        Err(m) => return error(&format!("{m} (see softvm test --help)")),
    };
    let tests = match plan(&o) {
        Ok(t) => t,
        Err(m) => return error(&m),
    };
    // Fail early on an unwritable report path.
    let junit = match &o.junit {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some((p.clone(), f)),
            Err(e) => return error(&format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let bar = std::io::stderr().is_terminal()
        && std::env::var_os("TERM").as_deref() != Some("dumb".as_ref());
    let start = Instant::now();
    let finished = run_all(tests, o.jobs, Reporter::new_with(o.tap, bar));
    let failed = finished
        .iter()
        .any(|f| matches!(f.verdict, Verdict::Fail(_)));
    if let Some((p, mut f)) = junit {
        use std::io::Write;
        let xml = report::junit(&finished, start.elapsed());
        if let Err(e) = f.write_all(xml.as_bytes()).and_then(|_| f.flush()) {
            return error(&format!("{}: {e}", p.display()));
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

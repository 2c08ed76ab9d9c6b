//! `softvm test`: run many test binaries in parallel and report on them.
//!
//! Each test runs in-process (the same machine as `softvm run`, its serial
//! output captured) on a rayon pool of `--jobs` threads. The verdict comes
//! from the process status `softvm run` would have given, checked against
//! the expectations of the directory's manifest ([`manifest`]), or, for a
//! kvm-unit-tests tree, the tests its `unittests.cfg` describes, run and
//! judged as the suite's own runner does ([`kut`]).

mod exec;
mod files;
pub mod kut;
mod manifest;
mod markdown;
mod plain;
mod report;

use crate::cli::MachineOpts;
use files::{Logs, ReportFile};
use report::{Finished, Reporter, Verdict};
use softvm_machine::{status, MachineConfig};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Instant;

const AFTER: &str = "Each PATH is a test binary (any file name), a directory, from which every
*.elf and *.flat file is taken (not recursively), in name order, or a kvm-unit-tests tree (below).
The tests run in parallel, each in its own machine with its serial output captured. A test passes
when it ends with status 1 (it wrote 0 to port 0xf4), skips with status 77 (it wrote 38), and fails
otherwise, unless the directory's manifest says otherwise. The full status is judged: a guest exit
value of 0x80 or more (status 257 and up) is not mistaken for the 8-bit status a process would show.

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

kvm-unit-tests: a PATH that is a built tree (a directory with x86/unittests.cfg or unittests.cfg),
or its unittests.cfg, runs every test of that file as the suite's run_tests.sh does with
ACCEL=tcg: the kernel (file), -smp (smp, with $MAX_SMP), -append (test_args) and the QEMU
options (qemu_params, extra_params, \"\"\" values over lines) as one shell command line: quotes,
$VARS, backticks and $(...) are the shell's (commands run by sh -c in the tree, when the test
starts). The options go through softvm qemu's parser; one it refuses makes the test a skip, as
QEMU's refusals do in run_tests.sh. arch, machine (against MACHINE), accel (kvm-only tests are
skipped), check (or CHECK), disabled_if and a missing kernel skip a test; nodefault tests run when
named (--only), in the --group given, or with --all. The kernel gets run_tests.sh's environment
file as its module (TARGET, QEMU_*, KERNEL_*, KVM_UNIT_TESTS_ENV's variables, ERRATA_FORCE=y).
Timeouts: --timeout, else TIMEOUT, else the section's timeout (90s by default; 0 = none). Verdicts
by the suite's status rules: 1 passed, 77 skipped, 3 failed, any other status an error, counted
apart. MAX_SMP defaults to the host's online CPUs. --vcpus, --memory, --cpu, --cmdline and
--module do not apply to these tests.

Output: on a terminal, a progress bar on stderr (and a line per failure or error); otherwise one
line per finished test on stdout: 'PASS name (0.12 s)' (with the kernel's SUMMARY if any), 'FAIL
name: status 4 (triple fault at rip ...)', 'SKIP name: reason', 'ERROR name: reason'. Then a
closing line on stdout: 'N passed, M failed', with ', K skipped' and ', E errors' if any (with
--tap, as a '# ' comment after the plan and the test lines). --logs DIR writes DIR/NAME.log per
test: the command line (for kvm-unit-tests, a softvm qemu line that runs from DIR), the serial
output, stderr, the verdict. --markdown FILE writes a table: test, verdict, reason, wall time.

Exit status (the runner's own convention, unlike softvm run): 0 when no test failed or erred, 1
otherwise, 2 on a usage error, an unreadable PATH, a directory without tests or a bad manifest or
unittests.cfg.";

/// `softvm test PATH...`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER)]
pub struct TestArgs {
    /// Test binaries, directories of *.elf and *.flat files, or
    /// kvm-unit-tests trees (a directory with x86/unittests.cfg, or the file)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Tests run at once, 1 to 1024 [default: the number of CPUs]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,
    /// Only the tests of these names (comma-separated, repeatable)
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Only the kvm-unit-tests tests of this group (nodefault ones included)
    #[arg(short, long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Also the kvm-unit-tests tests marked nodefault
    #[arg(short, long)]
    pub all: bool,
    /// Also write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the results as a Markdown table to FILE
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write each test's log (command, serial output, stderr, verdict) to DIR/NAME.log
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
    /// Print TAP version 13 instead of PASS/FAIL lines
    #[arg(long)]
    pub tap: bool,
    /// Machine options for every test (the manifest overrides them); the
    /// timeout defaults to 60 s per test (90 s in kvm-unit-tests)
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

/// Which tests of the paths run: `--only`, `--group`, `--all`.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub group: Option<String>,
    /// kvm-unit-tests' `nodefault` tests too.
    pub all: bool,
}

/// The options of `softvm test`, resolved.
#[derive(Clone, Debug)]
struct Options {
    paths: Vec<String>,
    jobs: usize,
    tap: bool,
    select: Selection,
    /// Every plain test's machine before its manifest line is applied.
    base: MachineConfig,
    /// The machine options as given (kvm-unit-tests takes only some).
    machine: MachineOpts,
}

/// One test to run.
#[derive(Debug)]
pub struct Test {
    name: String,
    path: PathBuf,
    job: Job,
}

/// What running a test means.
#[derive(Debug)]
pub enum Job {
    /// Do not run it: skipped, for this reason.
    Skip(String),
    /// A test binary, judged by the manifest's expectations.
    Plain {
        cfg: MachineConfig,
        status: u64,
        output: Vec<String>,
    },
    /// A kvm-unit-tests test, whose machine is built when it starts.
    Kut(Box<kut::KutTest>),
    /// A kvm-unit-tests test whose section cannot be run as written.
    Broken(String),
}

/// The machine options kvm-unit-tests trees cannot take: their
/// `unittests.cfg` sets these per test.
fn check_kut_options(m: &MachineOpts) -> Result<(), String> {
    let given = [
        ("--vcpus", m.vcpus.is_some()),
        ("--memory", m.memory.is_some()),
        ("--cpu", m.cpu.is_some()),
        ("--cmdline", m.cmdline.is_some()),
        ("--module", !m.modules.is_empty()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((opt, _)) => Err(format!(
            "{opt}: a kvm-unit-tests tree's unittests.cfg sets this for each test \
             (only --timeout and --max-instructions apply to it)"
        )),
        None => Ok(()),
    }
}

/// The tests of the paths, in order, with what the selection keeps, and
/// the kvm-unit-tests trees among the paths.
fn plan(o: &Options) -> Result<(Vec<Test>, Vec<Arc<kut::Tree>>), String> {
    let mut tests = Vec::new();
    let mut trees = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut manifests = HashMap::new();
    let mut settings = None;
    for p in &o.paths {
        if let Some(cfg) = kut::detect(Path::new(p)) {
            check_kut_options(&o.machine)?;
            if settings.is_none() {
                settings = Some(kut::Settings::from_env(
                    o.machine.timeout,
                    o.machine.max_instructions,
                )?);
            }
            let s = settings.as_ref().expect("set above");
            let tree = Arc::new(kut::Tree::open(&cfg, s));
            tests.extend(kut::plan(tree.clone(), &o.select, s)?);
            trees.push(tree);
            continue;
        }
        for (f, dir) in plain::collect(p, &mut seen)? {
            let t = plain::plain_test(o, f, &dir, &mut manifests)?;
            let keep = o.select.group.is_none()
                && (o.select.only.is_empty() || o.select.only.contains(&t.name));
            if keep {
                tests.push(t);
            }
        }
    }
    // Names must tell tests apart: a repeated one names its file instead.
    let mut count: HashMap<String, usize> = HashMap::new();
    for t in &tests {
        *count.entry(t.name.clone()).or_default() += 1;
    }
    for t in &mut tests {
        if count[&t.name] > 1 {
            t.name = match &t.job {
                Job::Kut(_) | Job::Broken(_) => format!("{}:{}", t.path.display(), t.name),
                _ => t.path.display().to_string(),
            };
        }
    }
    if let Some(n) = o.select.only.iter().find(|n| !count.contains_key(*n)) {
        return Err(format!(
            "--only {n}: no test of that name in the paths given"
        ));
    }
    if tests.is_empty() {
        if let Some(g) = &o.select.group {
            return Err(format!(
                "--group {g}: no test of the paths is in that group"
            ));
        }
    }
    Ok((tests, trees))
}

/// Run one test (on the calling thread) and judge it.
fn execute(t: &Test) -> Finished {
    match &t.job {
        Job::Skip(why) => Finished::new(&t.name, &t.path, Verdict::Skip(why.clone())),
        Job::Broken(why) => Finished::new(&t.name, &t.path, Verdict::Error(why.clone())),
        Job::Plain {
            cfg,
            status,
            output,
        } => {
            let r = exec::run(&t.name, t.path.clone(), cfg.clone());
            Finished {
                result: Some(r.clone()),
                ..Finished::new(&t.name, &t.path, plain::judge(*status, output, &r))
            }
        }
        Job::Kut(k) => match k.start() {
            Err(kut::NotStarted::Skip(why, command)) => Finished {
                command: Some(command),
                ..Finished::new(&t.name, &t.path, Verdict::Skip(why))
            },
            Err(kut::NotStarted::Error(why, command)) => Finished {
                command,
                ..Finished::new(&t.name, &t.path, Verdict::Error(why))
            },
            Ok(st) => {
                let r = exec::run(&t.name, k.kernel().clone(), st.config);
                let (verdict, summary) = kut::judge(&r, k.timeout_text());
                Finished {
                    result: Some(r),
                    command: Some(st.command),
                    notes: st.notes,
                    summary,
                    ..Finished::new(&t.name, &t.path, verdict)
                }
            }
        },
    }
}

fn error(msg: &str) -> i32 {
    crate::diag(&format!("softvm: {msg}"));
    status::USAGE
}

/// Open a report file now, so a bad path fails before the tests run.
fn report_file(p: &Option<PathBuf>) -> Result<Option<ReportFile>, String> {
    p.as_ref()
        .map(|p| ReportFile::create(p).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()
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
        select: Selection {
            only: a.only,
            group: a.group,
            all: a.all,
        },
        base,
        machine: a.machine,
    };
    let (tests, trees) = match plan(&o) {
        Ok(t) => t,
        Err(m) => return error(&m),
    };
    // Reports are written to a temporary file beside their destination and
    // renamed into place, so an interrupted run never leaves a truncated one.
    let (junit, markdown) = match (report_file(&a.junit), report_file(&a.markdown)) {
        (Ok(j), Ok(m)) => (j, m),
        (Err(e), _) | (_, Err(e)) => return error(&e),
    };
    let logs = match &a.logs {
        Some(d) => match Logs::create(d) {
            Ok(l) => Some(l),
            Err(e) => return error(&format!("{}: {e}", d.display())),
        },
        None => None,
    };
    if let (Some(l), Some(env)) = (&logs, trees.iter().find_map(|t| t.env_file.as_ref())) {
        if let Err(e) = l.put(kut::ENV_FILE_NAME, env) {
            return error(&e);
        }
    }
    let bar = std::io::stderr().is_terminal()
        && std::env::var_os("TERM").as_deref() != Some("dumb".as_ref());
    let start = Instant::now();
    let started_at = std::time::SystemTime::now();
    let finished = run_all(tests, o.jobs, Reporter::new_with(o.tap, bar), logs.as_ref());
    let failed = finished.iter().any(|f| f.verdict.is_bad());
    if let Some(f) = junit {
        let xml = report::junit(&finished, start.elapsed(), started_at);
        if let Err(e) = f.commit(&xml) {
            return error(&e);
        }
    }
    if let Some(f) = markdown {
        let cx = markdown::Context {
            paths: o.paths.clone(),
            build_heads: kut::build_heads(&trees),
            jobs: o.jobs,
            started: started_at,
            wall: start.elapsed(),
        };
        if let Err(e) = f.commit(&markdown::render(&finished, &cx)) {
            return error(&e);
        }
    }
    i32::from(failed)
}

/// Run every test on a pool of `jobs` threads, reporting (and logging)
/// each as it ends; returns them all in the original order.
fn run_all(
    tests: Vec<Test>,
    jobs: usize,
    mut reporter: Reporter,
    logs: Option<&Logs>,
) -> Vec<Finished> {
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
                if matches!(tests[i].job, Job::Skip(_) | Job::Broken(_)) {
                    let _ = tx.send((i, execute(&tests[i])));
                    continue;
                }
                let (tests, tx) = (tests.clone(), tx.clone());
                pool.spawn(move || {
                    let _ = tx.send((i, execute(&tests[i])));
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
    let mut log_failed = false;
    let mut log = |f: &Finished| {
        if let (Some(l), false) = (logs, log_failed) {
            if let Err(e) = l.write(f) {
                crate::diag(&format!("softvm: warning: no more logs: {e}"));
                log_failed = true;
            }
        }
    };
    let mut done: Vec<Option<Finished>> = (0..n).map(|_| None).collect();
    for (i, f) in rx {
        reporter.finished(&f);
        log(&f);
        done[i] = Some(f);
    }
    let out = done
        .into_iter()
        .zip(tests.iter())
        .map(|(f, t)| {
            f.unwrap_or_else(|| {
                let f = lost(t, "internal error in softvm: the runner lost this test");
                reporter.finished(&f);
                log(&f);
                f
            })
        })
        .collect();
    reporter.finish();
    out
}

fn lost(t: &Test, why: &str) -> Finished {
    Finished::new(&t.name, &t.path, Verdict::Error(why.to_string()))
}

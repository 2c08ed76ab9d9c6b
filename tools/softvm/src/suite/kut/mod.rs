//! kvm-unit-tests trees: `softvm test` on a built tree (or its
//! `x86/unittests.cfg`) runs every test of the file as the suite's own
//! `run_tests.sh` runs it with `ACCEL=tcg`, through the same QEMU command
//! line parser as `softvm qemu`.
//!
//! The decisions the runner makes before a test starts, in its order:
//! tests not named by `--only` or not in `--group` are left out; a
//! `nodefault` test is skipped unless named, in the chosen group, or
//! `--all`; then the test's `arch`, `machine` (against `MACHINE`),
//! `accel` (softvm is never KVM), `disabled_if`, `check` (or `CHECK`) and
//! the presence of its kernel may skip it. At its start ([`launch`]) its
//! options are expanded (backticks run then), pasted behind `x86/run`'s
//! fixed options and parsed; an option the front end refuses is a skip, as
//! the suite's runner turns QEMU's refusals before loading the kernel into
//! skips. The verdict follows the suite's status rules: 1 passed, 77
//! skipped, 3 failed, anything else an error.

pub mod cfg;
pub mod env;
mod launch;
pub mod shell;

pub use launch::{judge, KutTest, NotStarted, ENV_FILE_NAME};

use super::{Job, Selection, Test};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The file of a tree, below its top directory.
pub const CFG_NAME: &str = "unittests.cfg";

/// The timeout of a test whose section gives none (the suite's default).
pub const DEFAULT_TIMEOUT: &str = "90s";

/// The `unittests.cfg` a path designates: the file itself, or in the
/// directory, or in the directory's `x86/`.
pub fn detect(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return (path.file_name()? == CFG_NAME).then(|| path.to_path_buf());
    }
    [path.join(CFG_NAME), path.join("x86").join(CFG_NAME)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Settings from softvm's command line and the environment variables the
/// suite's runner reads, shared by every tree.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `--timeout` or `TIMEOUT` (`None` in it: `TIMEOUT=0`, no limit),
    /// over each section's own, with the text it was given as.
    pub timeout: Option<(Option<Duration>, String)>,
    pub max_instructions: Option<u64>,
    /// `CHECK`, over each section's `check`.
    pub check: Option<String>,
    /// `MACHINE`: tests for another machine are skipped.
    pub machine: Option<String>,
    /// `MAX_SMP`: the environment's, or the host's online CPU count.
    pub max_smp: String,
    /// The environment file's inputs.
    pub env: env::Inputs,
}

impl Settings {
    /// The settings from the environment, `--timeout` and
    /// `--max-instructions` given.
    pub fn from_env(
        timeout: Option<Duration>,
        max_instructions: Option<u64>,
    ) -> Result<Settings, String> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let timeout = match (timeout, var("TIMEOUT")) {
            (Some(t), _) => Some((Some(t), format!("{}s", t.as_secs_f64()))),
            (None, Some(t)) => Some((
                parse_duration(&t).map_err(|e| format!("TIMEOUT={t}: {e}"))?,
                t,
            )),
            (None, None) => None,
        };
        Ok(Settings {
            timeout,
            max_instructions,
            check: var("CHECK"),
            machine: var("MACHINE"),
            max_smp: var("MAX_SMP").unwrap_or_else(|| online_cpus().to_string()),
            env: env::Inputs::from_host(crate::qemu::version_line()),
        })
    }
}

/// The host's online CPUs, as `getconf _NPROCESSORS_ONLN` counts them
/// (from `/sys/devices/system/cpu/online`, e.g. `0-3,8`).
pub fn online_cpus() -> usize {
    let count = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| count_cpu_list(s.trim()));
    count.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The number of CPUs in a list such as `0-3,8`.
fn count_cpu_list(s: &str) -> Option<usize> {
    let mut n = 0;
    for part in s.split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().ok()?.checked_sub(a.parse().ok()?)? + 1,
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
    }
    (n > 0).then_some(n)
}

/// A duration as `timeout(1)` takes it: a non-negative number with an
/// optional unit `s`, `m`, `h` or `d`; 0 means no limit (`None`).
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c @ ('s' | 'm' | 'h' | 'd'))) => (&t[..i], c),
        _ => (t, 's'),
    };
    let mult = match unit {
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => 1.0,
    };
    let bad = || format!("invalid time interval {s:?}");
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = v * mult;
    if secs == 0.0 {
        return Ok(None);
    }
    softvm_machine::config::parse_timeout(&secs.to_string())
        .map(Some)
        .map_err(|e| format!("{s}: {e}"))
}

/// A tree: where its runner would run, its configuration and what every
/// test of it shares.
#[derive(Debug)]
pub struct Tree {
    /// The directory the suite's runner runs in (the file's directory's
    /// parent): commands and relative `check` paths start there.
    pub root: PathBuf,
    pub cfg: PathBuf,
    /// `ARCH` of its `config.mak` (x86_64 without one).
    pub arch: String,
    /// The variables of `config.mak`, for the shell text of the file.
    pub mak: Vec<(String, String)>,
    pub max_smp: String,
    /// The environment file (none when `config.mak` says
    /// `ENVIRON_DEFAULT=no` and no `KVM_UNIT_TESTS_ENV` file is given).
    pub env_file: Option<Vec<u8>>,
    /// The commit the tree was built from (its `build-head` file).
    pub build_head: Option<String>,
}

/// `KEY=VALUE` lines of a `config.mak`.
fn read_mak(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Tree {
    /// The tree of a `unittests.cfg`.
    pub fn open(cfg: &Path, s: &Settings) -> Tree {
        let dir = cfg.parent().unwrap_or(Path::new("."));
        let root = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        let mak = std::fs::read_to_string(root.join("config.mak"))
            .map(|t| read_mak(&t))
            .unwrap_or_default();
        let get = |k: &str| mak.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let arch = get("ARCH").unwrap_or_else(|| "x86_64".into());
        let env_file = if get("ENVIRON_DEFAULT").is_none_or(|v| v == "yes") {
            Some(env::generate(&s.env).into_bytes())
        } else {
            s.env.user_file.clone().map(String::into_bytes)
        };
        let build_head = std::fs::read_to_string(root.join("build-head"))
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        Tree {
            root,
            cfg: cfg.to_path_buf(),
            arch,
            mak,
            max_smp: s.max_smp.clone(),
            env_file,
            build_head,
        }
    }

    fn dir(&self) -> &Path {
        self.cfg.parent().unwrap_or(Path::new("."))
    }
}

/// Why a `check` does not hold: the first `path=value` whose file is
/// missing or reads otherwise (trailing newlines dropped, as `$(cat)`).
fn check_fails(root: &Path, check: &str) -> Option<String> {
    for param in check.split_whitespace() {
        let (path, value) = param.split_once('=').unwrap_or((param, param));
        let file = root.join(path);
        let holds = file.is_file()
            && std::fs::read(&file)
                .is_ok_and(|b| String::from_utf8_lossy(&b).trim_end_matches('\n') == value);
        if !holds {
            return Some(format!("{path} not equal to {value}"));
        }
    }
    None
}

/// Whether a `disabled_if` condition holds, evaluated by bash in the
/// tree's directory with `config.mak`'s variables (as the runner's `eval`).
fn disabled(tree: &Tree, cond: &str) -> Result<bool, String> {
    let st = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("if {cond}\nthen exit 0; else exit 1; fi"))
        .current_dir(&tree.root)
        .envs(tree.mak.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("disabled_if: cannot run bash: {e}"))?;
    Ok(st.code() == Some(0))
}

/// Why a section does not run here, before it starts (the suite's order).
fn skip_reason(
    tree: &Tree,
    sec: &cfg::Section,
    named: bool,
    sel: &Selection,
    s: &Settings,
) -> Result<Option<String>, String> {
    if sec.in_group("nodefault") && !named && sel.group.is_none() && !sel.all {
        return Ok(Some("test marked as manual run only".into()));
    }
    if let Some(a) = sec
        .arch
        .as_deref()
        .filter(|a| !a.is_empty() && *a != tree.arch)
    {
        return Ok(Some(format!("{a} only")));
    }
    if let (Some(m), Some(want)) = (sec.machine.as_deref().filter(|m| !m.is_empty()), &s.machine) {
        if m != want {
            return Ok(Some(format!("{m} only")));
        }
    }
    if let Some(a) = sec.accel.as_deref().filter(|a| !a.is_empty()) {
        // softvm runs as the suite's TCG runs: `accel = tcg` is fine.
        if a != "tcg" {
            return Ok(Some(format!("{a} only, but ACCEL=tcg (softvm is not {a})")));
        }
    }
    if let Some(cond) = sec.disabled_if.as_deref().filter(|c| !c.is_empty()) {
        if disabled(tree, cond)? {
            return Ok(Some(format!("disabled because: {cond}")));
        }
    }
    if let Some(why) = s
        .check
        .as_deref()
        .or(sec.check.as_deref())
        .and_then(|c| check_fails(&tree.root, c))
    {
        return Ok(Some(why));
    }
    for g in ["migration", "panic"] {
        if sec.in_group(g) {
            return Ok(Some(format!(
                "the {g} group needs QEMU's monitor (QMP), which softvm does not have"
            )));
        }
    }
    Ok(None)
}

/// The tests of a tree that the selection keeps, in file order.
pub fn plan(tree: Arc<Tree>, sel: &Selection, s: &Settings) -> Result<Vec<Test>, String> {
    let text =
        std::fs::read_to_string(&tree.cfg).map_err(|e| format!("{}: {e}", tree.cfg.display()))?;
    let sections = cfg::parse(&text).map_err(|e| format!("{}: {e}", tree.cfg.display()))?;
    let mut tests = Vec::new();
    for sec in &sections {
        if sec.name.is_empty() {
            continue;
        }
        let named = sel.only.contains(&sec.name);
        if (!sel.only.is_empty() && !named) || sel.group.as_ref().is_some_and(|g| !sec.in_group(g))
        {
            continue;
        }
        let kernel = tree.dir().join(sec.file.as_deref().unwrap_or(""));
        let at = |m: String| format!("{}: [{}]: {m}", tree.cfg.display(), sec.name);
        let mut skip = skip_reason(&tree, sec, named, sel, s).map_err(at)?;
        if skip.is_none() && !kernel.is_file() {
            skip = Some(match &sec.file {
                Some(f) => format!("Test file '{}' not found", tree.dir().join(f).display()),
                None => "no `file =` in its section".into(),
            });
        }
        let job = match skip {
            Some(why) => Job::Skip(why),
            None => match KutTest::new(tree.clone(), sec, kernel.clone(), s) {
                Ok(k) => Job::Kut(Box::new(k)),
                Err(e) => Job::Broken(format!("its section (line {}): {e}", sec.line)),
            },
        };
        tests.push(Test {
            name: sec.name.clone(),
            path: kernel,
            job,
        });
    }
    Ok(tests)
}

/// The trees' build heads, for reports (each once, in order).
pub fn build_heads(trees: &[Arc<Tree>]) -> Vec<String> {
    let mut seen = HashMap::new();
    for t in trees {
        if let Some(h) = &t.build_head {
            let n = seen.len();
            seen.entry(h.clone()).or_insert(n);
        }
    }
    let mut v: Vec<(String, usize)> = seen.into_iter().collect();
    v.sort_by_key(|(_, i)| *i);
    v.into_iter().map(|(h, _)| h).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_timeout_takes_them() {
        let s = |v: &str| parse_duration(v).unwrap().map(|d| d.as_secs_f64());
        assert_eq!(s("90"), Some(90.0));
        assert_eq!(s("90s"), Some(90.0));
        assert_eq!(s("4m"), Some(240.0));
        assert_eq!(s("1.5h"), Some(5400.0));
        assert_eq!(s("1d"), Some(86400.0));
        assert_eq!(s(".5"), Some(0.5));
        assert_eq!(s("0"), None);
        assert_eq!(s("0s"), None);
        for bad in ["", "s", "-1", "10x", "1e3", "inf", "1 0"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert!(online_cpus() >= 1);
    }

    #[test]
    fn config_mak_variables() {
        let m = read_mak("# c\nARCH=x86_64\nCC=gcc\nERRATATXT=/t/errata.txt\nnot one\n=x\n");
        assert_eq!(
            m,
            [
                ("ARCH", "x86_64"),
                ("CC", "gcc"),
                ("ERRATATXT", "/t/errata.txt")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn checks_of_host_files() {
        let d = std::env::temp_dir().join(format!("softvm-kut-check-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("y"), "Y\n").unwrap();
        std::fs::write(d.join("zero"), "0").unwrap();
        assert_eq!(check_fails(&d, "y=Y zero=0"), None);
        assert_eq!(check_fails(&d, "y=N"), Some("y not equal to N".into()));
        assert_eq!(
            check_fails(&d, "y=Y missing=1"),
            Some("missing not equal to 1".into())
        );
        let abs = d.join("y").display().to_string();
        assert_eq!(check_fails(Path::new("/"), &format!("{abs}=Y")), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}

//! Plain tests: test binaries named on the command line or found in a
//! directory, with the expectations of the directory's manifest.

use super::manifest::{self, Manifest};
use super::report::Verdict;
use super::{exec, Job, Options, Test};
use softvm_machine::status;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn is_test_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(super::strip_test_ext)
        .is_some()
        && p.is_file()
}

/// Seconds a test may run when neither the command line nor the
/// manifest says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The test files named by `path`, each with its directory, in order,
/// leaving out those in `seen`.
pub fn collect(
    p: &str,
    seen: &mut std::collections::HashSet<PathBuf>,
) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let path = PathBuf::from(p);
    let meta = std::fs::metadata(&path).map_err(|e| format!("{p}: {e}"))?;
    let mut files = Vec::new();
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

/// A plain test with its settings: command-line defaults, then the
/// manifest of its directory.
pub fn plain_test(
    o: &Options,
    path: PathBuf,
    dir: &Path,
    manifests: &mut HashMap<PathBuf, Option<Arc<Manifest>>>,
) -> Result<Test, String> {
    let m = match manifests.get(dir) {
        Some(m) => m.clone(),
        None => {
            let m = Manifest::load(dir)?.map(Arc::new);
            manifests.insert(dir.to_path_buf(), m.clone());
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
    let job = match e.skip {
        Some(why) => Job::Skip(why),
        None => Job::Plain {
            cfg,
            status: e.status.unwrap_or(1),
            output: e.output,
        },
    };
    Ok(Test {
        name: fname,
        path,
        job,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The verdict on a run against the manifest's expectations.
pub fn judge(status: u64, output: &[String], r: &exec::RunResult) -> Verdict {
    if r.status != status {
        if r.status == 77 {
            return Verdict::Skip("guest skipped (status 77)".into());
        }
        let detail = r
            .message
            .clone()
            .unwrap_or_else(|| status::meaning(r.status));
        let mut why = format!("status {} ({detail})", r.status);
        if status != 1 || r.message.is_none() {
            why.push_str(&format!(", expected {status}"));
        }
        return Verdict::Fail(why);
    }
    let out = String::from_utf8_lossy(&r.output);
    if let Some(missing) = output.iter().find(|s| !out.contains(s.as_str())) {
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

//! `softvm bench DIR`: run the benchmark guests of a directory (written by
//! `cargo run --release -p testsuite --example write_bench_guests -- DIR`)
//! and print, per guest, the instructions executed, MIPS and wall time,
//! checking the checksum each guest prints against its manifest.

use crate::diag;
use softvm_machine::{run_file, status, Capture, MachineConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `softvm bench DIR`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "DIR/manifest.txt lists the guests, lines of `NAME memory=SIZE vcpus=N \
checksum=HEX|-` (without a manifest: every *.elf in DIR, 128M, one vCPU). Each guest prints \
`checksum: HEX`; a checksum other than the manifest's, or a status other than 1, is a failure; \
a guest that prints `skip: REASON` and exits with status 77 is skipped.
Make the guests with: cargo run --release -p testsuite --example write_bench_guests -- DIR
Exit status: 0 when every guest passed or was skipped; 14 when one failed; 2 usage error."
)]
pub struct BenchArgs {
    /// A directory of benchmark guests
    pub dir: PathBuf,
    /// Only guests whose name contains NAME
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
    /// One JSON object per guest instead of the table
    #[arg(long)]
    pub json: bool,
    /// Stop a guest after SECS seconds (a failure) [default: 600]
    #[arg(long, value_name = "SECS", value_parser = timeout, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,
}

fn timeout(s: &str) -> std::result::Result<Duration, softvm_machine::ConfigError> {
    softvm_machine::config::parse_timeout(s)
}

/// One guest's line of `--json`.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    guest: &'a str,
    vcpus: u32,
    instructions: u64,
    wall_ms: f64,
    mips: f64,
    checksum: Option<String>,
    result: &'a str,
}

/// Status when a benchmark guest failed.
const FAILED: i32 = 14;

struct Entry {
    name: String,
    file: PathBuf,
    memory: u64,
    vcpus: u32,
    checksum: Option<u64>,
}

struct Result {
    name: String,
    instructions: u64,
    wall: Duration,
    verdict: String,
    ok: bool,
    checksum: Option<u64>,
}

fn read_manifest(dir: &Path) -> std::result::Result<Vec<Entry>, String> {
    let manifest = dir.join("manifest.txt");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        let mut v = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for f in rd.flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "elf") {
                let name = p
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                v.push(Entry {
                    name,
                    file: p,
                    memory: 128 << 20,
                    vcpus: 1,
                    checksum: None,
                });
            }
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(v);
    };
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default().to_string();
        let mut e = Entry {
            file: dir.join(format!("{name}.elf")),
            name,
            memory: 128 << 20,
            vcpus: 1,
            checksum: None,
        };
        let bad = || format!("{}:{}: cannot parse {line:?}", manifest.display(), n + 1);
        for w in words {
            match w.split_once('=') {
                Some(("memory", s)) => {
                    e.memory = softvm_machine::config::parse_memory(s).map_err(|_| bad())?
                }
                Some(("vcpus", s)) => {
                    e.vcpus = softvm_machine::config::parse_vcpus(s).map_err(|_| bad())?
                }
                Some(("checksum", "-")) => {}
                Some(("checksum", s)) => {
                    e.checksum = Some(u64::from_str_radix(s, 16).map_err(|_| bad())?)
                }
                _ => return Err(bad()),
            }
        }
        v.push(e);
    }
    Ok(v)
}

fn parse_checksum(out: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.strip_prefix("checksum: "))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
}

fn run_one(e: &Entry, timeout: Duration) -> Result {
    let cfg = MachineConfig {
        vcpus: e.vcpus,
        memory: e.memory,
        timeout: Some(timeout),
        ..MachineConfig::default()
    };
    let out = Capture::new();
    let start = Instant::now();
    let r = run_file(&e.file, &cfg, out.clone());
    let wall = start.elapsed();
    let text = out.text();
    let checksum = parse_checksum(&text);
    let (instructions, verdict, ok) = match r {
        Err(err) => (0, format!("FAIL: {err:#}"), false),
        Ok(o) if o.status() == 77 => {
            let why = text
                .lines()
                .find_map(|l| l.strip_prefix("skip: "))
                .unwrap_or("the guest skipped");
            (o.instructions, format!("skipped: {why}"), true)
        }
        Ok(o) if o.status() != 1 => (
            o.instructions,
            format!(
                "FAIL: status {}{}",
                o.status(),
                o.message.map(|m| format!(" ({m})")).unwrap_or_default()
            ),
            false,
        ),
        Ok(o) => match (checksum, e.checksum) {
            (None, _) => (o.instructions, "FAIL: no checksum printed".into(), false),
            (Some(got), Some(want)) if got != want => (
                o.instructions,
                format!("FAIL: checksum {got:016X}, expected {want:016X}"),
                false,
            ),
            (Some(_), _) => (o.instructions, "ok".into(), true),
        },
    };
    Result {
        name: e.name.clone(),
        instructions,
        wall,
        verdict,
        ok,
        checksum,
    }
}

fn mips(r: &Result) -> f64 {
    r.instructions as f64 / r.wall.as_secs_f64().max(1e-9) / 1e6
}

pub fn cmd_bench(a: BenchArgs) -> i32 {
    let (dir, filter, json) = (a.dir, a.filter, a.json);
    let timeout = a.timeout.unwrap_or(Duration::from_secs(600));
    let entries = match read_manifest(&dir) {
        Ok(v) => v,
        Err(m) => {
            diag(&format!("softvm: {m}"));
            return status::USAGE;
        }
    };
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| filter.as_ref().is_none_or(|f| e.name.contains(f.as_str())))
        .collect();
    if entries.is_empty() {
        diag(&format!("softvm: no benchmark guests in {}", dir.display()));
        return status::USAGE;
    }
    if !json {
        crate::out(&format!(
            "{:<18} {:>14} {:>10} {:>9}  result\n",
            "guest", "instructions", "wall ms", "MIPS"
        ));
    }
    let mut failed = false;
    for e in &entries {
        let r = run_one(e, timeout);
        failed |= !r.ok;
        if json {
            let line = JsonLine {
                guest: &r.name,
                vcpus: e.vcpus,
                instructions: r.instructions,
                wall_ms: r.wall.as_secs_f64() * 1e3,
                mips: mips(&r),
                checksum: r.checksum.map(|c| format!("{c:016X}")),
                result: &r.verdict,
            };
            match serde_json::to_string(&line) {
                Ok(j) => crate::out(&format!("{j}\n")),
                Err(e) => diag(&format!("softvm: {e}")),
            }
        } else {
            crate::out(&format!(
                "{:<18} {:>14} {:>10.1} {:>9.1}  {}\n",
                r.name,
                r.instructions,
                r.wall.as_secs_f64() * 1e3,
                mips(&r),
                r.verdict
            ));
        }
    }
    if failed {
        FAILED
    } else {
        0
    }
}

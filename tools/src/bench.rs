//! `softvm bench DIR`: run the benchmark guests of a directory (written by
//! `cargo run --release -p testsuite --example write_bench_guests -- DIR`)
//! and print, per guest, the instructions executed, MIPS and wall time,
//! checking the checksum each guest prints against its manifest.

use crate::machine::{self, RunConfig};
use crate::status;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const HELP: &str = "softvm bench DIR [--filter NAME] [--json]

Runs every benchmark guest listed in DIR/manifest.txt (lines of
`NAME memory=SIZE vcpus=N checksum=HEX|-`; without a manifest, every *.elf
in DIR with 128M and one vCPU) and prints its instructions, wall time and
MIPS. Each guest prints `checksum: HEX`; a checksum other than the one in
the manifest, or a guest status other than 1, is a failure. A guest that
prints `skip: REASON` and exits with status 77 is reported as skipped.

  --filter NAME   only guests whose name contains NAME
  --json          one JSON object per guest instead of the table

Make the guests with:
  cargo run --release -p testsuite --example write_bench_guests -- DIR

Exit status: 0 when every guest passed or was skipped; 14 when one failed;
2 usage error.
";

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
                Some(("memory", s)) => e.memory = crate::cli::parse_size(s).ok_or_else(bad)?,
                Some(("vcpus", s)) => e.vcpus = s.parse().map_err(|_| bad())?,
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

fn run_one(e: &Entry) -> Result {
    let cfg = RunConfig {
        vcpus: e.vcpus,
        memory: e.memory,
        timeout: Some(Duration::from_secs(600)),
        ..RunConfig::default()
    };
    let mut out = Vec::new();
    let start = Instant::now();
    let r = machine::run_file(&e.file, &cfg, &mut out);
    let wall = start.elapsed();
    let text = String::from_utf8_lossy(&out).into_owned();
    let checksum = parse_checksum(&text);
    let (instructions, verdict, ok) = match r {
        Err(err) => (0, format!("FAIL: {err:#}"), false),
        Ok(o) if o.status == 77 => {
            let why = text
                .lines()
                .find_map(|l| l.strip_prefix("skip: "))
                .unwrap_or("the guest skipped");
            (o.instructions, format!("skipped: {why}"), true)
        }
        Ok(o) if o.status != 1 => (
            o.instructions,
            format!(
                "FAIL: status {}{}",
                o.status,
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

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

pub fn cmd_bench(args: &[String]) -> i32 {
    let mut dir = None;
    let mut filter = None;
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return 0;
            }
            "--json" => json = true,
            "--filter" => match it.next() {
                Some(f) => filter = Some(f.clone()),
                None => return usage("--filter needs a value"),
            },
            s if s.starts_with('-') => return usage(&format!("unknown option {s}")),
            s => {
                if dir.replace(PathBuf::from(s)).is_some() {
                    return usage("more than one DIR");
                }
            }
        }
    }
    let Some(dir) = dir else {
        return usage("bench needs a DIR of benchmark guests");
    };
    let entries = match read_manifest(&dir) {
        Ok(v) => v,
        Err(m) => {
            eprintln!("softvm: {m}");
            return status::USAGE;
        }
    };
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| filter.as_ref().is_none_or(|f| e.name.contains(f.as_str())))
        .collect();
    if entries.is_empty() {
        eprintln!("softvm: no benchmark guests in {}", dir.display());
        return status::USAGE;
    }
    if !json {
        println!(
            "{:<18} {:>14} {:>10} {:>9}  result",
            "guest", "instructions", "wall ms", "MIPS"
        );
    }
    let mut failed = false;
    for e in &entries {
        let r = run_one(e);
        failed |= !r.ok;
        if json {
            println!(
                "{{\"guest\":{},\"vcpus\":{},\"instructions\":{},\"wall_ms\":{:.3},\"mips\":{:.1},\"checksum\":{},\"result\":{}}}",
                json_str(&r.name),
                e.vcpus,
                r.instructions,
                r.wall.as_secs_f64() * 1e3,
                mips(&r),
                r.checksum
                    .map_or_else(|| "null".to_string(), |c| json_str(&format!("{c:016X}"))),
                json_str(&r.verdict)
            );
        } else {
            println!(
                "{:<18} {:>14} {:>10.1} {:>9.1}  {}",
                r.name,
                r.instructions,
                r.wall.as_secs_f64() * 1e3,
                mips(&r),
                r.verdict
            );
        }
    }
    if failed {
        FAILED
    } else {
        0
    }
}

fn usage(msg: &str) -> i32 {
    eprintln!("softvm: {msg} (see softvm bench --help)");
    status::USAGE
}

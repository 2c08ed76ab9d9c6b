//! `softvm-tests.txt`: per-test expectations and settings for the test
//! binaries of one directory.
//!
//! One line per test: the test's file name (`hello.elf`) or its name without
//! the `.elf`/`.flat` extension (`hello`), then settings separated by
//! blanks. A line named `*` gives defaults for every test of the directory.
//! `#` starts a comment (at the start of a line or after a blank, outside
//! quotes); blank lines are ignored. Values with blanks go in double quotes,
//! where `\"` and `\\` stand for `"` and `\`.
//!
//! ```text
//! # expectations for the tests in this directory
//! *         timeout=30
//! status    status=85                      # the guest writes 0x2a to 0xf4
//! hello     output="Hello, world"
//! smp.elf   vcpus=4 memory=256M
//! boot      cmdline="console=ttyS0 quiet" module=initrd.img
//! apic      skip="needs an I/O APIC"
//! ```
//!
//! Settings: `status=N` (the expected process status, default 1),
//! `output=TEXT` (the serial output must contain TEXT; repeatable, all must
//! appear), `skip` or `skip=REASON` (do not run it), `vcpus=N`,
//! `memory=SIZE`, `cpu=MODEL` (QEMU's `-cpu` syntax: a model, `+feat`,
//! `-feat`, properties), `seed=N` (the CPU's random-number seed, decimal
//! or 0x hex), `clock=realtime|deterministic` (how the vCPUs' clock
//! advances), `cmdline=TEXT`, `module=FILE` (repeatable, relative to the
//! directory), `timeout=SECS` and `max-instructions=N`.

use softvm_machine::config;
use std::path::{Path, PathBuf};

/// The manifest's file name.
pub const FILE_NAME: &str = "softvm-tests.txt";

/// Settings of one manifest line; `None`/empty where the line is silent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub status: Option<u64>,
    pub output: Vec<String>,
    pub skip: Option<String>,
    pub vcpus: Option<u32>,
    pub memory: Option<u64>,
    pub cpu: Option<String>,
    pub seed: Option<u64>,
    pub clock: Option<config::ClockMode>,
    pub cmdline: Option<String>,
    pub modules: Vec<PathBuf>,
    pub timeout: Option<std::time::Duration>,
    pub max_instructions: Option<u64>,
}

impl Entry {
    /// `self` with `over`'s settings applied on top (lists are appended).
    pub fn overlay(&self, over: &Entry) -> Entry {
        let mut e = self.clone();
        e.status = over.status.or(e.status);
        e.output.extend(over.output.iter().cloned());
        e.skip = over.skip.clone().or(e.skip);
        e.vcpus = over.vcpus.or(e.vcpus);
        e.memory = over.memory.or(e.memory);
        e.cpu = over.cpu.clone().or(e.cpu);
        e.seed = over.seed.or(e.seed);
        e.clock = over.clock.or(e.clock);
        e.cmdline = over.cmdline.clone().or(e.cmdline);
        e.modules.extend(over.modules.iter().cloned());
        e.timeout = over.timeout.or(e.timeout);
        e.max_instructions = over.max_instructions.or(e.max_instructions);
        e
    }
}

/// A parsed manifest: the `*` defaults and the named entries in file order.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    pub path: PathBuf,
    pub defaults: Entry,
    pub entries: Vec<(String, Entry, usize)>,
}

impl Manifest {
    /// The manifest in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text, &path, dir).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The settings for the test file named `file_name` (defaults merged).
    pub fn lookup(&self, file_name: &str) -> Entry {
        match self
            .entries
            .iter()
            .find(|(n, _, _)| names_match(n, file_name))
        {
            Some((_, e, _)) => self.defaults.overlay(e),
            None => self.defaults.clone(),
        }
    }
}

/// Whether a manifest name designates the file `file_name`.
pub fn names_match(name: &str, file_name: &str) -> bool {
    name == file_name || super::strip_test_ext(file_name) == Some(name)
}

/// Parse manifest text; `dir` is where relative module paths start.
pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Manifest, String> {
    let mut m = Manifest {
        path: path.to_path_buf(),
        ..Manifest::default()
    };
    let mut seen_defaults = false;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let err = |msg: String| format!("{}:{lineno}: {msg}", path.display());
        let words = split_words(line).map_err(|m| err(m.to_string()))?;
        let Some((name, settings)) = words.split_first() else {
            continue;
        };
        let mut e = Entry::default();
        for w in settings {
            apply(&mut e, w, dir).map_err(err)?;
        }
        if name == "*" {
            if seen_defaults {
                return Err(err("a second `*` line".into()));
            }
            seen_defaults = true;
            m.defaults = e;
        } else {
            if m.entries.iter().any(|(n, _, _)| n == name) {
                return Err(err(format!("a second line for {name}")));
            }
            m.entries.push((name.clone(), e, lineno));
        }
    }
    Ok(m)
}

/// Apply one `key=value` (or bare `skip`) setting.
fn apply(e: &mut Entry, word: &str, dir: &Path) -> Result<(), String> {
    let (key, value) = match word.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (word, None),
    };
    let need = || value.ok_or_else(|| format!("{key} needs a value ({key}=...)"));
    let bad = |v: &str| format!("bad {key}: {v:?}");
    let why = |e: softvm_machine::ConfigError| format!("bad {key}: {e}");
    match key {
        "status" => {
            let v = need()?;
            // The full status: up to (0xffffffff << 1) | 1 for a guest exit.
            e.status = Some(
                v.parse()
                    .ok()
                    .filter(|&s| s <= softvm_machine::status::guest_exit_status(u32::MAX))
                    .ok_or_else(|| bad(v))?,
            );
        }
        "output" => {
            let v = need()?;
            if v.is_empty() {
                return Err(bad(v));
            }
            e.output.push(v.to_string());
        }
        "skip" => e.skip = Some(value.unwrap_or("skipped by the manifest").to_string()),
        "vcpus" => {
            let v = need()?;
            e.vcpus = Some(config::parse_vcpus(v).map_err(why)?);
        }
        "memory" => {
            let v = need()?;
            e.memory = Some(config::parse_memory(v).map_err(why)?);
        }
        "cpu" => {
            let v = need()?;
            config::parse_cpu_model(v).map_err(why)?;
            e.cpu = Some(v.to_string());
        }
        "seed" => e.seed = Some(config::parse_seed(need()?).map_err(why)?),
        "clock" => e.clock = Some(config::parse_clock(need()?).map_err(why)?),
        "cmdline" => e.cmdline = Some(need()?.to_string()),
        "module" => {
            let v = need()?;
            if v.is_empty() {
                return Err(bad(v));
            }
            e.modules.push(dir.join(v));
        }
        "timeout" => {
            let v = need()?;
            e.timeout = Some(config::parse_timeout(v).map_err(why)?);
        }
        "max-instructions" => {
            let v = need()?;
            e.max_instructions = Some(config::parse_count(v).map_err(why)?);
        }
        _ => return Err(format!("unknown setting {key:?}")),
    }
    Ok(())
}

/// Split a line into words: blanks separate, double quotes group (with `\"`
/// and `\\` escapes inside), `#` after a blank or at the start ends the line.
fn split_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated quote"),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated quote"),
                    }
                }
            }
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Manifest, String> {
        parse(text, Path::new("d/softvm-tests.txt"), Path::new("d"))
    }

    #[test]
    fn words_quotes_and_comments() {
        assert_eq!(split_words(r#"a b="c d" # x"#).unwrap(), ["a", "b=c d"]);
        assert_eq!(
            split_words(r#"x output="say \"hi\" \\ # not a comment""#).unwrap(),
            ["x", r#"output=say "hi" \ # not a comment"#]
        );
        assert_eq!(
            split_words("  # only a comment").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(split_words("a#b").unwrap(), ["a#b"]);
        assert!(split_words(r#"a output="open"#).is_err());
    }

    #[test]
    fn entries_and_defaults() {
        let m = p("* timeout=5 output=boot\n\nhello output=Hello status=85\nsmp.elf vcpus=4 memory=256M\nbad skip\nwhy skip=\"no apic\"\nm module=initrd cmdline=\"a b\" max-instructions=100\n").unwrap();
        let h = m.lookup("hello.elf");
        assert_eq!(h.status, Some(85));
        assert_eq!(h.output, ["boot", "Hello"]);
        assert_eq!(h.timeout, Some(std::time::Duration::from_secs(5)));
        let s = m.lookup("smp.elf");
        assert_eq!((s.vcpus, s.memory), (Some(4), Some(256 << 20)));
        assert_eq!(
            m.lookup("bad.flat").skip.as_deref(),
            Some("skipped by the manifest")
        );
        assert_eq!(m.lookup("why.elf").skip.as_deref(), Some("no apic"));
        let x = m.lookup("m.elf");
        assert_eq!(x.modules, [Path::new("d/initrd")]);
        assert_eq!(x.cmdline.as_deref(), Some("a b"));
        assert_eq!(x.max_instructions, Some(100));
        assert_eq!(m.lookup("other.elf"), m.defaults);
        assert_eq!(m.lookup("smp.flat").vcpus, None);
    }

    #[test]
    fn cpu_seed_and_clock() {
        let m =
            p("* seed=7 clock=deterministic\nv cpu=qemu64,+popcnt seed=0xff\nr clock=realtime\n")
                .unwrap();
        let v = m.lookup("v.flat");
        assert_eq!(v.cpu.as_deref(), Some("qemu64,+popcnt"));
        assert_eq!(
            (v.seed, v.clock),
            (Some(255), Some(config::ClockMode::Deterministic))
        );
        let r = m.lookup("r.elf");
        assert_eq!(
            (r.seed, r.clock),
            (Some(7), Some(config::ClockMode::Realtime))
        );
        assert_eq!(m.lookup("x.elf").cpu, None);
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, want) in [
            ("a status=x", "d/softvm-tests.txt:1: bad status"),
            ("\na frob=1", ":2: unknown setting \"frob\""),
            ("a status", ":1: status needs a value"),
            ("a vcpus=0", "bad vcpus"),
            ("a memory=1K", "bad memory"),
            ("a timeout=-1", "bad timeout"),
            ("a timeout=inf", "bad timeout"),
            ("a cpu=486", "bad cpu"),
            ("a seed=-1", "bad seed"),
            ("a seed=0x", "bad seed"),
            ("a clock=fast", "bad clock"),
            ("a status=99999999999", "bad status"),
            ("a\na", ":2: a second line for a"),
            ("*\n*", "a second `*` line"),
            ("a output=\"x", "unterminated quote"),
        ] {
            let e = p(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert_eq!(e.lines().count(), 1);
        }
    }
}

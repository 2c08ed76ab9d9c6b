//! The environment file kvm-unit-tests' runner gives each test kernel as a
//! multiboot module (`-initrd`): `NAME=value` lines the kernel reads with
//! `getenv` (its library copies the first module into its environment).
//!
//! Built as the suite's `scripts/arch-run.bash` builds it for a TCG run
//! (`initrd_create`): `TARGET`, the QEMU accelerator and version (softvm's
//! front end's version line), the host kernel's version split as the
//! script splits it, the variables of the user's own file
//! (`KVM_UNIT_TESTS_ENV`) that are not already there, then the `ERRATA_*`
//! variables: `ERRATA_FORCE=y` (the script sets it for TCG: errata name
//! host-KVM bugs, and softvm is not KVM) and those of the environment. The
//! script's per-kernel-version errata table (`env_generate_errata`) is only
//! consulted for a KVM run, which softvm never is.

use super::shell;
use std::fmt::Write as _;

/// The inputs of the file, gathered from the host once.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `TARGET` of the environment (the script writes `TARGET=` if unset).
    pub target: Option<String>,
    /// The first line of the QEMU front end's `-h`.
    pub qemu_version_line: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// The text of the user's `KVM_UNIT_TESTS_ENV` file, if any.
    pub user_file: Option<String>,
    /// `ERRATA_*` variables of the environment, as `NAME=value`.
    pub errata: Vec<String>,
}

impl Inputs {
    /// The inputs from this process's environment and host.
    pub fn from_host(qemu_version_line: String) -> Inputs {
        let user_file =
            std::env::var_os("KVM_UNIT_TESTS_ENV").and_then(|p| std::fs::read_to_string(p).ok());
        let mut errata: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("ERRATA_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        errata.sort();
        Inputs {
            target: std::env::var("TARGET").ok(),
            qemu_version_line,
            kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            user_file,
            errata,
        }
    }
}

/// `s` up to its first character that is not a decimal digit.
fn leading_digits(s: &str) -> &str {
    &s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())]
}

/// `QEMU_MAJOR`, `QEMU_MINOR`, `QEMU_MICRO`: the 4th to 6th fields of the
/// version line split on blanks, dots and brackets.
fn qemu_version(line: &str) -> [String; 3] {
    let mut f = line
        .split([' ', '.', '[', ']'])
        .filter(|s| !s.is_empty())
        .skip(3)
        .map(str::to_string);
    [0; 3].map(|_| f.next().unwrap_or_default())
}

/// `KERNEL_VERSION`, `_PATCHLEVEL`, `_SUBLEVEL`, `_EXTRAVERSION` of a
/// release such as `6.8.0-1019-aws`: split on dots into three (the last
/// keeps the rest), the rest on a dash into two, and those two cut at
/// their first non-digit.
fn kernel_version(release: &str) -> [String; 4] {
    let mut dots = release.splitn(3, '.');
    let v = dots.next().unwrap_or_default();
    let p = dots.next().unwrap_or_default();
    let rest = dots.next().unwrap_or_default();
    let (s, x) = rest.split_once('-').unwrap_or((rest, ""));
    [v, p, leading_digits(s), leading_digits(x)].map(str::to_string)
}

/// The user's file's assignments (`NAME=value` lines; the value is shell
/// text, as the script `eval`s it), each as `NAME=value`.
fn user_assignments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in text.lines() {
        // A line with blanks before its name matches the script's pattern
        // but never its lookup, so the script drops it; so does this.
        let Some((name, _)) = l.split_once('=') else {
            continue;
        };
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
        if !ok {
            continue;
        }
        // The value's quotes are removed as `eval export` removes them;
        // commands in it are not run (an environment file that runs
        // commands is not one to follow blindly).
        let value = shell::lex(&l[name.len() + 1..])
            .ok()
            .and_then(|w| shell::expand(&w, &NoCommands).ok())
            .map(|w| w.join(" "))
            .unwrap_or_default();
        out.push(format!("{name}={value}"));
    }
    out
}

/// Expansion without variables or commands, for the user's file.
struct NoCommands;

impl shell::Env for NoCommands {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn run(&self, cmd: &str) -> Result<String, String> {
        Err(format!("{cmd}: not run"))
    }
}

/// The file's text.
pub fn generate(i: &Inputs) -> String {
    let mut lines: Vec<String> = Vec::new();
    lines.push(format!("TARGET={}", i.target.as_deref().unwrap_or("")));
    lines.push("QEMU_ACCEL=tcg".into());
    lines.push(format!("QEMU_VERSION_STRING={}", i.qemu_version_line));
    let [major, minor, micro] = qemu_version(&i.qemu_version_line);
    for (k, v) in [("MAJOR", major), ("MINOR", minor), ("MICRO", micro)] {
        lines.push(format!("QEMU_{k}={v}"));
    }
    lines.push(format!("KERNEL_VERSION_STRING={}", i.kernel_release));
    let [v, p, s, x] = kernel_version(&i.kernel_release);
    for (k, val) in [
        ("VERSION", v),
        ("PATCHLEVEL", p),
        ("SUBLEVEL", s),
        ("EXTRAVERSION", x),
    ] {
        lines.push(format!("KERNEL_{k}={val}"));
    }
    let has = |lines: &[String], name: &str| {
        lines
            .iter()
            .any(|l| l.split_once('=').is_some_and(|(n, _)| n == name))
    };
    for a in i
        .user_file
        .as_deref()
        .map(user_assignments)
        .unwrap_or_default()
    {
        let name = a.split_once('=').map_or("", |(n, _)| n).to_string();
        if !has(&lines, &name) {
            lines.push(a);
        }
    }
    // A TCG run forces the errata, whatever the environment says.
    let mut errata: Vec<String> = i
        .errata
        .iter()
        .filter(|e| !e.starts_with("ERRATA_FORCE="))
        .cloned()
        .chain(["ERRATA_FORCE=y".to_string()])
        .collect();
    errata.sort();
    for e in errata {
        if !lines.contains(&e) {
            lines.push(e);
        }
    }
    let mut text = String::new();
    for l in lines {
        let _ = writeln!(text, "{l}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            target: None,
            qemu_version_line: "QEMU emulator version 7.2.0 (softvm 0.1.0)".into(),
            kernel_release: "6.8.0-1019-aws".into(),
            user_file: None,
            errata: Vec::new(),
        }
    }

    #[test]
    fn the_file_of_a_tcg_run() {
        assert_eq!(
            generate(&inputs()),
            "TARGET=\nQEMU_ACCEL=tcg\nQEMU_VERSION_STRING=QEMU emulator version 7.2.0 (softvm 0.1.0)\n\
             QEMU_MAJOR=7\nQEMU_MINOR=2\nQEMU_MICRO=0\nKERNEL_VERSION_STRING=6.8.0-1019-aws\n\
             KERNEL_VERSION=6\nKERNEL_PATCHLEVEL=8\nKERNEL_SUBLEVEL=0\nKERNEL_EXTRAVERSION=1019\n\
             ERRATA_FORCE=y\n"
        );
    }

    #[test]
    fn kernel_versions_split_as_the_script_splits_them() {
        assert_eq!(kernel_version("5.15.0"), ["5", "15", "0", ""]);
        assert_eq!(kernel_version("6.1.55-rc2+"), ["6", "1", "55", ""]);
        assert_eq!(kernel_version("6.12"), ["6", "12", "", ""]);
        assert_eq!(
            kernel_version("4.19.3-300.fc29.x86_64"),
            ["4", "19", "3", "300"]
        );
        assert_eq!(
            qemu_version("QEMU emulator version 8.2.50 (v8.2.0-1)"),
            ["8", "2", "50"]
        );
    }

    #[test]
    fn the_users_file_and_errata_come_after() {
        let i = Inputs {
            target: Some("qemu".into()),
            user_file: Some(
                "# mine\nBOOTLOADER=1\nNAME='a b'\n  INDENTED=1\nTARGET=other\nnot a line\nERRATA_abc=n\n"
                    .into(),
            ),
            errata: vec!["ERRATA_FORCE=n".into(), "ERRATA_abc=n".into(), "ERRATA_def=y".into()],
            ..inputs()
        };
        let g = generate(&i);
        let tail: Vec<&str> = g.lines().skip(11).collect();
        assert!(g.starts_with("TARGET=qemu\n"), "{g}");
        // TARGET is already there; ERRATA_abc=n is not written twice; an
        // indented line is dropped; a TCG run forces the errata.
        assert_eq!(
            tail,
            [
                "BOOTLOADER=1",
                "NAME=a b",
                "ERRATA_abc=n",
                "ERRATA_FORCE=y",
                "ERRATA_def=y"
            ]
        );
    }
}

//! C programs compiled by the system C compiler into multiboot kernels,
//! and the same programs built as host executables, whose output is the
//! expected output of the guests (`tests/c_guests.rs`).
//!
//! The sources are in `testsuite/guests/c`: `rt.c` (printf with %f/%e/%g,
//! the string functions), `entry.S` (multiboot entry: 32-bit protected mode
//! to long mode, FPU and SSE enabled, the program in ring 3), `link.ld`, a
//! shim for each side (`guest_shim.c`: output collected and written to COM1
//! by ring 0, exit through port 0xf4; `host_shim.c`: write(2) and _exit(2))
//! and one file per program. Both sides are compiled with the same code
//! generation flags, so they run the same instructions on the same data:
//! any difference in the output is a difference in how the instructions
//! executed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs, one C file each.
pub const PROGRAMS: [&str; 4] = ["fpmath", "longdouble", "strings", "matrix"];

/// Whether `program` runs x87 code (long double); the others need only
/// SSE (the entry initialises the floating-point state with FXRSTOR).
pub fn uses_x87(program: &str) -> bool {
    program == "longdouble"
}

/// Optimisation level of a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    /// `-O2 -fcf-protection=full`: what distributions build with (SSE
    /// vectorisation, ENDBR64 at every function).
    O2,
    /// `-O0`: every value through memory, x87 and SSE moves everywhere.
    O0,
}

impl Opt {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Opt::O2 => &["-O2", "-fcf-protection=full"],
            Opt::O0 => &["-O0"],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Opt::O2 => "O2",
            Opt::O0 => "O0",
        }
    }
}

/// Code generation flags both sides share. Built-ins are off so that the
/// runtime's own string functions are used (and not turned back into calls
/// to themselves), errno-free math lets `__builtin_sqrt` be an
/// instruction, no stack protector or PIC so that the two builds generate
/// the same code.
const COMMON: [&str; 10] = [
    "-fno-builtin",
    "-fno-tree-loop-distribute-patterns",
    "-fno-stack-protector",
    "-fno-math-errno",
    "-fno-pie",
    "-fno-pic",
    "-mno-red-zone",
    "-fno-asynchronous-unwind-tables",
    "-Wall",
    "-Wextra",
];

/// A failed build or host run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CError(pub String);

impl fmt::Display for CError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CError {}

/// The directory of the C sources.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/c")
}

/// The system C compiler, checked to produce x86-64 code.
#[derive(Clone, Debug)]
pub struct Toolchain {
    cc: String,
}

fn run(cmd: &mut Command) -> Result<std::process::Output, CError> {
    cmd.output()
        .map_err(|e| CError(format!("cannot run {cmd:?}: {e}")))
}

impl Toolchain {
    /// `$CC` or `cc`; the reason when there is none or it does not target
    /// x86-64.
    pub fn find() -> Result<Toolchain, String> {
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let out = Command::new(&cc)
            .arg("-dumpmachine")
            .output()
            .map_err(|e| format!("no C compiler ({cc}: {e})"))?;
        let machine = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            return Err(format!("{cc} -dumpmachine failed"));
        }
        if !machine.starts_with("x86_64") {
            return Err(format!(
                "{cc} targets {machine}, not x86-64 (the guests are x86-64 code)"
            ));
        }
        Ok(Toolchain { cc })
    }

    fn compile(&self, args: &[String], out: &Path) -> Result<PathBuf, CError> {
        let o = run(Command::new(&self.cc).args(args).arg("-o").arg(out))?;
        if !o.status.success() {
            return Err(CError(format!(
                "{} {} failed:\n{}",
                self.cc,
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        Ok(out.to_path_buf())
    }

    fn args(opt: Opt, extra: &[&str], files: &[&str]) -> Vec<String> {
        let src = source_dir();
        opt.flags()
            .iter()
            .chain(COMMON.iter())
            .chain(extra.iter())
            .map(|s| s.to_string())
            .chain(files.iter().map(|f| src.join(f).display().to_string()))
            .collect()
    }

    /// Builds `program` as a multiboot kernel (ELF64 with a multiboot
    /// header, loaded at 1 MiB) in `dir`.
    pub fn build_guest(&self, program: &str, opt: Opt, dir: &Path) -> Result<PathBuf, CError> {
        let link = format!("-Wl,-T,{}", source_dir().join("link.ld").display());
        let extra = [
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-no-pie",
            link.as_str(),
            "-Wl,-z,max-page-size=0x1000",
            "-Wl,--build-id=none",
            "-Wl,--no-warn-rwx-segments",
        ];
        let c = format!("{program}.c");
        let files = ["entry.S", "rt.c", "guest_shim.c", c.as_str()];
        let out = dir.join(format!("{program}-{}.elf", opt.name()));
        self.compile(&Self::args(opt, &extra, &files), &out)
    }

    /// Builds `program` as a host executable in `dir`.
    pub fn build_host(&self, program: &str, opt: Opt, dir: &Path) -> Result<PathBuf, CError> {
        let c = format!("{program}.c");
        let files = ["rt.c", "host_shim.c", c.as_str()];
        let out = dir.join(format!("{program}-{}.host", opt.name()));
        self.compile(&Self::args(opt, &["-no-pie"], &files), &out)
    }
}

/// Runs a host build; its output and exit code.
pub fn run_host(exe: &Path) -> Result<(String, i32), CError> {
    let o = run(&mut Command::new(exe))?;
    let code = o
        .status
        .code()
        .ok_or_else(|| CError(format!("{} ended by a signal", exe.display())))?;
    Ok((String::from_utf8_lossy(&o.stdout).into_owned(), code))
}

/// The first line where `got` differs from `expected`, described for a
/// person; `None` when they are equal.
pub fn first_difference(expected: &str, got: &str) -> Option<String> {
    if expected == got {
        return None;
    }
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let n = e.len().max(g.len());
    let i = (0..n)
        .find(|&i| e.get(i) != g.get(i))
        .unwrap_or(n.saturating_sub(1));
    let show = |l: Option<&&str>| l.map_or("(no line)".to_string(), |s| format!("{s:?}"));
    Some(format!(
        "line {}: expected {}\n{:>width$} got      {}\n({} lines expected, {} got)",
        i + 1,
        show(e.get(i)),
        "",
        show(g.get(i)),
        e.len(),
        g.len(),
        width = format!("line {}:", i + 1).len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_line() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        let d = first_difference("a\nb\nc\n", "a\nx\nc\n").unwrap();
        assert!(d.starts_with("line 2: expected \"b\""), "{d}");
        assert!(d.contains("got      \"x\""), "{d}");
        let d = first_difference("a\nb\n", "a\n").unwrap();
        assert!(
            d.contains("(no line)") && d.contains("2 lines expected, 1 got"),
            "{d}"
        );
    }
}

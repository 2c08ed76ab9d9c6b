//! The files `softvm test` writes: reports (JUnit, Markdown), each
//! replaced whole, and the per-test logs of `--logs DIR`.

use super::report::{plain_line, stderr_lines, Finished};
use std::path::{Path, PathBuf};

/// A report's destination. The report is written to a temporary file in
/// the same directory and renamed over the destination only when complete,
/// so an interrupted run (Ctrl-C) leaves the previous report or none, never
/// a truncated one.
pub struct ReportFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl ReportFile {
    /// Check now that the directory takes files, so a bad path fails
    /// before the tests run.
    pub fn create(path: &Path) -> std::io::Result<ReportFile> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "report".into());
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::File::create(&tmp)?;
        std::fs::remove_file(&tmp)?;
        if path.is_dir() {
            return Err(std::io::Error::other("is a directory"));
        }
        Ok(ReportFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// Write `text` and move it into place.
    pub fn commit(self, text: &str) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.path.display());
        std::fs::write(&self.tmp, text).map_err(err)?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&self.tmp);
            err(e)
        })
    }
}

/// `--logs DIR`: one file per test, `DIR/NAME.log`, written when the test
/// ends (as kvm-unit-tests' runner keeps `logs/NAME.log`): the command
/// line, the serial output, what went to stderr, and the verdict line.
pub struct Logs {
    dir: PathBuf,
}

/// A test name as a file name: path separators and NULs replaced.
pub fn log_file_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if s.starts_with('.') {
        s.insert(0, '_');
    }
    format!("{s}.log")
}

impl Logs {
    /// The directory, created if missing.
    pub fn create(dir: &Path) -> std::io::Result<Logs> {
        std::fs::create_dir_all(dir)?;
        if !dir.is_dir() {
            return Err(std::io::Error::other("not a directory"));
        }
        Ok(Logs {
            dir: dir.to_path_buf(),
        })
    }

    /// Put a shared file (kvm-unit-tests' environment file) beside the
    /// logs, so their command lines run as written from the directory.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// The text of a test's log.
    pub fn text(f: &Finished) -> String {
        let mut s = String::new();
        if let Some(c) = &f.command {
            s.push_str(c);
            s.push('\n');
        }
        if let Some(r) = &f.result {
            s.push_str(&String::from_utf8_lossy(&r.output));
            if !s.ends_with('\n') {
                s.push('\n');
            }
            if r.dropped > 0 {
                s.push_str(&format!(
                    "[softvm: {} more bytes of output dropped]\n",
                    r.dropped
                ));
            }
        }
        for l in stderr_lines(f) {
            s.push_str(&l);
            s.push('\n');
        }
        s.push_str(&plain_line(f));
        s
    }

    /// Write a test's log; a failure is reported once, not per test.
    pub fn write(&self, f: &Finished) -> Result<(), String> {
        let p = self.dir.join(log_file_name(&f.name));
        std::fs::write(&p, Self::text(f)).map_err(|e| format!("{}: {e}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::exec::RunResult;
    use super::super::report::Verdict;
    use super::*;
    use std::time::Duration;

    #[test]
    fn file_names() {
        assert_eq!(log_file_name("vmexit_ipi"), "vmexit_ipi.log");
        assert_eq!(log_file_name("d/x.elf"), "d_x.elf.log");
        assert_eq!(log_file_name("/abs/x"), "_abs_x.log");
        assert_eq!(log_file_name(".."), "_...log");
    }

    #[test]
    fn a_log_holds_command_output_stderr_and_verdict() {
        let f = Finished {
            result: Some(RunResult {
                status: 6,
                message: Some("unsupported instruction at rip 0x1: fsin".into()),
                output: b"enabling apic".to_vec(),
                dropped: 0,
                time: Duration::from_millis(10),
            }),
            command: Some("softvm qemu -kernel x.flat".into()),
            notes: vec!["qemu-system-x86_64: warning: w".into()],
            ..Finished::new("t", Path::new("x.flat"), Verdict::Error("status 6".into()))
        };
        assert_eq!(
            Logs::text(&f),
            "softvm qemu -kernel x.flat\nenabling apic\nqemu-system-x86_64: warning: w\n\
             unsupported instruction at rip 0x1: fsin\nERROR t: status 6\n"
        );
        let d = std::env::temp_dir().join(format!("softvm-logs-{}", std::process::id()));
        let logs = Logs::create(&d.join("sub")).unwrap();
        logs.write(&f).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("sub/t.log")).unwrap(),
            Logs::text(&f)
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}

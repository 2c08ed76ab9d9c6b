//! `softvm run FILE`.

use crate::cli::RunArgs;
use crate::diag;
use softvm_machine::{status, with_program_name, End, Machine};

/// Report an outcome as `softvm run` does and return the process status:
/// softvm's own outcomes get one line on stderr; a guest exit value of
/// 0x80 or more keeps QEMU's 8-bit status and says so.
pub fn report(file: &str, o: &softvm_machine::Outcome) -> i32 {
    if let Some(m) = &o.message {
        diag(&format!("softvm: {file}: {m}"));
    }
    if let End::GuestExit(v) = o.end {
        if o.end.is_truncated() {
            diag(&format!(
                "softvm: {file}: the guest wrote {v:#x} to the exit port: status {} \
                 does not fit a process status, which keeps its low 8 bits ({}), as QEMU's does",
                o.end.status(),
                o.end.process_status()
            ));
        }
    }
    o.end.process_status()
}

pub fn cmd_run(a: RunArgs) -> i32 {
    let file = a.file.display().to_string();
    let mut cfg = match a.machine.config() {
        Ok(c) => c,
        Err(e) => {
            diag(&format!("softvm: {e:#}"));
            return status::USAGE;
        }
    };
    let image = match std::fs::read(&a.file) {
        Ok(i) => i,
        Err(e) => {
            diag(&format!("softvm: {file}: cannot read: {e}"));
            return status::USAGE;
        }
    };
    cfg = with_program_name(&image, &a.file, &cfg);
    let mut m = match Machine::boot(&cfg, &image) {
        Ok(m) => m,
        Err(e) => {
            diag(&format!("softvm: {file}: {e}"));
            return status::USAGE;
        }
    };
    m.set_serial_output(std::io::BufWriter::new(std::io::stdout()));
    if a.stdin {
        m.attach_serial_input(std::io::stdin());
    }
    report(&file, &m.run())
}

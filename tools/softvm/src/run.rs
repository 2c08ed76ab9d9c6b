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

/// The configuration from the machine options and the image read from
/// `file`, with the file name first on a multiboot command line (as
/// QEMU passes it); on failure, the diagnostic is printed and the usage
/// status returned.
pub fn prepare(
    file: &std::path::Path,
    opts: &crate::cli::MachineOpts,
    adjust: impl FnOnce(&mut softvm_machine::MachineConfig),
) -> Result<(softvm_machine::MachineConfig, Vec<u8>), i32> {
    let fail = |m: String| {
        diag(&format!("softvm: {m}"));
        status::USAGE
    };
    let mut cfg = opts.config().map_err(|e| fail(format!("{e:#}")))?;
    adjust(&mut cfg);
    let image =
        std::fs::read(file).map_err(|e| fail(format!("{}: cannot read: {e}", file.display())))?;
    Ok((with_program_name(&image, file, &cfg), image))
}

pub fn cmd_run(a: RunArgs) -> i32 {
    let file = a.file.display().to_string();
    let (cfg, image) = match prepare(&a.file, &a.machine, |_| {}) {
        Ok(x) => x,
        Err(code) => return code,
    };
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

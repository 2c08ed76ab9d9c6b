//! `softvm`: run x86-64 test kernels without /dev/kvm. A thin shell over
//! the `softvm-machine` library: it parses command lines (its own, on
//! clap, and QEMU's) and reports outcomes.

mod bench;
mod cli;
mod demo;
mod qemu;
mod run;
mod suite;
mod trace;

use softvm_machine::status;
use std::io::Write;

/// Write one diagnostic line to stderr. A closed stderr is not an error
/// of the run (and must never turn into a panic).
pub fn diag(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
    let _ = e.flush();
}

/// The status of a process ended by a closed output pipe, as a shell
/// reports a death by SIGPIPE (128 + 13).
pub const BROKEN_PIPE: i32 = 141;

/// Write `text` to stdout. A reader that went away (`| head`) ends the
/// process at once, quietly, as SIGPIPE would; other errors are ignored.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE);
        }
    }
}

/// The name softvm was invoked by (`argv[0]` without its directory).
fn invoked_as(argv0: &str) -> &str {
    argv0.rsplit('/').next().unwrap_or(argv0)
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let name = argv.first().map_or("softvm", |a| invoked_as(a)).to_string();
    // Keep panic messages off stderr: runners read it. The outcome below
    // is the one line they get.
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| {
        if name.starts_with("qemu-system-x86_64") {
            qemu::main(&name, &argv[1..])
        } else {
            cli::main(argv.clone())
        }
    });
    let code = r.unwrap_or_else(|_| {
        diag("softvm: internal error (a bug in softvm)");
        status::INTERNAL
    });
    std::process::exit(code);
}

//! `softvm demo`: a built-in guest (source: testsuite/src/demo.rs) run
//! under the tracer, so a first-time user sees the whole machine at work:
//! memslots published with their generations, page walks, a page fault
//! handled by the guest, shadow entries installed, an MMIO exit.

use crate::machine::RunConfig;
use crate::trace::{TraceOptions, Tracer};

/// The demo guest image.
pub const DEMO_ELF: &[u8] = include_bytes!("demo.elf");

pub fn run() -> i32 {
    println!("softvm demo: booting a built-in multiboot guest; each line below is one event.");
    println!("(mmu = softmmu, cpu = exceptions, io = exits to the VMM, serial = what the guest prints)\n");
    let tracer = Tracer::new(
        Box::new(std::io::stdout()),
        TraceOptions {
            insn: false,
            mmu: true,
            json: false,
        },
    );
    let cfg = RunConfig {
        max_instructions: Some(1_000_000),
        ..RunConfig::default()
    };
    match crate::trace::trace_image(DEMO_ELF, &cfg, tracer) {
        Ok(o) => {
            println!("\nThe guest wrote 0 to the exit port 0xf4, so softvm exits with status (0 << 1) | 1 = 1.");
            println!("Try `softvm trace FILE` on your own test kernels; `softvm trace --help` lists the options.");
            o.status
        }
        Err(e) => {
            eprintln!("softvm: demo: {e:#}");
            crate::status::INTERNAL
        }
    }
}

//! `softvm demo`: the built-in guest (source: testsuite/src/demo.rs) run
//! under the tracer, so a first-time user sees the whole machine at work:
//! memslots published with their generations, page walks, a page fault
//! handled by the guest, shadow entries installed, an MMIO exit.

use crate::diag;
use crate::trace::{TraceOptions, Tracer};
use softvm_machine::{status, End, MachineConfig, DEMO_GUEST};

/// Runs the demo; 0 when it ran as designed (the guest wrote 0 to the
/// exit port), otherwise the status `softvm run` would give, explained.
pub fn run() -> i32 {
    crate::out("softvm demo: booting a built-in multiboot guest; each line below is one event.\n");
    crate::out("(mmu = softmmu, cpu = exceptions, io = exits to the VMM, serial = what the guest prints)\n\n");
    let tracer = Tracer::new(
        Box::new(std::io::stdout()),
        TraceOptions {
            insn: false,
            mmu: true,
            json: false,
        },
    );
    let cfg = MachineConfig {
        max_instructions: Some(1_000_000),
        timeout: Some(std::time::Duration::from_secs(60)),
        ..MachineConfig::default()
    };
    match crate::trace::trace_image(DEMO_GUEST, &cfg, tracer) {
        Ok(o) if o.end == End::GuestExit(0) => {
            crate::out("\nThe guest wrote 0 to the exit port 0xf4: under `softvm run` that is status (0 << 1) | 1 = 1, a pass.\n");
            crate::out("Try `softvm trace FILE` on your own test kernels; `softvm trace --help` lists the options.\n");
            0
        }
        Ok(o) => {
            diag(&format!(
                "softvm: demo: the demo guest did not end as designed: status {}{}",
                o.status(),
                o.message.map(|m| format!(" ({m})")).unwrap_or_default()
            ));
            o.end.process_status()
        }
        Err(e) => {
            diag(&format!("softvm: demo: {e}"));
            status::INTERNAL
        }
    }
}

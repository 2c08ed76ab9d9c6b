//! The VMM loops: one per vCPU, each on its own thread when there are
//! several, sharing the devices. The first vCPU to reach an end (exit port,
//! power-off, triple fault, unsupported instruction, budget, timeout, or
//! every vCPU stuck in HLT) decides the outcome and stops the others.

use super::{Outcome, RunConfig};
use crate::devices::{Action, Bus};
use crate::status;
use emu_core::{Vcpu, VcpuExit, Vm};
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Instructions between wall-clock checks of `--timeout`.
const SLICE: u64 = 1 << 20;

/// State shared by the vCPU loops of one run.
struct Shared<'a, W: Write> {
    vm: &'a Vm,
    bus: Mutex<Bus<W>>,
    cfg: &'a RunConfig,
    start: Instant,
    /// The first outcome reported wins.
    end: Mutex<Option<(i32, Option<String>)>>,
    /// vCPUs halted with nothing of their own that could wake them.
    stuck: AtomicUsize,
    vcpus: usize,
    instructions: AtomicU64,
    note: Option<&'a (dyn Fn(String) + Sync)>,
}

impl<W: Write> Shared<'_, W> {
    fn finish(&self, status: i32, message: Option<String>) {
        let mut end = self.end.lock().unwrap_or_else(|e| e.into_inner());
        if end.is_none() {
            *end = Some((status, message));
        }
        drop(end);
        self.vm.request_stop();
    }

    fn bus(&self) -> std::sync::MutexGuard<'_, Bus<W>> {
        self.bus.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send the interrupts devices raised to the local APICs.
    fn deliver_msi(&self, bus: &mut Bus<W>) {
        for m in bus.msi.drain(..) {
            let (address, data) = m.address_data();
            self.vm.apic_bus().send_msi(address, data);
        }
    }

    /// Let device timers fire; returns how long until the next one could
    /// interrupt a halted vCPU.
    fn poll_devices(&self) -> Option<std::time::Duration> {
        let mut bus = self.bus();
        let next = bus.poll_timers();
        self.deliver_msi(&mut bus);
        next
    }
}

/// Run the VM's vCPUs to completion, answering exits with `bus`.
pub fn run<W: Write + Send>(vm: &Vm, vcpus: Vec<Vcpu>, bus: Bus<W>, cfg: &RunConfig) -> Outcome {
    run_observed(vm, vcpus, bus, cfg, None)
}

/// [`run`], telling `note` about each MMIO exit (for traces).
pub fn run_observed<W: Write + Send>(
    vm: &Vm,
    mut vcpus: Vec<Vcpu>,
    bus: Bus<W>,
    cfg: &RunConfig,
    note: Option<&(dyn Fn(String) + Sync)>,
) -> Outcome {
    let shared = Shared {
        vm,
        bus: Mutex::new(bus),
        cfg,
        start: Instant::now(),
        end: Mutex::new(None),
        stuck: AtomicUsize::new(0),
        vcpus: vcpus.len(),
        instructions: AtomicU64::new(0),
        note,
    };
    if vcpus.len() == 1 {
        vcpu_loop(&mut vcpus[0], &shared);
    } else {
        // One thread per vCPU: a halted vCPU sleeps in its thread, so the
        // pool must not be smaller than the VM.
        match rayon::ThreadPoolBuilder::new()
            .num_threads(vcpus.len())
            .build()
        {
            Ok(pool) => pool.scope(|s| {
                for v in vcpus.iter_mut() {
                    let shared = &shared;
                    s.spawn(move |_| vcpu_loop(v, shared));
                }
            }),
            Err(e) => shared.finish(
                status::INTERNAL,
                Some(format!("cannot start vCPU threads: {e}")),
            ),
        }
    }
    shared.bus().serial.flush();
    let (status, message) = shared
        .end
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or((
            status::INTERNAL,
            Some("run ended without an outcome".into()),
        ));
    Outcome {
        status,
        message,
        instructions: shared.instructions.load(Ordering::Relaxed),
    }
}

/// One vCPU's VMM loop.
fn vcpu_loop<W: Write>(vcpu: &mut Vcpu, sh: &Shared<'_, W>) {
    vcpu.set_exit_on_unimplemented(true);
    let mut stuck = false;
    let mut counted = 0u64;
    loop {
        let next_limit = vcpu.instructions().saturating_add(SLICE);
        let limit = match sh.cfg.max_instructions {
            Some(m) => next_limit.min(m),
            None => next_limit,
        };
        vcpu.set_instruction_limit(Some(limit));
        let exit = vcpu.run();
        let halted = matches!(exit, VcpuExit::Hlt);
        let device_timer = sh.poll_devices();
        if stuck && !halted {
            stuck = false;
            sh.stuck.fetch_sub(1, Ordering::SeqCst);
        }
        let end = handle_exit(exit, sh);
        let done = vcpu.instructions();
        sh.instructions.fetch_add(done - counted, Ordering::Relaxed);
        counted = done;
        match end {
            Step::Continue => {}
            Step::Stop => return,
            Step::Halted => {
                if let Some(wait) = device_timer {
                    // A device interrupt is coming: sleep until then.
                    std::thread::sleep(wait.min(std::time::Duration::from_millis(10)));
                } else if !vcpu.can_wake_alone() && !stuck {
                    stuck = true;
                    if sh.stuck.fetch_add(1, Ordering::SeqCst) + 1 == sh.vcpus {
                        sh.finish(
                            status::DEAD_HALT,
                            Some(describe(
                                vcpu,
                                "every vCPU halted with nothing that could wake it",
                            )),
                        );
                        return;
                    }
                }
            }
            Step::Finish(status, message) => {
                let message = message.map(|m| describe(vcpu, &m));
                sh.finish(status, message);
                return;
            }
            Step::Unsupported(rip, bytes) => {
                let hex: Vec<String> = bytes.iter().map(|x| format!("{x:02x}")).collect();
                let dis = disassemble(vcpu, &bytes, rip);
                sh.finish(
                    status::UNSUPPORTED,
                    Some(format!(
                        "unsupported instruction at rip {rip:#x}: {dis} ({})",
                        hex.join(" ")
                    )),
                );
                return;
            }
        }
        if sh.cfg.timeout.is_some_and(|t| sh.start.elapsed() >= t) {
            sh.finish(status::TIMEOUT, Some(describe(vcpu, "timeout")));
            return;
        }
        if sh
            .cfg
            .max_instructions
            .is_some_and(|m| vcpu.instructions() >= m)
        {
            let msg = format!("instruction budget of {} exhausted", vcpu.instructions());
            sh.finish(status::BUDGET, Some(describe(vcpu, &msg)));
            return;
        }
    }
}

/// What the loop does after an exit.
enum Step {
    Continue,
    Halted,
    Stop,
    /// End the run with this status and message (the vCPU's place is added).
    Finish(i32, Option<String>),
    Unsupported(u64, Vec<u8>),
}

fn handle_exit<W: Write>(exit: VcpuExit<'_>, sh: &Shared<'_, W>) -> Step {
    match exit {
        VcpuExit::IoOut(port, data) => {
            let mut bus = sh.bus();
            let action = bus.write(port, data);
            sh.deliver_msi(&mut bus);
            match action {
                Action::Continue => Step::Continue,
                Action::GuestExit(v) => Step::Finish(status::guest_exit(v), None),
                Action::PowerOff => Step::Finish(status::POWER_OFF, None),
            }
        }
        VcpuExit::IoIn(port, data) => {
            sh.bus().read(port, data);
            Step::Continue
        }
        VcpuExit::MmioRead(gpa, data) => {
            if sh.bus().mmio_read(gpa, data) {
                return Step::Continue;
            }
            data.fill(0xff);
            if let Some(n) = sh.note {
                n(format!(
                    "MMIO read of {} bytes at gpa {gpa:#x}: no device there, the VMM answers all ones",
                    data.len()
                ));
            }
            Step::Continue
        }
        VcpuExit::MmioWrite(gpa, data) => {
            let mut bus = sh.bus();
            if bus.mmio_write(gpa, data) {
                sh.deliver_msi(&mut bus);
                return Step::Continue;
            }
            drop(bus);
            if let Some(n) = sh.note {
                n(format!(
                    "MMIO write of {data:02x?} at gpa {gpa:#x}: exit to the VMM, which ignores it"
                ));
            }
            Step::Continue
        }
        VcpuExit::Hlt => Step::Halted,
        VcpuExit::Shutdown => Step::Finish(status::TRIPLE_FAULT, Some("triple fault".into())),
        VcpuExit::Debug | VcpuExit::InstructionLimit => Step::Continue,
        VcpuExit::Interrupted => Step::Stop,
        VcpuExit::InternalError { rip, bytes, len } => {
            Step::Unsupported(rip, bytes[..len.min(15)].to_vec())
        }
    }
}

fn describe(vcpu: &Vcpu, what: &str) -> String {
    let r = vcpu.get_regs();
    let cpu = if vcpu.id() == 0 {
        String::new()
    } else {
        format!(" on vCPU {}", vcpu.id())
    };
    format!(
        "{what} at rip {:#x}{cpu} after {} instructions",
        r.rip,
        vcpu.instructions()
    )
}

/// Disassemble the instruction bytes of an exit in the vCPU's mode.
fn disassemble(vcpu: &Vcpu, bytes: &[u8], rip: u64) -> String {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let s = vcpu.get_sregs();
    let bitness = if s.efer & (1 << 10) != 0 && s.cs.l != 0 {
        64
    } else if s.cs.db != 0 {
        32
    } else {
        16
    };
    let mut dec = Decoder::with_ip(bitness, bytes, rip, DecoderOptions::NONE);
    let ins = dec.decode();
    let mut out = String::new();
    IntelFormatter::new().format(&ins, &mut out);
    out
}

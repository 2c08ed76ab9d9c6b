//! The VMM loops: one per vCPU, each on its own thread when there are
//! several, sharing the devices, and a watchdog thread for the timeout.
//! The first vCPU to reach an end (exit port, power-off, triple fault,
//! unsupported instruction, budget, or every vCPU stuck in HLT) or the
//! watchdog decides the outcome and stops the others.
//!
//! A write of S3 to PM1a control stops every vCPU ([`crate::sleep`]);
//! vCPU 0's loop then stands for the platform firmware: it sleeps until
//! the devices report a wake-up event and starts vCPU 0 at the waking
//! vector.
//!
//! The watchdog does not wait for a vCPU to come back to its loop: at the
//! deadline it asks the VM to stop ([`emu_core::Vm::request_stop`]), which
//! every vCPU sees within a few thousand instructions, and which wakes the
//! halted ones at once. So a timeout is honoured whatever the guest runs.

use crate::bus::{Answer, Bus};
use crate::machine::{Machine, SerialOut};
use crate::sleep;
use crate::status::{End, Outcome};
use emu_core::{MpState, Vcpu, Vm};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Stack of the watchdog thread: it only waits on a condition variable.
const WATCHDOG_STACK: usize = 64 << 10;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State shared by the vCPU loops and the watchdog of one run.
struct Shared<'a> {
    vm: &'a Vm,
    bus: Mutex<Bus<SerialOut>>,
    /// The FACS, where S3 resume finds the waking vector.
    facs: u64,
    max_instructions: Option<u64>,
    /// The first outcome reported wins.
    end: Mutex<Option<(End, Option<String>)>>,
    /// vCPUs halted with nothing of their own that could wake them.
    stuck: AtomicUsize,
    vcpus: usize,
    instructions: AtomicU64,
    note: Option<&'a (dyn Fn(String) + Sync)>,
    /// Set when the vCPUs are done, for the watchdog.
    done: Mutex<bool>,
    done_cv: Condvar,
}

impl Shared<'_> {
    fn finish(&self, end: End, message: Option<String>) {
        let mut e = lock(&self.end);
        if e.is_none() {
            *e = Some((end, message));
        }
        drop(e);
        self.vm.request_stop();
    }

    /// A vCPU stopped by the watchdog says where it was, once.
    fn place_timeout(&self, vcpu: &Vcpu) {
        let mut e = lock(&self.end);
        if let Some((End::Timeout, m @ None)) = e.as_mut() {
            *m = Some(describe(vcpu, "timeout"));
        }
    }

    fn bus(&self) -> MutexGuard<'_, Bus<SerialOut>> {
        lock(&self.bus)
    }

    /// Let device timers fire; returns how long until the next one could
    /// interrupt a halted vCPU.
    fn poll_devices(&self) -> Option<Duration> {
        let mut bus = self.bus();
        let next = bus.poll_timers();
        bus.deliver_msi(self.vm.apic_bus());
        next
    }

    /// Stop the vCPUs at `deadline` unless they finish first.
    fn watchdog(&self, deadline: Instant) {
        let mut done = lock(&self.done);
        loop {
            if *done {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            done = self
                .done_cv
                .wait_timeout(done, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(done);
        self.finish(End::Timeout, None);
    }
}

/// Run the machine's vCPUs to completion.
pub(crate) fn run(m: Machine, note: Option<&(dyn Fn(String) + Sync)>) -> Outcome {
    let Machine {
        vm,
        mut vcpus,
        bus,
        config,
        acpi,
    } = m;
    let start = Instant::now();
    let shared = Shared {
        vm: &vm,
        bus: Mutex::new(bus),
        facs: acpi.facs,
        max_instructions: config.max_instructions,
        end: Mutex::new(None),
        stuck: AtomicUsize::new(0),
        vcpus: vcpus.len(),
        instructions: AtomicU64::new(0),
        note,
        done: Mutex::new(false),
        done_cv: Condvar::new(),
    };
    std::thread::scope(|s| {
        if let Some(deadline) = config.timeout.and_then(|t| start.checked_add(t)) {
            let sh = &shared;
            let spawned = std::thread::Builder::new()
                .name("softvm-watchdog".into())
                .stack_size(WATCHDOG_STACK)
                .spawn_scoped(s, move || sh.watchdog(deadline));
            if let Err(e) = spawned {
                shared.finish(
                    End::Internal,
                    Some(format!("cannot start the watchdog thread: {e}")),
                );
            }
        }
        run_vcpus(&mut vcpus, &shared);
        *lock(&shared.done) = true;
        shared.done_cv.notify_all();
    });
    shared.bus().flush();
    let (end, message) = shared
        .end
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or((End::Internal, Some("run ended without an outcome".into())));
    let message = match (end, message) {
        (End::Timeout, None) => Some(format!(
            "timeout after {:.1} s",
            start.elapsed().as_secs_f64()
        )),
        (_, m) => m,
    };
    Outcome {
        end,
        message,
        instructions: shared.instructions.load(Ordering::Relaxed),
    }
}

/// One vCPU on this thread, or one thread per vCPU on a rayon pool sized
/// to the machine: a halted vCPU sleeps in its thread, so the pool must not
/// be smaller than the VM, and it is never shared with other work.
fn run_vcpus(vcpus: &mut [Vcpu], shared: &Shared<'_>) {
    if vcpus.len() == 1 {
        vcpu_loop(&mut vcpus[0], shared);
        return;
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(vcpus.len())
        .thread_name(|i| format!("softvm-vcpu-{i}"))
        .build()
    {
        Ok(pool) => pool.scope(|s| {
            for v in vcpus.iter_mut() {
                s.spawn(move |_| vcpu_loop(v, shared));
            }
        }),
        Err(e) => shared.finish(
            End::Internal,
            Some(format!("cannot start vCPU threads: {e}")),
        ),
    }
}

/// One vCPU's VMM loop.
fn vcpu_loop(vcpu: &mut Vcpu, sh: &Shared<'_>) {
    vcpu.set_exit_on_unimplemented(true);
    vcpu.set_instruction_limit(sh.max_instructions);
    let mut stuck = false;
    let mut counted = 0u64;
    loop {
        let exit = vcpu.run();
        let halted = matches!(exit, emu_core::VcpuExit::Hlt);
        let answer = sh.bus().answer(exit, sh.vm.apic_bus());
        let device_timer = sh.poll_devices();
        if stuck && !halted {
            stuck = false;
            sh.stuck.fetch_sub(1, Ordering::SeqCst);
        }
        let done = vcpu.instructions();
        sh.instructions.fetch_add(done - counted, Ordering::Relaxed);
        counted = done;
        let end = match answer {
            Answer::Continue | Answer::Debug => None,
            Answer::NoDevice(text) => {
                if let Some(n) = sh.note {
                    n(text);
                }
                None
            }
            Answer::GuestExit(v) => Some((End::GuestExit(v), None)),
            Answer::PowerOff => Some((End::PowerOff, None)),
            Answer::Suspend => {
                sleep::stop_all(sh.vm.apic_bus());
                None
            }
            Answer::Reset => Some((
                End::Reset,
                Some(describe(vcpu, "the guest reset the machine")),
            )),
            Answer::TripleFault => Some((End::TripleFault, Some(describe(vcpu, "triple fault")))),
            Answer::Limit => {
                let msg = format!("instruction budget of {} exhausted", vcpu.instructions());
                Some((End::Budget, Some(describe(vcpu, &msg))))
            }
            Answer::Interrupted => {
                sh.place_timeout(vcpu);
                return;
            }
            Answer::Unsupported { rip, bytes } if bytes.is_empty() => Some((
                End::Unsupported,
                Some(format!(
                    "cannot run code at rip {rip:#x}: it is not in RAM (softvm fetches instructions from RAM only)"
                )),
            )),
            Answer::Unsupported { rip, bytes } => {
                let hex: Vec<String> = bytes.iter().map(|x| format!("{x:02x}")).collect();
                let dis = disassemble(vcpu, &bytes, rip);
                Some((
                    End::Unsupported,
                    Some(format!(
                        "unsupported instruction at rip {rip:#x}: {dis} ({})",
                        hex.join(" ")
                    )),
                ))
            }
            Answer::Halted if vcpu.id() == 0 && sh.bus().suspended() => {
                resume_or_wait(vcpu, sh, device_timer, &mut stuck)
            }
            Answer::Halted => {
                if let Some(wait) = device_timer {
                    // A device interrupt is coming: sleep until then.
                    std::thread::sleep(wait.min(Duration::from_millis(10)));
                } else if !vcpu.can_wake_alone() && !stuck {
                    stuck = true;
                    if sh.stuck.fetch_add(1, Ordering::SeqCst) + 1 == sh.vcpus {
                        sh.finish(End::DeadHalt, Some(describe(vcpu, dead_halt(sh))));
                        return;
                    }
                }
                None
            }
        };
        if let Some((end, message)) = end {
            sh.finish(end, message);
            return;
        }
    }
}

/// Why every vCPU is stuck, for the message.
fn dead_halt(sh: &Shared<'_>) -> &'static str {
    if sh.bus().suspended() {
        "the guest suspended the machine (S3) with no wake-up event enabled"
    } else {
        "every vCPU halted with nothing that could wake it"
    }
}

/// vCPU 0 while the machine is in S3: resume at the waking vector once
/// its INIT was taken and a wake-up event came; otherwise sleep until the
/// next device event, or count as stuck when none can come.
fn resume_or_wait(
    vcpu: &mut Vcpu,
    sh: &Shared<'_>,
    device_timer: Option<Duration>,
    stuck: &mut bool,
) -> Option<(End, Option<String>)> {
    if vcpu.get_mp_state() == MpState::WaitForSipi && sh.bus().take_wake() {
        if *stuck {
            *stuck = false;
            sh.stuck.fetch_sub(1, Ordering::SeqCst);
        }
        let to = sleep::waking_vector(sh.vm.memory(), sh.facs);
        if !sleep::start_bsp(vcpu, to) {
            let m = "woke from S3 with no waking vector in the FACS: the firmware would reboot";
            return Some((End::Reset, Some(describe(vcpu, m))));
        }
        return None;
    }
    if let Some(wait) = device_timer {
        std::thread::sleep(wait.min(Duration::from_millis(10)));
    } else if !*stuck && !sh.bus().can_wake() {
        *stuck = true;
        if sh.stuck.fetch_add(1, Ordering::SeqCst) + 1 == sh.vcpus {
            return Some((End::DeadHalt, Some(describe(vcpu, dead_halt(sh)))));
        }
    } else {
        std::thread::sleep(Duration::from_millis(1));
    }
    None
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

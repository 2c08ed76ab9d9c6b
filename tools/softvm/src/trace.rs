//! `softvm trace`: run a guest and explain, line by line, what the CPU and
//! the MMU do — every instruction disassembled, every page walk level by
//! level, every fault with its error code decoded, every MMIO decision and
//! memslot generation change.

use crate::cli::MachineOpts;
use crate::diag;
use emu_core::{CpuEvent, CpuSink};
use iced_x86::{Formatter, IntelFormatter};
use serde_json::{json, Value};
use softmmu::{MmuEvent, MmuSink};
use softvm_machine::{status, Machine, MachineConfig, Outcome};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `softvm trace FILE`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Events, one a line: insn (each instruction, disassembled), mmu (page walks \
level by level, page faults with the error code explained, shadow-page installs, MMIO spte hits \
and generation misses, memslot installs), cpu (exceptions raised and delivered), io (MMIO exits \
no device claimed), serial (the guest's output), end (how the run ended). The trace stops at once \
when its reader goes away (e.g. `| head`)."
)]
pub struct TraceArgs {
    /// The kernel to run
    pub file: PathBuf,
    /// Show instructions (without --insn or --mmu: both)
    #[arg(long)]
    pub insn: bool,
    /// Show MMU events
    #[arg(long)]
    pub mmu: bool,
    /// One JSON object a line
    #[arg(long)]
    pub json: bool,
    /// Stop after N instructions
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = limit, allow_negative_numbers = true)]
    pub limit: u64,
    #[command(flatten)]
    pub machine: MachineOpts,
}

fn limit(s: &str) -> Result<u64, softvm_machine::ConfigError> {
    softvm_machine::config::parse_count(s)
}

/// What to show.
#[derive(Clone, Copy, Debug)]
pub struct TraceOptions {
    pub insn: bool,
    pub mmu: bool,
    pub json: bool,
}

/// Writes trace lines; shared by the CPU and MMU sinks and the serial port.
pub struct Tracer {
    out: Mutex<Box<dyn Write + Send>>,
    opts: TraceOptions,
    /// Serial bytes not yet ended by a newline.
    serial_line: Mutex<Vec<u8>>,
}

impl Tracer {
    pub fn new(out: Box<dyn Write + Send>, opts: TraceOptions) -> Arc<Tracer> {
        Arc::new(Tracer {
            out: Mutex::new(out),
            opts,
            serial_line: Mutex::new(Vec::new()),
        })
    }

    /// One line of trace: `kind` is a short tag, `text` the explanation,
    /// `fields` the data of the JSON form. A reader that went away (EPIPE)
    /// ends the process at once with [`crate::BROKEN_PIPE`], as SIGPIPE would.
    fn line(&self, kind: &str, text: &str, fields: Value) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let r = if self.opts.json {
            let mut obj = serde_json::Map::new();
            obj.insert("kind".into(), json!(kind));
            if let Value::Object(f) = fields {
                obj.extend(f);
            }
            obj.insert("text".into(), json!(text));
            writeln!(out, "{}", Value::Object(obj))
        } else {
            writeln!(out, "{kind:<6} {text}")
        };
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(crate::BROKEN_PIPE);
            }
        }
    }

    /// Serial output becomes `serial` lines.
    fn serial(&self, data: &[u8]) {
        let mut buf = self.serial_line.lock().unwrap_or_else(|e| e.into_inner());
        for &b in data {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&buf).into_owned();
                buf.clear();
                self.line("serial", &text, json!({}));
            } else {
                buf.push(b);
            }
        }
    }

    fn finish(&self) {
        let rest = std::mem::take(&mut *self.serial_line.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            self.line("serial", &String::from_utf8_lossy(&rest), json!({}));
        }
        let _ = self.out.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

/// Names of the exception vectors, as the manuals write them.
pub fn vector_name(v: u8) -> &'static str {
    match v {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        19 => "#XM SIMD exception",
        _ => "interrupt",
    }
}

impl CpuSink for Tracer {
    fn event(&self, ev: &CpuEvent<'_>) {
        match *ev {
            CpuEvent::Instruction { rip, bitness, ins } => {
                if self.opts.insn {
                    let mut s = String::new();
                    IntelFormatter::new().format(ins, &mut s);
                    self.line(
                        "insn",
                        &format!("{rip:#010x}  {s}"),
                        json!({"rip": rip, "bitness": bitness, "asm": s}),
                    );
                }
            }
            CpuEvent::Exception {
                rip,
                vector,
                error_code,
                cr2,
            } => {
                let mut t = format!(
                    "{} (vector {vector}) raised by the instruction at {rip:#x}",
                    vector_name(vector)
                );
                if let Some(c) = error_code {
                    t.push_str(&format!(", error code {c:#x}"));
                }
                if let Some(a) = cr2 {
                    t.push_str(&format!(", CR2 = {a:#x}"));
                }
                self.line("cpu", &t, json!({"vector": vector, "rip": rip}));
            }
            CpuEvent::Delivered { vector, rip } => self.line(
                "cpu",
                &format!("vector {vector} delivered through the IDT: the handler runs at {rip:#x}"),
                json!({"vector": vector, "handler": rip}),
            ),
            CpuEvent::Unimplemented { rip } => self.line(
                "cpu",
                &format!("instruction at {rip:#x} is not implemented in softvm"),
                json!({"rip": rip}),
            ),
        }
    }
}

impl MmuSink for Tracer {
    fn event(&self, ev: &MmuEvent) {
        if self.opts.mmu {
            let name = format!("{ev:?}");
            let name = name.split([' ', '{', '(']).next().unwrap_or("").to_string();
            self.line(
                "mmu",
                &ev.to_string(),
                json!({"event": name, "detail": format!("{ev:?}")}),
            );
        }
    }
}

/// A writer that turns the guest's serial bytes into trace lines.
struct SerialToTrace(Arc<Tracer>);

impl Write for SerialToTrace {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.serial(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run `image` under the tracer; returns the run's outcome.
pub fn trace_image(
    image: &[u8],
    cfg: &MachineConfig,
    tracer: Arc<Tracer>,
) -> Result<Outcome, softvm_machine::MachineError> {
    let mut m = Machine::new_observed(cfg, Some(tracer.clone()))?;
    m.load(image)?;
    for vcpu in m.vcpus_mut() {
        vcpu.mmu_mut().set_sink(Some(tracer.clone()));
        vcpu.set_cpu_sink(Some(tracer.clone()));
    }
    m.set_serial_output(SerialToTrace(tracer.clone()));
    let t = tracer.clone();
    let note = move |text: String| t.line("io", &text, json!({}));
    let o = m.run_observed(&note);
    tracer.finish();
    let mut fields = json!({"status": o.status(), "instructions": o.instructions});
    let mut text = format!(
        "run ended with status {} after {} instructions",
        o.status(),
        o.instructions
    );
    if let Some(m) = &o.message {
        text.push_str(&format!(": {m}"));
        fields["message"] = json!(m);
    }
    tracer.line("end", &text, fields);
    tracer.finish();
    Ok(o)
}

/// `softvm trace`; returns the process status.
pub fn cmd_trace(a: TraceArgs) -> i32 {
    let mut opts = TraceOptions {
        insn: a.insn,
        mmu: a.mmu,
        json: a.json,
    };
    if !opts.insn && !opts.mmu {
        opts.insn = true;
        opts.mmu = true;
    }
    let file = a.file.display().to_string();
    let limit = a.limit;
    let (cfg, image) = match crate::run::prepare(&a.file, &a.machine, |c| {
        c.max_instructions = Some(c.max_instructions.map_or(limit, |m| m.min(limit)));
    }) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let tracer = Tracer::new(Box::new(std::io::stdout()), opts);
    match trace_image(&image, &cfg, tracer) {
        Ok(o) => o.end.process_status(),
        Err(e) => {
            diag(&format!("softvm: {file}: {e}"));
            status::USAGE
        }
    }
}

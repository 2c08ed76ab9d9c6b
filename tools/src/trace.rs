//! `softvm trace`: run a guest and explain, line by line, what the CPU and
//! the MMU do — every instruction disassembled, every page walk level by
//! level, every fault with its error code decoded, every MMIO decision and
//! memslot generation change.

use crate::devices::{fw_cfg::FwCfg, Bus};
use crate::machine::{self, RunConfig};
use emu_core::{CpuEvent, CpuSink};
use iced_x86::{Formatter, IntelFormatter};
use softmmu::{MmuEvent, MmuSink};
use std::io::Write;
use std::sync::{Arc, Mutex};

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

/// Escape a string for JSON.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Tracer {
    pub fn new(out: Box<dyn Write + Send>, opts: TraceOptions) -> Arc<Tracer> {
        Arc::new(Tracer {
            out: Mutex::new(out),
            opts,
            serial_line: Mutex::new(Vec::new()),
        })
    }

    /// One line of trace: `kind` is a short tag, `text` the explanation.
    fn line(&self, kind: &str, text: &str, fields: &[(&str, String)]) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = if self.opts.json {
            let mut j = format!("{{\"kind\":{}", json_str(kind));
            for (k, v) in fields {
                j.push_str(&format!(",{}:{}", json_str(k), v));
            }
            j.push_str(&format!(",\"text\":{}}}", json_str(text)));
            writeln!(out, "{j}")
        } else {
            writeln!(out, "{kind:<6} {text}")
        };
    }

    /// Serial output becomes `serial` lines.
    fn serial(&self, data: &[u8]) {
        let mut buf = self.serial_line.lock().unwrap_or_else(|e| e.into_inner());
        for &b in data {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&buf).into_owned();
                buf.clear();
                self.line("serial", &text, &[]);
            } else {
                buf.push(b);
            }
        }
    }

    fn finish(&self) {
        let rest = std::mem::take(&mut *self.serial_line.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            self.line("serial", &String::from_utf8_lossy(&rest), &[]);
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
                        &[
                            ("rip", rip.to_string()),
                            ("bitness", bitness.to_string()),
                            ("asm", json_str(&s)),
                        ],
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
                self.line(
                    "cpu",
                    &t,
                    &[("vector", vector.to_string()), ("rip", rip.to_string())],
                );
            }
            CpuEvent::Delivered { vector, rip } => self.line(
                "cpu",
                &format!("vector {vector} delivered through the IDT: the handler runs at {rip:#x}"),
                &[("vector", vector.to_string()), ("handler", rip.to_string())],
            ),
            CpuEvent::Unimplemented { rip } => self.line(
                "cpu",
                &format!("instruction at {rip:#x} is not implemented in softvm"),
                &[("rip", rip.to_string())],
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
                &[
                    ("event", json_str(&name)),
                    ("detail", json_str(&format!("{ev:?}"))),
                ],
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
    cfg: &RunConfig,
    tracer: Arc<Tracer>,
) -> anyhow::Result<machine::Outcome> {
    let (vm, mut vcpus) = machine::build_observed(image, cfg, Some(tracer.clone()))?;
    for vcpu in &mut vcpus {
        vcpu.mmu_mut().set_sink(Some(tracer.clone()));
        vcpu.set_cpu_sink(Some(tracer.clone()));
    }
    let bus = Bus::new(
        SerialToTrace(tracer.clone()),
        FwCfg::new(cfg.memory, cfg.vcpus as u16),
    );
    let t = tracer.clone();
    let note = move |text: String| t.line("io", &text, &[]);
    let o = machine::run_observed(&vm, vcpus, bus, cfg, Some(&note));
    tracer.finish();
    let mut fields = vec![
        ("status", o.status.to_string()),
        ("instructions", o.instructions.to_string()),
    ];
    let mut text = format!(
        "run ended with status {} after {} instructions",
        o.status, o.instructions
    );
    if let Some(m) = &o.message {
        text.push_str(&format!(": {m}"));
        fields.push(("message", json_str(m)));
    }
    tracer.line("end", &text, &fields);
    tracer.finish();
    Ok(o)
}

//! A small VMM that runs one guest image through a [`Backend`]: softvm's
//! `emu-core` ([`SoftvmBackend`]) or real KVM ([`crate::kvm::KvmBackend`],
//! Linux only).
//!
//! Both backends get the same machine: one RAM slot of [`RAM_SIZE`] bytes
//! at guest-physical 0, the image loaded by [`loader::load`] with the state
//! it builds, the same CPUID table (softvm's default model) and the same
//! devices, [`Devices`]: the machine library's bus as `softvm run` has it
//! (COM1 with the line status always "transmitter empty", the exit port
//! 0xf4, fw_cfg, CMOS, the I/O APIC, pc-testdev, ports nothing answers
//! reading as all ones, MMIO outside RAM and devices reading as all ones),
//! without the PIT, and on a clock that stands still (the RTC showing
//! 2000-01-01 00:00:00, the PM timer at 0): device time that followed the
//! host would make the two runs differ.
//!
//! [`run_guest`] records every exit (kind, port or address, size, data),
//! the serial output and the final registers in a [`RunRecord`];
//! [`compare`] reports the first difference between two records.

mod softvm;

pub use softvm::SoftvmBackend;

use emu_core::{CpuidEntry, Regs, Sregs};
use softmmu::{Backing, Gpa, GuestMemory, MemFlags};
use softvm_machine::{Bus, MachineConfig};
use std::fmt;

/// Bytes of guest RAM (one slot at guest-physical address 0).
pub const RAM_SIZE: u64 = 64 << 20;
/// COM1's data register; its line status register is `COM1 + 5`.
pub const COM1: u16 = 0x3f8;
/// The isa-debug-exit port.
pub const EXIT_PORT: u16 = 0xf4;

/// One exit of a run, with the data that went through it. Reads carry the
/// bytes the device model answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    IoIn {
        port: u16,
        data: Vec<u8>,
    },
    IoOut {
        port: u16,
        data: Vec<u8>,
    },
    MmioRead {
        gpa: u64,
        data: Vec<u8>,
    },
    MmioWrite {
        gpa: u64,
        data: Vec<u8>,
    },
    Hlt,
    /// Triple fault.
    Shutdown,
    /// The backend could not execute the guest's instruction: softvm does
    /// not implement it, or KVM reported an internal error (typically its
    /// instruction emulator failing).
    InternalError {
        rip: u64,
        what: String,
    },
    /// The instruction cap (softvm) or the wall-clock cap (KVM) ran out.
    Limit,
    /// An exit reason the VMM does not model.
    Other(String),
}

impl Exit {
    /// Whether the run ends with this exit.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Exit::Hlt | Exit::Shutdown | Exit::InternalError { .. } | Exit::Limit | Exit::Other(_)
        )
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = |d: &[u8]| {
            d.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Exit::IoIn { port, data } => write!(
                f,
                "in  port {port:#06x} size {} -> [{}]",
                data.len(),
                bytes(data)
            ),
            Exit::IoOut { port, data } => {
                write!(
                    f,
                    "out port {port:#06x} size {} <- [{}]",
                    data.len(),
                    bytes(data)
                )?;
                if *port == COM1 && data.len() == 1 {
                    write!(f, " {:?}", data[0] as char)?;
                }
                Ok(())
            }
            Exit::MmioRead { gpa, data } => write!(
                f,
                "mmio read  {gpa:#x} size {} -> [{}]",
                data.len(),
                bytes(data)
            ),
            Exit::MmioWrite { gpa, data } => write!(
                f,
                "mmio write {gpa:#x} size {} <- [{}]",
                data.len(),
                bytes(data)
            ),
            Exit::Hlt => write!(f, "hlt"),
            Exit::Shutdown => write!(f, "shutdown (triple fault)"),
            Exit::InternalError { rip, what } => {
                write!(f, "internal error at rip {rip:#x}: {what}")
            }
            Exit::Limit => write!(f, "instruction or time limit"),
            Exit::Other(s) => write!(f, "other exit: {s}"),
        }
    }
}

/// A failure of the backend itself (an ioctl, the memory layout), as
/// opposed to anything the guest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError(pub String);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendError {}

impl BackendError {
    pub fn new(what: impl Into<String>) -> BackendError {
        BackendError(what.into())
    }
}

/// The devices both backends share: the machine library's [`Bus`]. Reads
/// are answered here, identically for both, at the moment the backend
/// reports them; writes reach the devices in the order the guest made them.
pub struct Devices {
    bus: Bus<std::io::Sink>,
}

impl Default for Devices {
    fn default() -> Self {
        let cfg = MachineConfig {
            memory: RAM_SIZE,
            pit: false,
            ..MachineConfig::default()
        };
        let clock = std::sync::Arc::new(softvm_machine::clock::ManualClock::new());
        let y2k = std::time::Duration::from_secs(946_684_800);
        Devices {
            bus: Bus::with_clock(&cfg, std::io::sink(), clock, y2k),
        }
    }
}

impl Devices {
    /// Answer an `IN` from `port`.
    pub fn read_port(&mut self, port: u16, buf: &mut [u8]) {
        self.bus.read(port, buf);
    }

    /// Answer a read of guest-physical `gpa` outside RAM.
    pub fn read_mmio(&mut self, gpa: u64, buf: &mut [u8]) {
        if !self.bus.mmio_read(gpa, buf) {
            buf.fill(0xff);
        }
    }

    /// Apply an `OUT` (the exit port's value is recorded by the caller).
    pub fn write_port(&mut self, port: u16, data: &[u8]) {
        self.bus.write(port, data);
    }

    /// Apply a write to guest-physical `gpa` outside RAM.
    pub fn write_mmio(&mut self, gpa: u64, data: &[u8]) {
        self.bus.mmio_write(gpa, data);
    }
}

/// What a VMM needs from a virtual machine with one vCPU, in the shape of
/// KVM's API. Implementations own their RAM (one slot of [`RAM_SIZE`] at
/// gpa 0) and apply their run cap themselves.
pub trait Backend {
    /// A short name for reports ("softvm", "kvm").
    fn name(&self) -> &'static str;
    fn write_memory(&mut self, gpa: u64, data: &[u8]) -> Result<(), BackendError>;
    fn read_memory(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), BackendError>;
    /// `KVM_SET_CPUID2`.
    fn set_cpuid(&mut self, entries: &[CpuidEntry]) -> Result<(), BackendError>;
    fn set_regs(&mut self, regs: &Regs) -> Result<(), BackendError>;
    fn get_regs(&mut self) -> Result<Regs, BackendError>;
    fn set_sregs(&mut self, sregs: &Sregs) -> Result<(), BackendError>;
    fn get_sregs(&mut self) -> Result<Sregs, BackendError>;
    /// Run until the next exit. Port and MMIO reads are answered by `dev`
    /// before this returns; the returned exit carries the answer.
    fn run(&mut self, dev: &mut Devices) -> Result<Exit, BackendError>;
}

/// The system registers a run compares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SysRegs {
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// CS, DS, ES, FS, GS, SS, TR, LDTR selectors.
    pub selectors: [u16; 8],
    /// GDTR and IDTR (base, limit).
    pub gdt: (u64, u16),
    pub idt: (u64, u16),
}

impl SysRegs {
    pub fn from_sregs(s: &Sregs) -> SysRegs {
        SysRegs {
            cr0: s.cr0,
            cr2: s.cr2,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
            selectors: [
                s.cs.selector,
                s.ds.selector,
                s.es.selector,
                s.fs.selector,
                s.gs.selector,
                s.ss.selector,
                s.tr.selector,
                s.ldt.selector,
            ],
            gdt: (s.gdt.base, s.gdt.limit),
            idt: (s.idt.base, s.idt.limit),
        }
    }
}

/// Everything one run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub exits: Vec<Exit>,
    /// Bytes written to COM1's data register.
    pub serial: Vec<u8>,
    /// The last value written to the exit port.
    pub exit_code: Option<u32>,
    /// The run stopped because it had more than `max_exits` exits.
    pub truncated: bool,
    pub regs: Regs,
    pub sys: SysRegs,
}

impl RunRecord {
    /// The exit that ended the run.
    pub fn last_exit(&self) -> Option<&Exit> {
        self.exits.last()
    }

    /// The serial output as text (lossy).
    pub fn serial_text(&self) -> String {
        String::from_utf8_lossy(&self.serial).into_owned()
    }

    /// Whether the backend gave up on an instruction (see
    /// [`Exit::InternalError`]).
    pub fn internal_error(&self) -> Option<&Exit> {
        self.exits
            .iter()
            .find(|e| matches!(e, Exit::InternalError { .. } | Exit::Other(_)))
    }
}

/// Limits of one run.
#[derive(Clone, Copy, Debug)]
pub struct RunLimits {
    /// Stop after this many exits (a guest printing forever).
    pub max_exits: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits { max_exits: 200_000 }
    }
}

/// An image loaded into a scratch memory: the initial state and the
/// non-zero 4 KiB pages of RAM, ready to be copied into any backend.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub boot: loader::BootState,
    /// (gpa, bytes) runs of non-zero pages.
    pub chunks: Vec<(u64, Vec<u8>)>,
}

/// Load `image` the way `softvm run` would, into a RAM of [`RAM_SIZE`].
pub fn load_image(image: &[u8]) -> Result<LoadedImage, BackendError> {
    let mem = GuestMemory::new();
    mem.set_user_memory_region(
        0,
        MemFlags::empty(),
        Gpa::new(0),
        RAM_SIZE,
        Backing::Anonymous,
    )
    .map_err(|e| BackendError::new(format!("scratch memory: {e}")))?;
    let opts = loader::LoadOptions {
        mem_size: RAM_SIZE,
        ..Default::default()
    };
    let boot =
        loader::load(image, &mem, &opts).map_err(|e| BackendError::new(format!("load: {e}")))?;
    const PAGE: usize = 4096;
    const CHUNK: usize = 64 * PAGE;
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    for base in (0..RAM_SIZE).step_by(CHUNK) {
        mem.read_phys(Gpa::new(base), &mut buf)
            .map_err(|e| BackendError::new(format!("scratch read: {e}")))?;
        for (i, page) in buf.chunks(PAGE).enumerate() {
            if page.iter().all(|&b| b == 0) {
                continue;
            }
            let gpa = base + (i * PAGE) as u64;
            match chunks.last_mut() {
                Some((start, data)) if *start + data.len() as u64 == gpa => {
                    data.extend_from_slice(page)
                }
                _ => chunks.push((gpa, page.to_vec())),
            }
        }
    }
    Ok(LoadedImage { boot, chunks })
}

/// The CPUID table given to both backends: softvm's `host` model, whose
/// vendor is the host's. KVM runs the guest on the host processor, which
/// behaves as its vendor's do whatever CPUID says (the flags the manuals
/// leave undefined, SYSCALL outside 64-bit mode, ...), and softvm follows
/// its model's vendor: with the host's vendor on both sides, both behave
/// alike, and the guest sees the vendor it runs on.
pub fn cpuid_model() -> Vec<CpuidEntry> {
    let model = emu_core::cpu::model::CpuModel::host();
    emu_core::cpuid::Cpuid::for_model(&model, 0, 1).entries
}

/// Put `image` into `b` (memory, CPUID, registers) and run it until it
/// halts, shuts down, hits the backend's cap or fails, recording every
/// exit. A write to the exit port does not end the run: the guest's
/// following `hlt` does, so that both backends report the state after the
/// `out` completed.
pub fn run_guest(
    b: &mut dyn Backend,
    image: &LoadedImage,
    limits: RunLimits,
) -> Result<RunRecord, BackendError> {
    run_guest_with(b, image, limits, &cpuid_model())
}

/// [`run_guest`] with the CPUID table `cpuid` (softvm behaves as the CPU
/// model it describes, by vendor among others; KVM only shows it to the
/// guest).
pub fn run_guest_with(
    b: &mut dyn Backend,
    image: &LoadedImage,
    limits: RunLimits,
    cpuid: &[CpuidEntry],
) -> Result<RunRecord, BackendError> {
    for (gpa, data) in &image.chunks {
        b.write_memory(*gpa, data)?;
    }
    b.set_cpuid(cpuid)?;
    b.set_sregs(&image.boot.sregs)?;
    b.set_regs(&image.boot.regs)?;
    let mut dev = Devices::default();
    let mut rec = RunRecord {
        exits: Vec::new(),
        serial: Vec::new(),
        exit_code: None,
        truncated: false,
        regs: Regs::default(),
        sys: SysRegs::default(),
    };
    loop {
        if rec.exits.len() >= limits.max_exits {
            rec.truncated = true;
            break;
        }
        let exit = b.run(&mut dev)?;
        match &exit {
            Exit::IoOut { port, data } => dev.write_port(*port, data),
            Exit::MmioWrite { gpa, data } => dev.write_mmio(*gpa, data),
            _ => {}
        }
        match &exit {
            Exit::IoOut { port: COM1, data } => rec.serial.extend_from_slice(data),
            Exit::IoOut {
                port: EXIT_PORT,
                data,
            } => {
                let mut v = [0u8; 4];
                let n = data.len().min(4);
                v[..n].copy_from_slice(&data[..n]);
                rec.exit_code = Some(u32::from_le_bytes(v));
            }
            _ => {}
        }
        let done = exit.is_final();
        rec.exits.push(exit);
        if done {
            break;
        }
    }
    rec.regs = b.get_regs()?;
    rec.sys = SysRegs::from_sregs(&b.get_sregs()?);
    Ok(rec)
}

/// The first difference between two runs of one guest, formatted for a
/// person: the first diverging exit with the exits before it, both serial
/// outputs and the registers that differ. `None` when they are identical.
pub fn compare(a_name: &str, a: &RunRecord, b_name: &str, b: &RunRecord) -> Option<String> {
    if a == b {
        return None;
    }
    let mut out = String::new();
    let w = a_name.len().max(b_name.len());
    let n = a.exits.len().max(b.exits.len());
    if let Some(i) = (0..n).find(|&i| a.exits.get(i) != b.exits.get(i)) {
        out += &format!("first diverging exit: #{i}\n");
        for j in i.saturating_sub(3)..i {
            out += &format!("  {:w$}  #{j}: {}\n", "both", a.exits[j]);
        }
        let show = |e: Option<&Exit>| {
            e.map_or("(no exit: the run had ended)".to_string(), |e| {
                e.to_string()
            })
        };
        out += &format!("  {a_name:w$}  #{i}: {}\n", show(a.exits.get(i)));
        out += &format!("  {b_name:w$}  #{i}: {}\n", show(b.exits.get(i)));
    } else {
        out += &format!("same {} exits\n", a.exits.len());
    }
    if a.serial != b.serial {
        out += &format!(
            "serial output differs:\n--- {a_name}:\n{}\n--- {b_name}:\n{}\n",
            a.serial_text(),
            b.serial_text()
        );
    }
    for (name, x, y) in reg_pairs(&a.regs, &b.regs) {
        if x != y {
            out += &format!("  {name:6} {a_name}={x:#018x} {b_name}={y:#018x}\n");
        }
    }
    let (sa, sb) = (&a.sys, &b.sys);
    let sys = [
        ("cr0", sa.cr0, sb.cr0),
        ("cr2", sa.cr2, sb.cr2),
        ("cr3", sa.cr3, sb.cr3),
        ("cr4", sa.cr4, sb.cr4),
        ("efer", sa.efer, sb.efer),
        ("gdt", sa.gdt.0, sb.gdt.0),
        ("gdtlim", sa.gdt.1.into(), sb.gdt.1.into()),
        ("idt", sa.idt.0, sb.idt.0),
        ("idtlim", sa.idt.1.into(), sb.idt.1.into()),
    ];
    for (name, x, y) in sys {
        if x != y {
            out += &format!("  {name:6} {a_name}={x:#018x} {b_name}={y:#018x}\n");
        }
    }
    let seg = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldtr"];
    for (k, name) in seg.iter().enumerate() {
        if sa.selectors[k] != sb.selectors[k] {
            out += &format!(
                "  {name:6} {a_name}={:#06x} {b_name}={:#06x}\n",
                sa.selectors[k], sb.selectors[k]
            );
        }
    }
    if a.exit_code != b.exit_code {
        out += &format!(
            "  exit code {a_name}={:?} {b_name}={:?}\n",
            a.exit_code, b.exit_code
        );
    }
    if a.truncated != b.truncated {
        out += &format!(
            "  truncated {a_name}={} {b_name}={}\n",
            a.truncated, b.truncated
        );
    }
    Some(out)
}

/// `bytes` (an instruction at `rip`) as hex and Intel syntax.
pub fn describe_bytes(rip: u64, bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let ins = crate::gen::decode(bytes, rip);
    let n = ins.len().min(bytes.len());
    format!(
        "[{}] `{}`",
        hex[..n.max(1)].join(" "),
        crate::gen::format_instr(&ins)
    )
}

/// The general registers by name.
pub fn reg_pairs(a: &Regs, b: &Regs) -> [(&'static str, u64, u64); 18] {
    [
        ("rax", a.rax, b.rax),
        ("rbx", a.rbx, b.rbx),
        ("rcx", a.rcx, b.rcx),
        ("rdx", a.rdx, b.rdx),
        ("rsi", a.rsi, b.rsi),
        ("rdi", a.rdi, b.rdi),
        ("rsp", a.rsp, b.rsp),
        ("rbp", a.rbp, b.rbp),
        ("r8", a.r8, b.r8),
        ("r9", a.r9, b.r9),
        ("r10", a.r10, b.r10),
        ("r11", a.r11, b.r11),
        ("r12", a.r12, b.r12),
        ("r13", a.r13, b.r13),
        ("r14", a.r14, b.r14),
        ("r15", a.r15, b.r15),
        ("rip", a.rip, b.rip),
        ("rflags", a.rflags, b.rflags),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_answer_reads() {
        let mut d = Devices::default();
        let mut b = [0u8; 1];
        d.read_port(COM1 + 5, &mut b);
        assert_eq!(b, [0x60]);
        let mut b = [0u8; 4];
        d.read_port(0x80, &mut b);
        assert_eq!(b, [0xff; 4]);
    }

    #[test]
    fn softvm_runs_a_guest_to_its_exit() {
        let image = crate::guest::long_mode(|a| {
            crate::guest::print(a, "hi\n")?;
            crate::guest::exit(a, 5)
        })
        .unwrap();
        let image = load_image(&image).unwrap();
        let mut b = SoftvmBackend::new(1_000_000).unwrap();
        let rec = run_guest(&mut b, &image, RunLimits::default()).unwrap();
        assert_eq!(rec.serial, b"hi\n");
        assert_eq!(rec.exit_code, Some(5));
        assert_eq!(rec.last_exit(), Some(&Exit::Hlt));
        assert_eq!(rec.exits.len(), 3 + 1 + 1);
        assert_eq!(rec.sys.efer & 0x500, 0x500, "long mode");
        assert!(compare("a", &rec, "b", &rec).is_none());
    }

    #[test]
    fn compare_names_the_first_diverging_exit() {
        let rec = |exits: Vec<Exit>| RunRecord {
            exits,
            serial: Vec::new(),
            exit_code: None,
            truncated: false,
            regs: Regs::default(),
            sys: SysRegs::default(),
        };
        let a = rec(vec![
            Exit::IoOut {
                port: 0x80,
                data: vec![1],
            },
            Exit::Hlt,
        ]);
        let b = rec(vec![
            Exit::IoOut {
                port: 0x80,
                data: vec![2],
            },
            Exit::Hlt,
        ]);
        assert!(compare("a", &a, "a", &a).is_none());
        let d = compare("a", &a, "b", &b).unwrap();
        assert!(d.contains("first diverging exit: #0"), "{d}");
    }
}

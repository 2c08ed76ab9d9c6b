//! Shared pieces of the system-level guest tests (`sys_modes`,
//! `sys_exceptions`, `sys_privilege`): a runner, descriptor and page-table
//! builders, and guest-side routines emitted with iced-x86's assembler.
//!
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use emu_core::{Regs, Segment, VcpuExit, Vm};
use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Code, Instruction};
use softmmu::Gpa;
use softvm_machine::{Answer, Capture, Machine, MachineConfig};
use std::time::{Duration, Instant};

/// Guest RAM of every test VM.
pub const MEM: u64 = 64 << 20;
/// Instruction budget of one run (the guests need well under 1M).
pub const BUDGET: u64 = 20_000_000;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The guest wrote this value to the exit port 0xf4.
    Exit(u32),
    Shutdown,
    Hlt,
    Limit,
    Other(String),
}

/// Everything a test asserts on.
#[derive(Debug)]
pub struct Outcome {
    pub serial: String,
    pub end: End,
    /// Writes to ports other than COM1 and the exit port: (port, value).
    pub ports: Vec<(u16, u32)>,
    pub instructions: u64,
    pub elapsed: Duration,
}

impl Outcome {
    /// Assert the run ended with exit value `code` and printed `expected`,
    /// showing the output on failure.
    pub fn assert(&self, expected: &str, code: u32) {
        if self.serial != expected {
            let got: Vec<&str> = self.serial.lines().collect();
            let want: Vec<&str> = expected.lines().collect();
            let mut diff = String::new();
            for i in 0..got.len().max(want.len()) {
                let g = got.get(i).copied().unwrap_or("<none>");
                let w = want.get(i).copied().unwrap_or("<none>");
                if g != w {
                    diff += &format!("line {i}: got {g:?}, want {w:?}\n");
                }
            }
            panic!(
                "serial output differs (end {:?}):\n{diff}--- full output ---\n{}",
                self.end, self.serial
            );
        }
        assert_eq!(self.end, End::Exit(code), "output:\n{}", self.serial);
    }
}

/// The machine every test runs on: the machine library's PC (COM1, the
/// exit port, the legacy devices) with [`MEM`] of RAM and CPU model `cpu`
/// (a `--cpu` line), its serial output captured.
fn machine_with(cpu: &str, blobs: &[(u64, Vec<u8>)]) -> (Machine, Capture) {
    let cfg = MachineConfig {
        memory: MEM,
        cpu: cpu.to_string(),
        ..MachineConfig::default()
    };
    let mut m = Machine::new(&cfg).unwrap();
    let serial = Capture::new();
    m.set_serial_output(serial.clone());
    write_blobs(m.vm(), blobs);
    (m, serial)
}

fn write_blobs(vm: &Vm, blobs: &[(u64, Vec<u8>)]) {
    assert_disjoint(blobs);
    for (at, b) in blobs {
        vm.memory().write_phys(Gpa::new(*at), b).unwrap();
    }
}

/// Panic if two blobs overlap (a layout mistake in a test).
pub fn assert_disjoint(blobs: &[(u64, Vec<u8>)]) {
    let mut r: Vec<(u64, u64)> = blobs
        .iter()
        .map(|(a, b)| (*a, a + b.len() as u64))
        .collect();
    r.sort();
    for w in r.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "blobs overlap: {:#x}..{:#x} and {:#x}..{:#x}",
            w[0].0,
            w[0].1,
            w[1].0,
            w[1].1
        );
    }
}

/// Boot a multiboot/ELF image with the loader, after writing `blobs` (extra
/// guest data: tables, user code) into RAM.
pub fn run_image(image: &[u8], blobs: &[(u64, Vec<u8>)]) -> Outcome {
    run_image_on("max", image, blobs)
}

/// [`run_image`] on a vCPU of CPU model `cpu` (a `--cpu` line).
pub fn run_image_on(cpu: &str, image: &[u8], blobs: &[(u64, Vec<u8>)]) -> Outcome {
    let (mut m, serial) = machine_with(cpu, &[]);
    m.load(image).unwrap();
    write_blobs(m.vm(), blobs);
    drive(&mut m, &serial)
}

/// Start the vCPU in real mode at `cs:ip` with the other segments 0, as a
/// BIOS leaves a boot sector, with `blobs` in RAM.
pub fn run_real(blobs: &[(u64, Vec<u8>)], cs_sel: u16, ip: u16) -> Outcome {
    let (mut m, serial) = machine_with("max", blobs);
    let vcpu = &mut m.vcpus_mut()[0];
    let mut s = vcpu.get_sregs();
    s.cs = Segment::real_mode(cs_sel, true);
    for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
        *seg = Segment::real_mode(0, false);
    }
    s.cr0 = 0x10;
    s.idt = emu_core::DTable {
        base: 0,
        limit: 0x3ff,
    };
    vcpu.set_sregs(&s);
    vcpu.set_regs(&Regs {
        rip: u64::from(ip),
        rflags: 2,
        ..Regs::default()
    });
    drive(&mut m, &serial)
}

/// With `SYS_TRACE=1` in the environment, every instruction and exception
/// of the run goes to stderr (for debugging a failing guest).
struct Trace;

impl emu_core::CpuSink for Trace {
    fn event(&self, ev: &emu_core::CpuEvent<'_>) {
        match ev {
            emu_core::CpuEvent::Instruction { rip, ins, .. } => eprintln!("{rip:#x}: {ins}"),
            other => eprintln!("{other:?}"),
        }
    }
}

/// Run vCPU 0 with the machine's devices answering its exits, recording
/// writes to ports other than COM1 and the exit port.
fn drive(m: &mut Machine, serial: &Capture) -> Outcome {
    let (vm, vcpus, bus) = m.parts_mut();
    let vcpu = &mut vcpus[0];
    if std::env::var_os("SYS_TRACE").is_some() {
        vcpu.set_cpu_sink(Some(std::sync::Arc::new(Trace)));
    }
    vcpu.set_instruction_limit(Some(BUDGET));
    let start = Instant::now();
    let mut ports = Vec::new();
    let end = loop {
        let exit = vcpu.run();
        if let VcpuExit::IoOut(port, d) = &exit {
            if !(0x3f8..=0x3ff).contains(port) && *port != 0xf4 {
                let mut v = [0u8; 4];
                v[..d.len()].copy_from_slice(d);
                ports.push((*port, u32::from_le_bytes(v)));
            }
        }
        match bus.answer(exit, vm.apic_bus()) {
            Answer::Continue | Answer::NoDevice(_) => {}
            Answer::GuestExit(v) => break End::Exit(v),
            Answer::Halted => break End::Hlt,
            Answer::TripleFault => break End::Shutdown,
            Answer::Limit => break End::Limit,
            other => break End::Other(format!("{other:?}")),
        }
    };
    bus.flush();
    Outcome {
        serial: serial.text(),
        end,
        ports,
        instructions: vcpu.instructions(),
        elapsed: start.elapsed(),
    }
}

// ---------------------------------------------------------------------
// Assembling code chunks at fixed addresses.

pub type AsmResult<T = ()> = Result<T, IcedError>;

/// Assemble `bits`-bit code whose first byte sits at physical `phys` and
/// at offset `ip` of its code segment.
pub fn chunk(
    bits: u32,
    phys: u64,
    ip: u64,
    f: impl FnOnce(&mut CodeAssembler) -> AsmResult,
) -> (u64, Vec<u8>) {
    let (c, _) = chunk_labels(bits, phys, ip, |a| f(a).map(|_| Vec::new()));
    c
}

/// [`chunk`], also returning the offsets of the labels `f` returns.
pub fn chunk_labels(
    bits: u32,
    phys: u64,
    ip: u64,
    f: impl FnOnce(&mut CodeAssembler) -> AsmResult<Vec<CodeLabel>>,
) -> ((u64, Vec<u8>), Vec<u64>) {
    let mut a = CodeAssembler::new(bits).unwrap();
    let labels = f(&mut a).unwrap();
    let r = a
        .assemble_options(ip, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .unwrap();
    let ips = labels.iter().map(|l| r.label_ip(l).unwrap()).collect();
    ((phys, r.inner.code_buffer), ips)
}

/// `JMP ptr16:32`, also from 16-bit code (operand-size prefix).
pub fn jmp_far32(a: &mut CodeAssembler, sel: u16, off: u32) -> AsmResult {
    a.add_instruction(Instruction::with_far_branch(Code::Jmp_ptr1632, sel, off)?)
}

/// Write the COM1 output of `s` (clobbers AL and DX).
pub fn print(a: &mut CodeAssembler, s: &str) -> AsmResult {
    testsuite::guest::print(a, s)
}

/// End the run with exit-port value `v`.
pub fn exit(a: &mut CodeAssembler, v: u32) -> AsmResult {
    testsuite::guest::exit(a, v)
}

/// Emit, behind a jump, a routine printing EAX in lowercase hex without
/// leading zeros (all registers preserved except flags). Works in 16- and
/// 32-bit code.
pub fn puthex32(a: &mut CodeAssembler) -> AsmResult<CodeLabel> {
    let mut over = a.create_label();
    let mut f = a.create_label();
    let mut skip = a.create_label();
    let mut lp = a.create_label();
    let mut digit = a.create_label();
    a.jmp(over)?;
    a.set_label(&mut f)?;
    a.push(eax)?;
    a.push(ebx)?;
    a.push(ecx)?;
    a.push(edx)?;
    a.mov(ebx, eax)?;
    a.mov(ecx, 8)?;
    a.mov(dx, 0x3f8)?;
    a.set_label(&mut skip)?;
    a.cmp(ecx, 1)?;
    a.je(lp)?;
    a.test(ebx, 0xf000_0000u32)?;
    a.jnz(lp)?;
    a.shl(ebx, 4)?;
    a.dec(ecx)?;
    a.jmp(skip)?;
    a.set_label(&mut lp)?;
    a.rol(ebx, 4)?;
    a.mov(al, bl)?;
    a.and(al, 15)?;
    a.add(al, b'0' as i32)?;
    a.cmp(al, b'9' as i32)?;
    a.jbe(digit)?;
    a.add(al, (b'a' - b'9' - 1) as i32)?;
    a.set_label(&mut digit)?;
    a.out(dx, al)?;
    a.dec(ecx)?;
    a.jnz(lp)?;
    a.pop(edx)?;
    a.pop(ecx)?;
    a.pop(ebx)?;
    a.pop(eax)?;
    a.ret()?;
    a.set_label(&mut over)?;
    a.nop()?;
    Ok(f)
}

/// The 64-bit [`puthex32`]: prints RAX.
pub fn puthex64(a: &mut CodeAssembler) -> AsmResult<CodeLabel> {
    let mut over = a.create_label();
    let mut f = a.create_label();
    let mut skip = a.create_label();
    let mut lp = a.create_label();
    let mut digit = a.create_label();
    a.jmp(over)?;
    a.set_label(&mut f)?;
    a.push(rax)?;
    a.push(rbx)?;
    a.push(rcx)?;
    a.push(rdx)?;
    a.mov(rbx, rax)?;
    a.mov(ecx, 16)?;
    a.mov(dx, 0x3f8)?;
    a.set_label(&mut skip)?;
    a.cmp(ecx, 1)?;
    a.je(lp)?;
    a.mov(rax, rbx)?;
    a.shr(rax, 60)?;
    a.jnz(lp)?;
    a.shl(rbx, 4)?;
    a.dec(ecx)?;
    a.jmp(skip)?;
    a.set_label(&mut lp)?;
    a.rol(rbx, 4)?;
    a.mov(al, bl)?;
    a.and(al, 15)?;
    a.add(al, b'0' as i32)?;
    a.cmp(al, b'9' as i32)?;
    a.jbe(digit)?;
    a.add(al, (b'a' - b'9' - 1) as i32)?;
    a.set_label(&mut digit)?;
    a.out(dx, al)?;
    a.dec(ecx)?;
    a.jnz(lp)?;
    a.pop(rdx)?;
    a.pop(rcx)?;
    a.pop(rbx)?;
    a.pop(rax)?;
    a.ret()?;
    a.set_label(&mut over)?;
    a.nop()?;
    Ok(f)
}

// ---------------------------------------------------------------------
// Descriptors and tables.

/// A segment descriptor. `access` is the byte at bits 40..=47 (P, DPL, S,
/// type); `flags` the nibble at bits 52..=55 (G, D/B, L, AVL).
pub fn desc(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let (base, limit) = (u64::from(base), u64::from(limit));
    (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (u64::from(access) << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (u64::from(flags & 0xf) << 52)
        | ((base >> 24) << 56)
}

/// A 64-bit TSS descriptor (two GDT slots), available (type 9).
pub fn tss64_desc(base: u64, limit: u32) -> [u64; 2] {
    [desc(base as u32, limit, 0x89, 0), base >> 32]
}

/// A 64-bit IDT gate (16 bytes as two quadwords).
pub fn gate64(sel: u16, target: u64, ist: u8, type_attr: u8) -> [u64; 2] {
    let lo = (target & 0xffff)
        | (u64::from(sel) << 16)
        | (u64::from(ist & 7) << 32)
        | (u64::from(type_attr) << 40)
        | (((target >> 16) & 0xffff) << 48);
    [lo, target >> 32]
}

/// A legacy IDT gate (interrupt gate 0x8e/0x86, trap gate 0x8f/0x87).
pub fn gate32(sel: u16, target: u32, type_attr: u8) -> u64 {
    let t = u64::from(target);
    (t & 0xffff) | (u64::from(sel) << 16) | (u64::from(type_attr) << 40) | ((t >> 16) << 48)
}

/// Little-endian bytes of a list of quadwords.
pub fn qwords(q: &[u64]) -> Vec<u8> {
    q.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A 10-byte pseudo-descriptor for LGDT/LIDT (the 6-byte form is a prefix).
pub fn pseudo(limit: u16, base: u64) -> Vec<u8> {
    let mut v = limit.to_le_bytes().to_vec();
    v.extend_from_slice(&base.to_le_bytes());
    v
}

// ---------------------------------------------------------------------
// 4-level page tables built by the host.

pub const P: u64 = 1;
pub const RW: u64 = 2;
pub const US: u64 = 4;
pub const PS: u64 = 0x80;
pub const NX: u64 = 1 << 63;

/// 4-level page tables at a fixed guest-physical address. Non-leaf entries
/// are P|RW|U/S, so the leaf alone decides the access rights.
pub struct PageTables {
    pub base: u64,
    data: Vec<u8>,
}

impl PageTables {
    pub fn new(base: u64) -> PageTables {
        PageTables {
            base,
            data: vec![0; 0x1000],
        }
    }

    fn get(&self, at: u64) -> u64 {
        let o = (at - self.base) as usize;
        u64::from_le_bytes(self.data[o..o + 8].try_into().unwrap())
    }

    fn set(&mut self, at: u64, v: u64) {
        let o = (at - self.base) as usize;
        self.data[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn alloc(&mut self) -> u64 {
        let at = self.base + self.data.len() as u64;
        self.data.resize(self.data.len() + 0x1000, 0);
        at
    }

    /// The table an entry points to, created if missing.
    fn next(&mut self, entry: u64) -> u64 {
        let e = self.get(entry);
        if e & P != 0 {
            assert!(e & PS == 0, "entry {entry:#x} is a large page");
            return e & 0x000f_ffff_ffff_f000;
        }
        let t = self.alloc();
        self.set(entry, t | P | RW | US);
        t
    }

    fn pd_entry(&mut self, va: u64) -> u64 {
        let pdpt = self.next(self.base + 8 * ((va >> 39) & 511));
        let pd = self.next(pdpt + 8 * ((va >> 30) & 511));
        pd + 8 * ((va >> 21) & 511)
    }

    /// Map the 2 MiB page at `va` to `pa` with `flags` (PS is added).
    pub fn map_2m(&mut self, va: u64, pa: u64, flags: u64) {
        let e = self.pd_entry(va);
        self.set(e, pa | flags | PS);
    }

    /// Identity-map `[0, size)` with 2 MiB pages.
    pub fn identity_2m(&mut self, size: u64, flags: u64) {
        for va in (0..size).step_by(0x20_0000) {
            self.map_2m(va, va, flags);
        }
    }

    /// The address of the 4 KiB PTE for `va`, splitting a 2 MiB page into
    /// 512 PTEs with the same rights if needed.
    pub fn pte_addr(&mut self, va: u64) -> u64 {
        let e = self.pd_entry(va);
        let old = self.get(e);
        if old & P != 0 && old & PS != 0 {
            let pt = self.alloc();
            let base = old & 0x000f_ffff_ffe0_0000;
            let flags = old & !(0x000f_ffff_ffe0_0000 | PS);
            for i in 0..512 {
                self.set(pt + 8 * i, (base + i * 0x1000) | flags);
            }
            self.set(e, pt | P | RW | US);
        }
        let pt = self.next(e);
        pt + 8 * ((va >> 12) & 511)
    }

    /// Map the 4 KiB page at `va` to `pa` with `flags` (0 = not present).
    pub fn map_4k(&mut self, va: u64, pa: u64, flags: u64) {
        let e = self.pte_addr(va);
        self.set(e, if flags == 0 { 0 } else { pa | flags });
    }

    pub fn blob(&self) -> (u64, Vec<u8>) {
        (self.base, self.data.clone())
    }
}

/// Assemble a chunk whose code needs the offsets of its own labels as
/// immediates (16- and 32-bit code has no RIP-relative `lea`): `f` runs
/// twice, first with zeros, then with the label offsets of the first pass.
/// Immediates must have fixed widths (`mov reg, imm`), so the layout is the
/// same in both passes (checked).
pub fn chunk_two_pass(
    bits: u32,
    phys: u64,
    ip: u64,
    n: usize,
    f: impl Fn(&mut CodeAssembler, &[u64]) -> AsmResult<Vec<CodeLabel>>,
) -> ((u64, Vec<u8>), Vec<u64>) {
    let zeros = vec![0u64; n];
    let (_, first) = chunk_labels(bits, phys, ip, |a| f(a, &zeros));
    assert_eq!(first.len(), n);
    let (c, second) = chunk_labels(bits, phys, ip, |a| f(a, &first));
    assert_eq!(first, second, "layout changed between passes");
    (c, second)
}

// ---------------------------------------------------------------------
// A small 64-bit kernel for the exception and privilege tests, installed
// by the body of a `testsuite::guest::long_mode` image: its own page
// tables, GDT with a TSS, an IDT whose 32 exception stubs record what the
// CPU delivered, SYSCALL/SYSRET, and a way to run user code.

pub mod k64 {
    use super::*;

    /// The record the exception handler fills (offsets below).
    pub const REC: u64 = 0x30_0000;
    pub const VEC: u64 = 0;
    pub const ERR: u64 = 8;
    pub const CR2: u64 = 16;
    pub const RIP: u64 = 24;
    pub const CS: u64 = 32;
    pub const RFL: u64 = 40;
    pub const RSP: u64 = 48;
    pub const SS: u64 = 56;
    /// Address of the RIP slot of the frame (where the CPU's pushes ended,
    /// above the error code).
    pub const FRAME: u64 = 64;
    pub const COUNT: u64 = 72;
    /// If non-zero, the handler resumes there (once).
    pub const FIXUP: u64 = 80;
    /// If non-zero (set while user code runs), a fault without fixup
    /// returns from `call_user`.
    pub const RETK: u64 = 88;
    pub const KSAVE: u64 = 96;
    /// If POKE_ADDR is non-zero the handler stores POKE_VAL there (once),
    /// so that IRETQ can retry the faulting instruction.
    pub const POKE_ADDR: u64 = 104;
    pub const POKE_VAL: u64 = 112;
    pub const USP: u64 = 120;
    /// What the SYSCALL entry saw.
    pub const SC_RCX: u64 = 128;
    pub const SC_R11: u64 = 136;
    pub const SC_RFL: u64 = 144;
    pub const SC_CS: u64 = 152;
    pub const SC_SS: u64 = 160;
    pub const SC_COUNT: u64 = 168;
    /// Free for tests.
    pub const SCRATCH: u64 = REC + 0x800;

    pub const GDT: u64 = 0x31_0000;
    pub const GDTR: u64 = GDT + 0x100;
    pub const IDTR: u64 = GDT + 0x110;
    pub const IDT: u64 = 0x31_1000;
    pub const TSS: u64 = 0x31_4000;
    /// I/O bitmap at TSS+0x68 for all 65536 ports, then the 0xff byte.
    pub const TSS_LIMIT: u32 = 0x68 + 0x2000;
    pub const RSP0_TOP: u64 = 0x33_0000;
    pub const IST1_TOP: u64 = 0x34_0000;
    pub const IST2_TOP: u64 = 0x34_8000;
    pub const SC_STACK: u64 = 0x35_0000;
    pub const SE_STACK: u64 = 0x36_0000;
    /// 2 MiB of 4 KiB pages the tests give their own rights.
    pub const TEST: u64 = 0x40_0000;
    /// A 2 MiB user page: code, data, stack.
    pub const USER: u64 = 0x60_0000;
    pub const USER_DATA: u64 = 0x68_0000;
    pub const USER_STACK: u64 = 0x70_0000;
    pub const PT_BASE: u64 = 0x80_0000;

    pub const KCODE: u16 = 0x08;
    pub const KDATA: u16 = 0x10;
    pub const UCODE32: u16 = 0x1b;
    pub const UDATA: u16 = 0x23;
    pub const UCODE64: u16 = 0x2b;
    pub const UDATA2: u16 = 0x33;
    pub const KCODE32: u16 = 0x38;
    pub const TSS_SEL: u16 = 0x40;
    /// A data segment whose descriptor is not present.
    pub const NP_DATA: u16 = 0x50;

    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const FMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    /// SYSCALL masks TF, IF, DF, NT and AC.
    pub const FMASK_VALUE: u32 = 0x4_4700;

    /// Host-side state: page tables the test may adjust, and the ports the
    /// TSS I/O bitmap allows.
    pub struct Setup {
        pub pt: PageTables,
        pub io_allow: Vec<u16>,
        pub extra: Vec<(u64, Vec<u8>)>,
    }

    impl Default for Setup {
        fn default() -> Self {
            Setup::new()
        }
    }

    impl Setup {
        /// Identity map of 4 GiB with supervisor 2 MiB pages, the user page
        /// at [`USER`], and [`TEST`] split into supervisor 4 KiB pages.
        pub fn new() -> Setup {
            let mut pt = PageTables::new(PT_BASE);
            pt.identity_2m(4 << 30, P | RW);
            pt.map_2m(USER, USER, P | RW | US);
            pt.pte_addr(TEST);
            Setup {
                pt,
                io_allow: Vec::new(),
                extra: Vec::new(),
            }
        }

        pub fn blobs(&self) -> Vec<(u64, Vec<u8>)> {
            let t = tss64_desc(TSS, TSS_LIMIT);
            let gdt = [
                0,
                desc(0, 0xf_ffff, 0x9a, 0xa), // 0x08 code64 DPL0
                desc(0, 0xf_ffff, 0x92, 0xc), // 0x10 data DPL0
                desc(0, 0xf_ffff, 0xfa, 0xc), // 0x18 code32 DPL3
                desc(0, 0xf_ffff, 0xf2, 0xc), // 0x20 data DPL3
                desc(0, 0xf_ffff, 0xfa, 0xa), // 0x28 code64 DPL3
                desc(0, 0xf_ffff, 0xf2, 0xc), // 0x30 data DPL3 (SYSEXITQ)
                desc(0, 0xf_ffff, 0x9a, 0xc), // 0x38 code32 DPL0
                t[0],
                t[1],
                desc(0, 0xf_ffff, 0x12, 0xc), // 0x50 data, not present
            ];
            let mut g = qwords(&gdt);
            g.resize(0x100, 0);
            let mut p = pseudo((gdt.len() * 8 - 1) as u16, GDT);
            p.resize(16, 0);
            g.extend(p);
            g.extend(pseudo(0xfff, IDT));

            let mut tss = vec![0u8; TSS_LIMIT as usize + 1];
            tss[4..12].copy_from_slice(&RSP0_TOP.to_le_bytes());
            tss[0x24..0x2c].copy_from_slice(&IST1_TOP.to_le_bytes());
            tss[0x2c..0x34].copy_from_slice(&IST2_TOP.to_le_bytes());
            tss[0x66..0x68].copy_from_slice(&0x68u16.to_le_bytes());
            for b in &mut tss[0x68..] {
                *b = 0xff;
            }
            for &port in &self.io_allow {
                tss[0x68 + usize::from(port / 8)] &= !(1 << (port % 8));
            }

            let mut v = vec![(GDT, g), (TSS, tss), self.pt.blob()];
            v.extend(self.extra.iter().cloned());
            v
        }
    }

    /// Labels of the kernel's routines.
    #[derive(Clone, Copy)]
    pub struct K64 {
        /// Print RAX in hex.
        pub hex: CodeLabel,
        /// Print the record: `v=.. e=.. [cr2=..] cs=.. [rip=ok|..] n=..\n`,
        /// where RBX is the expected RIP (0: not checked).
        pub report: CodeLabel,
        /// Reset the record (vector 0xff, count 0).
        pub clear: CodeLabel,
        /// Run user code: RDI entry, RSI stack, RDX RFLAGS. Returns when the
        /// user code makes SYSCALL 0 or faults (without fixup).
        pub call_user: CodeLabel,
        /// The common exception handler (stack: vector, error code, frame).
        pub common: CodeLabel,
        pub syscall_entry: CodeLabel,
        /// Return from `call_user` (what SYSCALL 0 does), from ring 0 on
        /// any stack.
        pub leave_user: CodeLabel,
    }

    fn has_error_code(v: u8) -> bool {
        matches!(v, 8 | 10..=14 | 17 | 21)
    }

    /// Emit code that writes the IDT gate for `vector` (CS = KCODE).
    pub fn set_gate(
        a: &mut CodeAssembler,
        vector: u8,
        target: CodeLabel,
        ist: u8,
        type_attr: u8,
    ) -> AsmResult {
        a.lea(rax, ptr(target))?;
        a.mov(rdi, IDT + 16 * u64::from(vector))?;
        a.mov(word_ptr(rdi), ax)?;
        a.mov(word_ptr(rdi + 2), KCODE as i32)?;
        a.mov(byte_ptr(rdi + 4), i32::from(ist))?;
        a.mov(byte_ptr(rdi + 5), i32::from(type_attr as i8))?;
        a.shr(rax, 16)?;
        a.mov(word_ptr(rdi + 6), ax)?;
        a.shr(rax, 16)?;
        a.mov(dword_ptr(rdi + 8), eax)?;
        a.mov(dword_ptr(rdi + 12), 0)
    }

    /// Emit a 64-bit WRMSR of a constant.
    pub fn wrmsr_imm(a: &mut CodeAssembler, msr: u32, v: u64) -> AsmResult {
        a.mov(ecx, msr)?;
        a.mov(eax, v as u32)?;
        a.mov(edx, (v >> 32) as u32)?;
        a.wrmsr()
    }

    /// Emit a WRMSR of RAX (clobbers RCX, RDX).
    pub fn wrmsr_rax(a: &mut CodeAssembler, msr: u32) -> AsmResult {
        a.mov(ecx, msr)?;
        a.mov(rdx, rax)?;
        a.shr(rdx, 32)?;
        a.wrmsr()
    }

    /// Emit an RDMSR into RAX (clobbers RCX, RDX).
    pub fn rdmsr_rax(a: &mut CodeAssembler, msr: u32) -> AsmResult {
        a.mov(ecx, msr)?;
        a.rdmsr()?;
        a.shl(rdx, 32)?;
        a.or(rax, rdx)
    }

    /// Emit the kernel: routines behind a jump, then the set-up code
    /// (CR3, GDT, TR, IDT, EFER.SCE|NXE, STAR/LSTAR/FMASK). The test body
    /// follows at CPL 0.
    pub fn install(a: &mut CodeAssembler) -> AsmResult<K64> {
        let mut over = a.create_label();
        a.jmp(over)?;
        let hex = puthex64(a)?;

        // Exception stubs.
        let mut common = a.create_label();
        let mut stubs = Vec::new();
        for v in 0..32u8 {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            if !has_error_code(v) {
                a.push(-1)?;
            }
            a.push(i32::from(v))?;
            a.jmp(common)?;
            stubs.push(l);
        }

        // The common handler.
        let mut nopoke = a.create_label();
        let mut nofix = a.create_label();
        let mut retk = a.create_label();
        let mut plain = a.create_label();
        a.set_label(&mut common)?;
        a.push(rax)?;
        a.push(rbx)?;
        a.mov(rbx, REC)?;
        for (slot, off) in [(16, VEC), (24, ERR), (32, RIP), (40, CS), (48, RFL)] {
            a.mov(rax, qword_ptr(rsp + slot))?;
            a.mov(qword_ptr(rbx + off), rax)?;
        }
        for (slot, off) in [(56, RSP), (64, SS)] {
            a.mov(rax, qword_ptr(rsp + slot))?;
            a.mov(qword_ptr(rbx + off), rax)?;
        }
        a.mov(rax, cr2)?;
        a.mov(qword_ptr(rbx + CR2), rax)?;
        a.lea(rax, qword_ptr(rsp + 32))?;
        a.mov(qword_ptr(rbx + FRAME), rax)?;
        a.inc(qword_ptr(rbx + COUNT))?;
        a.mov(rax, qword_ptr(rbx + POKE_ADDR))?;
        a.test(rax, rax)?;
        a.jz(nopoke)?;
        a.push(rcx)?;
        a.mov(rcx, qword_ptr(rbx + POKE_VAL))?;
        a.mov(qword_ptr(rax), rcx)?;
        a.pop(rcx)?;
        a.mov(qword_ptr(rbx + POKE_ADDR), 0)?;
        a.set_label(&mut nopoke)?;
        a.mov(rax, qword_ptr(rbx + FIXUP))?;
        a.test(rax, rax)?;
        a.jz(nofix)?;
        a.mov(qword_ptr(rsp + 32), rax)?;
        a.mov(qword_ptr(rbx + FIXUP), 0)?;
        a.jmp(plain)?;
        a.set_label(&mut nofix)?;
        a.cmp(qword_ptr(rbx + RETK), 0)?;
        a.jne(retk)?;
        a.set_label(&mut plain)?;
        a.pop(rbx)?;
        a.pop(rax)?;
        a.add(rsp, 16)?;
        a.iretq()?;
        // Abandon the frame and return from call_user.
        a.set_label(&mut retk)?;
        a.mov(qword_ptr(rbx + RETK), 0)?;
        a.mov(rsp, qword_ptr(rbx + KSAVE))?;
        a.mov(ax, KDATA as i32)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(ss, ax)?;
        a.ret()?;

        // clear
        let mut clear = a.create_label();
        a.set_label(&mut clear)?;
        a.mov(qword_ptr(REC + VEC), 0xff)?;
        for off in [ERR, CR2, RIP, CS, COUNT, FRAME] {
            a.mov(qword_ptr(REC + off), 0)?;
        }
        a.ret()?;

        // report
        let mut report = a.create_label();
        let mut e_hex = a.create_label();
        let mut e_done = a.create_label();
        let mut no_cr2 = a.create_label();
        let mut no_rip = a.create_label();
        let mut rip_bad = a.create_label();
        a.set_label(&mut report)?;
        a.push(rax)?;
        print(a, "v=")?;
        a.mov(rax, qword_ptr(REC + VEC))?;
        a.call(hex)?;
        print(a, " e=")?;
        a.mov(rax, qword_ptr(REC + ERR))?;
        a.cmp(rax, -1)?;
        a.jne(e_hex)?;
        print(a, "-")?;
        a.jmp(e_done)?;
        a.set_label(&mut e_hex)?;
        a.call(hex)?;
        a.set_label(&mut e_done)?;
        a.cmp(qword_ptr(REC + VEC), 14)?;
        a.jne(no_cr2)?;
        print(a, " cr2=")?;
        a.mov(rax, qword_ptr(REC + CR2))?;
        a.call(hex)?;
        a.set_label(&mut no_cr2)?;
        print(a, " cs=")?;
        a.mov(rax, qword_ptr(REC + CS))?;
        a.call(hex)?;
        a.test(rbx, rbx)?;
        a.jz(no_rip)?;
        print(a, " rip=")?;
        a.cmp(rbx, qword_ptr(REC + RIP))?;
        a.jne(rip_bad)?;
        print(a, "ok")?;
        a.jmp(no_rip)?;
        a.set_label(&mut rip_bad)?;
        a.mov(rax, qword_ptr(REC + RIP))?;
        a.call(hex)?;
        a.set_label(&mut no_rip)?;
        print(a, " n=")?;
        a.mov(rax, qword_ptr(REC + COUNT))?;
        a.call(hex)?;
        print(a, "\n")?;
        a.pop(rax)?;
        a.ret()?;

        // call_user
        let mut call_user = a.create_label();
        a.set_label(&mut call_user)?;
        a.mov(qword_ptr(REC + KSAVE), rsp)?;
        a.mov(qword_ptr(REC + RETK), 1)?;
        a.push(UDATA as i32)?;
        a.push(rsi)?;
        a.push(rdx)?;
        a.push(UCODE64 as i32)?;
        a.push(rdi)?;
        a.iretq()?;

        // SYSCALL entry: 0 = return from call_user, 1 = print RDI,
        // 2 = RDI + RSI, 4 = SYSRET (32-bit) to compatibility mode at RDI,
        // else -1.
        let mut syscall_entry = a.create_label();
        let mut sc_exit = a.create_label();
        let mut sc_print = a.create_label();
        let mut sc_add = a.create_label();
        let mut sc_ret = a.create_label();
        let mut sc_compat = a.create_label();
        a.set_label(&mut syscall_entry)?;
        a.mov(qword_ptr(REC + USP), rsp)?;
        a.mov(rsp, SC_STACK)?;
        a.pushfq()?;
        a.pop(qword_ptr(REC + SC_RFL))?;
        a.mov(qword_ptr(REC + SC_RCX), rcx)?;
        a.mov(qword_ptr(REC + SC_R11), r11)?;
        a.inc(qword_ptr(REC + SC_COUNT))?;
        a.push(rax)?;
        a.xor(eax, eax)?;
        a.mov(ax, cs)?;
        a.mov(qword_ptr(REC + SC_CS), rax)?;
        a.mov(ax, ss)?;
        a.mov(qword_ptr(REC + SC_SS), rax)?;
        a.pop(rax)?;
        a.test(rax, rax)?;
        a.je(sc_exit)?;
        a.cmp(rax, 1)?;
        a.je(sc_print)?;
        a.cmp(rax, 2)?;
        a.je(sc_add)?;
        a.cmp(rax, 4)?;
        a.je(sc_compat)?;
        a.mov(rax, -1i64)?;
        a.jmp(sc_ret)?;
        a.set_label(&mut sc_print)?;
        a.mov(rax, rdi)?;
        a.call(hex)?;
        print(a, "\n")?;
        a.xor(eax, eax)?;
        a.jmp(sc_ret)?;
        a.set_label(&mut sc_add)?;
        a.lea(rax, qword_ptr(rdi + rsi))?;
        a.set_label(&mut sc_ret)?;
        a.mov(rsp, qword_ptr(REC + USP))?;
        a.sysretq()?;
        a.set_label(&mut sc_compat)?;
        a.mov(rcx, rdi)?;
        a.mov(r11d, 2)?;
        a.mov(rsp, qword_ptr(REC + USP))?;
        a.sysret()?;
        a.set_label(&mut sc_exit)?;
        a.mov(qword_ptr(REC + RETK), 0)?;
        a.mov(rsp, qword_ptr(REC + KSAVE))?;
        a.mov(ax, KDATA as i32)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.ret()?;

        // Set-up.
        let mut reload = a.create_label();
        a.set_label(&mut over)?;
        a.mov(rax, PT_BASE)?;
        a.mov(cr3, rax)?;
        a.lgdt(ptr(GDTR))?;
        a.push(KCODE as i32)?;
        a.lea(rax, ptr(reload))?;
        a.push(rax)?;
        a.retf()?;
        a.set_label(&mut reload)?;
        a.mov(ax, KDATA as i32)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(ss, ax)?;
        a.xor(eax, eax)?;
        a.mov(fs, ax)?;
        a.mov(gs, ax)?;
        a.mov(ax, TSS_SEL as i32)?;
        a.ltr(ax)?;
        for (v, l) in stubs.iter().enumerate() {
            set_gate(a, v as u8, *l, if v == 8 { 1 } else { 0 }, 0x8e)?;
        }
        a.lidt(ptr(IDTR))?;
        // CR0.WP: the supervisor cannot write read-only pages.
        a.mov(rax, cr0)?;
        a.bts(rax, 16)?;
        a.mov(cr0, rax)?;
        a.mov(ecx, EFER)?;
        a.rdmsr()?;
        a.or(eax, 1 | (1 << 11))?;
        a.wrmsr()?;
        wrmsr_imm(a, STAR, (0x18u64 << 48) | (0x08u64 << 32))?;
        a.lea(rax, ptr(syscall_entry))?;
        wrmsr_rax(a, LSTAR)?;
        wrmsr_imm(a, FMASK, u64::from(FMASK_VALUE))?;
        Ok(K64 {
            hex,
            report,
            clear,
            call_user,
            common,
            syscall_entry,
            leave_user: sc_exit,
        })
    }

    /// Where the check expects the frame's RIP.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Rip {
        /// At the first instruction of the body (a fault).
        Fault,
        /// After the body (a trap).
        After,
        /// Not checked.
        Skip,
    }

    /// Emit a kernel-mode check: clear the record, arm the fixup (resume
    /// after the body) unless `retry`, run `body`, then print `name: ` and
    /// the report. Set-up belongs before the call (RAX and RBX are used).
    pub fn check(
        a: &mut CodeAssembler,
        k: &K64,
        name: &str,
        rip: Rip,
        retry: bool,
        body: impl FnOnce(&mut CodeAssembler) -> AsmResult,
    ) -> AsmResult {
        let mut at = a.create_label();
        let mut after = a.create_label();
        let mut resume = a.create_label();
        a.call(k.clear)?;
        if !retry {
            a.lea(rax, ptr(resume))?;
            a.mov(qword_ptr(REC + FIXUP), rax)?;
        }
        a.set_label(&mut at)?;
        body(a)?;
        a.set_label(&mut after)?;
        a.nop()?;
        a.set_label(&mut resume)?;
        a.mov(qword_ptr(REC + FIXUP), 0)?;
        print(a, name)?;
        print(a, ": ")?;
        match rip {
            Rip::Fault => a.lea(rbx, ptr(at))?,
            Rip::After => a.lea(rbx, ptr(after))?,
            Rip::Skip => a.xor(ebx, ebx)?,
        }
        a.call(k.report)
    }

    /// Emit: run user code at `entry` (RFLAGS `rflags`, stack
    /// [`USER_STACK`]) until it faults or makes SYSCALL 0, then print
    /// `name: ` and the report, expecting the frame RIP `rip` (0: none).
    pub fn user_check(
        a: &mut CodeAssembler,
        k: &K64,
        name: &str,
        entry: u64,
        rflags: u64,
        rip: u64,
    ) -> AsmResult {
        a.call(k.clear)?;
        a.mov(rdi, entry)?;
        a.mov(rsi, USER_STACK)?;
        a.mov(rdx, rflags)?;
        a.call(k.call_user)?;
        print(a, name)?;
        print(a, ": ")?;
        a.mov(rbx, rip)?;
        a.call(k.report)
    }

    /// Emit: print `text` then the qword at `addr` in hex.
    pub fn show(a: &mut CodeAssembler, k: &K64, text: &str, addr: u64) -> AsmResult {
        print(a, text)?;
        a.mov(rax, qword_ptr(addr))?;
        a.call(k.hex)
    }

    /// Emit: print `text` then RAX in hex (RAX preserved).
    pub fn show_rax(a: &mut CodeAssembler, k: &K64, text: &str) -> AsmResult {
        a.push(rax)?;
        print(a, text)?;
        a.pop(rax)?;
        a.call(k.hex)
    }

    /// Build the user chunk at [`USER`] and return its entry points.
    pub fn user_code(
        f: impl FnOnce(&mut CodeAssembler) -> AsmResult<Vec<CodeLabel>>,
    ) -> ((u64, Vec<u8>), Vec<u64>) {
        chunk_labels(64, USER, USER, f)
    }
}

/// Labels whose addresses 16- and 32-bit code needs as immediates, for
/// [`chunk_refs`]: declare an id, use [`Refs::addr`] anywhere, and
/// [`Refs::place`] it once at the instruction it names.
pub struct Refs<'p> {
    prev: &'p [u64],
    placed: Vec<Option<CodeLabel>>,
}

impl Refs<'_> {
    pub fn declare(&mut self) -> usize {
        self.placed.push(None);
        self.placed.len() - 1
    }

    /// The address of `id` (from the previous pass; 0 in the first).
    pub fn addr(&self, id: usize) -> u32 {
        self.prev.get(id).copied().unwrap_or(0) as u32
    }

    /// Put `id` on the next instruction.
    pub fn place(&mut self, a: &mut CodeAssembler, id: usize) -> AsmResult {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        self.placed[id] = Some(l);
        Ok(())
    }
}

/// Assemble code that uses [`Refs`]: `f` runs twice (the first pass learns
/// the addresses), and the layout must not change (checked). Returns the
/// chunk and the address of every declared id.
pub fn chunk_refs(
    bits: u32,
    phys: u64,
    ip: u64,
    f: impl Fn(&mut CodeAssembler, &mut Refs) -> AsmResult,
) -> ((u64, Vec<u8>), Vec<u64>) {
    let pass = |prev: &[u64]| {
        let mut a = CodeAssembler::new(bits).unwrap();
        let mut refs = Refs {
            prev,
            placed: Vec::new(),
        };
        f(&mut a, &mut refs).unwrap();
        let r = a
            .assemble_options(ip, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
            .unwrap();
        let ips: Vec<u64> = refs
            .placed
            .iter()
            .map(|l| {
                r.label_ip(l.as_ref().expect("label declared, never placed"))
                    .unwrap()
            })
            .collect();
        (r.inner.code_buffer, ips)
    };
    let (_, first) = pass(&[]);
    let (code, second) = pass(&first);
    assert_eq!(first, second, "layout changed between passes");
    ((phys, code), second)
}

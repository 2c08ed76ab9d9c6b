//! The KVM backend: the same machine on /dev/kvm through rust-vmm's
//! kvm-ioctls.
//!
//! The VM, its vCPU and its RAM live on a worker thread that executes the
//! commands of [`KvmBackend`]'s methods one at a time. That thread is what
//! the wall-clock cap interrupts: when a `run()` takes longer than the time
//! left, the caller marks the run expired and sends the worker a real-time
//! signal (repeatedly, until it answers) whose empty handler makes
//! `KVM_RUN` return `EINTR`; the worker then reports [`Exit::Limit`].

use crate::backend::{Backend, BackendError, Devices, Exit, RAM_SIZE};
use emu_core::{CpuidEntry, DTable, Regs, Segment, Sregs};
use kvm_bindings::{
    kvm_cpuid_entry2, kvm_dtable, kvm_regs, kvm_segment, kvm_sregs, kvm_userspace_memory_region,
    CpuId,
};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use memmap2::MmapMut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

/// Where KVM may put the three pages of the real-mode TSS on Intel hosts
/// (outside RAM, below the APIC).
const TSS_ADDR: usize = 0xfffb_d000;

enum Cmd {
    Write(u64, Vec<u8>),
    Read(u64, usize),
    SetCpuid(Vec<CpuidEntry>),
    SetRegs(Regs),
    GetRegs,
    SetSregs(Sregs),
    GetSregs,
    Run,
    /// The answer to a read exit.
    Fill(Vec<u8>),
}

enum Reply {
    Done,
    Data(Vec<u8>),
    Regs(Regs),
    Sregs(Sregs),
    Exit(Exit),
    /// The vCPU wants `len` bytes from a port (`mmio` false) or an address.
    Read {
        mmio: bool,
        addr: u64,
        len: usize,
    },
    Err(String),
}

/// One VM with one vCPU on /dev/kvm.
pub struct KvmBackend {
    tx: Option<Sender<Cmd>>,
    rx: Receiver<Reply>,
    worker: Option<JoinHandle<()>>,
    expired: Arc<AtomicBool>,
    signal: i32,
    timeout: Duration,
    deadline: Option<Instant>,
}

/// Whether /dev/kvm can be used here; the reason in one line if not.
pub fn available() -> Result<(), String> {
    let kvm = Kvm::new().map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    if kvm.get_api_version() != 12 {
        return Err(format!(
            "/dev/kvm has API version {}, not 12",
            kvm.get_api_version()
        ));
    }
    let vm = kvm
        .create_vm()
        .map_err(|e| format!("/dev/kvm: KVM_CREATE_VM failed: {e}"))?;
    vm.create_vcpu(0)
        .map_err(|e| format!("/dev/kvm: KVM_CREATE_VCPU failed: {e}"))?;
    Ok(())
}

extern "C" fn on_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// The signal that interrupts `KVM_RUN`, with its (empty) handler installed.
fn kick_signal() -> Result<i32, String> {
    static SIG: OnceLock<Result<i32, String>> = OnceLock::new();
    SIG.get_or_init(|| {
        let sig = SIGRTMIN();
        register_signal_handler(sig, on_signal)
            .map(|()| sig)
            .map_err(|e| format!("cannot install the KVM_RUN kick signal handler: {e}"))
    })
    .clone()
}

impl KvmBackend {
    /// A VM with [`RAM_SIZE`] of RAM at gpa 0 whose runs are cut after
    /// `timeout` of wall-clock time (counted from the first `run()`).
    pub fn new(timeout: Duration) -> Result<KvmBackend, BackendError> {
        let signal = kick_signal().map_err(BackendError)?;
        let (tx, worker_rx) = channel::<Cmd>();
        let (worker_tx, rx) = channel::<Reply>();
        let expired = Arc::new(AtomicBool::new(false));
        let flag = expired.clone();
        let worker = std::thread::Builder::new()
            .name("kvm-vcpu".into())
            .spawn(move || match Worker::new(flag) {
                Ok(mut w) => {
                    if worker_tx.send(Reply::Done).is_ok() {
                        w.serve(&worker_rx, &worker_tx);
                    }
                }
                Err(e) => {
                    let _ = worker_tx.send(Reply::Err(e));
                }
            })
            .map_err(|e| BackendError::new(format!("cannot start the vCPU thread: {e}")))?;
        let mut b = KvmBackend {
            tx: Some(tx),
            rx,
            worker: Some(worker),
            expired,
            signal,
            timeout,
            deadline: None,
        };
        match b.rx.recv() {
            Ok(Reply::Done) => Ok(b),
            Ok(Reply::Err(e)) => {
                b.shutdown();
                Err(BackendError(e))
            }
            _ => {
                b.shutdown();
                Err(BackendError::new("the vCPU thread ended"))
            }
        }
    }

    fn send(&self, cmd: Cmd) -> Result<(), BackendError> {
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(cmd).ok())
            .ok_or_else(|| BackendError::new("the vCPU thread ended"))
    }

    fn call(&self, cmd: Cmd) -> Result<Reply, BackendError> {
        self.send(cmd)?;
        match self.rx.recv() {
            Ok(Reply::Err(e)) => Err(BackendError(e)),
            Ok(r) => Ok(r),
            Err(_) => Err(BackendError::new("the vCPU thread ended")),
        }
    }

    /// Wait for the worker's answer to `Run`, kicking it out of `KVM_RUN`
    /// once the deadline has passed.
    fn wait_run(&self, deadline: Instant) -> Result<Reply, BackendError> {
        let gone = || BackendError::new("the vCPU thread ended");
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(r) => return Ok(r),
            Err(RecvTimeoutError::Disconnected) => return Err(gone()),
            Err(RecvTimeoutError::Timeout) => {}
        }
        self.expired.store(true, Ordering::SeqCst);
        let worker = self.worker.as_ref().ok_or_else(gone)?;
        loop {
            // A signal that lands while the worker is outside KVM_RUN is
            // lost, so keep kicking until it answers.
            worker
                .kill(self.signal)
                .map_err(|e| BackendError::new(format!("cannot signal the vCPU thread: {e}")))?;
            match self.rx.recv_timeout(Duration::from_millis(20)) {
                Ok(r) => return Ok(r),
                Err(RecvTimeoutError::Disconnected) => return Err(gone()),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn shutdown(&mut self) {
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for KvmBackend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Backend for KvmBackend {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn write_memory(&mut self, gpa: u64, data: &[u8]) -> Result<(), BackendError> {
        self.call(Cmd::Write(gpa, data.to_vec())).map(|_| ())
    }

    fn read_memory(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        match self.call(Cmd::Read(gpa, buf.len()))? {
            Reply::Data(d) => {
                buf.copy_from_slice(&d);
                Ok(())
            }
            _ => Err(BackendError::new("unexpected reply to a memory read")),
        }
    }

    fn set_cpuid(&mut self, entries: &[CpuidEntry]) -> Result<(), BackendError> {
        self.call(Cmd::SetCpuid(entries.to_vec())).map(|_| ())
    }

    fn set_regs(&mut self, regs: &Regs) -> Result<(), BackendError> {
        self.call(Cmd::SetRegs(*regs)).map(|_| ())
    }

    fn get_regs(&mut self) -> Result<Regs, BackendError> {
        match self.call(Cmd::GetRegs)? {
            Reply::Regs(r) => Ok(r),
            _ => Err(BackendError::new("unexpected reply to KVM_GET_REGS")),
        }
    }

    fn set_sregs(&mut self, sregs: &Sregs) -> Result<(), BackendError> {
        self.call(Cmd::SetSregs(*sregs)).map(|_| ())
    }

    fn get_sregs(&mut self) -> Result<Sregs, BackendError> {
        match self.call(Cmd::GetSregs)? {
            Reply::Sregs(s) => Ok(s),
            _ => Err(BackendError::new("unexpected reply to KVM_GET_SREGS")),
        }
    }

    fn run(&mut self, dev: &mut Devices) -> Result<Exit, BackendError> {
        if self.expired.load(Ordering::SeqCst) {
            return Ok(Exit::Limit);
        }
        let deadline = *self
            .deadline
            .get_or_insert_with(|| Instant::now() + self.timeout);
        self.send(Cmd::Run)?;
        match self.wait_run(deadline)? {
            Reply::Exit(e) => Ok(e),
            Reply::Read { mmio, addr, len } => {
                let mut data = vec![0u8; len];
                if mmio {
                    dev.read_mmio(addr, &mut data);
                } else {
                    dev.read_port(addr as u16, &mut data);
                }
                self.send(Cmd::Fill(data.clone()))?;
                match self.rx.recv() {
                    Ok(Reply::Done) => {}
                    Ok(Reply::Err(e)) => return Err(BackendError(e)),
                    _ => return Err(BackendError::new("unexpected reply to a read completion")),
                }
                Ok(if mmio {
                    Exit::MmioRead { gpa: addr, data }
                } else {
                    Exit::IoIn {
                        port: addr as u16,
                        data,
                    }
                })
            }
            Reply::Err(e) => Err(BackendError(e)),
            _ => Err(BackendError::new("unexpected reply to KVM_RUN")),
        }
    }
}

/// The KVM objects, owned by the vCPU thread. Field order is drop order:
/// the vCPU and the VM go before the RAM they map.
struct Worker {
    vcpu: VcpuFd,
    _vm: VmFd,
    _kvm: Kvm,
    mem: MmapMut,
    expired: Arc<AtomicBool>,
}

impl Worker {
    fn new(expired: Arc<AtomicBool>) -> Result<Worker, String> {
        let kvm = Kvm::new().map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
        let vm = kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?;
        vm.set_tss_address(TSS_ADDR)
            .map_err(|e| format!("KVM_SET_TSS_ADDR: {e}"))?;
        let mem = MmapMut::map_anon(RAM_SIZE as usize)
            .map_err(|e| format!("cannot map guest RAM: {e}"))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: RAM_SIZE,
            userspace_addr: mem.as_ptr() as u64,
        };
        // SAFETY: `userspace_addr` is the start of a private anonymous
        // mapping of exactly `memory_size` bytes, page aligned, owned by
        // this `Worker`. The mapping is never unmapped, moved or resized
        // while `vm` exists: `Worker`'s fields drop `vcpu` and `vm` before
        // `mem`. Rust code touches the bytes only through `mem` on this
        // thread, and never while KVM_RUN executes.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION: {e}"))?;
        let vcpu = vm
            .create_vcpu(0)
            .map_err(|e| format!("KVM_CREATE_VCPU: {e}"))?;
        Ok(Worker {
            vcpu,
            _vm: vm,
            _kvm: kvm,
            mem,
            expired,
        })
    }

    fn serve(&mut self, rx: &Receiver<Cmd>, tx: &Sender<Reply>) {
        while let Ok(cmd) = rx.recv() {
            let reply = match cmd {
                Cmd::Run => self.run(rx, tx),
                other => self.handle(other),
            };
            if let Some(r) = reply {
                if tx.send(r).is_err() {
                    return;
                }
            }
        }
    }

    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, String> {
        let end = gpa.checked_add(len as u64).filter(|&e| e <= RAM_SIZE);
        match end {
            Some(end) => Ok(gpa as usize..end as usize),
            None => Err(format!("{gpa:#x}+{len:#x} is outside guest RAM")),
        }
    }

    fn handle(&mut self, cmd: Cmd) -> Option<Reply> {
        let r = match cmd {
            Cmd::Write(gpa, data) => self.range(gpa, data.len()).map(|r| {
                self.mem[r].copy_from_slice(&data);
                Reply::Done
            }),
            Cmd::Read(gpa, len) => self
                .range(gpa, len)
                .map(|r| Reply::Data(self.mem[r].to_vec())),
            Cmd::SetCpuid(entries) => {
                let kv: Vec<kvm_cpuid_entry2> = entries
                    .iter()
                    .map(|e| kvm_cpuid_entry2 {
                        function: e.function,
                        index: e.index,
                        flags: if e.indexed {
                            kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX
                        } else {
                            0
                        },
                        eax: e.eax,
                        ebx: e.ebx,
                        ecx: e.ecx,
                        edx: e.edx,
                        ..Default::default()
                    })
                    .collect();
                CpuId::from_entries(&kv)
                    .map_err(|e| format!("CPUID table: {e:?}"))
                    .and_then(|c| {
                        self.vcpu
                            .set_cpuid2(&c)
                            .map_err(|e| format!("KVM_SET_CPUID2: {e}"))
                    })
                    .map(|()| Reply::Done)
            }
            Cmd::SetRegs(r) => self
                .vcpu
                .set_regs(&regs_to_kvm(&r))
                .map(|()| Reply::Done)
                .map_err(|e| format!("KVM_SET_REGS: {e}")),
            Cmd::GetRegs => self
                .vcpu
                .get_regs()
                .map(|r| Reply::Regs(regs_from_kvm(&r)))
                .map_err(|e| format!("KVM_GET_REGS: {e}")),
            Cmd::SetSregs(s) => self
                .vcpu
                .get_sregs()
                .and_then(|mut k| {
                    sregs_to_kvm(&s, &mut k);
                    self.vcpu.set_sregs(&k)
                })
                .map(|()| Reply::Done)
                .map_err(|e| format!("KVM_SET_SREGS: {e}")),
            Cmd::GetSregs => self
                .vcpu
                .get_sregs()
                .map(|s| Reply::Sregs(sregs_from_kvm(&s)))
                .map_err(|e| format!("KVM_GET_SREGS: {e}")),
            Cmd::Fill(_) => Err("read data sent without a read exit".to_string()),
            Cmd::Run => unreachable!("handled by serve"),
        };
        Some(r.unwrap_or_else(Reply::Err))
    }

    /// `KVM_RUN` until an exit the VMM sees. Read exits are answered
    /// through the channel while the exit's buffer is borrowed.
    fn run(&mut self, rx: &Receiver<Cmd>, tx: &Sender<Reply>) -> Option<Reply> {
        loop {
            if self.expired.load(Ordering::SeqCst) {
                return Some(Reply::Exit(Exit::Limit));
            }
            let exit = match self.vcpu.run() {
                Ok(VcpuExit::IoOut(port, data)) => Exit::IoOut {
                    port,
                    data: data.to_vec(),
                },
                Ok(VcpuExit::MmioWrite(gpa, data)) => Exit::MmioWrite {
                    gpa,
                    data: data.to_vec(),
                },
                Ok(VcpuExit::IoIn(port, buf)) => {
                    return fill(rx, tx, buf, false, port.into());
                }
                Ok(VcpuExit::MmioRead(gpa, buf)) => {
                    return fill(rx, tx, buf, true, gpa);
                }
                Ok(VcpuExit::Hlt) => Exit::Hlt,
                Ok(VcpuExit::Shutdown) => Exit::Shutdown,
                Ok(VcpuExit::InternalError) => self.internal_error("KVM_EXIT_INTERNAL_ERROR"),
                Ok(VcpuExit::FailEntry(reason, _)) => {
                    Exit::Other(format!("KVM_EXIT_FAIL_ENTRY, hardware reason {reason:#x}"))
                }
                Ok(VcpuExit::Intr) => continue,
                Ok(other) => Exit::Other(format!("{other:?}")),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                Err(e) => return Some(Reply::Err(format!("KVM_RUN: {e}"))),
            };
            return Some(Reply::Exit(exit));
        }
    }

    /// An internal error, described with the instruction at RIP.
    fn internal_error(&mut self, what: &str) -> Exit {
        let rip = self.vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
        let mut what = what.to_string();
        if let Ok(t) = self.vcpu.translate_gva(rip) {
            let pa = t.physical_address;
            if t.valid != 0 && pa < RAM_SIZE {
                let end = (pa + 15).min(RAM_SIZE) as usize;
                let bytes = &self.mem[pa as usize..end];
                what += &format!(" at {}", crate::backend::describe_bytes(rip, bytes));
            }
        }
        Exit::InternalError { rip, what }
    }
}

/// Hand a read exit to the VMM thread and copy its answer into `buf`.
fn fill(
    rx: &Receiver<Cmd>,
    tx: &Sender<Reply>,
    buf: &mut [u8],
    mmio: bool,
    addr: u64,
) -> Option<Reply> {
    tx.send(Reply::Read {
        mmio,
        addr,
        len: buf.len(),
    })
    .ok()?;
    match rx.recv() {
        Ok(Cmd::Fill(d)) if d.len() == buf.len() => {
            buf.copy_from_slice(&d);
            Some(Reply::Done)
        }
        Ok(_) => Some(Reply::Err("expected the data of a read exit".into())),
        Err(_) => None,
    }
}

fn regs_to_kvm(r: &Regs) -> kvm_regs {
    kvm_regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

fn regs_from_kvm(r: &kvm_regs) -> Regs {
    Regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

fn seg_to_kvm(s: &Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present,
        dpl: s.dpl,
        db: s.db,
        s: s.s,
        l: s.l,
        g: s.g,
        avl: s.avl,
        unusable: s.unusable,
        padding: 0,
    }
}

fn seg_from_kvm(s: &kvm_segment) -> Segment {
    Segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present,
        dpl: s.dpl,
        db: s.db,
        s: s.s,
        l: s.l,
        g: s.g,
        avl: s.avl,
        unusable: s.unusable,
    }
}

fn dt_to_kvm(d: &DTable) -> kvm_dtable {
    kvm_dtable {
        base: d.base,
        limit: d.limit,
        padding: [0; 3],
    }
}

fn dt_from_kvm(d: &kvm_dtable) -> DTable {
    DTable {
        base: d.base,
        limit: d.limit,
    }
}

/// Overwrite the architectural fields of `k` (a `KVM_GET_SREGS` result,
/// so the pending-interrupt bitmap stays as KVM has it).
fn sregs_to_kvm(s: &Sregs, k: &mut kvm_sregs) {
    k.cs = seg_to_kvm(&s.cs);
    k.ds = seg_to_kvm(&s.ds);
    k.es = seg_to_kvm(&s.es);
    k.fs = seg_to_kvm(&s.fs);
    k.gs = seg_to_kvm(&s.gs);
    k.ss = seg_to_kvm(&s.ss);
    k.tr = seg_to_kvm(&s.tr);
    k.ldt = seg_to_kvm(&s.ldt);
    k.gdt = dt_to_kvm(&s.gdt);
    k.idt = dt_to_kvm(&s.idt);
    k.cr0 = s.cr0;
    k.cr2 = s.cr2;
    k.cr3 = s.cr3;
    k.cr4 = s.cr4;
    k.cr8 = s.cr8;
    k.efer = s.efer;
    k.apic_base = s.apic_base;
}

fn sregs_from_kvm(k: &kvm_sregs) -> Sregs {
    Sregs {
        cs: seg_from_kvm(&k.cs),
        ds: seg_from_kvm(&k.ds),
        es: seg_from_kvm(&k.es),
        fs: seg_from_kvm(&k.fs),
        gs: seg_from_kvm(&k.gs),
        ss: seg_from_kvm(&k.ss),
        tr: seg_from_kvm(&k.tr),
        ldt: seg_from_kvm(&k.ldt),
        gdt: dt_from_kvm(&k.gdt),
        idt: dt_from_kvm(&k.idt),
        cr0: k.cr0,
        cr2: k.cr2,
        cr3: k.cr3,
        cr4: k.cr4,
        cr8: k.cr8,
        efer: k.efer,
        apic_base: k.apic_base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_conversions_round_trip() {
        let r = Regs {
            rax: 1,
            r15: 15,
            rip: 0x1234,
            rflags: 0x202,
            ..Regs::default()
        };
        assert_eq!(regs_from_kvm(&regs_to_kvm(&r)), r);
        let s = Sregs {
            cs: Segment::flat(8, 0xb, false, true),
            tr: Segment {
                selector: 0x28,
                type_: 0xb,
                present: 1,
                limit: 0x67,
                ..Segment::default()
            },
            gdt: DTable {
                base: 0x1000,
                limit: 23,
            },
            cr0: 0x8000_0011,
            cr3: 0x2000,
            cr4: 0x20,
            efer: 0x500,
            apic_base: 0xfee0_0900,
            ..Sregs::default()
        };
        let mut k = kvm_sregs::default();
        sregs_to_kvm(&s, &mut k);
        assert_eq!(sregs_from_kvm(&k), s);
    }
}

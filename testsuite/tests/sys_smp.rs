//! Several vCPUs: INIT-SIPI-SIPI start-up, LOCK XADD across threads, IPIs,
//! the APIC timer, and a memslot added while a vCPU runs.

use emu_core::{Vcpu, VcpuExit, Vm, VmConfig};
use iced_x86::code_asm::*;
use softmmu::{Backing, Gpa, MemFlags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use testsuite::guest::{self, APIC, DATA};

const MEM: u64 = 64 << 20;

fn boot(image: &[u8], vcpus: u32) -> (Vm, Vec<Vcpu>) {
    let vm = Vm::new(VmConfig {
        vcpus,
        ..VmConfig::default()
    });
    vm.set_user_memory_region(0, MemFlags::empty(), 0, MEM, Backing::Anonymous)
        .unwrap();
    let opts = loader::LoadOptions {
        mem_size: MEM,
        vcpus,
        ..Default::default()
    };
    let b = loader::load(image, vm.memory(), &opts).unwrap();
    let mut cpus: Vec<Vcpu> = (0..vcpus).map(|i| vm.create_vcpu(i)).collect();
    cpus[0].set_sregs(&b.sregs);
    cpus[0].set_regs(&b.regs);
    (vm, cpus)
}

/// Run every vCPU on its own thread until one writes the exit port.
/// Returns (serial output, exit value).
fn run_smp(vm: &Vm, cpus: &mut [Vcpu]) -> (String, u32) {
    run_smp_limit(vm, cpus, 200_000_000)
}

/// [`run_smp`] with an instruction budget of `limit` per vCPU (spin waits
/// of a vCPU whose partner's thread is descheduled on a busy host count).
fn run_smp_limit(vm: &Vm, cpus: &mut [Vcpu], limit: u64) -> (String, u32) {
    let out = Mutex::new(String::new());
    let result = Mutex::new(None);
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for v in cpus.iter_mut() {
            let (out, result, failed) = (&out, &result, &failed);
            s.spawn(move || {
                v.set_instruction_limit(Some(limit));
                let id = v.id();
                loop {
                    match v.run() {
                        VcpuExit::IoOut(0x3f8, d) => out.lock().unwrap().push(d[0] as char),
                        VcpuExit::IoOut(0xf4, d) => {
                            *result.lock().unwrap() =
                                Some(u32::from_le_bytes(d.try_into().unwrap()));
                            vm.request_stop();
                        }
                        VcpuExit::Interrupted => return,
                        VcpuExit::Hlt => {}
                        other => {
                            let msg = format!("vCPU {id}: unexpected exit {other:?}");
                            out.lock().unwrap().push_str(&msg);
                            failed.store(true, Ordering::SeqCst);
                            vm.request_stop();
                            return;
                        }
                    }
                }
            });
        }
    });
    let out = out.into_inner().unwrap();
    assert!(!failed.load(Ordering::SeqCst), "{out}");
    (
        out,
        result
            .into_inner()
            .unwrap()
            .expect("the guest never wrote the exit port"),
    )
}

/// Shared data of the SMP guests.
const COUNTER: u64 = DATA + 0x8000;
const ARRIVED: u64 = DATA + 0x8008;
const FLAG: u64 = DATA + 0x8010;
const IDT: u64 = DATA + 0x9000;
const ITERS: i32 = 20_000;

/// Emit: wait (PAUSE loop) until qword [addr] == value.
fn wait_for(a: &mut CodeAssembler, addr: u64, value: i32) -> Result<(), IcedError> {
    let mut l = a.create_label();
    a.set_label(&mut l)?;
    a.pause()?;
    a.mov(rax, qword_ptr(addr))?;
    a.cmp(rax, value)?;
    a.jne(l)
}

#[test]
fn four_vcpus_started_by_init_sipi_count_with_lock_xadd() {
    let img = guest::long_mode_smp(
        |a| {
            let puthex = guest::puthex_routine_after_jump(a)?;
            guest::start_aps(a)?;
            // The BSP counts too.
            a.mov(ecx, ITERS)?;
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            a.mov(eax, 1)?;
            a.lock().xadd(qword_ptr(COUNTER), rax)?;
            a.dec(ecx)?;
            a.jnz(l)?;
            wait_for(a, ARRIVED, 3)?;
            a.mov(rax, qword_ptr(COUNTER))?;
            a.call(puthex)?;
            guest::exit(a, 0)
        },
        |a| {
            a.mov(ecx, ITERS)?;
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            a.mov(eax, 1)?;
            a.lock().xadd(qword_ptr(COUNTER), rax)?;
            a.dec(ecx)?;
            a.jnz(l)?;
            a.lock().inc(qword_ptr(ARRIVED))?;
            let mut park = a.create_label();
            a.set_label(&mut park)?;
            a.cli()?;
            a.hlt()?;
            a.jmp(park)
        },
    )
    .unwrap();
    let (vm, mut cpus) = boot(&img, 4);
    let (out, code) = run_smp(&vm, &mut cpus);
    assert_eq!(code, 0);
    assert_eq!(out, format!("{:016X}\n", 4 * ITERS));
    for c in &cpus[1..] {
        assert!(
            c.instructions() > ITERS as u64 * 4,
            "vCPU {} did not run its share",
            c.id()
        );
    }
}

#[test]
fn fixed_ipi_from_bsp_reaches_the_ap_handler() {
    let img = guest::long_mode_smp(
        |a| {
            let mut handler = a.create_label();
            let mut start = a.create_label();
            a.jmp(start)?;
            a.set_label(&mut handler)?;
            a.iretq()?;
            a.set_label(&mut start)?;
            guest::set_idt_gate(a, IDT, 0x50, handler)?;
            guest::start_aps(a)?;
            wait_for(a, ARRIVED, 1)?;
            // Fixed IPI, vector 0x50, physical destination APIC ID 1.
            a.mov(rbx, APIC)?;
            a.mov(dword_ptr(rbx + 0x310), 1 << 24)?;
            a.mov(dword_ptr(rbx + 0x300), 0x4050)?;
            wait_for(a, FLAG, 0x50)?;
            guest::print(a, "ap took vector 0x50\n")?;
            guest::exit(a, 0)
        },
        |a| {
            let mut handler = a.create_label();
            let mut start = a.create_label();
            a.jmp(start)?;
            a.set_label(&mut handler)?;
            a.mov(qword_ptr(FLAG), 0x50)?;
            a.mov(rbx, APIC)?;
            a.mov(dword_ptr(rbx + 0xb0), 0)?; // EOI
            a.iretq()?;
            a.set_label(&mut start)?;
            guest::set_idt_gate(a, IDT, 0x50, handler)?;
            guest::load_idt(a, IDT)?;
            a.mov(rbx, APIC)?;
            a.mov(dword_ptr(rbx + 0xf0), 0x1ff)?; // SVR: software enable
            a.lock().inc(qword_ptr(ARRIVED))?;
            let mut idle = a.create_label();
            a.set_label(&mut idle)?;
            a.sti()?;
            a.hlt()?;
            a.jmp(idle)
        },
    )
    .unwrap();
    let (vm, mut cpus) = boot(&img, 2);
    let (out, code) = run_smp(&vm, &mut cpus);
    assert_eq!((out.as_str(), code), ("ap took vector 0x50\n", 0));
}

#[test]
fn periodic_apic_timer_interrupts_a_halted_vcpu() {
    let img = guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut handler = a.create_label();
        let mut start = a.create_label();
        a.jmp(start)?;
        a.set_label(&mut handler)?;
        a.lock().inc(qword_ptr(COUNTER))?;
        a.mov(rbx, APIC)?;
        a.mov(dword_ptr(rbx + 0xb0), 0)?; // EOI
        a.iretq()?;
        a.set_label(&mut start)?;
        guest::set_idt_gate(a, IDT, 0x40, handler)?;
        guest::load_idt(a, IDT)?;
        a.mov(rbx, APIC)?;
        a.mov(dword_ptr(rbx + 0xf0), 0x1ff)?; // SVR
        a.mov(dword_ptr(rbx + 0x3e0), 0xb)?; // divide by 1
        a.mov(dword_ptr(rbx + 0x320), 0x2_0040)?; // periodic, vector 0x40
        a.mov(dword_ptr(rbx + 0x380), 100_000)?; // initial count
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.sti()?;
        a.hlt()?;
        a.cmp(qword_ptr(COUNTER), 5)?;
        a.jb(l)?;
        a.cli()?;
        a.mov(dword_ptr(rbx + 0x320), 0x1_0000)?; // mask the timer
                                                  // Instructions retired between interrupts are few; the TSC moved by
                                                  // whole periods while halted.
        a.rdtsc()?;
        a.shl(rdx, 32)?;
        a.or(rax, rdx)?;
        a.call(puthex)?;
        a.mov(rax, qword_ptr(COUNTER))?;
        a.call(puthex)?;
        guest::exit(a, 0)
    })
    .unwrap();
    let (vm, mut cpus) = boot(&img, 1);
    let (out, code) = run_smp(&vm, &mut cpus);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let tsc = u64::from_str_radix(lines[0], 16).unwrap();
    assert_eq!(lines[1], "0000000000000005");
    // Five periods of 100000 ticks elapsed, and not six.
    assert!((500_000..600_000).contains(&tsc), "tsc {tsc}");
}

#[test]
fn memslot_added_while_the_vcpu_runs_is_seen_by_it() {
    const PROBE: u64 = 0x8000_0000;
    let img = guest::long_mode(|a| {
        let mut l = a.create_label();
        a.mov(rbx, PROBE)?;
        a.set_label(&mut l)?;
        a.mov(eax, dword_ptr(rbx))?;
        a.cmp(eax, 0x1234_5678)?;
        a.jne(l)?;
        guest::print(a, "ram appeared\n")?;
        guest::exit(a, 0)
    })
    .unwrap();
    let (vm, mut cpus) = boot(&img, 1);
    let mut v = cpus.remove(0);
    let mmio_reads = std::sync::atomic::AtomicU64::new(0);
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut out = String::new();
            v.set_instruction_limit(Some(50_000_000));
            loop {
                match v.run() {
                    VcpuExit::MmioRead(gpa, d) => {
                        assert_eq!(gpa, PROBE);
                        d.fill(0);
                        mmio_reads.fetch_add(1, Ordering::SeqCst);
                    }
                    VcpuExit::IoOut(0x3f8, d) => out.push(d[0] as char),
                    VcpuExit::IoOut(0xf4, _) => return out,
                    other => panic!("unexpected exit {other:?}"),
                }
            }
        });
        // Let the guest poll the MMIO address a while, then map RAM there.
        while mmio_reads.load(Ordering::SeqCst) < 100 {
            std::thread::yield_now();
        }
        vm.set_user_memory_region(1, MemFlags::empty(), PROBE, 0x1000, Backing::Anonymous)
            .unwrap();
        vm.memory()
            .write_phys(Gpa::new(PROBE), &0x1234_5678u32.to_le_bytes())
            .unwrap();
        h.join().unwrap()
    });
    assert_eq!(out, "ram appeared\n");
}

/// The store-buffer litmus test on two vCPU threads, [`PAIRS`] times per
/// round on fresh locations: each vCPU stores 1 to its own location, then
/// (with `fence`) runs MFENCE, then loads the other's. Both loads seeing 0
/// is what x86's TSO allows without a fence (a store waits in the store
/// buffer while the later load completes) and MFENCE forbids. Returns how
/// many pairs ended with both zero.
fn store_buffer_rounds(fence: bool, rounds: i32) -> u64 {
    const PAIRS: u64 = 16;
    // Pair k: X at BASE + 128k, Y 64 bytes above (own cache lines); the
    // results of both sides in R0/R1 tables.
    const BASE: u64 = DATA + 0xa000;
    const R0: u64 = DATA + 0xb000;
    const R1: u64 = DATA + 0xb800;
    const ARRIVE: u64 = DATA + 0xc000;
    const DONE: u64 = DATA + 0xc040;
    const BOTH: u64 = DATA + 0xc080;
    // Both sides: count rounds in R12, meet at ARRIVE = 2 * R12 (LOCK
    // INC), then for each pair: store, fence, load.
    let side = |a: &mut CodeAssembler, first: bool, mut top: CodeLabel| -> Result<(), IcedError> {
        let mut meet = a.create_label();
        a.set_label(&mut top)?;
        a.inc(r12)?;
        a.lea(r13, ptr(r12 + r12))?;
        a.lock().inc(qword_ptr(ARRIVE))?;
        a.set_label(&mut meet)?;
        a.cmp(qword_ptr(ARRIVE), r13)?;
        a.jb(meet)?;
        for k in 0..PAIRS {
            let (mine, other) = if first { (0, 64) } else { (64, 0) };
            let result = if first { R0 } else { R1 };
            a.mov(qword_ptr(BASE + 128 * k + mine), 1)?;
            if fence {
                a.mfence()?;
            }
            a.mov(rax, qword_ptr(BASE + 128 * k + other))?;
            a.mov(qword_ptr(result + 8 * k), rax)?;
        }
        Ok(())
    };
    let img = guest::long_mode_smp(
        |a| {
            let puthex = guest::puthex_routine_after_jump(a)?;
            guest::start_aps(a)?;
            a.xor(r12d, r12d)?;
            let top = a.create_label();
            side(a, true, top)?;
            let mut wait = a.create_label();
            a.set_label(&mut wait)?;
            a.cmp(qword_ptr(DONE), r12)?;
            a.jb(wait)?;
            for k in 0..PAIRS {
                let mut not_both = a.create_label();
                a.mov(rax, qword_ptr(R0 + 8 * k))?;
                a.or(rax, qword_ptr(R1 + 8 * k))?;
                a.jnz(not_both)?;
                a.inc(qword_ptr(BOTH))?;
                a.set_label(&mut not_both)?;
                a.mov(qword_ptr(BASE + 128 * k), 0)?;
                a.mov(qword_ptr(BASE + 128 * k + 64), 0)?;
            }
            a.cmp(r12d, rounds)?;
            a.jb(top)?;
            a.mov(rax, qword_ptr(BOTH))?;
            a.call(puthex)?;
            guest::exit(a, 0)
        },
        |a| {
            a.xor(r12d, r12d)?;
            let top = a.create_label();
            side(a, false, top)?;
            a.mov(qword_ptr(DONE), r12)?;
            a.cmp(r12d, rounds)?;
            a.jb(top)?;
            let mut idle = a.create_label();
            a.set_label(&mut idle)?;
            a.hlt()?;
            a.jmp(idle)
        },
    )
    .unwrap();
    let (vm, mut cpus) = boot(&img, 2);
    let (out, code) = run_smp_limit(&vm, &mut cpus, 4_000_000_000);
    assert_eq!(code, 0, "{out}");
    u64::from_str_radix(out.trim(), 16).unwrap()
}

/// MFENCE orders a vCPU's store before its later load as seen by another
/// vCPU thread. Without it, the outcome it forbids is printed (it happens
/// on x86 hosts when the two vCPU threads really run at the same time).
#[test]
fn mfence_orders_stores_before_loads_across_vcpu_threads() {
    let rounds = 4000;
    let fenced = store_buffer_rounds(true, rounds);
    let unfenced = store_buffer_rounds(false, rounds);
    println!(
        "store-buffer litmus, {rounds} rounds of 16 pairs: both loads 0 in {unfenced} pairs \
         without MFENCE, {fenced} with it"
    );
    assert_eq!(fenced, 0, "MFENCE let a load pass an earlier store");
}

//! The CPU's side of the MMU's invalidation rules: PAE's PDPTE registers
//! are loaded at MOV to CR3 (SDM Vol. 3A 4.4.1), which raises #GP(0) if a
//! present PDPTE sets a reserved bit, and are not read again on later
//! walks; INVPCID type 3 invalidates everything but global translations
//! (Vol. 2 INVPCID).
//!
//! Each guest reports what it saw with `out 0x80..` (and #GP handlers with
//! port 0x8d), then halts.

use emu_core::{DTable, Regs, Segment, Sregs, Vcpu, VcpuExit, Vm, VmConfig};
use iced_x86::code_asm::*;
use softmmu::{Backing, Gpa, MemFlags};

const CODE: u64 = 0x8000;
const GP_HANDLER: u64 = 0x9000;
const GDT: u64 = 0x6000;
const IDT: u64 = 0x5000;
const STACK: u64 = 0x7000;
/// A data page, and the two frames it is mapped to in turn.
const DATA: u64 = 0x10_0000;
const FRAME_A: u64 = 0x10_0000;
const FRAME_B: u64 = 0x11_0000;
const P: u64 = 1;
const RW: u64 = 2;
const G: u64 = 1 << 8;

fn put(vm: &Vm, gpa: u64, bytes: &[u8]) {
    vm.memory().write_phys(Gpa::new(gpa), bytes).unwrap();
}

fn put64(vm: &Vm, gpa: u64, v: u64) {
    put(vm, gpa, &v.to_le_bytes());
}

/// A VM with 2 MiB of RAM, a GDT (flat 32-bit code at 8, data at 0x10,
/// 64-bit code at 0x18), the marker values in both data frames, and `code`
/// at CODE.
fn vm(code: &[u8]) -> Vm {
    let vm = Vm::new(VmConfig::default());
    vm.set_user_memory_region(0, MemFlags::empty(), 0, 2 << 20, Backing::Anonymous)
        .unwrap();
    for (i, d) in [
        0,
        0x00cf_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0x00af_9b00_0000_ffff,
    ]
    .into_iter()
    .enumerate()
    {
        put64(&vm, GDT + 8 * i as u64, d);
    }
    put64(&vm, FRAME_A, 0xaaaa);
    put64(&vm, FRAME_B, 0xbbbb);
    put(&vm, CODE, code);
    vm
}

fn asm(bits: u32, body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bits).unwrap();
    body(&mut a).unwrap();
    a.assemble(CODE).unwrap()
}

/// Runs until HLT; returns the (port, value) of every OUT.
fn run(vcpu: &mut Vcpu) -> Vec<(u16, u32)> {
    vcpu.set_instruction_limit(Some(10_000));
    let mut outs = Vec::new();
    loop {
        match vcpu.run() {
            VcpuExit::IoOut(port, data) => {
                let mut b = [0; 4];
                b[..data.len()].copy_from_slice(data);
                outs.push((port, u32::from_le_bytes(b)));
            }
            VcpuExit::Hlt => return outs,
            other => panic!("unexpected exit {other:?} after {outs:x?}"),
        }
    }
}

/// 32-bit protected mode with PAE paging under CR3 = `root`, a #GP handler that
/// reports CR3 on port 0x8d, and a stack.
fn pae_vcpu(vm: &Vm, root: u64) -> Vcpu {
    let handler = {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, cr3).unwrap();
        a.out(0x8d, eax).unwrap();
        a.hlt().unwrap();
        a.assemble(GP_HANDLER).unwrap()
    };
    put(vm, GP_HANDLER, &handler);
    // Vector 13: a 32-bit interrupt gate to GP_HANDLER in segment 8.
    let gate = (GP_HANDLER & 0xffff) | 8 << 16 | 0x8e00 << 32 | (GP_HANDLER >> 16) << 48;
    put64(vm, IDT + 13 * 8, gate);
    let idt = DTable {
        base: IDT,
        limit: 0xff,
    };
    let code32 = Segment::flat(8, 0xb, true, false);
    let paging = Paging {
        cr0: 0x8000_0011, // PG, ET, PE
        cr3: root,
        cr4: 0x20, // PAE
        efer: 0,
    };
    paged_vcpu(vm, code32, idt, paging)
}

/// The paging registers of a test vCPU.
struct Paging {
    cr0: u64,
    cr3: u64,
    cr4: u64,
    efer: u64,
}

/// A vCPU at CODE with flat data segments, the GDT, stack, `code` as CS,
/// `idt` and the paging registers `p`.
fn paged_vcpu(vm: &Vm, code: Segment, idt: DTable, p: Paging) -> Vcpu {
    let mut vcpu = vm.create_vcpu(0);
    let data = Segment::flat(0x10, 0x3, true, false);
    let sregs = vcpu.get_sregs();
    vcpu.set_sregs(&Sregs {
        cs: code,
        ds: data,
        es: data,
        ss: data,
        fs: data,
        gs: data,
        gdt: DTable {
            base: GDT,
            limit: 0x1f,
        },
        idt,
        cr0: p.cr0,
        cr3: p.cr3,
        cr4: p.cr4,
        efer: p.efer,
        ..sregs
    });
    vcpu.set_regs(&Regs {
        rip: CODE,
        rsp: STACK,
        rflags: 2,
        ..Default::default()
    });
    vcpu
}

/// PAE tables identity-mapping the first 2 MiB: the PDPT at `pdpt`, its
/// entry 0 to a page directory at `pd`, whose entry 0 points to a page
/// table at `pt`, where DATA maps to `data_frame`.
fn pae_identity(vm: &Vm, pdpt: u64, pd: u64, pt: u64, data_frame: u64) {
    put64(vm, pdpt, pd | P);
    put64(vm, pd, pt | P | RW);
    for i in 0..512u64 {
        put64(vm, pt + 8 * i, (i << 12) | P | RW);
    }
    put64(vm, pt + 8 * (DATA >> 12), data_frame | P | RW);
}

#[test]
fn mov_cr3_to_a_pdpt_with_a_reserved_bit_raises_gp_and_changes_nothing() {
    let code = asm(32, |a| {
        a.mov(eax, 0x1020)?;
        a.mov(cr3, eax)?;
        a.mov(eax, 0x600d)?;
        a.out(0x80, eax)?;
        a.hlt()
    });
    let vm = vm(&code);
    pae_identity(&vm, 0x1000, 0x2000, 0x3000, FRAME_A);
    // PDPTE 0 of the PDPT at 0x1020 sets bit 1, reserved in a PDPTE.
    put64(&vm, 0x1020, 0x2000 | P | RW);
    let mut vcpu = pae_vcpu(&vm, 0x1000);
    assert_eq!(run(&mut vcpu), vec![(0x8d, 0x1000)]);
}

#[test]
fn pae_walks_use_the_pdptes_loaded_at_mov_cr3() {
    let code = asm(32, |a| {
        a.mov(eax, dword_ptr(DATA))?;
        a.out(0x80, eax)?;
        // PDPTE 0 now points to the second page directory, where DATA maps
        // to FRAME_B; INVLPG does not reload the PDPTE registers.
        a.mov(dword_ptr(0x1000u64), 0x4000 | P as u32)?;
        a.invlpg(dword_ptr(DATA))?;
        a.mov(eax, dword_ptr(DATA))?;
        a.out(0x81, eax)?;
        // MOV to CR3 does.
        a.mov(eax, cr3)?;
        a.mov(cr3, eax)?;
        a.mov(eax, dword_ptr(DATA))?;
        a.out(0x82, eax)?;
        a.hlt()
    });
    let vm = vm(&code);
    pae_identity(&vm, 0x1000, 0x2000, 0x3000, FRAME_A);
    pae_identity(&vm, 0xf000, 0x4000, 0xe000, FRAME_B);
    let mut vcpu = pae_vcpu(&vm, 0x1000);
    assert_eq!(
        run(&mut vcpu),
        vec![(0x80, 0xaaaa), (0x81, 0xaaaa), (0x82, 0xbbbb)]
    );
}

#[test]
fn mov_cr4_that_turns_on_pae_paging_loads_the_pdptes_or_faults() {
    // From 32-bit paging (one page directory, 4 MiB PSE page identity
    // mapping the first 4 MiB), CR4.PAE is set with CR3 at a PDPT whose
    // entry 0 sets a reserved bit: #GP, and CR4 stays as it was.
    let code = asm(32, |a| {
        a.mov(eax, cr4)?;
        a.or(eax, 0x20)?;
        a.mov(cr4, eax)?;
        a.mov(eax, 0x600d)?;
        a.out(0x80, eax)?;
        a.hlt()
    });
    let vm = vm(&code);
    // The PDE (a 4 MiB page at 0, writable) read as PDPTE 0 sets bits 1
    // and 7, both reserved there.
    put64(&vm, 0x1000, P | RW | 1 << 7);
    let mut vcpu = pae_vcpu(&vm, 0x1000);
    let mut sregs = vcpu.get_sregs();
    sregs.cr4 = 0x10; // PSE
    vcpu.set_sregs(&sregs);
    assert_eq!(run(&mut vcpu), vec![(0x8d, 0x1000)]);
    assert_eq!(vcpu.get_sregs().cr4, 0x10);
}

#[test]
fn invpcid_type_3_keeps_global_translations() {
    const DESC: u64 = 0x7800;
    let code = asm(64, |a| {
        a.mov(eax, dword_ptr(DATA))?;
        a.out(0x80, eax)?;
        // The global page is remapped without an invalidation...
        a.mov(rax, FRAME_B | P | RW | G)?;
        a.mov(qword_ptr(0x4000 + 8 * (DATA >> 12)), rax)?;
        // ...and INVPCID type 3 (all contexts, globals kept) leaves it.
        a.mov(eax, 3)?;
        a.invpcid(rax, xmmword_ptr(DESC))?;
        a.mov(eax, dword_ptr(DATA))?;
        a.out(0x81, eax)?;
        // Type 2 (globals included) drops it.
        a.mov(eax, 2)?;
        a.invpcid(rax, xmmword_ptr(DESC))?;
        a.mov(eax, dword_ptr(DATA))?;
        a.out(0x82, eax)?;
        a.hlt()
    });
    let vm = vm(&code);
    // 4-level tables: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000.
    put64(&vm, 0x1000, 0x2000 | P | RW);
    put64(&vm, 0x2000, 0x3000 | P | RW);
    put64(&vm, 0x3000, 0x4000 | P | RW);
    for i in 0..512u64 {
        put64(&vm, 0x4000 + 8 * i, (i << 12) | P | RW);
    }
    put64(&vm, 0x4000 + 8 * (DATA >> 12), FRAME_A | P | RW | G);
    let code64 = Segment::flat(0x18, 0xb, false, true);
    let paging = Paging {
        cr0: 0x8000_0011, // PG, ET, PE
        cr3: 0x1000,
        cr4: 0x20 | 0x80 | 1 << 17, // PAE, PGE, PCIDE
        efer: 0x500,                // LME, LMA
    };
    let mut vcpu = paged_vcpu(&vm, code64, DTable::default(), paging);
    assert_eq!(
        run(&mut vcpu),
        vec![(0x80, 0xaaaa), (0x81, 0xaaaa), (0x82, 0xbbbb)]
    );
}

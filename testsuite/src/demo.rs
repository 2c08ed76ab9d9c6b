//! The guest behind `softvm demo`: it boots into long mode, installs an
//! IDT, touches an unmapped page and maps it from its #PF handler, writes
//! and reads the new page, then talks to an MMIO device, narrating each
//! step over the serial port. The image is committed as
//! `tools/machine/src/demo.elf`; `tests/demo_image.rs` checks that it matches this
//! source (run it with `SOFTVM_BLESS=1` to rewrite the file).

use crate::guest::{self, DATA, PML4};
use iced_x86::code_asm::*;

/// The virtual address the demo touches first: just above the 4 GiB that
/// the boot page tables map, so its PDPT entry is not present.
pub const FAULT_VA: u64 = 0x1_0000_0000;
/// The page directory the #PF handler installs.
const NEW_PD: u64 = DATA + 0x1000;
/// Guest-physical memory the new mapping points at (2 MiB page).
const BACKING: u64 = 0x40_0000;
/// An address in no memslot: accesses there become MMIO exits.
pub const MMIO_ADDR: u64 = 0xfe00_0000;
/// The IDT.
const IDT: u64 = DATA + 0x3000;

/// Build the demo image.
pub fn demo_guest() -> Result<Vec<u8>, IcedError> {
    guest::long_mode(|a| {
        let puthex = guest::puthex_routine_after_jump(a)?;
        let mut pf_handler = a.create_label();
        let mut start = a.create_label();
        a.jmp(start)?;

        // #PF handler: print CR2 and the error code, map a 2 MiB page for
        // the faulting address, drop the error code and retry.
        a.set_label(&mut pf_handler)?;
        a.push(rax)?;
        guest::print(a, "demo: #PF handler: CR2 = ")?;
        a.mov(rax, cr2)?;
        a.call(puthex)?;
        guest::print(a, "demo: #PF handler: error code = ")?;
        a.mov(rax, qword_ptr(rsp + 8))?;
        a.call(puthex)?;
        guest::print(
            a,
            "demo: #PF handler: mapping a 2 MiB page there and retrying\n",
        )?;
        // PD[0] = BACKING | PS | RW | P; PDPT[4] = NEW_PD | RW | P.
        a.mov(rax, BACKING | 0x83)?;
        a.mov(qword_ptr(NEW_PD), rax)?;
        a.mov(rax, NEW_PD | 3)?;
        a.mov(qword_ptr(PML4 + 0x1000 + 4 * 8), rax)?;
        a.pop(rax)?;
        a.add(rsp, 8)?;
        a.iretq()?;

        a.set_label(&mut start)?;
        guest::print(a, "demo: hello from 64-bit long mode\n")?;
        // IDT entry 14 -> pf_handler (interrupt gate, CS 0x08).
        guest::set_idt_gate(a, IDT, 14, pf_handler)?;
        guest::load_idt(a, IDT)?;

        guest::print(a, "demo: writing to unmapped address 0x100000000\n")?;
        a.mov(rbx, FAULT_VA)?;
        a.mov(rax, 0x5eed_cafe_f00d_u64)?;
        a.mov(qword_ptr(rbx), rax)?;
        guest::print(a, "demo: the write went through; reading it back: ")?;
        a.mov(rax, qword_ptr(rbx))?;
        a.call(puthex)?;

        guest::print(a, "demo: writing 0x2a to the MMIO device at 0xfe000000\n")?;
        a.mov(rbx, MMIO_ADDR)?;
        a.mov(dword_ptr(rbx), 0x2a)?;
        guest::print(a, "demo: reading the MMIO device: ")?;
        a.mov(eax, dword_ptr(rbx))?;
        a.call(puthex)?;
        guest::print(a, "demo: done\n")?;
        guest::exit(a, 0)
    })
}

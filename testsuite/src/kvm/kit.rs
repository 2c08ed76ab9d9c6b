//! Building blocks for differential guests in 64-bit mode, on top of
//! [`crate::guest`]: an IDT whose handlers print what they caught and
//! resume where the guest asked, and routines that print registers.
//!
//! Memory used (all inside [`guest::DATA`], which RAM has zeroed):
//! the IDT at [`IDT`], its IDTR image at [`IDTR`], the resume slot at
//! [`RESUME`], a TSS at [`TSS`] and free scratch memory at [`SCRATCH`].
//!
//! Exception handlers print one line,
//! `#VV e=EEEE ip=IIIIIIII cs=CCCC cr2=XXXXXXXXXXXXXXXX`, then resume at the
//! address stored in [`RESUME`] (clearing it). An exception while the
//! slot is 0 is unexpected: the handler prints `unexpected` and ends the
//! run with exit code 3.
//!
//! [`Kit::enable_user`] and [`Kit::user`] run code in ring 3 (a TSS with
//! RSP0, user bits on the identity map of the first 4 MiB). Ring 3 cannot
//! print (IOPL is 0); it returns to the kernel by executing a marker
//! `ud2`, which the #UD handler recognizes. Ring 3 matters on the nested
//! /dev/kvm of CI machines (kvm_pvm): there, guest ring 0 code goes through
//! KVM's instruction emulator, which lacks many instructions, while ring 3
//! code runs natively on the host CPU.

use crate::guest;
use iced_x86::code_asm::*;

/// The IDT (256 16-byte gates).
pub const IDT: u64 = guest::DATA;
/// The IDTR image (limit, base) loaded by [`Kit::install`].
pub const IDTR: u64 = guest::DATA + 0x1000;
/// Where the guest stores the address handlers resume at.
pub const RESUME: u64 = guest::DATA + 0x1010;
/// A GDTR image for [`Kit::enable_user`].
pub const GDTR: u64 = guest::DATA + 0x1040;
/// Exceptions counted by the common handler.
pub const EXC_COUNT: u64 = guest::DATA + 0x1018;
/// Kernel RSP saved by [`Kit::user`] while ring 3 runs.
pub const KSAVE_RSP: u64 = guest::DATA + 0x1020;
/// Where the kernel continues when ring 3 executes the marker `ud2`.
pub const UD_RETURN: u64 = guest::DATA + 0x1028;
/// Address of the marker `ud2` of the current ring-3 body.
pub const UD_MARK: u64 = guest::DATA + 0x1030;
/// A 64-bit TSS (104 bytes), for guests that enter ring 3.
pub const TSS: u64 = guest::DATA + 0x1100;
/// 64 KiB of free scratch memory.
pub const SCRATCH: u64 = guest::DATA + 0x1_0000;
/// Top of a second stack, for ring 0 entries from ring 3 (RSP0).
pub const KSTACK_TOP: u64 = guest::DATA + 0x3_0000;
/// Top of a stack for ring 3.
pub const USTACK_TOP: u64 = guest::DATA + 0x4_0000;

/// Vectors whose exceptions push an error code.
pub fn has_error_code(v: u8) -> bool {
    matches!(v, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Labels of the routines [`Kit::install`] emitted.
pub struct Kit {
    /// Prints the low CL hex digits of RAX (preserves registers but flags).
    pub hexn: CodeLabel,
    /// The common exception handler (entered with vector and error code
    /// pushed).
    pub common: CodeLabel,
}

impl Kit {
    /// Emit the routines (jumped over), gates 0..=31 of the IDT and LIDT.
    /// Uses RAX; call it first in a body.
    pub fn install(a: &mut CodeAssembler) -> Result<Kit, IcedError> {
        let mut over = a.create_label();
        a.jmp(over)?;
        let hexn = hexn_routine(a)?;
        let mut common = a.create_label();
        let mut stubs = Vec::new();
        for v in 0u8..32 {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            if !has_error_code(v) {
                a.push(0)?;
            }
            a.push(i32::from(v))?;
            a.jmp(common)?;
            stubs.push(l);
        }
        let kit_common = {
            a.set_label(&mut common)?;
            common_handler(a, hexn)?;
            common
        };
        a.set_label(&mut over)?;
        for (v, l) in stubs.iter().enumerate() {
            set_gate(a, v as u8, *l, 0)?;
        }
        a.mov(word_ptr(IDTR), 0xfff)?;
        a.mov(rax, IDT)?;
        a.mov(qword_ptr(IDTR + 2), rax)?;
        a.lidt(ptr(IDTR))?;
        Ok(Kit {
            hexn,
            common: kit_common,
        })
    }

    /// Prepare ring 3: a GDT with a TSS at selector 0x30 (RSP0 =
    /// [`KSTACK_TOP`]), LTR, and the user bit on the paging entries of the
    /// first 4 MiB (code, stacks, kit data, scratch). Uses RAX.
    pub fn enable_user(&self, a: &mut CodeAssembler) -> Result<(), IcedError> {
        let gdt = guest::GDT;
        let low = 0x67 | ((TSS & 0xff_ffff) << 16) | (0x89u64 << 40) | (((TSS >> 24) & 0xff) << 56);
        a.mov(rax, low)?;
        a.mov(qword_ptr(gdt + 0x30), rax)?;
        a.mov(qword_ptr(gdt + 0x38), 0)?;
        a.mov(word_ptr(GDTR), 0x3f)?;
        a.mov(rax, gdt)?;
        a.mov(qword_ptr(GDTR + 2), rax)?;
        a.lgdt(ptr(GDTR))?;
        a.mov(rax, KSTACK_TOP)?;
        a.mov(qword_ptr(TSS + 4), rax)?;
        a.mov(eax, 0x30)?;
        a.ltr(ax)?;
        a.or(qword_ptr(guest::PML4), 4)?;
        a.or(qword_ptr(guest::PML4 + 0x1000), 4)?;
        a.or(qword_ptr(guest::PML4 + 0x2000), 4)?;
        a.or(qword_ptr(guest::PML4 + 0x2008), 4)?;
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)
    }

    /// Run `body` in ring 3 (64-bit code 0x2b, stack 0x23 at
    /// [`USTACK_TOP`], RFLAGS 0x2), then continue in ring 0 with the
    /// general registers as `body` left them (RFLAGS are not kept; DS, ES,
    /// FS and GS are reloaded with 0x10, SS stays null). Needs
    /// [`Kit::enable_user`]. Exceptions in `body` go through the IDT as
    /// usual ([`expect_fault`] works in ring 3).
    pub fn user(
        &self,
        a: &mut CodeAssembler,
        body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    ) -> Result<(), IcedError> {
        let mut ring3 = a.create_label();
        let mut marker = a.create_label();
        let mut back = a.create_label();
        a.push(rax)?;
        a.lea(rax, ptr(back))?;
        a.mov(qword_ptr(UD_RETURN), rax)?;
        a.lea(rax, ptr(marker))?;
        a.mov(qword_ptr(UD_MARK), rax)?;
        a.pop(rax)?;
        a.mov(qword_ptr(KSAVE_RSP), rsp)?;
        a.push(0x23)?;
        a.push(USTACK_TOP as i32)?;
        a.push(2)?;
        a.push(0x2b)?;
        a.push(rax)?;
        a.lea(rax, ptr(ring3))?;
        a.xchg(qword_ptr(rsp), rax)?;
        a.iretq()?;
        a.set_label(&mut ring3)?;
        body(a)?;
        a.set_label(&mut marker)?;
        a.ud2()?;
        a.set_label(&mut back)?;
        // IRETQ to ring 3 nulled DS, ES, FS and GS (their DPL is 0). The
        // nested kvm_pvm /dev/kvm of CI machines does not model that for
        // the state ring 0 sees afterwards, so reload them: what ring 3
        // saw is checked by the guests themselves.
        a.push(rax)?;
        a.mov(eax, 0x10)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(fs, ax)?;
        a.mov(gs, ax)?;
        a.pop(rax)
    }

    /// Print `src` (any 64-bit register, RSP excluded) as `digits` hex
    /// digits. Preserves every register; flags are clobbered.
    pub fn hex(
        &self,
        a: &mut CodeAssembler,
        src: AsmRegister64,
        digits: u32,
    ) -> Result<(), IcedError> {
        a.push(rax)?;
        a.push(rcx)?;
        if src != rax {
            a.mov(rax, src)?;
        }
        a.mov(cl, digits)?;
        a.call(self.hexn)?;
        a.pop(rcx)?;
        a.pop(rax)?;
        Ok(())
    }

    /// Print `name=` and `src` as 16 hex digits, then a newline.
    pub fn show(
        &self,
        a: &mut CodeAssembler,
        name: &str,
        src: AsmRegister64,
    ) -> Result<(), IcedError> {
        a.push(rax)?;
        a.push(rdx)?;
        a.push(src)?;
        print(a, &format!("{name}="))?;
        a.pop(rax)?;
        self.hex(a, rax, 16)?;
        print(a, "\n")?;
        a.pop(rdx)?;
        a.pop(rax)?;
        Ok(())
    }

    /// Print the qword at absolute address `addr` as `name=...`.
    pub fn show_mem(&self, a: &mut CodeAssembler, name: &str, addr: u64) -> Result<(), IcedError> {
        a.push(rax)?;
        a.mov(rax, qword_ptr(addr))?;
        self.show(a, name, rax)?;
        a.pop(rax)?;
        Ok(())
    }

    /// Print RFLAGS masked with `mask` as `name=....` (4 digits).
    pub fn show_flags(
        &self,
        a: &mut CodeAssembler,
        name: &str,
        mask: u32,
    ) -> Result<(), IcedError> {
        a.pushfq()?;
        a.push(rax)?;
        a.push(rdx)?;
        print(a, &format!("{name}="))?;
        a.mov(rax, qword_ptr(rsp + 16))?;
        a.and(eax, mask)?;
        self.hex(a, rax, 4)?;
        print(a, "\n")?;
        a.pop(rdx)?;
        a.pop(rax)?;
        a.popfq()?;
        Ok(())
    }
}

/// Emit `body`, which is expected to fault: the handler resumes after it.
/// Registers and flags are preserved up to `body`.
pub fn expect_fault(
    a: &mut CodeAssembler,
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<(), IcedError> {
    let mut after = a.create_label();
    a.push(rax)?;
    a.lea(rax, ptr(after))?;
    a.mov(qword_ptr(RESUME), rax)?;
    a.pop(rax)?;
    body(a)?;
    a.set_label(&mut after)?;
    a.nop()?;
    Ok(())
}

/// Emit code that points gate `v` at `handler` (an interrupt gate, code
/// selector 0x08, privilege `dpl`). Uses RAX.
pub fn set_gate(
    a: &mut CodeAssembler,
    v: u8,
    handler: CodeLabel,
    dpl: u8,
) -> Result<(), IcedError> {
    let at = IDT + u64::from(v) * 16;
    a.lea(rax, ptr(handler))?;
    a.mov(word_ptr(at), ax)?;
    a.mov(word_ptr(at + 2), 0x08)?;
    a.mov(word_ptr(at + 4), 0x8e00 | (u32::from(dpl) << 13))?;
    a.shr(rax, 16)?;
    a.mov(word_ptr(at + 6), ax)?;
    a.shr(rax, 16)?;
    a.mov(dword_ptr(at + 8), eax)?;
    Ok(())
}

/// [`guest::print`], preserving RAX and RDX.
pub fn print(a: &mut CodeAssembler, s: &str) -> Result<(), IcedError> {
    a.push(rax)?;
    a.push(rdx)?;
    guest::print(a, s)?;
    a.pop(rdx)?;
    a.pop(rax)?;
    Ok(())
}

/// `hexn`: print the low CL hex digits of RAX.
fn hexn_routine(a: &mut CodeAssembler) -> Result<CodeLabel, IcedError> {
    let mut f = a.create_label();
    let mut lp = a.create_label();
    let mut digit = a.create_label();
    a.set_label(&mut f)?;
    a.pushfq()?;
    a.push(rax)?;
    a.push(rbx)?;
    a.push(rcx)?;
    a.push(rdx)?;
    a.mov(rbx, rax)?;
    a.movzx(ecx, cl)?;
    a.lea(ecx, ptr(rcx * 4 - 4))?;
    a.mov(dx, 0x3f8)?;
    a.set_label(&mut lp)?;
    a.mov(rax, rbx)?;
    a.shr(rax, cl)?;
    a.and(eax, 15)?;
    a.add(al, b'0' as i32)?;
    a.cmp(al, b'9' as i32)?;
    a.jbe(digit)?;
    a.add(al, 7)?;
    a.set_label(&mut digit)?;
    a.out(dx, al)?;
    a.sub(ecx, 4)?;
    a.jge(lp)?;
    a.pop(rdx)?;
    a.pop(rcx)?;
    a.pop(rbx)?;
    a.pop(rax)?;
    a.popfq()?;
    a.ret()?;
    Ok(f)
}

/// The common handler: stack holds vector, error code, then the frame.
fn common_handler(a: &mut CodeAssembler, hexn: CodeLabel) -> Result<(), IcedError> {
    let hex = |a: &mut CodeAssembler, digits: u32| -> Result<(), IcedError> {
        a.mov(cl, digits)?;
        a.call(hexn)
    };
    a.push(rax)?;
    a.push(rcx)?;
    a.push(rdx)?;
    // [rsp+24] vector, +32 error code, +40 RIP, +48 CS, +56 RFLAGS, +64 RSP.
    // The marker ud2 of a ring-3 body: back to the kernel, registers as
    // ring 3 left them.
    let mut not_marker = a.create_label();
    a.cmp(qword_ptr(rsp + 24), 6)?;
    a.jne(not_marker)?;
    a.mov(rax, qword_ptr(rsp + 40))?;
    a.cmp(rax, qword_ptr(UD_MARK))?;
    a.jne(not_marker)?;
    a.pop(rdx)?;
    a.pop(rcx)?;
    a.pop(rax)?;
    a.mov(rsp, qword_ptr(KSAVE_RSP))?;
    a.jmp(qword_ptr(UD_RETURN))?;
    a.set_label(&mut not_marker)?;
    a.inc(qword_ptr(EXC_COUNT))?;
    guest::print(a, "#")?;
    a.mov(rax, qword_ptr(rsp + 24))?;
    hex(a, 2)?;
    guest::print(a, " e=")?;
    a.mov(rax, qword_ptr(rsp + 32))?;
    hex(a, 4)?;
    guest::print(a, " ip=")?;
    a.mov(rax, qword_ptr(rsp + 40))?;
    hex(a, 8)?;
    guest::print(a, " cs=")?;
    a.mov(rax, qword_ptr(rsp + 48))?;
    hex(a, 4)?;
    guest::print(a, " cr2=")?;
    a.mov(rax, cr2)?;
    hex(a, 16)?;
    guest::print(a, "\n")?;
    let mut fatal = a.create_label();
    a.mov(rax, qword_ptr(RESUME))?;
    a.test(rax, rax)?;
    a.jz(fatal)?;
    a.mov(qword_ptr(rsp + 40), rax)?;
    a.mov(qword_ptr(RESUME), 0)?;
    a.pop(rdx)?;
    a.pop(rcx)?;
    a.pop(rax)?;
    a.add(rsp, 16)?;
    a.iretq()?;
    a.set_label(&mut fatal)?;
    guest::print(a, "unexpected\n")?;
    guest::exit(a, 3)?;
    let mut l = a.create_label();
    a.set_label(&mut l)?;
    a.hlt()?;
    a.jmp(l)?;
    Ok(())
}

/// Slots where ring-3 code leaves values for the kernel to print.
pub const STASH: u64 = SCRATCH + 0xf000;

/// Values recorded in ring 3 (which cannot print) into [`STASH`] slots,
/// printed by the kernel afterwards with their names.
#[derive(Default)]
pub struct Stash {
    names: Vec<String>,
}

impl Stash {
    fn slot(&mut self, name: &str) -> u64 {
        self.names.push(name.to_string());
        assert!(self.names.len() <= 512, "too many stashed values");
        STASH + 8 * (self.names.len() as u64 - 1)
    }

    /// Record `src` (flags preserved).
    pub fn put(
        &mut self,
        a: &mut CodeAssembler,
        name: &str,
        src: AsmRegister64,
    ) -> Result<(), IcedError> {
        let at = self.slot(name);
        a.mov(qword_ptr(at), src)
    }

    /// Record the qword at `addr`.
    pub fn mem(&mut self, a: &mut CodeAssembler, name: &str, addr: u64) -> Result<(), IcedError> {
        let at = self.slot(name);
        a.push(rax)?;
        a.mov(rax, qword_ptr(addr))?;
        a.mov(qword_ptr(at), rax)?;
        a.pop(rax)
    }

    /// Record RFLAGS masked with `mask`.
    pub fn flags(&mut self, a: &mut CodeAssembler, name: &str, mask: u32) -> Result<(), IcedError> {
        let at = self.slot(name);
        a.pushfq()?;
        a.push(rax)?;
        a.mov(rax, qword_ptr(rsp + 8))?;
        a.and(eax, mask)?;
        a.mov(qword_ptr(at), rax)?;
        a.pop(rax)?;
        a.popfq()
    }

    /// Print every recorded value (kernel mode) and forget them.
    pub fn print(&mut self, a: &mut CodeAssembler, k: &Kit) -> Result<(), IcedError> {
        for (i, name) in self.names.iter().enumerate() {
            k.show_mem(a, name, STASH + 8 * i as u64)?;
        }
        self.names.clear();
        Ok(())
    }
}

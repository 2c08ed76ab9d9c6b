//! Guest programs built in Rust with iced-x86's assembler, so no external
//! toolchain is needed at test time.
//!
//! [`long_mode`] wraps a 64-bit body in a multiboot image whose 32-bit
//! prelude enters long mode the way the conformance guests do: identity map
//! of the first 4 GiB with 2 MiB pages, a GDT with a 64-bit code segment at
//! 0x08 and a data segment at 0x10, RSP at [`STACK_TOP`], interrupts off.

use crate::image::{self, Segment};
use iced_x86::code_asm::*;

/// Where the image is loaded (the multiboot header is at its start).
pub const LOAD: u64 = 0x10_0000;
/// Where the 64-bit body starts.
pub const BODY: u64 = 0x10_2000;
/// Page tables: PML4, PDPT, then four page directories.
pub const PML4: u64 = 0x20_0000;
/// The GDT used after the switch.
pub const GDT: u64 = 0x20_8000;
/// Top of the boot stack (grows down from here).
pub const STACK_TOP: u64 = 0x30_0000;
/// Free RAM for bodies to use as data, above the stack.
pub const DATA: u64 = 0x30_0000;

/// The identity page tables and the GDT, as data loaded at [`PML4`].
fn tables() -> Vec<u8> {
    let mut t = vec![0u8; (GDT - PML4) as usize + 0x1000];
    let put = |t: &mut Vec<u8>, at: u64, v: u64| {
        let at = at as usize;
        t[at..at + 8].copy_from_slice(&v.to_le_bytes());
    };
    put(&mut t, 0, (PML4 + 0x1000) | 3);
    for i in 0..4u64 {
        put(&mut t, 0x1000 + i * 8, (PML4 + 0x2000 + i * 0x1000) | 3);
        for j in 0..512u64 {
            let addr = (i << 30) | (j << 21);
            put(&mut t, 0x2000 + i * 0x1000 + j * 8, addr | 0x83);
        }
    }
    let g = GDT - PML4;
    put(&mut t, g + 8, 0x00af_9a00_0000_ffff); // 0x08: 64-bit code, DPL 0
    put(&mut t, g + 16, 0x00cf_9200_0000_ffff); // 0x10: data, DPL 0
    put(&mut t, g + 24, 0x00cf_fa00_0000_ffff); // 0x18: 32-bit code, DPL 3
    put(&mut t, g + 32, 0x00cf_f200_0000_ffff); // 0x20: data, DPL 3
    put(&mut t, g + 40, 0x00af_fa00_0000_ffff); // 0x28: 64-bit code, DPL 3
                                                // GDTR image at GDT + 0x100: limit, base.
    let at = (g + 0x100) as usize;
    t[at..at + 2].copy_from_slice(&47u16.to_le_bytes());
    t[at + 2..at + 10].copy_from_slice(&GDT.to_le_bytes());
    t
}

/// The 32-bit prelude: enable PAE, load CR3, set EFER.LME, enable paging,
/// load the GDT and far-jump to [`BODY`].
fn prelude() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    a.cli()?;
    a.mov(esp, STACK_TOP as u32)?;
    a.mov(eax, cr4)?;
    a.or(eax, 1 << 5)?;
    a.mov(cr4, eax)?;
    a.mov(eax, PML4 as u32)?;
    a.mov(cr3, eax)?;
    a.mov(ecx, 0xc000_0080u32)?;
    a.rdmsr()?;
    a.or(eax, 1 << 8)?;
    a.wrmsr()?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x8000_0001u32 as i32)?;
    a.mov(cr0, eax)?;
    a.lgdt(dword_ptr((GDT + 0x100) as u32))?;
    a.jmp_far(0x08, BODY as u32)?;
    a.assemble(LOAD + 16)
}

/// A multiboot image running `body` in 64-bit mode. The body starts with
/// DS/ES/SS = 0x10 already loaded and ends however it likes (typically by
/// writing to port 0xf4).
pub fn long_mode(
    body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<Vec<u8>, IcedError> {
    let mut b = CodeAssembler::new(64)?;
    b.mov(ax, 0x10)?;
    b.mov(ds, ax)?;
    b.mov(es, ax)?;
    b.mov(ss, ax)?;
    b.mov(rsp, STACK_TOP)?;
    body(&mut b)?;
    let body_bytes = b.assemble(BODY)?;
    let mut head = image::multiboot_header().to_vec();
    head.resize(16, 0);
    head.extend(prelude()?);
    head.resize((BODY - LOAD) as usize, 0xcc);
    head.extend(body_bytes);
    let segs = [
        Segment {
            paddr: LOAD,
            memsz: head.len() as u64,
            data: head,
        },
        Segment {
            paddr: PML4,
            memsz: (STACK_TOP - PML4),
            data: tables(),
        },
    ];
    Ok(image::elf(false, LOAD + 16, &segs))
}

/// Emit code that writes `s` to COM1 (clobbers AL and DX).
pub fn print(a: &mut CodeAssembler, s: &str) -> Result<(), IcedError> {
    a.mov(dx, 0x3f8)?;
    for c in s.bytes() {
        a.mov(al, c as u32)?;
        a.out(dx, al)?;
    }
    Ok(())
}

/// Emit code that ends the run with exit-port value `v`.
pub fn exit(a: &mut CodeAssembler, v: u32) -> Result<(), IcedError> {
    a.mov(dx, 0xf4)?;
    a.mov(eax, v)?;
    a.out(dx, eax)?;
    a.hlt()?;
    Ok(())
}

/// Emit a routine, at a new label, that prints RAX as 16 hex digits and a
/// newline (preserves all registers but flags). Call it with `call label`.
pub fn puthex_routine(a: &mut CodeAssembler) -> Result<CodeLabel, IcedError> {
    let mut f = a.create_label();
    let mut lp = a.create_label();
    let mut digit = a.create_label();
    a.set_label(&mut f)?;
    a.push(rax)?;
    a.push(rbx)?;
    a.push(rcx)?;
    a.push(rdx)?;
    a.mov(rbx, rax)?;
    a.mov(ecx, 16)?;
    a.mov(dx, 0x3f8)?;
    a.set_label(&mut lp)?;
    a.rol(rbx, 4)?;
    a.mov(al, bl)?;
    a.and(al, 15)?;
    a.add(al, b'0' as i32)?;
    a.cmp(al, b'9' as i32)?;
    a.jbe(digit)?;
    a.add(al, 7)?;
    a.set_label(&mut digit)?;
    a.out(dx, al)?;
    a.dec(ecx)?;
    a.jnz(lp)?;
    a.mov(al, 10)?;
    a.out(dx, al)?;
    a.pop(rdx)?;
    a.pop(rcx)?;
    a.pop(rbx)?;
    a.pop(rax)?;
    a.ret()?;
    Ok(f)
}

/// [`puthex_routine`] placed out of line: emits a jump over the routine so
/// it can be defined in the middle of a body.
pub fn puthex_routine_after_jump(a: &mut CodeAssembler) -> Result<CodeLabel, IcedError> {
    let mut over = a.create_label();
    a.jmp(over)?;
    let f = puthex_routine(a)?;
    a.set_label(&mut over)?;
    a.nop()?;
    Ok(f)
}

/// Where application processors start: the SIPI vector is `AP_TRAMPOLINE
/// >> 12`.
pub const AP_TRAMPOLINE: u64 = 0x8000;
/// Where the 64-bit code of the application processors starts.
pub const AP_BODY: u64 = 0x10_8000;
/// The xAPIC register page (identity-mapped by the boot page tables).
pub const APIC: u64 = 0xfee0_0000;

/// The 16-bit code an AP runs after SIPI: load the GDT, enable PAE, load
/// CR3, set EFER.LME, enable protection and paging at once, then far-jump
/// straight into 64-bit code at [`AP_BODY`].
fn ap_trampoline() -> Result<Vec<u8>, IcedError> {
    let gdtr = AP_TRAMPOLINE + 0x100;
    let mut a = CodeAssembler::new(16)?;
    a.cli()?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    // o32 lgdt [gdtr]: the 32-bit base is loaded whole.
    a.db(&[0x66, 0x0f, 0x01, 0x16])?;
    a.dw(&[gdtr as u16])?;
    a.mov(eax, cr4)?;
    a.or(eax, 1 << 5)?;
    a.mov(cr4, eax)?;
    a.mov(eax, PML4 as u32)?;
    a.mov(cr3, eax)?;
    a.mov(ecx, 0xc000_0080u32)?;
    a.rdmsr()?;
    a.or(eax, 1 << 8)?;
    a.wrmsr()?;
    a.mov(eax, cr0)?;
    a.or(eax, 0x8000_0001u32 as i32)?;
    a.mov(cr0, eax)?;
    // o32 jmp far 0x08:AP_BODY
    a.db(&[0x66, 0xea])?;
    a.dd(&[AP_BODY as u32])?;
    a.dw(&[0x08])?;
    let mut code = a.assemble(AP_TRAMPOLINE)?;
    code.resize(0x100, 0xcc);
    code.extend_from_slice(&47u16.to_le_bytes());
    code.extend_from_slice(&(GDT as u32).to_le_bytes());
    Ok(code)
}

/// A multiboot image for several vCPUs: the bootstrap processor runs `bsp`
/// as [`long_mode`] does; application processors started with INIT and
/// SIPI vector `AP_TRAMPOLINE >> 12` (see [`start_aps`]) enter 64-bit mode
/// and run `ap` with DS/ES/SS loaded and RSP at `STACK_TOP + 0x10000 *
/// (APIC ID + 1)`.
pub fn long_mode_smp(
    bsp: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    ap: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    a.mov(ax, 0x10)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.mov(ss, ax)?;
    // RSP from the initial APIC ID in CPUID.1:EBX[31:24].
    a.mov(eax, 1)?;
    a.cpuid()?;
    a.shr(ebx, 24)?;
    a.inc(ebx)?;
    a.shl(rbx, 16)?;
    a.mov(rsp, STACK_TOP)?;
    a.add(rsp, rbx)?;
    ap(&mut a)?;
    let ap_bytes = a.assemble(AP_BODY)?;
    let img = long_mode(bsp)?;
    // Re-wrap: the long_mode image plus the trampoline and the AP body.
    let mut segs = crate::image::segments_of(&img);
    segs.push(Segment {
        paddr: AP_TRAMPOLINE,
        memsz: 0x200,
        data: ap_trampoline()?,
    });
    segs.push(Segment {
        paddr: AP_BODY,
        memsz: ap_bytes.len() as u64,
        data: ap_bytes,
    });
    Ok(image::elf(false, LOAD + 16, &segs))
}

/// Emit code that starts every other processor: INIT, then two SIPIs
/// with vector `AP_TRAMPOLINE >> 12`, by the ICR to all-excluding-self.
pub fn start_aps(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(rbx, APIC)?;
    a.mov(dword_ptr(rbx + 0x310), 0)?;
    a.mov(dword_ptr(rbx + 0x300), 0x000c_4500)?;
    let sipi = 0x000c_4600 | (AP_TRAMPOLINE >> 12) as u32;
    a.mov(dword_ptr(rbx + 0x300), sipi as i32)?;
    a.mov(dword_ptr(rbx + 0x300), sipi as i32)?;
    Ok(())
}

/// Emit code that points 64-bit IDT entry `vector` of the table at `idt`
/// at `handler` (an interrupt gate, CS 0x08, DPL 0). Clobbers RAX and RDI.
pub fn set_idt_gate(
    a: &mut CodeAssembler,
    idt: u64,
    vector: u64,
    handler: CodeLabel,
) -> Result<(), IcedError> {
    a.lea(rax, ptr(handler))?;
    a.mov(rdi, idt + vector * 16)?;
    a.mov(word_ptr(rdi), ax)?;
    a.mov(word_ptr(rdi + 2), 0x08)?;
    a.mov(word_ptr(rdi + 4), 0x8e00)?;
    a.shr(rax, 16)?;
    a.mov(word_ptr(rdi + 6), ax)?;
    a.shr(rax, 16)?;
    a.mov(dword_ptr(rdi + 8), eax)?;
    a.mov(dword_ptr(rdi + 12), 0)
}

/// Emit code that loads IDTR with the 256-entry table at `idt` (the
/// descriptor is built in the 16 bytes below the table). Clobbers RAX.
pub fn load_idt(a: &mut CodeAssembler, idt: u64) -> Result<(), IcedError> {
    a.mov(rax, idt)?;
    a.mov(qword_ptr(idt - 14), rax)?;
    a.mov(word_ptr(idt - 16), 256 * 16 - 1)?;
    a.lidt(ptr(idt - 16))
}

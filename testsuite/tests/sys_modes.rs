//! Processor modes. One guest starts in real mode (as a boot sector would)
//! and walks: real mode -> 16-bit protected mode -> 32-bit protected mode ->
//! back to real mode with unreal segment caches -> 32-bit protected mode ->
//! long mode (PAE + EFER.LME + CR0.PG, far jump to a 64-bit segment) ->
//! compatibility mode (far call, IRETQ) -> 64-bit mode. At every stage it
//! checks segment arithmetic or descriptor caches and takes an interrupt
//! that returns with the IRET of that mode (IRET through the IVT, a 16-bit
//! gate, IRETD through a 32-bit gate, IRETQ from 64-bit and from
//! compatibility mode). Each stage prints one line over COM1.

mod common;

use common::*;
use iced_x86::code_asm::*;

// Where each piece of code lives (physical), and its code segment offset.
/// Real-mode entry, run with CS=0x0800 (base 0x8000, offset 0).
const R1: u64 = 0x8000;
/// The way back to real mode: offset 0x800 of the same CS base.
const R2: u64 = 0x8800;
/// 16-bit protected mode, in a code segment with base 0x10000.
const P16: u64 = 0x1_0000;
const P32: u64 = 0x2_0000;
const P32B: u64 = 0x2_4000;
const L64: u64 = 0x3_0000;
const C32: u64 = 0x3_8000;
const L64B: u64 = 0x3_c000;

const TABLES: u64 = 0x4_0000;
const GDTR: u64 = TABLES + 0x100;
const IDTR16: u64 = TABLES + 0x110;
const IDTR32: u64 = TABLES + 0x120;
const IDTR64: u64 = TABLES + 0x130;
const IVTR: u64 = TABLES + 0x140;
const IDT16: u64 = 0x4_1000;
const IDT32: u64 = 0x4_2000;
const IDT64: u64 = 0x4_3000;
/// Scratch for the 32-bit and 64-bit stages.
const REC32: u64 = 0x5_1000;
const REC64: u64 = 0x5_2000;
/// Base of the 16-bit protected-mode data segment.
const DATA16_BASE: u32 = 0x6_0000;
const PT: u64 = 0x7_0000;
/// Above 1 MiB: only reachable from real mode through an unreal cache.
const HIGH: u64 = 0x20_0000;
const MAGIC: u32 = 0xcafe_f00d;
const EFER: u32 = 0xc000_0080;

// Selectors.
const CODE16: u16 = 0x08;
const DATA16: u16 = 0x10;
const CODE32: u16 = 0x18;
const DATA32: u16 = 0x20;
const CODE64: u16 = 0x28;
const STACK16: u16 = 0x30;
const CODE16R: u16 = 0x38;
const DATA16R: u16 = 0x40;

fn gdt() -> Vec<u64> {
    vec![
        0,
        desc(P16 as u32, 0xffff, 0x9a, 0x0), // CODE16: base 0x10000
        desc(DATA16_BASE, 0xffff, 0x92, 0x0), // DATA16: base 0x60000
        desc(0, 0xf_ffff, 0x9a, 0xc),        // CODE32 flat
        desc(0, 0xf_ffff, 0x92, 0xc),        // DATA32 flat, 4 GiB
        desc(0, 0xf_ffff, 0x9a, 0xa),        // CODE64
        desc(0, 0xffff, 0x92, 0x0),          // STACK16: base 0
        desc(R1 as u32, 0xffff, 0x9a, 0x0),  // CODE16R: base 0x8000
        desc(0, 0xffff, 0x92, 0x0),          // DATA16R: real-mode-like
    ]
}

/// Code emitted into an assembler.
type Emit = dyn Fn(&mut CodeAssembler) -> AsmResult;

/// Print `text`, run `load` (which leaves a value in EAX), print EAX.
fn show(
    a: &mut CodeAssembler,
    hex: CodeLabel,
    text: &str,
    load: impl FnOnce(&mut CodeAssembler) -> AsmResult,
) -> AsmResult {
    print(a, text)?;
    load(a)?;
    a.call(hex)
}

/// Print "ok" if EAX == `want`, else EAX in hex.
fn ok_or_hex(a: &mut CodeAssembler, hex: CodeLabel, want: u32) -> AsmResult {
    let mut bad = a.create_label();
    let mut done = a.create_label();
    a.cmp(eax, want as i32)?;
    a.jne(bad)?;
    print(a, "ok")?;
    a.jmp(done)?;
    a.set_label(&mut bad)?;
    a.call(hex)?;
    a.set_label(&mut done)?;
    a.nop()
}

/// Real mode: segment arithmetic, interrupts through the IVT, then into
/// 16-bit protected mode.
fn real1() -> (u64, Vec<u8>) {
    let (c, _) = chunk_two_pass(16, R1, 0, 3, |a, l| {
        let mut h30 = a.create_label();
        let mut hud = a.create_label();
        let mut hde = a.create_label();
        a.cli()?;
        a.xor(ax, ax)?;
        a.mov(ss, ax)?;
        a.mov(sp, 0x7000)?;
        let hex = puthex32(a)?;
        show(a, hex, "real cs=", |a| {
            a.xor(eax, eax)?;
            a.mov(ax, cs)
        })?;
        // DS base 0x50000: [0x10] is physical 0x50010 = ES(0x5001):0.
        a.mov(ax, 0x5000)?;
        a.mov(ds, ax)?;
        a.mov(word_ptr(0x10), 0x1234)?;
        a.mov(ax, 0x5001)?;
        a.mov(es, ax)?;
        show(a, hex, " es:0=", |a| a.movzx(eax, word_ptr(0).es()))?;
        // 16-bit effective addresses wrap: [bx+1] with bx=0xffff is DS:0.
        a.mov(byte_ptr(0), 0x5a)?;
        a.mov(bx, 0xffff)?;
        show(a, hex, " wrap=", |a| a.movzx(eax, byte_ptr(bx + 1)))?;
        print(a, "\n")?;
        // The IVT at 0: INT 0x30, #UD and #DE handlers in this segment.
        a.xor(ax, ax)?;
        a.mov(es, ax)?;
        for (v, h) in [(0x30u64, l[0]), (6, l[1]), (0, l[2])] {
            a.mov(ax, h as i32)?;
            a.mov(word_ptr(v * 4).es(), ax)?;
            a.mov(word_ptr(v * 4 + 2).es(), 0x800)?;
        }
        // INT/IRET keep CF and IF of the caller; the handler runs with IF=0.
        a.sti()?;
        a.stc()?;
        a.int(0x30)?;
        a.setc(cl)?;
        a.movzx(esi, cl)?;
        a.pushf()?;
        a.pop(di)?;
        a.cli()?;
        a.movzx(edi, di)?;
        a.shr(edi, 9)?;
        a.and(edi, 1)?;
        show(a, hex, "int30 cf=", |a| a.mov(eax, esi))?;
        show(a, hex, " if=", |a| a.mov(eax, edi))?;
        show(a, hex, " n=", |a| a.movzx(eax, word_ptr(0x20)))?;
        show(a, hex, " cs=", |a| a.movzx(eax, word_ptr(0x22)))?;
        show(a, hex, " hif=", |a| {
            a.movzx(eax, word_ptr(0x24))?;
            a.shr(eax, 9)?;
            a.and(eax, 1)
        })?;
        print(a, "\n")?;
        // Faults through the IVT: the handlers skip the 2-byte instruction.
        a.ud2()?;
        show(a, hex, "ud n=", |a| a.movzx(eax, word_ptr(0x26)))?;
        a.xor(cl, cl)?;
        a.mov(ax, 100)?;
        a.div(cl)?;
        show(a, hex, " de n=", |a| a.movzx(eax, word_ptr(0x28)))?;
        print(a, "\n")?;
        // LGDT with a 16-bit operand (24-bit base), then PE and a far jump.
        a.mov(ax, (TABLES >> 4) as i32)?;
        a.mov(ds, ax)?;
        a.lgdt(ptr(GDTR - TABLES))?;
        a.lidt(ptr(IDTR16 - TABLES))?;
        a.mov(eax, cr0)?;
        a.or(al, 1)?;
        a.mov(cr0, eax)?;
        a.jmp_far(CODE16, 0)?;

        a.set_label(&mut h30)?;
        a.push(bp)?;
        a.mov(bp, sp)?;
        a.inc(word_ptr(0x20))?;
        a.mov(ax, word_ptr(bp + 4))?;
        a.mov(word_ptr(0x22), ax)?;
        a.pushf()?;
        a.pop(ax)?;
        a.mov(word_ptr(0x24), ax)?;
        a.pop(bp)?;
        a.iret()?;
        for (lbl, counter) in [(&mut hud, 0x26u64), (&mut hde, 0x28)] {
            a.set_label(lbl)?;
            a.push(bp)?;
            a.mov(bp, sp)?;
            a.add(word_ptr(bp + 2), 2)?;
            a.inc(word_ptr(counter))?;
            a.pop(bp)?;
            a.iret()?;
        }
        Ok(vec![h30, hud, hde])
    });
    c
}

/// 16-bit protected mode in a segment with base 0x10000. Returns the chunk
/// and the offsets of its INT 0x31 and #GP handlers.
fn prot16() -> ((u64, Vec<u8>), Vec<u64>) {
    chunk_two_pass(16, P16, 0, 4, |a, l| {
        let mut gp_at = a.create_label();
        let mut after = a.create_label();
        let mut h31 = a.create_label();
        let mut h13 = a.create_label();
        a.mov(ax, STACK16 as i32)?;
        a.mov(ss, ax)?;
        a.mov(sp, 0x7000)?;
        a.mov(ax, DATA16 as i32)?;
        a.mov(ds, ax)?;
        let hex = puthex32(a)?;
        show(a, hex, "pm16 cs=", |a| {
            a.xor(eax, eax)?;
            a.mov(ax, cs)
        })?;
        show(a, hex, " msw=", |a| {
            a.xor(eax, eax)?;
            a.smsw(ax)
        })?;
        // Checked from 32-bit code at physical 0x60010.
        a.mov(word_ptr(0x10), 0xbeef)?;
        a.int(0x31)?;
        show(a, hex, " int31 n=", |a| a.movzx(eax, word_ptr(0x20)))?;
        show(a, hex, " cs=", |a| a.movzx(eax, word_ptr(0x22)))?;
        // A word at offset 0xffff crosses the 64 KiB limit: #GP(0).
        a.mov(word_ptr(0x26), l[1] as i32)?;
        a.set_label(&mut gp_at)?;
        a.mov(ax, word_ptr(0xffff))?;
        a.set_label(&mut after)?;
        a.nop()?;
        show(a, hex, " gp n=", |a| a.movzx(eax, word_ptr(0x28)))?;
        show(a, hex, " e=", |a| a.movzx(eax, word_ptr(0x24)))?;
        print(a, " ip=")?;
        a.movzx(eax, word_ptr(0x2a))?;
        ok_or_hex(a, hex, l[0] as u32)?;
        print(a, "\n")?;
        jmp_far32(a, CODE32, P32 as u32)?;

        // 16-bit interrupt gate: IP, CS, FLAGS pushed as words.
        a.set_label(&mut h31)?;
        a.push(bp)?;
        a.mov(bp, sp)?;
        a.inc(word_ptr(0x20))?;
        a.mov(ax, word_ptr(bp + 4))?;
        a.mov(word_ptr(0x22), ax)?;
        a.pop(bp)?;
        a.iret()?;
        // #GP: error code, IP, CS, FLAGS; resume at the fixup in [0x26].
        a.set_label(&mut h13)?;
        a.push(bp)?;
        a.mov(bp, sp)?;
        a.mov(ax, word_ptr(bp + 2))?;
        a.mov(word_ptr(0x24), ax)?;
        a.mov(ax, word_ptr(bp + 4))?;
        a.mov(word_ptr(0x2a), ax)?;
        a.inc(word_ptr(0x28))?;
        a.mov(ax, word_ptr(0x26))?;
        a.mov(word_ptr(bp + 4), ax)?;
        a.pop(bp)?;
        a.add(sp, 2)?;
        a.iret()?;
        Ok(vec![gp_at, after, h31, h13])
    })
}

/// 32-bit protected mode, flat. Returns the offsets of its INT 0x32 and
/// #GP handlers (also used by [`prot32b`]).
fn prot32() -> ((u64, Vec<u8>), Vec<u64>) {
    chunk_labels(32, P32, P32, |a| {
        let mut h32 = a.create_label();
        let mut h13 = a.create_label();
        a.mov(ax, DATA32 as i32)?;
        for s in [ds, es, ss, fs, gs] {
            a.mov(s, ax)?;
        }
        a.mov(esp, 0x9_0000)?;
        let hex = puthex32(a)?;
        show(a, hex, "pm32 cs=", |a| {
            a.xor(eax, eax)?;
            a.mov(ax, cs)
        })?;
        // What the 16-bit code stored through its based data segment.
        show(a, hex, " ds16=", |a| {
            a.movzx(eax, word_ptr(u64::from(DATA16_BASE) + 0x10))
        })?;
        a.lidt(ptr(IDTR32))?;
        a.int(0x32)?;
        show(a, hex, " int32 n=", |a| a.mov(eax, dword_ptr(REC32)))?;
        show(a, hex, " cs=", |a| a.mov(eax, dword_ptr(REC32 + 4)))?;
        print(a, "\n")?;
        // For the unreal-mode stage: a value above 1 MiB; FS (and DS)
        // keep this flat 4 GiB descriptor cache into real mode.
        a.mov(dword_ptr(HIGH), MAGIC as i32)?;
        a.jmp_far(CODE16R, 0x800)?;

        a.set_label(&mut h32)?;
        a.inc(dword_ptr(REC32))?;
        a.mov(eax, dword_ptr(esp + 4))?;
        a.mov(dword_ptr(REC32 + 4), eax)?;
        a.iretd()?;
        // #GP: record error code and EIP, count, resume at [REC32+20].
        a.set_label(&mut h13)?;
        a.push(eax)?;
        a.mov(eax, dword_ptr(esp + 4))?;
        a.mov(dword_ptr(REC32 + 8), eax)?;
        a.mov(eax, dword_ptr(esp + 8))?;
        a.mov(dword_ptr(REC32 + 12), eax)?;
        a.inc(dword_ptr(REC32 + 16))?;
        a.mov(eax, dword_ptr(REC32 + 20))?;
        a.mov(dword_ptr(esp + 8), eax)?;
        a.pop(eax)?;
        a.add(esp, 4)?;
        a.iretd()?;
        Ok(vec![h32, h13])
    })
}

/// Back to real mode through a 16-bit segment, with FS/DS still holding a
/// 4 GiB limit (unreal mode), then into protected mode again.
fn real2() -> (u64, Vec<u8>) {
    let (c, _) = chunk_two_pass(16, R2, 0x800, 3, |a, l| {
        let mut real = a.create_label();
        let mut hgp = a.create_label();
        let mut after = a.create_label();
        // Still in protected mode (CS=CODE16R): 64 KiB caches for SS, ES.
        a.mov(ax, DATA16R as i32)?;
        a.mov(ss, ax)?;
        a.mov(es, ax)?;
        a.mov(eax, cr0)?;
        a.and(al, 0xfe)?;
        a.mov(cr0, eax)?;
        // Real mode now: a far return reloads CS the real-mode way.
        a.mov(ax, 0x800)?;
        a.push(ax)?;
        a.mov(ax, l[0] as i32)?;
        a.push(ax)?;
        a.retf()?;
        a.set_label(&mut real)?;
        a.xor(ax, ax)?;
        a.mov(ss, ax)?;
        a.mov(sp, 0x7000)?;
        a.mov(ax, (TABLES >> 4) as i32)?;
        a.mov(es, ax)?;
        a.lidt(ptr(IVTR - TABLES).es())?;
        let hex = puthex32(a)?;
        // 32-bit addressing through the unreal FS cache.
        show(a, hex, "unreal fs=", |a| {
            a.mov(ebx, HIGH as u32)?;
            a.mov(eax, dword_ptr(ebx).fs())
        })?;
        // A real-mode load of DS changes the base, not the 4 GiB limit.
        a.mov(ax, 0x1000)?;
        a.mov(ds, ax)?;
        show(a, hex, " ds=", |a| {
            a.mov(ebx, (HIGH - 0x1_0000) as u32)?;
            a.mov(eax, dword_ptr(ebx))
        })?;
        // ES kept its 64 KiB limit: #GP (vector 13, no error code).
        a.xor(ax, ax)?;
        a.mov(es, ax)?;
        a.mov(word_ptr(13 * 4).es(), l[1] as i32)?;
        a.mov(word_ptr(13 * 4 + 2).es(), 0x800)?;
        a.mov(word_ptr(0x600).es(), l[2] as i32)?;
        a.mov(ebx, 0x1_0000)?;
        a.mov(eax, dword_ptr(ebx).es())?;
        a.set_label(&mut after)?;
        a.nop()?;
        show(a, hex, " es-limit n=", |a| {
            a.movzx(eax, word_ptr(0x602).es())
        })?;
        print(a, "\n")?;
        a.mov(eax, cr0)?;
        a.or(al, 1)?;
        a.mov(cr0, eax)?;
        jmp_far32(a, CODE32, P32B as u32)?;

        a.set_label(&mut hgp)?;
        a.push(bp)?;
        a.mov(bp, sp)?;
        a.inc(word_ptr(0x602).es())?;
        a.mov(ax, word_ptr(0x600).es())?;
        a.mov(word_ptr(bp + 2), ax)?;
        a.pop(bp)?;
        a.iret()?;
        Ok(vec![real, hgp, after])
    });
    c
}

/// Protected mode again: the #GP rules of CR0/CR4/EFER, then long mode.
fn prot32b() -> (u64, Vec<u8>) {
    let (c, _) = chunk_two_pass(32, P32B, P32B, 3, |a, l| {
        let mut after = [a.create_label(), a.create_label(), a.create_label()];
        a.mov(ax, DATA32 as i32)?;
        for s in [ds, es, ss, fs, gs] {
            a.mov(s, ax)?;
        }
        a.mov(esp, 0x9_0000)?;
        a.lidt(ptr(IDTR32))?;
        let hex = puthex32(a)?;
        print(a, "pm32b")?;
        let cases: [(&str, &Emit); 3] = [
            // CR0.PG without CR0.PE.
            (" pg-no-pe", &|a| {
                a.mov(eax, cr0)?;
                a.and(eax, !1)?;
                a.or(eax, 0x8000_0000u32 as i32)?;
                a.mov(cr0, eax)
            }),
            // CR0.PG with EFER.LME=1 and CR4.PAE=0.
            (" lme-no-pae", &|a| {
                a.mov(ecx, EFER)?;
                a.rdmsr()?;
                a.or(eax, 0x100)?;
                a.wrmsr()?;
                a.mov(eax, cr0)?;
                a.or(eax, 0x8000_0000u32 as i32)?;
                a.mov(cr0, eax)
            }),
            // A reserved CR4 bit.
            (" cr4-rsvd", &|a| {
                a.mov(eax, cr4)?;
                a.or(eax, 0x8000_0000u32 as i32)?;
                a.mov(cr4, eax)
            }),
        ];
        for (i, (name, body)) in cases.iter().enumerate() {
            a.mov(dword_ptr(REC32 + 16), 0)?;
            a.mov(dword_ptr(REC32 + 20), l[i] as i32)?;
            body(a)?;
            a.set_label(&mut after[i])?;
            a.nop()?;
            show(a, hex, &format!("{name} n="), |a| {
                a.mov(eax, dword_ptr(REC32 + 16))
            })?;
            show(a, hex, " e=", |a| a.mov(eax, dword_ptr(REC32 + 8)))?;
        }
        show(a, hex, " efer=", |a| {
            a.mov(ecx, EFER)?;
            a.rdmsr()
        })?;
        // PAE, CR3, then PG with LME: IA-32e mode (compatibility mode
        // until CS is reloaded), so EFER.LMA reads as 1.
        a.mov(eax, cr4)?;
        a.or(eax, 0x20)?;
        a.mov(cr4, eax)?;
        a.mov(eax, PT as u32)?;
        a.mov(cr3, eax)?;
        a.mov(eax, cr0)?;
        a.or(eax, 0x8000_0000u32 as i32)?;
        a.mov(cr0, eax)?;
        show(a, hex, " efer=", |a| {
            a.mov(ecx, EFER)?;
            a.rdmsr()
        })?;
        print(a, "\n")?;
        a.jmp_far(CODE64, L64 as u32)?;
        let [a0, a1, a2] = after;
        Ok(vec![a0, a1, a2])
    });
    c
}

/// Compatibility-mode code: `entry_call` is reached by a far call from
/// 64-bit code and returns with RETF; `entry_iret` by IRETQ and leaves by
/// a far jump.
fn compat() -> ((u64, Vec<u8>), Vec<u64>) {
    chunk_labels(32, C32, C32, |a| {
        let mut entry_call = a.create_label();
        let mut entry_iret = a.create_label();
        a.set_label(&mut entry_call)?;
        let hex = puthex32(a)?;
        show(a, hex, "compat cs=", |a| {
            a.xor(eax, eax)?;
            a.mov(ax, cs)
        })?;
        // Default operand size 32: a push moves ESP by 4.
        a.mov(ecx, esp)?;
        a.push(eax)?;
        a.sub(ecx, esp)?;
        a.pop(eax)?;
        show(a, hex, " push=", |a| a.mov(eax, ecx))?;
        // 0x48 is DEC EAX here, not a REX prefix.
        a.mov(ecx, 5)?;
        a.db(&[0x49])?; // dec ecx
        show(a, hex, " dec=", |a| a.mov(eax, ecx))?;
        // An interrupt from compatibility mode goes through the 64-bit IDT
        // and IRETQ comes back here.
        a.int(0x34)?;
        show(a, hex, " int34 n=", |a| a.mov(eax, dword_ptr(REC64 + 0x40)))?;
        show(a, hex, " cs=", |a| a.mov(eax, dword_ptr(REC64 + 0x48)))?;
        print(a, "\n")?;
        a.mov(esi, 0x32)?;
        a.retf()?;

        a.set_label(&mut entry_iret)?;
        show(a, hex, "compat2 cs=", |a| {
            a.xor(eax, eax)?;
            a.mov(ax, cs)
        })?;
        // Leave long mode: CR0.PG=0 from compatibility mode clears
        // EFER.LMA (32-bit protected mode), then enter it again.
        a.mov(eax, cr0)?;
        a.btr(eax, 31)?;
        a.mov(cr0, eax)?;
        show(a, hex, " legacy efer=", |a| {
            a.mov(ecx, EFER)?;
            a.rdmsr()
        })?;
        a.mov(eax, cr0)?;
        a.bts(eax, 31)?;
        a.mov(cr0, eax)?;
        show(a, hex, " efer=", |a| {
            a.mov(ecx, EFER)?;
            a.rdmsr()
        })?;
        print(a, "\n")?;
        a.jmp_far(CODE64, L64B as u32)?;
        Ok(vec![entry_call, entry_iret])
    })
}

/// 64-bit mode: IRETQ, the EFER.LME rule, a far call into compatibility
/// mode and an IRETQ into it. Returns its handler offsets.
fn long64(c32: &[u64]) -> ((u64, Vec<u8>), Vec<u64>) {
    let (call_entry, iret_entry) = (c32[0], c32[1]);
    chunk_labels(64, L64, L64, |a| {
        let mut h33 = a.create_label();
        let mut h34 = a.create_label();
        let mut h13 = a.create_label();
        let mut after = a.create_label();
        a.mov(ax, DATA32 as i32)?;
        a.mov(ds, ax)?;
        a.mov(es, ax)?;
        a.mov(ss, ax)?;
        a.mov(rsp, 0x9_0000u64)?;
        a.lidt(ptr(IDTR64))?;
        let hex = puthex64(a)?;
        print(a, "long r=")?;
        a.mov(rax, 0x1234_5678_9abc_def0u64)?;
        a.call(hex)?;
        print(a, " cs=")?;
        a.xor(eax, eax)?;
        a.mov(ax, cs)?;
        a.call(hex)?;
        a.int(0x33)?;
        for (t, off) in [(" int33 n=", 0u64), (" cs=", 8), (" ss=", 16)] {
            print(a, t)?;
            a.mov(rax, qword_ptr(REC64 + off))?;
            a.call(hex)?;
        }
        // EFER.LME cannot change while paging is on.
        a.lea(rax, ptr(after))?;
        a.mov(qword_ptr(REC64 + 40), rax)?;
        a.mov(ecx, EFER)?;
        a.rdmsr()?;
        a.and(eax, !0x100)?;
        a.wrmsr()?;
        a.set_label(&mut after)?;
        a.nop()?;
        for (t, off) in [(" lme-clear n=", 32u64), (" e=", 24)] {
            print(a, t)?;
            a.mov(rax, qword_ptr(REC64 + off))?;
            a.call(hex)?;
        }
        print(a, "\n")?;
        // CALL FAR m16:32 to the 32-bit code segment, back by RETF.
        a.mov(dword_ptr(REC64 + 0x100), call_entry as u32)?;
        a.mov(word_ptr(REC64 + 0x104), CODE32 as u32)?;
        a.mov(qword_ptr(REC64 + 0x110), rsp)?;
        a.mov(rbx, REC64 + 0x100)?;
        a.call(fword_ptr(rbx))?;
        print(a, "back64 esi=")?;
        a.mov(eax, esi)?;
        a.call(hex)?;
        print(a, " rsp=")?;
        a.mov(rax, rsp)?;
        a.sub(rax, qword_ptr(REC64 + 0x110))?;
        a.call(hex)?;
        print(a, "\n")?;
        // IRETQ to compatibility mode (same privilege: SS:RSP popped too).
        a.mov(rax, rsp)?;
        a.push(DATA32 as i32)?;
        a.push(rax)?;
        a.pushfq()?;
        a.push(CODE32 as i32)?;
        a.mov(eax, iret_entry as u32)?;
        a.push(rax)?;
        a.iretq()?;

        a.set_label(&mut h33)?;
        a.inc(qword_ptr(REC64))?;
        a.mov(rax, qword_ptr(rsp + 8))?;
        a.mov(qword_ptr(REC64 + 8), rax)?;
        a.mov(rax, qword_ptr(rsp + 32))?;
        a.mov(qword_ptr(REC64 + 16), rax)?;
        a.iretq()?;
        a.set_label(&mut h34)?;
        a.inc(qword_ptr(REC64 + 0x40))?;
        a.mov(rax, qword_ptr(rsp + 8))?;
        a.mov(qword_ptr(REC64 + 0x48), rax)?;
        a.iretq()?;
        a.set_label(&mut h13)?;
        a.push(rax)?;
        a.mov(rax, qword_ptr(rsp + 8))?;
        a.mov(qword_ptr(REC64 + 24), rax)?;
        a.inc(qword_ptr(REC64 + 32))?;
        a.mov(rax, qword_ptr(REC64 + 40))?;
        a.mov(qword_ptr(rsp + 16), rax)?;
        a.pop(rax)?;
        a.add(rsp, 8)?;
        a.iretq()?;
        Ok(vec![h33, h34, h13])
    })
}

fn long64b() -> (u64, Vec<u8>) {
    chunk(64, L64B, L64B, |a| {
        let hex = puthex64(a)?;
        print(a, "long2 cs=")?;
        a.xor(eax, eax)?;
        a.mov(ax, cs)?;
        a.call(hex)?;
        print(a, "\n")?;
        exit(a, 0x5a)
    })
}

fn mode_walk() -> Vec<(u64, Vec<u8>)> {
    let (p16, h16) = prot16();
    let (p32, h32) = prot32();
    let (c32, entries) = compat();
    let (l64, h64) = long64(&entries);

    let mut idt16 = vec![0u64; 256];
    idt16[0x31] = gate32(CODE16, h16[2] as u32, 0x86);
    idt16[13] = gate32(CODE16, h16[3] as u32, 0x86);
    let mut idt32 = vec![0u64; 256];
    idt32[0x32] = gate32(CODE32, h32[0] as u32, 0x8e);
    idt32[13] = gate32(CODE32, h32[1] as u32, 0x8e);
    let mut idt64 = vec![0u64; 512];
    for (v, h) in [(0x33usize, h64[0]), (0x34, h64[1]), (13, h64[2])] {
        let g = gate64(CODE64, h, 0, 0x8e);
        idt64[2 * v] = g[0];
        idt64[2 * v + 1] = g[1];
    }
    let gdt = gdt();
    let mut tables = qwords(&gdt);
    tables.resize(0x100, 0);
    for (limit, base) in [
        ((gdt.len() * 8 - 1) as u16, TABLES),
        (0x7ff, IDT16),
        (0x7ff, IDT32),
        (0xfff, IDT64),
        (0x3ff, 0),
    ] {
        let mut p = pseudo(limit, base);
        p.resize(16, 0);
        tables.extend(p);
    }
    let mut pt = PageTables::new(PT);
    pt.identity_2m(1 << 30, P | RW);

    vec![
        real1(),
        real2(),
        p16,
        p32,
        prot32b(),
        l64,
        c32,
        long64b(),
        (TABLES, tables),
        (IDT16, qwords(&idt16)),
        (IDT32, qwords(&idt32)),
        (IDT64, qwords(&idt64)),
        pt.blob(),
    ]
}

#[test]
fn real_protected_unreal_long_compat_walk() {
    let out = run_real(&mode_walk(), (R1 >> 4) as u16, 0);
    eprintln!(
        "mode walk: {} instructions in {:?}",
        out.instructions, out.elapsed
    );
    out.assert(
        "real cs=800 es:0=1234 wrap=5a\n\
         int30 cf=1 if=1 n=1 cs=800 hif=0\n\
         ud n=1 de n=1\n\
         pm16 cs=8 msw=11 int31 n=1 cs=8 gp n=1 e=0 ip=ok\n\
         pm32 cs=18 ds16=beef int32 n=1 cs=18\n\
         unreal fs=cafef00d ds=cafef00d es-limit n=1\n\
         pm32b pg-no-pe n=1 e=0 lme-no-pae n=1 e=0 cr4-rsvd n=1 e=0 efer=100 efer=500\n\
         long r=123456789abcdef0 cs=28 int33 n=1 cs=28 ss=20 lme-clear n=1 e=0\n\
         compat cs=18 push=4 dec=4 int34 n=1 cs=18\n\
         back64 esi=32 rsp=0\n\
         compat2 cs=18 legacy efer=100 efer=500\n\
         long2 cs=28\n",
        0x5a,
    );
}

//! An x87 guest for the KVM comparison (softvm's system tests check its
//! output too): #MF at the next waiting instruction, the no-wait forms,
//! and the last-instruction pointers as FSTENV/FSAVE store them.

use super::kit::{expect_fault, print, Kit, SCRATCH};
use crate::guest;
use iced_x86::code_asm::*;

pub const CR0_MP: u32 = 1 << 1;
pub const CR0_EM: u32 = 1 << 2;
pub const CR0_TS: u32 = 1 << 3;
pub const CR0_NE: u32 = 1 << 5;

/// Where the images go.
const ENV: u64 = SCRATCH + 0x100;
/// A memory operand.
const OPND: u64 = SCRATCH + 0x40;

/// Set and clear CR0 bits (uses RAX).
pub fn cr0_set(a: &mut CodeAssembler, set: u32, clear: u32) -> Result<(), IcedError> {
    a.mov(rax, cr0)?;
    a.or(eax, set as i32)?;
    a.and(eax, !clear as i32)?;
    a.mov(cr0, rax)
}

/// Print `n` bytes at `addr` as 16-bit words (little-endian), `name: w w ..`,
/// with `cs` in place of the word at offset `cs_at` (FCS).
fn show_words(
    k: &Kit,
    a: &mut CodeAssembler,
    name: &str,
    addr: u64,
    n: u64,
    cs_at: Option<u64>,
) -> Result<(), IcedError> {
    print(a, &format!("{name}:"))?;
    for off in (0..n).step_by(2) {
        if Some(off) == cs_at {
            print(a, " cs")?;
            continue;
        }
        print(a, " ")?;
        a.movzx(eax, word_ptr(addr + off))?;
        k.hex(a, rax, 4)?;
    }
    print(a, "\n")
}

/// Make the pointers of the 28-byte (`wide`) or 14-byte image at `addr`
/// relative: FIP minus the address of `ins`, FDP minus `data` (both 0
/// when right), so the output does not depend on the code layout.
fn rebase(
    a: &mut CodeAssembler,
    addr: u64,
    wide: bool,
    ins: CodeLabel,
    data: u64,
) -> Result<(), IcedError> {
    a.lea(rax, ptr(ins))?;
    if wide {
        a.sub(dword_ptr(addr + 12), eax)?;
        a.sub(dword_ptr(addr + 20), data as i32)
    } else {
        a.sub(word_ptr(addr + 6), ax)?;
        a.sub(word_ptr(addr + 10), i32::from(data as u16 as i16))
    }
}

/// 64-bit mode: #MF at the next waiting instruction after an unmasked
/// exception, the no-wait forms, and the pointers and opcode FNSTENV and
/// FNSAVE store (printed relative to the instruction and operand they
/// point at: zero when right). The x87 code runs in ring 3 (on the nested /dev/kvm of
/// CI machines ring 0 goes through KVM's instruction emulator, which has
/// no x87); ring 0 sets CR0 and prints.
///
/// What that /dev/kvm cannot show, softvm's system tests check instead:
/// its ring 3 runs with the host's code selector (so FCS is not printed
/// here: the images show `cs` in its place), and CR0.TS and CR0.EM do not
/// raise #NM there.
pub fn long_mode() -> Result<Vec<u8>, IcedError> {
    long_mode_guest(false)
}

/// [`long_mode`], with FCS printed after each environment image when
/// `show_fcs` (for softvm's own test).
pub fn long_mode_guest(show_fcs: bool) -> Result<Vec<u8>, IcedError> {
    // FCS's offset in the 32-bit and 16-bit images, unless shown.
    let fcs32 = (!show_fcs).then_some(16);
    let fcs16 = (!show_fcs).then_some(8);
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        cr0_set(a, CR0_NE | CR0_MP, CR0_EM | CR0_TS)?;
        k.user(a, |a| a.fninit())?;

        print(
            a,
            "1/0 with ZE unmasked: no fault, nothing written, ES set\n",
        )?;
        let mut div = a.create_label();
        k.user(a, |a| {
            a.fninit()?;
            a.mov(word_ptr(OPND), 0x037b)?;
            a.fldcw(word_ptr(OPND))?;
            a.fld1()?;
            a.fldz()?;
            a.set_label(&mut div)?;
            a.fdivp(st1, st0)?;
            a.fnstsw(word_ptr(OPND + 2))
        })?;
        show_words(&k, a, "fsw", OPND + 2, 2, None)?;
        print(
            a,
            "#MF at fnop, fwait and fld1; fnstsw, fnstcw, fnstenv run\n",
        )?;
        k.user(a, |a| {
            expect_fault(a, |a| a.fnop())?;
            expect_fault(a, |a| a.wait())?;
            expect_fault(a, |a| a.fld1())?;
            a.fnstsw(ax)?;
            a.fnstcw(word_ptr(OPND))?;
            a.fnstenv(ptr(ENV))
        })?;
        // FDP: the last memory operand was before FNINIT, which cleared it.
        rebase(a, ENV, true, div, 0)?;
        show_words(&k, a, "env after fdivp", ENV, 28, fcs32)?;
        print(a, "fnstenv masked everything: fnop runs\n")?;
        k.user(a, |a| {
            a.fnop()?;
            a.fnstsw(word_ptr(OPND + 2))
        })?;
        show_words(&k, a, "fsw", OPND + 2, 2, None)?;
        print(
            a,
            "fnclex; 1/0 masked sets ZE; fldcw unmasking it makes it pending\n",
        )?;
        k.user(a, |a| {
            a.fnclex()?;
            a.fld1()?;
            a.fldz()?;
            a.fdivp(st1, st0)?;
            a.fnstsw(word_ptr(OPND + 2))?;
            a.mov(word_ptr(OPND), 0x037b)?;
            a.fldcw(word_ptr(OPND))?;
            a.fnstsw(word_ptr(OPND + 4))?;
            expect_fault(a, |a| a.fnop())?;
            a.fninit()
        })?;
        show_words(&k, a, "fsw before and after fldcw", OPND + 2, 4, None)?;

        print(a, "pointers after fld dword [opnd]\n")?;
        let mut load = a.create_label();
        k.user(a, |a| {
            a.mov(dword_ptr(OPND), 0x3fc0_0000)?;
            a.set_label(&mut load)?;
            a.fld(dword_ptr(OPND))?;
            a.fnstenv(ptr(ENV))?;
            a.db(&[0x66])?;
            a.fnstenv(ptr(ENV + 0x40))?;
            a.fnsave(ptr(ENV + 0x80))?;
            a.fnstenv(ptr(ENV + 0x100))?;
            a.frstor(ptr(ENV + 0x80))?;
            a.fnstenv(ptr(ENV + 0x140))
        })?;
        for at in [ENV, ENV + 0x80, ENV + 0x140] {
            rebase(a, at, true, load, OPND)?;
        }
        rebase(a, ENV + 0x40, false, load, OPND)?;
        show_words(&k, a, "env32", ENV, 28, fcs32)?;
        show_words(&k, a, "env16", ENV + 0x40, 14, fcs16)?;
        show_words(&k, a, "save env", ENV + 0x80, 28, fcs32)?;
        show_words(&k, a, "save st0", ENV + 0x80 + 28, 10, None)?;
        show_words(&k, a, "after fnsave", ENV + 0x100, 28, fcs32)?;
        show_words(&k, a, "after frstor", ENV + 0x140, 28, fcs32)?;
        guest::exit(a, 0)
    })
}

//! The machine code of the runner's code page, hand-encoded.
//!
//! Everything here is safe byte-building; `harness` maps the bytes and jumps
//! to them. The stubs only use MOV, LEA, PUSH/POP, PUSHFQ/POPFQ, CLD,
//! FXSAVE64/FXRSTOR64, JMP and RET, so none of them disturbs the guest's
//! flags before they are saved. FXSAVE is not a waiting instruction, so a
//! pending unmasked x87 exception the instruction under test left behind is
//! stored, not raised.

use super::fx::FxImage;
use core::mem::offset_of;

/// The block the prologue loads the guest state from and the epilogues
/// store it to. Shared between Rust and the generated code.
#[repr(C, align(16))]
#[derive(Clone, Debug)]
pub struct StateBlock {
    /// Guest GPRs in encoding order.
    pub gpr: [u64; 16],
    pub rflags: u64,
    /// The host RSP saved by the prologue.
    pub host_rsp: u64,
    /// Which exit was taken ([`EXIT_FALLTHROUGH`], ...).
    pub exit: u64,
    /// Fault details, written by the signal handler.
    pub signal: u64,
    pub fault_rip: u64,
    pub fault_addr: u64,
    /// Private stack for the epilogue's PUSHFQ (the guest RSP may point
    /// anywhere, and the guest stack is compared after the run).
    pub scratch: [u64; 16],
    /// The guest's x87/MMX/SSE state, loaded by the prologue.
    pub fx_in: FxImage,
    /// The guest's state after the instruction (or at its fault).
    pub fx_out: FxImage,
    /// The host's state, saved by the prologue and restored on the way
    /// out (FCW and MXCSR are callee-saved in the SysV ABI).
    pub fx_host: FxImage,
}

impl Default for StateBlock {
    fn default() -> Self {
        StateBlock {
            gpr: [0; 16],
            rflags: 0,
            host_rsp: 0,
            exit: EXIT_NONE,
            signal: 0,
            fault_rip: 0,
            fault_addr: 0,
            scratch: [0; 16],
            fx_in: FxImage::default(),
            fx_out: FxImage::default(),
            fx_host: FxImage::default(),
        }
    }
}

pub const EXIT_NONE: u64 = 0;
pub const EXIT_FALLTHROUGH: u64 = 1;
pub const EXIT_TAKEN: u64 = 2;
pub const EXIT_FAULT: u64 = 3;

const OFF_GPR: usize = offset_of!(StateBlock, gpr);
const OFF_RFLAGS: usize = offset_of!(StateBlock, rflags);
const OFF_HOST_RSP: usize = offset_of!(StateBlock, host_rsp);
const OFF_EXIT: usize = offset_of!(StateBlock, exit);
const OFF_SCRATCH_TOP: usize = offset_of!(StateBlock, scratch) + 16 * 8;
const OFF_FX_IN: usize = offset_of!(StateBlock, fx_in);
const OFF_FX_OUT: usize = offset_of!(StateBlock, fx_out);
const OFF_FX_HOST: usize = offset_of!(StateBlock, fx_host);

// The stubs address the block with disp32; the GPR array must start at 0
// because RAX is stored through a moffs64 to the block's address.
const _: () = assert!(OFF_GPR == 0);
const _: () = assert!(OFF_SCRATCH_TOP & 15 == 0);
// FXSAVE/FXRSTOR fault on an image that is not 16-byte aligned.
const _: () = assert!(OFF_FX_IN & 15 == 0 && OFF_FX_OUT & 15 == 0 && OFF_FX_HOST & 15 == 0);

/// Offsets inside the code page.
pub const PROLOGUE_OFF: usize = 0x000;
pub const TAKEN_EPILOGUE_OFF: usize = 0x100;
pub const FALLTHROUGH_EPILOGUE_OFF: usize = 0x200;
pub const RECOVER_OFF: usize = 0x300;
/// The landing pad for taken branches (a JMP to the taken epilogue).
pub const PAD_OFF: usize = 0x7e0;
/// Where the instruction under test goes.
pub const INSN_OFF: usize = 0x800;
/// Room for the instruction plus the JMP to the fall-through epilogue.
pub const INSN_SLOT: usize = 0x40;

const _: () = assert!(
    INSN_OFF - PAD_OFF <= 0x70,
    "pad must be reachable with rel8"
);

/// INT3, the filler of unused code bytes.
pub const INT3: u8 = 0xcc;

/// A little machine-code emitter.
#[derive(Default)]
pub struct Asm {
    pub bytes: Vec<u8>,
}

fn disp32(off: usize) -> [u8; 4] {
    i32::try_from(off)
        .expect("offset fits disp32")
        .to_le_bytes()
}

impl Asm {
    fn b(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// REX.W prefix with REX.R for `reg` and REX.B for `rm`.
    fn rex_w(&mut self, reg: u8, rm: u8) {
        self.b(&[0x48 | ((reg >> 3) << 2) | (rm >> 3)]);
    }

    /// ModRM with mod=10 (disp32), no SIB (`rm` must not be RSP/R12).
    fn modrm_disp32(&mut self, reg: u8, rm: u8, off: usize) {
        debug_assert!(rm & 7 != 4);
        self.b(&[0x80 | ((reg & 7) << 3) | (rm & 7)]);
        self.b(&disp32(off));
    }

    /// `mov [base + off], reg` (64-bit).
    pub fn store(&mut self, base: u8, off: usize, reg: u8) {
        self.rex_w(reg, base);
        self.b(&[0x89]);
        self.modrm_disp32(reg, base, off);
    }

    /// `mov reg, [base + off]` (64-bit).
    pub fn load(&mut self, reg: u8, base: u8, off: usize) {
        self.rex_w(reg, base);
        self.b(&[0x8b]);
        self.modrm_disp32(reg, base, off);
    }

    /// `mov reg, imm64`.
    pub fn mov_imm64(&mut self, reg: u8, imm: u64) {
        self.rex_w(0, reg);
        self.b(&[0xb8 + (reg & 7)]);
        self.b(&imm.to_le_bytes());
    }

    pub fn push(&mut self, reg: u8) {
        if reg >= 8 {
            self.b(&[0x41]);
        }
        self.b(&[0x50 + (reg & 7)]);
    }

    pub fn pop(&mut self, reg: u8) {
        if reg >= 8 {
            self.b(&[0x41]);
        }
        self.b(&[0x58 + (reg & 7)]);
    }

    /// `fxsave64 [base + off]` (`store`) or `fxrstor64 [base + off]`.
    fn fx(&mut self, store: bool, base: u8, off: usize) {
        self.rex_w(0, base);
        self.b(&[0x0f, 0xae]);
        self.modrm_disp32(if store { 0 } else { 1 }, base, off);
    }

    /// `jmp rel32` from `at` (the address of this JMP) to `to`.
    pub fn jmp(&mut self, at: u64, to: u64) {
        let rel = to.wrapping_sub(at.wrapping_add(5)) as i64;
        let rel = i32::try_from(rel).expect("jmp target within rel32");
        self.b(&[0xe9]);
        self.b(&rel.to_le_bytes());
    }
}

const RAX: u8 = 0;
const RCX: u8 = 1;
const RBX: u8 = 3;
const RSP: u8 = 4;
const RBP: u8 = 5;
const RDI: u8 = 7;
const CALLEE_SAVED: [u8; 6] = [RBX, RBP, 12, 13, 14, 15];

/// Entered as `extern "sysv64" fn(*mut StateBlock)`: saves the host, loads
/// the guest, jumps to the instruction at `insn`. `at` is the address of the
/// prologue itself.
pub fn prologue(at: u64, insn: u64) -> Vec<u8> {
    let mut a = Asm::default();
    for r in CALLEE_SAVED {
        a.push(r);
    }
    a.store(RDI, OFF_HOST_RSP, RSP);
    a.fx(true, RDI, OFF_FX_HOST);
    a.fx(false, RDI, OFF_FX_IN);
    // push qword [rdi + rflags]; popfq
    a.b(&[0xff]);
    a.modrm_disp32(6, RDI, OFF_RFLAGS);
    a.b(&[0x9d]);
    for r in 0..16u8 {
        if r != RDI {
            a.load(r, RDI, OFF_GPR + 8 * usize::from(r));
        }
    }
    a.load(RDI, RDI, OFF_GPR + 8 * usize::from(RDI));
    let here = at + a.bytes.len() as u64;
    a.jmp(here, insn);
    a.bytes
}

/// Restores the host's RSP and callee-saved registers and returns to Rust
/// (RAX holds the state block's address).
fn leave_to_host(a: &mut Asm) {
    a.b(&[0xfc]); // cld: the Rust ABI requires DF=0
    a.fx(false, RAX, OFF_FX_HOST);
    a.load(RSP, RAX, OFF_HOST_RSP);
    for r in CALLEE_SAVED.iter().rev() {
        a.pop(*r);
    }
    a.b(&[0xc3]);
}

/// Stores the guest state into the block at `state`, records `exit`, returns
/// to the host.
pub fn epilogue(state: u64, exit: u64) -> Vec<u8> {
    let mut a = Asm::default();
    // mov [moffs64], rax
    a.b(&[0x48, 0xa3]);
    a.b(&(state + OFF_GPR as u64).to_le_bytes());
    a.mov_imm64(RAX, state);
    for r in 1..16u8 {
        a.store(RAX, OFF_GPR + 8 * usize::from(r), r);
    }
    // lea rsp, [rax + scratch_top]; pushfq; pop rcx
    a.rex_w(RSP, RAX);
    a.b(&[0x8d]);
    a.modrm_disp32(RSP, RAX, OFF_SCRATCH_TOP);
    a.b(&[0x9c]);
    a.pop(RCX);
    a.store(RAX, OFF_RFLAGS, RCX);
    // mov qword [rax + exit], imm32
    a.rex_w(0, RAX);
    a.b(&[0xc7]);
    a.modrm_disp32(0, RAX, OFF_EXIT);
    a.b(&u32::try_from(exit).expect("exit id").to_le_bytes());
    a.fx(true, RAX, OFF_FX_OUT);
    leave_to_host(&mut a);
    a.bytes
}

/// Where the signal handler resumes after a fault in the code page. The
/// kernel has restored the floating-point state of the fault by then, so
/// it is stored as the result (MXCSR flags of an unmasked SIMD exception).
pub fn recover(state: u64) -> Vec<u8> {
    let mut a = Asm::default();
    a.mov_imm64(RAX, state);
    a.fx(true, RAX, OFF_FX_OUT);
    leave_to_host(&mut a);
    a.bytes
}

/// Builds the whole code page for a state block at `state` and a page at
/// `page`. The instruction slot is left as INT3.
pub fn code_page(page: u64, state: u64, page_len: usize) -> Vec<u8> {
    let mut p = vec![INT3; page_len];
    let mut put = |off: usize, bytes: &[u8], limit: usize| {
        assert!(bytes.len() <= limit, "stub at {off:#x} too long");
        p[off..off + bytes.len()].copy_from_slice(bytes);
    };
    let insn = page + INSN_OFF as u64;
    put(PROLOGUE_OFF, &prologue(page, insn), 0x100);
    put(TAKEN_EPILOGUE_OFF, &epilogue(state, EXIT_TAKEN), 0x100);
    put(
        FALLTHROUGH_EPILOGUE_OFF,
        &epilogue(state, EXIT_FALLTHROUGH),
        0x100,
    );
    put(RECOVER_OFF, &recover(state), 0x100);
    let mut pad = Asm::default();
    let pad_at = page + PAD_OFF as u64;
    pad.jmp(pad_at, page + TAKEN_EPILOGUE_OFF as u64);
    put(PAD_OFF, &pad.bytes, INSN_OFF - PAD_OFF);
    p
}

/// The instruction slot's contents: the instruction, then a JMP to the
/// fall-through epilogue, then INT3 up to the end of the slot.
pub fn insn_slot(page: u64, code: &[u8]) -> Option<Vec<u8>> {
    let mut a = Asm::default();
    a.b(code);
    let at = page + (INSN_OFF + code.len()) as u64;
    a.jmp(at, page + FALLTHROUGH_EPILOGUE_OFF as u64);
    if a.bytes.len() > INSN_SLOT {
        return None;
    }
    a.bytes.resize(INSN_SLOT, INT3);
    Some(a.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

    fn disasm(bytes: &[u8], ip: u64) -> Vec<String> {
        let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut out = Vec::new();
        for i in &mut d {
            assert!(!i.is_invalid(), "invalid encoding in stub");
            let mut s = String::new();
            f.format(&i, &mut s);
            out.push(s);
        }
        out
    }

    #[test]
    fn prologue_loads_every_register() {
        let text = disasm(&prologue(0x1000, 0x1800), 0x1000);
        assert_eq!(text[0], "push rbx");
        assert_eq!(text[6], "mov [rdi+88h],rsp");
        assert_eq!(text[7], "fxsave64 [rdi+530h]");
        assert_eq!(text[8], "fxrstor64 [rdi+130h]");
        assert_eq!(text[9], "push qword ptr [rdi+80h]");
        assert_eq!(text[10], "popfq");
        assert_eq!(text[11], "mov rax,[rdi]");
        assert!(text.contains(&"mov rsp,[rdi+20h]".to_string()));
        assert!(text.contains(&"mov r15,[rdi+78h]".to_string()));
        assert_eq!(text[text.len() - 2], "mov rdi,[rdi+38h]");
        assert_eq!(text[text.len() - 1], "jmp 0000000000001800h");
        assert_eq!(text.len(), 6 + 3 + 2 + 16 + 1);
    }

    #[test]
    fn epilogue_stores_every_register() {
        let text = disasm(&epilogue(0x1234_5678_9abc, EXIT_TAKEN), 0);
        assert_eq!(text[0], "mov [123456789ABCh],rax");
        assert_eq!(text[1], "mov rax,123456789ABCh");
        assert_eq!(text[2], "mov [rax+8],rcx");
        assert_eq!(text[5], "mov [rax+20h],rsp");
        assert_eq!(text[16], "mov [rax+78h],r15");
        assert_eq!(text[17], "lea rsp,[rax+130h]");
        assert_eq!(text[18], "pushfq");
        assert_eq!(text[19], "pop rcx");
        assert_eq!(text[20], "mov [rax+80h],rcx");
        assert_eq!(text[21], "mov qword ptr [rax+90h],2");
        assert_eq!(text[22], "fxsave64 [rax+330h]");
        assert_eq!(text[23], "cld");
        assert_eq!(text[24], "fxrstor64 [rax+530h]");
        assert_eq!(text[25], "mov rsp,[rax+88h]");
        assert_eq!(text.last().unwrap(), "ret");
    }

    #[test]
    fn page_layout_fits() {
        let p = code_page(0x40_0000, 0x7000_0000, 4096);
        assert_eq!(p.len(), 4096);
        let pad = disasm(&p[PAD_OFF..PAD_OFF + 5], 0x40_0000 + PAD_OFF as u64);
        assert_eq!(pad, ["jmp 0000000000400100h"]);
        let slot = insn_slot(0x40_0000, &[0x90]).unwrap();
        let text = disasm(&slot[..6], 0x40_0000 + INSN_OFF as u64);
        assert_eq!(text, ["nop", "jmp 0000000000400200h"]);
        assert!(insn_slot(0, &[0x90; 60]).is_none());
    }
}

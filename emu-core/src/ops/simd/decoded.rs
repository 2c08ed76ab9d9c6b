//! The decoded forms of the moves compiled memcpy, memset and struct
//! copies are made of: MOVDQU/MOVUPS/MOVUPD and MOVDQA/MOVAPS/MOVAPD
//! loads and stores with a memory operand, and PXOR/XORPS/XORPD of two
//! registers. They run from the [`Decoded`] form of the block cache, whose
//! memory operand is resolved at decode time, through its handler pointer
//! (as the AMD variants of `exec::fast` are), so the block loop itself is
//! unchanged. Each specialises the family handler of `moves.rs` or
//! `logic.rs` for one operand shape with the same checks and the same
//! 16-byte access helpers; the differential tests run both (with the block
//! cache on and off).

use super::operand::{xmm_index, Align};
use crate::exception::ExecResult;
use crate::exec::decoded::{Decoded, Fast};
use crate::exec::Exec;
use iced_x86::{Code, Instruction, OpKind};

const fn align(aligned: bool) -> Align {
    if aligned {
        Align::Aligned
    } else {
        Align::Unaligned
    }
}

/// `xmm ← m128`.
fn load<const ALIGNED: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.sse_check()?;
    let off = x.ea_of(&d.mem);
    let v = x.load_vec(d.mem.seg, off, 16, align(ALIGNED))?;
    x.cpu.fpu.xmm[xmm_index(d.ins.op0_register())] = v;
    Ok(())
}

/// `m128 ← xmm`.
fn store<const ALIGNED: bool>(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.sse_check()?;
    let v = x.cpu.fpu.xmm[xmm_index(d.ins.op1_register())];
    let off = x.ea_of(&d.mem);
    x.store_vec(d.mem.seg, off, 16, v, align(ALIGNED))
}

/// `xmm ← xmm XOR xmm` (PXOR, XORPS, XORPD: the same 128 bits).
fn xor_rr(x: &mut Exec, d: &Decoded) -> ExecResult {
    x.sse_check()?;
    let s = x.cpu.fpu.xmm[xmm_index(d.ins.op1_register())];
    x.cpu.fpu.xmm[xmm_index(d.ins.op0_register())] ^= s;
    Ok(())
}

/// The decoded form of `ins`, if it has one.
pub(crate) fn decoded_form(ins: &Instruction) -> Option<Fast> {
    use Code::*;
    let mem = |n: u32| ins.op_kind(n) == OpKind::Memory;
    Some(match ins.code() {
        Movaps_xmm_xmmm128 | Movapd_xmm_xmmm128 | Movdqa_xmm_xmmm128 if mem(1) => load::<true>,
        Movups_xmm_xmmm128 | Movupd_xmm_xmmm128 | Movdqu_xmm_xmmm128 if mem(1) => load::<false>,
        Movaps_xmmm128_xmm | Movapd_xmmm128_xmm | Movdqa_xmmm128_xmm if mem(0) => store::<true>,
        Movups_xmmm128_xmm | Movupd_xmmm128_xmm | Movdqu_xmmm128_xmm if mem(0) => store::<false>,
        Pxor_xmm_xmmm128 | Xorps_xmm_xmmm128 | Xorpd_xmm_xmmm128 if !mem(1) => xor_rr,
        _ => return None,
    })
}

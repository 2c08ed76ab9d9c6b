//! The memset/memcpy work of `memops`, done with the 16-byte SSE moves a
//! compiler emits for memcpy, memset and struct copies (MOVDQU, MOVDQA,
//! MOVUPS, MOVAPS, MOVQ, PUNPCKLQDQ, PXOR): the same memory effects, so
//! the same checksum as `memops-rep` and `memops-loop`.

use super::memops::{model, params, BUF_A, BUF_B};
use super::{build, must, Bench, Scale};
use iced_x86::code_asm::*;

/// Copies `len` (at least 16) bytes from `rsi` to `rdi` in 16-byte pieces,
/// the last one overlapping the one before it when `len` is not a
/// multiple of 16, as compiled memcpy does. `aligned` uses MOVDQA/MOVAPS
/// for the pieces that are (all but an overlapping tail). Uses RCX, RDX,
/// XMM3.
fn copy16(a: &mut CodeAssembler, len: u64, aligned: bool) -> Result<(), IcedError> {
    let mut l = a.create_label();
    a.mov(rcx, len / 16)?;
    a.xor(edx, edx)?;
    a.set_label(&mut l)?;
    if aligned {
        a.movaps(xmm3, xmmword_ptr(rsi + rdx))?;
        a.movdqa(xmmword_ptr(rdi + rdx), xmm3)?;
    } else {
        a.movdqu(xmm3, xmmword_ptr(rsi + rdx))?;
        a.movups(xmmword_ptr(rdi + rdx), xmm3)?;
    }
    a.add(rdx, 16)?;
    a.dec(rcx)?;
    a.jnz(l)?;
    if !len.is_multiple_of(16) {
        let tail = (len - 16) as i32;
        a.movdqu(xmm3, xmmword_ptr(rsi + tail))?;
        a.movdqu(xmmword_ptr(rdi + tail), xmm3)?;
    }
    Ok(())
}

/// Fills `len` (at least 16) bytes at `rdi` with the 16 bytes in XMM0, the
/// tail overlapping as in [`copy16`]. Uses RCX, RDX.
fn fill16(a: &mut CodeAssembler, len: u64, aligned: bool) -> Result<(), IcedError> {
    let mut l = a.create_label();
    a.mov(rcx, len / 16)?;
    a.xor(edx, edx)?;
    a.set_label(&mut l)?;
    if aligned {
        a.movdqa(xmmword_ptr(rdi + rdx), xmm0)?;
    } else {
        a.movdqu(xmmword_ptr(rdi + rdx), xmm0)?;
    }
    a.add(rdx, 16)?;
    a.dec(rcx)?;
    a.jnz(l)?;
    if !len.is_multiple_of(16) {
        a.movdqu(xmmword_ptr(rdi + (len - 16) as i32), xmm0)?;
    }
    Ok(())
}

/// memset/memcpy over 1 MiB buffers with SSE moves.
pub fn mem_sse(scale: Scale) -> Bench {
    let (size, passes) = params(scale);
    let image = build(|a| {
        let mut pass_loop = a.create_label();
        let mut sum_loop = a.create_label();
        // SSE needs CR4.OSFXSR; CR0.EM is clear at boot.
        a.mov(rax, cr4)?;
        a.or(rax, 0x600)?;
        a.mov(cr4, rax)?;
        a.xor(r14, r14)?;
        a.xor(r13, r13)?;
        a.set_label(&mut pass_loop)?;
        // memset A with a qword pattern, 16 aligned bytes at a time.
        a.lea(rax, qword_ptr(r13 + 1))?;
        a.mov(rdx, 0x0101_0101_0101_0101u64)?;
        a.imul_2(rax, rdx)?;
        a.xor(rax, 0x1234)?;
        a.pxor(xmm0, xmm0)?;
        a.movq(xmm0, rax)?;
        a.punpcklqdq(xmm0, xmm0)?;
        a.mov(rdi, BUF_A)?;
        fill16(a, size, true)?;
        // memset B+1 .. B+size-1 with a byte.
        a.lea(eax, dword_ptr(r13 + 1))?;
        a.movzx(eax, al)?;
        a.mov(rdx, 0x0101_0101_0101_0101u64)?;
        a.imul_2(rax, rdx)?;
        a.movq(xmm0, rax)?;
        a.punpcklqdq(xmm0, xmm0)?;
        a.mov(rdi, BUF_B + 1)?;
        fill16(a, size - 2, false)?;
        // memcpy B+3 <- A+1, size-8 bytes (misaligned both sides).
        a.mov(rsi, BUF_A + 1)?;
        a.mov(rdi, BUF_B + 3)?;
        copy16(a, size - 8, false)?;
        // memcpy A <- B, size-8 bytes, aligned both sides.
        a.mov(rsi, BUF_B)?;
        a.mov(rdi, BUF_A)?;
        copy16(a, size - 8, true)?;
        // Sample both buffers every 256 bytes.
        a.xor(ecx, ecx)?;
        a.mov(rsi, BUF_A)?;
        a.mov(rdi, BUF_B)?;
        a.set_label(&mut sum_loop)?;
        a.imul_3(r14, r14, 3)?;
        a.add(r14, qword_ptr(rsi + rcx))?;
        a.add(r14, qword_ptr(rdi + rcx))?;
        a.add(rcx, 256)?;
        a.cmp(rcx, size as i32)?;
        a.jb(sum_loop)?;
        a.inc(r13)?;
        a.cmp(r13, passes as i32)?;
        a.jb(pass_loop)?;
        a.mov(rax, r14)
    });
    Bench {
        name: "memops-sse",
        about: "memset/memcpy of 1 MiB with 16-byte SSE moves, as compiled code does",
        image: must(image, "memops-sse"),
        memory_mib: 128,
        vcpus: 1,
        expected: Some(model(size, passes)),
    }
}

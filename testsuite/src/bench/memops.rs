//! memcpy/memset, once with REP string instructions and once with explicit
//! loops. Both variants do the same copies and print the same checksum.

use super::{build, must, Bench, Scale};
use iced_x86::code_asm::*;

pub(super) const BUF_A: u64 = 0x100_0000;
pub(super) const BUF_B: u64 = 0x200_0000;

pub(super) fn params(scale: Scale) -> (u64, u64) {
    match scale {
        Scale::Full => (1 << 20, 24),
        Scale::Test => (1 << 12, 3),
    }
}

fn pattern(pass: u64) -> u64 {
    (pass + 1).wrapping_mul(0x0101_0101_0101_0101) ^ 0x1234
}

/// What the guest computes, on host memory.
pub(super) fn model(size: u64, passes: u64) -> u64 {
    let n = size as usize;
    let mut a = vec![0u8; n + 8];
    let mut b = vec![0u8; n + 8];
    let mut acc = 0u64;
    for pass in 0..passes {
        let v = pattern(pass).to_le_bytes();
        for i in 0..n / 8 {
            a[i * 8..i * 8 + 8].copy_from_slice(&v);
        }
        b[1..n - 1].fill((pass as u8).wrapping_add(1));
        let src = a[1..n - 7].to_vec();
        b[3..3 + src.len()].copy_from_slice(&src);
        for i in 0..n / 8 - 1 {
            let q: [u8; 8] = b[i * 8..i * 8 + 8].try_into().unwrap_or_default();
            a[i * 8..i * 8 + 8].copy_from_slice(&q);
        }
        let mut off = 0;
        while off < n {
            let qa = u64::from_le_bytes(a[off..off + 8].try_into().unwrap_or_default());
            let qb = u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or_default());
            acc = acc.wrapping_mul(3).wrapping_add(qa).wrapping_add(qb);
            off += 256;
        }
    }
    acc
}

/// memset/memcpy over 1 MiB buffers; `rep` selects REP STOS/MOVS or loops.
pub fn mem(scale: Scale, rep: bool) -> Bench {
    let (size, passes) = params(scale);
    let image = build(|a| {
        let mut pass_loop = a.create_label();
        let mut sum_loop = a.create_label();
        a.xor(r14, r14)?;
        a.xor(r13, r13)?;
        a.set_label(&mut pass_loop)?;
        // memset A with a qword pattern.
        a.lea(rax, qword_ptr(r13 + 1))?;
        a.mov(rdx, 0x0101_0101_0101_0101u64)?;
        a.imul_2(rax, rdx)?;
        a.xor(rax, 0x1234)?;
        a.mov(rdi, BUF_A)?;
        a.mov(rcx, size / 8)?;
        if rep {
            a.rep().stosq()?;
        } else {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            a.mov(qword_ptr(rdi), rax)?;
            a.add(rdi, 8)?;
            a.dec(rcx)?;
            a.jnz(l)?;
        }
        // memset B+1 .. B+size-1 with a byte.
        a.lea(eax, dword_ptr(r13 + 1))?;
        a.mov(rdi, BUF_B + 1)?;
        a.mov(rcx, size - 2)?;
        if rep {
            a.rep().stosb()?;
        } else {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            a.mov(byte_ptr(rdi), al)?;
            a.inc(rdi)?;
            a.dec(rcx)?;
            a.jnz(l)?;
        }
        // memcpy B+3 <- A+1, size-8 bytes (misaligned both sides).
        a.mov(rsi, BUF_A + 1)?;
        a.mov(rdi, BUF_B + 3)?;
        a.mov(rcx, size - 8)?;
        if rep {
            a.rep().movsb()?;
        } else {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            a.movzx(eax, byte_ptr(rsi))?;
            a.mov(byte_ptr(rdi), al)?;
            a.inc(rsi)?;
            a.inc(rdi)?;
            a.dec(rcx)?;
            a.jnz(l)?;
        }
        // memcpy A <- B, qwords.
        a.mov(rsi, BUF_B)?;
        a.mov(rdi, BUF_A)?;
        a.mov(rcx, size / 8 - 1)?;
        if rep {
            a.rep().movsq()?;
        } else {
            let mut l = a.create_label();
            a.set_label(&mut l)?;
            a.mov(rax, qword_ptr(rsi))?;
            a.mov(qword_ptr(rdi), rax)?;
            a.add(rsi, 8)?;
            a.add(rdi, 8)?;
            a.dec(rcx)?;
            a.jnz(l)?;
        }
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
    let name = if rep { "memops-rep" } else { "memops-loop" };
    Bench {
        name,
        about: if rep {
            "memset/memcpy of 1 MiB with REP STOSB/STOSQ/MOVSB/MOVSQ"
        } else {
            "memset/memcpy of 1 MiB with byte and qword loops"
        },
        image: must(image, name),
        memory_mib: 128,
        vcpus: 1,
        expected: Some(model(size, passes)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pattern_is_not_trivial() {
        assert_ne!(super::pattern(0), super::pattern(1));
    }
}

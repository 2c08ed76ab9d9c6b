//! CPU-bound guests: a byte sieve, a xorshift/multiply loop and call-heavy
//! recursion. Each has a Rust model of its checksum.

use super::{build, emit_xorshift, must, Bench, Scale};
use iced_x86::code_asm::*;

/// Where the sieve's byte array lives.
const SIEVE_BUF: u64 = 0x100_0000;

fn sieve_params(scale: Scale) -> (u64, u64) {
    match scale {
        Scale::Full => (4 << 20, 3),
        Scale::Test => (1 << 14, 2),
    }
}

fn sieve_model(n: u64, passes: u64) -> u64 {
    let mut acc = 0u64;
    for pass in 0..passes {
        let mut buf = vec![1u8; n as usize];
        buf[0] = 0;
        buf[1] = 0;
        let mut i = 2u64;
        while i * i < n {
            if buf[i as usize] != 0 {
                let mut j = i * i;
                while j < n {
                    buf[j as usize] = 0;
                    j += i;
                }
            }
            i += 1;
        }
        let count: u64 = buf.iter().map(|&b| u64::from(b)).sum();
        acc = acc.wrapping_mul(31).wrapping_add(count).wrapping_add(pass);
    }
    acc
}

/// Sieve of Eratosthenes over a byte array, a few passes.
pub fn sieve(scale: Scale) -> Bench {
    let (n, passes) = sieve_params(scale);
    let image = build(|a| {
        let mut pass_loop = a.create_label();
        let mut fill = a.create_label();
        let mut outer = a.create_label();
        let mut inner = a.create_label();
        let mut next = a.create_label();
        let mut count = a.create_label();
        let mut count_loop = a.create_label();
        a.xor(r14, r14)?; // acc
        a.xor(r13, r13)?; // pass
        a.mov(rsi, SIEVE_BUF)?;
        a.mov(r12, n)?;
        a.set_label(&mut pass_loop)?;
        a.mov(rdi, rsi)?;
        a.mov(rcx, n / 8)?;
        a.mov(rax, 0x0101_0101_0101_0101u64)?;
        a.set_label(&mut fill)?;
        a.mov(qword_ptr(rdi), rax)?;
        a.add(rdi, 8)?;
        a.dec(rcx)?;
        a.jnz(fill)?;
        a.mov(word_ptr(rsi), 0)?;
        a.mov(ebx, 2)?;
        a.set_label(&mut outer)?;
        a.mov(rax, rbx)?;
        a.imul_2(rax, rbx)?;
        a.cmp(rax, r12)?;
        a.jae(count)?;
        a.cmp(byte_ptr(rsi + rbx), 0)?;
        a.je(next)?;
        a.set_label(&mut inner)?;
        a.mov(byte_ptr(rsi + rax), 0)?;
        a.add(rax, rbx)?;
        a.cmp(rax, r12)?;
        a.jb(inner)?;
        a.set_label(&mut next)?;
        a.inc(rbx)?;
        a.jmp(outer)?;
        a.set_label(&mut count)?;
        a.xor(eax, eax)?;
        a.xor(ecx, ecx)?;
        a.set_label(&mut count_loop)?;
        a.movzx(edx, byte_ptr(rsi + rcx))?;
        a.add(rax, rdx)?;
        a.inc(rcx)?;
        a.cmp(rcx, r12)?;
        a.jb(count_loop)?;
        a.imul_3(r14, r14, 31)?;
        a.add(r14, rax)?;
        a.add(r14, r13)?;
        a.inc(r13)?;
        a.cmp(r13, passes as i32)?;
        a.jb(pass_loop)?;
        a.mov(rax, r14)
    });
    Bench {
        name: "sieve",
        about: "byte sieve of Eratosthenes (loads, stores, compares)",
        image: must(image, "sieve"),
        memory_mib: 128,
        vcpus: 1,
        expected: Some(sieve_model(n, passes)),
    }
}

const XS_SEED: u64 = 0x2545_f491_4f6c_dd1d;
const XS_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const XS_MUL2: u64 = 0xd6e8_feb8_6659_fd93;

fn xorshift_model(n: u64) -> u64 {
    let (mut x, mut acc) = (XS_SEED, 0u64);
    for _ in 0..n {
        x = super::xorshift(x);
        acc = acc.wrapping_mul(XS_MUL).wrapping_add(x);
        let hi = ((u128::from(x) * u128::from(XS_MUL2)) >> 64) as u64;
        acc = acc.wrapping_add(hi);
    }
    acc
}

/// A xorshift64 generator folded with IMUL and a widening MUL.
pub fn xorshift(scale: Scale) -> Bench {
    let n = match scale {
        Scale::Full => 12_000_000,
        Scale::Test => 20_000,
    };
    let image = build(|a| {
        let mut lp = a.create_label();
        a.mov(rbx, XS_SEED)?;
        a.xor(r14, r14)?;
        a.mov(rcx, n)?;
        a.mov(r8, XS_MUL)?;
        a.mov(r9, XS_MUL2)?;
        a.set_label(&mut lp)?;
        emit_xorshift(a, rbx, rax)?;
        a.imul_2(r14, r8)?;
        a.add(r14, rbx)?;
        a.mov(rax, rbx)?;
        a.mul(r9)?;
        a.add(r14, rdx)?;
        a.dec(rcx)?;
        a.jnz(lp)?;
        a.mov(rax, r14)
    });
    Bench {
        name: "xorshift",
        about: "xorshift64 with IMUL and MUL (register-only ALU)",
        image: must(image, "xorshift"),
        memory_mib: 128,
        vcpus: 1,
        expected: Some(xorshift_model(n)),
    }
}

fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// Stack of the recursion guest (the kit's boot stack is too small).
const DEEP_STACK: u64 = 0x400_0000;

/// Recursive Fibonacci (CALL/RET/PUSH/POP) plus a deep linear recursion.
pub fn recursion(scale: Scale) -> Bench {
    let (n, reps, depth) = match scale {
        Scale::Full => (30u64, 8u64, 50_000u64),
        Scale::Test => (12, 2, 1000),
    };
    let image = build(|a| {
        let mut fib_l = a.create_label();
        let mut fib_base = a.create_label();
        let mut sum_l = a.create_label();
        let mut sum_base = a.create_label();
        let mut over = a.create_label();
        let mut rep = a.create_label();
        a.mov(rsp, DEEP_STACK)?;
        a.jmp(over)?;
        // fib(rdi) -> rax
        a.set_label(&mut fib_l)?;
        a.cmp(rdi, 2)?;
        a.jb(fib_base)?;
        a.push(rdi)?;
        a.dec(rdi)?;
        a.call(fib_l)?;
        a.pop(rdi)?;
        a.push(rax)?;
        a.sub(rdi, 2)?;
        a.call(fib_l)?;
        a.pop(rcx)?;
        a.add(rax, rcx)?;
        a.ret()?;
        a.set_label(&mut fib_base)?;
        a.mov(rax, rdi)?;
        a.ret()?;
        // sum(rdi) = rdi + sum(rdi - 1), sum(0) = 0
        a.set_label(&mut sum_l)?;
        a.test(rdi, rdi)?;
        a.jz(sum_base)?;
        a.push(rdi)?;
        a.dec(rdi)?;
        a.call(sum_l)?;
        a.pop(rdi)?;
        a.add(rax, rdi)?;
        a.ret()?;
        a.set_label(&mut sum_base)?;
        a.xor(eax, eax)?;
        a.ret()?;
        a.set_label(&mut over)?;
        a.xor(r14, r14)?;
        a.mov(r13, reps)?;
        a.set_label(&mut rep)?;
        a.mov(rdi, n)?;
        a.call(fib_l)?;
        a.imul_3(r14, r14, 7)?;
        a.add(r14, rax)?;
        a.mov(rdi, depth)?;
        a.call(sum_l)?;
        a.add(r14, rax)?;
        a.dec(r13)?;
        a.jnz(rep)?;
        a.mov(rax, r14)
    });
    let mut acc = 0u64;
    for _ in 0..reps {
        acc = acc.wrapping_mul(7).wrapping_add(fib(n));
        acc = acc.wrapping_add(depth * (depth + 1) / 2);
    }
    Bench {
        name: "recursion",
        about: "recursive Fibonacci and a 50000-deep recursion (CALL/RET/PUSH/POP)",
        image: must(image, "recursion"),
        memory_mib: 128,
        vcpus: 1,
        expected: Some(acc),
    }
}

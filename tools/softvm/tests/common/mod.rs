//! Guests the runner's end-to-end tests share (`softvm test` on plain
//! directories and on kvm-unit-tests trees): built with the guest kit, each
//! ending the way a test kernel ends.

#![allow(dead_code)] // Each test binary uses its own subset.

use iced_x86::code_asm::*;
use testsuite::guest;

pub fn long_mode(body: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    guest::long_mode(body).unwrap()
}

/// Print `text`, then write `v` to the exit port.
pub fn exits(v: u32, text: &str) -> Vec<u8> {
    long_mode(|a| {
        guest::print(a, text)?;
        guest::exit(a, v)
    })
}

/// Load an empty IDT and raise #UD: a triple fault.
pub fn triple_fault() -> Vec<u8> {
    long_mode(|a| {
        a.mov(rax, guest::DATA)?;
        a.mov(qword_ptr(rax), 0)?;
        a.mov(word_ptr(rax + 8), 0)?;
        a.lidt(ptr(rax))?;
        a.ud2()
    })
}

/// Loop forever.
pub fn spin() -> Vec<u8> {
    long_mode(|a| {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.jmp(l)
    })
}

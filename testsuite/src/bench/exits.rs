//! Exit-heavy guests: a hello world (whole-process cost of a tiny test
//! binary) and a port-I/O + MMIO loop where every access leaves the CPU.

use super::{build, must, Bench, Scale};
use crate::guest;
use iced_x86::code_asm::*;

/// A hello-world class guest: a few hundred instructions.
pub fn hello() -> Bench {
    let image = build(|a| {
        guest::print(a, "hello, world\n")?;
        a.mov(rax, 0x600d_cafe_u64)
    });
    Bench {
        name: "hello",
        about: "hello world: whole-process start-up cost",
        image: must(image, "hello"),
        memory_mib: 128,
        vcpus: 1,
        expected: Some(0x600d_cafe),
    }
}

/// An unassigned guest-physical address in the PCI hole (no RAM, no device
/// in softvm or QEMU's pc machine): MMIO reads and writes go to the VMM.
const MMIO_ADDR: u64 = 0xd000_0000;

/// Port I/O and MMIO in a loop: OUT to port 0x80, the fw_cfg signature read
/// byte by byte, an MMIO write and an MMIO read.
pub fn port_mmio(scale: Scale) -> Bench {
    let n: u64 = match scale {
        Scale::Full => 150_000,
        Scale::Test => 100,
    };
    let image = build(|a| {
        let mut lp = a.create_label();
        a.xor(r14, r14)?;
        a.mov(r12, n)?;
        a.mov(rdi, MMIO_ADDR)?;
        a.set_label(&mut lp)?;
        a.mov(al, 0x5a)?;
        a.out(0x80, al)?;
        // fw_cfg: select the signature, read "QEMU".
        a.mov(dx, 0x510)?;
        a.xor(eax, eax)?;
        a.out(dx, ax)?;
        a.mov(dx, 0x511)?;
        for _ in 0..4 {
            a.in_(al, dx)?;
            a.movzx(eax, al)?;
            a.add(r14, rax)?;
        }
        // MMIO: the value read is whatever the platform answers; only
        // "not this magic" is folded in, which holds on both.
        a.mov(dword_ptr(rdi), r12d)?;
        a.mov(eax, dword_ptr(rdi))?;
        a.cmp(eax, 0x1234_5678)?;
        a.setne(al)?;
        a.movzx(eax, al)?;
        a.add(r14, rax)?;
        a.dec(r12)?;
        a.jnz(lp)?;
        a.mov(rax, r14)
    });
    let per_iter = u64::from(b'Q') + u64::from(b'E') + u64::from(b'M') + u64::from(b'U') + 1;
    Bench {
        name: "port-mmio",
        about: "8 port-I/O and MMIO exits per iteration (OUT, fw_cfg IN, MMIO)",
        image: must(image, "port-mmio"),
        memory_mib: 128,
        vcpus: 1,
        expected: Some(n * per_iter),
    }
}

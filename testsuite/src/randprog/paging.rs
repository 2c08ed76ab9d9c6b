//! Random page-table layouts with faulting accesses from ring 3.

use crate::gen::Rng;
use crate::guest;
use crate::kvm::kit::{Kit, Stash, RESUME};
use iced_x86::code_asm::*;

/// The virtual window (PML4 entry 1): [`PAGES`] 4 KiB pages.
pub const VA: u64 = 0x80_0000_0000;
pub const PAGES: u64 = 32;
const PDPT: u64 = 0x40_0000;
const PD: u64 = PDPT + 0x1000;
const PT: u64 = PDPT + 0x2000;
/// The physical frames pages map to (several pages may share one).
const FRAMES: u64 = 0x50_0000;
const NFRAMES: u64 = 12;

const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;

fn random_pte(rng: &mut Rng) -> u64 {
    if rng.chance(15) {
        // Absent; sometimes with junk in the other bits.
        return if rng.chance(30) {
            rng.next_u64() & 0x000f_ffff_ffff_f000 & !P
        } else {
            0
        };
    }
    let frame = FRAMES + rng.below(NFRAMES) * 0x1000;
    let mut e = frame | P;
    if rng.chance(65) {
        e |= RW;
    }
    if rng.chance(85) {
        e |= US;
    }
    e
}

/// A random paging program: a layout of `PAGES` pages, then phases of
/// ring-3 loads, stores and read-modify-writes (some crossing pages, many
/// faulting), each phase after changing some entries (INVLPG or a CR3
/// reload). Prints a checksum of the loaded values, the dirty bits, and a
/// checksum of the frames.
pub fn paging_program(seed: u64) -> Result<Vec<u8>, IcedError> {
    let mut rng = Rng::new(seed ^ 0x9a91_0000_0000_0000);
    guest::long_mode(|a| {
        let k = Kit::install(a)?;
        k.enable_user(a)?;
        let mut st = Stash::default();
        // Frames: a pattern each, plus a few random qwords.
        for f in 0..NFRAMES {
            a.mov(rax, rng.next_u64())?;
            a.mov(rdi, FRAMES + f * 0x1000)?;
            a.mov(ecx, 512)?;
            a.rep().stosq()?;
            for _ in 0..4 {
                a.mov(rax, rng.next_u64())?;
                a.mov(qword_ptr(FRAMES + f * 0x1000 + rng.below(512) * 8), rax)?;
            }
        }
        a.mov(rax, PDPT | P | RW | US)?;
        a.mov(qword_ptr(guest::PML4 + 8), rax)?;
        a.mov(rax, PD | P | RW | US)?;
        a.mov(qword_ptr(PDPT), rax)?;
        a.mov(rax, PT | P | RW | US)?;
        a.mov(qword_ptr(PD), rax)?;
        let mut ptes: Vec<u64> = (0..PAGES).map(|_| random_pte(&mut rng)).collect();
        for (i, e) in ptes.iter().enumerate() {
            a.mov(rax, *e)?;
            a.mov(qword_ptr(PT + 8 * i as u64), rax)?;
        }
        a.mov(rax, cr3)?;
        a.mov(cr3, rax)?;
        // CR0.WP does not matter to ring 3 but set it anyway.
        a.mov(rax, cr0)?;
        a.bts(rax, 16)?;
        a.mov(cr0, rax)?;
        a.xor(r15, r15)?;
        let phases = 4;
        for phase in 0..phases {
            if phase > 0 {
                let changes = 2 + rng.below(5);
                let flush_all = rng.chance(30);
                for _ in 0..changes {
                    let i = rng.below(PAGES);
                    ptes[i as usize] = random_pte(&mut rng);
                    a.mov(rax, ptes[i as usize])?;
                    a.mov(qword_ptr(PT + 8 * i), rax)?;
                    if !flush_all {
                        a.mov(rax, VA + i * 0x1000)?;
                        a.invlpg(ptr(rax))?;
                    }
                }
                // Sometimes take away write or user access for the whole
                // window at the directory level.
                let pde = if rng.chance(20) {
                    PT | P | rng.pick(&[US, RW])
                } else {
                    PT | P | RW | US
                };
                a.mov(rax, pde)?;
                a.mov(qword_ptr(PD), rax)?;
                a.mov(rax, cr3)?;
                a.mov(cr3, rax)?;
            }
            k.user(a, |a| {
                a.mov(r13, VA)?;
                for _ in 0..20 {
                    let page = rng.below(PAGES);
                    let size = rng.pick(&[1u64, 2, 4, 8]);
                    let cross = size > 1 && rng.chance(10);
                    let off = if cross {
                        0x1000 - size + 1 + rng.below(size - 1)
                    } else {
                        rng.below(0x1000 / size) * size
                    };
                    let at = page * 0x1000 + off;
                    let at = at.min(PAGES * 0x1000 - size);
                    let kind = if cross { 0 } else { rng.below(3) };
                    let mut after = a.create_label();
                    a.mov(rbx, rng.next_u64())?;
                    a.mov(rax, rng.next_u64())?;
                    a.lea(r12, ptr(after))?;
                    a.mov(qword_ptr(RESUME), r12)?;
                    let m = r13 + at;
                    match (kind, size) {
                        (0, 1) => a.mov(al, byte_ptr(m))?,
                        (0, 2) => a.mov(ax, word_ptr(m))?,
                        (0, 4) => a.mov(eax, dword_ptr(m))?,
                        (0, _) => a.mov(rax, qword_ptr(m))?,
                        (1, 1) => a.mov(byte_ptr(m), bl)?,
                        (1, 2) => a.mov(word_ptr(m), bx)?,
                        (1, 4) => a.mov(dword_ptr(m), ebx)?,
                        (1, _) => a.mov(qword_ptr(m), rbx)?,
                        (_, 1) => a.add(byte_ptr(m), bl)?,
                        (_, 2) => a.xadd(word_ptr(m), bx)?,
                        (_, 4) => a.sub(dword_ptr(m), ebx)?,
                        (_, _) => a.xor(qword_ptr(m), rbx)?,
                    }
                    a.set_label(&mut after)?;
                    a.mov(qword_ptr(RESUME), 0)?;
                    a.xor(r15, rax)?;
                    a.rol(r15, 9)?;
                    a.xor(r15, rbx)?;
                    a.rol(r15, 5)?;
                }
                st.put(a, &format!("phase {phase} sum"), r15)?;
                Ok(())
            })?;
        }
        st.print(a, &k)?;
        // Dirty bits of the window's entries, as a mask.
        a.xor(edx, edx)?;
        for i in 0..PAGES {
            a.mov(rax, qword_ptr(PT + 8 * i))?;
            a.shr(eax, 6)?;
            a.and(eax, 1)?;
            a.shl(rax, i as u32)?;
            a.or(rdx, rax)?;
        }
        k.show(a, "dirty", rdx)?;
        // Checksum of the frames.
        a.xor(rdx, rdx)?;
        a.mov(rsi, FRAMES)?;
        a.mov(ecx, (NFRAMES * 512) as u32)?;
        let mut lp = a.create_label();
        a.set_label(&mut lp)?;
        a.xor(rdx, qword_ptr(rsi))?;
        a.rol(rdx, 3)?;
        a.add(rsi, 8)?;
        a.dec(ecx)?;
        a.jnz(lp)?;
        k.show(a, "frames", rdx)?;
        guest::exit(a, 0)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn programs_are_reproducible() {
        assert_eq!(
            super::paging_program(3).unwrap(),
            super::paging_program(3).unwrap()
        );
        assert_ne!(
            super::paging_program(3).unwrap(),
            super::paging_program(4).unwrap()
        );
    }
}

//! Property test: thousands of seeded random mutations of valid images
//! (bit flips, byte and field overwrites, truncation, extension) must never
//! make `detect` or `load` panic, and a failed load must leave guest memory
//! untouched.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::elfbuild::*;
use common::*;
use loader::{detect, load, LoadOptions, Module};

const MIB: u64 = 1 << 20;
/// Small RAM keeps the zero-filling of mutated (huge) bss segments cheap.
const RAM: u64 = 2 * MIB;
const ITERATIONS: usize = 10_000;
/// Every this many iterations, RAM is cleared first and a refused load is
/// checked to have left it untouched.
const CHECK_EVERY: usize = 64;

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut v = vec![
        ElfBuilder::multiboot32(0x10_0000)
            .seg(0x10_0000, &[0xf4; 64], 0x400)
            .seg(0x10_1000, &[1; 16], 0x1000)
            .build(),
        ElfBuilder::elf64(0x10_0010)
            .seg(0x10_0000, &[0x90; 64], 0x800)
            .seg(0x12_0000, &[2; 8], 0x100)
            .build(),
        kludge_image(0x10_0000, &[0xf4; 48], 0x10_2000),
    ];
    let mut e64mb = ElfBuilder::elf64(0x10_0000).seg(0x10_0000, &[0; 32], 32);
    e64mb.multiboot = Some((0x3, vec![]));
    v.push(e64mb.build());
    if let Some(hello) = conformance_guest("hello.elf") {
        v.push(hello);
    }
    v
}

/// Values that tend to hit edge cases when written over a field.
fn interesting(rng: &mut Rng, len: usize) -> u64 {
    let table = [
        0,
        1,
        2,
        0x7f,
        0x80,
        0xff,
        0xffff,
        0x1000,
        0x10_0000,
        0x20_0000,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        u64::MAX,
        u64::MAX - 1,
        i64::MAX as u64,
        len as u64,
        len.saturating_sub(1) as u64,
        MB_MAGIC as u64,
    ];
    if rng.chance(4) {
        rng.next()
    } else {
        table[rng.below(table.len())]
    }
}

fn mutate(rng: &mut Rng, img: &mut Vec<u8>) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        // Most interesting fields live in the first few hundred bytes.
        let hot = img.len().min(if rng.chance(3) { usize::MAX } else { 256 });
        match rng.below(6) {
            0 => {
                if !img.is_empty() {
                    let at = rng.below(hot);
                    img[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                if !img.is_empty() {
                    let at = rng.below(hot);
                    img[at] = interesting(rng, img.len()) as u8;
                }
            }
            2 | 3 => {
                let width = [2usize, 4, 8][rng.below(3)];
                if img.len() >= width {
                    let at = rng.below(hot.min(img.len() - width + 1));
                    let v = interesting(rng, img.len()).to_le_bytes();
                    img[at..at + width].copy_from_slice(&v[..width]);
                }
            }
            4 => {
                let n = rng.below(img.len() + 1);
                img.truncate(n);
            }
            _ => {
                let n = rng.below(64);
                for _ in 0..n {
                    img.push(rng.next() as u8);
                }
            }
        }
    }
}

fn options(rng: &mut Rng) -> LoadOptions {
    let mut o = LoadOptions {
        mem_size: [MIB, RAM, RAM - 4096][rng.below(3)],
        cmdline: String::new(),
        modules: Vec::new(),
        vcpus: 1 + rng.below(2) as u32,
    };
    if rng.chance(3) {
        o.cmdline = "console=ttyS0".into();
    }
    if rng.chance(4) {
        o.modules
            .push(Module::new("mod", vec![7; rng.below(0x3000)]));
    }
    o
}

#[test]
fn mutated_images_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let gm = guest_memory(RAM);
    let zeros = vec![0u8; RAM as usize];
    let (mut loaded, mut refused) = (0usize, 0usize);
    for i in 0..ITERATIONS {
        let mut img = seeds[i % seeds.len()].clone();
        mutate(&mut rng, &mut img);
        let o = options(&mut rng);
        let check = i % CHECK_EVERY == 0;
        if check {
            gm.write_phys(softmmu::Gpa::new(0), &zeros).unwrap();
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _ = detect(&img);
            load(&img, &gm, &o)
        }));
        match outcome {
            Err(_) => panic!(
                "iteration {i}: the loader panicked on a {}-byte image: {:02x?}",
                img.len(),
                &img[..img.len().min(128)]
            ),
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => {
                refused += 1;
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "iteration {i}: {msg:?}");
                if check {
                    assert!(
                        read(&gm, 0, RAM as usize) == zeros,
                        "iteration {i}: a refused load wrote memory ({msg})"
                    );
                }
            }
        }
    }
    eprintln!("{loaded} mutated images loaded, {refused} refused");
    assert!(loaded > 0 && refused > 0);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    let gm = guest_memory(RAM);
    let o = LoadOptions {
        mem_size: RAM,
        ..LoadOptions::default()
    };
    for _ in 0..2000 {
        let n = rng.below(512);
        let mut img: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        // Half the time, look like ELF or multiboot to get past the magic.
        if rng.chance(2) && img.len() >= 4 {
            img[..4].copy_from_slice(b"\x7fELF");
        } else if img.len() >= 12 && rng.chance(2) {
            img[..12].copy_from_slice(&multiboot_header(rng.next() as u32, &[])[..12]);
        }
        let _ = detect(&img);
        let _ = load(&img, &gm, &o);
    }
}

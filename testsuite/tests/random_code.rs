//! Guests that execute random bytes, in every mode: whatever they do —
//! write anywhere, jump anywhere, load any segment, fault in any way —
//! softvm must answer with exits or architectural faults, never a host
//! panic or a hang, and must answer the same with its decoded-block cache
//! as without it. Reproducible from the printed seed.

use emu_core::{Regs, Segment, Sregs, VcpuExit, Vm, VmConfig};
use iced_x86::{Decoder, DecoderOptions};
use softmmu::{Backing, Gpa, MemFlags};

/// Guest RAM of the random programs, at guest-physical 0.
const RAM: u64 = 4 << 20;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Tables for protected and long mode: a GDT at 0x4000 (null, code32,
/// data, code64), identity paging with 1 GiB pages at 0x1000, and an IDT at
/// 0x3000 whose every gate leads into the random code (so exceptions keep
/// executing random handlers instead of ending at once).
fn tables(vm: &Vm, rng: &mut XorShift, long: bool, code: u64) {
    let m = vm.memory();
    let w = |a: u64, v: u64| m.write_phys(Gpa::new(a), &v.to_le_bytes()).unwrap();
    w(0x4008, 0x00cf_9a00_0000_ffff);
    w(0x4010, 0x00cf_9200_0000_ffff);
    w(0x4018, 0x00af_9a00_0000_ffff);
    w(0x1000, 0x2003);
    w(0x2000, 0x83);
    for v in 0..256u64 {
        let target = code + (rng.next() % 0xf000);
        let sel = if long { 0x18 } else { 0x08 };
        let lo =
            (target & 0xffff) | (sel << 16) | (0x8e00u64 << 32) | ((target >> 16) & 0xffff) << 48;
        if long {
            w(0x3000 + v * 16, lo);
            w(0x3008 + v * 16, target >> 32);
        } else {
            w(0x3000 + v * 8, lo);
        }
    }
}

/// What a random program did: its exits, then its final registers,
/// segment state, instruction count and code region, and the bytes of the
/// instruction and its RIP if it ended with `InternalError`.
type Outcome = (
    Vec<String>,
    Regs,
    Sregs,
    u64,
    Vec<u8>,
    Option<(u64, Vec<u8>)>,
);

/// How to run one random program beyond its seed and mode.
#[derive(Clone, Copy, Default)]
struct Knobs {
    /// Use the decoded-block cache.
    cache: bool,
    /// Plant [`PLANTED`] sequences among the random bytes, and end the run
    /// with `InternalError` at an unimplemented instruction (instead of
    /// the #UD a VMM gets by default).
    planted: bool,
    /// An AMD vCPU (`max,vendor=AuthenticAMD`) instead of the Intel `max`.
    amd: bool,
}

/// Byte sequences planted among random bytes: encodings invalid on every
/// processor (UD0, UD1, UD2, FF /7, FE /2-/7, LOCK on forms that cannot
/// take it, C6/C7 with reg != 0, 8F /1..), forms invalid in one mode
/// only (BCD, SALC, BOUND, ARPL, PUSH ES in 64-bit mode) and the forms of
/// the hint, random, legacy and XSAVE families, which must run or fault
/// architecturally, never end the run.
const PLANTED: &[&[u8]] = &[
    &[0x0f, 0xff, 0xc0],
    &[0x0f, 0xff, 0x00],
    &[0x0f, 0xb9, 0xc1],
    &[0x0f, 0xb9, 0x04, 0x24],
    &[0x0f, 0x0b],
    &[0xff, 0xef],
    &[0xff, 0xff],
    &[0xff, 0x3f],
    &[0xfe, 0xd0],
    &[0xfe, 0xf8],
    &[0x8f, 0xc8],
    &[0xc6, 0xc8, 0x01],
    &[0xc7, 0xf8, 0, 0, 0, 0],
    &[0xf0, 0x90],
    &[0xf0, 0x01, 0xc0],
    &[0xf0, 0x8b, 0x00],
    &[0xf0, 0x0f, 0x0b],
    &[0xf0, 0x0f, 0xae, 0xf0],
    &[0xf0, 0x27],
    &[0x27],
    &[0x2f],
    &[0x37],
    &[0x3f],
    &[0xd4, 0x0a],
    &[0xd4, 0x00],
    &[0xd5, 0x0a],
    &[0xd6],
    &[0x62, 0x00],
    &[0x63, 0xc1],
    &[0x06],
    &[0x0f, 0x33],
    &[0xf3, 0x90],
    &[0x0f, 0xae, 0xe8],
    &[0x0f, 0xae, 0xf0],
    &[0x0f, 0xae, 0xf8],
    &[0x0f, 0xae, 0x38],
    &[0x66, 0x0f, 0xae, 0x38],
    &[0x66, 0x0f, 0xae, 0x30],
    &[0x0f, 0x18, 0x00],
    &[0x0f, 0x0d, 0x08],
    &[0x0f, 0x0d, 0x10],
    &[0x0f, 0x0d, 0xc0],
    &[0x0f, 0x19, 0xc0],
    &[0x0f, 0x1f, 0x40, 0x00],
    &[0x0f, 0xc7, 0xf0],
    &[0x0f, 0xc7, 0xf8],
    &[0x0f, 0x01, 0xd0],
    &[0x0f, 0x01, 0xd1],
    &[0x0f, 0xae, 0x00],
    &[0x0f, 0xae, 0x08],
    &[0x0f, 0xae, 0x20],
    &[0x0f, 0xae, 0x28],
    &[0x0f, 0xae, 0x30],
    &[0x0f, 0xc7, 0x20],
    &[0x48, 0x0f, 0xae, 0x00],
];

/// Run random code with the given initial segment state.
fn run_random(seed: u64, sregs: impl Fn(&mut Sregs), bytes_at: u64, knobs: Knobs) -> Outcome {
    let mut rng = XorShift(seed | 1);
    let cpu = match knobs.amd {
        true => {
            emu_core::cpu::model::CpuModel::parse("max,vendor=AuthenticAMD")
                .expect("a valid model")
                .model
        }
        false => emu_core::cpu::model::CpuModel::max(),
    };
    let vm = Vm::new(VmConfig {
        cpu,
        ..VmConfig::default()
    });
    vm.set_user_memory_region(0, MemFlags::empty(), 0, RAM, Backing::Anonymous)
        .unwrap();
    // Random code and random data everywhere in the first 64 KiB past the
    // entry, plus plausible page tables at 0 (random bits too).
    let mut page = vec![0u8; 0x10000];
    for b in page.iter_mut() {
        *b = rng.next() as u8;
    }
    if knobs.planted {
        let mut at = 0;
        while at + 16 < page.len() {
            let seq = PLANTED[(rng.next() % PLANTED.len() as u64) as usize];
            page[at..at + seq.len()].copy_from_slice(seq);
            at += seq.len() + (rng.next() % 12) as usize;
        }
    }
    vm.memory().write_phys(Gpa::new(bytes_at), &page).unwrap();
    let mut v = vm.create_vcpu(0);
    v.set_code_cache(knobs.cache);
    v.set_exit_on_unimplemented(knobs.planted);
    let mut s = v.get_sregs();
    sregs(&mut s);
    if s.cr0 & 1 != 0 {
        let long = s.efer & 0x400 != 0;
        tables(&vm, &mut rng, long, bytes_at);
        s.gdt = emu_core::DTable {
            base: 0x4000,
            limit: 0x1f,
        };
        s.idt = emu_core::DTable {
            base: 0x3000,
            limit: if long { 0xfff } else { 0x7ff },
        };
    }
    if knobs.planted {
        // SSE and XSAVE enabled, so that their forms run rather than #UD.
        s.cr4 |= (1 << 9) | (1 << 10) | (1 << 18);
    }
    v.set_sregs(&s);
    let mut r = Regs {
        rip: bytes_at,
        rflags: 2,
        ..Regs::default()
    };
    r.rsp = 0x20_0000;
    for g in [
        &mut r.rax, &mut r.rbx, &mut r.rcx, &mut r.rdx, &mut r.rsi, &mut r.rdi,
    ] {
        *g = rng.next();
    }
    r.rcx &= 0xffff; // keep REP counts small enough to finish quickly
    v.set_regs(&r);
    v.set_instruction_limit(Some(20_000));
    let mut exits = Vec::new();
    let mut unimplemented = None;
    for _ in 0..200 {
        let e = v.run();
        let text = format!("{e:?}");
        if let VcpuExit::InternalError { rip, bytes, len } = e {
            unimplemented = Some((rip, bytes[..len.min(15)].to_vec()));
        }
        match e {
            VcpuExit::IoIn(_, d) | VcpuExit::MmioRead(_, d) => d.fill(0x5a),
            VcpuExit::IoOut(..) | VcpuExit::MmioWrite(..) | VcpuExit::Debug => {}
            _ => {
                exits.push(text);
                break;
            }
        }
        exits.push(text);
    }
    let mut code = vec![0u8; 0x10000];
    vm.memory()
        .read_phys(Gpa::new(bytes_at), &mut code)
        .unwrap();
    (
        exits,
        v.get_regs(),
        v.get_sregs(),
        v.instructions(),
        code,
        unimplemented,
    )
}

/// The three starting states: real mode, flat 32-bit protected mode, and
/// 64-bit mode with 1 GiB identity pages built at 0x1000.
fn run_mode(mode: u64, seed: u64, cache: bool, amd: bool) -> Outcome {
    run_mode_with(
        mode,
        seed,
        Knobs {
            cache,
            amd,
            ..Knobs::default()
        },
    )
}

fn run_mode_with(mode: u64, seed: u64, knobs: Knobs) -> Outcome {
    match mode {
        0 => run_random(
            seed,
            |s| s.cs = Segment::real_mode(0x1000, true),
            0x1_0000,
            knobs,
        ),
        1 => run_random(
            seed,
            |s| {
                s.cr0 = 0x11;
                s.cs = Segment::flat(8, 0xb, true, false);
                for d in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
                    *d = Segment::flat(0x10, 3, true, false);
                }
            },
            0x10_0000,
            knobs,
        ),
        _ => run_random(
            seed,
            |s| {
                s.cr0 = 0x8000_0011;
                s.cr4 = 0x20;
                s.efer = 0x500;
                s.cr3 = 0x1000;
                s.cs = Segment::flat(0x18, 0xb, false, true);
                for d in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
                    *d = Segment::flat(0x10, 3, true, false);
                }
            },
            0x10_0000,
            knobs,
        ),
    }
}

fn base_seed() -> u64 {
    std::env::var("SOFTVM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed)
}

fn program_count(release: u64) -> u64 {
    std::env::var("SOFTVM_RANDOM_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 60 } else { release })
}

/// The block cache (blocks that follow jumps and calls, side exits at
/// conditional branches, RIP written back per block, the hot memory path)
/// and the fast forms must not change anything a guest can see: every
/// random program gives the same exits, registers, segments, instruction
/// count and code bytes with the cache on and off (off runs every
/// instruction through its family handler), in real, protected and long
/// mode, on an Intel and (every other program) an AMD vCPU, whose fast
/// forms differ.
#[test]
fn random_code_runs_the_same_with_and_without_the_block_cache() {
    let base = base_seed() ^ 0xcac4e;
    let n = program_count(300);
    println!("random-code cache: seed {base}");
    let mut executed = 0;
    for i in 0..n {
        let seed = base.wrapping_mul(6364136223846793005).wrapping_add(i);
        let (mode, amd) = (i % 3, i % 2 == 1);
        let cached = run_mode(mode, seed, true, amd);
        let plain = run_mode(mode, seed, false, amd);
        executed += cached.3;
        let checks = [
            ("exits", cached.0 == plain.0),
            ("registers", cached.1 == plain.1),
            ("segments", cached.2 == plain.2),
            ("instruction counts", cached.3 == plain.3),
            ("code bytes", cached.4 == plain.4),
        ];
        for (what, same) in checks {
            assert!(
                same,
                "{what} differ, program {i} mode {mode} amd {amd} seed {seed}: \
                 cached {:?} {:?}, reference {:?} {:?}",
                cached.0.last(),
                cached.1,
                plain.0.last(),
                plain.1
            );
        }
    }
    println!("random-code cache: {n} programs, {executed} instructions, identical");
    assert!(executed > n * 100, "the programs ran too little to compare");
}

#[test]
fn random_code_never_panics_the_host() {
    let base = base_seed();
    println!("random-code: seed {base}");
    let n = program_count(300);
    let verbose = std::env::var_os("SOFTVM_RANDOM_VERBOSE").is_some();
    let mut ends = std::collections::BTreeMap::new();
    for i in 0..n {
        let seed = base.wrapping_mul(6364136223846793005).wrapping_add(i);
        let mode = i % 3;
        if verbose {
            eprintln!("program {i} mode {mode} seed {seed}");
        }
        let exits = run_mode(mode, seed, true, false).0;
        let last = exits.last().cloned().unwrap_or_default();
        let kind = last.split(['(', ' ', '{']).next().unwrap_or("").to_string();
        *ends.entry(format!("mode {mode}: {kind}")).or_insert(0) += 1;
    }
    println!("random-code: {n} programs, endings {ends:?}");
    assert!(!ends.is_empty());
}

/// Random bytes with invalid and rarely used encodings planted among them
/// never end a run with an internal error (status 6 of `softvm run`),
/// unless the instruction is a form the CPU model advertises and softvm
/// lacks (a softvm bug): any such form fails the test.
#[test]
fn random_bytes_end_in_faults_not_internal_errors() {
    let base = base_seed() ^ 0x0bad_c0de;
    let n = program_count(300);
    println!("random-bytes: seed {base}");
    let mut wrong: Vec<String> = Vec::new();
    let mut outside_ram = 0;
    let mut executed = 0;
    for i in 0..n {
        let seed = base.wrapping_mul(6364136223846793005).wrapping_add(i);
        let mode = i % 3;
        let knobs = Knobs {
            cache: true,
            planted: true,
            amd: i % 2 == 1,
        };
        let out = run_mode_with(mode, seed, knobs);
        executed += out.3;
        let Some((rip, bytes)) = out.5 else { continue };
        let s = out.2;
        // Code fetched from outside RAM (a wild jump past the 4 MiB of
        // RAM) is not an instruction softvm lacks: softvm, like KVM's
        // emulator, cannot execute from MMIO and reports an internal
        // error for it. Counted, not failed.
        let la = s.cs.base.wrapping_add(rip);
        if la.wrapping_add(15) >= RAM {
            outside_ram += 1;
            continue;
        }
        let bitness = if s.efer & 0x400 != 0 && s.cs.l != 0 {
            64
        } else if s.cr0 & 1 != 0 && s.cs.db != 0 {
            32
        } else {
            16
        };
        let ins = Decoder::new(bitness, &bytes, DecoderOptions::NONE).decode();
        let code = ins.code();
        let what = format!(
            "{code:?} {:?} ({bitness}-bit, bytes {bytes:02x?})",
            code.cpuid_features()
        );
        wrong.push(format!("program {i} mode {mode} seed {seed}: {what}"));
    }
    println!(
        "random-bytes: {n} programs, {executed} instructions; {outside_ram} ended \
         fetching code outside RAM; {} ended on a form softvm lacks",
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "internal errors on advertised forms softvm lacks:\n{}",
        wrong.join("\n")
    );
    assert!(executed > n * 100, "the programs ran too little");
}

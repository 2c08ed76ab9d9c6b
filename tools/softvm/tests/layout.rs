//! The one memory layout: for RAM sizes below, at, across and above the
//! hole under 4 GiB, every byte of RAM the machine maps is RAM in the
//! multiboot memory map and identity-mapped by the ELF64 boot page tables,
//! and nothing else is called RAM. With `--memory 4G` the guest used to be
//! told that the device hole is RAM, and with `--memory 5G` the page
//! tables stopped at 5 GiB while RAM went on to 6 GiB.

use iced_x86::code_asm::*;
use softvm_machine::{Machine, MachineConfig, DEMO_GUEST};
use testsuite::image::{self, Segment};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// The granule the checks step by (the boot page tables map 2 MiB pages
/// and every region boundary is 2 MiB aligned).
const STEP: u64 = 2 * MIB;

const SIZES: [u64; 7] = [
    128 * MIB,
    3 * GIB - 2 * MIB,
    3 * GIB,
    3 * GIB + 64 * MIB,
    4 * GIB,
    5 * GIB,
    6 * GIB + 512 * MIB,
];

fn read_u32(m: &Machine, gpa: u64) -> u32 {
    let mut b = [0u8; 4];
    m.vm()
        .memory()
        .read_phys(softmmu::Gpa::new(gpa), &mut b)
        .unwrap();
    u32::from_le_bytes(b)
}

fn read_u64(m: &Machine, gpa: u64) -> u64 {
    u64::from(read_u32(m, gpa)) | (u64::from(read_u32(m, gpa + 4)) << 32)
}

/// Whether the machine has RAM at `gpa` (a memslot there).
fn is_ram(m: &Machine, gpa: u64) -> bool {
    let mut b = [0u8; 1];
    m.vm()
        .memory()
        .read_phys(softmmu::Gpa::new(gpa), &mut b)
        .is_ok()
}

/// The 2 MiB granules of guest-physical space up to 8 GiB that hold RAM
/// (checked at their first and last byte, which must agree).
fn ram_granules(m: &Machine) -> Vec<u64> {
    (0..8 * GIB / STEP)
        .map(|i| i * STEP)
        .filter(|&g| {
            let first = is_ram(m, g);
            assert_eq!(first, is_ram(m, g + STEP - 1), "granule {g:#x} is split");
            first
        })
        .collect()
}

fn config(memory: u64) -> MachineConfig {
    MachineConfig {
        memory,
        ..MachineConfig::default()
    }
}

#[test]
fn the_multiboot_map_is_exactly_the_ram_mapped() {
    for mem in SIZES {
        let m = Machine::boot(&config(mem), DEMO_GUEST).unwrap();
        assert_eq!(m.vm().memory().ram_size(), mem);
        // The multiboot information at EBX = 0x9000.
        let info = 0x9000;
        let flags = read_u32(&m, info);
        assert_ne!(flags & (1 << 6), 0, "memory map present");
        let len = u64::from(read_u32(&m, info + 44));
        let addr = u64::from(read_u32(&m, info + 48));
        let mut ram_ranges = Vec::new();
        let mut e = addr;
        while e < addr + len {
            let size = u64::from(read_u32(&m, e));
            let base = read_u64(&m, e + 4);
            let length = read_u64(&m, e + 12);
            if read_u32(&m, e + 20) == 1 {
                ram_ranges.push((base, base + length));
            }
            e += size + 4;
        }
        let called_ram = |a: u64| ram_ranges.iter().any(|&(s, e)| a >= s && a < e);
        // Everything the map calls RAM is mapped RAM.
        for &(s, e) in &ram_ranges {
            assert!(
                is_ram(&m, s) && is_ram(&m, e - 1),
                "{mem:#x}: {s:#x}..{e:#x}"
            );
        }
        // Every granule of mapped RAM above 1 MiB is RAM in the map, and
        // nothing that is not mapped is.
        let granules = ram_granules(&m);
        for &g in granules.iter().filter(|&&g| g >= 2 * MIB) {
            assert!(
                called_ram(g) && called_ram(g + STEP - 1),
                "{mem:#x}: {g:#x}"
            );
        }
        for g in (0..8 * GIB / STEP).map(|i| i * STEP) {
            if !granules.contains(&g) {
                assert!(!called_ram(g), "{mem:#x}: hole {g:#x} called RAM");
            }
        }
        let total: u64 = granules.len() as u64 * STEP;
        assert_eq!(total, mem, "{mem:#x}");
        // mem_upper: KiB from 1 MiB to the first hole.
        let upper = u64::from(read_u32(&m, info + 8));
        assert_eq!(upper, (mem.min(3 * GIB) - MIB) / 1024, "{mem:#x}");
    }
}

/// A bare-metal ELF64 program that reads and writes the last qword of RAM
/// at `last` and exits with 0.
fn touch_last_qword(last: u64) -> Vec<u8> {
    const AT: u64 = 0x10_0000;
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(rax, last).unwrap();
    a.mov(rbx, qword_ptr(rax)).unwrap();
    a.not(rbx).unwrap();
    a.mov(qword_ptr(rax), rbx).unwrap();
    a.mov(dx, 0xf4).unwrap();
    a.xor(eax, eax).unwrap();
    a.out(dx, eax).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(AT).unwrap();
    let seg = Segment {
        paddr: AT,
        memsz: code.len() as u64,
        data: code,
    };
    image::elf(true, AT, &[seg])
}

#[test]
fn the_elf64_page_tables_map_every_byte_of_ram() {
    for mem in SIZES {
        let end = if mem > 3 * GIB { mem + GIB } else { mem };
        let img = touch_last_qword(end - 8);
        let mut m = Machine::boot(&config(mem), &img).unwrap();
        let pml4 = m.vcpus_mut()[0].get_sregs().cr3;
        for g in ram_granules(&m) {
            let pml4e = read_u64(&m, pml4 + ((g >> 39) & 511) * 8);
            assert_eq!(pml4e & 1, 1, "{mem:#x}: PML4E for {g:#x}");
            let pdpte = read_u64(&m, (pml4e & !0xfff) + ((g >> 30) & 511) * 8);
            assert_eq!(pdpte & 1, 1, "{mem:#x}: PDPTE for {g:#x}");
            let pde = read_u64(&m, (pdpte & 0x000f_ffff_ffff_f000) + ((g >> 21) & 511) * 8);
            assert_eq!(pde & 0x83, 0x83, "{mem:#x}: PDE for {g:#x}");
            assert_eq!(
                pde & 0x000f_ffff_ffe0_0000,
                g,
                "{mem:#x}: identity at {g:#x}"
            );
        }
        // And the guest really reaches the last byte of RAM.
        let o = m.run();
        assert_eq!(o.status(), 1, "{mem:#x}: {:?}", o.message);
    }
}

/// Large RAM is mapped lazily: 32 GiB of guest RAM does not make the
/// process resident in it.
#[test]
#[cfg(target_os = "linux")]
fn large_memory_is_not_touched_up_front() {
    let rss = || {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let m = Machine::boot(&config(32 * GIB), DEMO_GUEST).unwrap();
    let grown = rss().saturating_sub(before);
    assert_eq!(m.vm().memory().ram_size(), 32 * GIB);
    println!("booting a 32 GiB machine grew the RSS by {grown} KiB");
    assert!(grown < 64 * 1024, "{grown} KiB");
}

//! Unit tests of the whole preparation (classification, validation, the
//! planned writes) against a plain buffer standing in for guest RAM.

#[path = "../tests/common/elfbuild.rs"]
mod elfbuild;

use elfbuild::*;

use super::*;
use crate::layout::{MIB, MULTIBOOT_INFO_ADDR};
use crate::plan::testmem::VecMem;

const MEM: u64 = 4 * MIB;

fn opts() -> LoadOptions {
    LoadOptions {
        mem_size: MEM,
        cmdline: String::new(),
        modules: Vec::new(),
        vcpus: 1,
    }
}

fn run(image: &[u8], o: &LoadOptions) -> Result<(BootState, VecMem), LoadError> {
    let (state, plan) = prepare(image, o)?;
    let mut mem = VecMem(vec![0xcc; usize::try_from(o.mem_size).unwrap()]);
    plan.apply(&mut mem)?;
    Ok((state, mem))
}

fn cstr(mem: &[u8], addr: u32) -> String {
    let s = &mem[addr as usize..];
    let n = s.iter().position(|&b| b == 0).unwrap();
    String::from_utf8(s[..n].to_vec()).unwrap()
}

#[test]
fn multiboot_elf32_loads_and_builds_info() {
    let code = [0xf4u8, 0xeb, 0xfd];
    let img = ElfBuilder::multiboot32(0x10_0000)
        .seg(0x10_0000, &code, 0x2000)
        .build();
    let mut o = opts();
    o.cmdline = "console=ttyS0 -v".into();
    o.modules = vec![
        Module::new("initrd.img", vec![5; 100]),
        Module::new("env", b"A=1\n".to_vec()),
    ];
    let (st, mem) = run(&img, &o).unwrap();
    let m = &mem.0;
    assert_eq!(st.kind, ImageKind::Multiboot32);
    assert_eq!((st.entry, st.regs.rip), (0x10_0000, 0x10_0000));
    assert_eq!(st.regs.rax, 0x2bad_b002);
    assert_eq!(st.regs.rbx, MULTIBOOT_INFO_ADDR);
    assert_eq!(&m[0x10_0000..0x10_0003], &code);
    assert!(m[0x10_0003..0x10_2000].iter().all(|&b| b == 0));
    // The first module starts right after the image; the rest of its page
    // is untouched.
    assert_eq!(m[0x10_2000], 5);
    assert_eq!(m[0x10_2064], 0xcc);

    let mbi = MULTIBOOT_INFO_ADDR as usize;
    let flags = get_u32(m, mbi);
    assert_eq!(flags, 0x24d);
    assert_eq!(get_u32(m, mbi + 4), 640);
    assert_eq!(get_u32(m, mbi + 8), 3 * 1024);
    assert_eq!(cstr(m, get_u32(m, mbi + 16)), "console=ttyS0 -v");
    assert_eq!(cstr(m, get_u32(m, mbi + 64)), "softvm");
    assert_eq!(get_u32(m, mbi + 20), 2);
    let mods = get_u32(m, mbi + 24) as usize;
    let (s0, e0) = (get_u32(m, mods), get_u32(m, mods + 4));
    let (s1, e1) = (get_u32(m, mods + 16), get_u32(m, mods + 20));
    assert_eq!((s0, e0), (0x10_2000, 0x10_2064));
    assert_eq!((s1, e1), (0x10_3000, 0x10_3004));
    assert_eq!(cstr(m, get_u32(m, mods + 8)), "initrd.img");
    assert_eq!(cstr(m, get_u32(m, mods + 24)), "env");
    assert!(m[s0 as usize..e0 as usize].iter().all(|&b| b == 5));
    assert_eq!(&m[s1 as usize..e1 as usize], b"A=1\n");

    let len = get_u32(m, mbi + 44) as usize;
    let addr = get_u32(m, mbi + 48) as usize;
    assert_eq!(len, 4 * 24);
    let entries: Vec<_> = (0..4)
        .map(|i| {
            let e = addr + 24 * i;
            (
                get_u32(m, e),
                get_u64(m, e + 4),
                get_u64(m, e + 12),
                get_u32(m, e + 20),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (20, 0, 0x9_fc00, 1),
            (20, 0x9_fc00, 0x400, 2),
            (20, 0xe_0000, 0x2_0000, 2),
            (20, MIB, 3 * MIB, 1)
        ]
    );
    // The GDT the loader installed.
    assert_eq!(st.sregs.gdt.base, 0x1000);
    assert_eq!(get_u64(m, 0x1008), 0x00cf_9b00_0000_ffff);
    assert_eq!(get_u64(m, 0x1010), 0x00cf_9300_0000_ffff);
}

#[test]
fn elf64_loads_in_long_mode() {
    let img = ElfBuilder::elf64(0x20_0010)
        .seg(0x20_0000, &[0x90; 0x20], 0x1000)
        .build();
    let (st, m) = run(&img, &opts()).unwrap();
    assert_eq!(st.kind, ImageKind::Elf64);
    assert_eq!(st.regs.rip, 0x20_0010);
    assert_eq!(st.regs.rsp, 0x9_0000);
    assert_eq!(st.sregs.cr3, 0x2000);
    assert_eq!(st.sregs.efer, 0x500);
    assert_eq!(get_u64(&m.0, 0x2000), 0x3003);
    assert_eq!(get_u64(&m.0, 0x3000), 0x4003);
    assert_eq!(get_u64(&m.0, 0x4008), 0x20_0083);
    assert_eq!(get_u64(&m.0, 0x1008), 0x00af_9b00_0000_ffff);
}

#[test]
fn detect_kinds() {
    let mb = ElfBuilder::multiboot32(0x10_0000)
        .seg(0x10_0000, &[0; 4], 4)
        .build();
    assert_eq!(detect(&mb).unwrap(), ImageKind::Multiboot32);
    let e64 = ElfBuilder::elf64(0x10_0000)
        .seg(0x10_0000, &[0; 4], 4)
        .build();
    assert_eq!(detect(&e64).unwrap(), ImageKind::Elf64);
    // An ELF64 with a multiboot header boots as multiboot, as with GRUB.
    let mut e64mb = ElfBuilder::elf64(0x10_0000).seg(0x10_0000, &[0; 4], 4);
    e64mb.multiboot = Some((0, vec![]));
    assert_eq!(detect(&e64mb.build()).unwrap(), ImageKind::Multiboot32);
    let raw = kludge_image(0x10_0000, &[0xf4], 0);
    assert_eq!(detect(&raw).unwrap(), ImageKind::Multiboot32);
    assert!(matches!(detect(b"hello"), Err(LoadError::NotElf)));
    assert!(matches!(detect(&[]), Err(LoadError::NotElf)));
}

#[test]
fn kludge_raw_image_loads() {
    let img = kludge_image(0x10_0000, &[0xf4, 0xeb, 0xfe], 0x10_1000);
    let (st, m) = run(&img, &opts()).unwrap();
    assert_eq!(st.entry, 0x10_0020);
    assert_eq!(&m.0[0x10_0000..0x10_0004], &img[..4]);
    assert_eq!(&m.0[0x10_0020..0x10_0023], &[0xf4, 0xeb, 0xfe]);
    assert!(m.0[0x10_0023..0x10_1000].iter().all(|&b| b == 0));
}

#[test]
fn higher_half_entry_is_translated() {
    let mut b = ElfBuilder::multiboot32(0xc010_0004).seg(0x10_0000, &[0; 16], 16);
    b.segs[0].vaddr = 0xc010_0000;
    let (st, _) = run(&b.build(), &opts()).unwrap();
    assert_eq!(st.entry, 0x10_0004);
}

#[test]
fn option_errors() {
    let img = ElfBuilder::multiboot32(0x10_0000)
        .seg(0x10_0000, &[0; 4], 4)
        .build();
    let mut o = opts();
    o.vcpus = 0;
    assert!(matches!(run(&img, &o), Err(LoadError::NoVcpus)));
    let mut o = opts();
    o.mem_size = 0x8_0000;
    assert!(matches!(
        run(&img, &o),
        Err(LoadError::MemoryTooSmall { .. })
    ));
    let mut o = opts();
    o.cmdline = "a\0b".into();
    assert!(matches!(run(&img, &o), Err(LoadError::NulInString { .. })));
    let e64 = ElfBuilder::elf64(0x10_0000)
        .seg(0x10_0000, &[0; 4], 4)
        .build();
    let mut o = opts();
    o.cmdline = "x".into();
    assert!(matches!(
        run(&e64, &o),
        Err(LoadError::NoBootInfoForElf64("command line"))
    ));
    let mut o = opts();
    o.modules = vec![Module::new("m", vec![])];
    assert!(matches!(
        run(&e64, &o),
        Err(LoadError::NoBootInfoForElf64("modules"))
    ));
    let o = LoadOptions {
        mem_size: 65 << 30,
        ..opts()
    };
    // Validation fails before any memory would be needed.
    assert!(matches!(
        prepare(&e64, &o),
        Err(LoadError::MemoryTooLarge { .. })
    ));
}

/// The multiboot information's address (EBX) and its command line.
fn mbi_and_cmdline(st: &BootState, m: &[u8]) -> (usize, String) {
    let mbi = st.regs.rbx as usize;
    (mbi, cstr(m, get_u32(m, mbi + 16)))
}

#[test]
fn multiboot_images_low_in_memory_boot() {
    // As QEMU boots them: images linked at 0x1000, 0x8000 (kvm-unit-tests'
    // realmode.flat: 0x8000..0xa86c and 0xb000..0xda30) and 0x9000.
    // (segments as (address, size), expected GDT, expected information)
    type Case = (&'static [(u64, u64)], u64, u64);
    let cases: [Case; 3] = [
        (&[(0x1000, 0x3000)], 0x4000, 0x9000),
        (&[(0x8000, 0x286c), (0xb000, 0x2a30)], 0x1000, 0xe000),
        (&[(0x9000, 0x100)], 0x1000, 0xa000),
    ];
    for (segs, gdt, mbi) in cases {
        let mut b = ElfBuilder::multiboot32(segs[0].0);
        for &(at, len) in segs {
            b = b.seg(at, &[0xf4; 16], len);
        }
        let mut o = opts();
        o.cmdline = "realmode.flat -v".into();
        o.modules = vec![Module::new("env", b"A=1\n".to_vec())];
        let (st, mem) = run(&b.build(), &o).unwrap();
        let m = &mem.0;
        assert_eq!(st.sregs.gdt.base, gdt, "{segs:x?}");
        assert_eq!(get_u64(m, gdt as usize + 8), 0x00cf_9b00_0000_ffff);
        let (at, cmdline) = mbi_and_cmdline(&st, m);
        assert_eq!(at as u64, mbi, "{segs:x?}");
        assert_eq!(cmdline, "realmode.flat -v");
        // The image is intact: the loader wrote none of its bytes.
        for &(s, _) in segs {
            assert_eq!(m[s as usize], 0xf4, "{s:#x}");
            assert_eq!(m[s as usize + 15], 0xf4, "{s:#x}");
            assert_eq!(m[s as usize + 16], 0, "{s:#x}");
        }
        assert_eq!(get_u32(m, at + 20), 1, "one module");
        let mods = get_u32(m, at + 24) as usize;
        assert_eq!(&m[get_u32(m, mods) as usize..][..4], b"A=1\n");
    }
}

#[test]
fn elf64_images_low_in_memory_boot() {
    // The page tables (0x2000..), GDT (0x1000) and stack (0x80000..0x90000)
    // move out of the image's way.
    for (at, len) in [
        (0x1000u64, 0x2000u64),
        (0x2000, 0x100),
        (0x8_8000, 0x100),
        (0x5000, 0x4000),
    ] {
        let img = ElfBuilder::elf64(at).seg(at, &[0x90; 16], len).build();
        let (st, m) = run(&img, &opts()).unwrap();
        let s = &st.sregs;
        let overlaps = |a: u64, l: u64| a < at + len && at < a + l;
        assert!(
            !overlaps(s.gdt.base, 24),
            "GDT {:#x} vs {at:#x}",
            s.gdt.base
        );
        assert!(!overlaps(s.cr3, 6 * 4096), "CR3 {:#x} vs {at:#x}", s.cr3);
        assert!(
            !overlaps(st.regs.rsp - 0x1_0000, 0x1_0000),
            "RSP {:#x}",
            st.regs.rsp
        );
        assert_eq!(s.cr3 % 4096, 0);
        assert_eq!(st.regs.rsp % 16, 0);
        assert_eq!(m.0[at as usize], 0x90);
        // The tables map the first GiB: PML4 -> PDPT -> PD -> 2 MiB pages.
        let pml4e = get_u64(&m.0, s.cr3 as usize) & !0xfff;
        let pdpte = get_u64(&m.0, pml4e as usize) & !0xfff;
        assert_eq!(get_u64(&m.0, pdpte as usize + 8), 0x20_0083);
    }
    // Where nothing is in the way, the usual addresses.
    let img = ElfBuilder::elf64(0x10_0000)
        .seg(0x10_0000, &[0x90; 16], 16)
        .build();
    let (st, _) = run(&img, &opts()).unwrap();
    assert_eq!(
        (st.sregs.gdt.base, st.sregs.cr3, st.regs.rsp),
        (0x1000, 0x2000, 0x9_0000)
    );
}

#[test]
fn low_image_below_boot_data_loads() {
    // A multiboot image at 0x20000 (below 1 MiB, clear of the boot data).
    let img = ElfBuilder::multiboot32(0x2_0000)
        .seg(0x2_0000, &[0xf4], 0x100)
        .build();
    let (st, m) = run(&img, &opts()).unwrap();
    assert_eq!(st.entry, 0x2_0000);
    assert_eq!(m.0[0x2_0000], 0xf4);
}

#[test]
fn messages_are_one_line() {
    let errs = [
        detect(b"nope").unwrap_err(),
        LoadError::SegmentOutsideRam {
            index: 1,
            paddr: 0x10_0000,
            memsz: 0x1000,
            mem_size: 0x10_0000,
        },
        LoadError::Elf(goblin::error::Error::Malformed("x".into())),
    ];
    for e in errs {
        let s = e.to_string();
        assert!(!s.contains('\n') && !s.is_empty(), "{s}");
    }
}

#[test]
fn error_is_send_sync_static() {
    fn check<T: std::error::Error + Send + Sync + 'static>() {}
    check::<LoadError>();
}

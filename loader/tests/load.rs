//! Loading images into real guest memory: multiboot ELF32, raw multiboot,
//! ELF64, and the shared conformance guests.

mod common;

use common::elfbuild::*;
use common::*;
use loader::{detect, load, ImageKind, LoadError, LoadOptions, Module};

const MIB: u64 = 1 << 20;

fn opts(mem_size: u64) -> LoadOptions {
    LoadOptions {
        mem_size,
        cmdline: String::new(),
        modules: Vec::new(),
        vcpus: 1,
    }
}

#[test]
fn multiboot_elf32_end_to_end() {
    let text: Vec<u8> = (0..=255u8).collect();
    let data = [0x11u8; 0x40];
    let img = ElfBuilder::multiboot32(0x10_0000)
        .seg(0x10_0000, &text, 0x100)
        .seg(0x10_1000, &data, 0x3000)
        .build();
    let gm = guest_memory(16 * MIB);
    let mut o = opts(16 * MIB);
    o.cmdline = "x86/apic.flat -smp 2".into();
    o.modules = vec![Module::new("testdev.env", b"KEY=value\n".to_vec())];
    o.vcpus = 2;
    let st = load(&img, &gm, &o).unwrap();

    assert_eq!(st.kind, ImageKind::Multiboot32);
    assert_eq!(st.entry, 0x10_0000);
    let r = st.regs;
    assert_eq!(
        (r.rip, r.rax, r.rbx, r.rsp, r.rflags),
        (0x10_0000, 0x2bad_b002, 0x9000, 0x7000, 2)
    );
    let s = st.sregs;
    assert_eq!((s.cr0, s.cr3, s.cr4, s.efer), (0x11, 0, 0, 0));
    assert_eq!(
        (
            s.cs.selector,
            s.cs.type_,
            s.cs.db,
            s.cs.l,
            s.cs.base,
            s.cs.limit
        ),
        (8, 0xb, 1, 0, 0, 0xffff_ffff)
    );
    for seg in [s.ds, s.es, s.fs, s.gs, s.ss] {
        assert_eq!(
            (seg.selector, seg.type_, seg.db, seg.present),
            (0x10, 0x3, 1, 1)
        );
    }
    assert_eq!((s.gdt.base, s.gdt.limit), (0x1000, 23));
    assert_eq!(read_u64(&gm, 0x1000), 0);
    assert_eq!(read_u64(&gm, 0x1008), 0x00cf_9b00_0000_ffff);
    assert_eq!(read_u64(&gm, 0x1010), 0x00cf_9300_0000_ffff);

    assert_eq!(read(&gm, 0x10_0000, 256), text);
    assert_eq!(read(&gm, 0x10_1000, 0x40), data);
    assert!(read(&gm, 0x10_1040, 0x3000 - 0x40).iter().all(|&b| b == 0));

    let mbi = 0x9000;
    assert_eq!(read_u32(&gm, mbi) & 0x24d, 0x24d);
    assert_eq!(read_u32(&gm, mbi + 4), 640);
    assert_eq!(read_u32(&gm, mbi + 8), 15 * 1024);
    assert_eq!(
        read_cstr(&gm, read_u32(&gm, mbi + 16).into()),
        "x86/apic.flat -smp 2"
    );
    assert_eq!(read_u32(&gm, mbi + 20), 1);
    let mods = u64::from(read_u32(&gm, mbi + 24));
    let (start, end) = (read_u32(&gm, mods), read_u32(&gm, mods + 4));
    assert_eq!(start % 4096, 0);
    assert!(u64::from(start) >= 0x10_4000, "module above the image");
    assert_eq!(end - start, 10);
    assert_eq!(read(&gm, start.into(), 10), b"KEY=value\n");
    assert_eq!(
        read_cstr(&gm, read_u32(&gm, mods + 8).into()),
        "testdev.env"
    );
    assert_eq!(read_cstr(&gm, read_u32(&gm, mbi + 64).into()), "softvm");
    let mmap = u64::from(read_u32(&gm, mbi + 48));
    let n = read_u32(&gm, mbi + 44) / 24;
    let last = mmap + u64::from(n - 1) * 24;
    assert_eq!(
        (
            read_u32(&gm, last),
            read_u64(&gm, last + 4),
            read_u64(&gm, last + 12),
            read_u32(&gm, last + 20)
        ),
        (20, MIB, 15 * MIB, 1)
    );
}

#[test]
fn raw_multiboot_with_address_fields() {
    let img = kludge_image(0x20_0000, &[0xb8, 1, 0, 0, 0, 0xf4], 0x20_2000);
    let gm = guest_memory(4 * MIB);
    let st = load(&img, &gm, &opts(4 * MIB)).unwrap();
    assert_eq!(st.kind, ImageKind::Multiboot32);
    assert_eq!(st.regs.rip, 0x20_0020);
    assert_eq!(read(&gm, 0x20_0000, img.len()), img);
    assert!(read(&gm, 0x20_0026, 0x2000 - 0x26).iter().all(|&b| b == 0));
}

#[test]
fn elf64_end_to_end() {
    let code = [0x48u8, 0x31, 0xc0, 0xf4];
    let img = ElfBuilder::elf64(0x40_0000)
        .seg(0x40_0000, &code, 0x10)
        .seg(0x60_0000, &[1, 2, 3], 0x2_0000)
        .build();
    let gm = guest_memory(8 * MIB);
    let st = load(&img, &gm, &opts(8 * MIB)).unwrap();
    assert_eq!(st.kind, ImageKind::Elf64);
    let r = st.regs;
    assert_eq!(
        (r.rip, r.rsp, r.rflags, r.rdi, r.rax),
        (0x40_0000, 0x9_0000, 2, 0, 0)
    );
    let s = st.sregs;
    assert_eq!(
        (s.cr0, s.cr3, s.cr4, s.efer),
        (0x8001_0011, 0x2000, 0x20, 0x500)
    );
    assert_eq!((s.cs.selector, s.cs.type_, s.cs.db, s.cs.l), (8, 0xb, 0, 1));
    assert_eq!((s.ss.selector, s.ds.type_), (0x10, 0x3));
    assert_eq!((s.gdt.base, s.gdt.limit), (0x1000, 23));
    assert_eq!(read_u64(&gm, 0x1008), 0x00af_9b00_0000_ffff);

    assert_eq!(read(&gm, 0x40_0000, 4), code);
    assert_eq!(read(&gm, 0x60_0000, 3), [1, 2, 3]);
    assert!(read(&gm, 0x60_0003, 0x2_0000 - 3).iter().all(|&b| b == 0));

    // Identity map: walk it for a few addresses, including the APIC page.
    let walk = |va: u64| -> u64 {
        let pml4e = read_u64(&gm, s.cr3 + ((va >> 39) & 511) * 8);
        assert_eq!(pml4e & 3, 3);
        let pdpte = read_u64(&gm, (pml4e & !0xfff) + ((va >> 30) & 511) * 8);
        assert_eq!(pdpte & 3, 3);
        let pde = read_u64(&gm, (pdpte & !0xfff) + ((va >> 21) & 511) * 8);
        assert_eq!(pde & 0x83, 0x83);
        (pde & !0x1f_ffff & 0x000f_ffff_ffff_f000) | (va & 0x1f_ffff)
    };
    for va in [
        0u64,
        0x40_0000,
        0x9_0000 - 8,
        8 * MIB - 1,
        0xfee0_0000,
        0xffff_ffff,
    ] {
        assert_eq!(walk(va), va);
    }
}

#[test]
fn nothing_is_written_when_validation_fails() {
    let img = ElfBuilder::multiboot32(0x10_0000)
        .seg(0x10_0000, &[0xaa; 64], 64)
        .build();
    let gm = guest_memory(2 * MIB);
    let mut o = opts(2 * MIB);
    o.modules = vec![Module::new("huge", vec![0xbb; 2 * MIB as usize])];
    assert!(matches!(
        load(&img, &gm, &o),
        Err(LoadError::ModuleDoesNotFit { .. })
    ));
    assert!(read(&gm, 0, 2 * MIB as usize).iter().all(|&b| b == 0));
}

#[test]
fn ram_smaller_than_options() {
    let img = ElfBuilder::multiboot32(0x10_0000)
        .seg(0x10_0000, &[0; 4], 4)
        .build();
    let gm = guest_memory(2 * MIB);
    assert!(matches!(
        load(&img, &gm, &opts(4 * MIB)),
        Err(LoadError::RamSmallerThanOptions { .. })
    ));
}

#[test]
fn conformance_guests_load() {
    let Ok(dir) = std::fs::read_dir(conformance_dir()) else {
        eprintln!("skipping: {} not found", conformance_dir().display());
        return;
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".elf"))
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no .elf guests in {}",
        conformance_dir().display()
    );
    for name in names {
        let Some(img) = conformance_guest(&name) else {
            continue;
        };
        assert_eq!(detect(&img).unwrap(), ImageKind::Multiboot32, "{name}");
        let gm = guest_memory(128 * MIB);
        let mut o = opts(128 * MIB);
        o.cmdline = format!("{name} extra");
        let st = load(&img, &gm, &o).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every guest is linked at 1 MiB with its entry 0x10 bytes in, after
        // the multiboot header (see shared/conformance/src/link.ld).
        assert_eq!(st.entry, 0x10_0010, "{name}");
        assert_eq!(st.regs.rax, 0x2bad_b002);
        assert_eq!(read_u32(&gm, 0x10_0000), 0x1bad_b002, "{name}");
        // The text segment is the file's bytes from offset 0x1000.
        assert_eq!(read(&gm, 0x10_0000, 0x100), img[0x1000..0x1100], "{name}");
        assert_eq!(
            read_cstr(&gm, read_u32(&gm, 0x9000 + 16).into()),
            format!("{name} extra")
        );
    }
}

#[test]
fn hello_bss_is_zeroed() {
    let Some(img) = conformance_guest("hello.elf") else {
        return;
    };
    let gm = guest_memory(4 * MIB);
    // Dirty RAM first: the loader must clear the bss itself.
    gm.write_phys(softmmu::Gpa::new(0x10_1000), &[0xee; 0x7000])
        .unwrap();
    load(&img, &gm, &opts(4 * MIB)).unwrap();
    assert!(read(&gm, 0x10_1000, 0x7000).iter().all(|&b| b == 0));
}

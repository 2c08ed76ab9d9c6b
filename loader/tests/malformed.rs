//! Every malformed-input case gives its own error variant and a one-line
//! message.

mod common;

use common::elfbuild::*;
use common::*;
use loader::{detect, load, LoadError, LoadOptions, Module};

const MIB: u64 = 1 << 20;
const MEM: u64 = 4 * MIB;

fn opts() -> LoadOptions {
    LoadOptions {
        mem_size: MEM,
        cmdline: String::new(),
        modules: Vec::new(),
        vcpus: 1,
    }
}

fn try_load(img: &[u8], o: &LoadOptions) -> LoadError {
    let gm = guest_memory(MEM);
    let err = load(img, &gm, o).expect_err("load must fail");
    let msg = err.to_string();
    assert!(!msg.is_empty() && !msg.contains('\n'), "one line: {msg:?}");
    // Validation happens before any write.
    assert!(
        read(&gm, 0, MEM as usize).iter().all(|&b| b == 0),
        "memory touched: {msg}"
    );
    err
}

fn err(img: &[u8]) -> LoadError {
    try_load(img, &opts())
}

fn mb32() -> ElfBuilder {
    ElfBuilder::multiboot32(0x10_0000).seg(0x10_0000, &[0xf4; 32], 0x100)
}

fn e64() -> ElfBuilder {
    ElfBuilder::elf64(0x10_0000).seg(0x10_0000, &[0xf4; 32], 0x100)
}

#[test]
fn not_elf() {
    assert!(matches!(
        err(b"MZ\x90\x00 this is not an ELF"),
        LoadError::NotElf
    ));
    assert!(matches!(err(&[]), LoadError::NotElf));
    assert!(matches!(err(b"\x7fEL"), LoadError::NotElf));
    assert_eq!(
        err(b"#!/bin/sh\n").to_string(),
        "not an ELF file (no ELF magic) and not a multiboot image (no multiboot header in the first 8 KiB)"
    );
}

#[test]
fn elf32_without_multiboot_header() {
    let mut b = mb32();
    b.multiboot = None;
    let e = err(&b.build());
    assert!(matches!(e, LoadError::NotMultiboot));
    assert!(e.to_string().starts_with("not a multiboot image"));
}

#[test]
fn bad_checksum() {
    let mut img = mb32().build();
    let at = find_magic(&img);
    img[at + 8] ^= 0x40;
    let e = err(&img);
    assert!(matches!(e, LoadError::BadChecksum { .. }), "{e}");
    assert!(e.to_string().contains("bad checksum"));
    // Raw files too.
    let mut raw = kludge_image(0x10_0000, &[0xf4], 0);
    raw[8] ^= 1;
    assert!(matches!(
        err(&raw),
        LoadError::BadChecksum { offset: 0, .. }
    ));
}

fn find_magic(img: &[u8]) -> usize {
    (0..img.len() - 4)
        .step_by(4)
        .find(|&i| get_u32(img, i) == MB_MAGIC)
        .unwrap()
}

#[test]
fn truncated_multiboot_header() {
    let img = multiboot_header(1 << 16, &[0x10_0000, 0x10_0000]);
    assert!(matches!(
        err(&img),
        LoadError::MultibootHeaderTruncated { offset: 0 }
    ));
}

#[test]
fn unsupported_flags() {
    let mut b = mb32();
    b.multiboot = Some((1 << 3, vec![]));
    assert!(matches!(
        err(&b.build()),
        LoadError::UnsupportedMultibootFlags { flags: 8 }
    ));
    // Bits 0..=2 and optional bits above 16 (other than 16) are fine.
    b.multiboot = Some((0x7 | (1 << 20), vec![]));
    let gm = guest_memory(MEM);
    load(&b.build(), &gm, &opts()).unwrap();
}

#[test]
fn bad_address_fields() {
    let mut img = kludge_image(0x10_0000, &[0xf4; 16], 0);
    // load_end_addr far past the file.
    put_u32(&mut img, 20, 0x20_0000);
    assert!(matches!(err(&img), LoadError::BadAddressFields(_)));
    let mut img = kludge_image(0x10_0000, &[0xf4; 16], 0);
    // header_addr below load_addr.
    put_u32(&mut img, 12, 0xf_0000);
    assert!(matches!(err(&img), LoadError::BadAddressFields(_)));
    let mut img = kludge_image(0x10_0000, &[0xf4; 16], 0);
    // bss_end_addr inside the loaded data.
    put_u32(&mut img, 24, 0x10_0001);
    assert!(matches!(err(&img), LoadError::BadAddressFields(_)));
}

#[test]
fn raw_multiboot_without_address_fields() {
    let mut img = multiboot_header(0, &[]);
    img.extend_from_slice(&[0xf4; 64]);
    assert!(matches!(err(&img), LoadError::NotElfNoAddressFields));
}

#[test]
fn bad_class_and_encoding() {
    let mut img = e64().build();
    img[4] = 3;
    assert!(matches!(err(&img), LoadError::BadClass(3)));
    let mut img = e64().build();
    img[5] = 2;
    assert!(matches!(err(&img), LoadError::NotLittleEndian(2)));
}

#[test]
fn truncated_header() {
    let img = e64().build();
    assert!(matches!(
        err(&img[..40]),
        LoadError::TruncatedHeader { len: 40, need: 64 }
    ));
    assert!(matches!(
        err(&img[..10]),
        LoadError::TruncatedHeader { len: 10, need: 16 }
    ));
    let mut b = mb32();
    b.multiboot = None;
    let img = b.build();
    assert!(matches!(
        err(&img[..51]),
        LoadError::TruncatedHeader { need: 52, .. }
    ));
}

#[test]
fn wrong_machine_and_type() {
    let mut b = e64();
    b.machine = 183; // AArch64
    let e = err(&b.build());
    assert!(matches!(
        e,
        LoadError::WrongMachine {
            bits: 64,
            found: 183,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "ELF64 file for machine 183, expected 62 (x86-64)"
    );
    let mut b = mb32();
    b.machine = EM_X86_64;
    assert!(matches!(
        err(&b.build()),
        LoadError::WrongMachine { bits: 32, .. }
    ));
    let mut b = e64();
    b.e_type = 3; // ET_DYN
    assert!(matches!(err(&b.build()), LoadError::WrongType(3)));
}

#[test]
fn program_header_table_problems() {
    let b = e64();
    let mut img = b.build();
    put_u16(&mut img, ELF64_OFFSETS.e_phentsize, 32);
    assert!(matches!(
        err(&img),
        LoadError::BadProgramHeaderSize {
            found: 32,
            expected: 56
        }
    ));

    let mut img = b.build();
    put_u64(&mut img, ELF64_OFFSETS.e_phoff, u64::MAX - 8);
    assert!(matches!(
        err(&img),
        LoadError::ProgramHeadersBeyondFile { .. }
    ));

    let mut img = b.build();
    put_u16(&mut img, ELF64_OFFSETS.e_phnum, 0xffff);
    assert!(matches!(
        err(&img),
        LoadError::ProgramHeadersBeyondFile { .. }
    ));

    let b32 = mb32();
    let mut img = b32.build();
    let near_end = img.len() as u32 - 16;
    put_u32(&mut img, ELF32_OFFSETS.e_phoff, near_end);
    assert!(matches!(
        err(&img),
        LoadError::ProgramHeadersBeyondFile { .. }
    ));
}

#[test]
fn no_loadable_segments() {
    let mut b = e64();
    b.segs[0].p_type = PT_NOTE;
    assert!(matches!(err(&b.build()), LoadError::NoLoadableSegments));
    let mut img = e64().build();
    put_u16(&mut img, ELF64_OFFSETS.e_phnum, 0);
    assert!(matches!(err(&img), LoadError::NoLoadableSegments));
    let mut b = e64();
    b.segs[0].memsz = 0;
    b.segs[0].filesz = Some(0);
    assert!(matches!(err(&b.build()), LoadError::NoLoadableSegments));
}

#[test]
fn segment_data_beyond_file() {
    let mut b = e64();
    b.segs[0].offset = Some(u64::MAX - 4);
    assert!(matches!(
        err(&b.build()),
        LoadError::SegmentBeyondFile { index: 0, .. }
    ));
    let mut b = mb32();
    b.segs[0].filesz = Some(0x100);
    assert!(matches!(
        err(&b.build()),
        LoadError::SegmentBeyondFile { index: 0, .. }
    ));
}

#[test]
fn filesz_larger_than_memsz() {
    let mut b = mb32();
    b.segs[0].memsz = 8;
    assert!(matches!(
        err(&b.build()),
        LoadError::FileszExceedsMemsz {
            index: 0,
            filesz: 32,
            memsz: 8
        }
    ));
}

#[test]
fn segments_outside_ram() {
    let b = ElfBuilder::elf64(0x3f_fff0).seg(0x3f_fff0, &[0; 16], 0x20);
    let e = err(&b.build());
    assert!(
        matches!(e, LoadError::SegmentOutsideRam { index: 0, .. }),
        "{e}"
    );
    // Wrapping around the 64-bit address space.
    let b = ElfBuilder::elf64(0x10_0000)
        .seg(0x10_0000, &[0; 16], 16)
        .seg(u64::MAX - 0xf, &[], 0x20);
    assert!(matches!(
        err(&b.build()),
        LoadError::SegmentOutsideRam { index: 1, .. }
    ));
    // 32-bit segment crossing 4 GiB.
    let b = ElfBuilder::multiboot32(0x10_0000)
        .seg(0x10_0000, &[0; 16], 16)
        .seg(0xffff_f000, &[], 0x2000);
    assert!(matches!(
        err(&b.build()),
        LoadError::SegmentAbove4G { index: 1, .. }
    ));
}

#[test]
fn overlapping_segments() {
    let b = ElfBuilder::elf64(0x10_0000)
        .seg(0x10_0000, &[0; 16], 0x1000)
        .seg(0x10_0800, &[0; 16], 0x1000);
    assert!(matches!(
        err(&b.build()),
        LoadError::SegmentsOverlap {
            first: 0,
            second: 1
        }
    ));
}

#[test]
fn segment_in_the_bios_area() {
    // The machine keeps its ACPI tables at 0xe0000..0x100000.
    for (paddr, len) in [(0xe_0000u64, 16u64), (0xd_fff0, 0x20), (0xf_fff0, 0x20)] {
        let b = ElfBuilder::multiboot32(paddr).seg(paddr, &[0; 16], len);
        let e = err(&b.build());
        assert!(
            matches!(
                e,
                LoadError::OverlapsBootData {
                    what: "BIOS area with the ACPI tables",
                    ..
                }
            ),
            "{e}"
        );
        let b = ElfBuilder::elf64(paddr).seg(paddr, &[0; 16], len);
        assert!(matches!(
            err(&b.build()),
            LoadError::OverlapsBootData { .. }
        ));
    }
}

#[test]
fn no_room_for_the_loader_data() {
    // 1 MiB of RAM, all of conventional memory taken by the image: the
    // multiboot information has nowhere to go.
    let b = ElfBuilder::multiboot32(0x500).seg(0x500, &[0; 16], 0x9_fc00 - 0x500);
    let o = LoadOptions {
        mem_size: MIB,
        ..opts()
    };
    let e = try_load(&b.build(), &o);
    assert!(
        matches!(
            e,
            LoadError::NoRoomForBootData {
                what: "GDT",
                len: 24
            }
        ),
        "{e}"
    );
}

#[test]
fn entry_outside_segments() {
    let mut b = mb32();
    b.entry = 0x20_0000;
    assert!(matches!(
        err(&b.build()),
        LoadError::EntryOutsideSegments { entry: 0x20_0000 }
    ));
    let mut b = e64();
    b.entry = 0x10_0100; // one past memsz
    assert!(matches!(
        err(&b.build()),
        LoadError::EntryOutsideSegments { .. }
    ));
    let mut img = kludge_image(0x10_0000, &[0xf4], 0);
    put_u32(&mut img, 28, 0x50_0000);
    assert!(matches!(err(&img), LoadError::EntryOutsideSegments { .. }));
}

#[test]
fn option_problems() {
    let img = mb32().build();
    let o = LoadOptions { vcpus: 0, ..opts() };
    assert!(matches!(try_load(&img, &o), LoadError::NoVcpus));
    let o = LoadOptions {
        mem_size: 4096,
        ..opts()
    };
    assert!(matches!(
        try_load(&img, &o),
        LoadError::MemoryTooSmall { .. }
    ));
    let o = LoadOptions {
        mem_size: 1 << 40,
        ..opts()
    };
    assert!(matches!(
        try_load(&e64().build(), &o),
        LoadError::MemoryTooLarge { .. }
    ));
    let o = LoadOptions {
        cmdline: "a\0".into(),
        ..opts()
    };
    assert!(matches!(try_load(&img, &o), LoadError::NulInString { .. }));
    let o = LoadOptions {
        modules: vec![Module::new("x\0y", vec![])],
        ..opts()
    };
    let e = try_load(&img, &o);
    assert_eq!(e.to_string(), "the name of module 0 contains a NUL byte");
    let o = LoadOptions {
        cmdline: "c".repeat(4 * MIB as usize),
        ..opts()
    };
    assert!(matches!(
        try_load(&img, &o),
        LoadError::NoRoomForBootData {
            what: "multiboot information",
            ..
        }
    ));
    let o = LoadOptions {
        modules: vec![Module::new("big", vec![1; 4 * MIB as usize])],
        ..opts()
    };
    assert!(matches!(
        try_load(&img, &o),
        LoadError::ModuleDoesNotFit { .. }
    ));
    let o = LoadOptions {
        cmdline: "quiet".into(),
        ..opts()
    };
    assert!(matches!(
        try_load(&e64().build(), &o),
        LoadError::NoBootInfoForElf64("command line")
    ));
    let o = LoadOptions {
        modules: vec![Module::new("m", vec![1])],
        ..opts()
    };
    assert!(matches!(
        try_load(&e64().build(), &o),
        LoadError::NoBootInfoForElf64("modules")
    ));
}

#[test]
fn detect_agrees_with_load_on_header_errors() {
    let mut b = e64();
    b.machine = 40;
    assert!(matches!(
        detect(&b.build()),
        Err(LoadError::WrongMachine { .. })
    ));
    assert!(matches!(
        detect(b"\x7fELF"),
        Err(LoadError::TruncatedHeader { .. })
    ));
}

//! Memslot management: errors, read-only slots, dirty logging, VMM access.

mod common;
use common::*;
use softmmu::*;

#[test]
fn overlapping_slots_are_refused() {
    let mem = guest(0x10000);
    let e = mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(0xf000),
        0x2000,
        Backing::Anonymous,
    );
    assert!(
        matches!(
            e,
            Err(MemError::Overlap {
                slot: 1,
                other: 0,
                ..
            })
        ),
        "{e:?}"
    );
    // Adjacent is fine, and so is changing a slot over its own old range.
    mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(0x10000),
        0x2000,
        Backing::Anonymous,
    )
    .unwrap();
    mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(0x11000),
        0x2000,
        Backing::Anonymous,
    )
    .unwrap();
    assert_eq!(mem.ram_size(), 0x12000);
}

#[test]
fn misaligned_and_too_large_are_refused() {
    let mem = GuestMemory::new();
    let r = |gpa, size| {
        mem.set_user_memory_region(
            0,
            MemFlags::empty(),
            Gpa::new(gpa),
            size,
            Backing::Anonymous,
        )
    };
    assert!(matches!(
        r(0x800, 0x1000),
        Err(MemError::Misaligned {
            what: "guest_phys_addr",
            ..
        })
    ));
    assert!(matches!(
        r(0x1000, 0x1800),
        Err(MemError::Misaligned { what: "size", .. })
    ));
    assert!(matches!(
        r(!0xfff_u64, 0x2000),
        Err(MemError::TooLarge { .. })
    ));
    assert!(matches!(r(1 << 52, 0x1000), Err(MemError::TooLarge { .. })));
    let e = mem.set_user_memory_region(
        MAX_MEMSLOTS,
        MemFlags::empty(),
        Gpa::new(0),
        0x1000,
        Backing::Anonymous,
    );
    assert!(matches!(e, Err(MemError::InvalidSlot(_))));
    assert_eq!(mem.generation(), 0, "failed calls publish nothing");
}

#[test]
fn each_update_advances_the_generation_by_two() {
    let mem = GuestMemory::new();
    assert_eq!(mem.generation(), 0);
    mem.set_user_memory_region(
        3,
        MemFlags::empty(),
        Gpa::new(0),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    assert_eq!(mem.generation(), 2);
    mem.set_user_memory_region(3, MemFlags::empty(), Gpa::new(0), 0, Backing::Anonymous)
        .unwrap();
    assert_eq!(mem.generation(), 4);
    assert_eq!(mem.ram_size(), 0);
}

#[test]
fn read_and_write_phys_span_slots_and_refuse_holes() {
    let mem = guest(0x2000);
    mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(0x2000),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    let data: Vec<u8> = (0..0x1800u32).map(|i| i as u8).collect();
    mem.write_phys(Gpa::new(0x1400), &data).unwrap();
    let mut back = vec![0; data.len()];
    mem.read_phys(Gpa::new(0x1400), &mut back).unwrap();
    assert_eq!(back, data);
    // Crossing into the hole at 0x3000: nothing is written.
    let e = mem.write_phys(Gpa::new(0x2ffe), &[9, 9, 9, 9]);
    assert!(matches!(e, Err(MemError::Unmapped(0x3000))), "{e:?}");
    let mut two = [0; 2];
    mem.read_phys(Gpa::new(0x2ffe), &mut two).unwrap();
    assert_eq!(two, [0, 0], "nothing was written");
}

#[test]
fn readonly_slot_reads_are_ram_and_writes_are_mmio() {
    let mem = guest(0x10000);
    mem.set_user_memory_region(
        1,
        MemFlags::READONLY,
        Gpa::new(0x10000),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    mem.write_phys(Gpa::new(0x10010), &[0xab]).unwrap(); // the VMM may write
    let mut mmu = Mmu::new(mem.clone());
    let ctx = PagingCtx::default();
    let (_, hva) = ram(mmu.translate(&ctx, Gva::new(0x10010), READ));
    assert_eq!(mmu.load(hva, 1), 0xab);
    for _ in 0..2 {
        // Also after the read filled the front TLB.
        let t = mmu.translate(&ctx, Gva::new(0x10010), WRITE).unwrap();
        assert_eq!(
            t,
            Translation::Mmio {
                gpa: Gpa::new(0x10010)
            }
        );
    }
}

#[test]
fn dirty_log_records_guest_writes_and_clears() {
    let mem = guest(0x10000);
    mem.set_user_memory_region(
        1,
        MemFlags::LOG_DIRTY_PAGES,
        Gpa::new(0x10000),
        0x80000,
        Backing::Anonymous,
    )
    .unwrap();
    let mut mmu = Mmu::new(mem.clone());
    let ctx = PagingCtx::default();
    let page = |n: u64| Gva::new(0x10000 + n * 4096 + 8);
    // A read does not dirty; writes to pages 3 and 65 do.
    ram(mmu.translate(&ctx, page(5), READ));
    for n in [3u64, 65] {
        let (_, h) = ram(mmu.translate(&ctx, page(n), WRITE));
        mmu.store(h, 8, n);
    }
    // A write after a read filled the TLB must still be logged.
    ram(mmu.translate(&ctx, page(7), READ));
    ram(mmu.translate(&ctx, page(7), WRITE));
    mmu.leave();
    assert_eq!(
        mem.get_dirty_log(1).unwrap(),
        vec![(1 << 3) | (1 << 7), 1 << 1]
    );
    assert_eq!(
        mem.get_dirty_log(1).unwrap(),
        vec![0, 0],
        "reading the log clears it"
    );
    // Page 3 is writable in the front TLB now; after the log was read, a
    // write to it must mark it again rather than hit the stale entry.
    mmu.enter();
    let hits = mmu.stats().tlb_hits;
    ram(mmu.translate(&ctx, page(3), WRITE));
    assert_eq!(mmu.stats().tlb_hits, hits, "the writable entry was dropped");
    ram(mmu.translate(&ctx, page(3), WRITE));
    assert_eq!(mmu.stats().tlb_hits, hits + 1, "and refilled as writable");
    mmu.leave();
    assert_eq!(mem.get_dirty_log(1).unwrap(), vec![1 << 3, 0]);
    assert!(matches!(mem.get_dirty_log(0), Err(MemError::NotLogging(0))));
    assert!(matches!(mem.get_dirty_log(9), Err(MemError::NoSuchSlot(9))));
}

#[test]
fn changing_only_flags_keeps_the_memory() {
    let mem = guest(0x1000);
    mem.write_phys(Gpa::new(0x10), b"kept").unwrap();
    mem.set_user_memory_region(
        0,
        MemFlags::LOG_DIRTY_PAGES,
        Gpa::new(0),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    let mut b = [0; 4];
    mem.read_phys(Gpa::new(0x10), &mut b).unwrap();
    assert_eq!(&b, b"kept");
    assert_eq!(mem.get_dirty_log(0).unwrap(), vec![0]);
    // Moving the slot is delete + add: fresh memory.
    mem.set_user_memory_region(
        0,
        MemFlags::empty(),
        Gpa::new(0x1000),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    mem.read_phys(Gpa::new(0x1010), &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    assert!(matches!(
        mem.read_phys(Gpa::new(0x10), &mut b),
        Err(MemError::Unmapped(0x10))
    ));
}

#[test]
fn file_backing_shares_and_readonly_copies() {
    use std::io::{Read, Seek, SeekFrom, Write};
    let path = std::env::temp_dir().join(format!("softmmu-file-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(&vec![0x5a; 0x3000]).unwrap();
    let mem = GuestMemory::new();
    let file = f.try_clone().unwrap();
    mem.set_user_memory_region(
        0,
        MemFlags::empty(),
        Gpa::new(0),
        0x2000,
        Backing::File {
            file,
            offset: 0x1000,
        },
    )
    .unwrap();
    let mut b = [0; 2];
    mem.read_phys(Gpa::new(0x1fff), &mut b).ok();
    mem.read_phys(Gpa::new(0), &mut b).unwrap();
    assert_eq!(b, [0x5a, 0x5a]);
    mem.write_phys(Gpa::new(0), b"hi").unwrap();
    let mut back = [0; 2];
    f.seek(SeekFrom::Start(0x1000)).unwrap();
    f.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hi", "a shared mapping writes through to the file");
    // A read-only slot maps privately: the VMM's writes stay in memory.
    let file = f.try_clone().unwrap();
    mem.set_user_memory_region(
        1,
        MemFlags::READONLY,
        Gpa::new(0x10000),
        0x1000,
        Backing::File { file, offset: 0 },
    )
    .unwrap();
    mem.write_phys(Gpa::new(0x10000), b"zz").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_exact(&mut back).unwrap();
    assert_eq!(back, [0x5a, 0x5a]);
    let e = mem.set_user_memory_region(
        2,
        MemFlags::empty(),
        Gpa::new(0x20000),
        0x1000,
        Backing::File {
            file: f.try_clone().unwrap(),
            offset: 0x10,
        },
    );
    assert!(matches!(
        e,
        Err(MemError::Misaligned {
            what: "file offset",
            ..
        })
    ));
    std::fs::remove_file(&path).ok();
}

#[test]
fn deleting_a_slot_makes_its_range_mmio() {
    let mem = guest(0x2000);
    mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(0x4000),
        0x1000,
        Backing::Anonymous,
    )
    .unwrap();
    let mut mmu = Mmu::new(mem.clone());
    let ctx = PagingCtx::default();
    let (_, h) = ram(mmu.translate(&ctx, Gva::new(0x4008), WRITE));
    mmu.store(h, 4, 0x1234_5678);
    assert_eq!(mmu.load(h, 4), 0x1234_5678);
    mmu.leave();
    assert_eq!(mmu.load(h, 4), 0, "a stale hva is refused");
    assert_eq!(mmu.refused_accesses(), 1);
    mem.set_user_memory_region(
        1,
        MemFlags::empty(),
        Gpa::new(0x4000),
        0,
        Backing::Anonymous,
    )
    .unwrap();
    assert_eq!(
        mmu.translate(&ctx, Gva::new(0x4008), READ).unwrap(),
        Translation::Mmio {
            gpa: Gpa::new(0x4008)
        }
    );
    // Deleting a missing slot is allowed and publishes nothing.
    let g = mem.generation();
    mem.set_user_memory_region(7, MemFlags::empty(), Gpa::new(0), 0, Backing::Anonymous)
        .unwrap();
    assert_eq!(mem.generation(), g);
}

#[test]
fn updates_never_start_from_an_odd_generation() {
    let mem = guest(0x1000);
    for i in 1..20u64 {
        mem.set_user_memory_region(
            1,
            MemFlags::empty(),
            Gpa::new(0x10000),
            (i % 2) * 0x1000,
            Backing::Anonymous,
        )
        .unwrap();
    }
    assert_eq!(mem.generation() % 2, 0);
    assert_eq!(mem.generation_warnings(), 0);
}

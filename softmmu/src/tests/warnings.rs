//! KVM's `WARN_ON(old_memslots->generation & 1)`: an update that starts
//! while another one is in flight. The writers' lock makes that impossible,
//! so the test breaks the lock: a second writer publishes while the first
//! waits for its grace period.

use super::common::*;
use super::Writer;
use crate::*;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A vCPU inside its section, and a first update (slot 1) published and
/// waiting for it; `second` then starts a second update of slot 2.
fn overlap(second: fn(&GuestMemory)) -> (Arc<GuestMemory>, u64, Mmu, Writer, JoinHandle<()>) {
    let mem = guest(0x10_0000);
    let g0 = mem.generation();
    let mut mmu = Mmu::new(mem.clone());
    mmu.enter();
    let first = Writer::default();
    first.start_and_wait_published(&mem, |m| {
        m.set_user_memory_region(
            1,
            MemFlags::empty(),
            Gpa::new(0x20_0000),
            0x1000,
            Backing::Anonymous,
        )
        .unwrap()
    });
    let m = mem.clone();
    let second = std::thread::spawn(move || second(&m));
    (mem, g0, mmu, first, second)
}

#[test]
fn an_update_that_starts_from_an_odd_generation_is_counted() {
    // The second writer ignores the lock and finds the odd generation.
    let (mem, g0, mut mmu, first, second) = overlap(|m| {
        m.set_user_memory_region_unlocked(2, MemFlags::empty(), 0x30_0000, 0x1000)
            .unwrap()
    });
    // It still publishes an odd generation while it waits.
    while mem.generation() != g0 + 3 {
        std::thread::yield_now();
    }
    mmu.leave();
    first.join();
    second.join().unwrap();
    assert_eq!(mem.generation_warnings(), 1);
    assert_eq!(mem.generation(), g0 + 4, "and ends even");
    // The second copy was made from the first one: both slots are there.
    for gpa in [0x20_0000, 0x30_0000] {
        assert!(mem.read_phys(Gpa::new(gpa), &mut [0; 8]).is_ok());
    }
}

#[test]
fn serialised_updates_never_warn() {
    // A second, locked writer waits for the first instead.
    let (mem, g0, mut mmu, first, second) = overlap(|m| {
        m.set_user_memory_region(
            2,
            MemFlags::empty(),
            Gpa::new(0x30_0000),
            0x1000,
            Backing::Anonymous,
        )
        .unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(mem.generation(), g0 + 1, "the second waits for the lock");
    mmu.leave();
    first.join();
    second.join().unwrap();
    assert_eq!(mem.generation_warnings(), 0);
    assert_eq!(mem.generation(), g0 + 4);
}

//! Prints what the MMU's main paths cost:
//! `cargo run -p softmmu --release --example mmu_bench`.
//!
//! - a translation answered by the front TLB;
//! - a translation that walks 4-level page tables (after INVLPG of the page),
//!   installs the spte and refills the TLB;
//! - `install_new_memslots` (a flags-only slot change, so no mmap is timed)
//!   with 0, 1 and 4 threads entering and leaving read sections.

use softmmu::*;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

const P: u64 = 1;
const RW: u64 = 2;

fn put64(mem: &GuestMemory, gpa: u64, v: u64) {
    mem.write_phys(Gpa::new(gpa), &v.to_le_bytes())
        .expect("in RAM");
}

/// Maps `pages` pages from `gva` to consecutive frames from 0x100_0000,
/// tables from 0x1000. Returns the paging context.
fn map(mem: &GuestMemory, gva: u64, pages: u64) -> PagingCtx {
    let (pml4, pdpt, pd) = (0x1000u64, 0x2000u64, 0x3000u64);
    put64(mem, pml4 + ((gva >> 39) & 0x1ff) * 8, pdpt | P | RW);
    put64(mem, pdpt + ((gva >> 30) & 0x1ff) * 8, pd | P | RW);
    let mut pt = 0x10_0000u64;
    for i in 0..pages {
        let va = gva + i * 4096;
        if i % 512 == 0 {
            pt += 0x1000;
            put64(mem, pd + ((va >> 21) & 0x1ff) * 8, pt | P | RW);
        }
        put64(
            mem,
            pt + ((va >> 12) & 0x1ff) * 8,
            (0x100_0000 + i * 4096) | P | RW,
        );
    }
    PagingCtx {
        cr0: CR0_PG | CR0_WP,
        cr3: pml4,
        cr4: CR4_PAE,
        efer: EFER_LMA | EFER_NXE,
        ac: false,
    }
}

/// CPU time of this thread, so that other processes on a shared machine do
/// not inflate the per-operation figures.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// (wall ns, thread-CPU ns) per operation.
fn ns_per(n: u64, f: impl FnOnce()) -> (f64, f64) {
    let (t, c) = (Instant::now(), thread_cpu_ns());
    f();
    let cpu = (thread_cpu_ns() - c) as f64 / n as f64;
    (t.elapsed().as_nanos() as f64 / n as f64, cpu)
}

fn main() {
    let mem = GuestMemory::new();
    mem.set_user_memory_region(
        0,
        MemFlags::empty(),
        Gpa::new(0),
        0x200_0000,
        Backing::Anonymous,
    )
    .expect("slot");
    let gva = 0x7f00_0000_0000u64;
    let ctx = map(&mem, gva, 4096);
    let mut mmu = Mmu::new(mem.clone());
    let read = Access::supervisor(AccessKind::Read);

    // Front-TLB hits over 64 pages (all distinct TLB slots).
    for i in 0..64 {
        mmu.translate(&ctx, Gva::new(gva + i * 4096), read)
            .expect("mapped");
    }
    let n = 20_000_000u64;
    // The result is consumed as the CPU would (match and use), not spilled
    // whole through black_box, which would measure a store-forwarding stall.
    let mut sink = 0u64;
    let hit = ns_per(n, || {
        for i in 0..n {
            let a = Gva::new(gva + ((i & 63) << 12) + (i & 0xff8));
            if let Ok(Translation::Ram { gpa, hva }) = mmu.translate(black_box(&ctx), a, read) {
                sink ^= gpa.raw() ^ hva.addr() as u64;
            }
        }
    });
    black_box(sink);
    println!(
        "front-TLB hit translate:           {:8.2} ns wall, {:8.2} ns thread CPU",
        hit.0, hit.1
    );

    // Misses that walk all four levels.
    let n = 400_000u64;
    let walks = mmu.stats().walks;
    let miss = ns_per(n, || {
        for i in 0..n {
            let a = Gva::new(gva + ((i % 4096) << 12));
            mmu.flush(Flush::Page(a));
            black_box(mmu.translate(&ctx, a, read).ok());
        }
    });
    assert_eq!(mmu.stats().walks - walks, n, "every iteration walked");
    println!(
        "miss with 4-level walk (+INVLPG):  {:8.2} ns wall, {:8.2} ns thread CPU",
        miss.0, miss.1
    );
    mmu.leave();

    for readers in [0usize, 1, 4] {
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                let (mem, stop) = (mem.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut mmu = Mmu::new(mem);
                    let mut sections = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        mmu.enter();
                        for i in 0..16 {
                            black_box(mmu.translate(&ctx, Gva::new(gva + (i << 12)), read).ok());
                        }
                        mmu.leave();
                        sections += 1;
                    }
                    sections
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = 2000u64;
        let (t, c) = (Instant::now(), thread_cpu_ns());
        for i in 0..n {
            let flags = if i % 2 == 0 {
                MemFlags::LOG_DIRTY_PAGES
            } else {
                MemFlags::empty()
            };
            mem.set_user_memory_region(0, flags, Gpa::new(0), 0x200_0000, Backing::Anonymous)
                .expect("flags");
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let cpu = (thread_cpu_ns() - c) as f64 / 1e3 / n as f64;
        stop.store(true, Ordering::Relaxed);
        let sections: u64 = handles.into_iter().map(|h| h.join().expect("reader")).sum();
        println!(
            "install_new_memslots, {readers} readers:   {per:8.2} us wall, {cpu:8.2} us writer CPU ({sections} reader sections meanwhile)"
        );
    }
}

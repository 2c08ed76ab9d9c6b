//! # softmmu: the memory half of softvm
//!
//! This crate is softvm's MMU and guest memory, and this page is its design
//! document. It knows nothing about instructions: the CPU (emu-core) asks it
//! to translate addresses and to load and store guest RAM.
//!
//! ## Glossary
//!
//! - **gva** ([`Gva`]): guest virtual (linear) address, what guest page tables
//!   translate.
//! - **gpa** ([`Gpa`]): guest physical address, what memslots map.
//! - **gfn** ([`Gfn`]): guest frame number, a gpa divided by 4096.
//! - **hva** ([`Hva`]): host address of a byte of guest RAM. Valid only inside
//!   the read section it was produced in.
//! - **gpte**: an entry of the guest's own page tables (PML5E ... PTE), read
//!   by the [`walker`] from guest RAM.
//! - **spte**: a shadow page-table entry, the MMU's cached answer for one
//!   guest-virtual page: *present* (gfn + rights of the whole walk) or *MMIO*
//!   ("this gfn is in no memslot", tagged with a generation). See [`spte`].
//! - **memslot**: a guest-physical range backed by a host mapping, with flags
//!   (`READONLY`, `LOG_DIRTY_PAGES`), set with
//!   [`GuestMemory::set_user_memory_region`] exactly like KVM's ioctl.
//! - **generation**: a counter of memslot updates, stored in each published
//!   copy of the memslots. Even when stable, odd while an update waits for
//!   readers. MMIO sptes remember bits 1..=19 of it.
//! - **SRCU** ([`srcu`]): the grace-period mechanism that lets a writer wait
//!   until no vCPU can still be looking at an old copy of the memslots.
//! - **read section**: the span between [`Mmu::enter`] and [`Mmu::leave`]
//!   during which a vCPU may hold hvas and pointers into the memslots.
//! - **front TLB**: a 256-entry per-vCPU cache of gva page -> host page with
//!   packed permissions, in front of the shadow tables.
//!
//! ## The idea: Linux ee3d1570b586
//!
//! KVM caches "this gfn is in no memslot, so accesses to it are MMIO" in a
//! not-present shadow entry, the *MMIO spte*, so that the next access to
//! the page skips both the guest walk and the memslot search. The cache is
//! only right while the memslots do not change, so each MMIO spte carries
//! the memslot *generation* it was made under and answers only while that
//! generation is current. The seed commit ("kvm: fix potentially corrupt
//! mmio cache") found that a vCPU could decide "MMIO" from one copy of the
//! memslots and tag the spte with the generation of a newer copy, in which
//! the gfn is RAM: the spte then answers "MMIO" for RAM, for good. softvm
//! implements the fix as its design.
//!
//! ### The race, and how each step of the fix closes it
//!
//! The vCPU follows the seed's *reader order*: inside its read section it
//! looks the gfn up in the copy of the memslots it holds, and only once it
//! knows the answer is MMIO does it read the generation of the copy
//! published now, to tag the spte with. Before the fix an update published
//! its new copy with generation `g + 1` and then waited for readers:
//!
//! | step | writer (`set_user_memory_region`, gfn becomes RAM) | vCPU (translating gva -> gfn) |
//! |---|---|---|
//! | 1 | | enters its read section; looks gfn up in copy A (generation `g`): no slot, MMIO |
//! | 2 | publishes copy B, gfn RAM, generation `g + 1` | |
//! | 3 | `synchronize`: waits for the vCPU | reads the generation: `g + 1`; caches the MMIO spte tagged `g + 1` |
//! | 4 | | leaves its section |
//! | 5 | returns; copy A is freed | |
//! | 6 | | translates gva again: spte tag `g + 1` = current `g + 1`, answers MMIO for RAM |
//!
//! The fix, step by step:
//!
//! - **Publish odd** (step 2 publishes `g + 1` with `g` even): every
//!   generation a vCPU can read between publication and the end of the
//!   grace period is odd: "an update is in flight".
//! - **Never store bit 0** (step 3): an spte tagged `g + 1` reads back as
//!   `g`, the generation before the update, which is never current again
//!   (for 2^19 updates: see the wrap below). So a decision from copy A,
//!   tagged during the update, can never match after it. softvm goes one
//!   step further (later KVM, "do not cache MMIO accesses while memslots
//!   are in flux"): while the generation is odd it makes no MMIO spte at
//!   all and answers the access as MMIO this once ([`MmuEvent::MmioNotCached`]).
//! - **Even again only after the grace period** (after step 5, the copy
//!   becomes `g + 2`): the final generation can only be read in a section
//!   that `synchronize` did not wait for, one that began after copy B was
//!   published, so its lookup used B. An spte tagged `g + 2` therefore
//!   always comes from a lookup in B (or a later copy).
//! - **The current generation while odd matches no spte**: a stored
//!   generation has bit 0 clear, the current one has it set, so during the
//!   update every MMIO spte misses and the vCPU looks the gfn up again.
//!
//! With the reader order reversed (generation read first, lookup in the
//! same copy afterwards) the single increment would be enough; the seed's
//! order is the natural one (the spte is made where the decision is known)
//! and it is the one the fix must protect, so it is the one softvm uses,
//! replays (`src/tests/seed_replay.rs`) and model-checks with loom
//! (`src/loom_models.rs`), where the pre-fix publication is caught.
//!
//! ### The wraparound zap, and when it runs
//!
//! An MMIO spte keeps generation bits 1..=19 (the seed's layout: bits
//! 1..=9 at spte bits 3..=11, bits 10..=19 at 52..=61, see [`spte`]), so the
//! stored value of a generation comes back every 2^19 updates. When the
//! MMIO part of the generation wraps to 0 every shadow page is zapped, so
//! that nothing made a cycle ago survives to match again.
//!
//! The zap runs *after* the grace period and after the final generation is
//! stored, as the seed's `kvm_arch_memslots_updated` does. Take the update
//! from `0xffffe` to `0x100000` (stored `0`):
//!
//! | when the spte is made | its tag | why the zap (or the rule) catches it |
//! |---|---|---|
//! | before the update | `0xffffe` | any zap |
//! | from copy A during the grace period (tag read before publication) | `0xffffe` | the vCPU's section ends before `synchronize` returns, so it sees the zap later |
//! | during the grace period, tag read after publication | `0xfffff`, stored `0xffffe` | not made: the generation is odd |
//! | by a vCPU that has already seen a zap announced *before* publication and still reads copy A | `0xffffe` | only a zap after the grace period: then no vCPU can still read copy A |
//! | after the vCPU saw the zap | `0x100000` or later | nothing to catch |
//!
//! A zap before publication (as softvm had it) is outrun by the fourth row,
//! and by the third without the odd rule: the spte survives, the vCPU sits
//! idle for 2^19 - 1 updates, the gfn becomes RAM under a generation whose
//! stored value is `0xffffe` again, and the spte answers MMIO for it.
//! `src/tests/wrap.rs` replays each row with real updates.
//!
//! Each vCPU zaps lazily: the writer bumps a zap epoch (after storing the
//! final generation), and a vCPU compares it at the start of every
//! translation, before it uses any cached spte, and at [`Mmu::enter`].
//! A vCPU that sees the new epoch reads the new generation afterwards
//! (release/acquire on the epoch), so nothing it tags from then on carries
//! the old one.
//!
//! ### The odd-generation rule
//!
//! - *Reader*: no MMIO spte is made while the generation it would carry is
//!   odd (above).
//! - *Writer*: an update starts from an even generation. Writers hold one
//!   lock, so an odd starting point means two updates overlapped, which
//!   KVM reports with `WARN_ON(old_memslots->generation & 1)`; softvm
//!   counts it ([`GuestMemory::generation_warnings`]) and still publishes
//!   the next odd generation, then an even one, so the rules above hold.
//!
//! ### Generations only grow, and why memory safety depends on it
//!
//! The front TLB holds host pointers into memslot mappings and is flushed
//! whenever a vCPU sees a generation other than the one it filled the TLB
//! under; a deleted slot's mapping is unmapped after the grace period of
//! the update that deleted it. If a generation value could come back, a
//! vCPU could see "no change", keep its TLB, and read an unmapped page.
//! So the generation moves only through updates, by checked `u64`
//! additions (2^63 updates, centuries at one per nanosecond), and nothing
//! in the public API sets it.
//!
//! ## Data flow of a translation ([`Mmu::translate`])
//!
//! 1. **Front TLB**: tag compare, one permission bit, add. Hit: RAM.
//! 2. **Observe**: the generation of the copy this translation uses, then
//!    the zap and dirty-log epochs: a changed generation flushes the front
//!    TLB, a new zap epoch drops every spte.
//! 3. **Shadow tables** (per address space: format bits, the root CR3
//!    selects, PCID; globals shared): a present spte whose rights allow the
//!    access (writes also need the guest dirty bit already set) skips the
//!    walk; an MMIO spte tagged with the observed generation answers MMIO
//!    directly; a stale one is dropped (event `MmioGenerationMiss`).
//! 4. **Walk** ([`walker::walk_with_pdptes`]): guest page tables (PAE's top
//!    level from the PDPTE registers), rights, reserved bits, A/D bits by
//!    compare-and-swap (a lost race redoes the walk). A fault is returned,
//!    never cached, and drops the page's cached translations.
//! 5. **Memslot lookup** in the same copy: RAM fills the front TLB (marking
//!    the dirty log for writes); no slot answers MMIO and then reads the
//!    generation published now to make an MMIO spte (none if it is odd); a
//!    write to a `READONLY` slot is MMIO.
//!
//! ## Events and reactions
//!
//! | event | reaction |
//! |---|---|
//! | memslot update (any thread) | odd generation, publish, grace period, even generation ([`MmuEvent::MemslotInstall`]); vCPUs flush their front TLB when they see the generation change ([`TlbFlushReason::MemslotGeneration`]); MMIO sptes are *not* zapped, they fail the generation check on use |
//! | MMIO generation wraps to 0 | after that update's grace period, a zap epoch is bumped; every vCPU drops all sptes and its TLB before it uses its caches again ([`ZapReason::GenerationWrap`]) |
//! | MMIO spte used | generation equal: [`MmuEvent::MmioSpteHit`]; different: [`MmuEvent::MmioGenerationMiss`], spte dropped, walk redone |
//! | gfn found in no slot | tag read after the lookup; even: MMIO spte installed; odd: [`MmuEvent::MmioNotCached`] |
//! | guest walk | [`MmuEvent::WalkStep`] per level, [`MmuEvent::AccessedDirty`] per A/D update, then [`MmuEvent::SpteInstall`] or [`MmuEvent::Fault`] |
//! | page fault | the faulting page's sptes (current PCID and global) and front-TLB entry are dropped (SDM Vol. 3A 4.10.4.1) |
//! | MOV CR3 / CR4 change | [`Flush::NonGlobal`] (or [`Flush::All`]) from the CPU; and the front TLB is refilled whenever CR0/CR3/CR4/EFER differ from the ones it was filled under |
//! | PDPTE load (PAE: MOV CR3, MOV CR0/CR4 changing paging bits, task switch) | [`Mmu::load_pdptes`] from the CPU; [`PdpteError`] becomes #GP(0) |
//! | INVLPG | [`Flush::Page`]: the page (all pieces of a large page) in every PCID, globals included |
//! | INVPCID | [`Flush::PcidPage`], [`Flush::Pcid`], [`Flush::All`] (type 2), [`Flush::AllNonGlobal`] (type 3) |
//! | dirty log read | bitmap taken, vCPUs told to drop writable TLB entries, grace period ([`GuestMemory::get_dirty_log`]) |
//! | shadow cache full | everything zapped ([`ZapReason::CacheFull`]) |
//!
//! ## Safety
//!
//! `unsafe` lives in two modules: the guest-RAM access module (`mem/ram.rs`
//! with its 16-byte compare-and-swap in `mem/ram/cas16.rs`: atomics over
//! the mapping) and the mapping code (`mem/mapping.rs`: mmap and the RCU
//! pointer). Each block has a `// SAFETY:` comment. The public API is safe:
//!
//! - An [`Hva`] carries the id of its read section, and the MMU refuses
//!   (counts, reads as 0) an access through any other. Section ids come
//!   from one process-wide 64-bit counter and are never issued twice, so a
//!   stale `Hva`, whichever vCPU it is shown to, never passes.
//! - The front TLB's host pointers are only used inside a read section and
//!   are dropped when the generation changes; generations never repeat
//!   (above).
//! - Guest code races accesses of different sizes to the same bytes (a
//!   4-byte store against a 1-byte load on another vCPU). Racing mixed-size
//!   atomics with a write among them are undefined behaviour in Rust's
//!   memory model; softvm relies instead on what LLVM's byte-wise memory
//!   model, the code generator (one instruction of the access's width) and
//!   the host architecture give: single-copy atomicity of aligned 1-, 2-,
//!   4- and 8-byte accesses and a memory model defined for mixed sizes, on
//!   x86-64 (TSO, plain `MOV`s and `LOCK CMPXCHG`) and AArch64
//!   (`LDAR`/`STLR`, `CASAL` or exclusive pairs). This is confined to
//!   `mem/ram.rs`, whose docs state it precisely; no Rust reference to
//!   guest RAM exists anywhere.
//!
//! ### Test hooks
//!
//! The tests that must be able to fail need broken variants: the pre-fix
//! publication, the early zap, no zap, a second writer that ignores the
//! writers' lock, a reader that caches while the generation is odd, and
//! pause points inside a translation. All of them are `cfg(test)` items of
//! this crate (`mem/test_hooks.rs`, `mmu/test_hooks.rs`, the test-only
//! `PublishMode` variants of `mem/publish.rs`), used by the tests in `src/tests/`
//! and the loom models; no build that another crate links contains them.
//! In particular nothing can move a generation backwards. The reproduction
//! of a use-after-unmap that such a hook once allowed (translate, leave,
//! delete the slot, rewind the generation, hot access) does not compile:
//!
//! ```compile_fail
//! use softmmu::*;
//! let mem = GuestMemory::new();
//! mem.set_user_memory_region(0, MemFlags::empty(), Gpa::new(0), 0x1000, Backing::Anonymous)
//!     .unwrap();
//! let mut mmu = Mmu::new(mem.clone());
//! let ctx = PagingCtx::default();
//! mmu.translate(&ctx, Gva::new(0), Access::supervisor(AccessKind::Read)).unwrap();
//! mmu.leave();
//! let before = mem.generation();
//! mem.set_user_memory_region(0, MemFlags::empty(), Gpa::new(0), 0, Backing::Anonymous)
//!     .unwrap();
//! mem.set_generation_for_test(before); // no such method outside softmmu's tests
//! mmu.hot_prepare(&ctx, false);
//! mmu.hot_load(0, 8);
//! ```
//!
//! and without the rewind the same steps are harmless: the vCPU sees the
//! new generation and drops its TLB.
//!
//! ```
//! use softmmu::*;
//! let mem = GuestMemory::new();
//! mem.set_user_memory_region(0, MemFlags::empty(), Gpa::new(0), 0x1000, Backing::Anonymous)
//!     .unwrap();
//! let mut mmu = Mmu::new(mem.clone());
//! let ctx = PagingCtx::default();
//! mmu.translate(&ctx, Gva::new(0), Access::supervisor(AccessKind::Read)).unwrap();
//! mmu.leave();
//! mem.set_user_memory_region(0, MemFlags::empty(), Gpa::new(0), 0, Backing::Anonymous)
//!     .unwrap();
//! mmu.hot_prepare(&ctx, false);
//! assert_eq!(mmu.hot_load(0, 8), None);
//! ```
//!
//! ## What the CPU must do
//!
//! - Call [`Mmu::enter`] before running and [`Mmu::leave`] on every exit to
//!   the VMM, on HLT, and periodically: memslot updates and dirty-log reads
//!   wait for every vCPU to leave.
//! - Translate each page of a page-crossing access separately.
//! - Call [`Mmu::load_pdptes`] with the new paging context before it
//!   commits MOV to CR3 under PAE paging, MOV to CR0/CR4 that changes
//!   CR0.CD/NW/PG or CR4.PAE/PGE/PSE/SMEP with PAE paging in use after it,
//!   and a task switch that changes CR3; an error is #GP(0) (#TS for the
//!   task switch) and no change.
//! - Ask for the flushes of the table above ([`Mmu::flush`]).
//! - Report `MAXPHYADDR` = [`walker::DEFAULT_PHYS_ADDR_BITS`] in CPUID (or
//!   call [`Mmu::set_phys_addr_bits`]).
//!
//! ## Checking it
//!
//! `cargo test -p softmmu --release` runs the unit tests, the scenario
//! tests of `src/tests/` and the integration tests. The loom models need
//! their own build: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom
//! cargo test -p softmmu --release --lib loom` (`.ci/run` runs it with
//! `LOOM_MAX_PREEMPTIONS=4`).

pub mod addr;
mod ctx;
pub mod events;
mod mem;
pub mod mmu;
pub mod spte;
pub mod srcu;
mod sync;
pub mod walker;

pub use addr::*;
pub use ctx::*;
pub use events::{MmuEvent, MmuSink, MmuStats, TlbFlushReason, ZapReason};
pub use mem::{Backing, GuestMemory, Hva, MemError, MemFlags, GPA_BITS, MAX_MEMSLOTS};
pub use mmu::{Flush, Mmu, PdpteError, Translation};
pub use walker::FaultReason;

/// The guest-memory types under their own path (`softmmu::memslot::...`).
pub mod memslot {
    pub use crate::mem::{Backing, GuestMemory, MemError, MemFlags, MAX_MEMSLOTS};
}

#[cfg(loom)]
mod loom_models;

// The tests that need this crate's test-only hooks live inside it (the
// hooks exist only under `cfg(test)`), and share the integration tests'
// helpers, which name the crate `softmmu`.
#[cfg(test)]
extern crate self as softmmu;
#[cfg(all(test, not(loom)))]
mod tests;

// vCPUs run on rayon threads and share the memory: these must hold.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<GuestMemory>();
    send_sync::<Hva>();
    send::<Mmu>();
    send::<srcu::SrcuReader>();
};

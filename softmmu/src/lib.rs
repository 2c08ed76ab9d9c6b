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
//! ## The idea (Linux ee3d1570b586)
//!
//! A vCPU may decide that a gpa is MMIO using one copy of the memslots and
//! tag that decision with the generation of a newer copy; the cached MMIO
//! spte then matches forever although the gpa has become RAM. softvm
//! implements the fix as its design:
//!
//! 1. Memslots are published read-copy-update style under SRCU
//!    ([`srcu::Srcu`], per-vCPU counter shards).
//! 2. `install_new_memslots` (in `mem/publish.rs`): new generation = old + 1
//!    (odd), publish, synchronize, generation += 1 (even). If the final MMIO
//!    generation wraps to 0, all shadow pages are zapped *before* publishing.
//! 3. An MMIO spte stores generation bits 1..=19 only; bit 0 reads back as
//!    zero. So an spte made during an update carries the old generation and
//!    never matches again, and while the update is in progress the (odd)
//!    current generation matches no spte at all.
//! 4. The reader side reads the generation of the published copy *before*
//!    looking the gfn up in that same copy, inside its read section.
//!
//! ## Data flow of a translation ([`Mmu::translate`])
//!
//! 1. **Front TLB**: tag compare, one permission bit, add. Hit: RAM.
//! 2. **Shadow tables** (per address space: format bits, CR3 root, PCID;
//!    globals shared): a present spte whose rights allow the access (writes
//!    also need the guest dirty bit already set) skips the walk; an MMIO spte
//!    of the current generation answers MMIO directly; a stale one is
//!    dropped (event `MmioGenerationMiss`).
//! 3. **Walk** ([`walker::walk_with`]): guest page tables, rights, reserved
//!    bits, A/D bits by compare-and-swap. A fault is returned, never cached.
//! 4. **Memslot lookup** in the copy whose generation was read in step 2:
//!    RAM fills the front TLB (marking the dirty log for writes), no slot
//!    installs an MMIO spte, a write to a `READONLY` slot is MMIO.
//!
//! ## Events and reactions
//!
//! | event | reaction |
//! |---|---|
//! | memslot update (any thread) | odd generation, publish, grace period, even generation ([`MmuEvent::MemslotInstall`]); vCPUs flush their front TLB when they see the generation change ([`TlbFlushReason::MemslotGeneration`]); MMIO sptes are *not* zapped, they fail the generation check on use |
//! | MMIO generation wraps to 0 | zap request published before the new generation; every vCPU drops all sptes and its TLB before using the new generation ([`ZapReason::GenerationWrap`]) |
//! | MMIO spte used | generation equal: [`MmuEvent::MmioSpteHit`]; different: [`MmuEvent::MmioGenerationMiss`], spte dropped, walk redone |
//! | guest walk | [`MmuEvent::WalkStep`] per level, [`MmuEvent::AccessedDirty`] per A/D update, then [`MmuEvent::SpteInstall`] or [`MmuEvent::Fault`] |
//! | MOV CR3 / CR4 change | [`Flush::NonGlobal`] (or [`Flush::All`]) from the CPU; and the front TLB is refilled whenever CR0/CR3/CR4/EFER differ from the ones it was filled under |
//! | INVLPG | [`Flush::Page`]: the page (all pieces of a large page) in every PCID, globals included |
//! | INVPCID | [`Flush::PcidPage`], [`Flush::Pcid`], [`Flush::All`], [`Flush::AllNonGlobal`] |
//! | dirty log read | bitmap taken, vCPUs told to drop writable TLB entries, grace period ([`GuestMemory::get_dirty_log`]) |
//! | shadow cache full | everything zapped ([`ZapReason::CacheFull`]) |
//!
//! ## Safety
//!
//! `unsafe` lives in two modules: the guest-RAM access module (`mem/ram.rs`,
//! atomics over the mapping) and the mapping code (`mem/mapping.rs`, mmap
//! and the RCU pointer). Each block has a `// SAFETY:` comment. The public
//! API is safe: an [`Hva`] carries the id of its read section and the MMU
//! refuses (counts, reads as 0) accesses through a stale one.
//!
//! ## What the CPU must do
//!
//! - Call [`Mmu::enter`] before running and [`Mmu::leave`] on every exit to
//!   the VMM, on HLT, and periodically: memslot updates and dirty-log reads
//!   wait for every vCPU to leave.
//! - Translate each page of a page-crossing access separately.
//! - Report `MAXPHYADDR` = [`walker::DEFAULT_PHYS_ADDR_BITS`] in CPUID (or
//!   call [`Mmu::set_phys_addr_bits`]).

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

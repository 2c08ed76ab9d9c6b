//! Typed MMU events for an optional sink, and the always-on counters.
//!
//! Events exist so that people can see *why* the MMU did something (the
//! `softvm trace` command prints their `Display` form) and so that tests can
//! assert on the mechanism rather than only on its results. The counters in
//! [`MmuStats`] are plain integers owned by one vCPU: cheap enough to leave on.

use crate::addr::{Gpa, Gva};
use crate::mmu::Flush;
use crate::walker::FaultReason;
use core::fmt;

/// Receives MMU events. Called synchronously on the vCPU thread (or on the
/// thread changing memslots), so implementations should be quick.
pub trait MmuSink: Send + Sync {
    /// One event happened.
    fn event(&self, ev: &MmuEvent);
}

/// Why shadow pages were zapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZapReason {
    /// The MMIO generation stored in sptes wrapped around to 0; an spte made a
    /// full cycle ago (or from the old memslots during the wrapping update)
    /// could match again, so every shadow page goes, once that update's
    /// grace period is over.
    GenerationWrap,
    /// The shadow cache reached its size limit and was emptied.
    CacheFull,
    /// The vCPU asked for a full flush.
    FlushAll,
}

/// Why the front TLB (guest-virtual page -> host pointer) was emptied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbFlushReason {
    /// The memslots changed: host pointers may now be wrong.
    MemslotGeneration {
        /// The generation the TLB was filled under.
        old: u64,
        /// The generation now published.
        new: u64,
    },
    /// A dirty log was fetched: writable entries must mark pages again.
    DirtyLogReset,
    /// The paging context (CR0/CR3/CR4/EFER) differs from the one the TLB was
    /// filled under.
    ContextSwitch,
    /// The guest (through emu-core) asked for an invalidation.
    Guest(Flush),
}

/// One thing the MMU did, with what it needs to be explained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmuEvent {
    /// The walker read one paging-structure entry.
    WalkStep {
        /// 5 = PML5, 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT.
        level: u8,
        /// Where the entry is in guest physical memory.
        entry_gpa: Gpa,
        /// Its value as read.
        entry: u64,
    },
    /// The walker set accessed/dirty bits in a guest entry by compare-and-swap.
    AccessedDirty {
        /// Level of the entry.
        level: u8,
        /// Where the entry is.
        entry_gpa: Gpa,
        /// The value before.
        old: u64,
        /// The value written.
        new: u64,
    },
    /// A guest page fault is being returned to the CPU (and the cached
    /// translations of its page dropped, SDM Vol. 3A 4.10.4.1).
    Fault {
        /// The faulting linear address (CR2).
        addr: Gva,
        /// The #PF error code.
        error_code: u32,
        /// Which rule caused it.
        reason: FaultReason,
    },
    /// A shadow entry was installed for a guest-virtual page.
    SpteInstall {
        /// The page (aligned).
        gva: Gva,
        /// The spte value (see [`crate::spte`]).
        spte: u64,
    },
    /// An MMIO spte matched the current generation: no walk, no memslot search.
    MmioSpteHit {
        /// The address translated.
        gva: Gva,
        /// Its guest physical address.
        gpa: Gpa,
        /// The generation both carry.
        generation: u64,
    },
    /// An MMIO spte was found stale (made under another generation) and
    /// dropped; the translation is redone from the guest page tables.
    MmioGenerationMiss {
        /// The address translated.
        gva: Gva,
        /// Generation stored in the spte (bit 0 always zero).
        spte_gen: u64,
        /// Current MMIO generation (low 20 bits).
        current_gen: u64,
    },
    /// A gpa in no memslot was answered as MMIO without caching the answer:
    /// the generation read to tag it was odd (an update is in flight).
    MmioNotCached {
        /// The address translated.
        gva: Gva,
        /// The odd generation.
        generation: u64,
    },
    /// New memslots were published (emitted by `GuestMemory`'s sink).
    MemslotInstall {
        /// Generation before the update (even unless writers raced).
        old_generation: u64,
        /// Generation after it (even: old + 2 when old is even).
        new_generation: u64,
    },
    /// All shadow pages were dropped.
    Zap {
        /// Why.
        reason: ZapReason,
    },
    /// The front TLB was emptied, or part of the shadow cache invalidated.
    TlbFlush {
        /// Why.
        reason: TlbFlushReason,
    },
}

/// The bits of a paging-structure entry in words, and where it points.
fn decode_entry(level: u8, e: u64) -> String {
    if e & 1 == 0 {
        return "NOT present".to_string();
    }
    let mut w = vec!["present"];
    w.push(if e & 2 != 0 { "writable" } else { "read-only" });
    w.push(if e & 4 != 0 { "user" } else { "supervisor" });
    if e & 8 != 0 {
        w.push("write-through");
    }
    if e & 16 != 0 {
        w.push("cache-disabled");
    }
    if e & 32 != 0 {
        w.push("accessed");
    }
    let leaf = level == 1 || (matches!(level, 2 | 3) && e & 0x80 != 0);
    if leaf && e & 64 != 0 {
        w.push("dirty");
    }
    if level > 1 && e & 0x80 != 0 {
        w.push("large page (PS)");
    }
    if leaf && e & 0x100 != 0 {
        w.push("global");
    }
    if e >> 63 != 0 {
        w.push("no-execute");
    }
    let addr = e & 0x000f_ffff_ffff_f000;
    let target = match (leaf, level) {
        (false, _) => format!("next table at {addr:#x}"),
        (true, 1) => format!("4 KiB page at {addr:#x}"),
        (true, 2) => format!("large page at {:#x}", addr & !0x1f_ffff),
        (true, _) => format!("1 GiB page at {:#x}", addr & !0x3fff_ffff),
    };
    format!("{}; {target}", w.join(", "))
}

impl fmt::Display for MmuEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmuEvent::WalkStep { level, entry_gpa, entry } => write!(
                f,
                "walk: level {level} ({}) entry at gpa {entry_gpa:#x} = {entry:#018x} ({})",
                level_name(level),
                decode_entry(level, entry)
            ),
            MmuEvent::AccessedDirty { level, entry_gpa, old, new } => write!(
                f,
                "walk: set {} in the level {level} entry at gpa {entry_gpa:#x}: {old:#x} -> {new:#x}",
                if (new ^ old) & 0x40 != 0 { "accessed+dirty" } else { "accessed" }
            ),
            MmuEvent::Fault { addr, error_code, reason } => write!(
                f,
                "#PF at {addr:#x}, error code {error_code:#x} [{}]: {reason}",
                decode_error_code(error_code)
            ),
            MmuEvent::SpteInstall { gva, spte } => {
                if crate::spte::is_mmio_spte(spte) {
                    write!(
                        f,
                        "shadow: gva page {gva:#x} -> MMIO spte {spte:#x} (gfn {:#x}, generation {}): later accesses skip the walk while the memslots stay the same",
                        crate::spte::get_mmio_spte_gfn(spte),
                        crate::spte::get_mmio_spte_generation(spte)
                    )
                } else {
                    write!(
                        f,
                        "shadow: gva page {gva:#x} -> gfn {:#x}, spte {spte:#x}{}{}{}",
                        crate::spte::present_spte_gfn(spte),
                        if spte & crate::spte::SPTE_WRITABLE != 0 { " writable" } else { " read-only (or not yet dirty)" },
                        if spte & crate::spte::SPTE_USER != 0 { " user" } else { " supervisor" },
                        if spte & crate::spte::SPTE_NX != 0 { " no-exec" } else { "" }
                    )
                }
            }
            MmuEvent::MmioSpteHit { gva, gpa, generation } => write!(
                f,
                "shadow: MMIO spte hit for {gva:#x} -> gpa {gpa:#x}: memslots still at generation {generation}, so the address is still MMIO"
            ),
            MmuEvent::MmioGenerationMiss { gva, spte_gen, current_gen } => write!(
                f,
                "shadow: MMIO spte for {gva:#x} made under generation {spte_gen}, memslots now at {current_gen}{}: stale, looked up again",
                if current_gen & 1 != 0 { " (odd: an update is in progress)" } else { "" }
            ),
            MmuEvent::MmioNotCached { gva, generation } => write!(
                f,
                "shadow: {gva:#x} is MMIO, not cached: memslots at generation {generation} (odd: an update is in progress)"
            ),
            MmuEvent::MemslotInstall { old_generation, new_generation } => write!(
                f,
                "memslots: generation {old_generation} -> {} (odd, published, waited for readers) -> {new_generation}",
                new_generation.wrapping_sub(1)
            ),
            MmuEvent::Zap { reason } => write!(f, "shadow: all shadow pages zapped: {reason}"),
            MmuEvent::TlbFlush { reason } => write!(f, "tlb: flushed: {reason}"),
        }
    }
}

impl fmt::Display for ZapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ZapReason::GenerationWrap => {
                "the MMIO generation wrapped to 0, so a very old MMIO spte could match again"
            }
            ZapReason::CacheFull => "the shadow cache reached its size limit",
            ZapReason::FlushAll => "a full TLB flush was requested",
        })
    }
}

impl fmt::Display for TlbFlushReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlbFlushReason::MemslotGeneration { old, new } => write!(
                f,
                "memslot generation {old} -> {new}; host pointers may have moved"
            ),
            TlbFlushReason::DirtyLogReset => {
                f.write_str("a dirty log was read; writes must mark their pages again")
            }
            TlbFlushReason::ContextSwitch => {
                f.write_str("CR0/CR3/CR4/EFER changed since the TLB was filled")
            }
            TlbFlushReason::Guest(fl) => write!(f, "guest request {fl:?}"),
        }
    }
}

fn level_name(level: u8) -> &'static str {
    match level {
        5 => "PML5E",
        4 => "PML4E",
        3 => "PDPTE",
        2 => "PDE",
        1 => "PTE",
        _ => "?",
    }
}

/// Spells out the bits of a #PF error code.
pub fn decode_error_code(ec: u32) -> String {
    let mut parts = Vec::new();
    parts.push(if ec & 1 != 0 {
        "protection"
    } else {
        "not-present"
    });
    parts.push(if ec & 2 != 0 { "write" } else { "read" });
    parts.push(if ec & 4 != 0 { "user" } else { "supervisor" });
    if ec & 8 != 0 {
        parts.push("reserved-bit");
    }
    if ec & 16 != 0 {
        parts.push("instruction-fetch");
    }
    if ec & 32 != 0 {
        parts.push("protection-key");
    }
    parts.join(" ")
}

/// Per-vCPU counters, one per kind of event; always on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MmuStats {
    /// Guest page-table walks (paging-off identity translations included).
    pub walks: u64,
    /// Page faults returned.
    pub faults: u64,
    /// Shadow entries installed (present and MMIO).
    pub spte_installs: u64,
    /// MMIO sptes that matched the current generation.
    pub mmio_hits: u64,
    /// MMIO sptes found stale.
    pub mmio_gen_misses: u64,
    /// MMIO answers not cached because an update was in flight.
    pub mmio_uncached: u64,
    /// Translations answered by the front TLB through [`crate::Mmu::translate`]
    /// (the CPU's hot path, `Mmu::hot_load` and friends, is not counted).
    pub tlb_hits: u64,
    /// Translations the front TLB could not answer.
    pub tlb_misses: u64,
    /// Present shadow entries that answered a front-TLB miss without a walk.
    pub spte_hits: u64,
    /// Times all shadow pages were zapped.
    pub zaps: u64,
    /// Front-TLB flushes and shadow invalidations.
    pub flushes: u64,
    /// Accessed/dirty bits set in guest entries.
    pub ad_updates: u64,
    /// Memslot generation changes this vCPU observed.
    pub generation_changes: u64,
}

#[cfg(test)]
mod decode_tests {
    use super::decode_entry;

    #[test]
    fn entries_are_explained_bit_by_bit() {
        assert_eq!(decode_entry(4, 0x102000), "NOT present");
        assert_eq!(
            decode_entry(4, 0x102023),
            "present, writable, supervisor, accessed; next table at 0x102000"
        );
        assert_eq!(
            decode_entry(2, 0x8000_0000_0020_00e5),
            "present, read-only, user, accessed, dirty, large page (PS), no-execute; large page at 0x200000"
        );
        assert_eq!(
            decode_entry(1, 0x5163),
            "present, writable, supervisor, accessed, dirty, global; 4 KiB page at 0x5000"
        );
        assert_eq!(
            decode_entry(3, 0x4000_0087),
            "present, writable, user, large page (PS); 1 GiB page at 0x40000000"
        );
    }
}

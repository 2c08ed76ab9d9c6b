//! What an [`Mmu`](super::Mmu) caches and how it fills the caches: the
//! reaction to memslot changes, spte installation, and turning a translated
//! leaf into RAM (front-TLB fill, dirty logging) or MMIO (MMIO spte).

use std::sync::Arc;

use super::shadow::{pages_of, Shadow, SpaceKey};
use super::tlb::{all_classes, FrontTlb, WRITE_BITS};
use super::Translation;
use crate::addr::{Gpa, Gva, PAGE_MASK, PAGE_SHIFT};
use crate::ctx::{Access, AccessKind, PagingCtx, PagingMode};
use crate::events::{MmuEvent, MmuSink, MmuStats, TlbFlushReason, ZapReason};
use crate::mem::publish::may_cache_mmio;
use crate::mem::ram::HostPage;
use crate::mem::slots::Memslots;
use crate::mem::GuestMemory;
use crate::spte::{self, PageSize};
use crate::srcu::SrcuReader;
use crate::walker::{check_access, Pdptes, Rights};

/// Everything of an [`Mmu`] except its SRCU reader and memory handle, so
/// that a borrow of the published memslots (which borrows the reader) can
/// coexist with updates to the caches.
pub(super) struct State {
    pub(super) tlb: FrontTlb,
    pub(super) shadow: Shadow,
    pub(super) stats: MmuStats,
    pub(super) sink: Option<Arc<dyn MmuSink>>,
    pub(super) seen_generation: u64,
    pub(super) seen_zap_epoch: u64,
    pub(super) seen_dirty_epoch: u64,
    pub(super) phys_bits: u8,
    /// Front-TLB permission bits for each combination of walk rights
    /// (index: user | write << 1 | nx << 2) under the TLB's context.
    pub(super) perm_table: [u16; 8],
    /// PAE's PDPTE registers, as last loaded (see `pdpte.rs`).
    pub(super) pdptes: Option<Pdptes>,
    /// Ways for this crate's tests to stop or break the reader.
    #[cfg(test)]
    pub(super) hooks: super::test_hooks::ReaderHooks,
}

/// What a translation needs to read the generation again after its memslot
/// lookup: the memory and the vCPU's reader, inside its section.
pub(super) type Tag<'a> = (&'a GuestMemory, &'a SrcuReader);

/// The translated leaf, from a walk or a present spte.
pub(super) struct Leaf {
    pub(super) gpa: Gpa,
    pub(super) rights: Rights,
    pub(super) dirty: bool,
    pub(super) size: PageSize,
    pub(super) global: bool,
}

/// An MMIO spte of the current generation answers `access` if its stored
/// rights allow it (fetches and not-yet-dirty writes always walk).
pub(super) fn mmio_hit(s: u64, ctx: &PagingCtx, gva: Gva, access: Access) -> Option<Gpa> {
    let acc = spte::get_mmio_spte_access(s);
    let rights = Rights {
        user: acc & spte::ACC_USER_MASK != 0,
        write: acc & spte::ACC_WRITE_MASK != 0,
        nx: false,
    };
    let ok = match access.kind {
        AccessKind::Fetch => false,
        AccessKind::Write => rights.write,
        AccessKind::Read => true,
    };
    (ok && check_access(rights, ctx, access).is_ok())
        .then(|| Gpa::new((spte::get_mmio_spte_gfn(s) << PAGE_SHIFT) | gva.page_offset()))
}

/// The permission bits of every (access kind, privilege class) for each
/// combination of walk rights, under `ctx` (EFLAGS.AC aside: it selects the
/// class at lookup time).
pub(super) fn perm_table(ctx: &PagingCtx) -> [u16; 8] {
    let mut t = [0u16; 8];
    for (i, perms) in t.iter_mut().enumerate() {
        let rights = Rights {
            user: i & 1 != 0,
            write: i & 2 != 0,
            nx: i & 4 != 0,
        };
        for (bit, a, ac) in all_classes() {
            if check_access(rights, &PagingCtx { ac, ..*ctx }, a).is_ok() {
                *perms |= bit;
            }
        }
    }
    t
}

impl State {
    /// Adopts a new paging context: empties the front TLB, recomputes the
    /// permission table.
    pub(super) fn switch_ctx(&mut self, ctx: &PagingCtx) {
        self.tlb.switch(ctx);
        self.perm_table = perm_table(ctx);
        self.count_flush(TlbFlushReason::ContextSwitch);
    }

    pub(super) fn emit(&self, ev: MmuEvent) {
        if let Some(s) = &self.sink {
            s.event(&ev);
        }
    }

    pub(super) fn count_flush(&mut self, reason: TlbFlushReason) {
        self.stats.flushes += 1;
        self.emit(MmuEvent::TlbFlush { reason });
    }

    /// Reacts to memslot changes seen through `generation` (read first),
    /// then the zap and dirty-log epochs (read after it, so a zap requested
    /// before a publication is seen by anyone who sees the publication).
    pub(super) fn observe(&mut self, mem: &GuestMemory, generation: u64) {
        let zap = mem.zap_epoch();
        if zap != self.seen_zap_epoch {
            self.seen_zap_epoch = zap;
            self.shadow.clear();
            self.tlb.flush();
            self.stats.zaps += 1;
            self.emit(MmuEvent::Zap {
                reason: ZapReason::GenerationWrap,
            });
        }
        if generation != self.seen_generation {
            let old = std::mem::replace(&mut self.seen_generation, generation);
            self.tlb.flush();
            self.stats.generation_changes += 1;
            self.count_flush(TlbFlushReason::MemslotGeneration {
                old,
                new: generation,
            });
        }
        let dirty = mem.dirty_epoch();
        if dirty != self.seen_dirty_epoch {
            self.seen_dirty_epoch = dirty;
            self.tlb.flush();
            self.count_flush(TlbFlushReason::DirtyLogReset);
        }
    }

    pub(super) fn install(
        &mut self,
        key: SpaceKey,
        gva: Gva,
        s: u64,
        global: bool,
        extent: Option<(u64, u64)>,
    ) {
        if self
            .shadow
            .insert(key, gva.raw() >> PAGE_SHIFT, s, global, extent)
        {
            self.tlb.flush();
            self.stats.zaps += 1;
            self.emit(MmuEvent::Zap {
                reason: ZapReason::CacheFull,
            });
        }
        self.stats.spte_installs += 1;
        self.emit(MmuEvent::SpteInstall {
            gva: gva.align_down(),
            spte: s,
        });
    }

    /// Turns a translated leaf into RAM or MMIO using `slots`, caching what
    /// it learns (`tag` reads the generation for an MMIO spte afterwards).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resolve(
        &mut self,
        slots: &Memslots,
        tag: Tag<'_>,
        section: u64,
        ctx: &PagingCtx,
        gva: Gva,
        access: Access,
        leaf: Leaf,
        key: SpaceKey,
        walked: bool,
    ) -> Translation {
        let gfn = leaf.gpa.raw() >> PAGE_SHIFT;
        let found = slots
            .find(leaf.gpa.gfn())
            .and_then(|slot| Some((slot, slot.page(gfn)?)));
        let Some((slot, page)) = found else {
            self.cache_mmio(tag, key, gva, gfn, &leaf);
            return Translation::Mmio { gpa: leaf.gpa };
        };
        if walked {
            let s = spte::make_present_spte(
                gfn,
                leaf.rights.write,
                leaf.dirty,
                leaf.rights.user,
                leaf.rights.nx,
                leaf.global,
                leaf.size,
            );
            let pages = pages_of(leaf.size, ctx.mode() == PagingMode::Bits32);
            let vpn = gva.raw() >> PAGE_SHIFT;
            self.install(key, gva, s, leaf.global, Some((vpn & !(pages - 1), pages)));
        }
        let write = access.kind == AccessKind::Write;
        if write && slot.readonly() {
            return Translation::Mmio { gpa: leaf.gpa };
        }
        if write {
            slot.mark_dirty(gfn);
        }
        // Write permission in the front TLB only if the guest page is
        // already dirty, the slot is writable, and (when logging) this fill
        // marked the page.
        let writable = leaf.dirty && !slot.readonly() && (slot.dirty.is_none() || write);
        let r = leaf.rights;
        let mut perms = self.perm_table
            [usize::from(r.user) | usize::from(r.write) << 1 | usize::from(r.nx) << 2];
        if !writable {
            perms &= !WRITE_BITS;
        }
        let host: HostPage = page.host_page();
        self.tlb.fill(gva, leaf.gpa.raw() & !PAGE_MASK, host, perms);
        Translation::Ram {
            gpa: leaf.gpa,
            hva: host.hva(leaf.gpa.page_offset(), section),
        }
    }

    /// The seed's reader order: the lookup in this translation's copy found
    /// no slot for `gfn`; only now is the generation read, from the copy
    /// published *now*, to tag the MMIO spte. Inside the read section that
    /// value is the lookup copy's, or the odd one of an update that started
    /// since (the update cannot finish while the section is open). While it
    /// is odd nothing is cached and the access is answered as MMIO this
    /// once (later KVM: "do not cache MMIO accesses while memslots are in
    /// flux"): bit 0 is not stored, so the spte would carry the generation
    /// before the update, which comes back 2^19 updates later.
    fn cache_mmio(&mut self, tag: Tag<'_>, key: SpaceKey, gva: Gva, gfn: u64, leaf: &Leaf) {
        #[cfg(test)]
        self.hooks.at(super::test_hooks::Pause::BeforeTag);
        let (mem, reader) = tag;
        let Some(generation) = mem.current_generation(reader) else {
            return;
        };
        if !may_cache_mmio(generation) && !self.caches_while_odd() {
            self.stats.mmio_uncached += 1;
            self.emit(MmuEvent::MmioNotCached { gva, generation });
            return;
        }
        #[cfg(test)]
        self.hooks.at(super::test_hooks::Pause::BeforeInstall);
        let mut acc = 0;
        if leaf.rights.write && leaf.dirty {
            acc |= spte::ACC_WRITE_MASK;
        }
        if leaf.rights.user {
            acc |= spte::ACC_USER_MASK;
        }
        let s = spte::make_mmio_spte(gfn, acc, generation);
        self.install(key, gva, s, false, None);
    }

    /// Whether the reader is the broken one that caches while odd (tests).
    #[cfg(test)]
    fn caches_while_odd(&self) -> bool {
        self.hooks.cache_while_odd
    }

    #[cfg(not(test))]
    fn caches_while_odd(&self) -> bool {
        false
    }

    /// SDM Vol. 3A 4.10.4.1: a page fault invalidates the TLB entries of the
    /// faulting linear address for the current PCID (and the paging-
    /// structure caches used for it), so that a cached translation the
    /// walk just contradicted is not used again: the next access walks.
    /// Global entries for the page go too (the guest may be fixing those).
    pub(super) fn forget_faulting_page(&mut self, ctx: &PagingCtx, gva: Gva) {
        let vpn = gva.raw() >> PAGE_SHIFT;
        if self.shadow.drop_page(vpn, Some(ctx.pcid()), true) {
            self.tlb.flush();
        } else {
            self.tlb.flush_page(gva);
        }
    }

    /// PAE: the PDPTE registers for `ctx`. The CPU loads them at the events
    /// of SDM 4.4.1 ([`super::Mmu::load_pdptes`]); if it never did for this
    /// CR3 (an embedder that switches contexts without telling the MMU),
    /// they are loaded now, once, as that event would have. `None` outside
    /// PAE paging or if the PDPT is not RAM (the walk then faults).
    pub(super) fn pdptes_for(&mut self, slots: &Memslots, ctx: &PagingCtx) -> Option<Pdptes> {
        if ctx.mode() != PagingMode::Pae {
            return None;
        }
        let pdpt = Pdptes::pdpt_of(ctx.cr3);
        if self.pdptes.is_none_or(|p| p.pdpt != pdpt) {
            self.pdptes = Pdptes::read(slots, ctx.cr3);
        }
        self.pdptes
    }
}

//! What an [`Mmu`](super::Mmu) caches and how it fills the caches: the
//! reaction to memslot changes, spte installation, and turning a translated
//! leaf into RAM (front-TLB fill, dirty logging) or MMIO (MMIO spte).

use std::sync::atomic::Ordering::Acquire;
use std::sync::Arc;

use super::shadow::{pages_of, Shadow, SpaceKey};
use super::tlb::{all_classes, FrontTlb, WRITE_BITS};
use super::Translation;
use crate::addr::{Gpa, Gva, PAGE_MASK, PAGE_SHIFT};
use crate::ctx::{Access, AccessKind, PagingCtx, PagingMode};
use crate::events::{MmuEvent, MmuSink, MmuStats, TlbFlushReason, ZapReason};
use crate::mem::ram::HostPage;
use crate::mem::slots::Memslots;
use crate::mem::GuestMemory;
use crate::spte::{self, PageSize};
use crate::srcu::SrcuReader;
use crate::walker::{check_access, Rights};

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
    /// Test only: tag MMIO sptes with a generation read after the lookup.
    pub(super) late_generation: bool,
}

/// The generation read before the lookup, and what is needed to read it
/// again afterwards (test-only pre-fix order).
pub(super) struct Tag<'a> {
    pub(super) generation: u64,
    pub(super) mem: &'a GuestMemory,
    pub(super) reader: &'a SrcuReader,
}

impl Tag<'_> {
    fn for_mmio_spte(&self, late: bool) -> u64 {
        if !late {
            return self.generation;
        }
        std::thread::yield_now();
        self.mem
            .slots(self.reader)
            .map_or(self.generation, |s| s.generation.load(Acquire))
    }
}

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

    /// Turns a translated leaf into RAM or MMIO using `slots` (whose
    /// generation, in `tag`, was read before this lookup), caching what it
    /// learns.
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
            let mut acc = 0;
            if leaf.rights.write && leaf.dirty {
                acc |= spte::ACC_WRITE_MASK;
            }
            if leaf.rights.user {
                acc |= spte::ACC_USER_MASK;
            }
            let generation = tag.for_mmio_spte(self.late_generation);
            self.install(
                key,
                gva,
                spte::make_mmio_spte(gfn, acc, generation),
                false,
                None,
            );
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
}

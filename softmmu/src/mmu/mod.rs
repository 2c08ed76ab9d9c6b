//! The per-vCPU MMU: SRCU section, front TLB, shadow page tables, and the
//! guest-RAM accessors the CPU uses with the `Hva`s it gets.

mod access;
mod hot;
mod pdpte;
mod section;
mod shadow;
mod state;
#[cfg(test)]
pub(crate) mod test_hooks;
mod tlb;

use std::cell::Cell;
use std::sync::atomic::Ordering::Acquire;
use std::sync::Arc;

use crate::addr::{Gpa, Gva, PAGE_SHIFT};
pub use crate::ctx::{Access, AccessKind, PageFault, PagingCtx};
use crate::events::{MmuEvent, MmuSink, MmuStats, TlbFlushReason};
use crate::mem::{GuestMemory, Hva};
use crate::spte;
use crate::srcu::SrcuReader;
use crate::walker::{self, check_access, Rights, DEFAULT_PHYS_ADDR_BITS};
pub use pdpte::PdpteError;
use section::SectionIds;
use shadow::{Shadow, SpaceKey};
use state::{mmio_hit, perm_table, Leaf, State};
use tlb::{access_bit, FrontTlb};

/// The result of a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Translation {
    /// Guest RAM: `hva` points at the exact byte of the gva and is valid to
    /// the end of that 4 KiB page while the read section is held.
    Ram {
        /// The guest physical address.
        gpa: Gpa,
        /// Where that byte is on the host.
        hva: Hva,
    },
    /// Not RAM for this access: a gpa in no slot, or a write to a
    /// `READONLY` slot. The CPU turns it into an MMIO exit.
    Mmio {
        /// The guest physical address.
        gpa: Gpa,
    },
}

/// TLB invalidations the CPU asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Everything, global entries included (CR4.PGE/PCIDE changes, INVPCID
    /// all-contexts-including-globals).
    All,
    /// CR3 write without PCID preserve / MOV CR3: non-global entries of this PCID
    NonGlobal {
        /// The PCID (0 without CR4.PCIDE).
        pcid: u16,
    },
    /// INVLPG: the page (the whole large page if it is one), in every PCID,
    /// global entries included.
    Page(Gva),
    /// INVPCID single-address / single-context
    PcidPage {
        /// The PCID.
        pcid: u16,
        /// The address.
        gva: Gva,
    },
    /// INVPCID single-context: non-global entries of one PCID.
    Pcid {
        /// The PCID.
        pcid: u16,
    },
    /// INVPCID all-contexts except globals.
    AllNonGlobal,
}

/// One vCPU's MMU.
pub struct Mmu {
    mem: Arc<GuestMemory>,
    reader: SrcuReader,
    /// Id of the open read section, 0 outside (see `section.rs`).
    section: u64,
    section_ids: SectionIds,
    st: State,
    /// Accesses refused because their Hva was stale or out of its page.
    refused: Cell<u64>,
    /// Front-TLB permission bits of the CPU's hot-path reads and writes
    /// (see [`Mmu::hot_prepare`]); 0 outside a read section, so the hot
    /// path never hits then.
    hot_read: u16,
    hot_write: u16,
    hot_fetch: u16,
}

impl Mmu {
    /// A vCPU's MMU over `mem`; registers its SRCU reader shard.
    pub fn new(mem: Arc<GuestMemory>) -> Mmu {
        let reader = mem.srcu().register();
        let st = State {
            tlb: FrontTlb::new(),
            shadow: Shadow::default(),
            stats: MmuStats::default(),
            sink: None,
            seen_generation: mem.generation(),
            seen_zap_epoch: mem.zap_epoch(),
            seen_dirty_epoch: mem.dirty_epoch(),
            phys_bits: DEFAULT_PHYS_ADDR_BITS,
            perm_table: perm_table(&PagingCtx::default()),
            pdptes: None,
            #[cfg(test)]
            hooks: test_hooks::ReaderHooks::default(),
        };
        Mmu {
            mem,
            reader,
            section: 0,
            section_ids: SectionIds::new(),
            st,
            refused: Cell::new(0),
            hot_read: 0,
            hot_write: 0,
            hot_fetch: 0,
        }
    }

    /// The guest memory this MMU translates into.
    pub fn memory(&self) -> &Arc<GuestMemory> {
        &self.mem
    }

    /// Enters the SRCU read section (the vCPU starts executing). A no-op if
    /// already inside. Flushes the front TLB if the memslots changed.
    pub fn enter(&mut self) {
        if self.section != 0 {
            return;
        }
        self.reader.enter();
        self.section = self.section_ids.next();
        if let Some(slots) = self.mem.slots(&self.reader) {
            let gen = slots.generation.load(Acquire);
            self.st.observe(&self.mem, gen);
        }
    }

    /// Leaves the read section (exit to the VMM, halt, or periodically so
    /// memslot writers make progress). Every `Hva` obtained before is dead.
    pub fn leave(&mut self) {
        self.reader.leave();
        self.section = 0;
        self.hot_read = 0;
        self.hot_write = 0;
        self.hot_fetch = 0;
        self.st.tlb.forget_stack();
    }

    /// Whether the read section is open.
    pub fn in_section(&self) -> bool {
        self.section != 0
    }

    /// MAXPHYADDR used for reserved-bit checks (default
    /// [`DEFAULT_PHYS_ADDR_BITS`]); flushes everything.
    pub fn set_phys_addr_bits(&mut self, bits: u8) {
        self.st.phys_bits = bits.clamp(32, 52);
        self.flush(Flush::All);
    }

    /// Translates `gva` for `access` under `ctx`. Enters the read section if
    /// not inside.
    ///
    /// The front-TLB hit path is small enough to inline into the CPU's
    /// memory access code; everything else is out of line.
    #[inline]
    pub fn translate(
        &mut self,
        ctx: &PagingCtx,
        gva: Gva,
        access: Access,
    ) -> Result<Translation, PageFault> {
        if self.section != 0 && self.st.tlb.ctx_matches(ctx) {
            if let Some((gpa, host)) = self.st.tlb.lookup(gva, access_bit(access, ctx.ac)) {
                self.st.stats.tlb_hits += 1;
                return Ok(Translation::Ram {
                    gpa: Gpa::new(gpa),
                    hva: host.hva(gva.page_offset(), self.section),
                });
            }
        }
        self.translate_miss(ctx, gva, access)
    }

    #[inline(never)]
    fn translate_miss(
        &mut self,
        ctx: &PagingCtx,
        gva: Gva,
        access: Access,
    ) -> Result<Translation, PageFault> {
        if self.section == 0 {
            self.enter();
        }
        if !self.st.tlb.ctx_matches(ctx) {
            self.st.switch_ctx(ctx);
        } else if let Some((gpa, host)) = self.st.tlb.lookup(gva, access_bit(access, ctx.ac)) {
            // Only the section was missing.
            self.st.stats.tlb_hits += 1;
            return Ok(Translation::Ram {
                gpa: Gpa::new(gpa),
                hva: host.hva(gva.page_offset(), self.section),
            });
        }
        self.st.stats.tlb_misses += 1;
        self.translate_slow(ctx, gva, access)
    }

    fn translate_slow(
        &mut self,
        ctx: &PagingCtx,
        gva: Gva,
        access: Access,
    ) -> Result<Translation, PageFault> {
        let Some(slots) = self.mem.slots(&self.reader) else {
            // Unreachable: translate entered the section. Answer safely.
            return Ok(Translation::Mmio {
                gpa: Gpa::new(gva.raw()),
            });
        };
        // The generation of the copy this translation uses: cached MMIO
        // sptes must carry it to answer. Observing it (and then the zap and
        // dirty-log epochs) before any cache is used makes the vCPU drop
        // what an update invalidated. An MMIO spte made below is tagged
        // with a generation read *after* the lookup (`State::cache_mmio`).
        let generation = slots.generation.load(Acquire);
        self.st.observe(&self.mem, generation);
        let st = &mut self.st;
        let pdptes = st.pdptes_for(slots, ctx);
        let key = SpaceKey::of(ctx);
        let vpn = gva.raw() >> PAGE_SHIFT;

        if let Some(s) = st.shadow.get(key, vpn) {
            if spte::is_mmio_spte(s) {
                let spte_gen = spte::get_mmio_spte_generation(s);
                let current_gen = spte::mmio_generation(generation);
                if spte_gen != current_gen {
                    st.stats.mmio_gen_misses += 1;
                    st.emit(MmuEvent::MmioGenerationMiss {
                        gva,
                        spte_gen,
                        current_gen,
                    });
                    st.shadow.remove(key, vpn);
                } else if let Some(gpa) = mmio_hit(s, ctx, gva, access) {
                    st.stats.mmio_hits += 1;
                    st.emit(MmuEvent::MmioSpteHit {
                        gva,
                        gpa,
                        generation: current_gen,
                    });
                    return Ok(Translation::Mmio { gpa });
                }
            } else if spte::is_present_spte(s) {
                let rights = Rights {
                    user: s & spte::SPTE_USER != 0,
                    write: s & spte::SPTE_WRITABLE != 0,
                    nx: s & spte::SPTE_NX != 0,
                };
                let dirty = s & spte::SPTE_DIRTY != 0;
                if check_access(rights, ctx, access).is_ok()
                    && (access.kind != AccessKind::Write || dirty)
                {
                    st.stats.spte_hits += 1;
                    let gpa =
                        Gpa::new((spte::present_spte_gfn(s) << PAGE_SHIFT) | gva.page_offset());
                    let leaf = Leaf {
                        gpa,
                        rights,
                        dirty,
                        size: spte::present_spte_size(s),
                        global: false,
                    };
                    return Ok(st.resolve(
                        slots,
                        (&*self.mem, &self.reader),
                        self.section,
                        ctx,
                        gva,
                        access,
                        leaf,
                        key,
                        false,
                    ));
                }
            }
        }

        st.stats.walks += 1;
        let walked =
            walker::walk_with_pdptes(slots, ctx, gva, access, st.phys_bits, pdptes.as_ref());
        let record = match &walked {
            Ok(w) => w.record,
            Err(f) => f.record,
        };
        if st.sink.is_some() {
            for s in record.steps() {
                st.emit(MmuEvent::WalkStep {
                    level: s.level,
                    entry_gpa: s.entry_gpa,
                    entry: s.entry,
                });
                if let Some(new) = s.written {
                    st.emit(MmuEvent::AccessedDirty {
                        level: s.level,
                        entry_gpa: s.entry_gpa,
                        old: s.entry,
                        new,
                    });
                }
            }
        }
        st.stats.ad_updates += record
            .steps()
            .iter()
            .filter(|s| s.written.is_some())
            .count() as u64;
        match walked {
            Err(f) => {
                st.stats.faults += 1;
                st.emit(MmuEvent::Fault {
                    addr: f.fault.addr,
                    error_code: f.fault.error_code,
                    reason: f.reason,
                });
                st.forget_faulting_page(ctx, gva);
                Err(f.fault)
            }
            Ok(w) => {
                let leaf = Leaf {
                    gpa: w.gpa,
                    rights: w.rights,
                    dirty: w.dirty,
                    size: w.size,
                    global: w.global,
                };
                let tag = (&*self.mem, &self.reader);
                Ok(st.resolve(slots, tag, self.section, ctx, gva, access, leaf, key, true))
            }
        }
    }

    /// Invalidates translations as the guest asked.
    pub fn flush(&mut self, what: Flush) {
        let sh = &mut self.st.shadow;
        let large = match what {
            Flush::All => {
                sh.clear();
                true
            }
            Flush::NonGlobal { pcid } | Flush::Pcid { pcid } => {
                sh.drop_nonglobal(Some(pcid));
                true
            }
            Flush::AllNonGlobal => {
                sh.drop_nonglobal(None);
                true
            }
            Flush::Page(gva) => sh.drop_page(gva.raw() >> PAGE_SHIFT, None, true),
            Flush::PcidPage { pcid, gva } => {
                sh.drop_page(gva.raw() >> PAGE_SHIFT, Some(pcid), false)
            }
        };
        match what {
            Flush::Page(gva) | Flush::PcidPage { gva, .. } if !large => self.st.tlb.flush_page(gva),
            _ => self.st.tlb.flush(),
        }
        self.st.count_flush(TlbFlushReason::Guest(what));
    }

    /// Where events go (none by default).
    pub fn set_sink(&mut self, sink: Option<Arc<dyn MmuSink>>) {
        self.st.sink = sink;
    }

    /// The counters.
    pub fn stats(&self) -> &MmuStats {
        &self.st.stats
    }

    /// Accesses refused because their `Hva` came from an earlier section or
    /// was moved out of its page: always a bug in the caller.
    pub fn refused_accesses(&self) -> u64 {
        self.refused.get()
    }

    /// Number of sptes cached.
    pub fn shadow_len(&self) -> usize {
        self.st.shadow.len()
    }

    pub(super) fn refuse<T>(&self, v: T) -> T {
        self.refused.set(self.refused.get() + 1);
        v
    }
}

impl Drop for Mmu {
    fn drop(&mut self) {
        self.leave();
    }
}

//! Shadow page tables: per address space, guest-virtual page -> spte.
//!
//! An address space is identified by what the guest's translations depend
//! on: the paging-structure format bits (CR0.PG, CR4.PAE/PSE/LA57/PGE,
//! EFER.LMA/NXE), the root (CR3 without PCID bits) and the PCID. Global
//! translations live in one extra space per format, shared by every root.
//!
//! The tables are flat ordered maps rather than a tree of 4 KiB shadow pages:
//! a shadow *page table* in KVM exists because hardware walks it; here only
//! the MMU looks things up, by page number. Large guest pages are shadowed 4
//! KiB at a time, and the extent of each large page is remembered so that an
//! INVLPG of any address inside it drops all of its pieces.
//!
//! Not-present guest entries are never cached (x86 does not cache them
//! either); MMIO sptes are a cache of memslot lookups, tagged with a
//! generation and checked on use.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::ctx::{PagingCtx, CR0_PG, CR4_LA57, CR4_PAE, CR4_PGE, CR4_PSE, EFER_LMA, EFER_NXE};
use crate::spte::PageSize;

/// Above this many sptes the whole cache is zapped (KVM bounds shadow pages
/// the same way, though it evicts more selectively).
pub(crate) const MAX_SPTES: usize = 1 << 17;

/// Which address space a translation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SpaceKey {
    format: u64,
    root: u64,
    /// `u32::MAX` marks the global space of a format.
    pcid: u32,
}

const GLOBAL_PCID: u32 = u32::MAX;

impl SpaceKey {
    pub(crate) fn of(ctx: &PagingCtx) -> SpaceKey {
        let format = (ctx.cr0 & CR0_PG)
            | (ctx.cr4 & (CR4_PAE | CR4_PSE | CR4_LA57 | CR4_PGE))
            | ((ctx.efer & (EFER_LMA | EFER_NXE)) << 32);
        let pcid = ctx.pcid();
        let root = ctx.cr3 & !0xfff & !(1 << 63);
        SpaceKey {
            format,
            root,
            pcid: u32::from(pcid),
        }
    }

    fn global(self) -> SpaceKey {
        SpaceKey {
            format: self.format,
            root: 0,
            pcid: GLOBAL_PCID,
        }
    }

    fn is_global(self) -> bool {
        self.pcid == GLOBAL_PCID
    }
}

#[derive(Default)]
struct Space {
    sptes: BTreeMap<u64, u64>,
    /// First page number of each large guest page shadowed -> its length.
    large: BTreeMap<u64, u64>,
}

impl Space {
    /// Drops `vpn`, and every piece of a large page containing it. Returns
    /// (entries dropped, whether a large page was involved).
    fn drop_page(&mut self, vpn: u64) -> (usize, bool) {
        let mut n = usize::from(self.sptes.remove(&vpn).is_some());
        let lo = vpn.saturating_sub(pages_of(PageSize::Huge, false) - 1);
        let hits: Vec<(u64, u64)> = self
            .large
            .range(lo..=vpn)
            .filter(|(b, len)| *b + *len > vpn)
            .map(|(b, l)| (*b, *l))
            .collect();
        for &(base, len) in &hits {
            self.large.remove(&base);
            let keys: Vec<u64> = self
                .sptes
                .range(base..base + len)
                .map(|(k, _)| *k)
                .collect();
            n += keys.len();
            for k in keys {
                self.sptes.remove(&k);
            }
        }
        (n, !hits.is_empty())
    }
}

/// 4 KiB pages in a guest page of `size` (`Large` is 2 MiB, or 4 MiB in
/// 32-bit paging).
pub(crate) fn pages_of(size: PageSize, bits32: bool) -> u64 {
    match size {
        PageSize::Size4K => 1,
        PageSize::Large if bits32 => 1 << 10,
        PageSize::Large => 1 << 9,
        PageSize::Huge => 1 << 18,
    }
}

/// A multiply-rotate hasher for the few, trusted space keys: SipHash's
/// flooding resistance buys nothing here and costs on every miss.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

#[derive(Default)]
pub(crate) struct Shadow {
    spaces: HashMap<SpaceKey, Space, BuildHasherDefault<KeyHasher>>,
    total: usize,
}

impl Shadow {
    /// The spte for `vpn` in `key`'s space or its global space.
    pub(crate) fn get(&self, key: SpaceKey, vpn: u64) -> Option<u64> {
        let own = self.spaces.get(&key).and_then(|s| s.sptes.get(&vpn));
        own.or_else(|| {
            self.spaces
                .get(&key.global())
                .and_then(|s| s.sptes.get(&vpn))
        })
        .copied()
    }

    /// Installs `spte` for `vpn`; `global` sptes go to the shared space.
    /// `extent` is (first page, page count) of the large guest page the spte
    /// is a piece of. Returns true if the cache had to be zapped for room.
    pub(crate) fn insert(
        &mut self,
        key: SpaceKey,
        vpn: u64,
        spte: u64,
        global: bool,
        extent: Option<(u64, u64)>,
    ) -> bool {
        let zapped = self.total >= MAX_SPTES;
        if zapped {
            self.clear();
        }
        // Only one copy: the spte must not linger in the other space.
        self.remove(key, vpn);
        let k = if global { key.global() } else { key };
        let space = self.spaces.entry(k).or_default();
        if let Some((base, len)) = extent.filter(|e| e.1 > 1) {
            space.large.insert(base, len);
        }
        if space.sptes.insert(vpn, spte).is_none() {
            self.total += 1;
        }
        zapped
    }

    /// Removes `vpn` from `key`'s space and its global space.
    pub(crate) fn remove(&mut self, key: SpaceKey, vpn: u64) {
        for k in [key, key.global()] {
            if let Some(s) = self.spaces.get_mut(&k) {
                if s.sptes.remove(&vpn).is_some() {
                    self.total -= 1;
                }
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.spaces.clear();
        self.total = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.total
    }

    /// Drops every non-global space of `pcid` (`None`: of every PCID).
    pub(crate) fn drop_nonglobal(&mut self, pcid: Option<u16>) {
        self.spaces
            .retain(|k, _| k.is_global() || pcid.is_some_and(|p| k.pcid != u32::from(p)));
        self.recount();
    }

    /// INVLPG-style: drops `vpn` (and the large page around it) from the
    /// spaces of `pcid` (`None`: all), and from global spaces if `global`.
    /// Returns whether a large page was involved.
    pub(crate) fn drop_page(&mut self, vpn: u64, pcid: Option<u16>, global: bool) -> bool {
        let mut large = false;
        for (k, s) in self.spaces.iter_mut() {
            let wanted = if k.is_global() {
                global
            } else {
                pcid.is_none_or(|p| k.pcid == u32::from(p))
            };
            if wanted {
                let (n, l) = s.drop_page(vpn);
                self.total -= n;
                large |= l;
            }
        }
        large
    }

    fn recount(&mut self) {
        self.total = self.spaces.values().map(|s| s.sptes.len()).sum();
    }
}

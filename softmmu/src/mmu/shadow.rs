//! Shadow page tables: per address space, guest-virtual page -> spte.
//!
//! An address space is identified by what the guest's translations depend
//! on: the paging-structure format bits (CR0.PG, CR4.PAE/PSE/LA57/PGE,
//! EFER.LMA/NXE), the root (the table CR3 selects: bits 31:5 under PAE,
//! the page-aligned address otherwise) and the PCID. Global
//! translations live in one extra space per format, shared by every root.
//!
//! The tables are flat hash maps rather than a tree of 4 KiB shadow pages:
//! a shadow *page table* in KVM exists because hardware walks it; here only
//! the MMU looks things up, by page number (a hash map because a guest that
//! touches pages at random misses the front TLB on nearly every access, and
//! an ordered map's search was then a tenth of its time). Large guest pages
//! are shadowed 4 KiB at a time, and the extent of each large page is
//! remembered, in order, so that an INVLPG of any address inside it drops
//! all of its pieces.
//!
//! Not-present guest entries are never cached (x86 does not cache them
//! either); MMIO sptes are a cache of memslot lookups, tagged with a
//! generation and checked on use.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::ctx::{
    PagingCtx, PagingMode, CR0_PG, CR4_LA57, CR4_PAE, CR4_PGE, CR4_PSE, EFER_LMA, EFER_NXE,
};
use crate::spte::PageSize;
use crate::walker::Pdptes;

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
        // The root as the walk uses it: PAE's PDPT is 32-byte aligned, so
        // CR3 bits 11:5 select it too; elsewhere bits 11:0 are flags or
        // the PCID (kept apart).
        let root = if ctx.mode() == PagingMode::Pae {
            Pdptes::pdpt_of(ctx.cr3)
        } else {
            ctx.cr3 & !0xfff & !(1 << 63)
        };
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

/// Keys hashed by [`KeyHasher`].
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct Space {
    sptes: FastMap<u64, u64>,
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
            // Whichever is shorter: the pages of the large page, or the map.
            if len <= self.sptes.len() as u64 {
                n += (base..base + len)
                    .filter(|k| self.sptes.remove(k).is_some())
                    .count();
            } else {
                let before = self.sptes.len();
                self.sptes.retain(|k, _| !(base..base + len).contains(k));
                n += before - self.sptes.len();
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

/// A multiply-rotate hasher for space keys and page numbers: SipHash's
/// flooding resistance buys nothing here (the guest chooses page numbers,
/// but the map is bounded by `MAX_SPTES`) and costs on every miss.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // Mix the high bits back down: the low bits of a product depend
        // only on the low bits of the key, and the table indexes by low
        // bits, so page numbers a power of two apart would otherwise all
        // collide. (The constant is MurmurHash3's finalizer's.)
        let h = (self.0 ^ (self.0 >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
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
    spaces: FastMap<SpaceKey, Space>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn page_numbers_a_power_of_two_apart_spread_over_the_low_bits() {
        let b = BuildHasherDefault::<KeyHasher>::default();
        for stride in [1u64 << 9, 1 << 18, 1 << 27, 1 << 36] {
            let low: HashSet<u64> = (0..1024u64)
                .map(|k| b.hash_one(k * stride) & 1023)
                .collect();
            // 1024 random keys would fill about 647 of 1024 buckets.
            assert!(low.len() > 500, "stride {stride:#x}: {} buckets", low.len());
        }
    }

    #[test]
    fn dropping_a_page_drops_every_piece_of_its_large_page() {
        let key = SpaceKey {
            format: 1,
            root: 0x1000,
            pcid: 0,
        };
        let mut sh = Shadow::default();
        // A 2 MiB page shadowed in three pieces, and a neighbour outside it.
        for vpn in [0x200, 0x201, 0x3ff] {
            sh.insert(key, vpn, vpn << 12 | 1, false, Some((0x200, 512)));
        }
        sh.insert(key, 0x400, 0x400 << 12 | 1, false, None);
        assert_eq!(sh.len(), 4);
        assert!(sh.drop_page(0x250, None, false));
        assert_eq!(sh.len(), 1);
        assert_eq!(sh.get(key, 0x201), None);
        assert_eq!(sh.get(key, 0x400), Some(0x400 << 12 | 1));
        // Fewer pieces than map entries, and the other way round.
        for vpn in 0..600u64 {
            sh.insert(key, 0x1000 + vpn, 1, false, None);
        }
        sh.insert(key, 0x200, 3, false, Some((0x200, 512)));
        assert!(sh.drop_page(0x3ff, None, false));
        assert_eq!(sh.get(key, 0x200), None);
        assert_eq!(sh.len(), 601);
    }
}

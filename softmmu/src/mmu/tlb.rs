//! The front TLB: a small two-way set-associative cache of guest-virtual
//! page -> host page for the hot path.
//!
//! A hit is a compare of the tag, a test of one permission bit and an add
//! (a second compare when the page is in the other way). Two ways and a
//! set index that mixes in the next byte of the page number keep copies between
//! buffers a power-of-two apart (memcpy from 16 MiB to 32 MiB, say) from
//! evicting each other on every access, which a direct-mapped table does.
//! Permissions are packed Bochs-style: one bit per (access kind x privilege
//! class), computed once when the entry is filled, so CR0.WP, SMEP, SMAP and
//! NX cost nothing at hit time. The privilege classes are user, supervisor
//! with SMAP enforced (EFLAGS.AC=0 or implicit), and supervisor with AC=1;
//! EFLAGS.AC toggling (STAC/CLAC) therefore needs no flush.
//!
//! Entries are valid only for the paging context they were filled under; the
//! MMU flushes the whole TLB when CR0/CR3/CR4/EFER change, on any memslot
//! generation change, and when a dirty log is read.

use crate::addr::{Gva, PAGE_MASK, PAGE_SHIFT};
use crate::ctx::{Access, AccessKind, PagingCtx};
use crate::mem::ram::HostPage;

/// Number of sets (a power of two).
const TLB_SETS: usize = 256;
/// Entries per set.
const TLB_WAYS: usize = 2;
/// Number of entries.
pub(crate) const TLB_ENTRIES: usize = TLB_SETS * TLB_WAYS;

#[derive(Clone, Copy)]
struct Entry {
    /// Page address; 1 = empty (page addresses have bit 0 clear, so no
    /// lookup tag is ever 1).
    tag: u64,
    gpa_page: u64,
    /// [`HostPage::NONE`] in empty entries, which no lookup matches.
    host: HostPage,
    perms: u16,
}

const EMPTY: Entry = Entry {
    tag: 1,
    gpa_page: 0,
    host: HostPage::NONE,
    perms: 0,
};

/// The privilege class index of an access (0 user, 1 supervisor with SMAP
/// enforced, 2 supervisor with EFLAGS.AC=1).
const fn class(access: Access, ac: bool) -> u32 {
    if access.is_user() {
        0
    } else if access.implicit || !ac {
        1
    } else {
        2
    }
}

/// The permission bit an access needs.
pub(crate) const fn access_bit(access: Access, ac: bool) -> u16 {
    let kind = match access.kind {
        AccessKind::Read => 0,
        AccessKind::Write => 1,
        AccessKind::Fetch => 2,
    };
    1 << (kind + 3 * class(access, ac))
}

/// Every (kind, class) pair with the access and AC value representing it.
pub(crate) fn all_classes() -> impl Iterator<Item = (u16, Access, bool)> {
    let kinds = [AccessKind::Read, AccessKind::Write, AccessKind::Fetch];
    kinds.into_iter().flat_map(|k| {
        [
            (Access::user(k), false),
            (Access::supervisor(k), false),
            (Access::supervisor(k), true),
        ]
        .into_iter()
        .map(move |(a, ac)| (access_bit(a, ac), a, ac))
    })
}

/// Bits of every write class.
pub(crate) const WRITE_BITS: u16 = (1 << 1) | (1 << 4) | (1 << 7);

/// The page of the last stack access (see [`FrontTlb::stack`]).
#[derive(Clone, Copy)]
pub(crate) struct StackPage {
    /// Page address; [`PAGE_MASK`] = none (a lookup compares it with an
    /// address whose bits 3 to 11 are clear, see `Mmu::stack_page`).
    pub(crate) tag: u64,
    pub(crate) gpa_page: u64,
    pub(crate) host: HostPage,
}

const NO_STACK: StackPage = StackPage {
    tag: PAGE_MASK,
    gpa_page: 0,
    host: HostPage::NONE,
};

pub(crate) struct FrontTlb {
    /// Inline (not boxed), so that a lookup loads the entry straight
    /// from the MMU without first loading a pointer to the table.
    entries: [Entry; TLB_ENTRIES],
    /// The context the entries were filled under.
    ctx: (u64, u64, u64, u64),
    /// Whether any entry may be valid (skip clearing an empty TLB).
    dirty: bool,
    /// A copy of the entry that the CPU's 8-byte stack accesses (PUSH,
    /// POP, CALL, RET in 64-bit code) hit last, taken only when it allows
    /// both reads and writes at the hot path's privilege class. Those
    /// accesses nearly always hit one page, and checking it here is one
    /// compare (page and alignment together) instead of a set lookup
    /// and a permission test. Anything that changes an entry, the class
    /// or the read section drops it.
    pub(crate) stack: StackPage,
}

impl FrontTlb {
    pub(crate) fn new() -> Self {
        FrontTlb {
            entries: [EMPTY; TLB_ENTRIES],
            ctx: (0, 0, 0, 0),
            dirty: false,
            stack: NO_STACK,
        }
    }

    /// The first entry of `gva`'s set (its ways follow it).
    #[inline(always)]
    fn set(gva: u64) -> usize {
        let vpn = gva >> PAGE_SHIFT;
        (((vpn ^ (vpn >> 8)) as usize) & (TLB_SETS - 1)) * TLB_WAYS
    }

    /// The entry holding `gva`'s page, if any.
    #[inline(always)]
    fn find(&self, gva: u64) -> Option<&Entry> {
        const _: () = assert!(TLB_WAYS == 2);
        let tag = gva & !PAGE_MASK;
        let i = Self::set(gva);
        let first = &self.entries[i];
        if first.tag == tag {
            return Some(first);
        }
        let second = &self.entries[i + 1];
        (second.tag == tag).then_some(second)
    }

    /// Whether the entries belong to `ctx`.
    #[inline]
    pub(crate) fn ctx_matches(&self, ctx: &PagingCtx) -> bool {
        self.ctx == (ctx.cr0, ctx.cr3, ctx.cr4, ctx.efer)
    }

    /// Empties the TLB and adopts `ctx`.
    pub(crate) fn switch(&mut self, ctx: &PagingCtx) {
        self.flush();
        self.ctx = (ctx.cr0, ctx.cr3, ctx.cr4, ctx.efer);
    }

    /// The hot path: gpa and host page if `gva`'s page is cached with `bit`.
    #[inline]
    pub(crate) fn lookup(&self, gva: Gva, bit: u16) -> Option<(u64, HostPage)> {
        let (gpa_page, host) = self.lookup_page(gva, bit)?;
        Some((gpa_page | gva.page_offset(), host))
    }

    /// The hot path's lookup: gpa page and host page. A `bit` of 0 never
    /// hits.
    #[inline(always)]
    pub(crate) fn lookup_page(&self, gva: Gva, bit: u16) -> Option<(u64, HostPage)> {
        let e = self.find(gva.raw())?;
        if e.perms & bit != 0 {
            return Some((e.gpa_page, e.host));
        }
        None
    }

    /// Drop the stack page copy.
    #[inline]
    pub(crate) fn forget_stack(&mut self) {
        self.stack = NO_STACK;
    }

    /// Copy the entry of `gva`'s page as the stack page if it has both
    /// permission bits.
    #[inline]
    pub(crate) fn take_stack(&mut self, gva: Gva, read: u16, write: u16) {
        if let Some(e) = self.find(gva.raw()) {
            if e.perms & read != 0 && e.perms & write != 0 {
                self.stack = StackPage {
                    tag: e.tag,
                    gpa_page: e.gpa_page,
                    host: e.host,
                };
            }
        }
    }

    pub(crate) fn fill(&mut self, gva: Gva, gpa_page: u64, host: HostPage, perms: u16) {
        self.dirty = true;
        self.forget_stack();
        let tag = gva.raw() & !PAGE_MASK;
        let set = &mut self.entries[Self::set(gva.raw())..Self::set(gva.raw()) + TLB_WAYS];
        let new = Entry {
            tag,
            gpa_page: gpa_page & !PAGE_MASK,
            host,
            perms,
        };
        // Refill in place (more rights after a write fault, say); else the
        // newest page goes first and the older one moves to the second way.
        if let Some(e) = set.iter_mut().find(|e| e.tag == tag) {
            *e = new;
        } else {
            set.copy_within(0..TLB_WAYS - 1, 1);
            set[0] = new;
        }
    }

    pub(crate) fn flush(&mut self) {
        self.forget_stack();
        if self.dirty {
            self.entries.fill(EMPTY);
            self.dirty = false;
        }
    }

    pub(crate) fn flush_page(&mut self, gva: Gva) {
        self.forget_stack();
        let tag = gva.raw() & !PAGE_MASK;
        let set = &mut self.entries[Self::set(gva.raw())..Self::set(gva.raw()) + TLB_WAYS];
        for e in set.iter_mut().filter(|e| e.tag == tag) {
            *e = EMPTY;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes_are_distinct_bits() {
        let mut seen = 0u16;
        for (bit, a, ac) in all_classes() {
            assert_eq!(bit.count_ones(), 1);
            assert_eq!(seen & bit, 0);
            assert_eq!(access_bit(a, ac), bit);
            seen |= bit;
        }
        assert_eq!(seen, 0x1ff);
        let writes: u16 = all_classes()
            .filter(|c| c.1.kind == AccessKind::Write)
            .map(|c| c.0)
            .sum();
        assert_eq!(writes, WRITE_BITS);
        // Implicit accesses use the SMAP-enforced class whatever AC says.
        assert_eq!(
            access_bit(Access::implicit(AccessKind::Read), true),
            access_bit(Access::supervisor(AccessKind::Read), false)
        );
    }
}

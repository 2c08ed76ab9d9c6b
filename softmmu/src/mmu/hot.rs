//! The CPU's hot path: a load or store that hits the front TLB goes from a
//! linear address to guest RAM in one call, without building a
//! [`crate::Translation`] or an [`crate::Hva`].
//!
//! The usual path re-checks the paging context and the read section on
//! every access, and the CPU recomputes its privilege class each time.
//! Within a run of instructions none of these can change unless an
//! instruction ends the run (CR and MSR writes, far transfers, IRET,
//! POPF, STAC/CLAC), so the CPU states them once with
//! [`Mmu::hot_prepare`] and the MMU keeps the two permission bits its
//! accesses need. Leaving the read section clears them, so a hot access
//! outside a section always misses and takes the checked path.
//!
//! Hot-path hits are not counted in [`crate::MmuStats::tlb_hits`]: one
//! counter update per guest access would cost more than the rest of it.

use super::tlb::access_bit;
use super::Mmu;
use crate::addr::{Gva, PAGE_MASK};
use crate::ctx::{Access, AccessKind, PagingCtx};
use crate::mem::ram;

impl Mmu {
    /// Make the hot path valid for `ctx` and an explicit access at
    /// privilege `user`: enters the read section and adopts `ctx` (the
    /// front TLB is emptied if it was filled under another context).
    ///
    /// The caller must call this again before the next hot access whenever
    /// CR0, CR3, CR4, EFER, EFLAGS.AC or the CPL may have changed.
    pub fn hot_prepare(&mut self, ctx: &PagingCtx, user: bool) {
        self.enter();
        if !self.st.tlb.ctx_matches(ctx) {
            self.st.switch_ctx(ctx);
        }
        let acc = |kind| Access {
            kind,
            user,
            implicit: false,
        };
        self.hot_read = access_bit(acc(AccessKind::Read), ctx.ac);
        self.hot_write = access_bit(acc(AccessKind::Write), ctx.ac);
        self.hot_fetch = access_bit(acc(AccessKind::Fetch), ctx.ac);
        self.st.tlb.forget_stack();
    }

    /// Load the 8 bytes at `la` for a stack access of 64-bit code (POP,
    /// RET) under the conditions of [`Mmu::hot_load`].
    #[inline(always)]
    pub fn hot_stack_load(&mut self, la: u64) -> Option<u64> {
        if let Some(page) = self.stack_page(la) {
            return ram::page_load(page, la, 8);
        }
        self.stack_miss(la);
        self.hot_load(la, 8)
    }

    /// Store `val` at `la` for a stack access of 64-bit code (PUSH, CALL)
    /// under the conditions of [`Mmu::hot_store`]; returns the guest
    /// physical address written.
    #[inline(always)]
    pub fn hot_stack_store(&mut self, la: u64, val: u64) -> Option<u64> {
        let st = self.st.tlb.stack;
        if let Some(page) = self.stack_page(la) {
            ram::page_store(page, la, 8, val)?;
            return Some(st.gpa_page | (la & PAGE_MASK));
        }
        self.stack_miss(la);
        self.hot_store(la, 8, val)
    }

    /// The stack page's host page if `la` is an 8-byte aligned address in
    /// it: one compare covers page and alignment, since the tag has the
    /// low 12 bits clear.
    #[inline(always)]
    fn stack_page(&self, la: u64) -> Option<ram::HostPage> {
        let st = &self.st.tlb.stack;
        (la & !(PAGE_MASK & !7) == st.tag).then_some(st.host)
    }

    /// A stack access missed the stack page: adopt the front-TLB entry of
    /// `la` if it allows reads and writes (the access then goes the usual
    /// hot way either way). Unaligned stacks stay on the usual way.
    #[cold]
    fn stack_miss(&mut self, la: u64) {
        if la & 7 == 0 {
            self.st
                .tlb
                .take_stack(Gva::new(la), self.hot_read, self.hot_write);
        }
    }

    /// Load `size` (1, 2, 4, 8) bytes at linear address `la` if its page is
    /// in the front TLB with read permission and the access stays in the
    /// page; `None` means "take the checked path" (which also faults).
    #[inline(always)]
    pub fn hot_load(&mut self, la: u64, size: usize) -> Option<u64> {
        let (_, page) = self.st.tlb.lookup_page(Gva::new(la), self.hot_read)?;
        ram::page_load(page, la & PAGE_MASK, size)
    }

    /// Store the low `size` bytes of `val` at `la` under the same
    /// conditions as [`Mmu::hot_load`] (with write permission, so dirty
    /// logging was done when the entry was filled). Returns the guest
    /// physical address written, for the CPU's code-page check.
    #[inline(always)]
    pub fn hot_store(&mut self, la: u64, size: usize, val: u64) -> Option<u64> {
        let (gpa_page, page) = self.st.tlb.lookup_page(Gva::new(la), self.hot_write)?;
        ram::page_store(page, la & PAGE_MASK, size, val)?;
        Some(gpa_page | (la & PAGE_MASK))
    }

    /// A read-modify-write that is not LOCKed (a load, then a store if
    /// `f` returns a value) on a page the front TLB holds writable.
    /// Returns the old value and the guest physical address if something
    /// was stored; `None` (nothing done) means "take the checked path".
    #[inline]
    pub fn hot_rmw(
        &mut self,
        la: u64,
        size: usize,
        f: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Option<(u64, Option<u64>)> {
        let (gpa_page, page) = self.st.tlb.lookup_page(Gva::new(la), self.hot_write)?;
        let off = la & PAGE_MASK;
        let old = ram::page_load(page, off, size)?;
        let Some(new) = f(old) else {
            return Some((old, None));
        };
        ram::page_store(page, off, size, new)?;
        Some((old, Some(gpa_page | off)))
    }

    /// The guest physical address of an instruction fetch at `la` if its
    /// page is in the front TLB with execute permission (the decoded-block
    /// cache's lookup key); `None` means "take the checked path".
    #[inline]
    pub fn hot_fetch_gpa(&mut self, la: u64) -> Option<u64> {
        let (gpa_page, _) = self.st.tlb.lookup_page(Gva::new(la), self.hot_fetch)?;
        Some(gpa_page | (la & PAGE_MASK))
    }
}

//! Guest memory as instructions see it: segmentation, then paging through
//! softmmu, then RAM or an MMIO exit.

use super::Exec;
use crate::cpu::state::{Mode, SegReg};
use crate::exception::{Exception, ExecResult, Fault};
use softmmu::{Access, AccessKind, Gva, PagingCtx, Translation, PAGE_SIZE};

/// Whether `la` is canonical for 48-bit linear addresses.
#[inline]
pub fn is_canonical(la: u64) -> bool {
    ((la as i64) << 16 >> 16) as u64 == la
}

impl Exec<'_> {
    /// The paging context softmmu needs.
    #[inline]
    pub fn paging_ctx(&self) -> PagingCtx {
        PagingCtx {
            cr0: self.cpu.cr0,
            cr3: self.cpu.cr3,
            cr4: self.cpu.cr4,
            efer: self.cpu.efer,
            ac: self.cpu.flags.test(crate::cpu::flags::AC),
        }
    }

    /// Segment offset -> linear address, with the checks of the current mode
    /// (canonical form in 64-bit mode; limit and type outside it).
    pub fn linear(&self, seg: SegReg, off: u64, size: usize, write: bool) -> ExecResult<u64> {
        let fault = |s: SegReg| -> Fault {
            if s == SegReg::Ss {
                Exception::ss(0).into()
            } else {
                Exception::gp(0).into()
            }
        };
        let s = self.cpu.sreg(seg);
        if self.cpu.mode() == Mode::Long64 {
            let base = if matches!(seg, SegReg::Fs | SegReg::Gs) {
                s.base
            } else {
                0
            };
            let la = base.wrapping_add(off);
            let last = la.wrapping_add(size as u64 - 1);
            if !is_canonical(la) || !is_canonical(last) {
                return Err(fault(seg));
            }
            return Ok(la);
        }
        if self.cpu.mode() != Mode::Real {
            if s.unusable != 0 || s.present == 0 {
                return Err(fault(seg));
            }
            let code = s.type_ & 8 != 0;
            if write && (code || s.type_ & 2 == 0) {
                return Err(fault(seg));
            }
            if !write && code && s.type_ & 2 == 0 {
                // Execute-only code segment read.
                return Err(fault(seg));
            }
        }
        let last = off.wrapping_add(size as u64 - 1);
        let limit = u64::from(s.limit);
        let expand_down = s.type_ & 0xc == 0x4 && s.s != 0;
        if expand_down {
            let upper = if s.db != 0 { 0xffff_ffff } else { 0xffff };
            if off <= limit || last > upper || last < off {
                return Err(fault(seg));
            }
        } else if last > limit || last < off {
            return Err(fault(seg));
        }
        Ok(s.base.wrapping_add(off) & 0xffff_ffff)
    }

    fn access(&self, kind: AccessKind) -> Access {
        Access {
            kind,
            user: self.cpu.cpl() == 3 && !self.implicit_supervisor,
            implicit: self.implicit_supervisor,
        }
    }

    /// Translate a linear address for an access of `kind` (one page's
    /// worth: the result is valid to the end of that page).
    #[inline]
    pub fn translate_la(&mut self, la: u64, kind: AccessKind) -> ExecResult<Translation> {
        let ctx = self.paging_ctx();
        let acc = self.access(kind);
        self.mmu
            .translate(&ctx, Gva::new(la), acc)
            .map_err(|pf| Exception::pf(pf.addr.raw(), pf.error_code).into())
    }

    /// Read `size` (1..=8) bytes at linear address `la`.
    pub fn read_linear(&mut self, la: u64, size: usize, kind: AccessKind) -> ExecResult<u64> {
        let off = la & (PAGE_SIZE - 1);
        if off + size as u64 <= PAGE_SIZE {
            match self.translate_la(la, kind)? {
                Translation::Ram { hva, .. } => Ok(self.mmu.load(hva, size)),
                Translation::Mmio { gpa } => {
                    self.signals.attention = true;
                    self.mmio_read(gpa.raw(), size as u8)
                }
            }
        } else {
            let first = (PAGE_SIZE - off) as usize;
            let t1 = self.translate_la(la, kind)?;
            let la2 = self.wrap_la(la.wrapping_add(first as u64));
            let t2 = self.translate_la(la2, kind)?;
            let lo = self.read_part(t1, first)?;
            let hi = self.read_part(t2, size - first)?;
            Ok(lo | (hi << (first * 8)))
        }
    }

    fn read_part(&mut self, t: Translation, n: usize) -> ExecResult<u64> {
        match t {
            Translation::Ram { hva, .. } => {
                let mut b = [0u8; 8];
                self.mmu.load_bytes(hva, &mut b[..n]);
                Ok(u64::from_le_bytes(b))
            }
            Translation::Mmio { gpa } => {
                self.signals.attention = true;
                self.mmio_read(gpa.raw(), n as u8)
            }
        }
    }

    /// Linear addresses wrap at 4 GiB outside long mode.
    #[inline]
    pub fn wrap_la(&self, la: u64) -> u64 {
        if self.cpu.efer & crate::cpu::state::EFER_LMA != 0 {
            la
        } else {
            la & 0xffff_ffff
        }
    }

    /// Write `size` (1..=8) bytes at linear address `la`. Both pages of a
    /// split access are translated before anything is written.
    pub fn write_linear(&mut self, la: u64, size: usize, val: u64) -> ExecResult {
        let off = la & (PAGE_SIZE - 1);
        if off + size as u64 <= PAGE_SIZE {
            let t = self.translate_la(la, AccessKind::Write)?;
            self.write_part(t, size, val);
        } else {
            let first = (PAGE_SIZE - off) as usize;
            let t1 = self.translate_la(la, AccessKind::Write)?;
            let la2 = self.wrap_la(la.wrapping_add(first as u64));
            let t2 = self.translate_la(la2, AccessKind::Write)?;
            self.write_part(t1, first, val);
            self.write_part(t2, size - first, val >> (first * 8));
        }
        Ok(())
    }

    fn write_part(&mut self, t: Translation, n: usize, val: u64) {
        match t {
            Translation::Ram { hva, gpa } => {
                if n == 1 || n == 2 || n == 4 || n == 8 {
                    self.mmu.store(hva, n, val);
                } else {
                    self.mmu.store_bytes(hva, &val.to_le_bytes()[..n]);
                }
                self.note_write(gpa.raw());
            }
            Translation::Mmio { gpa } => {
                self.signals.attention = true;
                let m = if n >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (n * 8)) - 1
                };
                self.mmio_write(gpa.raw(), n as u8, val & m);
            }
        }
    }

    /// Tell the decoded-code cache that guest RAM at `gpa` was written (by
    /// a store that went around [`Exec::write_linear`]): if the page holds
    /// cached code, its blocks are invalidated in every vCPU and this vCPU
    /// looks again before its next instruction.
    #[inline]
    pub fn note_write(&mut self, gpa: u64) {
        if self.code.note_write(gpa >> softmmu::PAGE_SHIFT) {
            self.signals.attention = true;
        }
    }

    /// Check that a write would succeed (for instructions that must fault
    /// before changing anything), returning the linear address.
    pub fn probe_write(&mut self, la: u64, size: usize) -> ExecResult {
        let off = la & (PAGE_SIZE - 1);
        self.translate_la(la, AccessKind::Write)?;
        if off + size as u64 > PAGE_SIZE {
            let la2 = self.wrap_la(la.wrapping_add(PAGE_SIZE - off));
            self.translate_la(la2, AccessKind::Write)?;
        }
        Ok(())
    }

    /// Make the hot path valid for the current state: the segment summary
    /// (see `cpu::hot`) and the MMU's paging context and privilege class.
    /// Called before running instructions and again after any that may
    /// have changed the mode, a segment, CPL, EFLAGS.AC or paging.
    pub fn prepare_hot(&mut self) {
        let ctx = self.paging_ctx();
        self.mmu.hot_prepare(&ctx, self.cpu.cpl() == 3);
        self.cpu.prepare_hot();
    }

    /// The linear address of an explicit access the hot path may try.
    #[inline(always)]
    fn hot_linear(&self, seg: SegReg, off: u64, write: bool) -> Option<u64> {
        if self.implicit_supervisor {
            return None;
        }
        self.cpu.hot().linear(seg, off, write)
    }

    /// Read through a segment. The hot path is inlined into the caller
    /// (where `size` is usually a constant); the rest is out of line.
    #[inline(always)]
    pub fn read_seg(&mut self, seg: SegReg, off: u64, size: usize) -> ExecResult<u64> {
        if let Some(la) = self.hot_linear(seg, off, false) {
            if let Some(v) = self.mmu.hot_load(la, size) {
                return Ok(v);
            }
        }
        self.read_seg_checked(seg, off, size)
    }

    /// Read through a segment other than FS or GS in 64-bit code, where
    /// the linear address is the offset and only the canonical check
    /// applies (which a TLB hit implies).
    #[inline(always)]
    pub fn load_flat64(&mut self, seg: SegReg, off: u64, size: usize) -> ExecResult<u64> {
        if let Some(v) = self.mmu.hot_load(off, size) {
            return Ok(v);
        }
        self.read_seg_checked(seg, off, size)
    }

    /// Write counterpart of [`Exec::load_flat64`].
    #[inline(always)]
    pub fn store_flat64(&mut self, seg: SegReg, off: u64, size: usize, val: u64) -> ExecResult {
        if let Some(gpa) = self.mmu.hot_store(off, size, val) {
            self.note_write(gpa);
            return Ok(());
        }
        self.write_seg_checked(seg, off, size, val)
    }

    /// [`Exec::load_flat64`] of the 8-byte stack slot at `sp` (POP and RET
    /// in 64-bit code), through the MMU's stack page.
    #[inline(always)]
    pub fn load_stack64(&mut self, sp: u64) -> ExecResult<u64> {
        if let Some(v) = self.mmu.hot_stack_load(sp) {
            return Ok(v);
        }
        self.read_seg_checked(SegReg::Ss, sp, 8)
    }

    /// [`Exec::store_flat64`] of the 8-byte stack slot at `sp` (PUSH and
    /// CALL in 64-bit code), through the MMU's stack page.
    #[inline(always)]
    pub fn store_stack64(&mut self, sp: u64, val: u64) -> ExecResult {
        if let Some(gpa) = self.mmu.hot_stack_store(sp, val) {
            self.note_write(gpa);
            return Ok(());
        }
        self.write_seg_checked(SegReg::Ss, sp, 8, val)
    }

    #[inline(never)]
    fn read_seg_checked(&mut self, seg: SegReg, off: u64, size: usize) -> ExecResult<u64> {
        let la = self.linear(seg, off, size, false)?;
        self.read_linear(la, size, AccessKind::Read)
    }

    /// Write through a segment (inlined like [`Exec::read_seg`]).
    #[inline(always)]
    pub fn write_seg(&mut self, seg: SegReg, off: u64, size: usize, val: u64) -> ExecResult {
        if let Some(la) = self.hot_linear(seg, off, true) {
            if let Some(gpa) = self.mmu.hot_store(la, size, val) {
                self.note_write(gpa);
                return Ok(());
            }
        }
        self.write_seg_checked(seg, off, size, val)
    }

    #[inline(never)]
    fn write_seg_checked(&mut self, seg: SegReg, off: u64, size: usize, val: u64) -> ExecResult {
        let la = self.linear(seg, off, size, true)?;
        self.write_linear(la, size, val)
    }

    /// Read-modify-write through a segment. With `locked`, an aligned RAM
    /// operand is updated with a real host atomic; `f` returns the new
    /// value, or `None` to leave memory unchanged. Returns the old value.
    pub fn rmw_seg(
        &mut self,
        seg: SegReg,
        off: u64,
        size: usize,
        locked: bool,
        f: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> ExecResult<u64> {
        if !locked {
            if let Some(la) = self.hot_linear(seg, off, true) {
                if let Some((old, gpa)) = self.mmu.hot_rmw(la, size, f) {
                    if let Some(gpa) = gpa {
                        self.note_write(gpa);
                    }
                    return Ok(old);
                }
            }
        }
        let la = self.linear(seg, off, size, true)?;
        let pg_off = la & (PAGE_SIZE - 1);
        if locked && pg_off + size as u64 <= PAGE_SIZE {
            if let Translation::Ram { hva, gpa } = self.translate_la(la, AccessKind::Write)? {
                let old = self.mmu.atomic_rmw(hva, size, f);
                self.note_write(gpa.raw());
                return Ok(old);
            }
        }
        // Not locked, split, or MMIO: the write access is checked first so
        // a read-only page faults with W=1 as on hardware.
        self.probe_write(la, size)?;
        let old = self.read_linear(la, size, AccessKind::Read)?;
        if let Some(new) = f(old) {
            self.write_linear(la, size, new)?;
        }
        Ok(old)
    }

    /// Fetch code bytes at linear address `la` into `buf`, stopping early at
    /// an unmapped second page only if the first page already has enough.
    pub fn fetch(&mut self, la: u64, buf: &mut [u8; 16]) -> ExecResult<usize> {
        let off = (la & (PAGE_SIZE - 1)) as usize;
        let first = (PAGE_SIZE as usize - off).min(15);
        match self.translate_la(la, AccessKind::Fetch)? {
            Translation::Ram { hva, .. } => self.mmu.load_bytes(hva, &mut buf[..first]),
            Translation::Mmio { .. } => return Err(Fault::CodeNotInRam),
        }
        Ok(first)
    }

    /// Fetch the rest of an instruction that crosses into the next page.
    pub fn fetch_more(&mut self, la: u64, have: usize, buf: &mut [u8; 16]) -> ExecResult<usize> {
        let la2 = self.wrap_la(la.wrapping_add(have as u64));
        match self.translate_la(la2, AccessKind::Fetch)? {
            Translation::Ram { hva, .. } => self.mmu.load_bytes(hva, &mut buf[have..15]),
            Translation::Mmio { .. } => return Err(Fault::CodeNotInRam),
        }
        Ok(15)
    }
}

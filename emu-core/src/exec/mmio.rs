//! MMIO that emu-core answers itself (the local APIC page, as KVM's
//! in-kernel APIC does) before anything becomes an exit to the VMM.

use super::Exec;
use crate::apic::ApicMode;
use crate::exception::ExecResult;

impl Exec<'_> {
    /// The offset in the xAPIC page if `gpa` is in it and the APIC is in
    /// xAPIC mode.
    #[inline]
    fn apic_offset(&self, gpa: u64) -> Option<u32> {
        let apic = &self.sys.apic;
        (apic.mode() == ApicMode::XApic && gpa & !0xfff == apic.base_address())
            .then_some((gpa & 0xfff) as u32)
    }

    /// An MMIO load of `size` bytes at `gpa`.
    pub fn mmio_read(&mut self, gpa: u64, size: u8) -> ExecResult<u64> {
        if let Some(off) = self.apic_offset(gpa) {
            self.sys.sync_apic_clock(self.instret);
            // Registers are 32 bits at 16-byte strides; narrower or
            // unaligned reads see the bytes of the containing dword.
            let reg = self.sys.apic.read(off & !3);
            let shift = (off & 3) * 8;
            let m = if size >= 4 {
                u32::MAX
            } else {
                (1u32 << (size * 8)) - 1
            };
            return Ok(u64::from((reg >> shift) & m));
        }
        self.io.mmio_read(gpa, size)
    }

    /// An MMIO store of the low `size` bytes of `val` at `gpa`.
    pub fn mmio_write(&mut self, gpa: u64, size: u8, val: u64) {
        if let Some(off) = self.apic_offset(gpa) {
            self.sys.sync_apic_clock(self.instret);
            if let Some(ipi) = self.sys.apic.write(off & !3, val as u32) {
                self.sys.bus.send(&ipi);
            }
            self.sys.apic_touched = true;
            return;
        }
        self.io.mmio_write(gpa, size, val);
    }
}

//! QEMU's `pc-testdev` (`-device pc-testdev`), the ISA test device the
//! kvm-unit-tests x86 suite uses. Its behaviour, as QEMU implements it:
//!
//! - I/O ports 0xe0-0xe3: a 32-bit scratch register. An access of any size
//!   at 0xe0 + k reads or writes the bytes of the register from byte k on
//!   (bytes beyond the register are dropped on writes and read as 0).
//! - I/O ports 0xe8-0xeb: the same register through QEMU's byte-wise
//!   window (QEMU splits wider accesses into byte accesses; the result is
//!   identical).
//! - I/O ports 0xe4-0xe7: "flush page": QEMU drops the host mapping of the
//!   guest page whose address is written. softvm has nothing to flush:
//!   writes are ignored, reads return 0.
//! - I/O ports 0x2000-0x2017: interrupt lines. A write of v to 0x2000 + n
//!   sets ISA interrupt line n to level `v != 0` (QEMU's `!!data`; test
//!   kernels write 0 and 1). The caller raises or lowers the I/O APIC pin:
//!   ISA line n is GSI n except line 0, which a PC routes to GSI 2 (see
//!   `ioapic::isa_irq_to_gsi`; QEMU does the same). Reads return 0. The
//!   lines are byte registers; of a wider write, only the first byte's line
//!   is set.
//! - MMIO 0xff00_0000 + 64 KiB: a scratch memory region that reads back
//!   what was written, with any access size up to 8 bytes (QEMU's region
//!   is 0x10000 bytes long; kvm-unit-tests use its first page). Bytes of an
//!   access that fall beyond the region are dropped or read as 0.

/// The scratch register's ports.
#[allow(dead_code)] // the port map, named for readers
pub const SCRATCH_PORT: u16 = 0xe0;
/// The byte-wise window onto the same scratch register.
#[allow(dead_code)] // the port map, named for readers
pub const SCRATCH_BYTE_PORT: u16 = 0xe8;
/// The "flush page" port.
#[allow(dead_code)] // the port map, named for readers
pub const FLUSH_PORT: u16 = 0xe4;
/// The first interrupt-line port.
pub const IRQ_PORT_BASE: u16 = 0x2000;
/// Number of interrupt-line ports.
pub const IRQ_LINES: u16 = 24;
/// Physical address of the MMIO scratch region.
pub const MMIO_BASE: u64 = loader::layout::PC_TESTDEV_MMIO;
/// Length of the MMIO scratch region.
pub const MMIO_LEN: u64 = loader::layout::PC_TESTDEV_MMIO_SIZE;

/// The pc-testdev state.
#[derive(Clone, Debug)]
pub struct TestDev {
    scratch: u32,
    mem: Vec<u8>,
    lines: u32,
}

impl Default for TestDev {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDev {
    pub fn new() -> Self {
        TestDev {
            scratch: 0,
            mem: vec![0; MMIO_LEN as usize],
            lines: 0,
        }
    }

    /// Whether `port` belongs to the device.
    pub fn claims_port(port: u16) -> bool {
        matches!(port, 0xe0..=0xeb) || (IRQ_PORT_BASE..IRQ_PORT_BASE + IRQ_LINES).contains(&port)
    }

    /// Whether physical address `addr` falls in the MMIO scratch region.
    pub fn claims_mmio(addr: u64) -> bool {
        addr.wrapping_sub(MMIO_BASE) < MMIO_LEN
    }

    /// A port read of `size` bytes (1, 2 or 4). Ports the device does not
    /// have read 0.
    pub fn io_read(&mut self, port: u16, size: usize) -> u32 {
        match port {
            0xe0..=0xe3 | 0xe8..=0xeb => {
                let first = usize::from(port & 3);
                let bytes = self.scratch.to_le_bytes();
                let mut out = [0u8; 4];
                for (i, b) in bytes.iter().skip(first).take(size.min(4)).enumerate() {
                    out[i] = *b;
                }
                u32::from_le_bytes(out)
            }
            _ => 0,
        }
    }

    /// A port write of `size` bytes. A write to an interrupt-line port
    /// returns `Some((line, level))`: set ISA interrupt line `line` to
    /// `level`.
    pub fn io_write(&mut self, port: u16, size: usize, val: u32) -> Option<(u32, bool)> {
        match port {
            0xe0..=0xe3 | 0xe8..=0xeb => {
                let first = usize::from(port & 3);
                let mut bytes = self.scratch.to_le_bytes();
                for (i, b) in bytes.iter_mut().skip(first).take(size.min(4)).enumerate() {
                    *b = val.to_le_bytes()[i];
                }
                self.scratch = u32::from_le_bytes(bytes);
                None
            }
            p if (IRQ_PORT_BASE..IRQ_PORT_BASE + IRQ_LINES).contains(&p) && size > 0 => {
                let line = u32::from(p - IRQ_PORT_BASE);
                let level = val & 0xff != 0;
                if level {
                    self.lines |= 1 << line;
                } else {
                    self.lines &= !(1 << line);
                }
                Some((line, level))
            }
            // The flush-page port, and anything else: nothing to do.
            _ => None,
        }
    }

    /// The level last written to interrupt line `line`.
    #[cfg_attr(not(test), allow(dead_code))] // device API the tests use; the VMM does not need it yet
    pub fn line_level(&self, line: u32) -> bool {
        line < u32::from(IRQ_LINES) && self.lines & (1 << line) != 0
    }

    /// A read of `size` bytes (up to 8) at `offset` in the MMIO region.
    pub fn mmio_read(&self, offset: u64, size: usize) -> u64 {
        let mut out = [0u8; 8];
        self.mmio_read_bytes(offset, &mut out[..size.min(8)]);
        u64::from_le_bytes(out)
    }

    /// A write of `size` bytes (up to 8) at `offset` in the MMIO region.
    pub fn mmio_write(&mut self, offset: u64, size: usize, val: u64) {
        let bytes = val.to_le_bytes();
        self.mmio_write_bytes(offset, &bytes[..size.min(8)]);
    }

    /// A read of any width (a 16- or 32-byte vector access too) at
    /// `offset`: bytes past the region read 0.
    pub fn mmio_read_bytes(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.byte_index(offset, i).map_or(0, |k| self.mem[k]);
        }
    }

    /// A write of any width at `offset`: bytes past the region are
    /// dropped.
    pub fn mmio_write_bytes(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(k) = self.byte_index(offset, i) {
                self.mem[k] = b;
            }
        }
    }

    fn byte_index(&self, offset: u64, i: usize) -> Option<usize> {
        let at = offset.checked_add(i as u64)?;
        if at < MMIO_LEN {
            usize::try_from(at).ok()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_port_round_trips_any_size() {
        let mut td = TestDev::new();
        assert_eq!(td.io_read(0xe0, 4), 0);
        assert_eq!(td.io_write(0xe0, 4, 0xdead_beef), None);
        assert_eq!(td.io_read(0xe0, 4), 0xdead_beef);
        assert_eq!(td.io_read(0xe0, 2), 0xbeef);
        assert_eq!(td.io_read(0xe0, 1), 0xef);
        assert_eq!(td.io_read(0xe1, 1), 0xbe);
        assert_eq!(td.io_read(0xe2, 2), 0xdead);
        assert_eq!(
            td.io_read(0xe3, 4),
            0xde,
            "bytes beyond the register read 0"
        );
        // Narrow writes touch only their bytes.
        td.io_write(0xe0, 1, 0x11);
        assert_eq!(td.io_read(0xe0, 4), 0xdead_be11);
        td.io_write(0xe2, 2, 0x3344);
        assert_eq!(td.io_read(0xe0, 4), 0x3344_be11);
        td.io_write(0xe3, 4, 0xaabb_ccdd);
        assert_eq!(td.io_read(0xe0, 4), 0xdd44_be11);
        td.io_write(0xe0, 2, 0x1234_5678);
        assert_eq!(td.io_read(0xe0, 4), 0xdd44_5678);
        // The byte-wise window shares the register.
        assert_eq!(td.io_read(0xe8, 4), 0xdd44_5678);
        td.io_write(0xe8, 4, 0x0102_0304);
        assert_eq!(td.io_read(0xe0, 4), 0x0102_0304);
        assert_eq!(td.io_read(0xe9, 1), 0x03);
    }

    #[test]
    fn flush_port_is_ignored() {
        let mut td = TestDev::new();
        td.io_write(0xe0, 4, 7);
        assert_eq!(td.io_write(0xe4, 4, 0x1000), None);
        assert_eq!(td.io_read(0xe4, 4), 0);
        assert_eq!(td.io_read(0xe0, 4), 7);
    }

    #[test]
    fn interrupt_line_ports() {
        let mut td = TestDev::new();
        assert_eq!(td.io_write(0x2000 + 14, 1, 1), Some((14, true)));
        assert!(td.line_level(14));
        assert_eq!(td.io_write(0x2000 + 14, 1, 0), Some((14, false)));
        assert!(!td.line_level(14));
        assert_eq!(td.io_write(0x2000, 1, 1), Some((0, true)));
        assert_eq!(
            td.io_write(0x2017, 1, 0x80),
            Some((23, true)),
            "any non-zero byte"
        );
        assert_eq!(td.io_write(0x2018, 1, 1), None, "only 24 lines");
        assert_eq!(
            td.io_write(0x2005, 2, 0x0100),
            Some((5, false)),
            "first byte only"
        );
        assert_eq!(td.io_read(0x2000, 1), 0);
        assert!(!td.line_level(99));
        assert!(TestDev::claims_port(0x2017));
        assert!(!TestDev::claims_port(0x2018));
        assert!(TestDev::claims_port(0xe0) && TestDev::claims_port(0xeb));
        assert!(!TestDev::claims_port(0xf4));
    }

    #[test]
    fn mmio_scratch_round_trips() {
        let mut td = TestDev::new();
        assert_eq!(td.mmio_read(0, 8), 0);
        td.mmio_write(0, 8, 0x0123_4567_89ab_cdef);
        assert_eq!(td.mmio_read(0, 8), 0x0123_4567_89ab_cdef);
        assert_eq!(td.mmio_read(0, 4), 0x89ab_cdef);
        assert_eq!(td.mmio_read(4, 4), 0x0123_4567);
        assert_eq!(td.mmio_read(3, 2), 0x6789);
        assert_eq!(td.mmio_read(7, 1), 0x01);
        td.mmio_write(2, 1, 0xff);
        assert_eq!(td.mmio_read(0, 4), 0x89ff_cdef);
        td.mmio_write(0xffc, 4, 0xcafe_f00d);
        assert_eq!(td.mmio_read(0xffc, 4), 0xcafe_f00d);
        td.mmio_write(0x8000, 2, 0xabcd);
        assert_eq!(td.mmio_read(0x8000, 2), 0xabcd);
        // An access straddling the end keeps only the bytes inside.
        td.mmio_write(MMIO_LEN - 2, 4, 0x1122_3344);
        assert_eq!(td.mmio_read(MMIO_LEN - 2, 4), 0x3344);
        assert_eq!(td.mmio_read(MMIO_LEN, 8), 0);
        assert_eq!(td.mmio_read(u64::MAX, 8), 0);
        td.mmio_write(u64::MAX - 3, 8, u64::MAX);
        assert!(TestDev::claims_mmio(0xff00_0000));
        assert!(TestDev::claims_mmio(0xff00_ffff));
        assert!(!TestDev::claims_mmio(0xff01_0000));
        assert!(!TestDev::claims_mmio(0xfeff_ffff));
    }

    #[test]
    fn odd_sizes_do_not_panic() {
        let mut td = TestDev::new();
        for size in [0usize, 1, 2, 3, 4, 8, 16, usize::MAX] {
            for port in [0xe0u16, 0xe3, 0xe4, 0xe8, 0xeb, 0x2000, 0x2017, 0xffff] {
                td.io_write(port, size, u32::MAX);
                td.io_read(port, size);
            }
            td.mmio_write(MMIO_LEN - 1, size, u64::MAX);
            td.mmio_read(MMIO_LEN - 1, size);
        }
    }
}

//! Devices a VMM owns: the serial port, the exit ports, fw_cfg, the I/O
//! APIC, the PIT, QEMU's pc-testdev, and the legacy chips test kernels poke
//! at. `Bus` routes ports and MMIO addresses to them; interrupts they raise
//! collect in `Bus::msi` for the VMM to send to the local APICs.

pub mod fw_cfg;
pub mod ioapic;
pub mod legacy;
pub mod pit;
pub mod serial;
pub mod testdev;

use std::io::Write;
use std::time::{Duration, Instant};

/// What a port write asked the VMM to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// isa-debug-exit: the process status is `(v << 1) | 1`.
    GuestExit(u32),
    /// ACPI/Bochs power-off: status 0.
    PowerOff,
}

/// Port I/O devices of one machine.
pub struct Bus<W: Write> {
    pub serial: serial::Uart<W>,
    pub fw_cfg: fw_cfg::FwCfg,
    pub legacy: legacy::Legacy,
    pub ioapic: ioapic::IoApic,
    pub pit: pit::Pit,
    pub testdev: testdev::TestDev,
    /// Interrupt messages raised by devices, for the VMM to deliver.
    pub msi: Vec<ioapic::Msi>,
    /// Device time (the PIT) runs on the host clock from here.
    start: Instant,
    /// Bytes of "Shutdown" seen so far on port 0x8900.
    shutdown_match: usize,
}

impl<W: Write> Bus<W> {
    pub fn new(out: W, fw_cfg: fw_cfg::FwCfg) -> Self {
        Bus {
            serial: serial::Uart::new(out),
            fw_cfg,
            legacy: legacy::Legacy::default(),
            ioapic: ioapic::IoApic::new(0),
            pit: pit::Pit::new(),
            testdev: testdev::TestDev::new(),
            msi: Vec::new(),
            start: Instant::now(),
            shutdown_match: 0,
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Raise or lower an ISA interrupt line (through the I/O APIC).
    pub fn set_isa_irq(&mut self, irq: u32, level: bool) {
        let msis = self.ioapic.set_irq(ioapic::isa_irq_to_gsi(irq), level);
        self.msi.extend(msis);
    }

    /// Device timers: PIT channel 0 ticks become IRQ0 pulses. Returns how
    /// long until a device timer could interrupt a halted vCPU (only when
    /// that interrupt is routed, i.e. its I/O APIC entry is unmasked). One
    /// reading of the host clock serves both.
    pub fn poll_timers(&mut self) -> Option<Duration> {
        if self.pit.irq0_quiet() {
            return None;
        }
        let now = self.now();
        if self.pit.irq0_pending(now) > 0 {
            let msis = self.ioapic.pulse_irq(ioapic::isa_irq_to_gsi(0));
            self.msi.extend(msis);
        }
        let pin = ioapic::isa_irq_to_gsi(0);
        let routed = self.ioapic.entry(pin).is_some_and(|e| e & (1 << 16) == 0);
        if !routed {
            return None;
        }
        self.pit.next_irq0(now).map(|t| t.saturating_sub(now))
    }

    /// An MMIO read the VMM owns; `None` if no device is there.
    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) -> bool {
        let v = if (ioapic::IOAPIC_BASE..ioapic::IOAPIC_BASE + ioapic::IOAPIC_SIZE).contains(&gpa) {
            u64::from(self.ioapic.read(gpa - ioapic::IOAPIC_BASE, data.len()))
        } else if testdev::TestDev::claims_mmio(gpa) {
            self.testdev.mmio_read(gpa - testdev::MMIO_BASE, data.len())
        } else {
            return false;
        };
        let b = v.to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&b[..n]);
        true
    }

    /// An MMIO write the VMM owns; false if no device is there.
    pub fn mmio_write(&mut self, gpa: u64, data: &[u8]) -> bool {
        let mut b = [0u8; 8];
        let n = data.len().min(8);
        b[..n].copy_from_slice(&data[..n]);
        let v = u64::from_le_bytes(b);
        if (ioapic::IOAPIC_BASE..ioapic::IOAPIC_BASE + ioapic::IOAPIC_SIZE).contains(&gpa) {
            let msis = self
                .ioapic
                .write(gpa - ioapic::IOAPIC_BASE, data.len(), v as u32);
            self.msi.extend(msis);
        } else if testdev::TestDev::claims_mmio(gpa) {
            self.testdev
                .mmio_write(gpa - testdev::MMIO_BASE, data.len(), v);
        } else {
            return false;
        }
        true
    }

    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        // The host clock is read only for the PIT: other ports are the
        // hot path of exit-heavy guests.
        let v: u32 = match port {
            0x3f8..=0x3ff => u32::from(self.serial.read(port - 0x3f8)),
            0x510 | 0x511 => self.fw_cfg.read(port, data.len()),
            0xf4..=0xf7 => 0,
            0x40..=0x43 => u32::from(self.pit.read(port, self.now())),
            0x61 => u32::from(self.pit.port61_read(self.now())),
            p if testdev::TestDev::claims_port(p) => self.testdev.io_read(p, data.len()),
            _ => self.legacy.read(port, data.len()),
        };
        let b = v.to_le_bytes();
        let n = data.len().min(4);
        data[..n].copy_from_slice(&b[..n]);
    }

    pub fn write(&mut self, port: u16, data: &[u8]) -> Action {
        let mut b = [0u8; 4];
        let n = data.len().min(4);
        b[..n].copy_from_slice(&data[..n]);
        let v = u32::from_le_bytes(b);
        match port {
            0x3f8..=0x3ff => self.serial.write(port - 0x3f8, data[0]),
            0xf4 => return Action::GuestExit(v),
            0x40..=0x43 => self.pit.write(port, data[0], self.now()),
            0x61 => self.pit.port61_write(data[0], self.now()),
            p if testdev::TestDev::claims_port(p) => {
                if let Some((line, level)) = self.testdev.io_write(p, data.len(), v) {
                    self.set_isa_irq(line, level);
                }
            }
            0x510 | 0x511 => self.fw_cfg.write(port, v, data.len()),
            // Bochs/QEMU: writing the string "Shutdown" powers off.
            0x8900 => {
                let want = b"Shutdown";
                if data[0] == want[self.shutdown_match] {
                    self.shutdown_match += 1;
                    if self.shutdown_match == want.len() {
                        return Action::PowerOff;
                    }
                } else {
                    self.shutdown_match = usize::from(data[0] == want[0]);
                }
            }
            // ACPI PM1a control (QEMU's PIIX4 at 0x604): SLP_EN with S5.
            0x604 if v & 0x2000 != 0 => return Action::PowerOff,
            _ => self.legacy.write(port, v, data.len()),
        }
        Action::Continue
    }
}

//! The bus of a machine: ports and MMIO addresses routed to the devices
//! the configuration asked for. Interrupts the devices raise collect in
//! [`Bus::msi`] for the VMM to send to the local APICs.

use crate::config::{DebugExit, MachineConfig};
use crate::devices::{fw_cfg, ioapic, legacy, pit, serial, testdev};
use std::io::Write;
use std::time::{Duration, Instant};

/// What the VMM loop does after the bus answered an exit
/// ([`Bus::answer`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Run the vCPU again.
    Continue,
    /// Run again; an MMIO access found no device (reads got all ones,
    /// writes were dropped). The text says what happened, for traces.
    NoDevice(String),
    /// The guest wrote this value to the isa-debug-exit device.
    GuestExit(u32),
    /// The guest powered off.
    PowerOff,
    /// The vCPU halted (see [`emu_core::VcpuExit::Hlt`]).
    Halted,
    /// Triple fault.
    TripleFault,
    /// The instruction limit was reached.
    Limit,
    /// The VM was asked to stop.
    Interrupted,
    /// A single step or breakpoint.
    Debug,
    /// An instruction softvm does not implement, at `rip`.
    Unsupported { rip: u64, bytes: Vec<u8> },
}

/// What a port write asked the VMM to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// isa-debug-exit: the process status is `(v << 1) | 1`.
    GuestExit(u32),
    /// ACPI/Bochs power-off: status 0.
    PowerOff,
}

/// The devices of one machine and the routing of ports and MMIO to them.
/// Devices the configuration leaves out are `None`: their ports read as
/// all ones (as on a PC where nothing answers) and writes are ignored.
pub struct Bus<W: Write> {
    pub serial: Option<serial::Uart<W>>,
    pub fw_cfg: fw_cfg::FwCfg,
    pub legacy: legacy::Legacy,
    pub ioapic: ioapic::IoApic,
    pub pit: Option<pit::Pit>,
    pub testdev: Option<testdev::TestDev>,
    pub debug_exit: Option<DebugExit>,
    /// Interrupt messages raised by devices, for the VMM to deliver.
    pub msi: Vec<ioapic::Msi>,
    /// Device time (the PIT) runs on the host clock from here.
    start: Instant,
    /// Bytes of "Shutdown" seen so far on port 0x8900.
    shutdown_match: usize,
}

impl<W: Write> Bus<W> {
    /// The devices `cfg` asks for, the serial port writing to `out`.
    pub fn new(cfg: &MachineConfig, out: W) -> Self {
        Bus {
            serial: cfg.serial.then(|| serial::Uart::new(out)),
            fw_cfg: fw_cfg::FwCfg::new(cfg.memory, u16::try_from(cfg.vcpus).unwrap_or(u16::MAX)),
            legacy: legacy::Legacy::default(),
            ioapic: ioapic::IoApic::new(0),
            pit: cfg.pit.then(pit::Pit::new),
            testdev: cfg.pc_testdev.then(testdev::TestDev::new),
            debug_exit: cfg.debug_exit,
            msi: Vec::new(),
            start: Instant::now(),
            shutdown_match: 0,
        }
    }

    /// Answer one exit of a vCPU: complete port and MMIO reads in the
    /// exit's buffer, apply writes, and send the interrupts devices raised
    /// to the local APICs through `apic`.
    pub fn answer(
        &mut self,
        exit: emu_core::VcpuExit<'_>,
        apic: &emu_core::apic::ApicBus,
    ) -> Answer {
        use emu_core::VcpuExit;
        let a = match exit {
            VcpuExit::IoOut(port, data) => match self.write(port, data) {
                Action::Continue => Answer::Continue,
                Action::GuestExit(v) => Answer::GuestExit(v),
                Action::PowerOff => Answer::PowerOff,
            },
            VcpuExit::IoIn(port, data) => {
                self.read(port, data);
                Answer::Continue
            }
            VcpuExit::MmioRead(gpa, data) => {
                if self.mmio_read(gpa, data) {
                    Answer::Continue
                } else {
                    data.fill(0xff);
                    Answer::NoDevice(format!(
                        "MMIO read of {} bytes at gpa {gpa:#x}: no device there, the VMM answers all ones",
                        data.len()
                    ))
                }
            }
            VcpuExit::MmioWrite(gpa, data) => {
                if self.mmio_write(gpa, data) {
                    Answer::Continue
                } else {
                    Answer::NoDevice(format!(
                        "MMIO write of {data:02x?} at gpa {gpa:#x}: exit to the VMM, which ignores it"
                    ))
                }
            }
            VcpuExit::Hlt => Answer::Halted,
            VcpuExit::Shutdown => Answer::TripleFault,
            VcpuExit::Debug => Answer::Debug,
            VcpuExit::InstructionLimit => Answer::Limit,
            VcpuExit::Interrupted => Answer::Interrupted,
            VcpuExit::InternalError { rip, bytes, len } => Answer::Unsupported {
                rip,
                bytes: bytes[..len.clamp(1, bytes.len())].to_vec(),
            },
        };
        self.deliver_msi(apic);
        a
    }

    /// Send the interrupts devices raised to the local APICs.
    pub fn deliver_msi(&mut self, apic: &emu_core::apic::ApicBus) {
        for m in self.msi.drain(..) {
            let (address, data) = m.address_data();
            apic.send_msi(address, data);
        }
    }

    /// Flush the serial output (at the end of a run).
    pub fn flush(&mut self) {
        if let Some(s) = self.serial.as_mut() {
            s.flush();
        }
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
        let now = self.start.elapsed();
        let pit = self.pit.as_mut()?;
        if pit.irq0_quiet() {
            return None;
        }
        if pit.irq0_pending(now) > 0 {
            let msis = self.ioapic.pulse_irq(ioapic::isa_irq_to_gsi(0));
            self.msi.extend(msis);
        }
        let pin = ioapic::isa_irq_to_gsi(0);
        let routed = self.ioapic.entry(pin).is_some_and(|e| e & (1 << 16) == 0);
        if !routed {
            return None;
        }
        self.pit
            .as_mut()?
            .next_irq0(now)
            .map(|t| t.saturating_sub(now))
    }

    /// An MMIO read the VMM owns; `None` if no device is there.
    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) -> bool {
        let v = if (ioapic::IOAPIC_BASE..ioapic::IOAPIC_BASE + ioapic::IOAPIC_SIZE).contains(&gpa) {
            u64::from(self.ioapic.read(gpa - ioapic::IOAPIC_BASE, data.len()))
        } else if let Some(t) = self
            .testdev
            .as_mut()
            .filter(|_| testdev::TestDev::claims_mmio(gpa))
        {
            t.mmio_read(gpa - testdev::MMIO_BASE, data.len())
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
        } else if let Some(t) = self
            .testdev
            .as_mut()
            .filter(|_| testdev::TestDev::claims_mmio(gpa))
        {
            t.mmio_write(gpa - testdev::MMIO_BASE, data.len(), v);
        } else {
            return false;
        }
        true
    }

    /// A port read: `data` (1, 2 or 4 bytes) gets the device's answer.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        // The host clock is read only for the PIT: other ports are the
        // hot path of exit-heavy guests.
        let start = self.start;
        let now = || start.elapsed();
        let v: u32 = match port {
            0x3f8..=0x3ff if self.serial.is_some() => {
                u32::from(self.serial.as_mut().map_or(0xff, |s| s.read(port - 0x3f8)))
            }
            0x510 | 0x511 => self.fw_cfg.read(port, data.len()),
            p if self.debug_exit.is_some_and(|d| d.claims(p)) => 0,
            0x40..=0x43 if self.pit.is_some() => {
                let t = now();
                self.pit
                    .as_mut()
                    .map_or(0xff, |p| u32::from(p.read(port, t)))
            }
            0x61 if self.pit.is_some() => {
                let t = now();
                self.pit
                    .as_mut()
                    .map_or(0xff, |p| u32::from(p.port61_read(t)))
            }
            p if self.testdev.is_some() && testdev::TestDev::claims_port(p) => self
                .testdev
                .as_mut()
                .map_or(0xffff_ffff, |t| t.io_read(p, data.len())),
            _ => self.legacy.read(port, data.len()),
        };
        let b = v.to_le_bytes();
        let n = data.len().min(4);
        data[..n].copy_from_slice(&b[..n]);
    }

    /// A port write of `data` (1, 2 or 4 bytes); says whether the run
    /// goes on.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Action {
        let mut b = [0u8; 4];
        let n = data.len().min(4);
        b[..n].copy_from_slice(&data[..n]);
        let v = u32::from_le_bytes(b);
        let now = self.start.elapsed();
        match port {
            0x3f8..=0x3ff if self.serial.is_some() => {
                if let Some(s) = self.serial.as_mut() {
                    s.write(port - 0x3f8, b[0]);
                }
            }
            p if self.debug_exit.is_some_and(|d| d.claims(p)) => return Action::GuestExit(v),
            0x40..=0x43 | 0x61 if self.pit.is_some() => {
                if let Some(pit) = self.pit.as_mut() {
                    if port == 0x61 {
                        pit.port61_write(b[0], now);
                    } else {
                        pit.write(port, b[0], now);
                    }
                }
            }
            p if self.testdev.is_some() && testdev::TestDev::claims_port(p) => {
                let line = self
                    .testdev
                    .as_mut()
                    .and_then(|t| t.io_write(p, data.len(), v));
                if let Some((line, level)) = line {
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

//! The bus of a machine: ports and MMIO addresses routed to the devices
//! the configuration asked for. Interrupts the devices raise collect in
//! [`Bus::msi`] for the VMM to send to the local APICs. The devices that
//! keep time read the machine clock ([`crate::clock`]).
//!
//! The bus also holds the machine's sleep state: a write of S3 to PM1a
//! control suspends the machine ([`Action::Suspend`]: the VMM stops the
//! vCPUs), and an RTC alarm that PM1_EN lets wake it ends the suspension
//! ([`Bus::take_wake`]: the devices reset as on a resume, and the VMM
//! starts vCPU 0 at the FACS waking vector).

use crate::clock::{Clock, HostClock};
use crate::config::{DebugExit, MachineConfig};
use crate::devices::acpi_pm::{self, AcpiPm, PmAction};
use crate::devices::{fw_cfg, ioapic, legacy, pit, rtc, serial, testdev};
use loader::layout::RamLayout;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    /// The guest put the machine into S3 (suspend to RAM): stop the vCPUs.
    Suspend,
    /// The guest reset the machine.
    Reset,
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
    /// ACPI S3: the machine is suspended until a wake-up event.
    Suspend,
    /// The reset register (0xcf9): the machine resets.
    Reset,
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
    /// The RTC and CMOS RAM (ports 0x70, 0x71; IRQ 8).
    pub rtc: rtc::Rtc,
    /// The ACPI power-management registers (SCI on IRQ 9).
    pub pm: AcpiPm,
    /// Interrupt messages raised by devices, for the VMM to deliver.
    pub msi: Vec<ioapic::Msi>,
    /// The time of the devices that keep it.
    clock: Arc<dyn Clock>,
    /// The levels of IRQ 8 (RTC) and IRQ 9 (SCI) as last given to the
    /// I/O APIC.
    rtc_irq: bool,
    sci: bool,
    /// In S3; and whether a wake-up event came.
    suspended: bool,
    wake: bool,
    /// Bytes of "Shutdown" seen so far on port 0x8900.
    shutdown_match: usize,
}

/// Whether the I/O APIC entry of `gsi` is unmasked.
fn routed(io: &ioapic::IoApic, gsi: u32) -> bool {
    io.entry(gsi).is_some_and(|e| e & (1 << 16) == 0)
}

/// The earlier of two optional times.
fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl<W: Write> Bus<W> {
    /// The devices `cfg` asks for, the serial port writing to `out`, on
    /// the host's clock, the RTC starting at the host's date.
    pub fn new(cfg: &MachineConfig, out: W) -> Self {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Self::with_clock(cfg, out, Arc::new(HostClock::new()), wall)
    }

    /// The devices `cfg` asks for on `clock`, the RTC showing `wall`
    /// (time since 1970-01-01 UTC) at the clock's present reading.
    pub fn with_clock(cfg: &MachineConfig, out: W, clock: Arc<dyn Clock>, wall: Duration) -> Self {
        let ram = RamLayout::new(cfg.memory);
        let now = clock.now();
        Bus {
            serial: cfg.serial.then(|| serial::Uart::new(out)),
            fw_cfg: fw_cfg::FwCfg::new(cfg.memory, u16::try_from(cfg.vcpus).unwrap_or(u16::MAX)),
            legacy: legacy::Legacy::default(),
            ioapic: ioapic::IoApic::new(0),
            pit: cfg.pit.then(pit::Pit::new),
            testdev: cfg.pc_testdev.then(testdev::TestDev::new),
            debug_exit: cfg.debug_exit,
            rtc: rtc::Rtc::new(wall, now, ram.low_end(), ram.high_size(), cfg.vcpus),
            pm: AcpiPm::new(),
            msi: Vec::new(),
            clock,
            rtc_irq: false,
            sci: false,
            suspended: false,
            wake: false,
            shutdown_match: 0,
        }
    }

    /// The machine time of the devices.
    pub fn now(&self) -> Duration {
        self.clock.now()
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
                Action::Suspend => Answer::Suspend,
                Action::Reset => Answer::Reset,
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
                bytes: bytes[..len.min(bytes.len())].to_vec(),
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

    /// Give IRQ 8 the RTC's level.
    fn sync_rtc_irq(&mut self) {
        let level = self.rtc.irq();
        if level != self.rtc_irq {
            self.rtc_irq = level;
            self.set_isa_irq(8, level);
        }
    }

    /// Give IRQ 9 the SCI's level.
    fn sync_sci(&mut self, now: Duration) {
        let level = self.pm.sci(now);
        if level != self.sci {
            self.sci = level;
            self.set_isa_irq(u32::from(acpi_pm::SCI_IRQ), level);
        }
    }

    /// Device timers: PIT channel 0 ticks become IRQ0 pulses, RTC events
    /// raise IRQ 8 (and, in S3, may wake the machine), the PM timer's
    /// status raises the SCI. Returns how long until a device timer could
    /// interrupt a halted vCPU (only an interrupt that is routed, i.e. its
    /// I/O APIC entry is unmasked, or a wake-up from S3). One reading of
    /// the clock serves all.
    pub fn poll_timers(&mut self) -> Option<Duration> {
        let rtc_on = self.suspended || self.rtc.interrupts_enabled();
        let pm_on = self.pm.timer_sci_armed() || self.sci;
        let pit_on = self.pit.as_ref().is_some_and(|p| !p.irq0_quiet());
        if !(rtc_on || pm_on || pit_on) {
            return None;
        }
        let now = self.clock.now();
        let mut next = None;
        if let Some(pit) = self.pit.as_mut().filter(|_| pit_on) {
            let fired = pit.irq0_pending(now) > 0;
            let at = pit.next_irq0(now);
            if fired {
                let msis = self.ioapic.pulse_irq(ioapic::isa_irq_to_gsi(0));
                self.msi.extend(msis);
            }
            if routed(&self.ioapic, ioapic::isa_irq_to_gsi(0)) {
                next = earliest(next, at);
            }
        }
        if rtc_on {
            self.rtc.poll(now);
            self.sync_rtc_irq();
            let alarm = self.rtc.take_alarm_wake();
            if self.suspended && alarm && self.pm.rtc_wake_enabled() {
                self.wake = true;
            }
            let wanted = if self.suspended {
                self.can_wake()
            } else {
                routed(&self.ioapic, 8)
            };
            if wanted {
                next = earliest(next, self.rtc.next_event(now));
            }
        }
        if pm_on {
            self.sync_sci(now);
            if routed(&self.ioapic, u32::from(acpi_pm::SCI_IRQ)) {
                next = earliest(next, self.pm.next_event(now));
            }
        }
        next.map(|t| t.saturating_sub(now))
    }

    /// Whether the machine is in S3.
    pub fn suspended(&self) -> bool {
        self.suspended
    }

    /// Whether a wake-up event is possible in S3: an RTC alarm interrupt
    /// that PM1_EN lets wake the machine.
    pub fn can_wake(&self) -> bool {
        self.pm.rtc_wake_enabled() && self.rtc.alarm_armed()
    }

    fn suspend(&mut self) {
        self.suspended = true;
        self.wake = false;
        self.rtc.suspend();
    }

    /// If the machine is in S3 and a wake-up event came, resume: the
    /// devices reset as the platform resets on a resume (I/O APIC, PIT,
    /// PICs, the RTC's interrupt enables, PM1 with WAK_STS and RTC_STS
    /// set), and the caller starts vCPU 0 at the waking vector. Returns
    /// whether it did.
    pub fn take_wake(&mut self) -> bool {
        if !(self.suspended && self.wake) {
            return false;
        }
        let now = self.clock.now();
        self.suspended = false;
        self.wake = false;
        self.ioapic = ioapic::IoApic::new(0);
        if self.pit.is_some() {
            self.pit = Some(pit::Pit::new());
        }
        self.legacy = legacy::Legacy::default();
        self.rtc.reset();
        self.pm.resume_by_rtc(now);
        self.rtc_irq = false;
        self.sci = false;
        true
    }

    /// An MMIO read the VMM owns, of any width; false if no device is
    /// there.
    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) -> bool {
        if let Some(t) = self
            .testdev
            .as_mut()
            .filter(|_| testdev::TestDev::claims_mmio(gpa))
        {
            t.mmio_read_bytes(gpa - testdev::MMIO_BASE, data);
            return true;
        }
        let v = if (ioapic::IOAPIC_BASE..ioapic::IOAPIC_BASE + ioapic::IOAPIC_SIZE).contains(&gpa) {
            u64::from(self.ioapic.read(gpa - ioapic::IOAPIC_BASE, data.len()))
        } else {
            return false;
        };
        let b = v.to_le_bytes();
        let n = data.len().min(8);
        data[..n].copy_from_slice(&b[..n]);
        true
    }

    /// An MMIO write the VMM owns, of any width; false if no device is
    /// there.
    pub fn mmio_write(&mut self, gpa: u64, data: &[u8]) -> bool {
        if let Some(t) = self
            .testdev
            .as_mut()
            .filter(|_| testdev::TestDev::claims_mmio(gpa))
        {
            t.mmio_write_bytes(gpa - testdev::MMIO_BASE, data);
            return true;
        }
        let mut b = [0u8; 8];
        let n = data.len().min(8);
        b[..n].copy_from_slice(&data[..n]);
        let v = u64::from_le_bytes(b);
        if (ioapic::IOAPIC_BASE..ioapic::IOAPIC_BASE + ioapic::IOAPIC_SIZE).contains(&gpa) {
            let msis = self
                .ioapic
                .write(gpa - ioapic::IOAPIC_BASE, data.len(), v as u32);
            self.msi.extend(msis);
        } else {
            return false;
        }
        true
    }

    /// A port read: `data` (1, 2 or 4 bytes) gets the device's answer.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        // The clock is read only for the devices that keep time: other
        // ports are the hot path of exit-heavy guests.
        let clock = self.clock.clone();
        let now = || clock.now();
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
            0x70 | 0x71 => {
                let v = self.rtc.read(port, now());
                self.sync_rtc_irq();
                // A wider access reads the index port's neighbour too.
                u32::from(v) | 0xffff_ff00
            }
            p if AcpiPm::claims(p) => {
                let t = now();
                let v = self.pm.read(p, data.len(), t);
                self.sync_sci(t);
                v
            }
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
        let clock = self.clock.clone();
        let now = || clock.now();
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
                        pit.port61_write(b[0], now());
                    } else {
                        pit.write(port, b[0], now());
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
            0x70 | 0x71 => {
                self.rtc.write(port, b[0], now());
                self.sync_rtc_irq();
            }
            p if AcpiPm::claims(p) => {
                let t = now();
                let action = self.pm.write(p, data.len(), v, t);
                self.sync_sci(t);
                match action {
                    PmAction::None => {}
                    PmAction::PowerOff => return Action::PowerOff,
                    PmAction::Reset => return Action::Reset,
                    PmAction::Suspend => {
                        self.suspend();
                        return Action::Suspend;
                    }
                }
            }
            _ => self.legacy.write(port, v, data.len()),
        }
        Action::Continue
    }
}

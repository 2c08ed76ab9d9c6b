//! Devices a VMM owns: the serial port, the exit ports, fw_cfg, and the
//! legacy chips test kernels poke at. Each answers port reads and writes;
//! `Bus` routes ports to them.

pub mod fw_cfg;
pub mod legacy;
pub mod serial;

use std::io::Write;

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
    /// Bytes of "Shutdown" seen so far on port 0x8900.
    shutdown_match: usize,
}

impl<W: Write> Bus<W> {
    pub fn new(out: W, fw_cfg: fw_cfg::FwCfg) -> Self {
        Bus {
            serial: serial::Uart::new(out),
            fw_cfg,
            legacy: legacy::Legacy::default(),
            shutdown_match: 0,
        }
    }

    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        let v: u32 = match port {
            0x3f8..=0x3ff => u32::from(self.serial.read(port - 0x3f8)),
            0x510 | 0x511 => self.fw_cfg.read(port, data.len()),
            0xf4..=0xf7 => 0,
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

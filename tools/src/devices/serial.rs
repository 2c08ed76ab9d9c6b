//! A 16550A UART (COM1): transmit goes to the host writer immediately;
//! the line status register always reports an empty transmitter, so guests
//! that poll THRE make progress. Receive is not connected (LSR.DR = 0).

use std::io::Write;

pub struct Uart<W: Write> {
    out: W,
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
}

const LSR_THRE: u8 = 1 << 5;
const LSR_TEMT: u8 = 1 << 6;

impl<W: Write> Uart<W> {
    pub fn new(out: W) -> Self {
        Uart {
            out,
            ier: 0,
            lcr: 0x03,
            mcr: 0,
            scr: 0,
            dll: 1,
            dlm: 0,
        }
    }

    fn dlab(&self) -> bool {
        self.lcr & 0x80 != 0
    }

    /// Read register `off` (0..=7).
    pub fn read(&mut self, off: u16) -> u8 {
        match off {
            0 if self.dlab() => self.dll,
            0 => 0,
            1 if self.dlab() => self.dlm,
            1 => self.ier,
            2 => 0xc1, // FIFOs enabled, no interrupt pending
            3 => self.lcr,
            4 => self.mcr,
            5 => LSR_THRE | LSR_TEMT,
            6 => 0xb0, // CTS, DSR, DCD
            _ => self.scr,
        }
    }

    pub fn write(&mut self, off: u16, v: u8) {
        match off {
            0 if self.dlab() => self.dll = v,
            // Loopback mode keeps bytes inside the UART.
            0 if self.mcr & 0x10 == 0 => {
                let _ = self.out.write_all(&[v]);
                if v == b'\n' {
                    let _ = self.out.flush();
                }
            }
            0 => {}
            1 if self.dlab() => self.dlm = v,
            1 => self.ier = v & 0x0f,
            3 => self.lcr = v,
            4 => self.mcr = v & 0x1f,
            7 => self.scr = v,
            _ => {}
        }
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmits_and_reports_empty() {
        let mut u = Uart::new(Vec::new());
        u.write(0, b'h');
        u.write(0, b'i');
        assert_eq!(u.read(5) & LSR_THRE, LSR_THRE);
        u.write(3, 0x80);
        u.write(0, 12);
        assert_eq!(u.read(0), 12);
        u.write(3, 0x03);
        assert_eq!(u.into_inner(), b"hi");
    }
}

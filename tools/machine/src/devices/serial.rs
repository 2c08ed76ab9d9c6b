//! A 16550A UART (COM1): transmit goes to the host writer immediately;
//! the line status register always reports an empty transmitter, so guests
//! that poll THRE make progress. Receive is connected when the VMM attaches
//! an input (`softvm run --stdin`): a thread reads it into a queue, LSR.DR
//! says whether a byte waits, and reading the receive buffer takes it.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

pub struct Uart<W: Write> {
    out: W,
    rx: Arc<Mutex<VecDeque<u8>>>,
    ier: u8,
    lcr: u8,
    mcr: Mcr,
    scr: u8,
    dll: u8,
    dlm: u8,
}

bitflags::bitflags! {
    /// The line status register (offset 5).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Lsr: u8 {
        /// Data ready: a received byte waits in the receive buffer.
        const DR = 1 << 0;
        /// Transmitter holding register empty.
        const THRE = 1 << 5;
        /// Transmitter empty (holding and shift registers).
        const TEMT = 1 << 6;
    }

    /// The modem control register (offset 4): the bits a 16550 has.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Mcr: u8 {
        const DTR = 1 << 0;
        const RTS = 1 << 1;
        const OUT1 = 1 << 2;
        const OUT2 = 1 << 3;
        /// Loopback: transmitted bytes stay inside the UART.
        const LOOP = 1 << 4;
    }
}

impl<W: Write> Uart<W> {
    pub fn new(out: W) -> Self {
        Uart {
            out,
            rx: Arc::new(Mutex::new(VecDeque::new())),
            ier: 0,
            lcr: 0x03,
            mcr: Mcr::empty(),
            scr: 0,
            dll: 1,
            dlm: 0,
        }
    }

    /// Send transmitted bytes to `out` from now on.
    pub fn set_output(&mut self, out: W) {
        self.out = out;
    }

    /// Feed the receiver from `input` (read on a thread of its own, so a
    /// guest never blocks the VMM waiting for a key).
    pub fn attach_input(&mut self, mut input: impl Read + Send + 'static) {
        let rx = self.rx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 {
                    break;
                }
                rx.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(&buf[..n]);
            }
        });
    }

    fn rx(&self) -> std::sync::MutexGuard<'_, VecDeque<u8>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dlab(&self) -> bool {
        self.lcr & 0x80 != 0
    }

    /// Read register `off` (0..=7).
    pub fn read(&mut self, off: u16) -> u8 {
        match off {
            0 if self.dlab() => self.dll,
            0 => self.rx().pop_front().unwrap_or(0),
            1 if self.dlab() => self.dlm,
            1 => self.ier,
            2 => 0xc1, // FIFOs enabled, no interrupt pending
            3 => self.lcr,
            4 => self.mcr.bits(),
            5 => {
                let mut lsr = Lsr::THRE | Lsr::TEMT;
                lsr.set(Lsr::DR, !self.rx().is_empty());
                lsr.bits()
            }
            6 => 0xb0, // CTS, DSR, DCD
            _ => self.scr,
        }
    }

    pub fn write(&mut self, off: u16, v: u8) {
        match off {
            0 if self.dlab() => self.dll = v,
            // Loopback mode keeps bytes inside the UART.
            0 if !self.mcr.contains(Mcr::LOOP) => {
                let _ = self.out.write_all(&[v]);
                if v == b'\n' {
                    let _ = self.out.flush();
                }
            }
            0 => {}
            1 if self.dlab() => self.dlm = v,
            1 => self.ier = v & 0x0f,
            3 => self.lcr = v,
            4 => self.mcr = Mcr::from_bits_truncate(v),
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

    const LSR_DR: u8 = Lsr::DR.bits();
    const LSR_THRE: u8 = Lsr::THRE.bits();

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

    #[test]
    fn receives_attached_input() {
        let mut u = Uart::new(Vec::new());
        assert_eq!(u.read(5) & LSR_DR, 0);
        u.attach_input(&b"ok"[..]);
        let t = std::time::Instant::now();
        while u.read(5) & LSR_DR == 0 {
            assert!(t.elapsed().as_secs() < 5, "input never arrived");
            std::thread::yield_now();
        }
        assert_eq!(u.read(0), b'o');
        while u.read(5) & LSR_DR == 0 {
            std::thread::yield_now();
        }
        assert_eq!(u.read(0), b'k');
        assert_eq!(u.read(5) & LSR_DR, 0);
    }
}

//! The ACPI fixed hardware of the machine's power-management block, at
//! the ports QEMU's PC has it (its PIIX4 PM base 0x600), as the FADT
//! describes it:
//!
//! - PM1a event block 0x600: PM1_STS (16 bits; write 1 to clear) and
//!   PM1_EN at 0x602. TMR_STS is set each time bit 23 of the PM timer
//!   changes; WAK_STS and RTC_STS when an RTC alarm wakes the machine
//!   from S3.
//! - PM1a control block 0x604 (16 bits): SCI_EN (bit 0), SLP_TYP (bits
//!   12:10), and SLP_EN (bit 13, reads 0): writing SLP_EN with SLP_TYP 0
//!   powers off (S5), 1 suspends to RAM (S3), 2 powers off (S4, as QEMU).
//!   These are the values the DSDT's `_S3_`, `_S4_` and `_S5_` give.
//! - PM timer 0x608 (32-bit reads): a 24-bit counter at 3.579545 MHz on
//!   the machine clock (the FADT leaves TMR_VAL_EXT clear, as QEMU does),
//!   counting from 0 when the machine starts.
//! - GPE0 block 0xafe0: two status bytes (write 1 to clear; nothing sets
//!   them) and two enable bytes.
//! - SMI command port 0xb2: writing ACPI_ENABLE (0xf1) sets SCI_EN,
//!   ACPI_DISABLE (0xf0) clears it (the machine has no SMM: the port acts
//!   directly, as QEMU's does); 0xb3 is the APM status scratch byte.
//! - Reset control 0xcf9 (the FADT's reset register, value 6): a byte
//!   write with bit 2 (RST_CPU) resets the machine.
//!
//! The SCI (IRQ 9, level, active high) is asserted while SCI_EN is set
//! and an enabled PM1 event (timer, global lock, power or sleep button,
//! RTC) or GPE0 event has its status bit set.

use bitflags::bitflags;
use std::time::Duration;

/// The PM1a event block (PM1_STS, then PM1_EN at +2).
pub const PM1A_EVT: u16 = 0x600;
/// The PM1a control block.
pub const PM1A_CNT: u16 = 0x604;
/// The PM timer.
pub const PM_TMR: u16 = 0x608;
/// The GPE0 block (status, then enable at +2).
pub const GPE0: u16 = 0xafe0;
/// Bytes of the GPE0 block.
pub const GPE0_LEN: u8 = 4;
/// The SMI command port and the values that switch ACPI mode.
pub const SMI_CMD: u16 = 0xb2;
pub const ACPI_ENABLE: u8 = 0xf1;
pub const ACPI_DISABLE: u8 = 0xf0;
/// The APM status port.
const APM_STS: u16 = 0xb3;
/// The reset control register and the value the FADT says resets.
pub const RESET_PORT: u16 = 0xcf9;
pub const RESET_VALUE: u8 = 0x06;
/// The SCI's ISA IRQ.
pub const SCI_IRQ: u8 = 9;
/// The PM timer's rate, Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// SLP_TYP values: S3 (suspend to RAM), S4 (treated as power-off, as
/// QEMU does) and S5 (soft off).
pub const SLP_TYP_S3: u16 = 1;
pub const SLP_TYP_S4: u16 = 2;
pub const SLP_TYP_S5: u16 = 0;

bitflags! {
    /// PM1_STS and PM1_EN bits (the enable bits sit at the same places).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Pm1: u16 {
        const TMR = 1 << 0;
        const BM = 1 << 4;
        const GBL = 1 << 5;
        const PWRBTN = 1 << 8;
        const SLPBTN = 1 << 9;
        const RTC = 1 << 10;
        const WAK = 1 << 15;
    }
}

/// The events that can raise an SCI.
const SCI_EVENTS: Pm1 = Pm1::TMR
    .union(Pm1::GBL)
    .union(Pm1::PWRBTN)
    .union(Pm1::SLPBTN)
    .union(Pm1::RTC);
/// PM1_CNT bits.
const CNT_SCI_EN: u16 = 1 << 0;
const CNT_GBL_RLS: u16 = 1 << 2;
const CNT_SLP_EN: u16 = 1 << 13;
/// Reset control bit 2: reset the CPU.
const RCR_RST_CPU: u8 = 1 << 2;
/// Reset control bit 1: system reset (kept as written).
const RCR_SYS_RST: u8 = 1 << 1;

/// What a write to the block asked the machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmAction {
    None,
    PowerOff,
    /// Enter S3.
    Suspend,
    Reset,
}

/// The power-management registers.
#[derive(Clone, Debug, Default)]
pub struct AcpiPm {
    sts: Pm1,
    en: Pm1,
    cnt: u16,
    /// TMR_STS is due once the timer's bit-23 period passes this one.
    tmr_period: u64,
    gpe_sts: [u8; 2],
    gpe_en: [u8; 2],
    apm_cnt: u8,
    apm_sts: u8,
    rcr: u8,
}

/// PM timer ticks at machine time `now` (not wrapped).
fn ticks(now: Duration) -> u64 {
    u64::try_from(now.as_nanos() * u128::from(PM_TIMER_HZ) / 1_000_000_000).unwrap_or(u64::MAX)
}

impl AcpiPm {
    pub fn new() -> AcpiPm {
        AcpiPm::default()
    }

    /// Whether `port` is one of the block's.
    pub fn claims(port: u16) -> bool {
        matches!(port, PM1A_EVT..=0x605 | PM_TMR..=0x60b | SMI_CMD | APM_STS | RESET_PORT)
            || (GPE0..GPE0 + u16::from(GPE0_LEN)).contains(&port)
    }

    /// The 24-bit PM timer value at `now`.
    pub fn timer(now: Duration) -> u32 {
        (ticks(now) & 0xff_ffff) as u32
    }

    /// PM1_STS with TMR_STS brought up to date.
    fn status(&self, now: Duration) -> Pm1 {
        let mut s = self.sts;
        if ticks(now) >> 23 > self.tmr_period {
            s |= Pm1::TMR;
        }
        s
    }

    fn read_byte(&self, port: u16, now: Duration) -> u8 {
        let lo_hi = |v: u16| v.to_le_bytes()[usize::from(port & 1)];
        match port {
            0x600 | 0x601 => lo_hi(self.status(now).bits()),
            0x602 | 0x603 => lo_hi(self.en.bits()),
            0x604 | 0x605 => lo_hi(self.cnt),
            PM_TMR..=0x60b => Self::timer(now).to_le_bytes()[usize::from(port - PM_TMR)],
            0xafe0 | 0xafe1 => self.gpe_sts[usize::from(port - GPE0)],
            0xafe2 | 0xafe3 => self.gpe_en[usize::from(port - GPE0 - 2)],
            SMI_CMD => self.apm_cnt,
            APM_STS => self.apm_sts,
            RESET_PORT => self.rcr,
            _ => 0xff,
        }
    }

    /// A port read of `size` bytes: each byte from its own register (bytes
    /// past the block read as all ones, as ports nothing answers).
    pub fn read(&self, port: u16, size: usize, now: Duration) -> u32 {
        let mut b = [0u8; 4];
        for (i, byte) in b.iter_mut().enumerate().take(size.min(4)) {
            let p = port.wrapping_add(i as u16);
            *byte = if Self::claims(p) {
                self.read_byte(p, now)
            } else {
                0xff
            };
        }
        u32::from_le_bytes(b)
    }

    fn write_byte(&mut self, port: u16, v: u8, now: Duration) -> PmAction {
        let shift = 8 * (port & 1);
        let word = u16::from(v) << shift;
        match port {
            0x600 | 0x601 => {
                let clear = Pm1::from_bits_truncate(word);
                let cur = self.status(now);
                if clear.contains(Pm1::TMR) {
                    self.tmr_period = ticks(now) >> 23;
                }
                self.sts = cur - clear;
            }
            0x602 | 0x603 => {
                let keep = if shift == 0 { 0xff00 } else { 0x00ff };
                let en = (self.en.bits() & keep) | word;
                self.en = Pm1::from_bits_truncate(en) & SCI_EVENTS;
            }
            0x604 | 0x605 => {
                let keep = if shift == 0 { 0xff00 } else { 0x00ff };
                let cnt = (self.cnt & keep) | word;
                self.cnt = cnt & !(CNT_SLP_EN | CNT_GBL_RLS);
                if shift == 8 && cnt & CNT_SLP_EN != 0 {
                    return match (cnt >> 10) & 7 {
                        SLP_TYP_S5 | SLP_TYP_S4 => PmAction::PowerOff,
                        SLP_TYP_S3 => PmAction::Suspend,
                        _ => PmAction::None,
                    };
                }
            }
            0xafe0 | 0xafe1 => self.gpe_sts[usize::from(port - GPE0)] &= !v,
            0xafe2 | 0xafe3 => self.gpe_en[usize::from(port - GPE0 - 2)] = v,
            SMI_CMD => {
                self.apm_cnt = v;
                match v {
                    ACPI_ENABLE => self.cnt |= CNT_SCI_EN,
                    ACPI_DISABLE => self.cnt &= !CNT_SCI_EN,
                    _ => {}
                }
            }
            APM_STS => self.apm_sts = v,
            RESET_PORT => {
                self.rcr = v & RCR_SYS_RST;
                if v & RCR_RST_CPU != 0 {
                    return PmAction::Reset;
                }
            }
            _ => {}
        }
        PmAction::None
    }

    /// A port write of `size` bytes, applied byte by byte in address order
    /// (the first action asked for wins).
    pub fn write(&mut self, port: u16, size: usize, val: u32, now: Duration) -> PmAction {
        let mut action = PmAction::None;
        // Only a byte access reaches the reset register (wider accesses
        // around 0xcf8 belong to the PCI configuration ports).
        if port == RESET_PORT && size != 1 {
            return action;
        }
        for (i, &b) in val.to_le_bytes().iter().enumerate().take(size.min(4)) {
            let p = port.wrapping_add(i as u16);
            if p == port || (Self::claims(p) && p != RESET_PORT) {
                let a = self.write_byte(p, b, now);
                if action == PmAction::None {
                    action = a;
                }
            }
        }
        action
    }

    /// The SCI line's level.
    pub fn sci(&self, now: Duration) -> bool {
        self.cnt & CNT_SCI_EN != 0
            && (!(self.status(now) & self.en & SCI_EVENTS).is_empty()
                || self
                    .gpe_sts
                    .iter()
                    .zip(&self.gpe_en)
                    .any(|(s, e)| s & e != 0))
    }

    /// Whether the timer's status can raise the SCI (SCI_EN and TMR_EN).
    pub fn timer_sci_armed(&self) -> bool {
        self.cnt & CNT_SCI_EN != 0 && self.en.contains(Pm1::TMR)
    }

    /// When TMR_STS will next raise the SCI, if it is enabled and not
    /// already pending.
    pub fn next_event(&self, now: Duration) -> Option<Duration> {
        if self.cnt & CNT_SCI_EN == 0
            || !self.en.contains(Pm1::TMR)
            || self.status(now).contains(Pm1::TMR)
        {
            return None;
        }
        let tick = u128::from(self.tmr_period + 1) << 23;
        let ns = (tick * 1_000_000_000).div_ceil(u128::from(PM_TIMER_HZ));
        Some(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)))
    }

    /// Whether an RTC alarm may wake the machine from S3 (RTC_EN).
    pub fn rtc_wake_enabled(&self) -> bool {
        self.en.contains(Pm1::RTC)
    }

    /// The reset that resumes from S3, woken by the RTC: the enables clear
    /// and the status says why (WAK_STS, RTC_STS). SCI_EN stays as it was,
    /// as firmware restores ACPI mode before the waking vector.
    pub fn resume_by_rtc(&mut self, now: Duration) {
        self.sts = Pm1::WAK | Pm1::RTC;
        self.en = Pm1::empty();
        self.cnt &= CNT_SCI_EN;
        self.tmr_period = ticks(now) >> 23;
        self.gpe_sts = [0; 2];
        self.gpe_en = [0; 2];
    }
}

#[cfg(test)]
mod tests;

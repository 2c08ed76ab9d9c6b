//! The MC146818-compatible real-time clock and CMOS RAM of a PC: index
//! port 0x70 (bit 7 is the NMI mask, not part of the index), data port
//! 0x71, 128 bytes.
//!
//! - **Time** (registers 0, 2, 4, 6, 7, 8, 9 and the century at 0x32,
//!   QEMU's): the date starts at the host's UTC time when the machine is
//!   built and advances with the machine clock, one update per second of
//!   the divider chain. Register B chooses BCD or binary (DM, bit 2) and
//!   24- or 12-hour format (bit 1; bit 7 of the hour is PM); the day of
//!   the week (1 = Sunday) follows the date.
//! - **Register A**: UIP (bit 7, read-only) is set for the 244 µs before
//!   each update, as on the chip: software that waits for UIP to rise and
//!   fall reads a stable second right after. DV (bits 6-4) 000-010 runs
//!   the divider; 110 or 111 holds it in reset, and the first update comes
//!   half a second after the reset is lifted; other values stop it. RS
//!   (bits 3-0) is the periodic rate: 32768 Hz >> (RS - 1), RS 1 and 2
//!   being 256 and 128 Hz.
//! - **Register B**: SET (bit 7) stops updates so software can write the
//!   time (and clears UIE), PIE, AIE, UIE (bits 6-4) enable the periodic,
//!   alarm and update-ended interrupts.
//! - **Register C** (read-only, cleared by reading): IRQF (7), PF (6),
//!   AF (5), UF (4). PF, AF and UF are set by their events whether or not
//!   enabled; IRQF when an enabled one is set, which raises IRQ 8 (through
//!   the I/O APIC) until register C is read.
//! - **Alarm**: seconds, minutes and hours alarm registers (1, 3, 5)
//!   compared after each update with the time registers in the current
//!   format; a value with its top two bits set (0xc0-0xff) matches any.
//!   An alarm with AIE set also wakes the machine from S3 (if PM1's RTC_EN
//!   allows it: that is the ACPI device's decision).
//! - **Register D**: VRT (bit 7), always set.
//! - **CMOS RAM**: the other bytes keep what is written. The machine
//!   fills in what QEMU's PC does: base and extended memory sizes
//!   (0x15-0x18, 0x30-0x31, 0x34-0x35, 0x5b-0x5d), the CPU count less one
//!   (0x5f), the equipment byte (0x14) and the checksum of 0x10-0x2d
//!   (0x2e-0x2f). On S3 entry the shutdown status (0x0f) becomes 0xfe,
//!   which firmware reads as "resume".

mod regs;

use super::calendar::DateTime;
use regs::{decode_hour, encode_hour, from_bcd, to_bcd};
use std::time::Duration;

/// Register indices.
pub mod reg {
    pub const SECONDS: u8 = 0x00;
    pub const SECONDS_ALARM: u8 = 0x01;
    pub const MINUTES: u8 = 0x02;
    pub const MINUTES_ALARM: u8 = 0x03;
    pub const HOURS: u8 = 0x04;
    pub const HOURS_ALARM: u8 = 0x05;
    pub const WEEKDAY: u8 = 0x06;
    pub const DAY: u8 = 0x07;
    pub const MONTH: u8 = 0x08;
    pub const YEAR: u8 = 0x09;
    pub const A: u8 = 0x0a;
    pub const B: u8 = 0x0b;
    pub const C: u8 = 0x0c;
    pub const D: u8 = 0x0d;
    pub const SHUTDOWN_STATUS: u8 = 0x0f;
    pub const CENTURY: u8 = 0x32;
}

/// Register A: update in progress.
pub const A_UIP: u8 = 0x80;
/// Register B bits.
pub const B_SET: u8 = 0x80;
pub const B_PIE: u8 = 0x40;
pub const B_AIE: u8 = 0x20;
pub const B_UIE: u8 = 0x10;
pub const B_SQWE: u8 = 0x08;
pub const B_DM_BINARY: u8 = 0x04;
pub const B_24H: u8 = 0x02;
/// Register C bits.
pub const C_IRQF: u8 = 0x80;
pub const C_PF: u8 = 0x40;
pub const C_AF: u8 = 0x20;
pub const C_UF: u8 = 0x10;
/// Register D: valid RAM and time.
pub const D_VRT: u8 = 0x80;

/// How long UIP is set before each update: 244 µs (8 cycles of the
/// 32.768 kHz time base).
pub const UIP_HOLD: Duration = Duration::from_nanos(8 * 1_000_000_000 / 32_768);
/// An alarm register value with both top bits set matches any time.
const ALARM_ANY: u8 = 0xc0;
const NANOS: u128 = 1_000_000_000;

/// The RTC and CMOS RAM. Every method takes the machine time `now`
/// ([`crate::clock::Clock::now`]).
#[derive(Clone, Debug)]
pub struct Rtc {
    index: u8,
    /// CMOS RAM; the time registers are kept here only while SET is on.
    ram: [u8; 128],
    /// The divider chain: its time was `div_base` at machine time `div_at`
    /// and advances with it while running; stopped, it stays `div_base`.
    div_running: bool,
    div_base: Duration,
    div_at: Duration,
    /// The calendar: `cal_secs` (Unix seconds) at divider second
    /// `cal_tick`, advancing one second per divider second while updates
    /// run (SET off, divider running).
    cal_secs: i64,
    cal_tick: u64,
    /// The last divider second and periodic tick whose events were taken.
    seen_tick: u64,
    seen_period: u128,
    /// An alarm interrupt happened (AF with AIE): a wake-up event for S3.
    alarm_wake: bool,
}

impl Rtc {
    /// An RTC showing `unix` (UTC seconds and nanoseconds since 1970) at
    /// machine time `now`, with the CMOS of a machine with `low_ram` bytes
    /// of RAM below 4 GiB, `high_ram` above, and `vcpus` CPUs.
    pub fn new(unix: Duration, now: Duration, low_ram: u64, high_ram: u64, vcpus: u32) -> Rtc {
        let secs = i64::try_from(unix.as_secs()).unwrap_or(i64::MAX / 2);
        let mut r = Rtc {
            index: 0,
            ram: [0; 128],
            div_running: true,
            // The divider's phase: its second boundaries fall on the host's.
            div_base: Duration::from_nanos(u64::from(unix.subsec_nanos())),
            div_at: now,
            cal_secs: secs,
            cal_tick: 0,
            seen_tick: 0,
            seen_period: 0,
            alarm_wake: false,
        };
        r.cal_tick = r.tick(now);
        r.seen_tick = r.cal_tick;
        r.ram[usize::from(reg::A)] = 0x26;
        r.ram[usize::from(reg::B)] = B_24H;
        r.ram[usize::from(reg::D)] = D_VRT;
        r.seen_period = r.period_index(now);
        regs::fill_cmos(&mut r.ram, low_ram, high_ram, vcpus);
        r
    }

    fn a(&self) -> u8 {
        self.ram[usize::from(reg::A)]
    }

    fn b(&self) -> u8 {
        self.ram[usize::from(reg::B)]
    }

    /// The divider chain's time.
    fn div_time(&self, now: Duration) -> Duration {
        if self.div_running {
            self.div_base + now.saturating_sub(self.div_at)
        } else {
            self.div_base
        }
    }

    /// Whole divider seconds.
    fn tick(&self, now: Duration) -> u64 {
        self.div_time(now).as_secs()
    }

    fn updating(&self) -> bool {
        self.div_running && self.b() & B_SET == 0
    }

    /// The calendar's Unix seconds now.
    fn secs(&self, now: Duration) -> i64 {
        if self.updating() {
            let ticks = self.tick(now).saturating_sub(self.cal_tick);
            self.cal_secs
                .saturating_add(i64::try_from(ticks).unwrap_or(i64::MAX))
        } else {
            self.cal_secs
        }
    }

    /// Freeze the calendar at its current value (before SET or a divider
    /// change).
    fn rebase(&mut self, now: Duration) {
        self.cal_secs = self.secs(now);
        self.cal_tick = self.tick(now);
    }

    /// Port 0x70 (write-only on a PC: reads all ones, as QEMU's) or 0x71.
    pub fn read(&mut self, port: u16, now: Duration) -> u8 {
        if port == 0x70 {
            return 0xff;
        }
        self.poll(now);
        let i = self.index;
        match i {
            reg::A => {
                let uip = self.updating()
                    && self.div_time(now).subsec_nanos()
                        >= (Duration::from_secs(1) - UIP_HOLD).subsec_nanos();
                (self.a() & !A_UIP) | if uip { A_UIP } else { 0 }
            }
            reg::C => {
                let c = self.ram[usize::from(reg::C)];
                self.ram[usize::from(reg::C)] = 0;
                c
            }
            reg::D => D_VRT,
            _ if is_time_reg(i) && self.b() & B_SET == 0 => self.time_reg(i, self.secs(now)),
            _ => self.ram[usize::from(i & 0x7f)],
        }
    }

    /// Port 0x70 (index; bit 7 masks NMIs and is not part of it) or 0x71.
    pub fn write(&mut self, port: u16, v: u8, now: Duration) {
        if port == 0x70 {
            self.index = v & 0x7f;
            return;
        }
        self.poll(now);
        let i = self.index;
        match i {
            reg::A => self.write_a(v, now),
            reg::B => self.write_b(v, now),
            reg::C | reg::D => {}
            _ if is_time_reg(i) => {
                if self.b() & B_SET == 0 {
                    // Written while running: the clock takes it at once.
                    self.store_time(self.secs(now));
                    self.ram[usize::from(i)] = v;
                    self.load_time(now);
                } else {
                    self.ram[usize::from(i)] = v;
                }
            }
            _ => self.ram[usize::from(i)] = v,
        }
    }

    fn write_a(&mut self, v: u8, now: Duration) {
        let dv = |a: u8| (a >> 4) & 7;
        let (old, new) = (dv(self.a()), dv(v));
        let runs = |d: u8| d <= 2;
        self.rebase(now);
        if runs(old) && !runs(new) {
            self.div_base = self.div_time(now);
            self.div_running = false;
        } else if !runs(old) && runs(new) {
            if old >= 6 {
                // Leaving divider reset: the first update comes 500 ms
                // later, and the calendar's second starts over.
                self.div_base = Duration::from_millis(500);
            }
            self.div_at = now;
            self.div_running = true;
        }
        self.ram[usize::from(reg::A)] = v & !A_UIP;
        self.cal_tick = self.tick(now);
        self.seen_tick = self.cal_tick;
        self.seen_period = self.period_index(now);
    }

    fn write_b(&mut self, mut v: u8, now: Duration) {
        let set_was = self.b() & B_SET != 0;
        if v & B_SET != 0 {
            v &= !B_UIE;
            if !set_was {
                self.rebase(now);
                self.store_time(self.cal_secs);
            }
        }
        self.ram[usize::from(reg::B)] = v;
        if set_was && v & B_SET == 0 {
            self.load_time(now);
        }
        self.update_irqf();
    }

    /// Write the calendar into the time registers in the current format.
    fn store_time(&mut self, secs: i64) {
        for i in [
            reg::SECONDS,
            reg::MINUTES,
            reg::HOURS,
            reg::WEEKDAY,
            reg::DAY,
            reg::MONTH,
            reg::YEAR,
            reg::CENTURY,
        ] {
            self.ram[usize::from(i)] = self.time_reg(i, secs);
        }
    }

    /// Restart the calendar from the time registers (as written).
    fn load_time(&mut self, now: Duration) {
        let b = self.b();
        let dec = |x: u8| {
            if b & B_DM_BINARY != 0 {
                x
            } else {
                from_bcd(x)
            }
        };
        let r = |i: u8| self.ram[usize::from(i)];
        let dt = DateTime {
            year: i64::from(dec(r(reg::CENTURY))) * 100 + i64::from(dec(r(reg::YEAR))),
            month: u32::from(dec(r(reg::MONTH))),
            day: u32::from(dec(r(reg::DAY))),
            hour: decode_hour(r(reg::HOURS), b),
            minute: u32::from(dec(r(reg::MINUTES))),
            second: u32::from(dec(r(reg::SECONDS))),
            weekday: 0,
        };
        self.cal_secs = dt.to_unix();
        self.cal_tick = self.tick(now);
        self.seen_tick = self.cal_tick;
    }

    /// Time register `i` for the calendar at `secs`, in the current format.
    fn time_reg(&self, i: u8, secs: i64) -> u8 {
        let b = self.b();
        let t = DateTime::from_unix(secs);
        let enc = |x: u32| {
            // Every field is below 100 (the year modulo 100).
            let x = (x % 100) as u8;
            if b & B_DM_BINARY != 0 {
                x
            } else {
                to_bcd(x)
            }
        };
        let century = u32::try_from(t.year.div_euclid(100)).unwrap_or(0);
        let year = u32::try_from(t.year.rem_euclid(100)).unwrap_or(0);
        match i {
            reg::SECONDS => enc(t.second),
            reg::MINUTES => enc(t.minute),
            reg::HOURS => encode_hour(t.hour, b),
            reg::WEEKDAY => enc(t.weekday + 1),
            reg::DAY => enc(t.day),
            reg::MONTH => enc(t.month),
            reg::YEAR => enc(year),
            _ => enc(century),
        }
    }

    /// The periodic interrupt's period in 32.768 kHz cycles, if any.
    fn period(&self) -> Option<u128> {
        let rs = u32::from(self.a() & 0x0f);
        match rs {
            0 => None,
            1 | 2 => Some(1 << (rs + 6)),
            _ => Some(1 << (rs - 1)),
        }
    }

    fn period_index(&self, now: Duration) -> u128 {
        match self.period() {
            Some(p) => self.div_time(now).as_nanos() * 32_768 / NANOS / p,
            None => 0,
        }
    }

    /// Whether the alarm registers match the calendar at `secs`.
    fn alarm_matches(&self, secs: i64) -> bool {
        [
            (reg::SECONDS_ALARM, reg::SECONDS),
            (reg::MINUTES_ALARM, reg::MINUTES),
            (reg::HOURS_ALARM, reg::HOURS),
        ]
        .iter()
        .all(|&(alarm, time)| {
            let a = self.ram[usize::from(alarm)];
            a & ALARM_ANY == ALARM_ANY || a == self.time_reg(time, secs)
        })
    }

    /// Take the events up to `now`: update-ended and alarm at each
    /// update, periodic ticks; set IRQF when an enabled one happened.
    pub fn poll(&mut self, now: Duration) {
        let tick = self.tick(now);
        let mut flags = 0;
        if self.updating() && tick > self.seen_tick {
            flags |= C_UF;
            // An alarm matches at least once a day: a day of updates is
            // all that needs checking.
            let first = (self.seen_tick + 1).max(tick.saturating_sub(86_400));
            let base = self.cal_secs - i64::try_from(self.cal_tick).unwrap_or(0);
            if (first..=tick).any(|k| self.alarm_matches(base + i64::try_from(k).unwrap_or(0))) {
                flags |= C_AF;
            }
        }
        self.seen_tick = tick;
        if self.div_running {
            let p = self.period_index(now);
            if p > self.seen_period {
                flags |= C_PF;
            }
            self.seen_period = p;
        }
        if flags & C_AF != 0 && self.b() & B_AIE != 0 {
            self.alarm_wake = true;
        }
        self.ram[usize::from(reg::C)] |= flags;
        self.update_irqf();
    }

    fn update_irqf(&mut self) {
        let c = self.ram[usize::from(reg::C)];
        let b = self.b();
        let enabled = (c & C_PF != 0 && b & B_PIE != 0)
            || (c & C_AF != 0 && b & B_AIE != 0)
            || (c & C_UF != 0 && b & B_UIE != 0);
        if enabled {
            self.ram[usize::from(reg::C)] |= C_IRQF;
        }
    }

    /// Whether any of the periodic, alarm and update interrupts is enabled
    /// (otherwise nothing needs [`Rtc::poll`] between register accesses).
    pub fn interrupts_enabled(&self) -> bool {
        self.b() & (B_PIE | B_AIE | B_UIE) != 0
    }

    /// Whether an alarm interrupt can come (AIE on, updates running): the
    /// one RTC event that wakes a machine from S3.
    pub fn alarm_armed(&self) -> bool {
        self.b() & B_AIE != 0 && self.updating()
    }

    /// The level of IRQ 8: IRQF until register C is read.
    pub fn irq(&self) -> bool {
        self.ram[usize::from(reg::C)] & C_IRQF != 0
    }

    /// Whether an alarm interrupt happened since the last call.
    pub fn take_alarm_wake(&mut self) -> bool {
        std::mem::take(&mut self.alarm_wake)
    }

    /// The machine time of the next event that could raise IRQ 8 (or
    /// wake the machine), if one is enabled.
    pub fn next_event(&self, now: Duration) -> Option<Duration> {
        let b = self.b();
        let d = self.div_time(now);
        let mut next: Option<Duration> = None;
        if self.updating() && b & (B_AIE | B_UIE) != 0 {
            next = Some(now + (Duration::from_secs(d.as_secs() + 1) - d));
        }
        if let (true, true, Some(p)) = (self.div_running, b & B_PIE != 0, self.period()) {
            let n = self.period_index(now) + 1;
            let at = u64::try_from((n * p * NANOS).div_ceil(32_768)).unwrap_or(u64::MAX);
            let t = now + Duration::from_nanos(at).saturating_sub(d);
            next = Some(next.map_or(t, |x| x.min(t)));
        }
        next
    }

    /// S3 entry: firmware finds shutdown status 0xfe and resumes.
    pub fn suspend(&mut self) {
        self.ram[usize::from(reg::SHUTDOWN_STATUS)] = 0xfe;
    }

    /// The system reset that resumes from S3: the interrupt enables and
    /// flags clear (as the chip's RESET pin does); the time keeps running.
    pub fn reset(&mut self) {
        self.ram[usize::from(reg::B)] &= !(B_PIE | B_AIE | B_UIE | B_SQWE);
        self.ram[usize::from(reg::C)] = 0;
        self.alarm_wake = false;
    }
}

fn is_time_reg(i: u8) -> bool {
    matches!(
        i,
        reg::SECONDS
            | reg::MINUTES
            | reg::HOURS
            | reg::WEEKDAY
            | reg::DAY
            | reg::MONTH
            | reg::YEAR
            | reg::CENTURY
    )
}

#[cfg(test)]
mod tests;

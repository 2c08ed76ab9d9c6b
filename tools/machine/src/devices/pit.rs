//! The Intel 8254 programmable interval timer at ports 0x40-0x43, with
//! channel 2's gate and output on port 0x61 (bits 0 and 5), as on a PC.
//!
//! The model is a pure function of time: every call takes `now`, the time
//! elapsed since the machine started (from a host clock or a virtual one),
//! and the counters are computed from it at the 8254's input clock of
//! 1.193182 MHz. Nothing runs in the background, so tests are
//! deterministic. Time never runs backwards: a `now` earlier than one seen
//! before is treated as that earlier-seen time.
//!
//! What is modelled (8254 datasheet):
//! - all six counting modes (0 interrupt on terminal count, 1 hardware
//!   retriggerable one-shot, 2 rate generator, 3 square wave, 4 software
//!   triggered strobe, 5 hardware triggered strobe; control-word modes 6 and
//!   7 are 2 and 3), binary and BCD counting;
//! - access modes LSB only, MSB only, LSB then MSB; the counter latch
//!   command; the read-back command (count and/or status latch);
//! - the count is loaded into the counting element on the clock after it is
//!   written; a count of 0 means 65536 (10000 in BCD);
//! - gates: channels 0 and 1 have their gate tied high; channel 2's gate is
//!   port 0x61 bit 0. In modes 0 and 4 a low gate suspends counting; in
//!   modes 2 and 3 it stops counting and forces OUT high, and the rising
//!   gate reloads the count; in modes 1 and 5 the rising gate triggers.
//! - a new count written while mode 2 or 3 is counting takes effect at the
//!   end of the current period (the datasheet says the end of the current
//!   half-cycle for mode 3; the difference is at most half a period);
//! - in mode 0 with LSB-then-MSB access, writing the first byte stops the
//!   count and drives OUT low until the second byte arrives.
//!
//! Reset state, as a PC BIOS (and QEMU) leaves the chip: channels 0 and 1 in
//! mode 3 with count 0 (65536: about 18.2 Hz), counting from time 0;
//! channel 2 in mode 3 with count 0 and its gate low.
//!
//! IRQ0: the rising edges of channel 0's OUT are the timer interrupts.
//! [`Pit::irq0_pending`] counts them. On a PC, ISA IRQ0 reaches I/O APIC
//! pin 2 (see `ioapic::isa_irq_to_gsi`), edge-triggered: the caller should
//! pulse pin 2 once per pending interrupt (or once for any non-zero count,
//! coalescing them as a busy CPU would). [`Pit::next_irq0`] tells when the
//! next one is due, for a CPU waiting in HLT.
//!
//! Port 0x61 (system control port B): bits 0-3 read back as written (timer
//! 2 gate, speaker data enable, parity and I/O check enables); bit 4 toggles
//! every 15.085 us like the DRAM refresh signal; bit 5 is channel 2's OUT;
//! bits 6-7 read 0.

// Until the exit loop uses every item (the integrator wires it in), the

use std::time::Duration;

/// The 8254's input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// Port 0x61 bit 4 toggles at each DRAM refresh request, every 15.085 us.
const REFRESH_NS: u128 = 15_085;

/// Time is clamped to this many ticks (about 122,000 years), which keeps
/// all tick arithmetic far from overflow.
const MAX_TICK: u64 = 1 << 62;

/// Number of PIT clock ticks in `now`.
fn ticks_at(now: Duration) -> u64 {
    let t = now.as_nanos() * u128::from(PIT_HZ) / 1_000_000_000;
    u64::try_from(t).unwrap_or(u64::MAX).min(MAX_TICK)
}

/// The earliest time at which `ticks_at` reaches `tick`.
fn time_of_tick(tick: u64) -> Duration {
    let ns = (u128::from(tick) * 1_000_000_000).div_ceil(u128::from(PIT_HZ));
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Lsb,
    Msb,
    Word,
}

#[derive(Clone, Copy, Debug)]
enum Run {
    /// Not counting; `ce` is the counting element as a guest reads it
    /// (numeric, below the modulus); `armed`: a one-shot event (mode 0's
    /// terminal count, mode 4's strobe) is still ahead when counting resumes.
    Stopped { ce: u32, armed: bool },
    /// Counting since tick `t0`, at which the counting element held `c0`
    /// (1..=modulus; the modulus stands for 0). For modes 2 and 3, `c0` is
    /// the period and `t0` the start of a period. `armed` as above.
    Running { t0: u64, c0: u32, armed: bool },
}

#[derive(Clone, Debug)]
struct Channel {
    /// Bits 5:0 of the last control word, as the status byte reports them.
    ctrl: u8,
    /// Counting mode 0-5.
    mode: u8,
    access: Access,
    bcd: bool,
    /// The count register: the last count written, as a distance
    /// (1..=modulus).
    cr: u32,
    /// A count has been written since the last control word.
    has_count: bool,
    /// Modes 2/3: a new count `.1` to take over at tick `.0`.
    next: Option<(u64, u32)>,
    run: Run,
    /// OUT while stopped.
    out_idle: bool,
    gate: bool,
    /// The tick at which the count register was (or will be) loaded into
    /// the counting element; None while no count is waiting to be loaded
    /// by a trigger. Drives the status byte's NULL COUNT bit.
    loaded_at: Option<u64>,
    /// LSB-then-MSB writes: the LSB is in, waiting for the MSB.
    write_lsb: Option<u8>,
    /// LSB-then-MSB reads of the live counter: the MSB is next.
    read_msb_next: bool,
    /// Latched count, and whether its MSB is next (LSB-then-MSB access).
    latch: Option<(u16, bool)>,
    /// Latched status byte.
    status: Option<u8>,
    /// OUT rising edges have been counted up to this tick.
    last: u64,
    /// OUT rising edges counted and not yet taken.
    edges: u64,
}

impl Channel {
    /// A channel in mode 3 with count 0, counting from tick 0 if `gate`.
    fn reset(gate: bool) -> Self {
        let mut ch = Channel {
            ctrl: 0x36,
            mode: 3,
            access: Access::Word,
            bcd: false,
            cr: 65_536,
            has_count: true,
            next: None,
            run: Run::Stopped {
                ce: 0,
                armed: false,
            },
            out_idle: true,
            gate,
            loaded_at: Some(0),
            write_lsb: None,
            read_msb_next: false,
            latch: None,
            status: None,
            last: 0,
            edges: 0,
        };
        if gate {
            ch.run = Run::Running {
                t0: 0,
                c0: ch.cr,
                armed: true,
            };
        }
        ch
    }

    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            65_536
        }
    }

    /// Bring the channel's bookkeeping up to `tick`: count OUT rising
    /// edges and apply a pending periodic count change.
    fn advance(&mut self, tick: u64) {
        if let Some((at, n)) = self.next {
            if at <= tick {
                self.count_edges(at);
                if let Run::Running { .. } = self.run {
                    self.run = Run::Running {
                        t0: at,
                        c0: n,
                        armed: true,
                    };
                }
                self.next = None;
            }
        }
        self.count_edges(tick);
    }

    fn count_edges(&mut self, tick: u64) {
        if tick <= self.last {
            return;
        }
        if let Run::Running { t0, c0, armed } = self.run {
            if tick >= t0 {
                let d1 = self.last.saturating_sub(t0);
                let d2 = tick - t0;
                let n = u64::from(c0);
                let e = match self.mode {
                    2 | 3 => d2 / n - d1 / n,
                    0 | 1 => u64::from(armed && d1 < n && n <= d2),
                    _ => u64::from(armed && d1 < n + 1 && n < d2),
                };
                self.edges = self.edges.saturating_add(e);
            }
        }
        self.last = tick;
    }

    /// The counting element (numeric) and OUT at `tick`, which must not be
    /// before the last `advance`.
    fn state(&self, tick: u64) -> (u32, bool) {
        let (t0, c0, armed) = match self.run {
            Run::Stopped { ce, .. } => return (ce, self.out_idle),
            Run::Running { t0, c0, armed } => (t0, c0, armed),
        };
        let m = u64::from(self.modulus());
        let n = u64::from(c0);
        if tick < t0 {
            // Written but not yet loaded.
            return ((n % m) as u32, self.mode != 0);
        }
        let d = tick - t0;
        let (ce, out) = match self.mode {
            0 | 1 => ((n + m - d % m) % m, !(armed && d < n)),
            4 | 5 => ((n + m - d % m) % m, !(armed && d == n)),
            2 => {
                let p = d % n;
                (n - p, p != n - 1)
            }
            _ => {
                let p = d % n;
                let high = n.div_ceil(2);
                let q = if p < high { p } else { p - high };
                // Odd counts load N-1; both halves count down by two.
                let start = if n % 2 == 0 { n } else { n - 1 };
                (start.saturating_sub(2 * q), p < high)
            }
        };
        ((ce % m) as u32, out)
    }

    fn out(&self, tick: u64) -> bool {
        self.state(tick).1
    }

    fn status_byte(&self, tick: u64) -> u8 {
        let null = match self.loaded_at {
            None => true,
            Some(at) => tick < at,
        };
        (u8::from(self.out(tick)) << 7) | (u8::from(null) << 6) | self.ctrl
    }

    fn encode(&self, v: u32) -> u16 {
        if self.bcd {
            let v = v % 10_000;
            let d = [v % 10, (v / 10) % 10, (v / 100) % 10, v / 1000];
            (d[0] | d[1] << 4 | d[2] << 8 | d[3] << 12) as u16
        } else {
            v as u16
        }
    }

    /// A raw 16-bit count as a distance in 1..=modulus.
    fn decode(&self, raw: u16) -> u32 {
        let v = if self.bcd {
            let r = u32::from(raw);
            ((r & 0xf) + ((r >> 4) & 0xf) * 10 + ((r >> 8) & 0xf) * 100 + (r >> 12) * 1000) % 10_000
        } else {
            u32::from(raw)
        };
        if v == 0 {
            self.modulus()
        } else {
            v
        }
    }

    fn control(&mut self, tick: u64, val: u8) {
        let access = match (val >> 4) & 3 {
            0 => {
                // Counter latch command; a second one before the first is
                // read is ignored.
                if self.latch.is_none() {
                    self.latch_count(tick);
                }
                return;
            }
            1 => Access::Lsb,
            2 => Access::Msb,
            _ => Access::Word,
        };
        let ce = self.state(tick).0;
        let mode = (val >> 1) & 7;
        self.mode = if mode >= 6 { mode - 4 } else { mode };
        self.ctrl = val & 0x3f;
        self.access = access;
        self.bcd = val & 1 != 0;
        self.has_count = false;
        self.next = None;
        self.loaded_at = None;
        self.run = Run::Stopped {
            ce: ce % self.modulus(),
            armed: false,
        };
        self.out_idle = self.mode != 0;
        self.write_lsb = None;
        self.read_msb_next = false;
        self.latch = None;
        self.status = None;
    }

    fn latch_count(&mut self, tick: u64) {
        let v = self.encode(self.state(tick).0);
        self.latch = Some((v, false));
    }

    fn write(&mut self, tick: u64, val: u8) {
        let raw = match self.access {
            Access::Lsb => u16::from(val),
            Access::Msb => u16::from(val) << 8,
            Access::Word => match self.write_lsb.take() {
                Some(lsb) => u16::from(lsb) | u16::from(val) << 8,
                None => {
                    self.write_lsb = Some(val);
                    if self.mode == 0 {
                        // The first byte stops the count; OUT goes low.
                        let ce = self.state(tick).0;
                        self.run = Run::Stopped { ce, armed: false };
                        self.out_idle = false;
                    }
                    return;
                }
            },
        };
        self.load(tick, raw);
    }

    /// A complete count written at `tick`.
    fn load(&mut self, tick: u64, raw: u16) {
        let n = self.decode(raw);
        self.cr = n;
        self.has_count = true;
        match self.mode {
            0 | 4 => {
                self.next = None;
                self.loaded_at = Some(tick + 1);
                self.out_idle = self.mode != 0;
                self.run = if self.gate {
                    Run::Running {
                        t0: tick + 1,
                        c0: n,
                        armed: true,
                    }
                } else {
                    Run::Stopped {
                        ce: n % self.modulus(),
                        armed: true,
                    }
                };
            }
            // Modes 1 and 5 wait for a gate trigger.
            1 | 5 => self.loaded_at = None,
            _ => match self.run {
                Run::Running { t0, c0, .. } if tick >= t0 => {
                    let period = u64::from(c0);
                    let at = t0 + ((tick - t0) / period + 1) * period;
                    self.next = Some((at, n));
                    self.loaded_at = Some(at);
                }
                Run::Running { t0, .. } => {
                    // The previous count is not even loaded yet.
                    self.run = Run::Running {
                        t0,
                        c0: n,
                        armed: true,
                    };
                }
                Run::Stopped { .. } => {
                    if self.gate {
                        self.start(tick);
                    }
                }
            },
        }
    }

    /// Load the count register on the next clock and count from there.
    fn start(&mut self, tick: u64) {
        self.next = None;
        self.loaded_at = Some(tick + 1);
        self.run = Run::Running {
            t0: tick + 1,
            c0: self.cr,
            armed: true,
        };
    }

    fn set_gate(&mut self, tick: u64, gate: bool) {
        if gate == self.gate {
            return;
        }
        self.gate = gate;
        match (self.mode, gate) {
            (0 | 4, false) => {
                if let Run::Running { t0, c0, armed } = self.run {
                    let (ce, out) = self.state(tick);
                    let passed = tick >= t0 && tick - t0 >= u64::from(c0);
                    self.run = Run::Stopped {
                        ce,
                        armed: armed && !passed,
                    };
                    self.out_idle = out;
                }
            }
            (0 | 4, true) => {
                if let Run::Stopped { ce, armed } = self.run {
                    if self.has_count && self.write_lsb.is_none() {
                        let c0 = if ce == 0 { self.modulus() } else { ce };
                        self.run = Run::Running {
                            t0: tick,
                            c0,
                            armed,
                        };
                    }
                }
            }
            (2 | 3, false) => {
                let ce = self.state(tick).0;
                self.run = Run::Stopped { ce, armed: false };
                self.next = None;
                self.out_idle = true;
            }
            // Modes 1 and 5: the rising gate triggers; modes 2 and 3: it
            // reloads the count.
            (1 | 2 | 3 | 5, true) if self.has_count => self.start(tick),
            _ => {}
        }
    }

    fn read(&mut self, tick: u64) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        if let Some((v, msb_next)) = self.latch {
            let [lo, hi] = v.to_le_bytes();
            return match self.access {
                Access::Lsb => {
                    self.latch = None;
                    lo
                }
                Access::Msb => {
                    self.latch = None;
                    hi
                }
                Access::Word if msb_next => {
                    self.latch = None;
                    hi
                }
                Access::Word => {
                    self.latch = Some((v, true));
                    lo
                }
            };
        }
        let [lo, hi] = self.encode(self.state(tick).0).to_le_bytes();
        match self.access {
            Access::Lsb => lo,
            Access::Msb => hi,
            Access::Word => {
                self.read_msb_next = !self.read_msb_next;
                if self.read_msb_next {
                    lo
                } else {
                    hi
                }
            }
        }
    }

    /// When OUT next rises after `tick`, in ticks.
    fn next_edge(&self, tick: u64) -> Option<u64> {
        let Run::Running { t0, c0, armed } = self.run else {
            return None;
        };
        let d = tick.saturating_sub(t0);
        let n = u64::from(c0);
        let at = match self.mode {
            2 | 3 => (d / n + 1) * n,
            0 | 1 if armed && d < n => n,
            4 | 5 if armed && d < n + 1 => n + 1,
            _ => return None,
        };
        t0.checked_add(at)
    }
}

/// The 8254 and port 0x61.
#[derive(Clone, Debug)]
pub struct Pit {
    ch: [Channel; 3],
    /// The latest tick seen.
    tick: u64,
    /// Port 0x61 bits 0-3.
    port61: u8,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// The PIT in its PC reset state (see the module documentation).
    pub fn new() -> Self {
        Pit {
            ch: [
                Channel::reset(true),
                Channel::reset(true),
                Channel::reset(false),
            ],
            tick: 0,
            port61: 0,
        }
    }

    /// Whether channel 0 cannot interrupt until a guest programs it: it is
    /// stopped with nothing waiting to load and no edge pending. The VMM
    /// then skips reading the host clock after every exit.
    pub fn irq0_quiet(&self) -> bool {
        let ch = &self.ch[0];
        matches!(ch.run, Run::Stopped { .. })
            && ch.loaded_at.is_none()
            && ch.next.is_none()
            && ch.edges == 0
    }

    /// Move time forward to `now` and bring every channel up to date.
    fn sync(&mut self, now: Duration) -> u64 {
        self.tick = self.tick.max(ticks_at(now));
        for ch in &mut self.ch {
            ch.advance(self.tick);
        }
        self.tick
    }

    /// A read of port 0x40-0x43 (0x43, the write-only control register,
    /// reads 0xff; other ports too).
    pub fn read(&mut self, port: u16, now: Duration) -> u8 {
        let tick = self.sync(now);
        match port {
            0x40..=0x42 => self.ch[usize::from(port - 0x40)].read(tick),
            _ => 0xff,
        }
    }

    /// A write of port 0x40-0x43; other ports are ignored.
    pub fn write(&mut self, port: u16, val: u8, now: Duration) {
        let tick = self.sync(now);
        match port {
            0x40..=0x42 => self.ch[usize::from(port - 0x40)].write(tick, val),
            0x43 => {
                let sc = usize::from(val >> 6);
                if sc < 3 {
                    self.ch[sc].control(tick, val);
                } else {
                    self.read_back(tick, val);
                }
            }
            _ => {}
        }
    }

    /// The read-back command: bit 5 clear latches the counts, bit 4 clear
    /// latches the status, bits 1-3 select channels 0-2.
    fn read_back(&mut self, tick: u64, val: u8) {
        for (i, ch) in self.ch.iter_mut().enumerate() {
            if val & (2 << i) == 0 {
                continue;
            }
            if val & 0x20 == 0 && ch.latch.is_none() {
                ch.latch_count(tick);
            }
            if val & 0x10 == 0 && ch.status.is_none() {
                ch.status = Some(ch.status_byte(tick));
            }
        }
    }

    /// A read of port 0x61.
    pub fn port61_read(&mut self, now: Duration) -> u8 {
        let tick = self.sync(now);
        let refresh = (now.as_nanos() / REFRESH_NS) & 1 == 1;
        self.port61 | (u8::from(refresh) << 4) | (u8::from(self.ch[2].out(tick)) << 5)
    }

    /// A write of port 0x61: bits 0-3 are kept; bit 0 is channel 2's gate.
    pub fn port61_write(&mut self, val: u8, now: Duration) {
        let tick = self.sync(now);
        self.port61 = val & 0x0f;
        self.ch[2].set_gate(tick, val & 1 != 0);
    }

    /// How many channel-0 interrupts (rising edges of OUT0, ISA IRQ0) have
    /// happened since the last call; saturates at `u32::MAX`.
    pub fn irq0_pending(&mut self, now: Duration) -> u32 {
        self.sync(now);
        let ch = &mut self.ch[0];
        let n = u32::try_from(ch.edges).unwrap_or(u32::MAX);
        ch.edges -= u64::from(n);
        n
    }

    /// When the next channel-0 interrupt is due (a time after `now`), or
    /// None if the channel will not interrupt without being reprogrammed.
    /// Interrupts already pending are not considered.
    pub fn next_irq0(&mut self, now: Duration) -> Option<Duration> {
        let tick = self.sync(now);
        self.ch[0].next_edge(tick).map(time_of_tick)
    }

    /// The output of channel `channel` (0-2; others read false).
    #[cfg_attr(not(test), allow(dead_code))] // device API the tests use; the VMM does not need it yet
    pub fn out(&mut self, channel: usize, now: Duration) -> bool {
        let tick = self.sync(now);
        self.ch.get(channel).is_some_and(|ch| ch.out(tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time of PIT tick `n`.
    fn t(n: u64) -> Duration {
        time_of_tick(n)
    }

    /// Program `channel` with a control word `mode`/LSB-then-MSB/binary and
    /// `count`, at tick `at`.
    fn program(pit: &mut Pit, channel: u16, mode: u8, count: u16, at: u64) {
        pit.write(0x43, ((channel as u8) << 6) | 0x30 | (mode << 1), t(at));
        let [lo, hi] = count.to_le_bytes();
        pit.write(0x40 + channel, lo, t(at));
        pit.write(0x40 + channel, hi, t(at));
    }

    fn read_word(pit: &mut Pit, channel: u16, at: u64) -> u16 {
        let lo = pit.read(0x40 + channel, t(at));
        let hi = pit.read(0x40 + channel, t(at));
        u16::from_le_bytes([lo, hi])
    }

    fn latch(pit: &mut Pit, channel: u16, at: u64) -> u16 {
        pit.write(0x43, (channel as u8) << 6, t(at));
        read_word(pit, channel, at)
    }

    #[test]
    fn clock_conversion() {
        assert_eq!(ticks_at(Duration::from_secs(1)), PIT_HZ);
        assert_eq!(ticks_at(Duration::from_millis(10)), 11_931);
        for n in [0, 1, 2, 1000, PIT_HZ, 123_456_789] {
            assert_eq!(ticks_at(time_of_tick(n)), n);
            if n > 0 {
                assert_eq!(ticks_at(time_of_tick(n) - Duration::from_nanos(1)), n - 1);
            }
        }
        // Absurd times do not overflow.
        assert_eq!(ticks_at(Duration::MAX), MAX_TICK);
        let _ = time_of_tick(u64::MAX);
    }

    #[test]
    fn mode0_out_rises_after_n_plus_one_ticks() {
        let mut pit = Pit::new();
        pit.write(0x43, 0x30, t(100)); // channel 0, LSB/MSB, mode 0
        assert!(!pit.out(0, t(100)), "control word sets OUT low");
        pit.write(0x40, 10, t(100));
        pit.write(0x40, 0, t(100));
        // Loaded on the next clock (tick 101), then 10 decrements.
        assert!(!pit.out(0, t(110)));
        assert!(pit.out(0, t(111)), "high N+1 ticks after the write");
        assert!(pit.out(0, t(100_000)), "stays high");
        // Exactly one interrupt.
        assert_eq!(pit.irq0_pending(t(100_000)), 1);
        assert_eq!(pit.irq0_pending(t(10_000_000)), 0);
    }

    #[test]
    fn mode0_counter_values_and_wraparound() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 0, 1000, 0);
        assert_eq!(latch(&mut pit, 0, 1), 1000);
        assert_eq!(latch(&mut pit, 0, 501), 500);
        assert_eq!(latch(&mut pit, 0, 1001), 0);
        // After terminal count the counter keeps going: 0 -> 0xffff.
        assert_eq!(latch(&mut pit, 0, 1002), 0xffff);
        assert!(pit.out(0, t(1002)));
    }

    #[test]
    fn mode0_interrupt_when_polled_late_and_next_irq0() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 0, 500, 0);
        assert_eq!(pit.next_irq0(t(0)), Some(t(501)));
        assert_eq!(pit.irq0_pending(t(500)), 0);
        assert_eq!(pit.irq0_pending(t(501)), 1);
        assert_eq!(pit.next_irq0(t(600)), None);
    }

    #[test]
    fn mode0_first_byte_stops_counting() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 0, 100, 0);
        pit.write(0x40, 50, t(50)); // LSB only: counting stops, OUT low
        let held = latch(&mut pit, 0, 50);
        assert_eq!(latch(&mut pit, 0, 5000), held);
        assert!(!pit.out(0, t(5000)));
        assert_eq!(pit.irq0_pending(t(5000)), 0);
        pit.write(0x40, 0, t(5000)); // MSB: count 50 loaded at 5001
        assert!(!pit.out(0, t(5050)));
        assert!(pit.out(0, t(5051)));
        assert_eq!(pit.irq0_pending(t(6000)), 1);
    }

    #[test]
    fn mode2_periodic_irq_count() {
        let mut pit = Pit::new();
        // 1193 ticks per interrupt: about 1000 Hz.
        program(&mut pit, 0, 2, 1193, 0);
        pit.irq0_pending(t(0));
        // Ten seconds: 11_931_820 ticks since the load at tick 1.
        let end = 10 * PIT_HZ;
        assert_eq!(pit.irq0_pending(t(end)), ((end - 1) / 1193) as u32);
        assert_eq!((end - 1) / 1193, 10_001);
        // Polling often gives the same total.
        let mut pit2 = Pit::new();
        program(&mut pit2, 0, 2, 1193, 0);
        pit2.irq0_pending(t(0));
        let mut total = 0;
        for k in 1..=1000 {
            total += pit2.irq0_pending(t(end * k / 1000));
        }
        assert_eq!(total, 10_001);
    }

    #[test]
    fn mode2_out_and_counter() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 2, 4, 0);
        // Loaded at tick 1: 4 3 2 1 (OUT low at 1) 4 3 ...
        let seq: Vec<(u16, bool)> = (1..=9)
            .map(|k| (latch(&mut pit, 0, k), pit.out(0, t(k))))
            .collect();
        assert_eq!(
            seq,
            [
                (4, true),
                (3, true),
                (2, true),
                (1, false),
                (4, true),
                (3, true),
                (2, true),
                (1, false),
                (4, true)
            ]
        );
        assert_eq!(pit.next_irq0(t(9)), Some(t(13)));
    }

    #[test]
    fn mode3_square_wave_and_irq_count() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 3, 10, 0);
        let outs: Vec<bool> = (1..=11).map(|k| pit.out(0, t(k))).collect();
        assert_eq!(
            outs,
            [true, true, true, true, true, false, false, false, false, false, true]
        );
        // Even count: decrements by two.
        let mut pit = Pit::new();
        program(&mut pit, 0, 3, 10, 0);
        assert_eq!(latch(&mut pit, 0, 1), 10);
        assert_eq!(latch(&mut pit, 0, 2), 8);
        assert_eq!(latch(&mut pit, 0, 6), 10);
        // Odd count: high (N+1)/2, low (N-1)/2; counts N-1, N-3, ...
        let mut pit = Pit::new();
        program(&mut pit, 1, 3, 5, 0);
        let outs: Vec<bool> = (1..=6).map(|k| pit.out(1, t(k))).collect();
        assert_eq!(outs, [true, true, true, false, false, true]);
        let mut pit = Pit::new();
        program(&mut pit, 1, 3, 5, 0);
        let counts: Vec<u16> = (1..=6).map(|k| latch(&mut pit, 1, k)).collect();
        assert_eq!(counts, [4, 2, 0, 4, 2, 4]);
        // The 18.2 Hz reset setting of channel 0, reprogrammed: count 0.
        let mut pit = Pit::new();
        program(&mut pit, 0, 3, 0, 0);
        pit.irq0_pending(t(0));
        let one_minute = 60 * PIT_HZ;
        assert_eq!(
            pit.irq0_pending(t(one_minute)),
            ((one_minute - 1) / 65_536) as u32
        );
        assert_eq!((one_minute - 1) / 65_536, 1092);
    }

    #[test]
    fn reset_state_ticks_at_18_2_hz() {
        let mut pit = Pit::new();
        assert_eq!(pit.irq0_pending(Duration::from_secs(10)), 182);
        // Mode 6 in a control word is mode 2.
        pit.write(0x43, 0x3c, Duration::from_secs(10));
        pit.write(0x43, 0xe2, Duration::from_secs(10)); // read-back status ch0
        assert_eq!(pit.read(0x40, Duration::from_secs(10)), 0xc0 | 0x3c);
    }

    #[test]
    fn new_periodic_count_takes_effect_at_period_end() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 2, 100, 0);
        pit.irq0_pending(t(0));
        // At tick 151 (50 into the second period), switch to 10.
        pit.write(0x40, 10, t(151));
        pit.write(0x40, 0, t(151));
        // Old period runs until 201; then every 10 ticks.
        assert_eq!(latch(&mut pit, 0, 200), 1);
        assert_eq!(latch(&mut pit, 0, 201), 10);
        assert_eq!(pit.irq0_pending(t(301)), 2 + 10);
    }

    #[test]
    fn latch_holds_a_stable_value() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 2, 50_000, 0);
        pit.write(0x43, 0x00, t(10_001)); // latch at 10_001: 40_000
                                          // A second latch command before reading is ignored.
        pit.write(0x43, 0x00, t(20_000));
        assert_eq!(pit.read(0x40, t(30_000)), (40_000u16 & 0xff) as u8);
        assert_eq!(pit.read(0x40, t(45_000)), (40_000u16 >> 8) as u8);
        // Released: the next reads are live.
        assert_eq!(read_word(&mut pit, 0, 45_001), 5_000);
    }

    #[test]
    fn access_modes_lsb_msb_word() {
        let mut pit = Pit::new();
        // LSB only: count 0x80, MSB implied 0.
        pit.write(0x43, 0x10 | (2 << 1), t(0));
        pit.write(0x40, 0x80, t(0));
        assert_eq!(pit.read(0x40, t(1)), 0x80);
        assert_eq!(pit.read(0x40, t(1)), 0x80, "LSB mode reads LSB every time");
        assert_eq!(pit.read(0x40, t(2)), 0x7f);
        // MSB only: count 0x1200.
        let mut pit = Pit::new();
        pit.write(0x43, 0x20 | (2 << 1), t(10));
        pit.write(0x40, 0x12, t(10));
        assert_eq!(pit.read(0x40, t(11)), 0x12);
        assert_eq!(pit.read(0x40, t(11 + 0x100)), 0x11);
        pit.write(0x43, 0x00, t(11 + 0x200)); // latch 0x1000
        assert_eq!(pit.read(0x40, t(11 + 0x300)), 0x10, "latched MSB");
        assert_eq!(pit.read(0x40, t(11 + 0x300)), 0x0f, "latch released");
        // Word: LSB first, then MSB, alternating.
        let mut pit = Pit::new();
        program(&mut pit, 0, 2, 0x1234, 100);
        assert_eq!(pit.read(0x40, t(101)), 0x34);
        assert_eq!(pit.read(0x40, t(101)), 0x12);
        assert_eq!(pit.read(0x40, t(102)), 0x33);
        assert_eq!(pit.read(0x40, t(102)), 0x12);
        // A new control word resets the flip-flop.
        assert_eq!(pit.read(0x40, t(103)), 0x32);
        program(&mut pit, 0, 2, 0x5678, 200);
        assert_eq!(pit.read(0x40, t(201)), 0x78);
        assert_eq!(pit.read(0x40, t(201)), 0x56);
    }

    #[test]
    fn read_back_command() {
        let mut pit = Pit::new();
        program(&mut pit, 2, 0, 1000, 0); // gate low: loaded, not counting
        pit.write(0x43, 0xc8, t(5)); // count and status of channel 2
                                     // Status first: OUT low, count loaded, LSB/MSB, mode 0, binary.
        assert_eq!(pit.read(0x42, t(5)), 0x30);
        assert_eq!(read_word(&mut pit, 2, 5), 1000);
        // Status only, right after a control word: NULL COUNT.
        pit.write(0x43, 0xb6, t(6)); // channel 2, mode 3
        pit.write(0x43, 0xe8, t(6));
        assert_eq!(pit.read(0x42, t(6)), 0x80 | 0x40 | 0x36);
        // Count only, several channels.
        program(&mut pit, 0, 2, 300, 10);
        program(&mut pit, 1, 2, 400, 10);
        pit.write(0x43, 0xd6, t(111)); // count of channels 0 and 1
        assert_eq!(read_word(&mut pit, 0, 500), 200);
        assert_eq!(read_word(&mut pit, 1, 500), 300);
    }

    #[test]
    fn bcd_counting() {
        let mut pit = Pit::new();
        pit.write(0x43, 0x31, t(0)); // channel 0, LSB/MSB, mode 0, BCD
        pit.write(0x40, 0x00, t(0));
        pit.write(0x40, 0x10, t(0)); // 1000 decimal
        assert_eq!(latch(&mut pit, 0, 1), 0x1000);
        assert_eq!(latch(&mut pit, 0, 2), 0x0999);
        assert!(!pit.out(0, t(1000)));
        assert!(pit.out(0, t(1001)));
        assert_eq!(latch(&mut pit, 0, 1002), 0x9999);
    }

    #[test]
    fn channel2_gate_and_out_on_port61() {
        // Linux's PIT calibration: gate on, speaker off, mode 0 on
        // channel 2, poll port 0x61 bit 5.
        let mut pit = Pit::new();
        assert_eq!(
            pit.port61_read(t(0)) & 0x21,
            0x20,
            "reset: gate low, OUT2 high"
        );
        pit.port61_write(0x01, t(0));
        pit.write(0x43, 0xb0, t(0));
        assert_eq!(pit.port61_read(t(0)) & 0x20, 0, "mode 0 drives OUT low");
        let count = 11_931u16; // 10 ms
        pit.write(0x42, count as u8, t(0));
        pit.write(0x42, (count >> 8) as u8, t(0));
        assert_eq!(pit.port61_read(t(11_931)) & 0x20, 0);
        assert_eq!(pit.port61_read(t(11_932)) & 0x20, 0x20);
        assert_eq!(pit.port61_read(Duration::from_millis(11)) & 0x21, 0x21);
        // The write-only control port reads 0xff.
        assert_eq!(pit.read(0x43, t(0)), 0xff);
    }

    #[test]
    fn channel2_gate_suspends_mode0() {
        let mut pit = Pit::new();
        pit.write(0x43, 0xb0, t(0));
        pit.write(0x42, 100, t(0));
        pit.write(0x42, 0, t(0));
        // Gate low: loaded but not counting.
        assert_eq!(latch(&mut pit, 2, 1000), 100);
        pit.port61_write(0x01, t(1000));
        assert_eq!(latch(&mut pit, 2, 1040), 60);
        pit.port61_write(0x00, t(1040));
        assert_eq!(latch(&mut pit, 2, 5000), 60);
        assert_eq!(pit.port61_read(t(5000)) & 0x20, 0);
        pit.port61_write(0x01, t(5000));
        assert_eq!(pit.port61_read(t(5059)) & 0x20, 0);
        assert_eq!(pit.port61_read(t(5060)) & 0x20, 0x20);
    }

    #[test]
    fn channel2_gate_in_mode2_and_mode3() {
        let mut pit = Pit::new();
        pit.port61_write(0x01, t(0));
        program(&mut pit, 2, 3, 100, 0);
        assert_eq!(
            pit.port61_read(t(60)) & 0x20,
            0,
            "second half of the square wave"
        );
        pit.port61_write(0x00, t(60));
        assert_eq!(
            pit.port61_read(t(61)) & 0x20,
            0x20,
            "low gate forces OUT high"
        );
        assert_eq!(latch(&mut pit, 2, 1000), latch(&mut pit, 2, 2000));
        // Rising gate reloads: a full period from the next clock.
        pit.port61_write(0x01, t(2000));
        assert_eq!(latch(&mut pit, 2, 2001), 100);
        assert_eq!(pit.port61_read(t(2050)) & 0x20, 0x20);
        assert_eq!(pit.port61_read(t(2051)) & 0x20, 0);
        assert_eq!(pit.port61_read(t(2101)) & 0x20, 0x20);
    }

    #[test]
    fn channel2_mode1_one_shot_triggered_by_gate() {
        let mut pit = Pit::new();
        program(&mut pit, 2, 1, 50, 0);
        assert!(pit.out(2, t(1000)), "waits for a trigger");
        pit.port61_write(0x01, t(1000));
        assert!(!pit.out(2, t(1001)));
        assert!(!pit.out(2, t(1050)));
        assert!(pit.out(2, t(1051)));
        // Retrigger.
        pit.port61_write(0x00, t(2000));
        pit.port61_write(0x01, t(2000));
        assert!(!pit.out(2, t(2010)));
    }

    #[test]
    fn mode4_strobe() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 4, 20, 0);
        pit.irq0_pending(t(0));
        assert!(pit.out(0, t(20)));
        assert!(!pit.out(0, t(21)), "one clock low at terminal count");
        assert!(pit.out(0, t(22)));
        assert_eq!(pit.irq0_pending(t(1000)), 1);
    }

    #[test]
    fn port61_bits() {
        let mut pit = Pit::new();
        pit.port61_write(0xff, t(0));
        let v = pit.port61_read(Duration::ZERO);
        assert_eq!(v & 0xcf, 0x0f, "bits 0-3 kept, 6-7 zero");
        // Refresh bit toggles every 15.085 us.
        let a = pit.port61_read(Duration::from_nanos(15_000)) & 0x10;
        let b = pit.port61_read(Duration::from_nanos(15_100)) & 0x10;
        let c = pit.port61_read(Duration::from_nanos(30_200)) & 0x10;
        assert_eq!((a, b, c), (0, 0x10, 0));
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut pit = Pit::new();
        program(&mut pit, 0, 2, 1000, 0);
        let a = latch(&mut pit, 0, 500);
        let b = latch(&mut pit, 0, 10);
        assert_eq!(a, b);
    }

    #[test]
    fn arbitrary_input_does_not_panic() {
        let mut pit = Pit::new();
        let mut x: u32 = 0x1234_5678;
        let mut now = 0u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            now += u64::from(x % 97);
            let at = t(now);
            let port = [0x40, 0x41, 0x42, 0x43, 0x44][(x >> 8) as usize % 5];
            let val = (x >> 16) as u8;
            match (x >> 24) % 6 {
                0 => {
                    pit.read(port, at);
                }
                1 | 2 => pit.write(port, val, at),
                3 => pit.port61_write(val, at),
                4 => {
                    pit.port61_read(at);
                }
                _ => {
                    pit.irq0_pending(at);
                    pit.next_irq0(at);
                }
            }
        }
        pit.irq0_pending(Duration::MAX);
        pit.next_irq0(Duration::MAX);
        pit.read(0x40, Duration::MAX);
    }
}

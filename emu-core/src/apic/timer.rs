//! The local APIC timer on a virtual clock (SDM 11.5.4).
//!
//! Time is in TSC ticks. In one-shot and periodic modes the timer counts
//! bus clocks divided by the divide configuration; it is represented by the
//! absolute TSC time of its next expiry, from which the current count is
//! derived, so nothing has to tick.

/// LVT timer mode (bits 18:17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerMode {
    OneShot,
    Periodic,
    TscDeadline,
}

impl TimerMode {
    /// Decode LVT timer bits 18:17. The reserved encoding 11 behaves as
    /// one-shot in this model.
    pub fn from_lvt(lvt: u32) -> TimerMode {
        match (lvt >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }
}

/// The divisor selected by the divide configuration register: bits 0, 1
/// and 3 form a 3-bit value v; 0b111 divides by 1, otherwise by 2^(v+1).
pub(crate) fn divisor(tdcr: u32) -> u64 {
    let v = (tdcr & 3) | ((tdcr >> 1) & 4);
    if v == 7 {
        1
    } else {
        2u64 << v
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Timer {
    /// Initial count register.
    pub initial: u32,
    /// Divide configuration register (bits 0, 1, 3).
    pub tdcr: u32,
    /// One-shot/periodic: counting towards `deadline`.
    pub armed: bool,
    /// One-shot/periodic: TSC time of the next expiry.
    pub deadline: u64,
    /// IA32_TSC_DEADLINE (0 = disarmed).
    pub tsc_deadline: u64,
    /// Expiries since creation (all modes, masked or not).
    pub expirations: u64,
}

impl Timer {
    /// TSC ticks per count.
    fn tick(&self, tsc_per_bus: u64) -> u64 {
        divisor(self.tdcr).saturating_mul(tsc_per_bus.max(1))
    }

    fn period(&self, tsc_per_bus: u64) -> u64 {
        (self.initial as u64).saturating_mul(self.tick(tsc_per_bus))
    }

    /// Disarm everything (mode change, reset).
    pub fn disarm(&mut self) {
        self.initial = 0;
        self.armed = false;
        self.deadline = 0;
        self.tsc_deadline = 0;
    }

    /// A write of the initial count register at time `now` (not in
    /// TSC-deadline mode): 0 stops the timer, anything else (re)starts it.
    pub fn write_initial(&mut self, val: u32, now: u64, tsc_per_bus: u64) {
        self.initial = val;
        if val == 0 {
            self.armed = false;
        } else {
            self.armed = true;
            self.deadline = now.saturating_add(self.period(tsc_per_bus));
        }
    }

    /// The current count register at time `now` (one-shot/periodic).
    pub fn current(&self, now: u64, tsc_per_bus: u64) -> u32 {
        if !self.armed {
            return 0;
        }
        let remaining = self.deadline.saturating_sub(now);
        let tick = self.tick(tsc_per_bus);
        // The count drops by one at the end of each tick: N at the start,
        // N - k after k whole ticks.
        let count = remaining.div_ceil(tick);
        count.min(self.initial as u64) as u32
    }

    /// A write of the divide configuration at time `now`: the remaining
    /// count is kept and continues at the new rate.
    pub fn write_divide(&mut self, val: u32, now: u64, tsc_per_bus: u64) {
        let count = self.current(now, tsc_per_bus) as u64;
        self.tdcr = val & 0xb;
        if self.armed {
            self.deadline = now.saturating_add(count.saturating_mul(self.tick(tsc_per_bus)));
        }
    }

    /// When the timer expires next in `mode`, if it is armed.
    pub fn next_deadline(&self, mode: TimerMode) -> Option<u64> {
        match mode {
            TimerMode::TscDeadline => (self.tsc_deadline != 0).then_some(self.tsc_deadline),
            _ => self.armed.then_some(self.deadline),
        }
    }

    /// Bring the timer to time `now` and return the number of expiries that
    /// happened in (previous now, now].
    pub fn advance(&mut self, mode: TimerMode, now: u64, tsc_per_bus: u64) -> u64 {
        let n = match mode {
            TimerMode::TscDeadline => {
                if self.tsc_deadline != 0 && now >= self.tsc_deadline {
                    // SDM 11.5.4.1: the timer disarms itself and clears the MSR.
                    self.tsc_deadline = 0;
                    1
                } else {
                    0
                }
            }
            TimerMode::OneShot => {
                if self.armed && now >= self.deadline {
                    self.armed = false;
                    1
                } else {
                    0
                }
            }
            TimerMode::Periodic => {
                if self.armed && now >= self.deadline {
                    let period = self.period(tsc_per_bus).max(1);
                    // Keep the phase: the expiries are deadline + k * period.
                    let k = (now - self.deadline) / period + 1;
                    self.deadline = self.deadline.saturating_add(k.saturating_mul(period));
                    k
                } else {
                    0
                }
            }
        };
        self.expirations = self.expirations.saturating_add(n);
        n
    }
}

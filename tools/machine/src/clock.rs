//! The machine clock: the time source of the devices that keep time (the
//! PIT, the ACPI PM timer, the RTC).
//!
//! A machine does not have one clock yet. The devices here follow the host:
//! [`HostClock`] reads the host's monotonic clock, so a guest that waits
//! 10 ms on the PIT or the PM timer waits 10 ms of real time. The vCPUs'
//! TSC and APIC timer run on emu-core's virtual clock instead (its rate is
//! decided in emu-core, see `MachineConfig::clock`). Devices see time only
//! through the [`Clock`] trait, so that when the machine gets a single
//! clock, swapping the source is one line; and an embedder that wants
//! reproducible device time (a differential test, a teaching trace) hands
//! the bus a [`ManualClock`] that moves only when told.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of machine time: how long the machine has been running.
/// Monotonic: a later call never returns less.
pub trait Clock: Send + Sync + Debug {
    /// Time since the machine started.
    fn now(&self) -> Duration;
}

/// Machine time from the host's monotonic clock (`Instant`), counted from
/// the clock's creation.
#[derive(Debug)]
pub struct HostClock {
    start: Instant,
}

impl HostClock {
    /// A clock reading 0 now.
    pub fn new() -> HostClock {
        HostClock {
            start: Instant::now(),
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock reading 0.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Move the clock forward by `d` (saturating at about 584 years).
    pub fn advance(&self, d: Duration) {
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(n))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_clock_follows_host_time() {
        let c = HostClock::new();
        let a = c.now();
        std::thread::sleep(Duration::from_millis(20));
        let b = c.now();
        assert!(b - a >= Duration::from_millis(20), "{a:?} {b:?}");
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let c = ManualClock::new();
        assert_eq!(c.now(), Duration::ZERO);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), Duration::from_millis(1500));
        c.advance(Duration::MAX);
        assert_eq!(c.now(), Duration::from_nanos(u64::MAX));
    }
}

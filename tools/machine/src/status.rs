//! How a run ends, and the process statuses that stand for it. Odd
//! statuses belong to the guest (the exit port gives `(v << 1) | 1`);
//! softvm's own outcomes are even, so a test runner never mistakes an
//! emulator problem for a guest's pass (1) or skip (77).

/// The guest powered off (ACPI or the Bochs "Shutdown" port).
pub const POWER_OFF: i32 = 0;
/// Bad command line, or the input file could not be read or loaded.
pub const USAGE: i32 = 2;
/// The guest triple-faulted.
pub const TRIPLE_FAULT: i32 = 4;
/// The guest executed an instruction softvm does not implement.
pub const UNSUPPORTED: i32 = 6;
/// `--max-instructions` ran out.
pub const BUDGET: i32 = 8;
/// The guest halted with interrupts disabled and nothing to wake it.
pub const DEAD_HALT: i32 = 10;
/// A host-side failure inside softvm (a bug: please report it).
pub const INTERNAL: i32 = 12;
/// The guest reset the machine (the ACPI reset register 0xcf9, or an S3
/// wake with no waking vector): softvm ends the run, as QEMU does with
/// `-no-reboot`.
pub const RESET: i32 = 14;
/// `--timeout` expired, as timeout(1) reports it.
pub const TIMEOUT: i32 = 124;

/// The full status of a guest write of `v` to the isa-debug-exit port:
/// `(v << 1) | 1`, up to 33 bits. A process can only report its low 8
/// bits (QEMU's does just that); a test runner that knows the full value
/// judges it ([`End::status`]).
pub fn guest_exit_status(v: u32) -> u64 {
    (u64::from(v) << 1) | 1
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The guest wrote this value to the isa-debug-exit port.
    GuestExit(u32),
    /// The guest powered off.
    PowerOff,
    TripleFault,
    /// An instruction softvm does not implement.
    Unsupported,
    /// The instruction budget ran out.
    Budget,
    /// Every vCPU halted with nothing that could wake it.
    DeadHalt,
    /// A failure inside softvm.
    Internal,
    /// The timeout expired.
    Timeout,
    /// The guest reset the machine.
    Reset,
}

impl End {
    /// The full status (for a guest exit, possibly above 255).
    pub fn status(self) -> u64 {
        match self {
            End::GuestExit(v) => guest_exit_status(v),
            other => u64::from(other.own_status().unsigned_abs()),
        }
    }

    /// The status a process reports: the full status for softvm's own
    /// outcomes, its low 8 bits for a guest exit (as QEMU's process).
    pub fn process_status(self) -> i32 {
        match self {
            End::GuestExit(v) => i32::from((guest_exit_status(v) & 0xff) as u8),
            other => other.own_status(),
        }
    }

    /// Whether a process cannot report the full status.
    pub fn is_truncated(self) -> bool {
        self.status() > 0xff
    }

    fn own_status(self) -> i32 {
        match self {
            End::GuestExit(_) => 1,
            End::PowerOff => POWER_OFF,
            End::TripleFault => TRIPLE_FAULT,
            End::Unsupported => UNSUPPORTED,
            End::Budget => BUDGET,
            End::DeadHalt => DEAD_HALT,
            End::Internal => INTERNAL,
            End::Timeout => TIMEOUT,
            End::Reset => RESET,
        }
    }
}

/// What a full status means, in a few words (for reports).
pub fn meaning(status: u64) -> String {
    match i32::try_from(status) {
        Ok(POWER_OFF) => "guest powered off".into(),
        Ok(USAGE) => "load error".into(),
        Ok(TRIPLE_FAULT) => "triple fault".into(),
        Ok(UNSUPPORTED) => "unsupported instruction".into(),
        Ok(BUDGET) => "instruction budget exhausted".into(),
        Ok(DEAD_HALT) => "guest halted forever".into(),
        Ok(INTERNAL) => "internal error in softvm".into(),
        Ok(TIMEOUT) => "timeout".into(),
        Ok(RESET) => "guest reset the machine".into(),
        Ok(77) => "guest skipped (exit 38)".into(),
        _ if status % 2 == 1 => format!("guest exit {}", status >> 1),
        _ => format!("unknown status {status}"),
    }
}

/// How a run ended, with softvm's one-line diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub end: End,
    /// softvm's one-line diagnostic for stderr (none for guest exits).
    pub message: Option<String>,
    /// Instructions retired by all vCPUs.
    pub instructions: u64,
}

impl Outcome {
    /// The full status, see [`End::status`].
    pub fn status(&self) -> u64 {
        self.end.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_statuses_are_even_guest_ones_odd() {
        for e in [
            End::PowerOff,
            End::TripleFault,
            End::Unsupported,
            End::Budget,
            End::DeadHalt,
            End::Internal,
            End::Timeout,
            End::Reset,
        ] {
            assert_eq!(e.status() % 2, 0, "{e:?}");
            assert_eq!(e.status(), e.process_status() as u64);
        }
        assert_eq!(USAGE % 2, 0);
        assert_eq!(End::GuestExit(0).status(), 1);
        assert_eq!(End::GuestExit(0x2a).status(), 85);
        assert_eq!(End::GuestExit(38).status(), 77);
    }

    #[test]
    fn exit_values_of_0x80_and_more_keep_their_full_status() {
        let e = End::GuestExit(0x80);
        assert_eq!(e.status(), 0x101);
        assert_eq!(e.process_status(), 1, "a process keeps QEMU's 8 bits");
        assert!(e.is_truncated());
        assert!(!End::GuestExit(0x7f).is_truncated());
        assert_eq!(End::GuestExit(u32::MAX).status(), 0x1_ffff_ffff);
        assert_eq!(meaning(0x101), "guest exit 128");
    }
}

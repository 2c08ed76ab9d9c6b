//! Process exit statuses. Odd statuses belong to the guest (the exit port
//! gives `(v << 1) | 1`); softvm's own outcomes are even, so a test runner
//! never mistakes an emulator problem for a guest's pass (1) or skip (77).

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
/// `--timeout` expired, as timeout(1) reports it.
pub const TIMEOUT: i32 = 124;

/// Status for a guest write of `v` to the isa-debug-exit port.
pub fn guest_exit(v: u32) -> i32 {
    (((v << 1) | 1) & 0xff) as i32
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_statuses_are_even_guest_ones_odd() {
        for s in [
            super::POWER_OFF,
            super::USAGE,
            super::TRIPLE_FAULT,
            super::UNSUPPORTED,
            super::BUDGET,
            super::DEAD_HALT,
            super::INTERNAL,
            super::TIMEOUT,
        ] {
            assert_eq!(s % 2, 0);
        }
        assert_eq!(super::guest_exit(0), 1);
        assert_eq!(super::guest_exit(0x2a), 85);
        assert_eq!(super::guest_exit(38), 77);
    }
}

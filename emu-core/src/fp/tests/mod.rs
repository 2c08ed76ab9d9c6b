//! Tests of the soft-float core. On x86-64 hosts most compare with the
//! host's own FPU (SSE and x87), bit for bit, flags included.

mod gen;
#[cfg(target_arch = "x86_64")]
mod host_sse;
#[cfg(target_arch = "x86_64")]
mod host_x87;
#[cfg(target_arch = "x86_64")]
mod sse;
mod unit;
#[cfg(target_arch = "x86_64")]
mod x87;

use std::fmt::{Debug, Display};

/// Random cases per instruction: 40 000 (a few seconds in all with
/// `--release`), or `SOFTVM_FP_CASES` for a deeper run.
pub fn cases() -> usize {
    std::env::var("SOFTVM_FP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000)
}

/// Counts the cases compared and keeps the first differences.
#[derive(Default)]
pub struct Report {
    cases: u64,
    failed: u64,
    shown: Vec<String>,
    per_name: Vec<(String, u64)>,
    /// How many cases raised each flag IE..PE, and how many raised one
    /// that was unmasked: evidence the random operands reach them.
    seen: [u64; 7],
}

impl Report {
    pub fn check<T: PartialEq + Debug>(&mut self, name: &str, want: T, got: T, what: impl Display) {
        self.cases += 1;
        if want != got {
            self.failed += 1;
            match self.per_name.iter_mut().find(|(n, _)| n == name) {
                Some((_, k)) => *k += 1,
                None => self.per_name.push((name.to_string(), 1)),
            }
            if self.shown.iter().filter(|s| s.starts_with(name)).count() < 4 {
                self.shown
                    .push(format!("{name}: {what}: soft {want:x?} host {got:x?}"));
            }
        }
    }

    /// Tally the flags one case raised (`unmasked`: the flags not masked).
    pub fn saw(&mut self, flags: crate::fp::Flags, unmasked: u8) {
        for i in 0..6 {
            self.seen[i] += u64::from(flags.bits() >> i & 1);
        }
        self.seen[6] += u64::from(flags.bits() & unmasked != 0);
    }

    pub fn finish(self, what: &str) {
        println!(
            "{what}: {} cases compared with the host, {} differ",
            self.cases, self.failed
        );
        let s = self.seen;
        println!(
            "  flags raised: IE {} DE {} ZE {} OE {} UE {} PE {}, unmasked {}",
            s[0], s[1], s[2], s[3], s[4], s[5], s[6]
        );
        for s in &self.shown {
            println!("  {s}");
        }
        assert!(
            self.failed == 0,
            "{what}: {} of {} differ: {:?}",
            self.failed,
            self.cases,
            self.per_name
        );
    }
}

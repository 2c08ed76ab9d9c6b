//! Differential tests: every instruction form emu-core implements, run on
//! random inputs natively on the host CPU and in emu-core, compared on all
//! 16 GPRs, RIP, the defined flags and the whole data buffer.
//!
//! Environment:
//! - `SOFTVM_SEED=<n>` (decimal or 0x-hex) reproduces a run; `random`
//!   picks a fresh seed. The default is fixed so CI is deterministic.
//! - `SOFTVM_CASES=<n>` cases per form (default 96 in release, 48 in debug).
//! - `SOFTVM_ONLY=<Code>,<Code>` restricts the run to some forms.
//! - `SOFTVM_UNDEFINED_FLAGS=0` compares only the flags the manuals define.
//!   By default the undefined ones are compared too: emu-core computes them
//!   as the processors of the host's vendor do.

use emu_core::testing::{defined_flags, implemented_codes};
use iced_x86::Code;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Instant;
use testsuite::gen::{self, diff, GenError, Rng};
use testsuite::native::NativeRunner;

const DEFAULT_SEED: u64 = 0x50f7_5eed;
/// Mismatching cases reported in full (all are counted).
const MAX_REPORTS: usize = 60;
/// Mismatching cases reported in full per form.
const MAX_REPORTS_PER_FORM: usize = 2;

/// Prints even when libtest captures the test's output.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

fn seed() -> u64 {
    match std::env::var("SOFTVM_SEED") {
        Ok(s) if s == "random" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(DEFAULT_SEED),
        Ok(s) => {
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("SOFTVM_SEED={s} is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

fn cases_per_form() -> u32 {
    match std::env::var("SOFTVM_CASES") {
        Ok(s) => s.parse().expect("SOFTVM_CASES is a number"),
        Err(_) if cfg!(debug_assertions) => 48,
        Err(_) => 96,
    }
}

/// Whether the flags the manuals leave undefined are compared.
fn undefined_flags_compared() -> bool {
    std::env::var("SOFTVM_UNDEFINED_FLAGS").map_or(true, |v| v != "0")
}

fn only() -> Option<Vec<String>> {
    std::env::var("SOFTVM_ONLY")
        .ok()
        .map(|s| s.split(',').map(|c| c.trim().to_string()).collect())
}

#[derive(Default)]
struct FormResult {
    cases: u32,
    mismatches: u32,
    /// (kind of the first difference, full report) of the first mismatches.
    reports: Vec<(String, String)>,
    unimplemented: Option<String>,
    gen_failed: Option<String>,
}

fn run_form(runner: &mut NativeRunner, code: Code, seed: u64, per: u32) -> FormResult {
    let env = diff::env_of(runner);
    let mut r = FormResult::default();
    let Some(mut defined) = defined_flags(code) else {
        r.unimplemented = Some("listed by implemented_codes but defined_flags is None".into());
        return r;
    };
    let undefined_too = undefined_flags_compared();
    if undefined_too {
        defined = u64::MAX;
    }
    for i in 0..per {
        let mut rng = Rng::for_case(seed, code as u32, i);
        let case = match gen::generate(code, &env, &mut rng) {
            Ok(mut c) => {
                if undefined_too {
                    c.compare_undefined_flags();
                }
                c
            }
            Err(GenError::Failed(e)) => {
                r.gen_failed = Some(e);
                break;
            }
            Err(GenError::Skipped(why)) => unreachable!("{code:?} skipped: {why}"),
        };
        let run = diff::run_both(runner, &case);
        r.cases += 1;
        match diff::verdict(&case, &run, defined) {
            diff::Verdict::Match => {}
            diff::Verdict::Mismatch(d) => {
                r.mismatches += 1;
                if r.reports.len() < MAX_REPORTS_PER_FORM {
                    let kind = signature(&d[0]);
                    r.reports
                        .push((kind, diff::report(&case, &run, seed, i, &d)));
                }
            }
            diff::Verdict::Unimplemented(what) => {
                r.unimplemented = Some(what);
                break;
            }
        }
    }
    r
}

/// A difference with its numbers blanked, to group similar failures.
fn signature(diff: &str) -> String {
    let mut out = String::new();
    // Inside a word that started with a letter (r12, r8b): keep digits.
    let mut word = false;
    let mut number = false;
    let mut chars = diff.chars().peekable();
    while let Some(c) = chars.next() {
        if !word && c == '0' && chars.peek() == Some(&'x') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                chars.next();
            }
            out.push('N');
        } else if c.is_ascii_digit() && !word {
            if !number {
                out.push('N');
            }
            number = true;
        } else {
            word = c.is_ascii_alphanumeric() && (word || c.is_ascii_alphabetic());
            number = false;
            out.push(c);
        }
    }
    out
}

#[test]
fn host_diff() {
    let started = Instant::now();
    let seed = seed();
    say!("host-diff: seed {seed:#x} (SOFTVM_SEED={seed:#x} reproduces this run)");
    let vendor = emu_core::cpu::model::Vendor::host();
    if undefined_flags_compared() {
        say!("host-diff: undefined flags compared too, as {vendor:?} processors leave them (SOFTVM_UNDEFINED_FLAGS=0 compares only defined flags)");
    } else {
        say!("host-diff: only the flags the manuals define are compared");
    }
    if let Err(e) = NativeRunner::new(2) {
        say!("host-diff: skipped: {e}");
        return;
    }
    let mut codes = implemented_codes();
    codes.sort_by_key(|c| *c as u32);
    if let Some(only) = only() {
        codes.retain(|c| only.contains(&format!("{c:?}")));
    }
    let mut skipped: BTreeMap<&str, Vec<Code>> = BTreeMap::new();
    let mut forms = Vec::new();
    for c in codes {
        match gen::skip_reason(c) {
            Some(why) => skipped.entry(why).or_default().push(c),
            None => forms.push(c),
        }
    }
    let per = cases_per_form();
    let results: Vec<(Code, FormResult)> = forms
        .par_iter()
        .map_init(
            || NativeRunner::new(2).expect("native runner"),
            |runner, &code| (code, run_form(runner, code, seed, per)),
        )
        .collect();

    let mut total_cases = 0u64;
    let mut compared_forms = 0;
    let mut failures = Vec::new();
    let mut groups: BTreeMap<String, Vec<(Code, String)>> = BTreeMap::new();
    let mut gen_failed = Vec::new();
    for (code, r) in &results {
        total_cases += u64::from(r.cases);
        if r.cases > 0 {
            compared_forms += 1;
        }
        if let Some(w) = &r.unimplemented {
            failures.push(format!(
                "{code:?}: claimed by implemented_codes, but step64 says unimplemented ({w})"
            ));
        }
        if r.mismatches > 0 {
            failures.push(format!(
                "{code:?}: {} of {} cases differ (first: {})",
                r.mismatches, r.cases, r.reports[0].0
            ));
            for (kind, rep) in &r.reports {
                groups
                    .entry(kind.clone())
                    .or_default()
                    .push((*code, rep.clone()));
            }
        }
        if let Some(e) = &r.gen_failed {
            gen_failed.push(format!("{code:?} ({e})"));
        }
    }
    for (why, codes) in &skipped {
        let names: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
        say!(
            "host-diff: skipped {} implemented forms: {why}: {}",
            codes.len(),
            names.join(" ")
        );
    }
    if !gen_failed.is_empty() {
        say!(
            "host-diff: generator could not build cases for: {}",
            gen_failed.join(", ")
        );
    }
    // One or two full reports per kind of difference, then the forms.
    let mut printed = 0;
    for (kind, reps) in &groups {
        let mut forms: Vec<String> = reps.iter().map(|(c, _)| format!("{c:?}")).collect();
        forms.dedup();
        say!(
            "host-diff: {} forms differ with `{kind}`: {}",
            forms.len(),
            forms.join(" ")
        );
        for (_, rep) in reps.iter().take(2) {
            if printed < MAX_REPORTS {
                say!("{rep}");
                printed += 1;
            }
        }
    }
    say!(
        "host-diff: {} mismatching forms, {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    say!("host-diff: compared {compared_forms} instruction forms, {total_cases} cases, seed {seed:#x}");
    if !failures.is_empty() {
        panic!(
            "host-diff: {} forms failed (seed {seed:#x}):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    assert!(total_cases > 0 || forms.is_empty());
}

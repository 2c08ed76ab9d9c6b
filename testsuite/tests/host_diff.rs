//! Differential tests: every instruction form emu-core implements, run on
//! random inputs natively on the host CPU and in emu-core, compared on all
//! 16 GPRs, RIP, the defined flags, the x87/MMX/SSE state and the whole
//! data buffer.
//!
//! Two tests: `host_diff` takes the integer forms, `host_diff_fp` every
//! MMX, SSE (to SSE4.2) and x87 form, with random MXCSR and x87 control
//! words and operands mixed with special values (see `testsuite::gen::fp`).
//! MMX/SSE/x87 forms softvm does not implement yet are listed as "not yet
//! implemented" and skipped; [`UNIMPLEMENTED_FP_FAILS`] (or
//! `SOFTVM_FP_STRICT=1`) makes them fail instead.
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
use iced_x86::{Code, Mnemonic};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Instant;
use testsuite::gen::fp::{self, check::Approx};
use testsuite::gen::{self, diff, GenError, Rng};
use testsuite::native::NativeRunner;

const DEFAULT_SEED: u64 = 0x50f7_5eed;
/// Whether an MMX/SSE/x87 form softvm does not implement fails
/// `host_diff_fp`. False while the instruction families are being written;
/// the switch to flip once they have all landed.
const UNIMPLEMENTED_FP_FAILS: bool = false;
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
    /// The largest accepted difference of an approximation (x87
    /// transcendentals, RCP/RSQRT), in ulps.
    approx_ulps: Option<u64>,
    /// Transcendental cases further off, within the argument-reduction
    /// error.
    reduction: u32,
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
            diff::Verdict::Match => {
                if fp::check::approx(code) != Approx::Exact {
                    let c = diff::fp_compare(&case, &run);
                    r.approx_ulps = r.approx_ulps.max(c.approx_ulps);
                    r.reduction += u32::from(c.reduction);
                }
            }
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

/// Everything one differential run found.
struct Summary {
    seed: u64,
    results: Vec<(Code, FormResult)>,
    skipped: BTreeMap<&'static str, Vec<Code>>,
    started: Instant,
}

/// Runs `codes` (those the generator does not skip) against the host.
fn run_forms(codes: Vec<Code>, seed: u64) -> Summary {
    let started = Instant::now();
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
    Summary {
        seed,
        results,
        skipped,
        started,
    }
}

/// The codes to run: all of `codes` or those `SOFTVM_ONLY` names.
fn selected(mut codes: Vec<Code>) -> Vec<Code> {
    codes.sort_by_key(|c| *c as u32);
    if let Some(only) = only() {
        codes.retain(|c| only.contains(&format!("{c:?}")));
    }
    codes
}

/// Prints the skipped forms, generator failures and one or two reports
/// per kind of difference; returns the failures and the number of forms
/// and cases compared.
fn report(tag: &str, s: &Summary) -> (Vec<String>, usize, u64) {
    let seed = s.seed;
    let mut total_cases = 0u64;
    let mut compared_forms = 0;
    let mut failures = Vec::new();
    let mut groups: BTreeMap<String, Vec<(Code, String)>> = BTreeMap::new();
    let mut gen_failed = Vec::new();
    for (code, r) in &s.results {
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
    for (why, codes) in &s.skipped {
        let names: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
        say!(
            "{tag}: skipped {} forms: {why}: {}",
            codes.len(),
            names.join(" ")
        );
    }
    if !gen_failed.is_empty() {
        say!(
            "{tag}: generator could not build cases for: {}",
            gen_failed.join(", ")
        );
        failures.push(format!("generator failed for {} forms", gen_failed.len()));
    }
    // One or two full reports per kind of difference, then the forms.
    let mut printed = 0;
    for (kind, reps) in &groups {
        let mut forms: Vec<String> = reps.iter().map(|(c, _)| format!("{c:?}")).collect();
        forms.dedup();
        say!(
            "{tag}: {} forms differ with `{kind}`: {}",
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
        "{tag}: {} mismatching forms, {:.1} s, seed {seed:#x}",
        failures.len(),
        s.started.elapsed().as_secs_f64()
    );
    (failures, compared_forms, total_cases)
}

#[test]
fn host_diff() {
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
    // The MMX/SSE/x87 forms are host_diff_fp's.
    let codes = implemented_codes()
        .into_iter()
        .filter(|c| !fp::is_fp_form(*c))
        .collect();
    let summary = run_forms(selected(codes), seed);
    let (failures, forms, cases) = report("host-diff", &summary);
    say!("host-diff: compared {forms} instruction forms, {cases} cases, seed {seed:#x}");
    if !failures.is_empty() {
        panic!(
            "host-diff: {} forms failed (seed {seed:#x}):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    assert!(cases > 0 || summary.results.is_empty());
}

/// The largest accepted approximation difference per mnemonic, and the
/// cases accepted as within the argument-reduction error.
fn approximations(s: &Summary) -> BTreeMap<String, (u64, u32)> {
    let mut out: BTreeMap<String, (u64, u32)> = BTreeMap::new();
    for (code, r) in &s.results {
        if r.approx_ulps.is_some() || r.reduction > 0 {
            let e = out
                .entry(format!("{:?}", code.mnemonic()).to_uppercase())
                .or_default();
            e.0 = e.0.max(r.approx_ulps.unwrap_or(0));
            e.1 += r.reduction;
        }
    }
    out
}

fn strict_fp() -> bool {
    UNIMPLEMENTED_FP_FAILS || std::env::var("SOFTVM_FP_STRICT").is_ok_and(|v| v == "1")
}

#[test]
fn host_diff_fp() {
    let seed = seed();
    let tag = "host-diff-fp";
    say!("{tag}: seed {seed:#x} (SOFTVM_SEED={seed:#x} reproduces this run)");
    if let Err(e) = NativeRunner::new(2) {
        say!("{tag}: skipped: {e}");
        return;
    }
    let implemented: std::collections::HashSet<Code> = implemented_codes().into_iter().collect();
    let all = selected(Code::values().filter(|c| fp::is_fp_form(*c)).collect());
    let (codes, missing): (Vec<Code>, Vec<Code>) = all
        .into_iter()
        .partition(|c| implemented.contains(c) || gen::skip_reason(*c).is_some());
    let summary = run_forms(codes, seed);
    let (mut failures, forms, cases) = report(tag, &summary);
    let v = diff::vendors();
    let approx = approximations(&summary);
    if !approx.is_empty() {
        let list: Vec<String> = approx
            .iter()
            .map(|(m, (u, red))| match red {
                0 => format!("{m} {u}"),
                n => {
                    format!("{m} {u} ({n} cases further off, within the argument-reduction error)")
                }
            })
            .collect();
        say!(
            "{tag}: approximations within tolerance, largest difference from the host in ulps: {}",
            list.join(", ")
        );
    }
    say!(
        "{tag}: RCPPS/RCPSS/RSQRTPS/RSQRTSS: host {}, softvm's model {}: {}",
        v.host_name(),
        v.emu_name(),
        if v.same() {
            "compared bit for bit (same vendor)"
        } else {
            "compared within the manuals' 1.5 x 2^-12 (the vendors' tables differ)"
        }
    );
    say!(
        "{tag}: x87 transcendentals (FSIN FCOS FSINCOS FPTAN FPATAN F2XM1 FYL2X FYL2XP1) compared within {} ulps or their argument-reduction error",
        fp::check::TRANSCENDENTAL_ULPS
    );
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|c| format!("{c:?}")).collect();
        say!(
            "{tag}: not yet implemented ({} forms): {}",
            missing.len(),
            names.join(" ")
        );
        if strict_fp() {
            failures.push(format!("{} forms not implemented", missing.len()));
        }
    }
    let verdict = if forms == 0 && failures.is_empty() {
        "none implemented yet".to_string()
    } else if failures.is_empty() {
        "all identical".to_string()
    } else {
        format!("{} failures", failures.len())
    };
    say!("{tag}: compared {forms} MMX/SSE/x87 forms ({cases} cases) against the host: {verdict}");
    if !failures.is_empty() {
        panic!(
            "{tag}: {} forms failed (seed {seed:#x}):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    let _ = Mnemonic::INVALID;
}

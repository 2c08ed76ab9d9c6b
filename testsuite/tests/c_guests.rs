//! Compiled C guests: the programs of `testsuite/guests/c` built by the
//! system C compiler at `-O2 -fcf-protection=full` and at `-O0` into
//! multiboot kernels, run on softvm (and on /dev/kvm where it opens), their
//! serial output compared line by line with the same programs built for
//! and run on the host.
//!
//! Skipped, with the reason printed, where there is no C compiler for
//! x86-64.

use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;
use testsuite::backend::{load_image, run_guest, Backend, Exit, RunLimits, SoftvmBackend};
use testsuite::cguest::{self, Opt, Toolchain, PROGRAMS};
use testsuite::kvm;

/// One program built both ways, with the host's output.
struct Built {
    name: String,
    x87: bool,
    guest: Vec<u8>,
    expected: String,
}

fn scratch() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-guests");
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Every program built at both levels and the host builds run, once for
/// all tests of this file; `Err` with the reason without a compiler.
fn built() -> &'static Result<Vec<Built>, String> {
    static BUILT: OnceLock<Result<Vec<Built>, String>> = OnceLock::new();
    BUILT.get_or_init(|| Toolchain::find().map(|tc| build_all(&tc)))
}

/// [`built`], or `None` with the reason printed under `tag`.
fn built_or_skip(tag: &str) -> Option<&'static [Built]> {
    match built() {
        Ok(b) => Some(b),
        Err(why) => {
            println!("{tag}: skipped: {why}");
            None
        }
    }
}

fn build_all(tc: &Toolchain) -> Vec<Built> {
    let dir = scratch();
    let jobs: Vec<(Opt, &str)> = [Opt::O2, Opt::O0]
        .into_iter()
        .flat_map(|opt| PROGRAMS.into_iter().map(move |p| (opt, p)))
        .collect();
    jobs.par_iter()
        .map(|&(opt, p)| {
            let name = format!("{p} -{}", opt.name());
            let guest = tc
                .build_guest(p, opt, &dir)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let host = tc
                .build_host(p, opt, &dir)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let (expected, code) = cguest::run_host(&host).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(code, 0, "{name}: the host build exits with {code}");
            assert!(
                expected.lines().count() >= 8,
                "{name}: the host build printed only {expected:?}"
            );
            let guest = std::fs::read(&guest).expect("guest image");
            Built {
                name,
                x87: cguest::uses_x87(p),
                guest,
                expected,
            }
        })
        .collect()
}

/// Runs `b` on `backend`; a description of what differs from the host.
fn check(backend: &mut dyn Backend, b: &Built) -> Result<(), String> {
    let image = load_image(&b.guest).map_err(|e| format!("{}: load: {e}", b.name))?;
    let rec =
        run_guest(backend, &image, RunLimits::default()).map_err(|e| format!("{}: {e}", b.name))?;
    let name = backend.name();
    let mut problems = Vec::new();
    if let Some(e) = rec.internal_error() {
        problems.push(format!("{name} stopped: {e}"));
    }
    if rec.last_exit() != Some(&Exit::Hlt) || rec.exit_code != Some(0) {
        problems.push(format!(
            "{name} ended with {:?}, exit code {:?} (expected a halt after exit code 0)",
            rec.last_exit().map(|e| e.to_string()),
            rec.exit_code
        ));
    }
    if let Some(d) = cguest::first_difference(&b.expected, &rec.serial_text()) {
        problems.push(format!(
            "{name}'s serial output differs from the host's: {d}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n  {}", b.name, problems.join("\n  ")))
    }
}

/// Runs the programs `which` selects on softvm; panics with every
/// difference from the host.
fn on_softvm(tag: &str, which: impl Fn(&Built) -> bool) {
    let Some(built) = built_or_skip(tag) else {
        return;
    };
    let mut failures = Vec::new();
    let mut n = 0;
    for b in built.iter().filter(|b| which(b)) {
        n += 1;
        let mut s = SoftvmBackend::new(2_000_000_000).expect("softvm");
        match check(&mut s, b) {
            Ok(()) => println!(
                "{tag}: {}: softvm identical to the host ({} lines)",
                b.name,
                b.expected.lines().count()
            ),
            Err(e) => failures.push(e),
        }
    }
    println!(
        "{tag}: {} of {n} compiled guests identical to the host on softvm",
        n - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// softvm runs the compiled programs that use SSE only (float, double,
/// strings, structs, matrices) and prints what the host printed.
#[test]
fn c_guests_sse_on_softvm_match_the_host() {
    on_softvm("c-guests-sse", |b| !b.x87);
}

/// softvm runs the compiled program that uses long double (x87).
#[test]
#[ignore = "needs the x87 family of issue 14; the lead un-ignores it once it is merged"]
fn c_guests_x87_on_softvm_match_the_host() {
    on_softvm("c-guests-x87", |b| b.x87);
}

/// The guests themselves are right: /dev/kvm (the host CPU) prints what
/// the host build prints. This checks the entry code, the runtime and the
/// build, independently of softvm.
#[test]
fn c_guests_on_kvm_match_the_host() {
    let Some(built) = built_or_skip("c-guests-kvm") else {
        return;
    };
    if let Err(why) = kvm::available() {
        println!(
            "c-guests-kvm: built and ran {} host programs; /dev/kvm comparison skipped: {why}",
            built.len()
        );
        return;
    }
    let mut failures = Vec::new();
    let mut not_comparable = 0;
    for b in built {
        let mut k = kvm::KvmBackend::new(std::time::Duration::from_secs(60)).expect("kvm");
        match check(&mut k, b) {
            Ok(()) => {}
            Err(e) if e.contains("KVM_EXIT_INTERNAL_ERROR") => {
                println!("c-guests-kvm: not comparable (KVM could not run it): {e}");
                not_comparable += 1;
            }
            Err(e) => failures.push(e),
        }
    }
    println!(
        "c-guests-kvm: {} of {} compiled guests identical to the host on /dev/kvm ({not_comparable} not comparable)",
        built.len() - failures.len() - not_comparable,
        built.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! The reference guests of ../shared/conformance, run through the `softvm`
//! binary exactly as a user (or run.sh) would: serial output on stdout and
//! the exit status must match what real hardware gave.

use std::path::PathBuf;
use std::process::Command;

fn conformance_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    d.is_dir().then_some(d)
}

#[test]
fn reference_guests_match_hardware() {
    let Some(dir) = conformance_dir() else {
        println!("SKIP: ../shared/conformance is not beside the checkout");
        return;
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "elf").then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no guests in {}", dir.display());
    let mut failed = Vec::new();
    for name in &names {
        let out = Command::new(env!("CARGO_BIN_EXE_softvm"))
            .arg("run")
            .arg(dir.join(format!("{name}.elf")))
            .args(["--timeout", "60"])
            .output()
            .unwrap();
        let want_out = std::fs::read(dir.join(format!("expected/{name}.out"))).unwrap();
        let want_status: i32 = std::fs::read_to_string(dir.join(format!("expected/{name}.status")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let status = out.status.code().unwrap_or(-1);
        if status != want_status || out.stdout != want_out {
            failed.push(format!(
                "{name}: status {status} (want {want_status}); stdout {:?}; stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    println!(
        "conformance: {} passed, {} failed",
        names.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

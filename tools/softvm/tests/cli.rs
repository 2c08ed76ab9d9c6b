//! The command line as users meet it: statuses and one-line errors.

use std::process::Command;

fn softvm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_softvm"))
        .args(args)
        .output()
        .unwrap()
}

fn one_line_stderr(o: &std::process::Output) -> String {
    let s = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(s.lines().count(), 1, "stderr should be one line: {s:?}");
    s
}

#[test]
fn missing_file_is_a_usage_error() {
    let o = softvm(&["run", "/nonexistent/guest.elf"]);
    assert_eq!(o.status.code(), Some(2));
    let e = one_line_stderr(&o);
    assert!(e.contains("/nonexistent/guest.elf"), "{e}");
}

#[test]
fn not_an_elf_is_a_load_error() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("garbage.bin");
    std::fs::write(&f, b"this is not an ELF file at all").unwrap();
    let o = softvm(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = one_line_stderr(&o);
    assert!(e.contains("garbage.bin"), "{e}");
}

#[test]
fn bad_options_are_usage_errors() {
    for args in [
        &["run"][..],
        &["run", "x.elf", "--vcpus", "0"],
        &["run", "x.elf", "--bogus"],
        &["frobnicate"],
    ] {
        let o = softvm(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        one_line_stderr(&o);
    }
}

#[test]
fn help_works() {
    let o = softvm(&["help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: softvm <COMMAND>"));
}

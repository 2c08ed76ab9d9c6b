//! `softvm trace` and `softvm demo` as a student runs them.

use std::path::PathBuf;
use std::process::Command;

fn softvm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_softvm"))
        .args(args)
        .output()
        .unwrap()
}

fn guest(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../../shared/conformance/{name}.elf"));
    p.exists().then_some(p)
}

#[test]
fn every_instruction_is_listed_once_with_its_disassembly() {
    let Some(hello) = guest("hello") else {
        println!("SKIP: ../shared/conformance is not beside the checkout");
        return;
    };
    let o = softvm(&["trace", hello.to_str().unwrap(), "--insn"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    let insns: Vec<&str> = out.lines().filter(|l| l.starts_with("insn")).collect();
    let end = out
        .lines()
        .find(|l| l.starts_with("end"))
        .expect("an end line");
    let n: usize = end
        .split(" after ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(insns.len(), n, "one insn line per retired instruction");
    assert!(insns[0].ends_with("cli"), "{}", insns[0]);
    assert!(out.contains("serial softvm conformance: hello"));
    // The far jump into long mode, then 64-bit code.
    assert!(
        insns.iter().any(|l| l.contains("jmp far")),
        "no far jump traced"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("mmu")),
        "--insn alone shows no MMU events"
    );
}

#[test]
fn page_faults_are_explained_and_json_is_one_object_a_line() {
    let Some(exc) = guest("exc") else {
        println!("SKIP: ../shared/conformance is not beside the checkout");
        return;
    };
    let o = softvm(&["trace", exc.to_str().unwrap(), "--mmu"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("#PF at 0x40001238, error code 0x0 [not-present read supervisor]"),
        "{out}"
    );
    assert!(
        out.contains("memslots: generation 0 -> 1"),
        "memslot install with generations"
    );
    assert!(out.contains("walk: level 4 (PML4E)"));
    let o = softvm(&["trace", exc.to_str().unwrap(), "--json", "--limit", "2000"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for line in out.lines() {
        assert!(line.starts_with("{\"kind\":"), "kind first: {line}");
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(v["kind"].is_string() && v["text"].is_string(), "{line}");
    }
    assert!(out.lines().any(|l| l.contains("\"kind\":\"insn\"")));
    assert!(out.lines().last().unwrap().contains("\"kind\":\"end\""));
    // The instruction budget of --limit ends the run with status 8.
    assert_eq!(o.status.code(), Some(8));
}

#[test]
fn demo_narrates_a_fault_and_an_mmio_exit() {
    let o = softvm(&["demo"]);
    // The demo ran as designed: status 0, nothing on stderr.
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "#PF at 0x100000000, error code 0x2",
        "vector 14 delivered through the IDT",
        "serial demo: the write went through; reading it back: 00005EEDCAFEF00D",
        "MMIO write of [2a, 00, 00, 00] at gpa 0xfe000000",
        "MMIO spte hit for 0xfe000000",
        "serial demo: reading the MMIO device: 00000000FFFFFFFF",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

//! `tools/machine/src/demo.elf` (embedded in `softvm demo`) must be exactly what
//! `testsuite::demo::demo_guest()` builds, so the committed image never
//! drifts from its source. `SOFTVM_BLESS=1` rewrites it.

#[test]
fn committed_demo_image_matches_its_source() {
    let built = testsuite::demo::demo_guest().expect("demo guest assembles");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/machine/src/demo.elf");
    if std::env::var_os("SOFTVM_BLESS").is_some() {
        std::fs::write(path, &built).unwrap();
    }
    let committed = std::fs::read(path).unwrap_or_default();
    assert!(
        committed == built,
        "tools/machine/src/demo.elf is stale: run `SOFTVM_BLESS=1 cargo test -p testsuite --test demo_image`"
    );
}

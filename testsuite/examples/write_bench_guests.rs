//! Writes the benchmark guests and their manifest into a directory, for
//! `softvm bench DIR` and `tools/bench/compare.sh`.
//!
//!     cargo run --release -p testsuite --example write_bench_guests -- /tmp/bench [--test-scale]

use testsuite::bench::{self, Scale};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: write_bench_guests DIR [--test-scale]");
        std::process::exit(2);
    };
    let scale = if args.iter().any(|a| a == "--test-scale") {
        Scale::Test
    } else {
        Scale::Full
    };
    let benches = bench::all(scale);
    bench::write_dir(std::path::Path::new(dir), &benches)?;
    for b in &benches {
        println!("{:18} {}", b.name, b.about);
    }
    Ok(())
}

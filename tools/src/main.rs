//! `softvm`: run x86-64 test kernels without /dev/kvm.

mod bench;
mod cli;
mod demo;
mod devices;
mod machine;
mod status;
mod suite;
mod trace;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = cli::main(&args);
    std::process::exit(code);
}

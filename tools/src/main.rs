//! `softvm`: run x86-64 test kernels without /dev/kvm.

mod cli;
mod devices;
mod machine;
mod status;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = cli::main(&args);
    std::process::exit(code);
}

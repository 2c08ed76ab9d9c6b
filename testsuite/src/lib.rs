//! testsuite: softvm's test harnesses.
//!
//! - [`native`] runs single x86-64 instructions on the host CPU.
//! - [`gen`] builds random instances of instruction forms and compares the
//!   host against emu-core (the differential tests in `tests/host_diff.rs`).
//! - [`image`] and [`guest`] build bootable guest programs in Rust.
//! - [`backend`], [`kvm`] and [`randprog`] run whole guests on softvm and
//!   on /dev/kvm and compare them (`tests/kvm_diff.rs`).
//! - [`cguest`] builds C programs with the system compiler into multiboot
//!   kernels and into host executables (`tests/c_guests.rs`).

pub mod backend;
pub mod bench;
pub mod cguest;
pub mod demo;
pub mod gen;
pub mod guest;
pub mod image;
pub mod kvm;
pub mod native;
pub mod randprog;

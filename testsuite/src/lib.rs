//! testsuite: softvm's test harnesses.
//!
//! - [`native`] runs single x86-64 instructions on the host CPU.
//! - [`gen`] builds random instances of instruction forms and compares the
//!   host against emu-core (the differential tests in `tests/host_diff.rs`).
//! - [`image`] and [`guest`] build bootable guest programs in Rust.

pub mod gen;
pub mod guest;
pub mod image;
pub mod native;

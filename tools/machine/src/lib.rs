//! softvm-machine: a PC-like machine on softvm, for embedders and for the
//! `softvm` command line alike.
//!
//! A [`Machine`] is built from a [`MachineConfig`]: guest RAM laid out as
//! on a PC ([`loader::layout::RamLayout`]: below the 3 GiB hole, the rest
//! above 4 GiB, mapped lazily), vCPUs of [`emu_core`], and the devices a
//! VMM owns ([`devices`]): a 16550 UART on COM1, QEMU's isa-debug-exit and
//! pc-testdev, fw_cfg, an I/O APIC, an 8254 PIT, the ACPI power-management
//! block (PM timer, sleep states, reset register), an RTC with its CMOS,
//! the Bochs power-off port and the legacy chips test kernels touch; and
//! the firmware's ACPI tables in guest RAM ([`acpi`]). [`Bus`] routes port
//! and MMIO exits to them; the devices that keep time read the machine
//! clock ([`clock`]); [`Machine::run`] runs every vCPU on its own thread,
//! with a watchdog for the timeout, until the machine ends (S3 suspends and
//! resumes it on the way), and says how in an [`Outcome`].
//!
//! Booting a test kernel and reading its serial output takes a few lines
//! (here the built-in demo guest, a multiboot kernel that enters long
//! mode, takes a page fault, touches an MMIO address and exits with 0):
//!
//! ```
//! use softvm_machine::{Capture, End, Machine, MachineConfig};
//! use std::time::Duration;
//!
//! let config = MachineConfig {
//!     vcpus: 2,
//!     memory: 256 << 20,
//!     timeout: Some(Duration::from_secs(30)),
//!     ..MachineConfig::default()
//! };
//! let mut machine = Machine::boot(&config, softvm_machine::DEMO_GUEST)?;
//! let serial = Capture::new();
//! machine.set_serial_output(serial.clone());
//! let outcome = machine.run();
//! assert_eq!(outcome.end, End::GuestExit(0));
//! assert_eq!(outcome.status(), 1); // what `softvm run` exits with
//! assert!(serial.text().contains("demo: hello from 64-bit long mode"));
//! # Ok::<(), softvm_machine::MachineError>(())
//! ```
//!
//! A VMM with its own loop uses [`Machine::new`], [`Machine::vcpus_mut`]
//! and [`Bus::answer`] for each exit instead of [`Machine::run`].
//!
//! Values from a command line go through the parsers of [`config`]
//! (sizes in QEMU's forms, vCPU counts, timeouts, the CPU model), which
//! check ranges and name them in their errors.
//!
//! Crates used: `rayon` for the vCPU threads (a pool sized to the vCPUs,
//! as the design asks), `thiserror` for the error types, `bitflags` for
//! register bit sets of the devices.

pub mod acpi;
pub mod bus;
pub mod capture;
pub mod clock;
pub mod config;
pub mod devices;
pub mod machine;
mod run;
mod sleep;
pub mod status;

pub use bus::{Action, Answer, Bus};
pub use capture::Capture;
pub use config::{ClockMode, ConfigError, DebugExit, MachineConfig};
pub use machine::{run_file, with_program_name, Machine, MachineError, SerialOut};
pub use status::{End, Outcome};

/// The built-in demo guest (source: `testsuite/src/demo.rs`): a multiboot
/// kernel that prints over COM1, handles a page fault, makes an MMIO exit
/// and writes 0 to the exit port.
pub const DEMO_GUEST: &[u8] = include_bytes!("demo.elf");

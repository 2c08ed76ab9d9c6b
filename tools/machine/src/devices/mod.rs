//! The devices a VMM owns: the serial port, fw_cfg, the I/O APIC, the PIT,
//! the ACPI power-management block, the RTC and CMOS,
//! QEMU's pc-testdev, and the legacy chips test kernels poke at. Each owns
//! its registers and never prints or exits the process; [`crate::Bus`]
//! routes ports and MMIO addresses to them.

pub mod acpi_pm;
mod calendar;
pub mod fw_cfg;
pub mod ioapic;
pub mod legacy;
pub mod pit;
pub mod rtc;
pub mod serial;
pub mod testdev;

//! The machine's ACPI tables, as QEMU's PC provides them to a test kernel:
//! an RSDP in the BIOS area (found by the standard scan of
//! 0xe0000..0x100000 on 16-byte boundaries), an RSDT and an XSDT listing
//! the FADT and the MADT, the FACS (with the firmware waking vector that
//! S3 resume jumps to) and a DSDT with the sleep states, reachable from the
//! FADT. There is no HPET table: the machine has no HPET.
//!
//! The tables are built from [`tables`]' structures with the machine's
//! values (the ports of [`crate::devices::acpi_pm`], the I/O APIC, one
//! local APIC per vCPU) and written at [`loader::layout::ACPI_TABLES_ADDR`],
//! inside the BIOS area that the loader's memory map reserves and that no
//! image may load into.
//!
//! Where the values come from QEMU (7.2, PC machine, its PIIX4 power
//! management at 0x600): the SCI on IRQ 9, the PM blocks' ports and
//! lengths, SMI_CMD 0xb2 with 0xf1/0xf0, C2/C3 latencies 0xfff (not
//! supported), the century at CMOS 0x32, the FADT flags (WBINVD, PROC_C1,
//! SLP_BUTTON, RTC_S4, USE_PLATFORM_CLOCK, FORCE_APIC_CLUSTER_MODEL above
//! 8 CPUs, no TMR_VAL_EXT), and the MADT (PCAT_COMPAT, the I/O APIC with
//! ID 0 at GSI 0, overrides IRQ 0 -> GSI 2 and level, active-high IRQs 5,
//! 9, 10, 11, LINT1 as NMI on every processor). Where it differs: QEMU's
//! PC has an ACPI 1.0 RSDP, RSDT and FADT revision 1; here the RSDP is
//! revision 2 with an XSDT beside the RSDT, and the FADT is revision 3
//! with the 64-bit X_ blocks and the reset register (0xcf9, value 6, as
//! QEMU's q35 machine advertises), and the FADT also sets PWR_BUTTON (no
//! fixed power button).

pub mod aml;
pub mod tables;

use crate::devices::acpi_pm as pm;
use crate::devices::ioapic::IOAPIC_BASE;
use loader::layout::{ACPI_TABLES_ADDR, ACPI_TABLES_SIZE, LAPIC_BASE};
use tables::{Dsdt, Facs, Fadt, Gas, Madt, MadtEntry, Rsdp, Rsdt, Xsdt};

/// Where each table of the machine is (guest-physical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiLayout {
    pub rsdp: u64,
    pub rsdt: u64,
    pub xsdt: u64,
    pub fadt: u64,
    pub facs: u64,
    pub dsdt: u64,
    pub madt: u64,
}

/// FADT flags.
pub mod fadt_flags {
    pub const WBINVD: u32 = 1 << 0;
    pub const PROC_C1: u32 = 1 << 2;
    pub const PWR_BUTTON: u32 = 1 << 4;
    pub const SLP_BUTTON: u32 = 1 << 5;
    pub const RTC_S4: u32 = 1 << 7;
    pub const TMR_VAL_EXT: u32 = 1 << 8;
    pub const RESET_REG_SUP: u32 = 1 << 10;
    pub const USE_PLATFORM_CLOCK: u32 = 1 << 15;
    pub const FORCE_APIC_CLUSTER_MODEL: u32 = 1 << 18;
}

/// IA-PC boot architecture flags: legacy (ISA/LPC) devices, no VGA.
pub const IAPC_BOOT_ARCH: u16 = (1 << 0) | (1 << 2);
/// MPS INTI flags of a level-triggered, active-high ISA IRQ.
pub const LEVEL_HIGH: u16 = 0x000d;
/// The CMOS index of the RTC's century.
pub const RTC_CENTURY: u8 = 0x32;

/// The FADT of a machine with `vcpus` CPUs and `facs`/`dsdt` at those
/// addresses.
fn fadt(vcpus: u32, facs: u32, dsdt: u32) -> Fadt {
    use fadt_flags::*;
    let mut flags =
        WBINVD | PROC_C1 | PWR_BUTTON | SLP_BUTTON | RTC_S4 | RESET_REG_SUP | USE_PLATFORM_CLOCK;
    if vcpus > 8 {
        flags |= FORCE_APIC_CLUSTER_MODEL;
    }
    Fadt {
        facs,
        dsdt,
        sci_int: pm::SCI_IRQ.into(),
        smi_cmd: pm::SMI_CMD.into(),
        acpi_enable: pm::ACPI_ENABLE,
        acpi_disable: pm::ACPI_DISABLE,
        pm1a_evt: pm::PM1A_EVT,
        pm1a_cnt: pm::PM1A_CNT,
        pm_tmr: pm::PM_TMR,
        gpe0: pm::GPE0,
        pm1_evt_len: 4,
        pm1_cnt_len: 2,
        pm_tmr_len: 4,
        gpe0_len: pm::GPE0_LEN,
        p_lvl2_lat: 0xfff,
        p_lvl3_lat: 0xfff,
        century: RTC_CENTURY,
        iapc_boot_arch: IAPC_BOOT_ARCH,
        flags,
        reset_reg: Gas::io(pm::RESET_PORT, 8),
        reset_value: pm::RESET_VALUE,
    }
}

/// The MADT of a machine with `vcpus` CPUs (APIC IDs 0..vcpus).
fn madt(vcpus: u32) -> Madt {
    let mut entries: Vec<MadtEntry> = (0..vcpus.min(255))
        .map(|i| MadtEntry::LocalApic {
            uid: i as u8,
            apic_id: i as u8,
            flags: 1,
        })
        .collect();
    entries.push(MadtEntry::IoApic {
        id: 0,
        address: IOAPIC_BASE as u32,
        gsi_base: 0,
    });
    entries.push(MadtEntry::Override {
        source: 0,
        gsi: 2,
        flags: 0,
    });
    for irq in [5u8, pm::SCI_IRQ, 10, 11] {
        entries.push(MadtEntry::Override {
            source: irq,
            gsi: irq.into(),
            flags: LEVEL_HIGH,
        });
    }
    entries.push(MadtEntry::LocalApicNmi {
        uid: 0xff,
        flags: 0,
        lint: 1,
    });
    Madt {
        local_apic_address: LAPIC_BASE as u32,
        flags: 1,
        entries,
    }
}

/// The DSDT's AML: the sleep states and their SLP_TYP values.
fn dsdt() -> Dsdt {
    let s = |n: &[u8; 4], t: u16| aml::name_package(n, &[t.into(), t.into(), 0, 0]);
    Dsdt(
        [
            s(b"_S3_", pm::SLP_TYP_S3),
            s(b"_S4_", pm::SLP_TYP_S4),
            s(b"_S5_", pm::SLP_TYP_S5),
        ]
        .concat(),
    )
}

/// The tables of a machine with `vcpus` CPUs: where each is, and the bytes
/// of the whole area from [`ACPI_TABLES_ADDR`].
pub fn build(vcpus: u32) -> (AcpiLayout, Vec<u8>) {
    let base = ACPI_TABLES_ADDR;
    let mut area: Vec<u8> = Vec::new();
    // Places `bytes` at the next `align`-aligned offset; returns the address.
    let mut put = |bytes: &[u8], align: usize| -> u64 {
        let off = area.len().next_multiple_of(align);
        area.resize(off, 0);
        area.extend_from_slice(bytes);
        base + off as u64
    };
    // The RSDP first (16-byte aligned, where the scan finds it), then the
    // FACS (64-byte aligned, as the specification requires).
    let rsdp_at = put(&[0; 36], 16);
    let facs = put(
        &Facs {
            hardware_signature: 0,
        }
        .bytes(),
        64,
    );
    let dsdt_at = put(&dsdt().bytes(), 16);
    let fadt_at = put(&fadt(vcpus, facs as u32, dsdt_at as u32).bytes(), 16);
    let madt_at = put(&madt(vcpus).bytes(), 16);
    let list = [fadt_at, madt_at];
    let rsdt = put(&Rsdt(list.iter().map(|&a| a as u32).collect()).bytes(), 16);
    let xsdt = put(&Xsdt(list.to_vec()).bytes(), 16);
    let rsdp = Rsdp {
        rsdt: rsdt as u32,
        xsdt,
    }
    .bytes();
    let off = (rsdp_at - base) as usize;
    area[off..off + rsdp.len()].copy_from_slice(&rsdp);
    debug_assert!(area.len() as u64 <= ACPI_TABLES_SIZE);
    let layout = AcpiLayout {
        rsdp: rsdp_at,
        rsdt,
        xsdt,
        fadt: fadt_at,
        facs,
        dsdt: dsdt_at,
        madt: madt_at,
    };
    (layout, area)
}

/// Write the tables of a machine with `vcpus` CPUs into `mem`.
pub fn install(vcpus: u32, mem: &softmmu::GuestMemory) -> Result<AcpiLayout, softmmu::MemError> {
    let (layout, bytes) = build(vcpus);
    mem.write_phys(softmmu::Gpa::new(ACPI_TABLES_ADDR), &bytes)?;
    Ok(layout)
}

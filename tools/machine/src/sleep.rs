//! S3 (suspend to RAM) in the VMM loops. When the guest writes S3 to PM1a
//! control, every vCPU gets an INIT (so each stops where it is and loses
//! its state, as the processors of a PC in S3 lose power); memory and the
//! devices' state stay. When the wake-up event comes ([`crate::Bus::take_wake`]),
//! vCPU 0 starts where the firmware of a PC would send it after the
//! resume: the waking vector the OS left in the FACS. The other vCPUs wait
//! for INIT and SIPI as after a reset.
//!
//! The waking vector (ACPI 6.x, 5.2.10): with X_Firmware_Waking_Vector
//! non-zero, vCPU 0 starts there in 32-bit protected mode, paging off, flat
//! 4 GiB code and data segments; otherwise at Firmware_Waking_Vector in
//! real mode, CS = vector >> 4 and IP = vector & 0xf (CS base vector &
//! ~0xf). Both: interrupts off, the local APIC reset to its power-on
//! state (xAPIC, enabled, base 0xfee00000).

use crate::acpi::tables::Facs;
use emu_core::apic::{ApicBus, DeliveryMode, DestMode, Ipi, Shorthand, TriggerMode};
use emu_core::{MpState, MsrEntry, Regs, Segment, Vcpu};
use softmmu::{Gpa, GuestMemory};

/// IA32_APIC_BASE and its value after a reset of the bootstrap processor.
const MSR_APIC_BASE: u32 = 0x1b;
const APIC_BASE_RESET: u64 = 0xfee0_0900;

/// Stop every vCPU: an INIT to each local APIC (the vCPUs take it at their
/// next instruction boundary and wait for SIPI).
pub(crate) fn stop_all(apic: &ApicBus) {
    apic.send(&Ipi {
        vector: 0,
        delivery_mode: DeliveryMode::Init,
        dest_mode: DestMode::Physical,
        shorthand: Shorthand::AllIncludingSelf,
        dest: 0,
        level: true,
        trigger: TriggerMode::Edge,
        source_apic_id: u32::MAX,
        source_vcpu: None,
        x2apic: false,
    });
}

/// Where vCPU 0 resumes, read from the FACS at `facs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waking {
    /// Real mode at this Firmware_Waking_Vector.
    RealMode(u32),
    /// 32-bit protected mode at this X_Firmware_Waking_Vector.
    Protected(u32),
    /// Neither vector is set: the firmware would reboot.
    None,
}

/// The waking vector in the FACS at `facs`.
pub(crate) fn waking_vector(mem: &GuestMemory, facs: u64) -> Waking {
    let read = |off: usize, n: usize| {
        let mut b = [0u8; 8];
        let ok = mem
            .read_phys(Gpa::new(facs + off as u64), &mut b[..n])
            .is_ok();
        if ok {
            u64::from_le_bytes(b)
        } else {
            0
        }
    };
    let x = read(Facs::X_WAKING_VECTOR, 8);
    let v = read(Facs::WAKING_VECTOR, 4);
    match (x, v) {
        // A vector above 4 GiB cannot be reached with paging off.
        (x, _) if x != 0 && x <= u64::from(u32::MAX) => Waking::Protected(x as u32),
        (_, v) if v != 0 => Waking::RealMode(v as u32),
        _ => Waking::None,
    }
}

/// Start vCPU 0 (after its INIT) at `to`. Returns false for
/// [`Waking::None`].
pub(crate) fn start_bsp(vcpu: &mut Vcpu, to: Waking) -> bool {
    let mut s = vcpu.get_sregs();
    let (cs, rip) = match to {
        Waking::RealMode(v) => (
            Segment::real_mode((v >> 4) as u16, true),
            u64::from(v & 0xf),
        ),
        Waking::Protected(v) => {
            let data = Segment::flat(0x10, 0x3, true, false);
            for seg in [&mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss] {
                *seg = data;
            }
            s.cr0 |= 1; // PE
            (Segment::flat(0x08, 0xb, true, false), u64::from(v))
        }
        Waking::None => return false,
    };
    s.cs = cs;
    // The local APIC back to its reset state: disabled, then enabled in
    // xAPIC mode (the order a mode change from x2APIC needs).
    let _ = vcpu.set_msrs(&[MsrEntry {
        index: MSR_APIC_BASE,
        data: 0,
    }]);
    let _ = vcpu.set_msrs(&[MsrEntry {
        index: MSR_APIC_BASE,
        data: APIC_BASE_RESET,
    }]);
    s.apic_base = APIC_BASE_RESET;
    vcpu.set_sregs(&s);
    vcpu.set_regs(&Regs {
        rip,
        rflags: 2,
        ..Regs::default()
    });
    vcpu.set_mp_state(MpState::Runnable);
    true
}

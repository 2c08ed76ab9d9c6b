//! Unit tests of the local APIC and the bus. Expected values come from the
//! Intel SDM Vol. 3A chapter 11.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::timer::divisor;
use super::*;

const BASE_X2: u64 = DEFAULT_APIC_BASE | APIC_BASE_EN | APIC_BASE_EXTD;
const BASE_XAPIC: u64 = DEFAULT_APIC_BASE | APIC_BASE_EN;

/// A software-enabled xAPIC (SVR = 0x1ff).
fn enabled(id: u32) -> LocalApic {
    let mut a = LocalApic::new(id);
    assert_eq!(a.write(reg::SVR, 0x1ff), None);
    a
}

/// A software-enabled APIC in x2APIC mode.
fn enabled_x2(id: u32) -> LocalApic {
    let mut a = enabled(id);
    a.set_base(BASE_X2).unwrap();
    a
}

fn irr_reg_bit(a: &LocalApic, v: u8) -> bool {
    a.read(reg::IRR0 + 0x10 * (v as u32 / 32)) & (1 << (v % 32)) != 0
}

fn isr_reg_bit(a: &LocalApic, v: u8) -> bool {
    a.read(reg::ISR0 + 0x10 * (v as u32 / 32)) & (1 << (v % 32)) != 0
}

/// Four registered, software-enabled xAPICs with IDs 0..=3.
fn four() -> (ApicBus, Vec<LocalApic>) {
    let bus = ApicBus::new();
    let mut apics: Vec<LocalApic> = (0..4).map(enabled).collect();
    for (i, a) in apics.iter_mut().enumerate() {
        assert_eq!(bus.register(a), i);
        assert_eq!(a.vcpu_index(), Some(i));
    }
    (bus, apics)
}

fn drain_all(bus: &ApicBus, apics: &mut [LocalApic]) {
    for (i, a) in apics.iter_mut().enumerate() {
        bus.drain(i, a);
    }
}

fn logical_fixed(mda: u32, vector: u8) -> Ipi {
    Ipi {
        vector,
        delivery_mode: DeliveryMode::Fixed,
        dest_mode: DestMode::Logical,
        shorthand: Shorthand::None,
        dest: mda,
        level: true,
        trigger: TriggerMode::Edge,
        source_apic_id: 0,
        source_vcpu: Some(0),
        x2apic: false,
    }
}

#[test]
fn send_sync() {
    fn check<T: Send + Sync>() {}
    check::<LocalApic>();
    check::<ApicBus>();
    check::<Mailbox>();
    check::<Ipi>();
    check::<Arc<ApicBus>>();
}

// ----- reset values (SDM 11.4.7.1) ------------------------------------------

#[test]
fn reset_values() {
    let a = LocalApic::new(0);
    assert_eq!(a.base(), 0xfee0_0900, "BSP, EN, base 0xfee00000");
    assert_eq!(a.mode(), ApicMode::XApic);
    assert_eq!(a.base_address(), 0xfee0_0000);
    assert_eq!(a.read(reg::ID), 0);
    assert_eq!(a.read(reg::VERSION), 0x0005_0014);
    assert_eq!(a.read(reg::TPR), 0);
    assert_eq!(a.read(reg::APR), 0);
    assert_eq!(a.read(reg::PPR), 0);
    assert_eq!(a.read(reg::EOI), 0);
    assert_eq!(a.read(reg::RRD), 0);
    assert_eq!(a.read(reg::LDR), 0);
    assert_eq!(a.read(reg::DFR), 0xffff_ffff);
    assert_eq!(a.read(reg::SVR), 0xff);
    for i in 0..8 {
        assert_eq!(a.read(reg::ISR0 + 0x10 * i), 0);
        assert_eq!(a.read(reg::TMR0 + 0x10 * i), 0);
        assert_eq!(a.read(reg::IRR0 + 0x10 * i), 0);
    }
    assert_eq!(a.read(reg::ESR), 0);
    assert_eq!(a.read(reg::LVT_CMCI), 0, "no CMCI by default");
    assert_eq!(a.read(reg::ICR_LOW), 0);
    assert_eq!(a.read(reg::ICR_HIGH), 0);
    for off in [
        reg::LVT_TIMER,
        reg::LVT_THERMAL,
        reg::LVT_PERF,
        reg::LVT_LINT0,
        reg::LVT_LINT1,
        reg::LVT_ERROR,
    ] {
        assert_eq!(a.read(off), 0x0001_0000, "LVT {off:#x} masked");
    }
    assert_eq!(a.read(reg::TIMER_INITIAL_COUNT), 0);
    assert_eq!(a.read(reg::TIMER_CURRENT_COUNT), 0);
    assert_eq!(a.read(reg::TIMER_DIVIDE), 0);
    assert!(!a.is_enabled());

    let b = LocalApic::new(3);
    assert_eq!(b.base(), 0xfee0_0800, "an AP has no BSP flag");
    assert_eq!(b.read(reg::ID), 0x0300_0000);
    assert_eq!(b.apic_id(), 3);

    let c = LocalApic::with_features(
        1,
        ApicFeatures {
            cmci: true,
            ..ApicFeatures::default()
        },
    );
    assert_eq!(c.read(reg::VERSION), 0x0006_0014);
    assert_eq!(c.read(reg::LVT_CMCI), 0x0001_0000);
}

#[test]
fn reset_and_init_reset() {
    let mut a = enabled(2);
    a.write(reg::TPR, 0x30);
    a.write(reg::LDR, 0x0400_0000);
    a.write(reg::ID, 0x0700_0000);
    a.accept(0x40, false);
    a.write(reg::LVT_TIMER, 0x20);
    a.write(reg::TIMER_INITIAL_COUNT, 1000);
    a.init_reset();
    assert_eq!(a.read(reg::ID), 0x0700_0000, "INIT keeps the APIC ID");
    assert_eq!(a.read(reg::TPR), 0);
    assert_eq!(a.read(reg::LDR), 0);
    assert_eq!(a.read(reg::SVR), 0xff);
    assert_eq!(a.read(reg::LVT_TIMER), 0x10000);
    assert_eq!(a.read(reg::TIMER_INITIAL_COUNT), 0);
    assert!(!a.irr_bit(0x40));
    a.reset();
    assert_eq!(
        a.read(reg::ID),
        0x0200_0000,
        "RESET restores the initial ID"
    );

    let mut x = enabled_x2(0x23);
    x.init_reset();
    assert_eq!(x.mode(), ApicMode::X2Apic, "INIT keeps x2APIC mode");
    assert_eq!(x.read_msr(0x802), Some(0x23));
    assert_eq!(x.read_msr(0x80d), Some(0x0002_0008));
    assert_eq!(x.read_msr(0x80f), Some(0xff));
    x.reset();
    assert_eq!(x.mode(), ApicMode::XApic);
    assert_eq!(x.base(), 0xfee0_0800);
}

// ----- TPR, PPR, priority masking (SDM 11.8.3) -----------------------------

#[test]
fn tpr_ppr_masking() {
    let mut a = enabled(0);
    assert!(a.accept(0x45, false));
    assert!(irr_reg_bit(&a, 0x45));
    a.write(reg::TPR, 0x40);
    assert_eq!(a.read(reg::PPR), 0x40);
    assert_eq!(a.pending_vector(), None, "class 4 is not above PPR class 4");
    a.write(reg::TPR, 0x3f);
    assert_eq!(
        a.read(reg::PPR),
        0x3f,
        "PPR = TPR when TPR class >= ISRV class"
    );
    assert_eq!(a.pending_vector(), Some(0x45));
    assert_eq!(a.ack(), Some(0x45));
    assert!(isr_reg_bit(&a, 0x45) && !irr_reg_bit(&a, 0x45));
    assert_eq!(
        a.read(reg::PPR),
        0x40,
        "PPR = ISRV[7:4] << 4 when above TPR"
    );
    a.write(reg::TPR, 0x4f);
    assert_eq!(a.read(reg::PPR), 0x4f);
    a.write(reg::TPR, 0x52);
    assert_eq!(a.read(reg::PPR), 0x52);
    a.accept(0x5f, false);
    assert_eq!(a.pending_vector(), None);
    a.set_tpr(0x00); // CR8 = 0
    assert_eq!(a.tpr(), 0);
    assert_eq!(a.pending_vector(), Some(0x5f));
    assert_eq!(a.read(reg::TPR), 0, "TPR bits 31:8 read 0");
    a.write(reg::TPR, 0xffff_ff21);
    assert_eq!(a.read(reg::TPR), 0x21);
}

#[test]
fn software_disabled_apic_holds_nothing() {
    let mut a = LocalApic::new(0);
    assert!(
        !a.accept(0x40, false),
        "SVR bit 8 = 0: fixed interrupts dropped"
    );
    assert_eq!(a.pending_vector(), None);
    a.write(reg::SVR, 0x1ff);
    assert!(a.accept(0x40, false));
    a.write(reg::SVR, 0x0ff);
    assert_eq!(a.pending_vector(), None);
    // NMI/INIT/SIPI are still taken.
    a.deliver(ApicEvent::Nmi);
    assert!(a.take_nmi());
    // Software disable masks the LVT, and the mask cannot be cleared.
    a.write(reg::SVR, 0x1ff);
    a.write(reg::LVT_TIMER, 0x20);
    assert_eq!(a.read(reg::LVT_TIMER), 0x20);
    a.write(reg::SVR, 0x0ff);
    assert_eq!(a.read(reg::LVT_TIMER), 0x10020);
    a.write(reg::LVT_TIMER, 0x21);
    assert_eq!(a.read(reg::LVT_TIMER), 0x10021);
}

// ----- IRR -> ISR -> EOI -----------------------------------------------------

#[test]
fn irr_isr_eoi_nested() {
    let mut a = enabled(0);
    a.accept(0x31, false);
    a.accept(0x30, false);
    assert_eq!(a.pending_vector(), Some(0x31));
    assert_eq!(a.ack(), Some(0x31));
    assert_eq!(a.read(reg::PPR), 0x30);
    assert_eq!(a.pending_vector(), None, "same class as the one in service");
    a.accept(0x61, false);
    assert_eq!(a.pending_vector(), Some(0x61), "a higher class nests");
    assert_eq!(a.ack(), Some(0x61));
    assert_eq!(a.read(reg::PPR), 0x60);
    assert!(isr_reg_bit(&a, 0x31) && isr_reg_bit(&a, 0x61));
    a.write(reg::EOI, 0);
    assert!(
        !a.isr_bit(0x61) && a.isr_bit(0x31),
        "EOI clears the highest ISR bit"
    );
    assert_eq!(a.read(reg::PPR), 0x30);
    assert_eq!(a.pending_vector(), None);
    a.write(reg::EOI, 0);
    assert_eq!(a.read(reg::PPR), 0);
    assert_eq!(a.pending_vector(), Some(0x30));
    assert_eq!(a.ack(), Some(0x30));
    assert_eq!(a.eoi(), Some(0x30));
    assert_eq!(a.eoi(), None);
    assert_eq!(a.ack(), None);

    // Level-triggered: TMR is set on acceptance and cleared at EOI.
    a.accept(0x80, true);
    assert!(a.tmr_bit(0x80));
    assert_eq!(a.read(reg::TMR0 + 0x40), 1);
    a.ack();
    a.write(reg::EOI, 0);
    assert!(!a.tmr_bit(0x80));

    // An interrupt pending twice coalesces in IRR.
    a.accept(0x90, false);
    a.accept(0x90, false);
    assert_eq!(a.ack(), Some(0x90));
    assert_eq!(a.pending_vector(), None);
    // ... but may be pending again while in service.
    a.accept(0x90, false);
    assert!(a.irr_bit(0x90) && a.isr_bit(0x90));
    assert_eq!(a.pending_vector(), None);
    a.eoi();
    assert_eq!(a.pending_vector(), Some(0x90));
}

// ----- ESR (SDM 11.5.3) -------------------------------------------------------

#[test]
fn esr_write_before_read() {
    let mut a = enabled(0);
    assert!(!a.accept(5, false), "vectors 0..=15 are illegal");
    assert!(!a.irr_bit(5));
    assert_eq!(
        a.read(reg::ESR),
        0,
        "errors are latched until ESR is written"
    );
    a.write(reg::ESR, 0);
    assert_eq!(a.read(reg::ESR), esr::RECEIVE_ILLEGAL_VECTOR);
    assert_eq!(
        a.read(reg::ESR),
        esr::RECEIVE_ILLEGAL_VECTOR,
        "reads do not clear"
    );
    a.write(reg::ESR, 0xffff_ffff);
    assert_eq!(a.read(reg::ESR), 0, "the write cleared the latch");

    // Sending a fixed IPI with an illegal vector.
    a.write(reg::ICR_HIGH, 0x0100_0000);
    assert_eq!(a.write(reg::ICR_LOW, 0x4002), None, "nothing is sent");
    a.write(reg::ESR, 0);
    assert_eq!(a.read(reg::ESR), esr::SEND_ILLEGAL_VECTOR);
    // NMI with vector 2 is fine.
    assert!(a.write(reg::ICR_LOW, 0x4402).is_some());
    a.write(reg::ESR, 0);
    assert_eq!(a.read(reg::ESR), 0);

    // An unmasked LVT error entry raises its interrupt.
    a.write(reg::LVT_ERROR, 0xfe);
    a.accept(1, false);
    assert_eq!(a.pending_vector(), Some(0xfe));

    // An illegal LVT timer vector.
    let mut t = enabled(0);
    t.write(reg::LVT_TIMER, 0x08);
    t.write(reg::TIMER_DIVIDE, 0xb);
    t.write(reg::TIMER_INITIAL_COUNT, 1);
    assert_eq!(t.advance(1), 1);
    assert_eq!(t.pending_vector(), None);
    t.write(reg::ESR, 0);
    assert_eq!(t.read(reg::ESR), esr::RECEIVE_ILLEGAL_VECTOR);

    let mut x = enabled_x2(0);
    x.accept(3, false);
    assert_eq!(
        x.write_msr(0x828, 1),
        Err(ApicFault),
        "only 0 may be written"
    );
    assert_eq!(x.write_msr(0x828, 0), Ok(None));
    assert_eq!(x.read_msr(0x828), Some(esr::RECEIVE_ILLEGAL_VECTOR as u64));
    assert_eq!(x.write_msr(0x83f, 7), Ok(None), "illegal self IPI");
    x.write_msr(0x828, 0).unwrap();
    assert_eq!(x.read_msr(0x828), Some(esr::RECEIVE_ILLEGAL_VECTOR as u64));
}

// ----- logical and physical destinations (SDM 11.6.2) ------------------------

#[test]
fn flat_logical_destinations() {
    let (bus, mut apics) = four();
    for (i, a) in apics.iter_mut().enumerate() {
        a.write(reg::LDR, 1 << (24 + i));
        assert_eq!(a.read(reg::LDR), 1 << (24 + i));
    }
    assert_eq!(bus.resolve(&logical_fixed(0b0101, 0x40)), vec![0, 2]);
    assert_eq!(bus.resolve(&logical_fixed(0b1000, 0x40)), vec![3]);
    assert_eq!(bus.resolve(&logical_fixed(0xf0, 0x40)), Vec::<usize>::new());
    assert_eq!(bus.resolve(&logical_fixed(0xff, 0x40)), vec![0, 1, 2, 3]);
    assert_eq!(bus.send(&logical_fixed(0b0110, 0x41)), 2);
    drain_all(&bus, &mut apics);
    let got: Vec<bool> = apics.iter().map(|a| a.irr_bit(0x41)).collect();
    assert_eq!(got, [false, true, true, false]);
    // The ICR path: the MDA is ICR bits 63:56.
    apics[0].write(reg::ICR_HIGH, 0x0900_0000);
    let ipi = apics[0].write(reg::ICR_LOW, 0x4842).unwrap();
    assert_eq!(ipi.dest_mode, DestMode::Logical);
    assert_eq!(bus.resolve(&ipi), vec![0, 3]);
}

#[test]
fn cluster_logical_destinations() {
    let (bus, mut apics) = four();
    let ldrs = [0x11u32, 0x12, 0x21, 0x22];
    for (a, ldr) in apics.iter_mut().zip(ldrs) {
        a.write(reg::DFR, 0x0fff_ffff);
        assert_eq!(a.read(reg::DFR), 0x0fff_ffff);
        a.write(reg::LDR, ldr << 24);
    }
    assert_eq!(bus.resolve(&logical_fixed(0x13, 0x40)), vec![0, 1]);
    assert_eq!(bus.resolve(&logical_fixed(0x22, 0x40)), vec![3]);
    assert_eq!(bus.resolve(&logical_fixed(0x23, 0x40)), vec![2, 3]);
    assert_eq!(bus.resolve(&logical_fixed(0x31, 0x40)), Vec::<usize>::new());
    assert_eq!(bus.resolve(&logical_fixed(0x10, 0x40)), Vec::<usize>::new());
    assert_eq!(bus.resolve(&logical_fixed(0xff, 0x40)), vec![0, 1, 2, 3]);
    // DFR reserved bits read as ones whatever is written.
    apics[0].write(reg::DFR, 0);
    assert_eq!(apics[0].read(reg::DFR), 0x0fff_ffff);
}

#[test]
fn x2apic_ids_and_cluster_destinations() {
    let bus = ApicBus::new();
    let ids = [0u32, 1, 16, 17];
    let mut apics: Vec<LocalApic> = ids.iter().map(|&i| enabled_x2(i)).collect();
    for a in apics.iter_mut() {
        bus.register(a);
    }
    let ldrs: Vec<u64> = apics.iter().map(|a| a.read_msr(0x80d).unwrap()).collect();
    assert_eq!(ldrs, [0x1, 0x2, 0x0001_0001, 0x0001_0002]);
    assert_eq!(apics[2].read_msr(0x802), Some(16));
    let mut ipi = logical_fixed(0x0001_0003, 0x40);
    ipi.x2apic = true;
    assert_eq!(bus.resolve(&ipi), vec![2, 3]);
    ipi.dest = 0x0000_0002;
    assert_eq!(bus.resolve(&ipi), vec![1]);
    ipi.dest = 0x0002_0001;
    assert_eq!(bus.resolve(&ipi), Vec::<usize>::new());
    ipi.dest = 0xffff_ffff;
    assert_eq!(bus.resolve(&ipi), vec![0, 1, 2, 3]);
    // x2APIC physical: 32-bit IDs; 0xff is an ordinary ID there.
    ipi.dest_mode = DestMode::Physical;
    ipi.dest = 17;
    assert_eq!(bus.resolve(&ipi), vec![3]);
    ipi.dest = 0xff;
    assert_eq!(bus.resolve(&ipi), Vec::<usize>::new());
    // Through the 64-bit ICR MSR.
    let ipi = apics[0]
        .write_msr(0x830, (0x0001_0002u64 << 32) | 0x0000_0850)
        .unwrap()
        .unwrap();
    assert!(ipi.x2apic);
    assert_eq!(ipi.dest, 0x0001_0002);
    assert_eq!(bus.send(&ipi), 1);
    drain_all(&bus, &mut apics);
    assert!(apics[3].irr_bit(0x50));
}

#[test]
fn physical_destinations() {
    let (bus, mut apics) = four();
    let mut ipi = logical_fixed(2, 0x40);
    ipi.dest_mode = DestMode::Physical;
    assert_eq!(bus.resolve(&ipi), vec![2]);
    ipi.dest = 0xff;
    assert_eq!(bus.resolve(&ipi), vec![0, 1, 2, 3], "0xff broadcasts");
    ipi.dest = 9;
    assert_eq!(bus.resolve(&ipi), Vec::<usize>::new());
    // A changed xAPIC ID is what the bus matches.
    apics[1].write(reg::ID, 0x0900_0000);
    assert_eq!(bus.resolve(&ipi), vec![1]);
    // A globally disabled APIC is never a target.
    apics[1].set_base(DEFAULT_APIC_BASE).unwrap();
    ipi.dest = 0xff;
    assert_eq!(bus.resolve(&ipi), vec![0, 2, 3]);
}

// ----- ICR -> Ipi encoding (SDM 11.6.1) ---------------------------------------

#[test]
fn icr_encoding() {
    let mut a = enabled(1);
    a.write(reg::ICR_HIGH, 0x03ff_ffff);
    assert_eq!(
        a.read(reg::ICR_HIGH),
        0x0300_0000,
        "ICR bits 55:32 reserved"
    );
    let ipi = a.write(reg::ICR_LOW, 0x0000_4031).unwrap();
    assert_eq!(
        ipi,
        Ipi {
            vector: 0x31,
            delivery_mode: DeliveryMode::Fixed,
            dest_mode: DestMode::Physical,
            shorthand: Shorthand::None,
            dest: 3,
            level: true,
            trigger: TriggerMode::Edge,
            source_apic_id: 1,
            source_vcpu: None,
            x2apic: false,
        }
    );
    assert_eq!(a.read(reg::ICR_LOW), 0x4031, "delivery status reads idle");
    let cases: [(u32, DeliveryMode, DestMode, Shorthand, bool, TriggerMode); 10] = [
        (
            0x0004_4032,
            DeliveryMode::Fixed,
            DestMode::Physical,
            Shorthand::SelfOnly,
            true,
            TriggerMode::Edge,
        ),
        (
            0x0008_4033,
            DeliveryMode::Fixed,
            DestMode::Physical,
            Shorthand::AllIncludingSelf,
            true,
            TriggerMode::Edge,
        ),
        (
            0x000c_4034,
            DeliveryMode::Fixed,
            DestMode::Physical,
            Shorthand::AllExcludingSelf,
            true,
            TriggerMode::Edge,
        ),
        (
            0x0000_4935,
            DeliveryMode::LowestPriority,
            DestMode::Logical,
            Shorthand::None,
            true,
            TriggerMode::Edge,
        ),
        (
            0x0000_4200,
            DeliveryMode::Smi,
            DestMode::Physical,
            Shorthand::None,
            true,
            TriggerMode::Edge,
        ),
        (
            0x0000_4400,
            DeliveryMode::Nmi,
            DestMode::Physical,
            Shorthand::None,
            true,
            TriggerMode::Edge,
        ),
        (
            0x000c_c500,
            DeliveryMode::Init,
            DestMode::Physical,
            Shorthand::AllExcludingSelf,
            true,
            TriggerMode::Level,
        ),
        (
            0x0008_8500,
            DeliveryMode::Init,
            DestMode::Physical,
            Shorthand::AllIncludingSelf,
            false,
            TriggerMode::Level,
        ),
        (
            0x000c_4608,
            DeliveryMode::StartUp,
            DestMode::Physical,
            Shorthand::AllExcludingSelf,
            true,
            TriggerMode::Edge,
        ),
        (
            0x0000_c036,
            DeliveryMode::Fixed,
            DestMode::Physical,
            Shorthand::None,
            true,
            TriggerMode::Level,
        ),
    ];
    for (icr, dm, dest_mode, sh, level, trig) in cases {
        let ipi = a.write(reg::ICR_LOW, icr).unwrap();
        assert_eq!(ipi.vector, icr as u8, "{icr:#x}");
        assert_eq!(ipi.delivery_mode, dm, "{icr:#x}");
        assert_eq!(ipi.dest_mode, dest_mode, "{icr:#x}");
        assert_eq!(ipi.shorthand, sh, "{icr:#x}");
        assert_eq!(ipi.level, level, "{icr:#x}");
        assert_eq!(ipi.trigger, trig, "{icr:#x}");
        assert_eq!(ipi.dest, 3);
        assert_eq!(a.read(reg::ICR_LOW), icr);
    }
    let deassert = a.write(reg::ICR_LOW, 0x0008_8500).unwrap();
    assert!(deassert.is_init_deassert());
    // Reserved delivery modes send nothing.
    assert_eq!(a.write(reg::ICR_LOW, 0x0000_4340), None);
    assert_eq!(a.write(reg::ICR_LOW, 0x0000_4740), None);
    // Reserved ICR bits are not stored.
    a.write(reg::ICR_LOW, 0xfff3_1040);
    assert_eq!(a.read(reg::ICR_LOW), 0x0000_0040);

    // x2APIC: one 64-bit MSR, 32-bit destination; SELF IPI register.
    let mut x = enabled_x2(7);
    let ipi = x
        .write_msr(0x830, (0x1234_5678u64 << 32) | 0x000c_4608)
        .unwrap()
        .unwrap();
    assert_eq!(ipi.dest, 0x1234_5678);
    assert_eq!(ipi.delivery_mode, DeliveryMode::StartUp);
    assert_eq!(ipi.shorthand, Shorthand::AllExcludingSelf);
    assert_eq!(ipi.source_apic_id, 7);
    assert_eq!(
        x.read_msr(0x830),
        Some((0x1234_5678u64 << 32) | 0x000c_4608)
    );
    assert_eq!(
        x.write_msr(0x830, 1 << 12),
        Err(ApicFault),
        "reserved bit 12"
    );
    assert_eq!(
        x.write_msr(0x830, 1 << 20),
        Err(ApicFault),
        "reserved bit 20"
    );
    let ipi = x.write_msr(0x83f, 0x55).unwrap().unwrap();
    assert_eq!(ipi.shorthand, Shorthand::SelfOnly);
    assert_eq!(ipi.vector, 0x55);
    assert_eq!(ipi.delivery_mode, DeliveryMode::Fixed);
    assert_eq!(ipi.trigger, TriggerMode::Edge);
    assert_eq!(x.write_msr(0x83f, 0x155), Err(ApicFault));
}

// ----- x2APIC mode and IA32_APIC_BASE (SDM 11.12) ------------------------------

#[test]
fn apic_base_transitions() {
    let mut a = enabled(5);
    a.write(reg::TPR, 0x20);
    assert_eq!(a.read_msr(0x802), None, "x2APIC MSRs #GP in xAPIC mode");
    assert_eq!(a.write_msr(0x808, 0), Err(ApicFault));
    assert_eq!(a.set_base(BASE_XAPIC | (1 << 9)), Err(ApicFault));
    assert_eq!(a.set_base(BASE_XAPIC | 1), Err(ApicFault));
    assert_eq!(
        a.set_base(BASE_XAPIC | (1 << 40)),
        Err(ApicFault),
        "above MAXPHYADDR"
    );
    assert_eq!(
        a.set_base(DEFAULT_APIC_BASE | APIC_BASE_EXTD),
        Err(ApicFault)
    );
    assert_eq!(a.mode(), ApicMode::XApic);

    // xAPIC -> x2APIC keeps the rest of the state.
    a.set_base(BASE_X2).unwrap();
    assert_eq!(a.mode(), ApicMode::X2Apic);
    assert_eq!(a.read_msr(0x802), Some(5));
    assert_eq!(a.read_msr(0x80d), Some(1 << 5));
    assert_eq!(a.read_msr(0x808), Some(0x20));
    assert_eq!(a.read_msr(0x803), Some(0x0005_0014));
    assert_eq!(a.read(reg::TPR), 0, "MMIO page not decoded in x2APIC mode");
    assert_eq!(a.write(reg::TPR, 0x30), None);
    assert_eq!(a.read_msr(0x808), Some(0x20));

    // x2APIC -> xAPIC is illegal; x2APIC -> disabled -> xAPIC is fine.
    assert_eq!(a.set_base(BASE_XAPIC), Err(ApicFault));
    a.set_base(DEFAULT_APIC_BASE).unwrap();
    assert_eq!(a.mode(), ApicMode::Disabled);
    assert_eq!(a.read_msr(0x802), None);
    assert_eq!(a.read(reg::ID), 0);
    assert_eq!(a.set_base(BASE_X2), Err(ApicFault), "disabled -> x2APIC");
    a.set_base(BASE_XAPIC).unwrap();
    assert_eq!(a.read(reg::ID), 0x0500_0000);
    assert_eq!(
        a.read(reg::TPR),
        0,
        "disable returned the registers to reset"
    );
    assert_eq!(a.read(reg::SVR), 0xff);

    // The host may restore any valid state.
    let mut h = LocalApic::new(9);
    h.set_base(DEFAULT_APIC_BASE).unwrap();
    h.set_base_host(BASE_X2).unwrap();
    assert_eq!(h.read_msr(0x802), Some(9));
    h.set_base_host(BASE_XAPIC | (1 << 32)).unwrap();
    assert_eq!(h.base_address(), 0x1_fee0_0000);
    assert_eq!(h.read(reg::ID), 0x0900_0000);

    // Without x2APIC support EXTD is reserved.
    let mut n = LocalApic::with_features(
        1,
        ApicFeatures {
            x2apic: false,
            ..ApicFeatures::default()
        },
    );
    assert_eq!(n.set_base(BASE_X2), Err(ApicFault));
}

#[test]
fn x2apic_msr_permissions() {
    let mut x = enabled_x2(0x23);
    assert_eq!(x.read_msr(0x80d), Some(0x0002_0008), "cluster 2, bit 3");
    // Write-only and nonexistent registers #GP on read.
    for msr in [
        0x800, 0x801, 0x809, 0x80b, 0x80c, 0x80e, 0x82f, 0x831, 0x83a, 0x83f, 0x840, 0x8ff,
    ] {
        assert_eq!(x.read_msr(msr), None, "{msr:#x}");
    }
    // Read-only and nonexistent registers #GP on write.
    for msr in [
        0x802, 0x803, 0x809, 0x80a, 0x80c, 0x80d, 0x80e, 0x810, 0x818, 0x820, 0x831, 0x839, 0x8ff,
    ] {
        assert_eq!(x.write_msr(msr, 0), Err(ApicFault), "{msr:#x}");
    }
    assert_eq!(x.read_msr(0x7ff), None);
    assert_eq!(x.write_msr(0x900, 0), Err(ApicFault));
    // Reserved bits #GP.
    assert_eq!(x.write_msr(0x808, 0x100), Err(ApicFault));
    assert_eq!(x.write_msr(0x808, 0x30), Ok(None));
    assert_eq!(x.read_msr(0x808), Some(0x30));
    assert_eq!(x.write_msr(0x80b, 1), Err(ApicFault), "EOI must be 0");
    assert_eq!(x.write_msr(0x80b, 0), Ok(None));
    assert_eq!(
        x.write_msr(0x80f, 0x11ff),
        Err(ApicFault),
        "no EOI suppression"
    );
    assert_eq!(x.write_msr(0x80f, 0x1ff), Ok(None));
    assert_eq!(x.write_msr(0x832, 1 << 32), Err(ApicFault));
    assert_eq!(
        x.write_msr(0x832, 0x700),
        Err(ApicFault),
        "no delivery mode in LVT timer"
    );
    assert_eq!(x.write_msr(0x835, 0x0001_a700), Ok(None));
    assert_eq!(x.read_msr(0x835), Some(0x0001_a700));
    assert_eq!(x.write_msr(0x83e, 0x4), Err(ApicFault));
    assert_eq!(x.write_msr(0x83e, 0xb), Ok(None));
    assert_eq!(x.read_msr(0x83e), Some(0xb));
    assert_eq!(x.write_msr(0x838, 1 << 32), Err(ApicFault));
    // IRR bits through MSRs.
    x.accept(0x41, false);
    assert_eq!(x.read_msr(0x822), Some(1 << 1));
}

// ----- the bus ----------------------------------------------------------------

#[test]
fn bus_fixed_nmi_init_sipi() {
    let (bus, mut apics) = four();
    // Fixed IPI 0 -> 2.
    apics[0].write(reg::ICR_HIGH, 2 << 24);
    let ipi = apics[0].write(reg::ICR_LOW, 0x4040).unwrap();
    assert_eq!(ipi.source_vcpu, Some(0));
    assert_eq!(bus.send(&ipi), 1);
    assert!(bus.has_pending(2));
    assert!(!bus.has_pending(0) && !bus.has_pending(1) && !bus.has_pending(3));
    assert_eq!(bus.drain(2, &mut apics[2]), 1);
    assert!(!bus.has_pending(2));
    assert_eq!(apics[2].pending_vector(), Some(0x40));
    assert_eq!(apics[2].ack(), Some(0x40));

    // NMI 0 -> 1.
    apics[0].write(reg::ICR_HIGH, 1 << 24);
    let ipi = apics[0].write(reg::ICR_LOW, 0x4400).unwrap();
    assert_eq!(bus.send(&ipi), 1);
    bus.drain(1, &mut apics[1]);
    assert!(apics[1].take_nmi());
    assert!(!apics[1].take_nmi());
    assert_eq!(apics[1].pending_vector(), None);

    // INIT, SIPI, SIPI broadcast excluding self, as kernels boot APs.
    let init = apics[0].write(reg::ICR_LOW, 0x000c_4500).unwrap();
    assert_eq!(bus.send(&init), 3);
    let deassert = apics[0].write(reg::ICR_LOW, 0x0008_8500).unwrap();
    assert_eq!(bus.send(&deassert), 0, "INIT de-assert is not an INIT");
    let sipi = apics[0].write(reg::ICR_LOW, 0x000c_4608).unwrap();
    assert_eq!(bus.send(&sipi), 3);
    assert!(!bus.has_pending(0), "the sender is excluded");
    for (i, a) in apics.iter_mut().enumerate().skip(1) {
        assert_eq!(bus.drain(i, a), 2);
        assert!(a.take_init());
        a.init_reset();
        assert_eq!(a.read(reg::SVR), 0xff, "INIT software-disables the APIC");
        a.write(reg::SVR, 0x1ff);
        assert_eq!(a.take_sipi(), Some(8), "AP starts at 0x8000");
        assert_eq!(a.take_sipi(), None);
    }
    // A second SIPI after the AP started is latched and then dropped by the
    // next INIT.
    assert_eq!(bus.send(&sipi), 3);
    assert_eq!(bus.send(&init), 3);
    bus.drain(1, &mut apics[1]);
    assert!(apics[1].take_init());
    assert_eq!(apics[1].take_sipi(), None);

    // Broadcast including self, and the self shorthand.
    drain_all(&bus, &mut apics);
    let all = apics[3].write(reg::ICR_LOW, 0x0008_4050).unwrap();
    assert_eq!(bus.send(&all), 4);
    let own = apics[3].write(reg::ICR_LOW, 0x0004_4051).unwrap();
    assert_eq!(bus.resolve(&own), vec![3]);
    bus.send(&own);
    drain_all(&bus, &mut apics);
    for (i, a) in apics.iter().enumerate() {
        assert!(a.irr_bit(0x50), "vCPU {i}");
        assert_eq!(a.irr_bit(0x51), i == 3);
    }
}

#[test]
fn bus_lowest_priority_msi_inject() {
    let (bus, mut apics) = four();
    for (i, a) in apics.iter_mut().enumerate() {
        a.write(reg::LDR, 1 << (24 + i));
    }
    let mut lp = logical_fixed(0b1110, 0x60);
    lp.delivery_mode = DeliveryMode::LowestPriority;
    assert_eq!(bus.resolve(&lp), vec![1]);
    apics[1].write(reg::SVR, 0xff); // software-disabled: skipped
    assert_eq!(bus.resolve(&lp), vec![2]);
    assert_eq!(bus.send(&lp), 1);
    drain_all(&bus, &mut apics);
    assert!(apics[2].irr_bit(0x60));

    // MSI: physical destination 3, vector 0x41, fixed, edge.
    assert_eq!(bus.send_msi(0xfee0_3000, 0x0041), 1);
    // MSI: logical destination 0b0001, level-triggered.
    assert_eq!(bus.send_msi(0xfee0_1004, 0x8042), 1);
    // Not an interrupt address / reserved delivery mode.
    assert_eq!(bus.send_msi(0xfed0_0000, 0x41), 0);
    assert_eq!(bus.send_msi(0xfee0_0000, 0x0341), 0);
    assert_eq!(bus.inject(2, 0x43), 1);
    assert_eq!(bus.inject(0xff, 0x44), 4);
    drain_all(&bus, &mut apics);
    assert!(apics[3].irr_bit(0x41));
    assert!(apics[0].irr_bit(0x42) && apics[0].tmr_bit(0x42));
    assert!(apics[2].irr_bit(0x43));
    assert!(
        apics[0].irr_bit(0x44) && !apics[1].irr_bit(0x44),
        "vCPU 1 is software-disabled"
    );
}

#[test]
fn bus_wait_wakes_on_send() {
    let bus = Arc::new(ApicBus::new());
    let mut a0 = enabled(0);
    let mut a1 = enabled(1);
    bus.register(&mut a0);
    bus.register(&mut a1);
    let b = Arc::clone(&bus);
    let waiter = thread::spawn(move || {
        let start = Instant::now();
        let woke = b.wait(1, Some(Duration::from_secs(20)));
        let elapsed = start.elapsed();
        b.drain(1, &mut a1);
        (woke, elapsed, a1.pending_vector())
    });
    thread::sleep(Duration::from_millis(50));
    a0.write(reg::ICR_HIGH, 1 << 24);
    let ipi = a0.write(reg::ICR_LOW, 0x4077).unwrap();
    assert_eq!(bus.send(&ipi), 1);
    let (woke, elapsed, pending) = waiter.join().unwrap();
    assert!(woke);
    assert!(elapsed < Duration::from_secs(10), "woke after {elapsed:?}");
    assert_eq!(pending, Some(0x77));

    // Timeouts, a wait that finds an event already queued, kicks.
    assert!(!bus.wait(0, Some(Duration::from_millis(10))));
    assert!(!bus.wait(7, None), "unknown vCPU");
    bus.inject(0, 0x30);
    assert!(bus.wait(0, Some(Duration::from_millis(10))));
    bus.drain(0, &mut a0);
    let b = Arc::clone(&bus);
    let kicked = thread::spawn(move || b.wait(0, Some(Duration::from_secs(20))));
    thread::sleep(Duration::from_millis(20));
    bus.kick(0);
    assert!(kicked.join().unwrap());
    assert_eq!(bus.drain(0, &mut a0), 0);
    assert!(!bus.has_pending(0));
}

#[test]
fn bus_concurrent_senders() {
    let bus = Arc::new(ApicBus::new());
    let mut apics: Vec<LocalApic> = (0..4).map(enabled).collect();
    for a in apics.iter_mut() {
        bus.register(a);
    }
    let handles: Vec<_> = apics
        .into_iter()
        .enumerate()
        .map(|(i, mut a)| {
            let bus = Arc::clone(&bus);
            thread::spawn(move || {
                // Each vCPU sends vector 0x40 + i to every other vCPU.
                let ipi = a.write(reg::ICR_LOW, 0x000c_4040 + i as u32).unwrap();
                assert_eq!(bus.send(&ipi), 3);
                let mut got = 0;
                let deadline = Instant::now() + Duration::from_secs(20);
                while got < 3 && Instant::now() < deadline {
                    bus.wait(i, Some(Duration::from_millis(100)));
                    bus.drain(i, &mut a);
                    got = (0..4u8).filter(|&j| a.irr_bit(0x40 + j)).count();
                }
                got
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 3);
    }
}

// ----- the timer (SDM 11.5.4) ---------------------------------------------------

#[test]
fn divide_configuration() {
    let expect = [
        (0x0, 2),
        (0x1, 4),
        (0x2, 8),
        (0x3, 16),
        (0x8, 32),
        (0x9, 64),
        (0xa, 128),
        (0xb, 1),
    ];
    for (tdcr, div) in expect {
        assert_eq!(divisor(tdcr), div, "{tdcr:#x}");
    }
}

#[test]
fn one_shot_divide_1_and_16() {
    let mut a = enabled(0);
    a.write(reg::LVT_TIMER, 0x20);
    a.write(reg::TIMER_DIVIDE, 0xb); // divide by 1
    a.advance(1000);
    a.write(reg::TIMER_INITIAL_COUNT, 100);
    assert_eq!(a.read(reg::TIMER_INITIAL_COUNT), 100);
    assert_eq!(a.read(reg::TIMER_CURRENT_COUNT), 100);
    assert_eq!(a.next_deadline(), Some(1100));
    assert_eq!(a.advance(1040), 0);
    assert_eq!(a.read(reg::TIMER_CURRENT_COUNT), 60);
    assert_eq!(a.advance(1099), 0);
    assert_eq!(a.read(reg::TIMER_CURRENT_COUNT), 1);
    assert_eq!(a.pending_vector(), None);
    assert_eq!(a.advance(1100), 1);
    assert_eq!(a.pending_vector(), Some(0x20));
    assert_eq!(a.read(reg::TIMER_CURRENT_COUNT), 0);
    assert_eq!(a.read(reg::TIMER_INITIAL_COUNT), 100);
    assert_eq!(a.next_deadline(), None, "one-shot does not reload");
    assert_eq!(a.advance(5000), 0);

    let mut b = enabled(0);
    b.write(reg::LVT_TIMER, 0x21);
    b.write(reg::TIMER_DIVIDE, 0x3); // divide by 16
    b.write(reg::TIMER_INITIAL_COUNT, 10);
    assert_eq!(b.next_deadline(), Some(160));
    b.advance(15);
    assert_eq!(b.read(reg::TIMER_CURRENT_COUNT), 10);
    b.advance(16);
    assert_eq!(b.read(reg::TIMER_CURRENT_COUNT), 9);
    b.advance(159);
    assert_eq!(b.read(reg::TIMER_CURRENT_COUNT), 1);
    assert_eq!(b.pending_vector(), None);
    assert_eq!(b.advance(160), 1);
    assert_eq!(b.pending_vector(), Some(0x21));

    // Time never goes backwards; a write of 0 stops the timer.
    b.write(reg::TIMER_INITIAL_COUNT, 10);
    assert_eq!(b.advance(3), 0);
    assert_eq!(b.now(), 160);
    b.write(reg::TIMER_INITIAL_COUNT, 0);
    assert_eq!(b.next_deadline(), None);
    assert_eq!(b.advance(10_000), 0);

    // A divide change keeps the remaining count at the new rate.
    let mut c = enabled(0);
    c.write(reg::LVT_TIMER, 0x22);
    c.write(reg::TIMER_DIVIDE, 0xb);
    c.write(reg::TIMER_INITIAL_COUNT, 100);
    c.advance(40);
    c.write(reg::TIMER_DIVIDE, 0x0); // divide by 2
    assert_eq!(c.read(reg::TIMER_CURRENT_COUNT), 60);
    assert_eq!(c.next_deadline(), Some(40 + 120));

    // The bus clock ratio scales everything.
    let mut d = LocalApic::with_features(
        0,
        ApicFeatures {
            tsc_per_bus_tick: 4,
            ..ApicFeatures::default()
        },
    );
    d.write(reg::SVR, 0x1ff);
    d.write(reg::LVT_TIMER, 0x23);
    d.write(reg::TIMER_DIVIDE, 0xb);
    d.write(reg::TIMER_INITIAL_COUNT, 10);
    assert_eq!(d.next_deadline(), Some(40));
}

#[test]
fn periodic_fires_every_period() {
    const N: u64 = 25;
    const P: u64 = 50;
    let mut a = enabled(0);
    a.write(reg::LVT_TIMER, 0x2_0030);
    a.write(reg::TIMER_DIVIDE, 0xb);
    a.write(reg::TIMER_INITIAL_COUNT, P as u32);
    let mut taken = 0;
    for k in 1..=N {
        assert_eq!(a.next_deadline(), Some(k * P));
        // A halted vCPU skips straight to the deadline.
        let t = a.next_deadline().unwrap();
        assert_eq!(a.advance(t), 1);
        if a.ack() == Some(0x30) {
            taken += 1;
            a.write(reg::EOI, 0);
        }
    }
    assert_eq!(taken, N);
    assert_eq!(a.timer_expirations(), N);

    // Stepping in small increments gives the same count.
    let mut s = enabled(0);
    s.write(reg::LVT_TIMER, 0x2_0030);
    s.write(reg::TIMER_DIVIDE, 0xb);
    s.write(reg::TIMER_INITIAL_COUNT, P as u32);
    let mut taken = 0;
    for t in (0..=N * P).step_by(7) {
        s.advance(t);
        if s.ack().is_some() {
            taken += 1;
            s.eoi();
        }
    }
    s.advance(N * P);
    if s.ack().is_some() {
        taken += 1;
    }
    assert_eq!(taken, N);

    // One big step: every expiry is counted, the interrupts coalesce in IRR
    // (one request per vector), and the phase is kept.
    let mut b = enabled(0);
    b.write(reg::LVT_TIMER, 0x2_0030);
    b.write(reg::TIMER_DIVIDE, 0xb);
    b.write(reg::TIMER_INITIAL_COUNT, P as u32);
    assert_eq!(b.advance(N * P + 7), N);
    assert_eq!(b.timer_expirations(), N);
    assert_eq!(b.next_deadline(), Some((N + 1) * P));
    assert_eq!(b.read(reg::TIMER_CURRENT_COUNT), (P - 7) as u32);
    assert_eq!(b.ack(), Some(0x30));
    assert_eq!(b.ack(), None);

    // A masked periodic timer keeps counting without injecting.
    let mut m = enabled(0);
    m.write(reg::LVT_TIMER, 0x3_0030);
    m.write(reg::TIMER_DIVIDE, 0xb);
    m.write(reg::TIMER_INITIAL_COUNT, P as u32);
    assert_eq!(m.next_deadline(), None, "nothing to deliver");
    assert_eq!(m.advance(2 * P + 20), 2);
    assert_eq!(m.pending_vector(), None);
    assert_eq!(m.read(reg::TIMER_CURRENT_COUNT), (P - 20) as u32);
    m.write(reg::LVT_TIMER, 0x2_0030); // unmask, same mode: keeps counting
    assert_eq!(m.next_deadline(), Some(3 * P));
    assert_eq!(m.advance(3 * P), 1);
    assert_eq!(m.pending_vector(), Some(0x30));

    // Changing the mode disarms (SDM 11.5.4.1).
    m.write(reg::LVT_TIMER, 0x30);
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.read(reg::TIMER_INITIAL_COUNT), 0);
    assert_eq!(m.read(reg::TIMER_CURRENT_COUNT), 0);
}

#[test]
fn tsc_deadline_mode() {
    let mut a = enabled(0);
    a.set_tsc_deadline(500);
    assert_eq!(a.tsc_deadline(), 0, "ignored outside TSC-deadline mode");
    a.write(reg::LVT_TIMER, 0x4_0040);
    assert_eq!(a.read(reg::LVT_TIMER), 0x4_0040);
    a.set_tsc_deadline(500);
    assert_eq!(a.tsc_deadline(), 500);
    assert_eq!(a.next_deadline(), Some(500));
    assert_eq!(a.advance(499), 0);
    assert_eq!(a.pending_vector(), None);
    assert_eq!(a.advance(500), 1);
    assert_eq!(a.pending_vector(), Some(0x40));
    assert_eq!(a.tsc_deadline(), 0, "firing clears IA32_TSC_DEADLINE");
    assert_eq!(a.next_deadline(), None);
    a.ack();
    a.eoi();

    // Writing 0 disarms.
    a.set_tsc_deadline(1000);
    a.set_tsc_deadline(0);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(a.advance(2000), 0);
    // A deadline in the past fires at the next advance.
    a.set_tsc_deadline(1500);
    assert_eq!(a.advance(2000), 1);
    a.ack();
    a.eoi();

    // Initial-count writes are ignored and the current count reads 0.
    a.write(reg::TIMER_INITIAL_COUNT, 100);
    assert_eq!(a.read(reg::TIMER_INITIAL_COUNT), 0);
    assert_eq!(a.read(reg::TIMER_CURRENT_COUNT), 0);

    // Leaving TSC-deadline mode disarms.
    a.set_tsc_deadline(3000);
    a.write(reg::LVT_TIMER, 0x40);
    assert_eq!(a.tsc_deadline(), 0);
    a.write(reg::LVT_TIMER, 0x4_0040);
    assert_eq!(a.tsc_deadline(), 0);
    assert_eq!(a.advance(4000), 0);

    // Without the feature, bit 18 is reserved.
    let mut n = LocalApic::with_features(
        0,
        ApicFeatures {
            tsc_deadline: false,
            ..ApicFeatures::default()
        },
    );
    n.write(reg::SVR, 0x1ff);
    n.write(reg::LVT_TIMER, 0x4_0040);
    assert_eq!(n.read(reg::LVT_TIMER), 0x40);
    n.set_tsc_deadline(5);
    assert_eq!(n.advance(10), 0);
}

#[test]
fn lint_pins() {
    let mut a = enabled(0);
    assert!(!a.raise_lint(1), "masked after reset");
    a.write(reg::LVT_LINT1, 0x400); // NMI
    assert!(a.raise_lint(1));
    assert!(a.take_nmi());
    a.write(reg::LVT_LINT0, 0x8031); // fixed, level
    assert!(a.raise_lint(0));
    assert!(a.irr_bit(0x31) && a.tmr_bit(0x31));
    a.write(reg::LVT_LINT0, 0x700); // ExtINT: left to the caller's PIC
    assert!(!a.raise_lint(0));
    assert!(!a.raise_lint(2));
}

// ----- robustness -----------------------------------------------------------------

#[test]
fn no_panic_on_any_guest_access() {
    let values = [0u32, 0xffff_ffff, 0x1234_5678, 0x0000_0100, 0x000c_4500];
    for features in [
        ApicFeatures::default(),
        ApicFeatures {
            cmci: true,
            tsc_deadline: false,
            tsc_per_bus_tick: 0,
            phys_addr_bits: 0,
            x2apic: true,
        },
    ] {
        let mut a = LocalApic::with_features(0, features);
        let bus = ApicBus::new();
        bus.register(&mut a);
        for &v in &values {
            for off in (0..0x1010).chain([u32::MAX, 0x8000_0000]) {
                let _ = a.read(off);
                if let Some(ipi) = a.write(off, v) {
                    bus.send(&ipi);
                }
            }
            a.advance(a.now().saturating_add(1_000_000));
            bus.drain(0, &mut a);
        }
        a.write(reg::SVR, 0x1ff);
        let _ = a.set_base(BASE_X2);
        for v in [0u64, u64::MAX, 0xff, 0x4_0040, 0x000c_4500] {
            for msr in 0x7f0..0x910 {
                let _ = a.read_msr(msr);
                if let Ok(Some(ipi)) = a.write_msr(msr, v) {
                    bus.send(&ipi);
                }
            }
            a.set_tsc_deadline(v);
            a.advance(a.now().saturating_add(u64::MAX / 4));
            bus.drain(0, &mut a);
        }
        for v in [0u64, u64::MAX, 1 << 63, 0xfee0_0c00, 0xfee0_0400] {
            let _ = a.set_base(v);
            let _ = a.set_base_host(v);
        }
        let _ = a.next_deadline();
        while a.ack().is_some() {}
        while a.eoi().is_some() {}
    }
    // Extreme timer values.
    let mut t = enabled(0);
    t.write(reg::LVT_TIMER, 0x2_0030);
    t.write(reg::TIMER_DIVIDE, 0xa);
    t.advance(u64::MAX - 10);
    t.write(reg::TIMER_INITIAL_COUNT, u32::MAX);
    let _ = t.advance(u64::MAX);
    let _ = t.read(reg::TIMER_CURRENT_COUNT);
    let mut p = enabled(0);
    p.write(reg::LVT_TIMER, 0x2_0030);
    p.write(reg::TIMER_DIVIDE, 0xb);
    p.write(reg::TIMER_INITIAL_COUNT, 1);
    assert_eq!(p.advance(u64::MAX), u64::MAX);
}

#[test]
fn narrow_reads() {
    let a = LocalApic::new(0x12);
    assert_eq!(a.read(reg::ID + 3) & 0xff, 0x12);
    assert_eq!(a.read(reg::VERSION + 2) & 0xff, 5);
    assert_eq!(a.read(reg::VERSION + 4), 0);
    assert_eq!(a.read(reg::VERSION + 0xc), 0);
}

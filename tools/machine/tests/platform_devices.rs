//! The platform devices on the bus, as a VMM loop sees them: the ACPI PM
//! timer's rate on the host clock, the RTC's interrupt through the I/O
//! APIC, the SCI, S3 entry and the RTC wake-up, pc-testdev's MMIO scratch
//! area at any access width.

use softvm_machine::bus::{Action, Bus};
use softvm_machine::clock::ManualClock;
use softvm_machine::MachineConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IOAPIC: u64 = 0xfec0_0000;

fn bus_on(clock: Arc<ManualClock>) -> Bus<std::io::Sink> {
    // 2000-01-01 00:00:00 UTC, on the second.
    let wall = Duration::from_secs(946_684_800);
    Bus::with_clock(&MachineConfig::default(), std::io::sink(), clock, wall)
}

fn inb(bus: &mut Bus<std::io::Sink>, port: u16) -> u8 {
    let mut d = [0u8; 1];
    bus.read(port, &mut d);
    d[0]
}

fn ind(bus: &mut Bus<std::io::Sink>, port: u16) -> u32 {
    let mut d = [0u8; 4];
    bus.read(port, &mut d);
    u32::from_le_bytes(d)
}

fn out(bus: &mut Bus<std::io::Sink>, port: u16, data: &[u8]) -> Action {
    bus.write(port, data)
}

fn cmos_write(bus: &mut Bus<std::io::Sink>, reg: u8, v: u8) {
    out(bus, 0x70, &[reg]);
    out(bus, 0x71, &[v]);
}

/// Route ISA IRQ `irq` (GSI `irq`) to `vector` on APIC 0, edge or level.
fn route(bus: &mut Bus<std::io::Sink>, irq: u32, vector: u8, level: bool) {
    let low = u32::from(vector) | if level { 1 << 15 } else { 0 };
    bus.mmio_write(IOAPIC, &(0x10 + 2 * irq).to_le_bytes());
    bus.mmio_write(IOAPIC + 0x10, &low.to_le_bytes());
    bus.mmio_write(IOAPIC, &(0x11 + 2 * irq).to_le_bytes());
    bus.mmio_write(IOAPIC + 0x10, &0u32.to_le_bytes());
}

fn vectors(bus: &mut Bus<std::io::Sink>) -> Vec<u8> {
    bus.msi
        .drain(..)
        .map(|m| m.address_data().1 as u8)
        .collect()
}

#[test]
fn pm_timer_runs_at_3_579545_mhz_of_host_time() {
    let mut bus = Bus::new(&MachineConfig::default(), std::io::sink());
    let t0 = Instant::now();
    let a = ind(&mut bus, 0x608);
    std::thread::sleep(Duration::from_millis(300));
    let b = ind(&mut bus, 0x608);
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(a >> 24, 0, "24 bits");
    let ticks = f64::from(b.wrapping_sub(a) & 0xff_ffff);
    let rate = ticks / secs;
    println!(
        "PM timer: {ticks} ticks in {secs:.6} s of host time = {rate:.0} Hz (nominal 3579545)"
    );
    // The two reads bracket the sleep: the measured interval is a little
    // longer than the timer's, never shorter by more than the reads.
    assert!((rate - 3_579_545.0).abs() < 3_579_545.0 * 0.02, "{rate} Hz");
}

#[test]
fn rtc_update_interrupt_reaches_the_ioapic_and_register_c_rearms_it() {
    let clock = Arc::new(ManualClock::new());
    let mut bus = bus_on(clock.clone());
    route(&mut bus, 8, 0x38, false);
    cmos_write(&mut bus, 0x0b, 0x12); // 24 h, UIE
    assert_eq!(bus.poll_timers(), Some(Duration::from_secs(1)));
    clock.advance(Duration::from_millis(1000));
    bus.poll_timers();
    assert_eq!(vectors(&mut bus), [0x38]);
    // Not re-raised until register C is read.
    clock.advance(Duration::from_millis(1000));
    bus.poll_timers();
    assert_eq!(vectors(&mut bus), []);
    out(&mut bus, 0x70, &[0x0c]);
    // PF too: the periodic flag follows register A's rate (1024 Hz)
    // whether or not PIE is set.
    assert_eq!(inb(&mut bus, 0x71), 0xd0, "IRQF | PF | UF");
    clock.advance(Duration::from_millis(1000));
    bus.poll_timers();
    assert_eq!(vectors(&mut bus), [0x38]);
    out(&mut bus, 0x70, &[0x00]);
    assert_eq!(inb(&mut bus, 0x71), 0x03, "seconds, BCD");
}

#[test]
fn pm_timer_status_raises_the_sci_on_irq_9() {
    let clock = Arc::new(ManualClock::new());
    let mut bus = bus_on(clock.clone());
    route(&mut bus, 9, 0x49, true);
    out(&mut bus, 0xb2, &[0xf1]); // ACPI_ENABLE
    out(&mut bus, 0x602, &[1, 0]); // TMR_EN
    let wait = bus.poll_timers().unwrap();
    assert!((wait.as_secs_f64() - 8_388_608.0 / 3_579_545.0).abs() < 1e-6);
    clock.advance(wait);
    bus.poll_timers();
    assert_eq!(vectors(&mut bus), [0x49]);
    assert_eq!(inb(&mut bus, 0x600) & 1, 1, "TMR_STS");
    out(&mut bus, 0x600, &[1, 0]);
    assert_eq!(inb(&mut bus, 0x600) & 1, 0);
}

#[test]
fn s3_waits_for_an_enabled_rtc_alarm() {
    let clock = Arc::new(ManualClock::new());
    let mut bus = bus_on(clock.clone());
    for reg in [1, 3, 5] {
        cmos_write(&mut bus, reg, 0xc0);
    }
    cmos_write(&mut bus, 0x0b, 0x22); // 24 h, AIE
    assert_eq!(out(&mut bus, 0x604, &[0x00, 0x24]), Action::Suspend);
    assert!(bus.suspended());
    // RTC_EN is off: the alarm cannot wake the machine.
    assert!(!bus.can_wake());
    assert_eq!(bus.poll_timers(), None);
    clock.advance(Duration::from_secs(2));
    bus.poll_timers();
    assert!(!bus.take_wake());
    out(&mut bus, 0x602, &[0x00, 0x04]); // RTC_EN
    assert!(bus.can_wake());
    assert_eq!(bus.poll_timers(), Some(Duration::from_secs(1)));
    clock.advance(Duration::from_millis(999));
    bus.poll_timers();
    assert!(!bus.take_wake());
    clock.advance(Duration::from_millis(1));
    bus.poll_timers();
    assert!(bus.take_wake());
    assert!(!bus.suspended());
    assert_eq!(
        ind(&mut bus, 0x600),
        0x8400,
        "WAK_STS | RTC_STS, enables cleared"
    );
    out(&mut bus, 0x70, &[0x0f]);
    assert_eq!(inb(&mut bus, 0x71), 0xfe, "CMOS shutdown status: S3 resume");
    out(&mut bus, 0x70, &[0x0b]);
    assert_eq!(inb(&mut bus, 0x71), 0x02, "the resume reset cleared AIE");
}

#[test]
fn testdev_mmio_scratch_keeps_accesses_of_any_width() {
    let mut bus = bus_on(Arc::new(ManualClock::new()));
    let base = 0xff00_0000u64;
    let data: Vec<u8> = (1..=16).collect();
    assert!(bus.mmio_write(base + 0x100, &data));
    let mut back = [0u8; 16];
    assert!(bus.mmio_read(base + 0x100, &mut back));
    assert_eq!(back.to_vec(), data);
    let mut q = [0u8; 8];
    bus.mmio_read(base + 0x108, &mut q);
    assert_eq!(q, [9, 10, 11, 12, 13, 14, 15, 16]);
    let mut y = [0u8; 32];
    bus.mmio_read(base + 0x0f0, &mut y);
    assert_eq!(&y[16..], &data[..]);
}

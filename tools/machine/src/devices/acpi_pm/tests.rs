use super::*;

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

#[test]
fn timer_counts_at_3_579545_mhz_and_wraps_at_24_bits() {
    let pm = AcpiPm::new();
    assert_eq!(pm.read(PM_TMR, 4, Duration::ZERO), 0);
    assert_eq!(pm.read(PM_TMR, 4, s(1.0)), 3_579_545);
    // 5 s = 17 897 725 ticks, past 2^24.
    assert_eq!(pm.read(PM_TMR, 4, s(5.0)), 17_897_725 - (1 << 24));
    assert_eq!(pm.read(PM_TMR + 2, 1, s(1.0)), 0x36); // 0x369e99
    assert_eq!(pm.read(PM_TMR, 2, s(1.0)), 0x9e99);
}

#[test]
fn timer_status_every_2_pow_23_ticks_and_its_sci() {
    let mut pm = AcpiPm::new();
    let period = 8_388_608.0 / 3_579_545.0; // 2.3435 s
    assert_eq!(pm.read(PM1A_EVT, 2, s(period - 0.001)) & 1, 0);
    assert_eq!(pm.read(PM1A_EVT, 2, s(period + 0.001)) & 1, 1);
    // Enabled, but no SCI until SCI_EN.
    pm.write(PM1A_EVT + 2, 2, 1, s(period + 0.001));
    assert!(!pm.sci(s(period + 0.001)));
    pm.write(SMI_CMD, 1, u32::from(ACPI_ENABLE), s(period + 0.001));
    assert_eq!(pm.read(PM1A_CNT, 2, Duration::ZERO) & 1, 1);
    assert!(pm.sci(s(period + 0.001)));
    // Write 1 to clear: the line drops, the next period raises it again.
    pm.write(PM1A_EVT, 2, 1, s(period + 0.002));
    assert!(!pm.sci(s(period + 0.002)));
    let next = pm.next_event(s(period + 0.002)).unwrap();
    assert!((next.as_secs_f64() - 2.0 * period).abs() < 1e-6, "{next:?}");
    assert!(!pm.sci(next - Duration::from_micros(1)));
    assert!(pm.sci(next));
    // Writing 0 clears nothing.
    pm.write(PM1A_EVT, 2, 0, next);
    assert!(pm.sci(next));
    pm.write(SMI_CMD, 1, u32::from(ACPI_DISABLE), next);
    assert!(!pm.sci(next));
    assert_eq!(pm.next_event(next), None);
}

#[test]
fn sleep_types_from_pm1a_control() {
    let t = Duration::ZERO;
    for (val, size, want) in [
        (0x2400u32, 2, PmAction::Suspend),
        (0x2000, 2, PmAction::PowerOff),
        (0x2800, 2, PmAction::PowerOff),
        (0x2c00, 2, PmAction::None),
        (0x0400, 2, PmAction::None),
        (0x0000_2401, 4, PmAction::Suspend),
    ] {
        let mut pm = AcpiPm::new();
        assert_eq!(pm.write(PM1A_CNT, size, val, t), want, "{val:#x}");
        // SLP_EN reads 0; SLP_TYP and SCI_EN keep what was written.
        assert_eq!(pm.read(PM1A_CNT, 2, t), val & 0x1c01, "{val:#x}");
    }
    // The high byte alone, as a byte write.
    let mut pm = AcpiPm::new();
    assert_eq!(pm.write(PM1A_CNT + 1, 1, 0x24, t), PmAction::Suspend);
}

#[test]
fn enables_gpe_apm_and_reset() {
    let t = Duration::ZERO;
    let mut pm = AcpiPm::new();
    pm.write(PM1A_EVT + 2, 2, 0xffff, t);
    // Only the SCI event enables exist.
    assert_eq!(pm.read(PM1A_EVT + 2, 2, t), 0x0721);
    assert!(pm.rtc_wake_enabled());
    // PM1_STS and PM1_EN in one dword.
    assert_eq!(pm.read(PM1A_EVT, 4, t), 0x0721 << 16);
    pm.write(GPE0 + 2, 2, 0x0102, t);
    assert_eq!(pm.read(GPE0, 4, t), 0x0102 << 16);
    pm.write(GPE0, 2, 0xffff, t);
    assert_eq!(pm.read(GPE0, 2, t), 0);
    pm.write(0xb3, 1, 0x5a, t);
    assert_eq!(pm.read(0xb3, 1, t), 0x5a);
    assert_eq!(pm.write(RESET_PORT, 1, 0x02, t), PmAction::None);
    assert_eq!(pm.read(RESET_PORT, 1, t), 0x02);
    assert_eq!(
        pm.write(RESET_PORT, 1, u32::from(RESET_VALUE), t),
        PmAction::Reset
    );
    // A dword at 0xcf9 is not the reset register's.
    assert_eq!(pm.write(RESET_PORT, 4, 0x06, t), PmAction::None);
    // Beyond the block: all ones.
    assert_eq!(pm.read(PM1A_CNT, 4, t) >> 16, 0xffff);
}

#[test]
fn resume_reports_the_rtc_wake() {
    let t = Duration::ZERO;
    let mut pm = AcpiPm::new();
    pm.write(SMI_CMD, 1, u32::from(ACPI_ENABLE), t);
    pm.write(PM1A_EVT + 2, 2, 0x400, t);
    pm.resume_by_rtc(t);
    assert_eq!(pm.read(PM1A_EVT, 2, t), 0x8400);
    assert_eq!(pm.read(PM1A_EVT + 2, 2, t), 0);
    assert_eq!(pm.read(PM1A_CNT, 2, t), 1);
    pm.write(PM1A_EVT, 2, 0x8400, t);
    assert_eq!(pm.read(PM1A_EVT, 2, t), 0);
}

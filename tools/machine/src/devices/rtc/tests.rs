use super::*;

/// 2000-02-29 12:34:56 UTC (a Tuesday), a quarter second in.
const START: Duration = Duration::new(951_827_696, 250_000_000);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

fn rtc() -> Rtc {
    Rtc::new(START, Duration::ZERO, 128 << 20, 0, 1)
}

fn get(r: &mut Rtc, i: u8, now: Duration) -> u8 {
    r.write(0x70, i, now);
    r.read(0x71, now)
}

fn set(r: &mut Rtc, i: u8, v: u8, now: Duration) {
    r.write(0x70, i, now);
    r.write(0x71, v, now);
}

/// (seconds, minutes, hours, weekday, day, month, year, century)
fn time(r: &mut Rtc, now: Duration) -> [u8; 8] {
    [0, 2, 4, 6, 7, 8, 9, 0x32].map(|i| get(r, i, now))
}

#[test]
fn starts_at_host_time_and_advances() {
    let mut r = rtc();
    assert_eq!(
        time(&mut r, Duration::ZERO),
        [0x56, 0x34, 0x12, 3, 0x29, 0x02, 0x00, 0x20]
    );
    // The host's second ends 750 ms into the machine's life.
    assert_eq!(get(&mut r, reg::SECONDS, ms(749)), 0x56);
    assert_eq!(get(&mut r, reg::SECONDS, ms(750)), 0x57);
    // An hour and a day later (leap day to March 1st, a Wednesday).
    let later = ms(750) + Duration::from_secs(86_400 + 3_600 + 3);
    assert_eq!(
        time(&mut r, later),
        [0x00, 0x35, 0x13, 4, 0x01, 0x03, 0x00, 0x20]
    );
    assert_eq!(get(&mut r, reg::D, later), D_VRT);
    assert_eq!(get(&mut r, reg::A, Duration::ZERO), 0x26);
    assert_eq!(get(&mut r, reg::B, Duration::ZERO), B_24H);
}

#[test]
fn update_in_progress_for_244_us_before_each_update() {
    let mut r = rtc();
    let edge = ms(750);
    let uip = |r: &mut Rtc, t| get(r, reg::A, t) & A_UIP != 0;
    assert!(!uip(&mut r, edge - us(300)));
    assert!(uip(&mut r, edge - us(240)));
    assert!(uip(&mut r, edge - us(1)));
    // During UIP the registers still hold the old second.
    assert_eq!(get(&mut r, reg::SECONDS, edge - us(1)), 0x56);
    assert!(!uip(&mut r, edge));
    assert_eq!(get(&mut r, reg::SECONDS, edge), 0x57);
    assert!(uip(&mut r, edge + ms(1000) - us(100)));
    // Register A's bit 7 is read-only; SET stops updates and UIP.
    set(&mut r, reg::A, 0xa6, edge);
    assert_eq!(get(&mut r, reg::A, edge), 0x26);
    set(&mut r, reg::B, B_SET | B_24H, edge);
    assert!(!uip(&mut r, edge + ms(1000) - us(100)));
}

#[test]
fn binary_and_12_hour_formats() {
    let mut r = rtc();
    let t = Duration::ZERO;
    set(&mut r, reg::B, B_DM_BINARY, t);
    assert_eq!(time(&mut r, t), [56, 34, 0x8c, 3, 29, 2, 0, 20]);
    set(&mut r, reg::B, B_DM_BINARY | B_24H, t);
    assert_eq!(get(&mut r, reg::HOURS, t), 12);
    set(&mut r, reg::B, 0, t);
    assert_eq!(get(&mut r, reg::HOURS, t), 0x92);
}

#[test]
fn set_bit_lets_software_write_the_time() {
    let mut r = rtc();
    let t = ms(100);
    set(&mut r, reg::B, B_SET | B_24H | B_UIE, t);
    assert_eq!(get(&mut r, reg::B, t) & B_UIE, 0, "SET clears UIE");
    // 2024-12-31 23:59:58; the day is written before the month (31 with
    // February still in the month register must not be normalised).
    for (i, v) in [
        (reg::DAY, 0x31),
        (reg::MONTH, 0x12),
        (reg::YEAR, 0x24),
        (reg::HOURS, 0x23),
    ] {
        set(&mut r, i, v, t);
    }
    set(&mut r, reg::MINUTES, 0x59, t);
    set(&mut r, reg::SECONDS, 0x58, t);
    // Stopped: no update while SET is on.
    assert_eq!(get(&mut r, reg::SECONDS, t + ms(3000)), 0x58);
    set(&mut r, reg::B, B_24H, t + ms(3000));
    // The divider's phase is unchanged: updates at 0.75 s, 1.75 s, ...
    let t0 = t + ms(3000);
    assert_eq!(get(&mut r, reg::SECONDS, t0), 0x58);
    assert_eq!(get(&mut r, reg::SECONDS, ms(3750)), 0x59);
    assert_eq!(
        time(&mut r, ms(4750)),
        [0x00, 0x00, 0x00, 4, 0x01, 0x01, 0x25, 0x20]
    );
}

#[test]
fn writing_a_time_register_while_running_takes_effect() {
    let mut r = rtc();
    set(&mut r, reg::MINUTES, 0x07, ms(10));
    assert_eq!(time(&mut r, ms(10))[..3], [0x56, 0x07, 0x12]);
    assert_eq!(get(&mut r, reg::SECONDS, ms(750)), 0x57);
}

#[test]
fn alarm_sets_af_and_with_aie_irqf_and_wakes() {
    let mut r = rtc();
    let t = Duration::ZERO;
    // No periodic ticks (PF is set at their rate whether or not enabled).
    set(&mut r, reg::A, 0x20, t);
    // Alarm at 12:34:58, no AIE: AF only, at the update to :58.
    set(&mut r, reg::SECONDS_ALARM, 0x58, t);
    set(&mut r, reg::MINUTES_ALARM, 0x34, t);
    set(&mut r, reg::HOURS_ALARM, 0x12, t);
    get(&mut r, reg::C, t);
    r.poll(ms(1749));
    assert_eq!(get(&mut r, reg::C, ms(1749)), C_UF);
    r.poll(ms(1750));
    assert!(!r.irq());
    assert_eq!(get(&mut r, reg::C, ms(1750)), C_AF | C_UF);
    assert!(!r.take_alarm_wake());
    // With AIE and "don't care" in every alarm register: every second.
    for i in [reg::SECONDS_ALARM, reg::MINUTES_ALARM, reg::HOURS_ALARM] {
        set(&mut r, i, 0xc0, ms(1750));
    }
    set(&mut r, reg::B, B_24H | B_AIE, ms(1750));
    assert!(r.next_event(ms(1750)).is_some_and(|n| n == ms(2750)));
    r.poll(ms(2750));
    assert!(r.irq());
    assert!(r.take_alarm_wake());
    assert!(!r.take_alarm_wake());
    assert_eq!(get(&mut r, reg::C, ms(2750)), C_IRQF | C_AF | C_UF);
    assert!(!r.irq(), "reading C lowers IRQ 8");
    assert_eq!(get(&mut r, reg::C, ms(2750)), 0);
}

#[test]
fn update_ended_interrupt() {
    let mut r = rtc();
    set(&mut r, reg::A, 0x20, Duration::ZERO);
    set(&mut r, reg::B, B_24H | B_UIE, ms(1));
    r.poll(ms(700));
    assert!(!r.irq());
    r.poll(ms(760));
    assert!(r.irq());
    assert_eq!(get(&mut r, reg::C, ms(760)), C_IRQF | C_UF);
}

#[test]
fn periodic_interrupt_at_the_rate_of_register_a() {
    let mut r = rtc();
    // RS = 6: 1024 Hz, a period of 976.5625 us.
    set(&mut r, reg::A, 0x26, Duration::ZERO);
    set(&mut r, reg::B, B_24H | B_PIE, Duration::ZERO);
    get(&mut r, reg::C, Duration::ZERO);
    let next = r.next_event(Duration::ZERO).unwrap();
    // The divider started 250 ms into a second, 256 periods in: the next
    // one ends 976.5625 us later (rounded up to the nanosecond).
    assert_eq!(next, Duration::from_nanos(976_563));
    r.poll(next - us(1));
    assert!(!r.irq());
    r.poll(next);
    assert!(r.irq());
    assert_eq!(get(&mut r, reg::C, next) & (C_IRQF | C_PF), C_IRQF | C_PF);
    // PF without PIE: set at the rate, no interrupt.
    set(&mut r, reg::B, B_24H, next);
    r.poll(next + ms(2));
    assert!(!r.irq());
    assert_eq!(get(&mut r, reg::C, next + ms(2)), C_PF);
    // RS = 0: none.
    set(&mut r, reg::A, 0x20, next);
    assert_eq!(r.next_event(next), None);
}

#[test]
fn divider_reset_holds_the_clock_and_restarts_half_a_second_later() {
    let mut r = rtc();
    set(&mut r, reg::A, 0x76, ms(100));
    assert_eq!(get(&mut r, reg::SECONDS, ms(5000)), 0x56);
    assert_eq!(get(&mut r, reg::A, ms(5000)) & A_UIP, 0);
    set(&mut r, reg::A, 0x26, ms(5000));
    assert_eq!(get(&mut r, reg::SECONDS, ms(5499)), 0x56);
    assert_eq!(get(&mut r, reg::SECONDS, ms(5500)), 0x57);
}

#[test]
fn cmos_ram_keeps_what_is_written() {
    let mut r = rtc();
    set(&mut r, 0x40, 0xab, Duration::ZERO);
    // Bit 7 of the index port masks NMIs; the index is the low 7 bits.
    r.write(0x70, 0x80 | 0x40, Duration::ZERO);
    assert_eq!(r.read(0x71, Duration::ZERO), 0xab);
    set(&mut r, reg::D, 0, Duration::ZERO);
    assert_eq!(get(&mut r, reg::D, Duration::ZERO), D_VRT);
    assert_eq!(get(&mut r, 0x15, Duration::ZERO), 0x80); // 640 = 0x280
    assert_eq!(get(&mut r, 0x16, Duration::ZERO), 0x02);
    r.suspend();
    assert_eq!(get(&mut r, reg::SHUTDOWN_STATUS, Duration::ZERO), 0xfe);
}

#[test]
fn reset_clears_interrupt_enables_and_flags() {
    let mut r = rtc();
    set(
        &mut r,
        reg::B,
        B_24H | B_AIE | B_PIE | B_UIE,
        Duration::ZERO,
    );
    r.poll(ms(800));
    assert!(r.irq());
    r.reset();
    assert!(!r.irq());
    assert_eq!(get(&mut r, reg::B, ms(800)), B_24H);
    assert_eq!(get(&mut r, reg::SECONDS, ms(800)), 0x57, "the time runs on");
}

//! Gregorian calendar arithmetic for the RTC: seconds since 1970-01-01
//! 00:00:00 UTC to a date and time of day, and back.

/// A date and time of day, with the day of the week (0 = Sunday).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: u32,
}

const SECS_PER_DAY: i64 = 86_400;
/// Days in a 400-year cycle of the Gregorian calendar.
const DAYS_PER_ERA: i64 = 146_097;
/// 1970-01-01 counted from 0000-03-01 (the computations below start years
/// in March, so the leap day ends a year).
const EPOCH_SHIFT: i64 = 719_468;

/// Days from 1970-01-01 to `year`-`month`-01, plus `day - 1`. A day past
/// the month's end runs into the next month (as `mktime` normalises).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let m = i64::from(month.clamp(1, 12));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    // Day of the year counted from March 1.
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * DAYS_PER_ERA + doe - EPOCH_SHIFT + i64::from(day) - 1
}

/// The date `days` days after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let doe = z - era * DAYS_PER_ERA;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // The ranges above keep month in 1..=12 and day in 1..=31.
    (year, month as u32, day as u32)
}

impl DateTime {
    /// The date and time `secs` seconds after the epoch.
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(SECS_PER_DAY);
        let tod = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            // tod < 86400: the casts cannot truncate.
            hour: (tod / 3600) as u32,
            minute: (tod / 60 % 60) as u32,
            second: (tod % 60) as u32,
            // 1970-01-01 was a Thursday (4).
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// Seconds since the epoch; out-of-range fields run over into the
    /// next unit, the weekday is ignored.
    pub fn to_unix(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let d = DateTime::from_unix(0);
        assert_eq!((d.year, d.month, d.day, d.weekday), (1970, 1, 1, 4));
        // 2000-02-29 12:34:56 UTC, a Tuesday.
        let d = DateTime::from_unix(951_827_696);
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second, d.weekday),
            (2000, 2, 29, 12, 34, 56, 2)
        );
        // 2100 is not a leap year: 2100-02-28 + 1 day is March 1st.
        let feb28 = days_from_civil(2100, 2, 28);
        assert_eq!(civil_from_days(feb28 + 1), (2100, 3, 1));
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        // Days past the month's end run into the next month.
        assert_eq!(days_from_civil(2023, 2, 29), days_from_civil(2023, 3, 1));
    }

    #[test]
    fn round_trips_over_centuries() {
        let mut s = -2_208_988_800i64; // 1900-01-01
        while s < 7_258_118_400 {
            // 2200-01-01
            assert_eq!(DateTime::from_unix(s).to_unix(), s, "{s}");
            s += 86_400 * 7 + 3_661;
        }
    }
}

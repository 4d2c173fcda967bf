//! The calendar functions: `minute`, `hour`, `day_of_week`,
//! `day_of_month`, `day_of_year`, `days_in_month`, `month`, `year` of a
//! time in seconds since the epoch, in UTC, as Prometheus answers them
//! (Go's `time.Unix(int64(v), 0).UTC()`: the seconds truncated towards
//! zero).
//!
//! Hand-written rather than a date crate: the civil calendar from a day
//! count is a few lines of integer arithmetic (`crate::civil`), and a
//! query over 10,000 series calls it once per point. Docs chapter 4,
//! "Functions".

use crate::civil::{civil_from_days, day_of_year, days_in_month};

/// What to read off a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Minute,
    Hour,
    DayOfWeek,
    DayOfMonth,
    DayOfYear,
    DaysInMonth,
    Month,
    Year,
}

impl Part {
    /// The part a function reads, by the function's name.
    pub(super) fn from_name(name: &str) -> Option<Part> {
        Some(match name {
            "minute" => Part::Minute,
            "hour" => Part::Hour,
            "day_of_week" => Part::DayOfWeek,
            "day_of_month" => Part::DayOfMonth,
            "day_of_year" => Part::DayOfYear,
            "days_in_month" => Part::DaysInMonth,
            "month" => Part::Month,
            "year" => Part::Year,
            _ => return None,
        })
    }

    /// The part of `seconds` since the epoch. NaN and ±Inf have no date:
    /// NaN (Go's conversion is undefined there; answering NaN says so).
    pub(super) fn of_seconds(self, seconds: f64) -> f64 {
        if !seconds.is_finite() {
            return f64::NAN;
        }
        // `as` saturates at i64's ends, where Go's conversion is
        // undefined; those times are out of any calendar anyway.
        let whole = seconds.trunc() as i64;
        let days = whole.div_euclid(86_400);
        let in_day = whole.rem_euclid(86_400);
        let date = civil_from_days(days);
        let value = match self {
            Part::Minute => in_day / 60 % 60,
            Part::Hour => in_day / 3_600,
            // 1970-01-01 was a Thursday (4; Sunday is 0).
            Part::DayOfWeek => (days + 4).rem_euclid(7),
            Part::DayOfMonth => date.day,
            Part::DayOfYear => day_of_year(date),
            Part::DaysInMonth => days_in_month(date.year, date.month),
            Part::Month => date.month,
            Part::Year => date.year,
        };
        value as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 2023-11-14T22:13:20Z, a Tuesday: the reference dataset's start.
        let t = 1_700_000_000.0;
        let parts = [
            (Part::Minute, 13.0),
            (Part::Hour, 22.0),
            (Part::DayOfWeek, 2.0),
            (Part::DayOfMonth, 14.0),
            (Part::DayOfYear, 318.0),
            (Part::DaysInMonth, 30.0),
            (Part::Month, 11.0),
            (Part::Year, 2023.0),
        ];
        for (part, expected) in parts {
            assert_eq!(part.of_seconds(t), expected, "{part:?}");
        }
        // The epoch was a Thursday; 2024-02-29 is the 60th day of a leap year.
        assert_eq!(Part::DayOfWeek.of_seconds(0.0), 4.0);
        let leap_day = 1_709_164_800.0;
        assert_eq!(Part::DayOfMonth.of_seconds(leap_day), 29.0);
        assert_eq!(Part::DayOfYear.of_seconds(leap_day), 60.0);
        assert_eq!(Part::DaysInMonth.of_seconds(leap_day), 29.0);
        // 2100 is not a leap year, 2000 is.
        assert_eq!(Part::DaysInMonth.of_seconds(4_105_123_200.0), 28.0);
        assert_eq!(Part::DaysInMonth.of_seconds(951_782_400.0), 29.0);
    }

    #[test]
    fn before_the_epoch_and_odd_values() {
        // 1969-12-31T23:59:59Z: truncation towards zero keeps -0.5 at 0 s.
        assert_eq!(Part::Year.of_seconds(-1.0), 1969.0);
        assert_eq!(Part::Hour.of_seconds(-1.0), 23.0);
        assert_eq!(Part::DayOfWeek.of_seconds(-1.0), 3.0);
        assert_eq!(Part::Year.of_seconds(-0.5), 1970.0);
        assert!(Part::Year.of_seconds(f64::NAN).is_nan());
        assert!(Part::Month.of_seconds(f64::INFINITY).is_nan());
    }
}

//! The proleptic Gregorian calendar in integer arithmetic: days since
//! 1970-01-01 to a date and back, leap years, month lengths — what the
//! API needs to read RFC 3339 times and the calendar functions need to
//! answer `day_of_week`. Day counts are shifted to start on 0000-03-01 and
//! counted in 400-year eras of 146,097 days, so the leap day falls last in
//! each computed year (Howard Hinnant's algorithms). Docs chapter 4.

/// A date of the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    pub(crate) year: i64,
    /// 1 to 12.
    pub(crate) month: i64,
    /// 1 to 31.
    pub(crate) day: i64,
}

/// The date `days` after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> Date {
    // Shift the epoch to 0000-03-01 so February, with its leap day, ends
    // each computed year; an era is 400 years = 146,097 days.
    let shifted = days.saturating_add(719_468);
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 0 = March … 11 = February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    Date { year, month, day }
}

pub(crate) fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 1 for January 1st.
pub(crate) fn day_of_year(date: Date) -> i64 {
    (1..date.month)
        .map(|month| days_in_month(date.year, month))
        .sum::<i64>()
        + date.day
}

/// Days since 1970-01-01 of a date (the inverse of [`civil_from_days`]).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_four_centuries_follows_the_previous() {
        let mut previous = civil_from_days(-146_097 * 2);
        for days in (-146_097 * 2 + 1)..(146_097 * 2) {
            let date = civil_from_days(days);
            let next_day = previous.day < days_in_month(previous.year, previous.month);
            let expected = if next_day {
                Date {
                    day: previous.day + 1,
                    ..previous
                }
            } else if previous.month < 12 {
                Date {
                    month: previous.month + 1,
                    day: 1,
                    ..previous
                }
            } else {
                Date {
                    year: previous.year + 1,
                    month: 1,
                    day: 1,
                }
            };
            assert_eq!(date, expected, "day {days}");
            previous = date;
        }
        assert_eq!(
            civil_from_days(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
    }

    #[test]
    fn days_and_dates_invert_each_other() {
        for days in (-800_000..800_000).step_by(997) {
            let date = civil_from_days(days);
            assert_eq!(days_from_civil(date.year, date.month, date.day), days);
        }
    }
}

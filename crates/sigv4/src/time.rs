//! Date and time formats used by SigV4, converted from/to Unix epoch seconds (UTC).
//!
//! Written by hand (no time crate): only the proleptic Gregorian calendar in UTC is needed.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Days in the 400-year Gregorian cycle (which repeats exactly).
const DAYS_PER_ERA: i64 = 146_097;

/// Days from 0000-03-01 (the start of era 0, counting years from March so that the leap day
/// falls at the end of a year) to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Treat January and February as months 10 and 11 of the previous year: then every
    // "year" ends with the (possibly absent) leap day and month lengths repeat regularly.
    let (y, m) = if month <= 2 { (year - 1, i64::from(month) + 9) } else { (year, i64::from(month) - 3) };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400; // 0..=399
    // Days before month `m` (March = 0): the 5-month pattern 31,30,31,30,31 gives 153 days.
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT
}

/// Civil date (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + EPOCH_SHIFT;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted - era * DAYS_PER_ERA; // 0..=146096
    // Remove the leap days (one per 4 years, minus one per century, plus the era's last day)
    // to find the year within the era.
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let m = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * m + 2) / 5 + 1;
    let (month, year_shift) = if m < 10 { (m + 3, 0) } else { (m - 9, 1) };
    (era * 400 + year_of_era + year_shift, month as u32, day as u32)
}

/// Splits epoch seconds into civil date and time of day.
fn split(epoch_secs: i64) -> (i64, u32, u32, i64, i64) {
    let days = epoch_secs.div_euclid(DAY);
    let secs = epoch_secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, days, secs)
}

/// Epoch seconds of a civil date and time, validating every field.
fn to_epoch(year: i64, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * DAY + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec))
}

/// Formats epoch seconds as SigV4's ISO-8601 basic form `YYYYMMDDTHHMMSSZ`
/// (meaningful for years 0 to 9999).
pub fn format_amz_date(epoch_secs: i64) -> String {
    let (y, m, d, _, secs) = split(epoch_secs);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Parses `YYYYMMDDTHHMMSSZ` (as in `X-Amz-Date`) into epoch seconds; `None` unless exactly
/// that form with a valid date and time.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = digits(&b[0..4])?;
    to_epoch(
        i64::from(year),
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[9..11])?,
        digits(&b[11..13])?,
        digits(&b[13..15])?,
    )
}

/// Formats epoch seconds as an HTTP date (IMF-fixdate), e.g. `Sun, 22 Nov 2026 01:58:07 GMT`.
pub fn format_http_date(epoch_secs: i64) -> String {
    let (y, m, d, days, secs) = split(epoch_secs);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Parses an HTTP date in the IMF-fixdate form that every current client sends for `Date`
/// (`Sun, 22 Nov 2026 01:58:07 GMT`). The obsolete RFC 850 and asctime forms are not accepted.
/// The weekday name must be a valid one but is not checked against the date.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    if !WEEKDAYS.iter().any(|w| w.as_bytes() == &b[0..3]) {
        return None;
    }
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? as u32 + 1;
    to_epoch(
        i64::from(digits(&b[12..16])?),
        month,
        digits(&b[5..7])?,
        digits(&b[17..19])?,
        digits(&b[20..22])?,
        digits(&b[23..25])?,
    )
}

/// Value of a run of ASCII digits (no sign, no spaces).
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_amz_date(1_795_312_687), "20261122T015807Z");
        assert_eq!(parse_amz_date("20261122T015807Z"), Some(1_795_312_687));
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
        assert_eq!(parse_amz_date("19691231T235959Z"), Some(-1));
        assert_eq!(format_http_date(1_795_312_687), "Sun, 22 Nov 2026 01:58:07 GMT");
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(parse_http_date("Sun, 22 Nov 2026 01:58:07 GMT"), Some(1_795_312_687));
        // 2000-03-01: the day after the 400-year leap day.
        assert_eq!(format_amz_date(951_868_800), "20000301T000000Z");
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
        // 2100-03-01 follows 2100-02-28 (2100 is not a leap year).
        assert_eq!(parse_amz_date("21000301T000000Z"), Some(4_107_542_400));
        assert_eq!(format_amz_date(4_107_542_400 - DAY), "21000228T000000Z");
    }

    #[test]
    fn leap_days() {
        assert!(parse_amz_date("20000229T120000Z").is_some());
        assert!(parse_amz_date("20240229T120000Z").is_some());
        assert!(parse_amz_date("21000229T120000Z").is_none());
        assert!(parse_amz_date("19000229T120000Z").is_none());
        assert!(parse_amz_date("20230229T120000Z").is_none());
        assert!(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT").is_some());
        assert!(parse_http_date("Mon, 29 Feb 2100 00:00:00 GMT").is_none());
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "20261122T015807",
            "20261122 015807Z",
            "2026-11-22T01:58:07Z",
            "20261322T015807Z",
            "20261100T015807Z",
            "20261131T015807Z",
            "20261122T245807Z",
            "20261122T016007Z",
            "20261122T015860Z",
            "2026112+T015807Z",
            "20261122T015807Z ",
        ] {
            assert_eq!(parse_amz_date(s), None, "{s:?}");
        }
        for s in [
            "Sun, 22 Nov 2026 01:58:07 UTC",
            "Sun 22 Nov 2026 01:58:07 GMT ",
            "Xyz, 22 Nov 2026 01:58:07 GMT",
            "Sun, 22 Foo 2026 01:58:07 GMT",
            "Sun, 31 Nov 2026 01:58:07 GMT",
            "Sunday, 22-Nov-26 01:58:07 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s:?}");
        }
    }

    /// Every day from 1599 to 2500 (which covers 1600, 1700, 1900, 2000, 2100 and 2400) round-trips,
    /// and consecutive days are consecutive civil dates.
    #[test]
    fn round_trip_every_day() {
        let start = days_from_civil(1599, 1, 1);
        let end = days_from_civil(2501, 1, 1);
        let mut expected = (1599i64, 1u32, 1u32);
        for days in start..end {
            assert_eq!(civil_from_days(days), expected);
            let (y, m, d) = expected;
            assert_eq!(days_from_civil(y, m, d), days);
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
        assert_eq!(expected, (2501, 1, 1));
        // Leap-year rule spot checks.
        assert!(is_leap_year(2000) && is_leap_year(2400) && is_leap_year(2024));
        assert!(!is_leap_year(2100) && !is_leap_year(1900) && !is_leap_year(2023));
        assert_eq!(days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28), 1);
        assert_eq!(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2);
    }

    #[test]
    fn round_trip_strings() {
        // A stride that is co-prime with 86400 so that every time of day gets exercised.
        let mut t = days_from_civil(1970, 1, 1) * DAY - 3 * 365 * DAY;
        let end = days_from_civil(2200, 1, 1) * DAY;
        while t < end {
            let amz = format_amz_date(t);
            assert_eq!(parse_amz_date(&amz), Some(t), "{amz}");
            let http = format_http_date(t);
            assert_eq!(parse_http_date(&http), Some(t), "{http}");
            assert_eq!(&amz[..4], &http[12..16]);
            t += 7_919 * 13 + 1;
        }
        for s in [
            "20000229T235959Z",
            "21000228T235959Z",
            "21000301T000000Z",
            "24000229T000000Z",
            "00000101T000000Z",
            "99991231T235959Z",
        ] {
            assert_eq!(format_amz_date(parse_amz_date(s).unwrap()), s);
        }
    }
}

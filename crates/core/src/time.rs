//! Time helpers. Times are kept as Unix milliseconds (UTC); people see them in
//! Japan Standard Time (UTC+9, no daylight saving).

use time::{OffsetDateTime, UtcOffset, macros::format_description};

/// Japan Standard Time.
pub const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// Returns the current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats Unix milliseconds as `YYYY-MM-DD HH:MM:SS` in JST.
pub fn format_jst(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).map(|t| t.to_offset(JST).format(&fmt).unwrap_or_default()).unwrap_or_default()
}

/// Formats Unix milliseconds as the date `YYYY-MM-DD` in JST.
pub fn format_date_jst(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).map(|t| t.to_offset(JST).format(&fmt).unwrap_or_default()).unwrap_or_default()
}

/// Returns the end of the JST day `YYYY-MM-DD` (the next midnight, Unix ms): an account
/// "valid until" that date works through the whole day. None for anything else.
pub fn end_of_day_jst(date: &str) -> Option<i64> {
    let d = time::Date::parse(date.trim(), &format_description!("[year]-[month]-[day]")).ok()?;
    let end = d.next_day()?.midnight().assume_offset(JST);
    Some((end.unix_timestamp_nanos() / 1_000_000) as i64).filter(|t| (MIN_MS..MAX_MS).contains(t))
}

/// Formats Unix milliseconds as RFC 3339 in UTC (for APIs and exports).
pub fn format_rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses a time given by a person or a client: RFC 3339 (`2026-11-22T10:00:00+09:00`),
/// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DD HH:MM[:SS]` (taken as JST, as typed in the console),
/// `YYYY-MM-DD` (JST midnight), or Unix milliseconds. Returns None when it is none of these.
pub fn parse_time(input: &str) -> Option<i64> {
    parse_unclamped(input).filter(|t| (MIN_MS..MAX_MS).contains(t))
}

/// Parses the end of a range given by a person (a hold, an export): as
/// [`parse_time`], except that a date alone is the end of that JST day, so
/// `2026-11-01` to `2026-11-30` covers all of November.
pub fn parse_range_end(input: &str) -> Option<i64> {
    let v = input.trim();
    if v.len() == 10 && v.as_bytes().get(4) == Some(&b'-') { end_of_day_jst(v) } else { parse_time(v) }
}

/// Earliest time accepted from people and clients: 2000-01-01T00:00:00Z.
pub const MIN_MS: i64 = 946_684_800_000;
/// Latest time accepted (exclusive): 2200-01-01T00:00:00Z.
pub const MAX_MS: i64 = 7_258_118_400_000;

fn parse_unclamped(input: &str) -> Option<i64> {
    let s = input.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok();
    }
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let s2 = s.replace('T', " ");
    let formats = [format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"), format_description!("[year]-[month]-[day] [hour]:[minute]")];
    for f in formats {
        if let Ok(t) = time::PrimitiveDateTime::parse(&s2, &f) {
            return Some((t.assume_offset(JST).unix_timestamp_nanos() / 1_000_000) as i64);
        }
    }
    if let Ok(d) = time::Date::parse(s, &format_description!("[year]-[month]-[day]")) {
        return Some((d.midnight().assume_offset(JST).unix_timestamp_nanos() / 1_000_000) as i64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_people_type() {
        let a = parse_time("2026-11-22T10:00:00+09:00").unwrap();
        assert_eq!(parse_time("2026-11-22 10:00"), Some(a));
        assert_eq!(parse_time("2026-11-22T10:00"), Some(a));
        assert_eq!(parse_time("2026-11-22"), Some(a - 10 * 3_600_000));
        assert_eq!(parse_time("1763773200000"), Some(1_763_773_200_000));
        assert_eq!(format_jst(a), "2026-11-22 10:00:00");
        assert_eq!(parse_time("2026-13-01"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("9223372036854775000"), None, "far outside 2000-2200");
        assert_eq!(parse_time("1900-01-01"), None);
        assert_eq!(parse_time(""), None);
    }

    #[test]
    fn a_date_ends_at_the_next_jst_midnight() {
        let end = end_of_day_jst("2026-11-30").unwrap();
        assert_eq!(format_jst(end), "2026-12-01 00:00:00");
        assert_eq!(format_date_jst(end - 1), "2026-11-30");
        assert_eq!(end_of_day_jst("2026-02-30"), None);
        assert_eq!(end_of_day_jst("next week"), None);
    }
}

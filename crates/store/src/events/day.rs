//! UTC day arithmetic for the partitions: a day is `time_ms.div_euclid(DAY_MS)` (days
//! since 1970-01-01) and its folder is `YYYY-MM-DD` (`YYYY-MM-DD.sqlite` files are
//! partitions of earlier versions, migrated when the store opens).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// One day in milliseconds.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// 2000-01-01T00:00:00Z: the earliest event time the store accepts.
pub(crate) const MIN_TIME_MS: i64 = 946_684_800_000;
/// 2201-01-01T00:00:00Z: every accepted event time is before this.
pub(crate) const END_TIME_MS: i64 = 7_289_654_400_000;
/// Suffix of a partition file.
const EXT: &str = ".sqlite";

/// Returns the day number (days since 1970-01-01, UTC) of a time in ms.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Returns the first ms of a day.
pub(crate) fn day_start(day: i64) -> i64 {
    day.saturating_mul(DAY_MS)
}

/// Returns `YYYY-MM-DD` for a day number (proleptic Gregorian calendar).
pub(crate) fn day_name(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Returns the day number of a `YYYY-MM-DD` name, or None when it is not one.
pub(crate) fn parse_day_name(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| -> Option<i64> { if s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None } };
    let y = num(name.get(0..4)?)?;
    let m = num(name.get(5..7)?)?;
    let d = num(name.get(8..10)?)?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // Rejects 2026-02-31 and the like.
    (day_name(day) == name).then_some(day)
}

/// Returns the SQLite partitions of earlier versions present in `dir`, by day.
pub(crate) fn list_partitions(dir: &Path) -> io::Result<BTreeMap<i64, PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(EXT) else { continue };
        if let Some(day) = parse_day_name(stem) {
            out.insert(day, entry.path());
        }
    }
    Ok(out)
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_names_round_trip_and_bounds_are_right() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(day_of(MIN_TIME_MS)), "2000-01-01");
        assert_eq!(day_name(day_of(END_TIME_MS)), "2201-01-01");
        assert_eq!(day_name(day_of(END_TIME_MS - 1)), "2200-12-31");
        assert_eq!(day_name(day_of(1_763_800_000_000)), "2025-11-22");
        assert_eq!(day_of(-1), -1);
        for day in (day_of(MIN_TIME_MS)..day_of(END_TIME_MS)).step_by(17) {
            assert_eq!(parse_day_name(&day_name(day)), Some(day));
        }
        assert_eq!(parse_day_name("2024-02-29"), Some(day_of(1_709_164_800_000)));
        for bad in ["2023-02-29", "2026-13-01", "2026-1-01", "abcd-ef-gh", "2026-01-01x", "+202-01-01", ""] {
            assert_eq!(parse_day_name(bad), None, "{bad}");
        }
    }
}

//! Text for people: relative times, dates, counts. Plain Rust, tested natively.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::sync::Millis;

/// "just now", "12 s ago", "3 min ago", "2 h ago", "4 d ago".
pub fn relative(then: Millis, now: Millis) -> String {
    let secs = now.saturating_sub(then) / 1000;
    match secs {
        0..=4 => "just now".into(),
        5..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

// Formatted by hand: chrono's strftime machinery costs the wasm bundle more than these lines.

/// `2026-11-25`.
pub fn date(at: &DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day())
}

/// `08:00`.
pub fn hour(at: &DateTime<Utc>) -> String {
    format!("{:02}:00", at.hour())
}

/// `2026-11-25 08:30 UTC`.
pub fn date_time(at: &DateTime<Utc>) -> String {
    format!("{} {:02}:{:02} UTC", date(at), at.hour(), at.minute())
}

/// `9,001`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `15 s`, `5 min`: an interval in milliseconds.
pub fn interval(ms: Millis) -> String {
    if ms >= 60_000 && ms % 60_000 == 0 {
        format!("{} min", ms / 60_000)
    } else if ms >= 1000 && ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// `12.5`: one decimal, rounded half away from zero. Integer arithmetic only: `{:.1}` would link
/// core's float formatter (about 11 KB of wasm) for this one use.
pub fn tenths(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let t = (v * 10.0).round() as i64;
    let sign = if t < 0 { "-" } else { "" };
    let t = t.unsigned_abs();
    format!("{sign}{}.{}", t / 10, t % 10)
}

/// `text` as a sentence: a final full stop unless it has one.
pub fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// The end of the given day (`YYYY-MM-DD`, from a date input) in UTC.
pub fn end_of_day(input: &str) -> Option<DateTime<Utc>> {
    let mut parts = input.trim().splitn(3, '-');
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    let (y, m, d) = (next()?, next()?, next()?);
    let day = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some(day.and_hms_opt(23, 59, 59)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally_and_never_go_negative() {
        assert_eq!(relative(10_000, 12_000), "just now");
        assert_eq!(relative(0, 12_000), "12 s ago");
        assert_eq!(relative(0, 185_000), "3 min ago");
        assert_eq!(relative(0, 7_300_000), "2 h ago");
        assert_eq!(relative(0, 4 * 86_400_000), "4 d ago");
        assert_eq!(relative(20_000, 10_000), "just now");
    }

    #[test]
    fn dates_and_times_are_iso_like_in_utc() {
        let at = end_of_day("2027-01-05").unwrap_or_default();
        assert_eq!(date(&at), "2027-01-05");
        assert_eq!(date_time(&at), "2027-01-05 23:59 UTC");
        assert_eq!(hour(&at), "23:00");
    }

    #[test]
    fn tenths_round_to_one_decimal() {
        assert_eq!(tenths(12.34), "12.3");
        assert_eq!(tenths(0.05), "0.1");
        assert_eq!(tenths(0.0), "0.0");
        assert_eq!(tenths(99.96), "100.0");
        assert_eq!(tenths(-0.26), "-0.3");
        assert_eq!(tenths(f64::NAN), "—");
    }

    #[test]
    fn messages_end_as_sentences() {
        assert_eq!(sentence("Server down"), "Server down.");
        assert_eq!(sentence("Failed (x). "), "Failed (x).");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(9001), "9,001");
        assert_eq!(count(-1_234_567), "-1,234,567");
    }

    #[test]
    fn intervals_use_the_largest_whole_unit() {
        assert_eq!(interval(15_000), "15 s");
        assert_eq!(interval(300_000), "5 min");
        assert_eq!(interval(700), "700 ms");
    }

    #[test]
    fn a_date_input_means_the_end_of_that_day_in_utc() {
        let at = end_of_day("2027-01-31").map(|d| d.to_rfc3339());
        assert_eq!(at.as_deref(), Some("2027-01-31T23:59:59+00:00"));
        assert_eq!(end_of_day("31/01/2027"), None);
        assert_eq!(end_of_day("2027-02-30"), None);
    }
}

//! Timestamps on the hot write path, encoded and decoded without chrono's format machinery.
//!
//! Why: SQLite keeps a `TIMESTAMP` as text. diesel writes it with `format("%F %T%.f")` and reads it
//! by trying up to 18 `strftime` patterns in turn; on the license-validation path (several
//! timestamps written and read per attempt) that was a tenth of the writer thread's time. [`Ts`]
//! and [`TsOpt`] bind and read the same text with plain integer arithmetic, byte for byte what
//! diesel writes (tested below against chrono), and fall back to chrono for any other shape a
//! row may hold. On PostgreSQL, whose timestamps travel in binary, they delegate to diesel.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Nullable, Timestamp};
use diesel::sqlite::{Sqlite, SqliteType};
use ref_cast::RefCast;

/// A `NaiveDateTime` bound or read as a `TIMESTAMP` through the fast codec. Borrow one from a
/// field with `Ts::ref_cast(&row.created_at)`; read one with `#[diesel(deserialize_as = Ts)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RefCast, FromSqlRow)]
#[repr(transparent)]
pub struct Ts(pub NaiveDateTime);

/// [`Ts`] for a nullable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, RefCast, FromSqlRow)]
#[repr(transparent)]
pub struct TsOpt(pub Option<NaiveDateTime>);

impl From<Ts> for NaiveDateTime {
    fn from(value: Ts) -> Self {
        value.0
    }
}

impl From<TsOpt> for Option<NaiveDateTime> {
    fn from(value: TsOpt) -> Self {
        value.0
    }
}

/// The text diesel stores for `t` on SQLite (`%F %T%.f`: no fraction when it is zero, else 3, 6
/// or 9 digits, whichever is the shortest exact one).
pub fn format_sqlite(t: &NaiveDateTime) -> String {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // chrono pads and signs such years its own way; they never occur in practice.
        return t.format("%F %T%.f").to_string();
    }
    let mut out = String::with_capacity(29);
    push_digits(&mut out, year as u32, 4);
    out.push('-');
    push_digits(&mut out, t.month(), 2);
    out.push('-');
    push_digits(&mut out, t.day(), 2);
    out.push(' ');
    push_digits(&mut out, t.hour(), 2);
    out.push(':');
    push_digits(&mut out, t.minute(), 2);
    out.push(':');
    // A leap second is carried in the nanoseconds (>= 1e9) and printed as second 60.
    let nanos = t.nanosecond();
    push_digits(&mut out, t.second() + nanos / 1_000_000_000, 2);
    let nanos = nanos % 1_000_000_000;
    if nanos != 0 {
        out.push('.');
        if nanos % 1_000_000 == 0 {
            push_digits(&mut out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            push_digits(&mut out, nanos / 1_000, 6);
        } else {
            push_digits(&mut out, nanos, 9);
        }
    }
    out
}

fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction of 1 to 9 digits (what keysync and
/// SQLite's `CURRENT_TIMESTAMP` write); `None` for anything else.
pub fn parse_sqlite(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let value = num(20..b.len())?;
            value * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let time = NaiveTime::from_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)?;
    Some(NaiveDateTime::new(date, time))
}

impl ToSql<Timestamp, Sqlite> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(format_sqlite(&self.0));
        Ok(IsNull::No)
    }
}

impl ToSql<Timestamp, Pg> for Ts {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Timestamp, Pg>::to_sql(&self.0, out)
    }
}

impl ToSql<Nullable<Timestamp>, Sqlite> for TsOpt {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        match &self.0 {
            Some(t) => {
                out.set_value(format_sqlite(t));
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }
}

impl ToSql<Nullable<Timestamp>, Pg> for TsOpt {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Nullable<Timestamp>, Pg>::to_sql(&self.0, out)
    }
}

/// Reads text written by keysync fast; anything else the way diesel would.
fn read_sqlite(mut value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> deserialize::Result<Ts> {
    if value.value_type() != Some(SqliteType::Text) {
        return <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Ts);
    }
    let text = value.read_text();
    if let Some(t) = parse_sqlite(text) {
        return Ok(Ts(t));
    }
    const OTHER_FORMATS: [&str; 6] = [
        "%F %T%.f%:z",
        "%F %T%.fZ",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
        "%F %R",
    ];
    OTHER_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(Ts)
        .ok_or_else(|| format!("invalid timestamp {text:?}").into())
}

impl FromSql<Timestamp, Sqlite> for Ts {
    fn from_sql(value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        read_sqlite(value)
    }
}

impl FromSql<Timestamp, Pg> for Ts {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Ts)
    }
}

impl FromSql<Nullable<Timestamp>, Sqlite> for TsOpt {
    fn from_sql(value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        read_sqlite(value).map(|t| TsOpt(Some(t.0)))
    }

    fn from_nullable_sql(
        value: Option<diesel::sqlite::SqliteValue<'_, '_, '_>>,
    ) -> deserialize::Result<Self> {
        match value {
            Some(value) => <Self as FromSql<Nullable<Timestamp>, Sqlite>>::from_sql(value),
            None => Ok(TsOpt(None)),
        }
    }
}

impl FromSql<Nullable<Timestamp>, Pg> for TsOpt {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(|t| TsOpt(Some(t)))
    }

    fn from_nullable_sql(value: Option<diesel::pg::PgValue<'_>>) -> deserialize::Result<Self> {
        match value {
            Some(value) => <Self as FromSql<Nullable<Timestamp>, Pg>>::from_sql(value),
            None => Ok(TsOpt(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    /// Timestamps across the range keysync writes, with every fraction shape.
    fn samples() -> Vec<NaiveDateTime> {
        let base = NaiveDate::from_ymd_opt(1970, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut out = Vec::new();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            // xorshift: reproducible spread without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let secs = (state % 8_000_000_000) as i64; // up to year ~2223
            let nanos = match state % 5 {
                0 => 0,
                1 => (state >> 20) as u32 % 1_000 * 1_000_000,
                2 => (state >> 20) as u32 % 1_000_000 * 1_000,
                _ => (state >> 20) as u32 % 1_000_000_000,
            };
            out.push(base + TimeDelta::seconds(secs) + TimeDelta::nanoseconds(i64::from(nanos)));
        }
        out.push(
            NaiveDate::from_ymd_opt(9999, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 999_999_999)
                .unwrap(),
        );
        out.push(
            NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .unwrap(),
        );
        out
    }

    #[test]
    fn formats_exactly_as_diesel_does() {
        for t in samples() {
            assert_eq!(format_sqlite(&t), t.format("%F %T%.f").to_string(), "{t:?}");
        }
    }

    #[test]
    fn parses_what_it_formats() {
        for t in samples()
            .into_iter()
            .filter(|t| t.nanosecond() < 1_000_000_000)
        {
            assert_eq!(parse_sqlite(&format_sqlite(&t)), Some(t), "{t:?}");
        }
    }

    #[test]
    fn parses_sqlite_defaults_and_short_fractions_and_refuses_other_shapes() {
        let t = parse_sqlite("2026-11-25 07:03:41").unwrap();
        assert_eq!(t.to_string(), "2026-11-25 07:03:41");
        let t = parse_sqlite("2026-11-25 07:03:41.5").unwrap();
        assert_eq!(t.nanosecond(), 500_000_000);
        for bad in [
            "",
            "2026-11-25T07:03:41",
            "2026-11-25 07:03:41Z",
            "2026-11-25 07:03:41.",
            "2026-11-25 07:03:41.1234567890",
            "2026-13-25 07:03:41",
            "2026-02-30 07:03:41",
            "2026-11-25 24:03:41",
            "2026-1x-25 07:03:41",
            "+2026-11-25 07:03:4",
        ] {
            assert_eq!(parse_sqlite(bad), None, "{bad}");
        }
    }
}

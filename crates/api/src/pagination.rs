//! Cursor pagination: `?cursor=&limit=`, answered with `{"items","next_cursor","total"}`.
//!
//! A cursor is opaque to clients: base64url of `{"s": sort, "v": value, "i": id}`, the sort key
//! and id of the last row of the previous page. Pages are keyset queries (`WHERE (col, id) >
//! (v, i)`), so a row inserted while a client pages never shifts or repeats rows, and a page
//! costs the same deep in a list as at its start.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysetCursor {
    pub value: String,
    pub id: i64,
}

#[derive(Serialize, Deserialize)]
struct CursorWire {
    s: String,
    v: String,
    i: i64,
}

impl KeysetCursor {
    pub fn encode(&self, sort: &str) -> String {
        let wire = CursorWire {
            s: sort.to_owned(),
            v: self.value.clone(),
            i: self.id,
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// Reads a cursor made by [`Self::encode`] for the same `sort`; anything else is a 400.
    pub fn decode(raw: &str, sort: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::BadRequest {
            code: "invalid_cursor",
            message: "the cursor is not one this list handed out for this sort order".into(),
        };
        if raw.len() > 512 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let wire: CursorWire = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if wire.s != sort {
            return Err(invalid());
        }
        Ok(Self {
            value: wire.v,
            id: wire.i,
        })
    }
}

/// `?limit=`: default 50, at most 200.
pub fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::unprocessable(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";

pub fn time_value(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

pub fn parse_time_value(v: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(v, TIME_FORMAT).ok()
}

/// A list's sortable fields.
pub trait SortField: Copy + Sized {
    /// The sort used when a request names none.
    const DEFAULT: &'static str;
    /// The fields, for error messages.
    const NAMES: &'static str;
    fn from_name(name: &str) -> Option<Self>;
    /// Whether cursor values of this field are timestamps.
    fn is_time(self) -> bool;
}

/// A list request's paging, parsed and checked once for every list.
#[derive(Debug, Clone)]
pub struct PageParams<S> {
    pub sort: S,
    pub order: SortOrder,
    /// The sort as requested (`-created_at`); cursors are tied to it.
    pub sort_name: String,
    pub after: Option<KeysetCursor>,
    pub limit: i64,
}

/// The longest `?q=` a list accepts.
pub const MAX_SEARCH: usize = 200;

/// Reads `?sort=`, `?cursor=`, `?limit=` (and bounds `?q=`) for a list sorted by `S`.
pub fn page_params<S: SortField>(
    sort: Option<&str>,
    cursor: Option<&str>,
    limit_raw: Option<i64>,
    q: Option<&str>,
) -> Result<PageParams<S>, ApiError> {
    let sort_name = sort.unwrap_or(S::DEFAULT).to_owned();
    let (order, field) = match sort_name.strip_prefix('-') {
        Some(field) => (SortOrder::Desc, field),
        None => (SortOrder::Asc, sort_name.as_str()),
    };
    let sort = S::from_name(field).ok_or_else(|| {
        ApiError::unprocessable(
            "sort",
            format!(
                "sort must be one of {}, optionally prefixed with -",
                S::NAMES
            ),
        )
    })?;
    if q.is_some_and(|q| q.len() > MAX_SEARCH) {
        return Err(ApiError::unprocessable(
            "q",
            format!("the search text may have at most {MAX_SEARCH} characters"),
        ));
    }
    let limit = limit(limit_raw)?;
    let after = cursor
        .map(|raw| KeysetCursor::decode(raw, &sort_name))
        .transpose()?;
    if let Some(after) = &after {
        if sort.is_time() && parse_time_value(&after.value).is_none() {
            return Err(ApiError::BadRequest {
                code: "invalid_cursor",
                message: "the cursor is not one this list handed out".into(),
            });
        }
    }
    Ok(PageParams {
        sort,
        order,
        sort_name,
        after,
        limit,
    })
}

/// Turns one row more than asked for into "there is a next page".
pub fn split_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(cursor_of);
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_for_their_own_sort_only() {
        let cursor = KeysetCursor {
            value: "2026-01-01T00:00:00.000000".into(),
            id: 42,
        };

        let raw = cursor.encode("-created_at");

        assert_eq!(KeysetCursor::decode(&raw, "-created_at").unwrap(), cursor);
        assert!(KeysetCursor::decode(&raw, "created_at").is_err());
        assert!(KeysetCursor::decode("not base64!", "created_at").is_err());
        assert!(KeysetCursor::decode(&"A".repeat(600), "created_at").is_err());
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        assert!(limit(Some(201)).is_err());
        assert!(limit(Some(0)).is_err());
    }

    #[test]
    fn an_extra_row_means_a_next_page() {
        let (rows, next) = split_page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!((rows, next), (vec![1, 2], Some("2".to_string())));
        let (rows, next) = split_page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!((rows, next), (vec![1, 2], None));
    }
}

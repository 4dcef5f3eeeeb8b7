//! Persistence of `license_keys`.

use chrono::NaiveDateTime;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel::sql_types::Bool;
use keysync_shared::{KeyStatus, LicenseKeyView};

use super::store::{impl_for_both_backends, like_pattern, lower, now, versioned_update};
use super::timestamp::{Ts, TsOpt};
use crate::pagination::{KeysetCursor, SortOrder};
use crate::schema::license_keys;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = license_keys)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct KeyRow {
    pub id: i64,
    pub key: String,
    pub status: String,
    pub customer_id: Option<i64>,
    #[diesel(deserialize_as = TsOpt)]
    pub expires_at: Option<NaiveDateTime>,
    pub max_activations: Option<i32>,
    pub activation_count: i32,
    pub validation_count: i64,
    pub download_count: i64,
    #[diesel(deserialize_as = TsOpt)]
    pub last_used: Option<NaiveDateTime>,
    #[diesel(deserialize_as = TsOpt)]
    pub activated_at: Option<NaiveDateTime>,
    pub notes: String,
    pub version: i64,
    #[diesel(deserialize_as = Ts)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = Ts)]
    pub updated_at: NaiveDateTime,
}

impl KeyRow {
    /// The status a client should see: an active key past its expiry is `expired`.
    pub fn effective_status(&self, at: NaiveDateTime) -> KeyStatus {
        let stored = KeyStatus::parse(&self.status).unwrap_or(KeyStatus::Revoked);
        match (stored, self.expires_at) {
            (KeyStatus::Active, Some(exp)) if exp <= at => KeyStatus::Expired,
            (s, _) => s,
        }
    }

    pub fn view(&self) -> LicenseKeyView {
        LicenseKeyView {
            id: self.id,
            key: self.key.clone(),
            status: self.effective_status(now()),
            customer_id: self.customer_id,
            expires_at: self.expires_at.map(|t| t.and_utc()),
            max_activations: self.max_activations,
            activation_count: self.activation_count,
            validation_count: self.validation_count,
            download_count: self.download_count,
            last_used: self.last_used.map(|t| t.and_utc()),
            activated_at: self.activated_at.map(|t| t.and_utc()),
            notes: self.notes.clone(),
            version: self.version,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
        }
    }

    /// The key's printable prefix for logs and audit entries: `SCO-AB12...`. Never the key.
    pub fn log_prefix(&self) -> String {
        crate::license_key::log_prefix(&self.key)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = license_keys)]
pub struct NewKey {
    pub key: String,
    pub status: String,
    pub customer_id: Option<i64>,
    pub expires_at: Option<NaiveDateTime>,
    pub max_activations: Option<i32>,
    pub notes: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Fields an admin may change; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = license_keys)]
pub struct KeyChanges {
    pub status: Option<String>,
    pub customer_id: Option<Option<i64>>,
    pub expires_at: Option<Option<NaiveDateTime>>,
    pub max_activations: Option<Option<i32>>,
    pub notes: Option<String>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.customer_id.is_none()
            && self.expires_at.is_none()
            && self.max_activations.is_none()
            && self.notes.is_none()
    }
}

/// Filters of `GET /api/admin/keys`.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub q: Option<String>,
    pub status: Option<KeyStatus>,
    pub customer_id: Option<i64>,
}

/// Sort orders of the key list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySort {
    CreatedAt,
    UpdatedAt,
    Key,
}

impl crate::pagination::SortField for KeySort {
    const DEFAULT: &'static str = "-created_at";
    const NAMES: &'static str = "created_at, updated_at, key";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "created_at" => Some(Self::CreatedAt),
            "updated_at" => Some(Self::UpdatedAt),
            "key" => Some(Self::Key),
            _ => None,
        }
    }

    fn is_time(self) -> bool {
        matches!(self, Self::CreatedAt | Self::UpdatedAt)
    }
}

impl KeySort {
    /// The cursor value of `row` for this sort.
    pub fn cursor_of(self, row: &KeyRow) -> KeysetCursor {
        let value = match self {
            Self::CreatedAt => crate::pagination::time_value(row.created_at),
            Self::UpdatedAt => crate::pagination::time_value(row.updated_at),
            Self::Key => row.key.clone(),
        };
        KeysetCursor { value, id: row.id }
    }
}

/// A page request: sort, order, where to start, how many.
#[derive(Debug, Clone)]
pub struct KeyPageRequest {
    pub sort: KeySort,
    pub order: SortOrder,
    pub after: Option<KeysetCursor>,
    pub limit: i64,
}

pub trait KeyStore {
    fn insert_key(&mut self, new: &NewKey) -> QueryResult<KeyRow>;
    fn find_key(&mut self, id: i64) -> QueryResult<Option<KeyRow>>;
    fn find_keys(&mut self, ids: &[i64]) -> QueryResult<Vec<KeyRow>>;
    /// Applies `changes` if the row is still at `expected_version`; `None` when it is not (or
    /// is gone), so the caller can answer 412 or 404.
    fn update_key(
        &mut self,
        id: i64,
        expected_version: i64,
        changes: &KeyChanges,
    ) -> QueryResult<Option<KeyRow>>;
    fn delete_key(&mut self, id: i64) -> QueryResult<usize>;
    fn list_keys(&mut self, filter: &KeyFilter, page: &KeyPageRequest) -> QueryResult<Vec<KeyRow>>;
    fn count_keys(&mut self, filter: &KeyFilter) -> QueryResult<i64>;
    fn keys_of_customer(&mut self, customer_id: i64) -> QueryResult<Vec<KeyRow>>;
    fn key_exists(&mut self, key: &str) -> QueryResult<bool>;
    /// When the next active key expires, if one does after `at`.
    fn next_expiry_after(&mut self, at: NaiveDateTime) -> QueryResult<Option<NaiveDateTime>>;
    /// Active keys whose expiry is at or before `at`.
    fn lapsed_keys(&mut self, at: NaiveDateTime, limit: i64) -> QueryResult<Vec<KeyRow>>;
}

/// How each engine finds keys whose key or notes contain a text, case-insensitively, with `%`
/// and `_` taken literally.
pub trait KeyTextSearch: diesel::Connection {
    fn key_text_filter(
        q: &str,
    ) -> Box<dyn BoxableExpression<license_keys::table, Self::Backend, SqlType = Bool>>;
}

/// The portable form: a scan of both columns (PostgreSQL serves it from trigram indexes).
fn like_filter<DB>(q: &str) -> Box<dyn BoxableExpression<license_keys::table, DB, SqlType = Bool>>
where
    DB: diesel::backend::Backend,
    diesel::dsl::Or<
        diesel::dsl::Escape<diesel::dsl::Like<lower<license_keys::key>, String>>,
        diesel::dsl::Escape<diesel::dsl::Like<lower<license_keys::notes>, String>>,
    >: BoxableExpression<license_keys::table, DB, SqlType = Bool>,
{
    let pattern = like_pattern(q);
    Box::new(
        lower(license_keys::key)
            .like(pattern.clone())
            .escape('\\')
            .or(lower(license_keys::notes).like(pattern).escape('\\')),
    )
}

impl KeyTextSearch for diesel::sqlite::SqliteConnection {
    fn key_text_filter(
        q: &str,
    ) -> Box<dyn BoxableExpression<license_keys::table, diesel::sqlite::Sqlite, SqlType = Bool>>
    {
        // The trigram index needs three characters; shorter searches scan.
        if q.chars().count() < 3 {
            return like_filter(q);
        }
        let phrase = format!("\"{}\"", q.replace('"', "\"\""));
        Box::new(
            diesel::dsl::sql::<Bool>("license_keys.id IN (SELECT rowid FROM license_keys_search WHERE license_keys_search MATCH ")
                .bind::<diesel::sql_types::Text, _>(phrase)
                .sql(")"),
        )
    }
}

impl KeyTextSearch for diesel::pg::PgConnection {
    fn key_text_filter(
        q: &str,
    ) -> Box<dyn BoxableExpression<license_keys::table, diesel::pg::Pg, SqlType = Bool>> {
        like_filter(q)
    }
}

/// Applies a [`KeyFilter`] to a boxed `license_keys` query.
macro_rules! filter_keys {
    ($query:expr, $filter:expr) => {{
        let mut query = $query;
        let filter: &KeyFilter = $filter;
        let at = now();
        if let Some(q) = filter.q.as_deref().filter(|q| !q.trim().is_empty()) {
            query = query.filter(<Self as KeyTextSearch>::key_text_filter(q.trim()));
        }
        if let Some(customer) = filter.customer_id {
            query = query.filter(license_keys::customer_id.eq(customer));
        }
        match filter.status {
            None => {}
            Some(KeyStatus::Active) => {
                query = query.filter(license_keys::status.eq("active")).filter(
                    license_keys::expires_at
                        .is_null()
                        .or(license_keys::expires_at.gt(at)),
                )
            }
            Some(KeyStatus::Expired) => {
                query = query.filter(
                    license_keys::status.eq("expired").or(license_keys::status
                        .eq("active")
                        .and(license_keys::expires_at.le(at))),
                )
            }
            Some(other) => query = query.filter(license_keys::status.eq(other.as_str())),
        }
        query
    }};
}

/// Orders a boxed query by `$col` then id, and starts after `$after` when given.
macro_rules! keyset_page {
    ($query:expr, $col:expr, $id:expr, $order:expr, $after:expr, $value:expr) => {{
        let mut query = $query;
        match $order {
            SortOrder::Asc => {
                if let Some(after) = $after {
                    let v = $value(&after.value)?;
                    query = query.filter($col.gt(v.clone()).or($col.eq(v).and($id.gt(after.id))));
                }
                query.order(($col.asc(), $id.asc()))
            }
            SortOrder::Desc => {
                if let Some(after) = $after {
                    let v = $value(&after.value)?;
                    query = query.filter($col.lt(v.clone()).or($col.eq(v).and($id.lt(after.id))));
                }
                query.order(($col.desc(), $id.desc()))
            }
        }
    }};
}
pub(crate) use keyset_page;

fn parse_time(v: &str) -> QueryResult<NaiveDateTime> {
    crate::pagination::parse_time_value(v).ok_or(diesel::result::Error::NotFound)
}

fn parse_text(v: &str) -> QueryResult<String> {
    Ok(v.to_owned())
}

impl_for_both_backends!(KeyStore {
    fn insert_key(&mut self, new: &NewKey) -> QueryResult<KeyRow> {
        diesel::insert_into(license_keys::table)
            .values(new)
            .returning(KeyRow::as_returning())
            .get_result(self)
    }

    fn find_key(&mut self, id: i64) -> QueryResult<Option<KeyRow>> {
        license_keys::table
            .find(id)
            .select(KeyRow::as_select())
            .first(self)
            .optional()
    }

    fn find_keys(&mut self, ids: &[i64]) -> QueryResult<Vec<KeyRow>> {
        license_keys::table
            .filter(license_keys::id.eq_any(ids))
            .select(KeyRow::as_select())
            .load(self)
    }

    fn update_key(
        &mut self,
        id: i64,
        expected_version: i64,
        changes: &KeyChanges,
    ) -> QueryResult<Option<KeyRow>> {
        versioned_update!(self, license_keys, id, expected_version, changes, KeyRow)
    }

    fn delete_key(&mut self, id: i64) -> QueryResult<usize> {
        diesel::delete(license_keys::table.find(id)).execute(self)
    }

    fn list_keys(&mut self, filter: &KeyFilter, page: &KeyPageRequest) -> QueryResult<Vec<KeyRow>> {
        let query = filter_keys!(license_keys::table.into_boxed(), filter);
        let after = page.after.as_ref();
        let query = match page.sort {
            KeySort::CreatedAt => keyset_page!(query, license_keys::created_at, license_keys::id, page.order, after, parse_time),
            KeySort::UpdatedAt => keyset_page!(query, license_keys::updated_at, license_keys::id, page.order, after, parse_time),
            KeySort::Key => keyset_page!(query, license_keys::key, license_keys::id, page.order, after, parse_text),
        };
        query.limit(page.limit).select(KeyRow::as_select()).load(self)
    }

    fn count_keys(&mut self, filter: &KeyFilter) -> QueryResult<i64> {
        filter_keys!(license_keys::table.into_boxed(), filter)
            .count()
            .get_result(self)
    }

    fn keys_of_customer(&mut self, customer_id: i64) -> QueryResult<Vec<KeyRow>> {
        license_keys::table
            .filter(license_keys::customer_id.eq(customer_id))
            .order(license_keys::id.asc())
            .select(KeyRow::as_select())
            .load(self)
    }

    fn key_exists(&mut self, key: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            license_keys::table.filter(license_keys::key.eq(key)),
        ))
        .get_result(self)
    }

    fn next_expiry_after(&mut self, at: NaiveDateTime) -> QueryResult<Option<NaiveDateTime>> {
        license_keys::table
            .filter(license_keys::status.eq("active"))
            .filter(license_keys::expires_at.gt(at))
            .select(diesel::dsl::min(license_keys::expires_at))
            .first(self)
    }

    fn lapsed_keys(&mut self, at: NaiveDateTime, limit: i64) -> QueryResult<Vec<KeyRow>> {
        license_keys::table
            .filter(license_keys::status.eq("active"))
            .filter(license_keys::expires_at.le(at))
            .order(license_keys::expires_at.asc())
            .limit(limit)
            .select(KeyRow::as_select())
            .load(self)
    }
});

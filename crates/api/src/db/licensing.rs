//! Persistence of what license clients change: seats (`activations`) and a key's usage counters.
//!
//! Only the validation writer ([`crate::licensing::writer`]) calls the writing methods, inside
//! its write transaction, after [`KeyLocks::lock_keys`] has locked the keys of its batch.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Integer, Nullable, Timestamp};
use ref_cast::RefCast;

use super::keys::KeyRow;
use super::store::impl_for_both_backends;
use super::timestamp::{Ts, TsOpt};
use crate::schema::{activations, license_keys};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = activations)]
pub struct ActivationRow {
    pub id: i64,
    pub license_key_id: i64,
    pub fingerprint: String,
    pub last_seen_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = activations)]
struct NewActivation<'a> {
    license_key_id: i64,
    fingerprint: &'a str,
    last_seen_at: NaiveDateTime,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// How one attempt changes a key. Counters are applied as increments; `activated_at` and
/// `last_used` are the values to store (the caller read the row under lock).
#[derive(Debug, Clone, Copy)]
pub struct KeyUse {
    pub at: NaiveDateTime,
    pub validations: i64,
    pub downloads: i64,
    /// +1 for a new seat, -1 for a freed one.
    pub seats: i32,
    pub activated_at: Option<NaiveDateTime>,
    pub last_used: Option<NaiveDateTime>,
}

impl KeyUse {
    /// `row` as the update leaves it. Exact because `row` was read under the write lock (SQLite)
    /// or a row lock (PostgreSQL) held until commit.
    pub fn applied_to(&self, row: &KeyRow) -> KeyRow {
        KeyRow {
            validation_count: row.validation_count + self.validations,
            download_count: row.download_count + self.downloads,
            activation_count: row.activation_count + self.seats,
            activated_at: self.activated_at,
            last_used: self.last_used,
            version: row.version + 1,
            updated_at: self.at,
            ..row.clone()
        }
    }
}

// The two UPDATEs below run for (nearly) every validation. Diesel's UPDATE builder is never
// kept as a prepared statement, so each would be parsed and planned again every time; written as
// fixed statements with a static query id, both engines prepare them once per connection.

/// `UPDATE license_keys SET <counters>, version = version + 1, updated_at = ... WHERE id = ...`.
#[derive(Debug, Clone, Copy)]
struct RecordKeyUse {
    id: i64,
    change: KeyUse,
}

impl QueryId for RecordKeyUse {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for RecordKeyUse
where
    DB: Backend,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    Ts: ToSql<Timestamp, DB>,
    TsOpt: ToSql<Nullable<Timestamp>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE license_keys SET validation_count = validation_count + ");
        out.push_bind_param::<BigInt, _>(&self.change.validations)?;
        out.push_sql(", download_count = download_count + ");
        out.push_bind_param::<BigInt, _>(&self.change.downloads)?;
        out.push_sql(", activation_count = activation_count + ");
        out.push_bind_param::<Integer, _>(&self.change.seats)?;
        out.push_sql(", activated_at = ");
        out.push_bind_param::<Nullable<Timestamp>, _>(TsOpt::ref_cast(&self.change.activated_at))?;
        out.push_sql(", last_used = ");
        out.push_bind_param::<Nullable<Timestamp>, _>(TsOpt::ref_cast(&self.change.last_used))?;
        out.push_sql(", version = version + 1, updated_at = ");
        out.push_bind_param::<Timestamp, _>(Ts::ref_cast(&self.change.at))?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.id)?;
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for RecordKeyUse {}

/// `UPDATE activations SET last_seen_at = ..., updated_at = ... WHERE id = ...`.
#[derive(Debug, Clone, Copy)]
struct TouchActivation {
    id: i64,
    at: NaiveDateTime,
}

impl QueryId for TouchActivation {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for TouchActivation
where
    DB: Backend,
    i64: ToSql<BigInt, DB>,
    Ts: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE activations SET last_seen_at = ");
        out.push_bind_param::<Timestamp, _>(Ts::ref_cast(&self.at))?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(Ts::ref_cast(&self.at))?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.id)?;
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for TouchActivation {}

pub trait LicensingStore {
    /// The key whose text is exactly `key` (already normalised).
    fn find_key_by_value(&mut self, key: &str) -> QueryResult<Option<KeyRow>>;
    fn find_activation(
        &mut self,
        key_id: i64,
        fingerprint: &str,
    ) -> QueryResult<Option<ActivationRow>>;
    fn insert_activation(
        &mut self,
        key_id: i64,
        fingerprint: &str,
        at: NaiveDateTime,
    ) -> QueryResult<ActivationRow>;
    fn touch_activation(&mut self, id: i64, at: NaiveDateTime) -> QueryResult<usize>;
    fn delete_activation(&mut self, key_id: i64, fingerprint: &str) -> QueryResult<usize>;
    fn count_activations(&mut self, key_id: i64) -> QueryResult<i64>;
    /// Applies `change` to `row` (read under lock in this transaction), bumps its version and
    /// `updated_at`, and returns the row as stored now.
    fn record_key_use(&mut self, row: &KeyRow, change: &KeyUse) -> QueryResult<KeyRow>;
}

impl_for_both_backends!(LicensingStore {
    // No `.first()` in these lookups: its bound `LIMIT ?` makes SQLite (built with STAT4)
    // re-prepare the statement on every execution. Both columns sets are unique anyway.
    fn find_key_by_value(&mut self, key: &str) -> QueryResult<Option<KeyRow>> {
        license_keys::table
            .filter(license_keys::key.eq(key))
            .select(KeyRow::as_select())
            .get_result(self)
            .optional()
    }

    fn find_activation(
        &mut self,
        key_id: i64,
        fingerprint: &str,
    ) -> QueryResult<Option<ActivationRow>> {
        activations::table
            .filter(activations::license_key_id.eq(key_id))
            .filter(activations::fingerprint.eq(fingerprint))
            .select(ActivationRow::as_select())
            .get_result(self)
            .optional()
    }

    fn insert_activation(
        &mut self,
        key_id: i64,
        fingerprint: &str,
        at: NaiveDateTime,
    ) -> QueryResult<ActivationRow> {
        diesel::insert_into(activations::table)
            .values(&NewActivation {
                license_key_id: key_id,
                fingerprint,
                last_seen_at: at,
                created_at: at,
                updated_at: at,
            })
            .returning(ActivationRow::as_returning())
            .get_result(self)
    }

    fn touch_activation(&mut self, id: i64, at: NaiveDateTime) -> QueryResult<usize> {
        TouchActivation { id, at }.execute(self)
    }

    fn delete_activation(&mut self, key_id: i64, fingerprint: &str) -> QueryResult<usize> {
        diesel::delete(
            activations::table
                .filter(activations::license_key_id.eq(key_id))
                .filter(activations::fingerprint.eq(fingerprint)),
        )
        .execute(self)
    }

    fn count_activations(&mut self, key_id: i64) -> QueryResult<i64> {
        activations::table
            .filter(activations::license_key_id.eq(key_id))
            .count()
            .get_result(self)
    }

    fn record_key_use(&mut self, row: &KeyRow, change: &KeyUse) -> QueryResult<KeyRow> {
        let updated = RecordKeyUse { id: row.id, change: *change }.execute(self)?;
        if updated != 1 {
            return Err(diesel::result::Error::NotFound);
        }
        Ok(change.applied_to(row))
    }
});

/// Row locks on keys, the one thing that differs per engine here.
pub trait KeyLocks {
    /// Locks the rows of `keys` (normalised key texts) until the transaction ends, in id order so
    /// two writers never wait on each other in a cycle. Where that reads the rows anyway
    /// (PostgreSQL), returns them, so the batch needs no lookup of its own per attempt.
    fn lock_keys(&mut self, keys: &[&str]) -> QueryResult<Option<Vec<KeyRow>>>;
}

impl KeyLocks for diesel::sqlite::SqliteConnection {
    /// `BEGIN IMMEDIATE` already made this connection the only writer of the whole file.
    fn lock_keys(&mut self, _keys: &[&str]) -> QueryResult<Option<Vec<KeyRow>>> {
        Ok(None)
    }
}

impl KeyLocks for diesel::pg::PgConnection {
    fn lock_keys(&mut self, keys: &[&str]) -> QueryResult<Option<Vec<KeyRow>>> {
        if keys.is_empty() {
            return Ok(Some(Vec::new()));
        }
        license_keys::table
            .filter(license_keys::key.eq_any(keys))
            .order(license_keys::id.asc())
            .select(KeyRow::as_select())
            .for_update()
            .load::<KeyRow>(self)
            .map(Some)
    }
}

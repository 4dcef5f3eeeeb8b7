//! Persistence of what license clients change: seats (`activations`) and a key's usage counters.
//!
//! Only the validation writer ([`crate::licensing::writer`]) calls the writing methods, inside
//! its write transaction, after [`KeyLocks::lock_keys`] has locked the keys of its batch.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::QueryResult;

use super::keys::KeyRow;
use super::store::impl_for_both_backends;
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
    /// Applies `change` to key `id`, bumps its version and `updated_at`, returns the new row.
    fn record_key_use(&mut self, id: i64, change: &KeyUse) -> QueryResult<KeyRow>;
}

impl_for_both_backends!(LicensingStore {
    fn find_key_by_value(&mut self, key: &str) -> QueryResult<Option<KeyRow>> {
        license_keys::table
            .filter(license_keys::key.eq(key))
            .select(KeyRow::as_select())
            .first(self)
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
            .first(self)
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
        diesel::update(activations::table.find(id))
            .set((activations::last_seen_at.eq(at), activations::updated_at.eq(at)))
            .execute(self)
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

    fn record_key_use(&mut self, id: i64, change: &KeyUse) -> QueryResult<KeyRow> {
        diesel::update(license_keys::table.find(id))
            .set((
                license_keys::validation_count.eq(license_keys::validation_count + change.validations),
                license_keys::download_count.eq(license_keys::download_count + change.downloads),
                license_keys::activation_count.eq(license_keys::activation_count + change.seats),
                license_keys::activated_at.eq(change.activated_at),
                license_keys::last_used.eq(change.last_used),
                license_keys::version.eq(license_keys::version + 1),
                license_keys::updated_at.eq(change.at),
            ))
            .returning(KeyRow::as_returning())
            .get_result(self)
    }
});

/// Row locks on keys, the one thing that differs per engine here.
pub trait KeyLocks {
    /// Locks the rows of `keys` (normalised key texts) until the transaction ends, in id order so
    /// two writers never wait on each other in a cycle.
    fn lock_keys(&mut self, keys: &[&str]) -> QueryResult<()>;
}

impl KeyLocks for diesel::sqlite::SqliteConnection {
    /// `BEGIN IMMEDIATE` already made this connection the only writer of the whole file.
    fn lock_keys(&mut self, _keys: &[&str]) -> QueryResult<()> {
        Ok(())
    }
}

impl KeyLocks for diesel::pg::PgConnection {
    fn lock_keys(&mut self, keys: &[&str]) -> QueryResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        license_keys::table
            .filter(license_keys::key.eq_any(keys))
            .order(license_keys::id.asc())
            .select(license_keys::id)
            .for_update()
            .load::<i64>(self)
            .map(|_| ())
    }
}

//! Persistence of `server_settings`: server-wide values kept in the database (the signing key
//! pair), shared by every instance on the same database.

use diesel::prelude::*;
use diesel::result::QueryResult;

use super::store::{impl_for_both_backends, now};
use crate::schema::server_settings;

pub trait SettingStore {
    fn get_setting(&mut self, name: &str) -> QueryResult<Option<String>>;
    /// Stores `value` under `name` unless a value is there already; returns rows written (0 or 1).
    /// Two instances starting together both call this and then read back the one that won.
    fn insert_setting_if_absent(&mut self, name: &str, value: &str) -> QueryResult<usize>;
}

impl_for_both_backends!(SettingStore {
    fn get_setting(&mut self, name: &str) -> QueryResult<Option<String>> {
        server_settings::table
            .find(name)
            .select(server_settings::value)
            .first(self)
            .optional()
    }

    fn insert_setting_if_absent(&mut self, name: &str, value: &str) -> QueryResult<usize> {
        let at = now();
        diesel::insert_into(server_settings::table)
            .values((
                server_settings::name.eq(name),
                server_settings::value.eq(value),
                server_settings::created_at.eq(at),
                server_settings::updated_at.eq(at),
            ))
            .on_conflict(server_settings::name)
            .do_nothing()
            .execute(self)
    }
});

//! Persistence of `admin_preferences`: one JSON document of sync preferences per admin.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::QueryResult;

use super::store::{impl_for_both_backends, now};
use crate::schema::admin_preferences;

/// A stored preferences document.
#[derive(Debug, Clone, Queryable)]
pub struct PreferencesRow {
    pub preferences: String,
    pub version: i64,
    pub updated_at: NaiveDateTime,
}

pub trait PreferenceStore {
    fn find_preferences(&mut self, admin_id: i64) -> QueryResult<Option<PreferencesRow>>;
    /// Inserts or replaces `admin_id`'s document; returns the stored row (version bumped).
    fn save_preferences(&mut self, admin_id: i64, document: &str) -> QueryResult<PreferencesRow>;
}

impl_for_both_backends!(PreferenceStore {
    fn find_preferences(&mut self, admin_id: i64) -> QueryResult<Option<PreferencesRow>> {
        admin_preferences::table
            .find(admin_id)
            .select((
                admin_preferences::preferences,
                admin_preferences::version,
                admin_preferences::updated_at,
            ))
            .first(self)
            .optional()
    }

    fn save_preferences(&mut self, admin_id: i64, document: &str) -> QueryResult<PreferencesRow> {
        let at = now();
        diesel::insert_into(admin_preferences::table)
            .values((
                admin_preferences::admin_id.eq(admin_id),
                admin_preferences::preferences.eq(document),
                admin_preferences::version.eq(1_i64),
                admin_preferences::created_at.eq(at),
                admin_preferences::updated_at.eq(at),
            ))
            .on_conflict(admin_preferences::admin_id)
            .do_update()
            .set((
                admin_preferences::preferences.eq(document),
                admin_preferences::version.eq(admin_preferences::version + 1_i64),
                admin_preferences::updated_at.eq(at),
            ))
            .returning((
                admin_preferences::preferences,
                admin_preferences::version,
                admin_preferences::updated_at,
            ))
            .get_result(self)
    }
});

//! Persistence of `sessions` and the admin-account queries sign-in needs.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::QueryResult;

use super::models::AdminUserRow;
use super::store::{impl_for_both_backends, now};
use crate::schema::{admin_users, sessions};

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    pub token_hash: String,
    pub admin_id: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub expires_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub trait SessionStore {
    fn insert_session(&mut self, new: &NewSession) -> QueryResult<()>;
    /// The admin behind an unexpired session, with the session's last-seen time.
    fn session_admin(
        &mut self,
        token_hash: &str,
    ) -> QueryResult<Option<(AdminUserRow, NaiveDateTime)>>;
    fn touch_session(&mut self, token_hash: &str, expires_at: NaiveDateTime) -> QueryResult<()>;
    fn delete_session(&mut self, token_hash: &str) -> QueryResult<usize>;
    fn delete_sessions_of(&mut self, admin_id: i64) -> QueryResult<usize>;
    fn delete_expired_sessions(&mut self) -> QueryResult<usize>;
    fn record_login(&mut self, admin_id: i64) -> QueryResult<()>;
}

impl_for_both_backends!(SessionStore {
    fn insert_session(&mut self, new: &NewSession) -> QueryResult<()> {
        diesel::insert_into(sessions::table)
            .values(new)
            .execute(self)
            .map(|_| ())
    }

    fn session_admin(&mut self, token_hash: &str) -> QueryResult<Option<(AdminUserRow, NaiveDateTime)>> {
        sessions::table
            .inner_join(admin_users::table)
            .filter(sessions::token_hash.eq(token_hash))
            .filter(sessions::expires_at.gt(now()))
            .select((AdminUserRow::as_select(), sessions::last_seen_at))
            .first(self)
            .optional()
    }

    fn touch_session(&mut self, token_hash: &str, expires_at: NaiveDateTime) -> QueryResult<()> {
        let at = now();
        diesel::update(sessions::table.filter(sessions::token_hash.eq(token_hash)))
            .set((
                sessions::last_seen_at.eq(at),
                sessions::updated_at.eq(at),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(self)
            .map(|_| ())
    }

    fn delete_session(&mut self, token_hash: &str) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash))).execute(self)
    }

    fn delete_sessions_of(&mut self, admin_id: i64) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::admin_id.eq(admin_id))).execute(self)
    }

    fn delete_expired_sessions(&mut self) -> QueryResult<usize> {
        diesel::delete(sessions::table.filter(sessions::expires_at.le(now()))).execute(self)
    }

    fn record_login(&mut self, admin_id: i64) -> QueryResult<()> {
        diesel::update(admin_users::table.find(admin_id))
            .set(admin_users::last_login_at.eq(now()))
            .execute(self)
            .map(|_| ())
    }
});

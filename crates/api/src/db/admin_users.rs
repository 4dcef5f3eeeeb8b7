//! Persistence of `admin_users` beyond sign-in.

use diesel::prelude::*;
use diesel::result::QueryResult;

use super::models::AdminUserRow;
use super::store::{impl_for_both_backends, versioned_update};
use crate::schema::admin_users;

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = admin_users)]
pub struct AdminChanges {
    pub name: Option<String>,
    pub role: Option<String>,
    pub password_hash: Option<String>,
}

impl AdminChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.role.is_none() && self.password_hash.is_none()
    }
}

pub trait AdminStore {
    fn list_admins(&mut self) -> QueryResult<Vec<AdminUserRow>>;
    fn find_admin(&mut self, id: i64) -> QueryResult<Option<AdminUserRow>>;
    fn update_admin(
        &mut self,
        id: i64,
        expected_version: i64,
        changes: &AdminChanges,
    ) -> QueryResult<Option<AdminUserRow>>;
    fn delete_admin(&mut self, id: i64) -> QueryResult<usize>;
    fn count_admins(&mut self) -> QueryResult<i64>;
}

impl_for_both_backends!(AdminStore {
    fn list_admins(&mut self) -> QueryResult<Vec<AdminUserRow>> {
        admin_users::table
            .order(admin_users::id.asc())
            .select(AdminUserRow::as_select())
            .load(self)
    }

    fn find_admin(&mut self, id: i64) -> QueryResult<Option<AdminUserRow>> {
        admin_users::table
            .find(id)
            .select(AdminUserRow::as_select())
            .first(self)
            .optional()
    }

    fn update_admin(
        &mut self,
        id: i64,
        expected_version: i64,
        changes: &AdminChanges,
    ) -> QueryResult<Option<AdminUserRow>> {
        versioned_update!(self, admin_users, id, expected_version, changes, AdminUserRow)
    }

    fn delete_admin(&mut self, id: i64) -> QueryResult<usize> {
        diesel::delete(admin_users::table.find(id)).execute(self)
    }

    fn count_admins(&mut self) -> QueryResult<i64> {
        admin_users::table.count().get_result(self)
    }
});

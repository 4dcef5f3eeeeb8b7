//! Reading the change feed (writing is [`super::Store::append_change`]) and pruning it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::QueryResult;

use super::audit::AuditRow;
use super::customers::CustomerRow;
use super::models::AdminUserRow;
use super::models::ChangeRow;
use super::store::{impl_for_both_backends, now};
use super::Store;
use crate::schema::{
    admin_users, audit_logs, changes, customers, server_settings, webhook_deliveries,
};

/// `server_settings` entry holding the highest cursor retention has removed.
pub const PRUNED_THROUGH: &str = "feed_pruned_through";

pub trait ChangeStore {
    /// Entries after `cursor`, oldest first.
    fn changes_after(&mut self, cursor: i64, limit: i64) -> QueryResult<Vec<ChangeRow>>;
    /// Entries with `after < cursor <= through`, oldest first. No `LIMIT`: a bound `LIMIT ?`
    /// makes SQLite re-prepare the statement on every run, and the change-feed follower runs this
    /// after nearly every commit; the range bounds the result instead.
    fn changes_in_range(&mut self, after: i64, through: i64) -> QueryResult<Vec<ChangeRow>>;
    /// Entries written after `at`, oldest first (the timestamp form of `since`).
    fn changes_since_time(&mut self, at: NaiveDateTime, limit: i64) -> QueryResult<Vec<ChangeRow>>;
    /// The newest cursor, 0 for an empty feed.
    fn latest_cursor(&mut self) -> QueryResult<i64>;
    /// A position that changes whenever the feed gains an entry: the newest cursor, or, when
    /// retention has emptied the feed, the highest pruned one.
    fn feed_position(&mut self) -> QueryResult<i64>;
    /// The highest cursor pruned so far, 0 when nothing was.
    fn pruned_through(&mut self) -> QueryResult<i64>;
    /// Deletes up to `batch` feed entries older than `before`; returns how many.
    fn prune_changes(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize>;
    /// Deletes up to `batch` audit entries older than `before`; returns how many.
    fn prune_audit(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize>;
    /// Remembers a webhook signature; `false` when it was seen before (a replay).
    fn remember_webhook_signature(&mut self, signature: &str) -> QueryResult<bool>;
    fn forget_webhook_signatures_before(&mut self, before: NaiveDateTime) -> QueryResult<usize>;
    fn find_audit_entries(&mut self, ids: &[i64]) -> QueryResult<Vec<AuditRow>>;
    /// Audit entries written after `after`, newest first.
    fn audit_since(
        &mut self,
        after: Option<NaiveDateTime>,
        limit: i64,
    ) -> QueryResult<Vec<AuditRow>>;
    fn find_customers(&mut self, ids: &[i64]) -> QueryResult<Vec<CustomerRow>>;
    fn find_admins(&mut self, ids: &[i64]) -> QueryResult<Vec<AdminUserRow>>;
    /// When change `cursor` was written, if it is still in the feed.
    fn change_time(&mut self, cursor: i64) -> QueryResult<Option<NaiveDateTime>>;
}

impl_for_both_backends!(ChangeStore {
    fn changes_after(&mut self, cursor: i64, limit: i64) -> QueryResult<Vec<ChangeRow>> {
        changes::table
            .filter(changes::cursor.gt(cursor))
            .order(changes::cursor.asc())
            .limit(limit)
            .select(ChangeRow::as_select())
            .load(self)
    }

    fn changes_in_range(&mut self, after: i64, through: i64) -> QueryResult<Vec<ChangeRow>> {
        changes::table
            .filter(changes::cursor.gt(after))
            .filter(changes::cursor.le(through))
            .order(changes::cursor.asc())
            .select(ChangeRow::as_select())
            .load(self)
    }

    fn changes_since_time(&mut self, at: NaiveDateTime, limit: i64) -> QueryResult<Vec<ChangeRow>> {
        changes::table
            .filter(changes::created_at.gt(at))
            .order(changes::cursor.asc())
            .limit(limit)
            .select(ChangeRow::as_select())
            .load(self)
    }

    fn latest_cursor(&mut self) -> QueryResult<i64> {
        changes::table
            .select(diesel::dsl::max(changes::cursor))
            .first::<Option<i64>>(self)
            .map(|c| c.unwrap_or(0))
    }

    fn feed_position(&mut self) -> QueryResult<i64> {
        let latest = self.latest_cursor()?;
        if latest > 0 {
            Ok(latest)
        } else {
            self.pruned_through()
        }
    }

    fn pruned_through(&mut self) -> QueryResult<i64> {
        server_settings::table
            .find(PRUNED_THROUGH)
            .select(server_settings::value)
            .first::<String>(self)
            .optional()
            .map(|v| v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn prune_changes(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        self.write_tx(|tx| {
            let doomed: Vec<i64> = changes::table
                .filter(changes::created_at.lt(before))
                .order(changes::cursor.asc())
                .limit(batch)
                .select(changes::cursor)
                .load(tx)?;
            let Some(&highest) = doomed.last() else {
                return Ok(0);
            };
            let removed = diesel::delete(changes::table.filter(changes::cursor.le(highest))).execute(tx)?;
            let at = now();
            diesel::insert_into(server_settings::table)
                .values((
                    server_settings::name.eq(PRUNED_THROUGH),
                    server_settings::value.eq(highest.to_string()),
                    server_settings::created_at.eq(at),
                    server_settings::updated_at.eq(at),
                ))
                .on_conflict(server_settings::name)
                .do_update()
                .set((
                    server_settings::value.eq(highest.to_string()),
                    server_settings::updated_at.eq(at),
                ))
                .execute(tx)?;
            Ok(removed)
        })
    }

    fn prune_audit(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        self.write_tx(|tx| {
            let doomed: Vec<i64> = audit_logs::table
                .filter(audit_logs::created_at.lt(before))
                .order(audit_logs::id.asc())
                .limit(batch)
                .select(audit_logs::id)
                .load(tx)?;
            match doomed.last() {
                Some(&highest) => diesel::delete(audit_logs::table.filter(audit_logs::id.le(highest))).execute(tx),
                None => Ok(0),
            }
        })
    }

    fn remember_webhook_signature(&mut self, signature: &str) -> QueryResult<bool> {
        let at = now();
        diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::signature.eq(signature),
                webhook_deliveries::created_at.eq(at),
                webhook_deliveries::updated_at.eq(at),
            ))
            .on_conflict_do_nothing()
            .execute(self)
            .map(|inserted| inserted == 1)
    }

    fn forget_webhook_signatures_before(&mut self, before: NaiveDateTime) -> QueryResult<usize> {
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::created_at.lt(before))).execute(self)
    }

    fn find_audit_entries(&mut self, ids: &[i64]) -> QueryResult<Vec<AuditRow>> {
        audit_logs::table
            .filter(audit_logs::id.eq_any(ids))
            .select(AuditRow::as_select())
            .load(self)
    }

    fn audit_since(&mut self, after: Option<NaiveDateTime>, limit: i64) -> QueryResult<Vec<AuditRow>> {
        let mut query = audit_logs::table.into_boxed();
        if let Some(after) = after {
            query = query.filter(audit_logs::created_at.gt(after));
        }
        query
            .order(audit_logs::id.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(self)
    }

    fn find_customers(&mut self, ids: &[i64]) -> QueryResult<Vec<CustomerRow>> {
        customers::table
            .filter(customers::id.eq_any(ids))
            .select(CustomerRow::as_select())
            .load(self)
    }

    fn find_admins(&mut self, ids: &[i64]) -> QueryResult<Vec<AdminUserRow>> {
        admin_users::table
            .filter(admin_users::id.eq_any(ids))
            .select(AdminUserRow::as_select())
            .load(self)
    }

    fn change_time(&mut self, cursor: i64) -> QueryResult<Option<NaiveDateTime>> {
        changes::table
            .find(cursor)
            .select(changes::created_at)
            .first(self)
            .optional()
    }
});

//! Persistence, written once for both engines.
//!
//! [`Store`] is implemented for `SqliteConnection` and `PgConnection`. The queries both engines
//! share are written a single time inside `shared_queries!` and expanded into each impl, so
//! diesel type-checks them against each concrete backend. Only transaction start and change-feed
//! ordering differ per engine.
//!
//! Policy: methods return diesel's `QueryResult`; mapping to HTTP statuses happens in
//! [`crate::error`].

use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use diesel::result::QueryResult;

use ref_cast::RefCast;

use super::models::{Actor, AdminUserRow, NewAdminUser, NewAuditLog, NewChange};
use super::timestamp::Ts;
use crate::schema::{admin_users, audit_logs, changes};

/// The current time as stored: UTC, microsecond precision (PostgreSQL's), so both engines hand
/// back the same instant that was written.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// One audit-log entry, before the actor and time are attached.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub summary: Option<serde_json::Value>,
}

impl NewAuditLog {
    /// The row `entry` by `actor` becomes when written at `at`.
    pub fn of(actor: &Actor, entry: AuditEntry, at: NaiveDateTime) -> Self {
        Self {
            actor_kind: actor.kind().to_owned(),
            actor_id: actor.id(),
            actor_label: actor.label(),
            action: entry.action,
            target_kind: entry.target_kind,
            target_id: entry.target_id,
            ip: entry.ip,
            user_agent: entry.user_agent,
            summary: entry.summary.map(|s| s.to_string()),
            created_at: at,
            updated_at: at,
        }
    }
}

/// How a multi-row `INSERT` of the validation writer begins on each engine.
///
/// Why `OR FAIL` on SQLite: an `INSERT` of several rows whose constraints would `ABORT` on a
/// violation (SQLite's default) runs with a statement journal, a copy of every page the
/// statement touches taken before it changes it, so that a failure halfway can undo just that
/// statement. For a batch's audit entries that copy spilled to a temporary file and took about a
/// sixth of the writer thread's time in a profile of the validation benchmark. `FAIL` keeps the
/// rows written before a violation instead of undoing them, which needs no journal; the writer
/// then rolls the whole transaction back anyway, so nothing of a failed batch is kept.
trait MultiRowInsert {
    const INSERT_INTO: &'static str;
}

impl MultiRowInsert for diesel::sqlite::Sqlite {
    const INSERT_INTO: &'static str = "INSERT OR FAIL INTO ";
}

impl MultiRowInsert for diesel::pg::Pg {
    const INSERT_INTO: &'static str = "INSERT INTO ";
}

/// Several `audit_logs` rows in one `INSERT`: exactly `N` of them, so that each chunk size is a
/// statement of its own that both engines prepare once per connection.
struct AuditRows<'a, const N: usize>(&'a [NewAuditLog]);

/// Several `changes` rows in one `INSERT` (see [`AuditRows`]).
struct ChangeRows<'a, 'b, const N: usize>(&'a [NewChange<'b>]);

/// The [`QueryId`]s of the chunk statements: one per table and size.
struct AuditRowsId<const N: usize>;
struct ChangeRowsId<const N: usize>;

impl<const N: usize> diesel::query_builder::QueryId for AuditRows<'_, N> {
    type QueryId = AuditRowsId<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: usize> diesel::query_builder::QueryId for ChangeRows<'_, '_, N> {
    type QueryId = ChangeRowsId<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: usize, DB> diesel::query_builder::QueryFragment<DB> for AuditRows<'_, N>
where
    DB: diesel::backend::Backend + MultiRowInsert,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    Option<String>:
        diesel::serialize::ToSql<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB>,
    Option<i64>:
        diesel::serialize::ToSql<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, DB>,
    Ts: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        debug_assert_eq!(self.0.len(), N);
        out.push_sql(DB::INSERT_INTO);
        out.push_sql(
            "audit_logs (actor_kind, actor_id, actor_label, action, target_kind, \
             target_id, ip, user_agent, summary, created_at, updated_at) VALUES ",
        );
        for (i, row) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<Text, _>(&row.actor_kind)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(&row.actor_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&row.actor_label)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&row.action)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&row.target_kind)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&row.target_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&row.ip)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&row.user_agent)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&row.summary)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(Ts::ref_cast(&row.created_at))?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(Ts::ref_cast(&row.updated_at))?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<const N: usize, DB> diesel::query_builder::QueryFragment<DB> for ChangeRows<'_, '_, N>
where
    DB: diesel::backend::Backend + MultiRowInsert,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    Ts: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        debug_assert_eq!(self.0.len(), N);
        out.push_sql(DB::INSERT_INTO);
        out.push_sql(
            "changes (resource, resource_id, op, version, actor, created_at, \
             updated_at) VALUES ",
        );
        for (i, row) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<Text, _>(row.resource)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&row.resource_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(row.op)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&row.version)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&row.actor)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(Ts::ref_cast(&row.created_at))?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(Ts::ref_cast(&row.updated_at))?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<Conn, const N: usize> RunQueryDsl<Conn> for AuditRows<'_, N> {}
impl<Conn, const N: usize> RunQueryDsl<Conn> for ChangeRows<'_, '_, N> {}

/// Writes `rows` with as few statements as fixed chunk sizes allow (64, 16, 4, 1 rows each):
/// a handful of prepared statements serve any count.
macro_rules! insert_in_chunks {
    ($conn:expr, $rows:expr, $query:ident) => {{
        let mut rest = $rows;
        while !rest.is_empty() {
            let n = match rest.len() {
                n if n >= 64 => 64,
                n if n >= 16 => 16,
                n if n >= 4 => 4,
                _ => 1,
            };
            match n {
                64 => $query::<64>(&rest[..64]).execute($conn)?,
                16 => $query::<16>(&rest[..16]).execute($conn)?,
                4 => $query::<4>(&rest[..4]).execute($conn)?,
                _ => $query::<1>(&rest[..1]).execute($conn)?,
            };
            rest = &rest[n..];
        }
        Ok::<(), diesel::result::Error>(())
    }};
}

pub trait Store: Sized {
    /// Runs `f` in a write transaction; commits on `Ok`, rolls back on `Err`.
    fn write_tx<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Self) -> Result<R, E>,
        E: From<diesel::result::Error>;

    /// Makes change-feed cursors visible in commit order: on PostgreSQL, takes a transaction
    /// lock that serialises writers from here to commit; SQLite already has one writer.
    fn lock_change_feed(&mut self) -> QueryResult<()>;

    /// Wakes the change-feed followers of every instance when this transaction commits
    /// (PostgreSQL `NOTIFY`; SQLite instances poll).
    fn notify_change(&mut self) -> QueryResult<()>;

    fn ping(&mut self) -> QueryResult<()>;
    fn count_owners(&mut self) -> QueryResult<i64>;
    fn find_admin_by_email(&mut self, email: &str) -> QueryResult<Option<AdminUserRow>>;
    fn insert_admin(&mut self, new: &NewAdminUser<'_>) -> QueryResult<AdminUserRow>;
    fn append_audit(&mut self, actor: &Actor, entry: AuditEntry) -> QueryResult<i64>;
    fn append_change(
        &mut self,
        actor: &Actor,
        resource: &str,
        resource_id: i64,
        op: &str,
        version: i64,
    ) -> QueryResult<i64>;
    /// Appends many audit entries at once (the validation writer's batches).
    fn append_audits(&mut self, rows: &[NewAuditLog]) -> QueryResult<()>;
    /// Appends many change-feed entries at once, in order, under one change-feed lock and one
    /// notification.
    fn append_changes(&mut self, rows: &[NewChange<'_>]) -> QueryResult<()>;
}

/// Implements a persistence trait for both connection types from one body of methods.
macro_rules! impl_for_both_backends {
    ($trait:path { $($body:tt)* }) => {
        impl $trait for diesel::sqlite::SqliteConnection {
            $($body)*
        }
        impl $trait for diesel::pg::PgConnection {
            $($body)*
        }
    };
}
pub(crate) use impl_for_both_backends;

/// `UPDATE … SET <changes>, version = version + 1, updated_at = now WHERE id = … AND version = …
/// RETURNING …`: the optimistic-concurrency write every editable table shares. `None` when the
/// row is gone or no longer at the expected version. An empty changeset still bumps the version
/// (diesel refuses an empty `SET`, hence the two arms).
macro_rules! versioned_update {
    ($conn:expr, $table:ident, $id:expr, $expected:expr, $changes:expr, $row:ty) => {{
        let target = $table::table
            .filter($table::id.eq($id))
            .filter($table::version.eq($expected));
        let bump = (
            $table::version.eq($table::version + 1),
            $table::updated_at.eq($crate::db::store::now()),
        );
        if $changes.is_empty() {
            diesel::update(target)
                .set(bump)
                .returning(<$row>::as_returning())
                .get_result($conn)
                .optional()
        } else {
            diesel::update(target)
                .set(($changes, bump))
                .returning(<$row>::as_returning())
                .get_result($conn)
                .optional()
        }
    }};
}
pub(crate) use versioned_update;

diesel::define_sql_function! {
    /// SQL `lower()`, on both engines, for case-insensitive search.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `%term%` for `LIKE`, lower-cased, with `%`, `_` and `\` in the term escaped (use `escape('\\')`).
pub fn like_pattern(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

macro_rules! shared_queries {
    () => {
        fn ping(&mut self) -> QueryResult<()> {
            diesel::sql_query("SELECT 1").execute(self).map(|_| ())
        }

        fn count_owners(&mut self) -> QueryResult<i64> {
            admin_users::table
                .filter(admin_users::role.eq("owner"))
                .count()
                .get_result(self)
        }

        fn find_admin_by_email(&mut self, email: &str) -> QueryResult<Option<AdminUserRow>> {
            admin_users::table
                .filter(admin_users::email.eq(email))
                .select(AdminUserRow::as_select())
                .first(self)
                .optional()
        }

        fn insert_admin(&mut self, new: &NewAdminUser<'_>) -> QueryResult<AdminUserRow> {
            diesel::insert_into(admin_users::table)
                .values(new)
                .returning(AdminUserRow::as_returning())
                .get_result(self)
        }

        fn append_audit(&mut self, actor: &Actor, entry: AuditEntry) -> QueryResult<i64> {
            let row = NewAuditLog::of(actor, entry, now());
            diesel::insert_into(audit_logs::table)
                .values(&row)
                .returning(audit_logs::id)
                .get_result(self)
        }

        fn append_change(
            &mut self,
            actor: &Actor,
            resource: &str,
            resource_id: i64,
            op: &str,
            version: i64,
        ) -> QueryResult<i64> {
            self.lock_change_feed()?;
            let at = now();
            diesel::insert_into(changes::table)
                .values(&NewChange {
                    resource,
                    resource_id,
                    op,
                    version,
                    actor: actor.label(),
                    created_at: at,
                    updated_at: at,
                })
                .returning(changes::cursor)
                .get_result(self)
                .and_then(|cursor| self.notify_change().map(|()| cursor))
        }

        fn append_audits(&mut self, rows: &[NewAuditLog]) -> QueryResult<()> {
            insert_in_chunks!(self, rows, AuditRows)
        }

        fn append_changes(&mut self, rows: &[NewChange<'_>]) -> QueryResult<()> {
            if rows.is_empty() {
                return Ok(());
            }
            self.lock_change_feed()?;
            insert_in_chunks!(self, rows, ChangeRows)?;
            self.notify_change()
        }
    };
}

impl Store for diesel::sqlite::SqliteConnection {
    fn write_tx<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Self) -> Result<R, E>,
        E: From<diesel::result::Error>,
    {
        let result = self.immediate_transaction(f);
        if result.is_ok() {
            crate::feed::wake_local_followers();
        }
        result
    }

    fn lock_change_feed(&mut self) -> QueryResult<()> {
        Ok(())
    }

    fn notify_change(&mut self) -> QueryResult<()> {
        Ok(())
    }

    shared_queries!();
}

/// Any constant works; it names the change-feed lock among the database's advisory locks.
const CHANGE_FEED_LOCK: i64 = 0x006b_6579_7379_6e63;

impl Store for diesel::pg::PgConnection {
    fn write_tx<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Self) -> Result<R, E>,
        E: From<diesel::result::Error>,
    {
        let result = self.transaction(f);
        if result.is_ok() {
            crate::feed::wake_local_followers();
        }
        result
    }

    fn lock_change_feed(&mut self) -> QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(CHANGE_FEED_LOCK)
            .execute(self)
            .map(|_| ())
    }

    fn notify_change(&mut self) -> QueryResult<()> {
        // Identical notifications in one transaction are delivered once, at commit.
        diesel::sql_query(format!("SELECT pg_notify('{}', '')", crate::feed::CHANNEL))
            .execute(self)
            .map(|_| ())
    }

    shared_queries!();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DatabaseTarget;
    use crate::db::Database;

    fn change(op: &str, id: i64) -> NewChange<'_> {
        NewChange {
            resource: "license_key",
            resource_id: id,
            op,
            version: 1,
            actor: String::new(),
            created_at: now(),
            updated_at: now(),
        }
    }

    /// `INSERT OR FAIL` keeps the rows a statement wrote before a violation; the transaction
    /// around it must still take all of them back.
    #[test]
    fn a_violation_inside_a_multi_row_insert_leaves_nothing_behind_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::Sqlite(dir.path().join("s.db"));
        let db = Database::connect(&target, 2, Duration::from_secs(5)).unwrap();
        db.migrate_blocking().unwrap();
        let Database::Sqlite(pool, _) = &db else {
            panic!("a SQLite target opens a SQLite pool");
        };
        let conn = &mut *pool.get().unwrap();
        let count =
            |conn: &mut SqliteConnection| changes::table.count().get_result::<i64>(conn).unwrap();

        // Four rows make one chunk statement; the third breaks the `op` CHECK constraint.
        let rows = [
            change("created", 1),
            change("updated", 1),
            change("renamed", 1),
            change("deleted", 1),
        ];
        let failed = conn.write_tx(|tx| tx.append_changes(&rows));
        assert!(
            failed.is_err(),
            "the CHECK constraint must refuse the batch"
        );
        assert_eq!(count(conn), 0, "rows before the violation were kept");

        // The connection is still usable and a valid batch commits whole.
        conn.write_tx(|tx| tx.append_changes(&rows[..2])).unwrap();
        conn.write_tx(|tx| tx.append_changes(&[change("created", 2), change("deleted", 2)]))
            .unwrap();
        assert_eq!(count(conn), 4);
    }
}

//! Reading `audit_logs` (writing is [`super::Store::append_audit`]) and the dashboard's counts.

use chrono::{Duration, NaiveDateTime, Timelike};
use diesel::prelude::*;
use diesel::result::QueryResult;
use keysync_shared::stats::{HourlyCount, KeyCounts};
use keysync_shared::AuditLogView;

use super::store::{impl_for_both_backends, now};
use crate::schema::{admin_users, audit_logs, customers, license_keys};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_logs)]
pub struct AuditRow {
    pub id: i64,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub summary: Option<String>,
    pub created_at: NaiveDateTime,
}

impl AuditRow {
    pub fn view(&self) -> AuditLogView {
        AuditLogView {
            id: self.id,
            at: self.created_at.and_utc(),
            actor_kind: self.actor_kind.clone(),
            actor_id: self.actor_id,
            actor: self.actor_label.clone(),
            action: self.action.clone(),
            target_kind: self.target_kind.clone(),
            target_id: self.target_id.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            summary: self
                .summary
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
        }
    }
}

#[derive(QueryableByName)]
struct UsageTotals {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    validations: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    downloads: i64,
}

/// Filters of `GET /api/admin/audit-logs`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, or a prefix ending in `.` (`license.` matches every license action).
    pub action: Option<String>,
    /// Actor label (an admin's email, `license_client`, `webhook`, `system`).
    pub actor: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

/// The action names counted as validations and downloads on the dashboard.
pub const VALIDATION_ACTION: &str = "license.validate";
pub const DOWNLOAD_ACTION: &str = "release.download";

pub trait AuditStore {
    /// Newest first, starting below `before_id`; `limit` rows.
    fn list_audit(
        &mut self,
        filter: &AuditFilter,
        before_id: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<AuditRow>>;
    fn count_audit(&mut self, filter: &AuditFilter) -> QueryResult<i64>;
    fn count_action_since(&mut self, action: &str, since: NaiveDateTime) -> QueryResult<i64>;
    fn key_counts_by_status(&mut self) -> QueryResult<KeyCounts>;
    fn count_customers_all(&mut self) -> QueryResult<i64>;
    fn count_admins_all(&mut self) -> QueryResult<i64>;
    fn usage_totals(&mut self) -> QueryResult<(i64, i64)>;
    fn hourly_actions(&mut self, action: &str, hours: u32) -> QueryResult<Vec<HourlyCount>>;
}

macro_rules! filter_audit {
    ($query:expr, $filter:expr) => {{
        let mut query = $query;
        let filter: &AuditFilter = $filter;
        if let Some(action) = filter.action.as_deref() {
            query = match action.strip_suffix('.') {
                Some(prefix) => query.filter(audit_logs::action.like(format!(
                    "{}.%",
                    prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                )).escape('\\')),
                None => query.filter(audit_logs::action.eq(action.to_owned())),
            };
        }
        if let Some(actor) = filter.actor.as_deref() {
            query = query.filter(audit_logs::actor_label.eq(actor.to_owned()));
        }
        if let Some(kind) = filter.target_kind.as_deref() {
            query = query.filter(audit_logs::target_kind.eq(kind.to_owned()));
        }
        if let Some(id) = filter.target_id.as_deref() {
            query = query.filter(audit_logs::target_id.eq(id.to_owned()));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_logs::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_logs::created_at.lt(to));
        }
        query
    }};
}

impl_for_both_backends!(AuditStore {
    fn list_audit(&mut self, filter: &AuditFilter, before_id: Option<i64>, limit: i64) -> QueryResult<Vec<AuditRow>> {
        let mut query = filter_audit!(audit_logs::table.into_boxed(), filter);
        if let Some(before) = before_id {
            query = query.filter(audit_logs::id.lt(before));
        }
        query
            .order(audit_logs::id.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(self)
    }

    fn count_audit(&mut self, filter: &AuditFilter) -> QueryResult<i64> {
        filter_audit!(audit_logs::table.into_boxed(), filter)
            .count()
            .get_result(self)
    }

    fn count_action_since(&mut self, action: &str, since: NaiveDateTime) -> QueryResult<i64> {
        audit_logs::table
            .filter(audit_logs::action.eq(action))
            .filter(audit_logs::created_at.ge(since))
            .count()
            .get_result(self)
    }

    fn key_counts_by_status(&mut self) -> QueryResult<KeyCounts> {
        let at = now();
        let rows: Vec<(String, i64)> = license_keys::table
            .group_by(license_keys::status)
            .select((license_keys::status, diesel::dsl::count_star()))
            .load(self)?;
        let lapsed: i64 = license_keys::table
            .filter(license_keys::status.eq("active"))
            .filter(license_keys::expires_at.le(at))
            .count()
            .get_result(self)?;
        let mut counts = KeyCounts::default();
        for (status, n) in rows {
            counts.total += n;
            match status.as_str() {
                "active" => counts.active += n,
                "suspended" => counts.suspended += n,
                "revoked" => counts.revoked += n,
                "expired" => counts.expired += n,
                _ => {}
            }
        }
        counts.active -= lapsed;
        counts.expired += lapsed;
        Ok(counts)
    }

    fn count_customers_all(&mut self) -> QueryResult<i64> {
        customers::table.count().get_result(self)
    }

    fn count_admins_all(&mut self) -> QueryResult<i64> {
        admin_users::table.count().get_result(self)
    }

    fn usage_totals(&mut self) -> QueryResult<(i64, i64)> {
        // SUM over BIGINT is NUMERIC on PostgreSQL; cast back so both engines read an i64.
        let totals: UsageTotals = diesel::sql_query(
            "SELECT CAST(COALESCE(SUM(validation_count), 0) AS BIGINT) AS validations, \
                    CAST(COALESCE(SUM(download_count), 0) AS BIGINT) AS downloads \
             FROM license_keys",
        )
        .get_result(self)?;
        Ok((totals.validations, totals.downloads))
    }

    fn hourly_actions(&mut self, action: &str, hours: u32) -> QueryResult<Vec<HourlyCount>> {
        let at = now();
        let current_hour = at
            .with_minute(0)
            .and_then(|t| t.with_second(0))
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(at);
        let start = current_hour - Duration::hours(i64::from(hours) - 1);
        let stamps: Vec<NaiveDateTime> = audit_logs::table
            .filter(audit_logs::action.eq(action))
            .filter(audit_logs::created_at.ge(start))
            .select(audit_logs::created_at)
            .load(self)?;
        let mut buckets = vec![0i64; hours as usize];
        for t in stamps {
            let index = (t - start).num_hours();
            if let Some(slot) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) {
                *slot += 1;
            }
        }
        Ok(buckets
            .into_iter()
            .enumerate()
            .map(|(i, count)| HourlyCount {
                hour: (start + Duration::hours(i as i64)).and_utc(),
                count,
            })
            .collect())
    }
});

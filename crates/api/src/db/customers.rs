//! Persistence of `customers`.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::QueryResult;
use keysync_shared::CustomerView;

use super::keys::keyset_page;
use super::store::{impl_for_both_backends, like_pattern, lower, versioned_update};
use crate::pagination::{KeysetCursor, SortOrder};
use crate::schema::{customers, license_keys};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = customers)]
pub struct CustomerRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub company: String,
    pub notes: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl CustomerRow {
    pub fn view(&self, key_count: i64) -> CustomerView {
        CustomerView {
            id: self.id,
            name: self.name.clone(),
            email: self.email.clone(),
            company: self.company.clone(),
            notes: self.notes.clone(),
            key_count,
            version: self.version,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = customers)]
pub struct NewCustomer {
    pub name: String,
    pub email: String,
    pub company: String,
    pub notes: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = customers)]
pub struct CustomerChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub notes: Option<String>,
}

impl CustomerChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.company.is_none()
            && self.notes.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerSort {
    CreatedAt,
    Name,
    Email,
}

impl crate::pagination::SortField for CustomerSort {
    const DEFAULT: &'static str = "-created_at";
    const NAMES: &'static str = "created_at, name, email";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "created_at" => Some(Self::CreatedAt),
            "name" => Some(Self::Name),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    fn is_time(self) -> bool {
        matches!(self, Self::CreatedAt)
    }
}

impl CustomerSort {
    pub fn cursor_of(self, row: &CustomerRow) -> KeysetCursor {
        let value = match self {
            Self::CreatedAt => crate::pagination::time_value(row.created_at),
            Self::Name => row.name.clone(),
            Self::Email => row.email.clone(),
        };
        KeysetCursor { value, id: row.id }
    }
}

#[derive(Debug, Clone)]
pub struct CustomerPageRequest {
    pub q: Option<String>,
    pub sort: CustomerSort,
    pub order: SortOrder,
    pub after: Option<KeysetCursor>,
    pub limit: i64,
}

pub trait CustomerStore {
    fn insert_customer(&mut self, new: &NewCustomer) -> QueryResult<CustomerRow>;
    fn find_customer(&mut self, id: i64) -> QueryResult<Option<CustomerRow>>;
    fn find_customer_by_email(&mut self, email: &str) -> QueryResult<Option<CustomerRow>>;
    fn update_customer(
        &mut self,
        id: i64,
        expected_version: i64,
        changes: &CustomerChanges,
    ) -> QueryResult<Option<CustomerRow>>;
    fn delete_customer(&mut self, id: i64) -> QueryResult<usize>;
    fn list_customers(&mut self, page: &CustomerPageRequest) -> QueryResult<Vec<CustomerRow>>;
    fn count_customers(&mut self, q: Option<&str>) -> QueryResult<i64>;
    /// Number of keys each of `ids` has (absent ids have none).
    fn key_counts(&mut self, ids: &[i64]) -> QueryResult<HashMap<i64, i64>>;
}

macro_rules! search_customers {
    ($query:expr, $q:expr) => {{
        let mut query = $query;
        if let Some(q) = $q.filter(|q: &&str| !q.trim().is_empty()) {
            let pattern = like_pattern(q.trim());
            query = query.filter(
                lower(customers::name)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(customers::email).like(pattern.clone()).escape('\\'))
                    .or(lower(customers::company).like(pattern).escape('\\')),
            );
        }
        query
    }};
}

fn parse_time(v: &str) -> QueryResult<NaiveDateTime> {
    crate::pagination::parse_time_value(v).ok_or(diesel::result::Error::NotFound)
}

fn parse_text(v: &str) -> QueryResult<String> {
    Ok(v.to_owned())
}

impl_for_both_backends!(CustomerStore {
    fn insert_customer(&mut self, new: &NewCustomer) -> QueryResult<CustomerRow> {
        diesel::insert_into(customers::table)
            .values(new)
            .returning(CustomerRow::as_returning())
            .get_result(self)
    }

    fn find_customer(&mut self, id: i64) -> QueryResult<Option<CustomerRow>> {
        customers::table
            .find(id)
            .select(CustomerRow::as_select())
            .first(self)
            .optional()
    }

    fn find_customer_by_email(&mut self, email: &str) -> QueryResult<Option<CustomerRow>> {
        customers::table
            .filter(customers::email.eq(email))
            .select(CustomerRow::as_select())
            .first(self)
            .optional()
    }

    fn update_customer(
        &mut self,
        id: i64,
        expected_version: i64,
        changes: &CustomerChanges,
    ) -> QueryResult<Option<CustomerRow>> {
        versioned_update!(self, customers, id, expected_version, changes, CustomerRow)
    }

    fn delete_customer(&mut self, id: i64) -> QueryResult<usize> {
        diesel::delete(customers::table.find(id)).execute(self)
    }

    fn list_customers(&mut self, page: &CustomerPageRequest) -> QueryResult<Vec<CustomerRow>> {
        let query = search_customers!(customers::table.into_boxed(), page.q.as_deref());
        let after = page.after.as_ref();
        let query = match page.sort {
            CustomerSort::CreatedAt => keyset_page!(query, customers::created_at, customers::id, page.order, after, parse_time),
            CustomerSort::Name => keyset_page!(query, customers::name, customers::id, page.order, after, parse_text),
            CustomerSort::Email => keyset_page!(query, customers::email, customers::id, page.order, after, parse_text),
        };
        query.limit(page.limit).select(CustomerRow::as_select()).load(self)
    }

    fn count_customers(&mut self, q: Option<&str>) -> QueryResult<i64> {
        search_customers!(customers::table.into_boxed(), q)
            .count()
            .get_result(self)
    }

    fn key_counts(&mut self, ids: &[i64]) -> QueryResult<HashMap<i64, i64>> {
        let rows: Vec<(Option<i64>, i64)> = license_keys::table
            .filter(license_keys::customer_id.eq_any(ids))
            .group_by(license_keys::customer_id)
            .select((license_keys::customer_id, diesel::dsl::count_star()))
            .load(self)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, n)| id.map(|id| (id, n)))
            .collect())
    }
});

//! Persistence of `releases`: the last good copy of each upstream release the portal served, so a
//! restart or an upstream outage still has one, and our own download counter per release.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::QueryResult;

use super::store::impl_for_both_backends;
use crate::schema::releases;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = releases)]
pub struct ReleaseRow {
    pub id: i64,
    pub repo: String,
    pub tag_name: String,
    pub name: String,
    pub body: String,
    pub published_at: Option<NaiveDateTime>,
    /// JSON array of [`keysync_shared::ReleaseAsset`].
    pub assets: String,
    pub is_latest: bool,
    pub etag: Option<String>,
    pub fetched_at: NaiveDateTime,
    pub download_count: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ReleaseRow {
    pub fn assets(&self) -> Vec<keysync_shared::ReleaseAsset> {
        serde_json::from_str(&self.assets).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = releases, treat_none_as_null = true)]
pub struct NewRelease {
    pub repo: String,
    pub tag_name: String,
    pub name: String,
    pub body: String,
    pub published_at: Option<NaiveDateTime>,
    pub assets: String,
    pub is_latest: bool,
    pub etag: Option<String>,
    pub fetched_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub trait ReleaseStore {
    /// The release of `repo` marked latest, if any was ever fetched.
    fn latest_release(&mut self, repo: &str) -> QueryResult<Option<ReleaseRow>>;
    fn find_release(&mut self, repo: &str, tag: &str) -> QueryResult<Option<ReleaseRow>>;
    /// Stores `new` as `repo`'s latest (inserting or updating its row) and clears the mark on
    /// the others. Call inside a write transaction.
    fn save_latest_release(&mut self, new: &NewRelease) -> QueryResult<ReleaseRow>;
    /// The upstream confirmed the copy (304): move `fetched_at`.
    fn touch_release(&mut self, id: i64, at: NaiveDateTime) -> QueryResult<usize>;
    fn count_release_download(&mut self, id: i64, at: NaiveDateTime) -> QueryResult<usize>;
}

impl_for_both_backends!(ReleaseStore {
    fn latest_release(&mut self, repo: &str) -> QueryResult<Option<ReleaseRow>> {
        releases::table
            .filter(releases::repo.eq(repo))
            .filter(releases::is_latest.eq(true))
            .order(releases::fetched_at.desc())
            .select(ReleaseRow::as_select())
            .first(self)
            .optional()
    }

    fn find_release(&mut self, repo: &str, tag: &str) -> QueryResult<Option<ReleaseRow>> {
        releases::table
            .filter(releases::repo.eq(repo))
            .filter(releases::tag_name.eq(tag))
            .select(ReleaseRow::as_select())
            .first(self)
            .optional()
    }

    fn save_latest_release(&mut self, new: &NewRelease) -> QueryResult<ReleaseRow> {
        diesel::update(
            releases::table
                .filter(releases::repo.eq(&new.repo))
                .filter(releases::tag_name.ne(&new.tag_name))
                .filter(releases::is_latest.eq(true)),
        )
        .set((releases::is_latest.eq(false), releases::updated_at.eq(new.updated_at)))
        .execute(self)?;
        diesel::insert_into(releases::table)
            .values((new, releases::created_at.eq(new.updated_at)))
            .on_conflict((releases::repo, releases::tag_name))
            .do_update()
            .set(new)
            .returning(ReleaseRow::as_returning())
            .get_result(self)
    }

    fn touch_release(&mut self, id: i64, at: NaiveDateTime) -> QueryResult<usize> {
        diesel::update(releases::table.find(id))
            .set((releases::fetched_at.eq(at), releases::updated_at.eq(at)))
            .execute(self)
    }

    fn count_release_download(&mut self, id: i64, at: NaiveDateTime) -> QueryResult<usize> {
        diesel::update(releases::table.find(id))
            .set((
                releases::download_count.eq(releases::download_count + 1),
                releases::updated_at.eq(at),
            ))
            .execute(self)
    }
});

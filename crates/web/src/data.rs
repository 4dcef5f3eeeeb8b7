//! The signed-in app's data: one signal per synced source, filled by fetchers registered with
//! the DataSyncManager while the admin shell is mounted.

use std::collections::BTreeMap;
use std::rc::Rc;

use keysync_shared::{AdminView, CustomerView, DashboardStats, KeyStatus, LicenseKeyView, Page};
use leptos::prelude::*;
use serde::de::DeserializeOwned;

use crate::api;
use crate::session::Session;
use crate::sync::config::{
    ACTIVITY, ADMIN_USERS, CUSTOMERS, CUSTOMER_LIST, DASHBOARD_STATS, LICENSE_KEYS,
};
use crate::sync::{manager, Millis, SyncOptions, SyncSnapshot, Trigger};

/// Rows per page of the key table.
pub const PAGE_SIZE: u32 = 20;

/// The key table's view: search, filter, sort and the keyset page.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyQuery {
    pub q: String,
    pub status: Option<KeyStatus>,
    /// Only this customer's keys (from the customers page).
    pub customer_id: Option<i64>,
    /// `created_at`, `updated_at` or `key`, `-` prefixed for descending.
    pub sort: String,
    pub cursor: Option<String>,
    /// Cursors of the pages before this one, for "Previous".
    pub history: Vec<Option<String>>,
}

impl Default for KeyQuery {
    fn default() -> Self {
        Self {
            q: String::new(),
            status: None,
            customer_id: None,
            sort: "-created_at".into(),
            cursor: None,
            history: Vec::new(),
        }
    }
}

impl KeyQuery {
    pub fn path(&self) -> String {
        let mut path = format!(
            "/api/admin/keys?limit={PAGE_SIZE}&sort={}",
            api::encode(&self.sort)
        );
        if let Some(status) = self.status {
            path.push_str("&status=");
            path.push_str(status.as_str());
        }
        if let Some(id) = self.customer_id {
            path.push_str(&format!("&customer_id={id}"));
        }
        let q = self.q.trim();
        if !q.is_empty() {
            path.push_str("&q=");
            path.push_str(&api::encode(q));
        }
        if let Some(cursor) = &self.cursor {
            path.push_str("&cursor=");
            path.push_str(&api::encode(cursor));
        }
        path
    }

    /// The first page of this view (any change of search, filter or sort starts over).
    pub fn restart(mut self) -> Self {
        self.cursor = None;
        self.history.clear();
        self
    }

    pub fn next(mut self, cursor: String) -> Self {
        self.history.push(self.cursor.take());
        self.cursor = Some(cursor);
        self
    }

    pub fn previous(mut self) -> Self {
        self.cursor = self.history.pop().flatten();
        self
    }

    pub fn page_number(&self) -> usize {
        self.history.len() + 1
    }

    /// Sorting by `field`: ascending first, a second click descending.
    pub fn sorted_by(self, field: &str) -> Self {
        let sort = if self.sort == field {
            format!("-{field}")
        } else {
            field.to_owned()
        };
        Self { sort, ..self }.restart()
    }
}

/// The cache key of a request: the source name plus its query, so `license-keys` invalidates
/// every page and filter at once.
pub fn cache_key(source: &str, path: &str) -> String {
    match path.split_once('?') {
        Some((_, query)) => format!("{source}?{query}"),
        None => source.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NoticeKind {
    Success,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy)]
pub struct AdminData {
    pub stats: RwSignal<Option<DashboardStats>>,
    pub keys: RwSignal<Option<Page<LicenseKeyView>>>,
    pub keys_query: RwSignal<KeyQuery>,
    pub customers: RwSignal<Option<Page<CustomerView>>>,
    pub users: RwSignal<Option<Page<AdminView>>>,
    /// The last error of each source, cleared by its next success.
    pub errors: RwSignal<BTreeMap<&'static str, String>>,
    pub sync: RwSignal<SyncSnapshot>,
    pub notice: RwSignal<Option<Notice>>,
}

impl AdminData {
    fn new() -> Self {
        Self {
            stats: RwSignal::new(None),
            keys: RwSignal::new(None),
            keys_query: RwSignal::new(KeyQuery::default()),
            customers: RwSignal::new(None),
            users: RwSignal::new(None),
            errors: RwSignal::new(BTreeMap::new()),
            sync: RwSignal::new(manager().snapshot()),
            notice: RwSignal::new(None),
        }
    }

    /// The data from context (empty, unsynced signals outside the admin shell).
    pub fn get() -> Self {
        use_context::<AdminData>().unwrap_or_else(Self::new)
    }

    pub fn say(&self, kind: NoticeKind, text: impl Into<String>) {
        self.notice.try_set(Some(Notice {
            kind,
            text: text.into(),
        }));
    }

    pub fn error_of(&self, source: &'static str) -> Option<String> {
        self.errors.with(|e| e.get(source).cloned())
    }

    pub fn customer_name(&self, id: Option<i64>) -> Option<String> {
        let id = id?;
        self.customers.with(|c| {
            c.as_ref()
                .and_then(|page| page.items.iter().find(|c| c.id == id))
                .map(|c| c.name.clone())
        })
    }

    /// After a write: drop the cached keys, stats and customers (both lists) and refetch them, so the
    /// screen shows the change with no reload.
    pub async fn after_mutation(&self) {
        let _ = manager()
            .invalidate_and_refresh(&[
                LICENSE_KEYS,
                DASHBOARD_STATS,
                CUSTOMERS,
                CUSTOMER_LIST,
                ACTIVITY,
            ])
            .await;
    }
}

/// Parses a response body into a source's signal.
type Store = Rc<dyn Fn(&str) -> Result<(), api::ApiFailure>>;
/// What a source fetches now (`None`: nothing to fetch).
type PathFn = Rc<dyn Fn() -> Option<String>>;

/// Registers one source: `path()` says what to fetch now, `store` parses and keeps what came
/// back. Not generic (the typed part is only `store`), so the fetch state machine exists once.
pub(crate) fn register_source(
    data: AdminData,
    session: Session,
    key: &'static str,
    path: PathFn,
    store: Store,
) {
    let m = manager();
    let interval: Millis = m.interval_for(key, 30_000);
    let fetcher = move |trigger: Trigger| {
        let path = path.clone();
        let store = store.clone();
        async move {
            let Some(url) = path() else {
                return Ok(());
            };
            let result = api::get_cached(
                &cache_key(key, &url),
                &url,
                interval,
                trigger == Trigger::Revalidate,
            )
            .await
            .and_then(|body| {
                // A view changed while this was in flight: its own fetch follows.
                if path().as_deref() == Some(url.as_str()) {
                    store(&body)
                } else {
                    Ok(())
                }
            });
            match result {
                Ok(()) => {
                    data.errors.try_update(|e| e.remove(key));
                    Ok(())
                }
                Err(failure) => {
                    if failure.is_unauthorized() {
                        session.expire();
                    }
                    let message = failure.message();
                    data.errors.try_update(|e| e.insert(key, message.clone()));
                    Err(message)
                }
            }
        }
    };
    m.register(
        key,
        fetcher,
        SyncOptions {
            interval,
            enabled: true,
            on_error: None,
        },
    );
}

/// Parses a body into `target`, unless it equals what is shown: an unchanged poll re-renders
/// nothing.
pub(crate) fn store_if_changed<T>(target: RwSignal<Option<T>>) -> Store
where
    T: DeserializeOwned + PartialEq + Send + Sync + 'static,
{
    Rc::new(move |body: &str| {
        let value: T = api::parse_body(body)?;
        let same = target
            .try_with_untracked(|current| current.as_ref() == Some(&value))
            .unwrap_or(true);
        if !same {
            target.try_set(Some(value));
        }
        Ok(())
    })
}

/// Creates the admin data, registers every source with the manager, and unregisters them when
/// the calling component unmounts.
pub fn provide_admin_data(session: Session) -> AdminData {
    let data = AdminData::new();
    provide_context(data);
    let m = manager();
    m.set_admin(session.admin().map(|a| a.id));
    crate::sync::reporter::start();
    crate::prefs::Preferences::provide();
    let observer = m.subscribe(move || {
        let snapshot = manager().snapshot();
        let same = data
            .sync
            .try_with_untracked(|s| *s == snapshot)
            .unwrap_or(true);
        if !same {
            data.sync.try_set(snapshot);
        }
    });
    register_source(
        data,
        session,
        DASHBOARD_STATS,
        Rc::new(|| Some("/api/admin/stats".into())),
        store_if_changed(data.stats),
    );
    crate::sync::use_source(LICENSE_KEYS, data.keys_query, KeyQuery::path, data.keys);
    register_source(
        data,
        session,
        CUSTOMERS,
        Rc::new(|| Some("/api/admin/customers?limit=200&sort=name".into())),
        store_if_changed(data.customers),
    );
    register_source(
        data,
        session,
        ADMIN_USERS,
        Rc::new(|| Some("/api/admin/users?limit=200".into())),
        store_if_changed(data.users),
    );
    on_cleanup(move || {
        let m = manager();
        m.unsubscribe(observer);
        for key in [DASHBOARD_STATS, CUSTOMERS, ADMIN_USERS] {
            m.unregister(key);
        }
        crate::sync::reporter::stop();
        m.set_admin(None);
    });
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_view_is_the_newest_first_page() {
        assert_eq!(
            KeyQuery::default().path(),
            "/api/admin/keys?limit=20&sort=-created_at"
        );
    }

    #[test]
    fn search_filter_and_cursor_are_encoded_into_the_path() {
        let query = KeyQuery {
            q: " SCO 7K ".into(),
            status: Some(KeyStatus::Suspended),
            ..KeyQuery::default()
        }
        .next("abc=".into());

        assert_eq!(
            query.path(),
            "/api/admin/keys?limit=20&sort=-created_at&status=suspended&q=SCO%207K&cursor=abc%3D"
        );
        assert_eq!(query.page_number(), 2);
    }

    #[test]
    fn paging_forward_and_back_returns_to_the_same_cursor() {
        let first = KeyQuery::default();

        let third = first.clone().next("c2".into()).next("c3".into());
        let back = third.clone().previous();

        assert_eq!(third.page_number(), 3);
        assert_eq!(back.cursor.as_deref(), Some("c2"));
        assert_eq!(back.previous(), first);
    }

    #[test]
    fn sorting_toggles_direction_and_restarts_paging() {
        let by_key = KeyQuery::default().next("c2".into()).sorted_by("key");
        let by_key_desc = by_key.clone().sorted_by("key");

        assert_eq!(by_key.sort, "key");
        assert_eq!(by_key.cursor, None);
        assert_eq!(by_key_desc.sort, "-key");
    }

    #[test]
    fn cache_keys_carry_the_query_under_the_source_name() {
        assert_eq!(
            cache_key("license-keys", "/api/admin/keys?limit=20&sort=key"),
            "license-keys?limit=20&sort=key"
        );
        assert_eq!(
            cache_key("dashboard-stats", "/api/admin/stats"),
            "dashboard-stats"
        );
    }
}

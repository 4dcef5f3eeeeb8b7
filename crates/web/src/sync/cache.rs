//! `DataCache`: a bounded (LRU) in-memory cache whose entries expire after a TTL and remember
//! the response's `ETag`, so an expired entry can still be revalidated with `If-None-Match`
//! (an unchanged resource then costs a 304 and no body).

use std::cell::RefCell;
use std::future::Future;
use std::num::NonZeroUsize;

use lru::LruCache;

use super::clock::{Clock, Millis};
use super::log::Logger;

/// How many entries the cache holds before evicting the least recently used.
pub const DEFAULT_CAPACITY: usize = 128;

struct Entry<V> {
    value: V,
    etag: Option<String>,
    expires_at: Millis,
}

pub struct DataCache<V, C: Clock> {
    entries: LruCache<String, Entry<V>>,
    clock: C,
    log: Logger,
}

impl<V: Clone, C: Clock> DataCache<V, C> {
    pub fn new(capacity: usize, clock: C, log: Logger) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: LruCache::new(capacity),
            clock,
            log,
        }
    }

    pub fn set(&mut self, key: &str, value: V, ttl: Millis) {
        self.set_tagged(key, value, None, ttl);
    }

    /// Stores `value` with the `ETag` it was served with.
    pub fn set_tagged(&mut self, key: &str, value: V, etag: Option<String>, ttl: Millis) {
        let expires_at = self.clock.now().saturating_add(ttl);
        self.entries.put(
            key.to_owned(),
            Entry {
                value,
                etag,
                expires_at,
            },
        );
    }

    /// The value while it is fresh; `None` once it expired (or was never stored).
    pub fn get(&mut self, key: &str) -> Option<V> {
        let now = self.clock.now();
        let hit = self
            .entries
            .get(key)
            .filter(|e| e.expires_at > now)
            .map(|e| e.value.clone());
        if hit.is_some() {
            self.log.info(|| format!("[Cache] Hit for {key}"));
        }
        hit
    }

    /// The stored value and its `ETag`, fresh or not, for a conditional request.
    pub fn revalidation(&mut self, key: &str) -> Option<(V, String)> {
        self.entries
            .get(key)
            .and_then(|e| e.etag.clone().map(|tag| (e.value.clone(), tag)))
    }

    /// The server answered 304: the stored value is fresh again for `ttl`.
    pub fn touch(&mut self, key: &str, ttl: Millis) -> bool {
        let expires_at = self.clock.now().saturating_add(ttl);
        match self.entries.get_mut(key) {
            Some(e) => {
                e.expires_at = expires_at;
                true
            }
            None => false,
        }
    }

    pub fn invalidate(&mut self, key: &str) -> bool {
        let removed = self.entries.pop(key).is_some();
        self.log.debug(|| format!("[Cache] Invalidated {key}"));
        removed
    }

    /// Drops every entry whose key starts with `prefix` (`license-keys` drops every page and
    /// filter of the key list). Returns how many were dropped.
    pub fn invalidate_prefix(&mut self, prefix: &str) -> usize {
        let doomed: Vec<String> = self
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &doomed {
            self.entries.pop(key);
        }
        self.log.debug(|| {
            format!(
                "[Cache] Invalidated {} entries under {prefix}",
                doomed.len()
            )
        });
        doomed.len()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.log.info(|| "[Cache] Cleared".into());
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }

    pub fn logger(&self) -> &Logger {
        &self.log
    }
}

/// The fresh cached value for `key`, or the fetcher's result, stored for `ttl`. No borrow of the
/// cache is held while the fetcher runs. A failed fetch stores nothing.
pub async fn fetch_with_cache<V, C, E, Fut>(
    cache: &RefCell<DataCache<V, C>>,
    key: &str,
    fetcher: impl FnOnce() -> Fut,
    ttl: Millis,
) -> Result<V, E>
where
    V: Clone,
    C: Clock,
    Fut: Future<Output = Result<V, E>>,
{
    if let Some(hit) = cache.borrow_mut().get(key) {
        return Ok(hit);
    }
    cache
        .borrow()
        .logger()
        .info(|| format!("[Cache] Miss for {key}, fetching..."));
    let value = fetcher().await?;
    cache.borrow_mut().set(key, value.clone(), ttl);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::sync::clock::ManualClock;
    use crate::sync::log::Level;

    /// Runs a future that never waits on anything (the fetchers here answer at once).
    fn run<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the test future waited"),
        }
    }

    fn cache(capacity: usize) -> (DataCache<String, ManualClock>, ManualClock) {
        let clock = ManualClock::at(0);
        (
            DataCache::new(capacity, clock.clone(), Logger::default()),
            clock,
        )
    }

    #[test]
    fn a_value_is_served_until_its_ttl_runs_out() {
        let (mut c, clock) = cache(8);
        c.set("dashboard-stats", "v1".into(), 30_000);

        clock.advance(29_999);
        let fresh = c.get("dashboard-stats");
        clock.advance(1);
        let expired = c.get("dashboard-stats");

        assert_eq!(fresh.as_deref(), Some("v1"));
        assert_eq!(expired, None);
    }

    #[test]
    fn an_expired_entry_keeps_its_etag_for_a_conditional_request_and_a_304_refreshes_it() {
        let (mut c, clock) = cache(8);
        c.set_tagged(
            "license-keys",
            "page".into(),
            Some("\"abc\"".into()),
            15_000,
        );
        clock.advance(20_000);

        let revalidate = c.revalidation("license-keys");
        let touched = c.touch("license-keys", 15_000);

        assert_eq!(revalidate, Some(("page".into(), "\"abc\"".into())));
        assert!(touched);
        assert_eq!(c.get("license-keys").as_deref(), Some("page"));
    }

    #[test]
    fn invalidation_drops_one_key_a_prefix_or_everything() {
        let (mut c, _) = cache(8);
        for key in [
            "license-keys?status=active",
            "license-keys?q=x",
            "dashboard-stats",
            "customers",
        ] {
            c.set(key, key.into(), 60_000);
        }

        let one = c.invalidate("customers");
        let prefixed = c.invalidate_prefix("license-keys");
        let left = c.keys();
        c.clear();

        assert!(one);
        assert_eq!(prefixed, 2);
        assert_eq!(left, vec!["dashboard-stats".to_owned()]);
        assert!(c.is_empty());
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted_at_capacity() {
        let (mut c, _) = cache(2);
        c.set("a", "a".into(), 60_000);
        c.set("b", "b".into(), 60_000);
        c.get("a");

        c.set("c", "c".into(), 60_000);

        assert_eq!(c.get("b"), None);
        assert!(c.get("a").is_some() && c.get("c").is_some());
    }

    #[test]
    fn fetch_with_cache_fetches_on_a_miss_and_not_on_a_hit() {
        let (log, lines) = Logger::recording(Level::Info);
        let clock = ManualClock::at(0);
        let c = RefCell::new(DataCache::new(8, clock.clone(), log));
        let calls = std::cell::Cell::new(0);
        let fetch = || {
            calls.set(calls.get() + 1);
            async { Ok::<_, String>(format!("stats #{}", calls.get())) }
        };

        let first = run(fetch_with_cache(&c, "dashboard-stats", fetch, 30_000));
        let second = run(fetch_with_cache(&c, "dashboard-stats", fetch, 30_000));
        clock.advance(30_000);
        let third = run(fetch_with_cache(&c, "dashboard-stats", fetch, 30_000));

        assert_eq!(first.as_deref(), Ok("stats #1"));
        assert_eq!(second.as_deref(), Ok("stats #1"));
        assert_eq!(third.as_deref(), Ok("stats #2"));
        assert_eq!(calls.get(), 2);
        assert_eq!(
            lines.borrow()[..2],
            [
                "[Cache] Miss for dashboard-stats, fetching...".to_owned(),
                "[Cache] Hit for dashboard-stats".to_owned()
            ]
        );
    }

    #[test]
    fn a_failed_fetch_stores_nothing() {
        let (c, _) = cache(8);
        let c = RefCell::new(c);

        let result = run(fetch_with_cache(
            &c,
            "customers",
            || async { Err::<String, _>("503") },
            30_000,
        ));

        assert_eq!(result, Err("503"));
        assert!(c.borrow().is_empty());
    }
}

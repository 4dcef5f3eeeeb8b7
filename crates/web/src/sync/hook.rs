//! `use_source`: a page's synced view, registered for as long as the page is shown.

use std::rc::Rc;

use leptos::prelude::*;
use serde::de::DeserializeOwned;

use super::manager;
use crate::data::{register_source, store_if_changed, AdminData};
use crate::session::Session;

/// Registers the source `key` while the calling component lives: it fetches `path(query)` into
/// `target`, loads again at once when `query` changes (a fresh cached page answers directly),
/// and is unregistered when the component unmounts.
pub fn use_source<Q, T>(
    key: &'static str,
    query: RwSignal<Q>,
    path: fn(&Q) -> String,
    target: RwSignal<Option<T>>,
) where
    Q: Clone + PartialEq + Send + Sync + 'static,
    T: DeserializeOwned + PartialEq + Send + Sync + 'static,
{
    register_source(
        AdminData::get(),
        Session::get(),
        key,
        Rc::new(move || query.try_with_untracked(path)),
        store_if_changed(target),
    );
    Effect::new(move |previous: Option<Q>| {
        let q = query.get();
        if previous.as_ref().is_some_and(|p| *p != q) {
            manager().load(key);
        }
        q
    });
    on_cleanup(move || manager().unregister(key));
}

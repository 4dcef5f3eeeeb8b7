//! A small client-side router: the current path in a signal, `history.pushState` for links,
//! `popstate` for Back/Forward.
//!
//! Not leptos_router: its nested-route machinery was a fifth of the wasm bundle, and this app
//! has five fixed routes.

use leptos::prelude::*;
use wasm_bindgen::JsValue;

/// The current path (`/admin/keys`), shared through context.
#[derive(Debug, Clone, Copy)]
pub struct Location(pub RwSignal<String>);

fn window_path() -> String {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_else(|| "/".into())
}

impl Location {
    /// Creates the location for the app's lifetime and follows Back/Forward.
    pub fn provide() -> Self {
        let location = Self(RwSignal::new(window_path()));
        provide_context(location);
        let handle = window_event_listener(leptos::ev::popstate, move |_| {
            location.0.set(window_path());
        });
        on_cleanup(move || handle.remove());
        location
    }

    pub fn get() -> Self {
        use_context::<Location>().unwrap_or_else(|| Self(RwSignal::new(window_path())))
    }

    pub fn path(&self) -> String {
        self.0.get()
    }

    /// Goes to `path`, adding a history entry (`replace`: replacing the current one).
    pub fn navigate(&self, path: &str, replace: bool) {
        if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
            let _ = if replace {
                history.replace_state_with_url(&JsValue::NULL, "", Some(path))
            } else {
                history.push_state_with_url(&JsValue::NULL, "", Some(path))
            };
        }
        if self.0.get_untracked() != path {
            self.0.set(path.to_owned());
        }
    }
}

/// The top-level sections; the admin shell stays mounted across its own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Portal,
    Login,
    Admin,
    NotFound,
}

/// The pages inside the admin shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPage {
    Dashboard,
    Keys,
    Settings,
    NotFound,
}

pub fn section(path: &str) -> Section {
    match path.trim_end_matches('/') {
        "" => Section::Home,
        "/portal" => Section::Portal,
        "/login" => Section::Login,
        p if p == "/admin" || p.starts_with("/admin/") => Section::Admin,
        _ => Section::NotFound,
    }
}

pub fn admin_page(path: &str) -> AdminPage {
    match path.trim_end_matches('/') {
        "/admin" => AdminPage::Dashboard,
        "/admin/keys" => AdminPage::Keys,
        "/admin/settings" => AdminPage::Settings,
        _ => AdminPage::NotFound,
    }
}

/// An in-app link: a real `<a href>` (so it can be opened in a new tab), navigated without a
/// reload on a plain click. `aria-current="page"` marks the current one.
#[component]
pub fn Link(
    href: &'static str,
    testid: &'static str,
    #[prop(optional)] prefix: bool,
    children: Children,
) -> impl IntoView {
    let location = Location::get();
    let current = move || {
        let path = location.path();
        let active = path == href || (prefix && path.starts_with(&format!("{href}/")));
        active.then_some("page")
    };
    view! {
        <a
            href=href
            data-testid=testid
            aria-current=current
            on:click=move |ev: leptos::ev::MouseEvent| {
                let plain = ev.button() == 0 && !ev.ctrl_key() && !ev.meta_key() && !ev.shift_key()
                    && !ev.alt_key();
                if plain {
                    ev.prevent_default();
                    location.navigate(href, false);
                }
            }
        >
            {children()}
        </a>
    }
}

/// Replaces the current location with `path` once rendered (for guards).
#[component]
pub fn Redirect(path: &'static str) -> impl IntoView {
    let location = Location::get();
    Effect::new(move |_| location.navigate(path, true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_sections_and_admin_pages() {
        assert_eq!(section("/"), Section::Home);
        assert_eq!(section("/portal"), Section::Portal);
        assert_eq!(admin_page("/admin/settings"), AdminPage::Settings);
        assert_eq!(section("/login"), Section::Login);
        assert_eq!(section("/admin"), Section::Admin);
        assert_eq!(section("/admin/keys/"), Section::Admin);
        assert_eq!(section("/administrator"), Section::NotFound);
        assert_eq!(admin_page("/admin/"), AdminPage::Dashboard);
        assert_eq!(admin_page("/admin/keys"), AdminPage::Keys);
        assert_eq!(admin_page("/admin/nope"), AdminPage::NotFound);
    }
}

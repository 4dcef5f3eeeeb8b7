//! The signed-in admin's sync preferences: loaded from the server after sign-in, applied to the
//! DataSyncManager, reloaded when a push (or, while push is not live, the polled change feed)
//! says this admin saved them in another browser.

use keysync_shared::SyncPreferences;
use leptos::prelude::*;

use crate::api::{self, ApiFailure};
use crate::sync::manager;

pub const PREFERENCES_URL: &str = "/api/admin/me/preferences";

/// The preferences in force (`None` until loaded), shared through context.
#[derive(Debug, Clone, Copy)]
pub struct Preferences(pub RwSignal<Option<SyncPreferences>>);

impl Preferences {
    /// Creates the context, loads and applies the preferences now and whenever they change
    /// elsewhere; the hook is removed when the calling component unmounts.
    pub fn provide() -> Self {
        let prefs = Self(RwSignal::new(None));
        provide_context(prefs);
        prefs.reload();
        manager().on_preferences_changed(Some(std::rc::Rc::new(move || prefs.reload())));
        on_cleanup(|| manager().on_preferences_changed(None));
        prefs
    }

    pub fn get() -> Option<Self> {
        use_context::<Preferences>()
    }

    /// Fetches the server's copy and applies it. A failure keeps what runs (the defaults).
    pub fn reload(self) {
        leptos::task::spawn_local(async move {
            if let Ok(saved) = api::get_json::<SyncPreferences>(PREFERENCES_URL).await {
                self.apply(saved);
            }
        });
    }

    /// Applies `saved` to the running engine and shows it.
    pub fn apply(self, saved: SyncPreferences) {
        manager().apply_preferences(&saved);
        self.0.try_set(Some(saved));
    }

    /// Saves `wanted` on the server and applies what it answers.
    pub async fn save(self, wanted: &SyncPreferences) -> Result<SyncPreferences, ApiFailure> {
        let saved: SyncPreferences = api::send_json("PUT", PREFERENCES_URL, wanted, None).await?;
        self.apply(saved.clone());
        Ok(saved)
    }
}

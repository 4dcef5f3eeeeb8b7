//! Who is signed in, shared through context.

use keysync_shared::{AdminRole, AdminView};
use leptos::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Asking `/api/auth/me`.
    Checking,
    SignedOut,
    SignedIn(AdminView),
}

#[derive(Debug, Clone, Copy)]
pub struct Session(pub RwSignal<Auth>);

impl Session {
    pub fn provide() -> Self {
        let session = Self(RwSignal::new(Auth::Checking));
        provide_context(session);
        session
    }

    /// The session from context (a signed-out one if there is none).
    pub fn get() -> Self {
        use_context::<Session>().unwrap_or_else(|| Self(RwSignal::new(Auth::SignedOut)))
    }

    pub fn admin(&self) -> Option<AdminView> {
        match self.0.get() {
            Auth::SignedIn(admin) => Some(admin),
            _ => None,
        }
    }

    pub fn can_write(&self) -> bool {
        self.0
            .with(|a| matches!(a, Auth::SignedIn(admin) if admin.role >= AdminRole::Admin))
    }

    /// A call answered 401: the session ended.
    pub fn expire(&self) {
        self.0.try_set(Auth::SignedOut);
    }
}

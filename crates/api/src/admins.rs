//! Admin accounts created outside the HTTP API: the owner made at first start and
//! `keysync admin create`.

use keysync_shared::AdminRole;
use serde_json::json;

use crate::db::models::{Actor, AdminUserRow, NewAdminUser};
use crate::db::store::now;
use crate::db::Store;
use crate::domain::{Email, NewPassword};
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::mutations::{record, Op, Recorded};
use crate::password;

/// What [`ensure_owner`] did.
#[derive(Debug)]
pub enum OwnerBootstrap {
    /// An owner already existed; nothing changed.
    Existing,
    /// An owner was created with the configured password.
    Created { email: String },
    /// An owner was created with a generated password, to be shown once.
    Generated { email: String, password: String },
}

/// Creates an admin with its audit entry and change-feed entry, in one transaction.
pub fn create_admin<S: Store>(
    store: &mut S,
    actor: &Actor,
    meta: &RequestMeta,
    email: &Email,
    name: &str,
    password: &NewPassword,
    role: AdminRole,
) -> Result<AdminUserRow, ApiError> {
    let hash = password::hash(password.expose()).map_err(ApiError::internal)?;
    store.write_tx(|tx| {
        if tx.find_admin_by_email(email.as_str())?.is_some() {
            return Err(ApiError::Conflict {
                code: "email_taken",
                message: format!("an admin with email {email} already exists"),
            });
        }
        let at = now();
        let admin = tx.insert_admin(&NewAdminUser {
            email: email.as_str(),
            name,
            password_hash: &hash,
            role: role.as_str(),
            version: 1,
            created_at: at,
            updated_at: at,
        })?;
        record(
            tx,
            actor,
            meta,
            Recorded {
                action: "admin.created",
                resource: "admin_users",
                id: admin.id,
                op: Op::Created,
                version: admin.version,
                summary: json!({"after": {"email": admin.email, "name": admin.name, "role": admin.role}}),
            },
        )?;
        Ok(admin)
    })
}

/// Makes sure at least one owner exists, creating `email` as owner when none does.
pub fn ensure_owner<S: Store>(
    store: &mut S,
    email: &str,
    configured_password: Option<&str>,
) -> anyhow::Result<OwnerBootstrap> {
    if store.count_owners()? > 0 {
        return Ok(OwnerBootstrap::Existing);
    }
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("KEYSYNC_ADMIN_EMAIL: {e}"))?;
    let (password, generated) = match configured_password {
        Some(p) => (p.to_owned(), false),
        None => (password::generate(), true),
    };
    let password =
        NewPassword::parse(password).map_err(|e| anyhow::anyhow!("KEYSYNC_ADMIN_PASSWORD: {e}"))?;
    create_admin(
        store,
        &Actor::System,
        &RequestMeta::default(),
        &email,
        "",
        &password,
        AdminRole::Owner,
    )
    .map_err(|e| anyhow::anyhow!("cannot create the owner admin: {e}"))?;
    Ok(if generated {
        OwnerBootstrap::Generated {
            email: email.to_string(),
            password: password.expose().to_owned(),
        }
    } else {
        OwnerBootstrap::Created {
            email: email.to_string(),
        }
    })
}

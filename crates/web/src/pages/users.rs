use keysync_shared::{AdminRole, AdminView, CreateAdmin, PatchAdmin};
use leptos::prelude::*;

use crate::api::{self, ApiFailure};
use crate::components::Modal;
use crate::data::{AdminData, NoticeKind};
use crate::format;
use crate::session::{Auth, Session};
use crate::sync::config::{ACTIVITY, ADMIN_USERS, DASHBOARD_STATS};
use crate::sync::manager;

fn if_match(a: &AdminView) -> String {
    format!("\"v{}\"", a.version)
}

/// Why admin-user changes are not queued offline like key and customer edits: they carry
/// passwords, which must never rest in `localStorage`.
const OFFLINE: &str = "You are offline (the server cannot be reached). Changes to admin users \
                       are not queued, since they can carry passwords: try again when the \
                       connection returns.";

/// Sends an admin-user write unless the browser is offline (then refused with [`OFFLINE`]).
async fn online<T>(
    write: impl std::future::Future<Output = Result<T, ApiFailure>>,
) -> Result<T, ApiFailure> {
    if !crate::sync::dom::navigator_online() {
        return Err(ApiFailure::Network("offline".into()));
    }
    write.await
}

/// The people-facing text of a refused change (the last owner's protection above all).
fn explain(failure: &ApiFailure) -> String {
    match failure.code() {
        "last_owner" => {
            "This is the last owner: make someone else an owner first, then try again.".into()
        }
        "network" => OFFLINE.into(),
        _ if failure.status() == Some(412) => {
            "This account was changed elsewhere; the list now shows its current state.".into()
        }
        _ => failure.message(),
    }
}

/// Runs an owner's write on an account, reports it and refreshes the users and the stats.
fn change<F>(data: AdminData, success: String, write: F)
where
    F: std::future::Future<Output = Result<(), ApiFailure>> + 'static,
{
    leptos::task::spawn_local(async move {
        match online(write).await {
            Ok(()) => data.say(NoticeKind::Success, success),
            Err(failure) => {
                if failure.is_unauthorized() {
                    Session::get().expire();
                }
                data.say(NoticeKind::Error, explain(&failure));
            }
        }
        let _ = manager()
            .invalidate_and_refresh(&[ADMIN_USERS, DASHBOARD_STATS, ACTIVITY])
            .await;
    });
}

/// `/admin/users`: everyone reads; owners add accounts, change roles, reset passwords and
/// delete. The server protects the last owner; its refusal is shown as it comes.
#[component]
pub fn Users() -> impl IntoView {
    let data = AdminData::get();
    let session = Session::get();
    let is_owner = session
        .0
        .with_untracked(|a| matches!(a, Auth::SignedIn(me) if me.role == AdminRole::Owner));
    let me = session.admin().map(|a| a.id);
    let creating = RwSignal::new(false);
    let resetting = RwSignal::new(None::<AdminView>);
    let reset_open = RwSignal::new(false);
    let deleting = RwSignal::new(None::<AdminView>);
    let delete_open = RwSignal::new(false);

    let set_role = move |a: AdminView, role: AdminRole| {
        if a.role == role {
            return;
        }
        let text = format!("{} is now {}.", a.email, role.as_str());
        change(data, text, async move {
            let patch = PatchAdmin {
                role: Some(role),
                ..PatchAdmin::default()
            };
            api::send_json::<_, AdminView>(
                "PATCH",
                &format!("/api/admin/users/{}", a.id),
                &patch,
                Some(&if_match(&a)),
            )
            .await
            .map(|_| ())
        });
    };

    let row = move |a: AdminView| {
        let (for_role, for_reset, for_delete) = (a.clone(), a.clone(), a.clone());
        let select_id = format!("role-{}", a.id);
        let label = format!("Role of {}", a.email);
        let you = me == Some(a.id);
        view! {
            <tr data-testid="user-row" data-email=a.email.clone() data-role=a.role.as_str()>
                <td>
                    {a.email.clone()}
                    {you.then(|| view! { <span class="muted">" (you)"</span> })}
                </td>
                <td>{a.name.clone()}</td>
                <td>
                    {if is_owner {
                        view! {
                            <label class="sr-only" for=select_id.clone()>{label}</label>
                            <select
                                id=select_id
                                data-testid="user-role"
                                on:change=move |ev| {
                                    if let Ok(role) = event_target_value(&ev).parse::<AdminRole>() {
                                        set_role(for_role.clone(), role);
                                    }
                                }
                            >
                                {AdminRole::ALL
                                    .into_iter()
                                    .map(|r| {
                                        view! {
                                            <option value=r.as_str() selected=a.role == r>
                                                {r.as_str()}
                                            </option>
                                        }
                                    })
                                    .collect_view()}
                            </select>
                        }
                            .into_any()
                    } else {
                        view! {
                            <span class="badge badge-role" data-testid="user-role-text">
                                {a.role.as_str()}
                            </span>
                        }
                            .into_any()
                    }}
                </td>
                <td class="muted">
                    {a.last_login_at.as_ref().map(format::date_time).unwrap_or_else(|| "never".into())}
                </td>
                {is_owner
                    .then(|| {
                        view! {
                            <td class="row-actions">
                                <button
                                    type="button"
                                    class="btn btn-small"
                                    data-testid="user-reset-password"
                                    aria-label=format!("Reset the password of {}", a.email)
                                    on:click=move |_| {
                                        resetting.set(Some(for_reset.clone()));
                                        reset_open.set(true);
                                    }
                                >
                                    "Reset password"
                                </button>
                                <button
                                    type="button"
                                    class="btn btn-small btn-danger-quiet"
                                    data-testid="user-delete"
                                    aria-label=format!("Delete {}", a.email)
                                    on:click=move |_| {
                                        deleting.set(Some(for_delete.clone()));
                                        delete_open.set(true);
                                    }
                                >
                                    "Delete"
                                </button>
                            </td>
                        }
                    })}
            </tr>
        }
    };
    let columns = if is_owner { 5 } else { 4 };
    let confirm_delete = move |_| {
        let Some(a) = deleting.get_untracked() else {
            return;
        };
        delete_open.set(false);
        change(data, format!("{} deleted.", a.email), async move {
            api::send_empty(
                "DELETE",
                &format!("/api/admin/users/{}", a.id),
                Some(&if_match(&a)),
            )
            .await
        });
    };

    view! {
        <section class="page" data-testid="users-page">
            <header class="page-head">
                <h1>"Admin users"</h1>
                {is_owner
                    .then(|| {
                        view! {
                            <button
                                type="button"
                                class="btn btn-primary"
                                data-testid="new-user"
                                on:click=move |_| creating.set(true)
                            >
                                "New admin"
                            </button>
                        }
                    })}
            </header>
            {(!is_owner)
                .then(|| {
                    view! {
                        <p class="muted" data-testid="users-read-only">
                            "Only owners manage admin accounts."
                        </p>
                    }
                })}
            {move || {
                data.error_of(ADMIN_USERS)
                    .map(|e| {
                        view! {
                            <p class="banner banner-error" role="alert" data-testid="users-error">
                                "The list could not be refreshed: " {format::sentence(&e)}
                            </p>
                        }
                    })
            }}
            <div class="table-wrap">
                <table class="data-table" data-testid="users-table">
                    <thead>
                        <tr>
                            <th scope="col">"Email"</th>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Role"</th>
                            <th scope="col">"Last sign-in"</th>
                            {is_owner.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                        </tr>
                    </thead>
                    <tbody>
                        {move || match data.users.get() {
                            None => {
                                view! {
                                    <tr>
                                        <td colspan=columns class="empty" aria-busy="true">"Loading admin users…"</td>
                                    </tr>
                                }
                                    .into_any()
                            }
                            Some(page) => page.items.into_iter().map(row).collect_view().into_any(),
                        }}
                    </tbody>
                </table>
            </div>
            {is_owner
                .then(|| {
                    view! {
                        <Modal open=creating title="New admin" testid="user-dialog">
                            <NewUserForm open=creating />
                        </Modal>
                        <Modal open=reset_open title="Reset password" testid="reset-dialog">
                            <ResetPasswordForm target=resetting open=reset_open />
                        </Modal>
                        <Modal open=delete_open title="Delete admin" testid="user-delete-dialog">
                            <p>
                                {move || {
                                    deleting
                                        .get()
                                        .map(|a| format!("Delete {}? Their sessions end at once.", a.email))
                                }}
                            </p>
                            <div class="modal-actions">
                                <button type="button" class="btn" data-testid="user-delete-cancel" on:click=move |_| delete_open.set(false)>
                                    "Cancel"
                                </button>
                                <button type="button" class="btn btn-danger" data-testid="user-delete-confirm" on:click=confirm_delete>
                                    "Delete"
                                </button>
                            </div>
                        </Modal>
                    }
                })}
        </section>
    }
}

#[component]
fn NewUserForm(open: RwSignal<bool>) -> impl IntoView {
    let data = AdminData::get();
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(AdminRole::Viewer);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let body = CreateAdmin {
            email: email.get_untracked().trim().to_owned(),
            password: password.get_untracked(),
            role: role.get_untracked(),
            name: Some(name.get_untracked().trim().to_owned()).filter(|n| !n.is_empty()),
        };
        if body.email.is_empty() {
            error.set(Some("Enter the new admin's email.".into()));
            return;
        }
        if body.password.chars().count() < 10 {
            error.set(Some("Passwords have at least 10 characters.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let result: Result<AdminView, ApiFailure> =
                online(api::send_json("POST", "/api/admin/users", &body, None)).await;
            busy.try_set(false);
            match result {
                Ok(a) => {
                    open.try_set(false);
                    data.say(
                        NoticeKind::Success,
                        format!("{} added as {}.", a.email, a.role.as_str()),
                    );
                    let _ = manager()
                        .invalidate_and_refresh(&[ADMIN_USERS, DASHBOARD_STATS, ACTIVITY])
                        .await;
                }
                Err(failure) => {
                    error.try_set(Some(explain(&failure)));
                }
            }
        });
    };
    view! {
        <form class="form" on:submit=submit data-testid="user-form" novalidate>
            <label for="user-email">"Email"</label>
            <input id="user-email" type="email" required autofocus data-testid="user-email" bind:value=email />
            <label for="user-name">"Name"</label>
            <input id="user-name" type="text" data-testid="user-name" bind:value=name />
            <label for="user-password">"Password (at least 10 characters)"</label>
            <input id="user-password" type="password" autocomplete="new-password" required data-testid="user-password" bind:value=password />
            <label for="user-new-role">"Role"</label>
            <select
                id="user-new-role"
                data-testid="user-new-role"
                on:change=move |ev| {
                    if let Ok(r) = event_target_value(&ev).parse::<AdminRole>() {
                        role.set(r);
                    }
                }
            >
                {AdminRole::ALL
                    .into_iter()
                    .map(|r| {
                        view! {
                            <option value=r.as_str() selected=move || role.get() == r>
                                {r.as_str()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            {move || {
                error
                    .get()
                    .map(|e| view! { <p class="form-error" role="alert" data-testid="user-form-error">{e}</p> })
            }}
            <div class="modal-actions">
                <button type="button" class="btn" on:click=move |_| open.set(false)>
                    "Cancel"
                </button>
                <button type="submit" class="btn btn-primary" data-testid="user-save" disabled=move || busy.get()>
                    "Add admin"
                </button>
            </div>
        </form>
    }
}

#[component]
fn ResetPasswordForm(target: RwSignal<Option<AdminView>>, open: RwSignal<bool>) -> impl IntoView {
    let data = AdminData::get();
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(a) = target.get_untracked() else {
            return;
        };
        let new_password = password.get_untracked();
        if new_password.chars().count() < 10 {
            error.set(Some("Passwords have at least 10 characters.".into()));
            return;
        }
        open.set(false);
        let text = format!(
            "The password of {} was reset; their sessions have ended.",
            a.email
        );
        change(data, text, async move {
            let patch = PatchAdmin {
                password: Some(new_password),
                ..PatchAdmin::default()
            };
            api::send_json::<_, AdminView>(
                "PATCH",
                &format!("/api/admin/users/{}", a.id),
                &patch,
                Some(&if_match(&a)),
            )
            .await
            .map(|_| ())
        });
    };
    view! {
        <form class="form" on:submit=submit data-testid="reset-form" novalidate>
            <p>{move || target.get().map(|a| format!("A new password for {}.", a.email))}</p>
            <label for="reset-password">"New password (at least 10 characters)"</label>
            <input id="reset-password" type="password" autocomplete="new-password" required autofocus data-testid="reset-password" bind:value=password />
            {move || {
                error
                    .get()
                    .map(|e| view! { <p class="form-error" role="alert" data-testid="reset-error">{e}</p> })
            }}
            <div class="modal-actions">
                <button type="button" class="btn" on:click=move |_| open.set(false)>
                    "Cancel"
                </button>
                <button type="submit" class="btn btn-primary" data-testid="reset-save">
                    "Reset password"
                </button>
            </div>
        </form>
    }
}

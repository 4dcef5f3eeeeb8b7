//! The offline queue: conditional writes (`PATCH`/`DELETE` with `If-Match`) made while offline,
//! or whose request failed on the network, wait here, persisted in `localStorage`, and are
//! replayed in order when the connection returns.
//!
//! Edits and deletes are conditional: their `If-Match` makes a replay land at most once (a
//! write that did reach the server before its answer was lost has bumped the version, so the
//! replay meets 412 and goes to the conflict dialog instead of applying twice). The one create
//! queued, a customer's (empty `if_match`), is kept to one landing by the unique email: its
//! replay after a lost answer is refused with `email_taken`. Two queued writes of the same
//! resource are chained: the second is sent with the `ETag` the first one produced, not the
//! stale one it was queued with.
//!
//! A write whose answer was lost but which did land meets 412 on replay with the server's copy
//! equal to it: it counts as landed, and the writes after it chain on that copy's version.
//!
//! Each admin has a queue of their own (`keysync.sync.queue.<admin id>`): writes are replayed
//! only in the session of the admin who made them. A replay that meets 401 (the session ended
//! meanwhile) keeps the write for the next sign-in.
//!
//! This module is plain Rust (tested natively); `crate::outbox` runs it in the browser.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::clock::Millis;

/// The `localStorage` key an admin's queue lives under.
pub fn storage_key(admin_id: i64) -> String {
    format!("keysync.sync.queue.{admin_id}")
}

/// One write waiting to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedWrite {
    /// Local sequence number, unique within this browser.
    pub id: u64,
    pub method: String,
    pub path: String,
    /// The JSON body, as it will be sent.
    #[serde(default)]
    pub body: Option<String>,
    /// Empty for a create (sent without `If-Match`).
    pub if_match: String,
    /// What the admin did, for the pending list ("Edit SCO-7K2M").
    pub label: String,
    /// The sync source whose data this write changes (refetched after replay).
    pub source: String,
    pub queued_at: Millis,
}

/// What the server said to one replayed write.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayOutcome {
    /// 2xx: it landed; `etag` is the resource's new version when the answer carried one.
    Landed { etag: Option<String> },
    /// 412: someone else changed the resource; `current` is the server's version (JSON).
    Conflict { current: Option<String> },
    /// Any other refusal (404, 422, …): the write cannot land as it is; dropped with a message.
    Refused { message: String },
    /// The request did not reach the server, or met a passing trouble (5xx, 429): stop and
    /// try again later.
    Network,
    /// 401: the session ended. Kept for the admin's next sign-in.
    SignedOut,
}

/// What to do after an outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send the next write (if any).
    Continue,
    /// Stop replaying until the connection returns.
    Stop,
}

/// The queue itself: writes in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteQueue {
    items: VecDeque<QueuedWrite>,
    next_id: u64,
}

/// A new write, before it gets its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWrite {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub if_match: String,
    pub label: String,
    pub source: String,
}

impl WriteQueue {
    /// Reads the persisted queue; unreadable storage is an empty queue (never a crash).
    pub fn load(raw: Option<&str>) -> Self {
        raw.and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> impl Iterator<Item = &QueuedWrite> {
        self.items.iter()
    }

    /// Appends a write; returns its id.
    pub fn push(&mut self, write: NewWrite, now: Millis) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.items.push_back(QueuedWrite {
            id,
            method: write.method,
            path: write.path,
            body: write.body,
            if_match: write.if_match,
            label: write.label,
            source: write.source,
            queued_at: now,
        });
        id
    }

    /// The write to send next.
    pub fn front(&self) -> Option<&QueuedWrite> {
        self.items.front()
    }

    /// Records what the server said to the front write `id`. A stale `id` (the front changed
    /// meanwhile, e.g. another tab replayed it) changes nothing and stops.
    pub fn settle(&mut self, id: u64, outcome: &ReplayOutcome) -> Next {
        if self.items.front().map(|w| w.id) != Some(id) {
            return Next::Stop;
        }
        let new_version = match outcome {
            ReplayOutcome::Network | ReplayOutcome::SignedOut => return Next::Stop,
            ReplayOutcome::Landed { etag } => etag.clone(),
            // The write reached the server before, but its answer was lost (a reload, a
            // dropped connection): the server's copy is the version it produced.
            ReplayOutcome::Conflict {
                current: Some(current),
            } => {
                let mine = self.items.front().and_then(|w| w.body.as_deref());
                match serde_json::from_str::<serde_json::Value>(mine.unwrap_or("")) {
                    Ok(serde_json::Value::Object(mine)) if already_applied(&mine, current) => {
                        version_tag(current)
                    }
                    _ => None,
                }
            }
            ReplayOutcome::Conflict { current: None } | ReplayOutcome::Refused { .. } => None,
        };
        if let (Some(done), Some(tag)) = (self.items.pop_front(), new_version) {
            // Later writes of the same resource were made on top of this one.
            // A create's path is the collection's: nothing chains on it.
            for later in self
                .items
                .iter_mut()
                .filter(|w| w.path == done.path && !w.if_match.is_empty())
            {
                later.if_match = tag.clone();
            }
        }
        Next::Continue
    }

    /// Removes a write the admin cancelled from the pending list.
    pub fn discard(&mut self, id: u64) -> bool {
        let before = self.items.len();
        self.items.retain(|w| w.id != id);
        before != self.items.len()
    }
}

/// The `ETag` of a resource's JSON (`"version": 4` → `"v4"`).
fn version_tag(json: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()?
        .get("version")?
        .as_i64()
        .map(|v| format!("\"v{v}\""))
}

/// Sorts an HTTP answer to a replayed write into an outcome.
pub fn classify(status: Option<u16>, etag: Option<String>, body: &str) -> ReplayOutcome {
    match status {
        None => ReplayOutcome::Network,
        Some(s) if (200..300).contains(&s) => ReplayOutcome::Landed {
            // Without the header, the new version from the body.
            etag: etag.or_else(|| version_tag(body)),
        },
        Some(412) => ReplayOutcome::Conflict {
            current: current_of(body),
        },
        Some(401) => ReplayOutcome::SignedOut,
        // 5xx and 429 are passing troubles, not a verdict on the write: keep it for later.
        Some(s) if s >= 500 || s == 429 || s == 408 => ReplayOutcome::Network,
        Some(_) => ReplayOutcome::Refused {
            message: serde_json::from_str::<keysync_shared::ErrorBody>(body)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| {
                    format!("The server refused it (HTTP {}).", status.unwrap_or(0))
                }),
        },
    }
}

/// `error.details.current` of a 412 body, as JSON text.
pub fn current_of(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let current = value.get("error")?.get("details")?.get("current")?;
    (!current.is_null()).then(|| current.to_string())
}

/// Whether every field of `mine` (a JSON patch) already has that value in `current`: a write
/// whose answer was lost but which did land. Replaying it meets 412, and there is nothing to ask.
pub fn already_applied(mine: &serde_json::Map<String, serde_json::Value>, current: &str) -> bool {
    let Ok(serde_json::Value::Object(current)) = serde_json::from_str::<serde_json::Value>(current)
    else {
        return false;
    };
    !mine.is_empty()
        && mine
            .iter()
            .all(|(k, v)| current.get(k).unwrap_or(&serde_json::Value::Null) == v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(path: &str, tag: &str, body: &str) -> NewWrite {
        NewWrite {
            method: "PATCH".into(),
            path: path.into(),
            body: Some(body.into()),
            if_match: tag.into(),
            label: format!("Edit {path}"),
            source: "license-keys".into(),
        }
    }

    #[test]
    fn writes_replay_in_the_order_they_were_made() {
        let mut q = WriteQueue::default();
        let a = q.push(edit("/api/admin/keys/1", "\"v1\"", "{}"), 10);
        let b = q.push(edit("/api/admin/keys/2", "\"v4\"", "{}"), 20);

        assert_eq!(q.front().map(|w| w.id), Some(a));
        assert_eq!(
            q.settle(a, &ReplayOutcome::Landed { etag: None }),
            Next::Continue
        );
        assert_eq!(q.front().map(|w| w.id), Some(b));
        q.settle(b, &ReplayOutcome::Landed { etag: None });
        assert!(q.is_empty());
    }

    #[test]
    fn a_network_failure_or_an_ended_session_keeps_the_write_and_stops() {
        let mut q = WriteQueue::default();
        let a = q.push(edit("/api/admin/keys/1", "\"v1\"", "{}"), 10);

        assert_eq!(q.settle(a, &ReplayOutcome::Network), Next::Stop);
        assert_eq!(q.settle(a, &ReplayOutcome::SignedOut), Next::Stop);
        assert_eq!(q.len(), 1);
        assert_eq!(q.front().map(|w| w.id), Some(a));
    }

    #[test]
    fn a_second_write_of_the_same_resource_follows_the_first_ones_new_version() {
        let mut q = WriteQueue::default();
        let first = q.push(edit("/api/admin/keys/1", "\"v3\"", r#"{"notes":"a"}"#), 10);
        q.push(edit("/api/admin/keys/2", "\"v9\"", "{}"), 11);
        q.push(edit("/api/admin/keys/1", "\"v3\"", r#"{"notes":"b"}"#), 12);

        q.settle(
            first,
            &ReplayOutcome::Landed {
                etag: Some("\"v4\"".into()),
            },
        );

        let tags: Vec<_> = q.items().map(|w| w.if_match.as_str()).collect();
        assert_eq!(tags, vec!["\"v9\"", "\"v4\""]);
    }

    #[test]
    fn a_landed_create_gives_its_version_to_no_other_create() {
        let mut q = WriteQueue::default();
        let create = |name: &str| NewWrite {
            method: "POST".into(),
            body: Some(format!(r#"{{"name":"{name}"}}"#)),
            if_match: String::new(),
            ..edit("/api/admin/customers", "", "{}")
        };
        let first = q.push(create("a"), 10);
        q.push(create("b"), 11);

        q.settle(
            first,
            &ReplayOutcome::Landed {
                etag: Some("\"v1\"".into()),
            },
        );

        assert_eq!(q.front().map(|w| w.if_match.as_str()), Some(""));
    }

    /// Two edits of key 1 queued on v1 (notes "a", then seats); the first one's replay meets
    /// 412 with the server's copy `current`. Returns the `If-Match` the second one is sent with.
    fn second_edit_after_a_conflict_with(current: &str) -> String {
        let mut q = WriteQueue::default();
        let first = q.push(edit("/api/admin/keys/1", "\"v1\"", r#"{"notes":"a"}"#), 10);
        q.push(
            edit("/api/admin/keys/1", "\"v1\"", r#"{"max_activations":5}"#),
            11,
        );
        q.settle(
            first,
            &ReplayOutcome::Conflict {
                current: Some(current.into()),
            },
        );
        q.front().map(|w| w.if_match.clone()).unwrap_or_default()
    }

    #[test]
    fn a_write_that_had_landed_unanswered_passes_its_version_to_the_next_one() {
        // The first write had landed (v2) but its answer was lost.
        assert_eq!(
            second_edit_after_a_conflict_with(
                r#"{"id":1,"notes":"a","max_activations":null,"version":2}"#
            ),
            "\"v2\""
        );
    }

    #[test]
    fn a_real_conflict_passes_no_version_on() {
        // Someone else wrote v2: the second write was made on v1 and must meet 412 too.
        assert_eq!(
            second_edit_after_a_conflict_with(r#"{"id":1,"notes":"theirs","version":2}"#),
            "\"v1\""
        );
    }

    #[test]
    fn conflicts_and_refusals_leave_the_queue_and_replay_goes_on() {
        let mut q = WriteQueue::default();
        let a = q.push(edit("/api/admin/keys/1", "\"v1\"", "{}"), 10);
        let b = q.push(edit("/api/admin/keys/2", "\"v1\"", "{}"), 11);

        assert_eq!(
            q.settle(a, &ReplayOutcome::Conflict { current: None }),
            Next::Continue
        );
        assert_eq!(
            q.settle(
                b,
                &ReplayOutcome::Refused {
                    message: "gone".into()
                }
            ),
            Next::Continue
        );
        assert!(q.is_empty());
    }

    #[test]
    fn settling_a_write_that_is_no_longer_first_changes_nothing() {
        let mut q = WriteQueue::default();
        let a = q.push(edit("/api/admin/keys/1", "\"v1\"", "{}"), 10);
        let b = q.push(edit("/api/admin/keys/2", "\"v1\"", "{}"), 11);

        assert_eq!(
            q.settle(b, &ReplayOutcome::Landed { etag: None }),
            Next::Stop
        );
        assert_eq!(q.len(), 2);
        assert_eq!(q.front().map(|w| w.id), Some(a));
    }

    #[test]
    fn the_queue_survives_a_reload_with_its_ids_still_unique() {
        let mut q = WriteQueue::default();
        q.push(edit("/api/admin/keys/1", "\"v1\"", "{}"), 10);
        let b = q.push(edit("/api/admin/keys/2", "\"v2\"", "{}"), 11);

        let mut reloaded = WriteQueue::load(Some(&q.to_json()));
        let c = reloaded.push(edit("/api/admin/keys/3", "\"v3\"", "{}"), 12);

        assert_eq!(reloaded.len(), 3);
        assert!(c > b);
        assert_eq!(reloaded.items().nth(1), q.items().nth(1));
    }

    #[test]
    fn unreadable_storage_is_an_empty_queue() {
        assert!(WriteQueue::load(Some("{not json")).is_empty());
        assert!(WriteQueue::load(None).is_empty());
    }

    #[test]
    fn discarding_removes_only_that_write() {
        let mut q = WriteQueue::default();
        let a = q.push(edit("/api/admin/keys/1", "\"v1\"", "{}"), 10);
        let b = q.push(edit("/api/admin/keys/2", "\"v1\"", "{}"), 11);

        assert!(q.discard(a));
        assert!(!q.discard(a));
        assert_eq!(q.front().map(|w| w.id), Some(b));
    }

    #[test]
    fn a_write_whose_values_are_already_there_counts_as_landed() {
        let mine: serde_json::Map<_, _> =
            serde_json::from_str(r#"{"notes":"x","max_activations":null}"#).unwrap();
        let landed = r#"{"id":1,"notes":"x","max_activations":null,"version":4}"#;
        let other = r#"{"id":1,"notes":"y","max_activations":null,"version":4}"#;

        assert!(already_applied(&mine, landed));
        assert!(!already_applied(&mine, other));
        assert!(!already_applied(&serde_json::Map::new(), landed));
    }

    #[test]
    fn answers_are_sorted_into_outcomes() {
        let conflict = r#"{"error":{"code":"precondition_failed","message":"stale","details":{"current":{"id":1,"version":5}}}}"#;
        let refused = r#"{"error":{"code":"validation_failed","message":"notes too long"}}"#;

        assert_eq!(classify(None, None, ""), ReplayOutcome::Network);
        assert_eq!(
            classify(Some(200), Some("\"v5\"".into()), "{}"),
            ReplayOutcome::Landed {
                etag: Some("\"v5\"".into())
            }
        );
        assert_eq!(
            classify(Some(412), None, conflict),
            ReplayOutcome::Conflict {
                current: Some(r#"{"id":1,"version":5}"#.into())
            }
        );
        assert_eq!(
            classify(Some(200), None, r#"{"id":1,"version":7}"#),
            ReplayOutcome::Landed {
                etag: Some("\"v7\"".into())
            }
        );
        assert_eq!(classify(Some(503), None, ""), ReplayOutcome::Network);
        assert_eq!(classify(Some(401), None, ""), ReplayOutcome::SignedOut);
        assert_eq!(
            classify(Some(422), None, refused),
            ReplayOutcome::Refused {
                message: "notes too long".into()
            }
        );
    }
}

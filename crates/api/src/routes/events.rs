//! `GET /api/admin/events`: server-sent events, one per change-feed entry.
//!
//! The stream starts with a `retry:` hint. Without `Last-Event-ID` it opens with a `ready` event
//! whose id is the feed's current cursor; with one, it first replays what the feed holds after
//! that cursor, then continues live, skipping anything already sent, so a reconnecting client
//! sees no gap and no duplicate. A comment line goes out every `sse_heartbeat_secs`. A client too
//! far behind gets a `reset` event and the stream ends: it must resynchronise through
//! `GET /api/admin/sync`.

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::broadcast;

use crate::auth::AuthAdmin;
use crate::db::changes::ChangeStore;
use crate::error::ApiError;
use crate::feed::{change_of, Batch};
use crate::sse::{change_frame, frame};
use crate::startup::AppState;
use crate::with_store;

/// Most entries replayed on reconnect; further behind than this, the client resynchronises.
const MAX_REPLAY: i64 = 10_000;
/// Browsers reconnect after this many milliseconds.
const RETRY_MS: u64 = 2_000;

fn reset_event(reason: &str) -> Bytes {
    frame(
        "reset",
        None,
        &serde_json::json!({"reason": reason}).to_string(),
    )
}

struct Subscription {
    rx: broadcast::Receiver<Batch>,
    pending: VecDeque<Bytes>,
    last_sent: i64,
    heartbeat: tokio::time::Interval,
    done: bool,
}

/// The bytes of an event stream: pending replay first, then live batches (skipping what was
/// already sent), heartbeats, and a final `reset` if the subscriber falls a ring behind.
fn subscription_stream(
    subscription: Subscription,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    futures_util::stream::unfold(subscription, |mut sub| async move {
        loop {
            if let Some(bytes) = sub.pending.pop_front() {
                return Some((Ok::<_, actix_web::Error>(bytes), sub));
            }
            if sub.done {
                return None;
            }
            tokio::select! {
                received = sub.rx.recv() => match received {
                    Ok(batch) => {
                        for pushed in batch.iter() {
                            if pushed.cursor > sub.last_sent {
                                // A reference to the bytes every subscriber shares.
                                sub.pending.push_back(pushed.frame.clone());
                                sub.last_sent = pushed.cursor;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        sub.pending.push_back(reset_event("lagged"));
                        sub.done = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = sub.heartbeat.tick() => sub.pending.push_back(Bytes::from_static(b": heartbeat\n\n")),
            }
        }
    })
}

pub async fn get_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AuthAdmin,
) -> Result<HttpResponse, ApiError> {
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<i64>())
        .transpose()
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_last_event_id",
            message: "Last-Event-ID must be an event id this stream sent".into(),
        })?;
    // Subscribe before reading the replay, so nothing committed in between is missed.
    let rx = state.feed.subscribe();
    let mut pending = VecDeque::new();
    pending.push_back(Bytes::from(format!("retry: {RETRY_MS}\n\n")));
    let mut done = false;
    let last_sent = match last_event_id {
        None => {
            let cursor = *state.feed.latest().borrow();
            pending.push_back(frame(
                "ready",
                Some(cursor),
                &format!("{{\"cursor\":{cursor}}}"),
            ));
            cursor
        }
        Some(after) => {
            let (pruned, rows) = state
                .db
                .run(move |conn| {
                    with_store!(conn, |store| {
                        let pruned = store.pruned_through()?;
                        let rows = store.changes_after(after, MAX_REPLAY + 1)?;
                        Ok::<_, ApiError>((pruned, rows))
                    })
                })
                .await?;
            if after < pruned || rows.len() as i64 > MAX_REPLAY {
                pending.push_back(reset_event("too_far_behind"));
                done = true;
                after
            } else {
                let mut last = after;
                for row in &rows {
                    pending.push_back(change_frame(&change_of(row)));
                    last = row.cursor;
                }
                last
            }
        }
    };
    let heartbeat_every = Duration::from_secs(state.settings.sse_heartbeat_secs.max(1));
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat_every,
        heartbeat_every,
    );
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let subscription = Subscription {
        rx,
        pending,
        last_sent,
        heartbeat,
        done,
    };
    let stream = subscription_stream(subscription);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Compression would hold events back in the encoder; proxies must not buffer either.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::StreamExt;

    use keysync_shared::Change;

    use super::*;
    use crate::feed::Pushed;

    fn change(cursor: i64) -> Pushed {
        Pushed::of(&Change {
            cursor,
            resource: "license_keys".into(),
            op: "updated".into(),
            id: cursor,
            version: 1,
            at: chrono::Utc::now(),
            actor: "test".into(),
            data: None,
        })
    }

    fn subscription(rx: broadcast::Receiver<Batch>, last_sent: i64) -> Subscription {
        Subscription {
            rx,
            pending: VecDeque::new(),
            last_sent,
            heartbeat: tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(3600),
                Duration::from_secs(3600),
            ),
            done: false,
        }
    }

    async fn text(
        stream: impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>>,
    ) -> String {
        let chunks: Vec<_> = stream.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_subscriber_a_whole_ring_behind_gets_reset_and_the_stream_ends() {
        let (tx, rx) = broadcast::channel(2);
        for cursor in 1..=5 {
            tx.send(Arc::new(vec![change(cursor)])).unwrap();
        }

        let out = text(subscription_stream(subscription(rx, 0))).await;

        assert!(out.contains("event: reset"), "{out}");
        assert!(
            !out.contains("id: 1\n"),
            "nothing is sent from a ring it lost its place in"
        );
    }

    #[tokio::test]
    async fn live_batches_skip_what_was_already_sent() {
        let (tx, rx) = broadcast::channel(8);
        tx.send(Arc::new(vec![change(3), change(4), change(5)]))
            .unwrap();
        drop(tx);

        let out = text(subscription_stream(subscription(rx, 4))).await;

        assert!(!out.contains("id: 3\n") && !out.contains("id: 4\n"));
        assert!(out.contains("id: 5\n"));
    }
}

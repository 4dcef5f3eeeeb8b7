//! Server-sent-event frames (`id:`, `event:`, `data:` lines and a blank line).
//!
//! A change is framed once, when the feed publishes it, and the same bytes go to every
//! subscriber: with a thousand open streams, framing per subscriber cost a thousand JSON
//! encodings and three allocations each per change.

use actix_web::web::Bytes;
use keysync_shared::Change;

/// One event: `kind` is its `event:` name, `id` its `id:` line, `data` one line of JSON.
pub fn frame(kind: &str, id: Option<i64>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(kind);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// The `change` event of a change-feed entry; its id is the entry's cursor.
pub fn change_frame(change: &Change) -> Bytes {
    frame(
        "change",
        Some(change.cursor),
        &serde_json::to_string(change).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_one_event_with_its_cursor_as_id_and_json_on_one_line() {
        let change = Change {
            cursor: 42,
            resource: "license_keys".into(),
            op: "updated".into(),
            id: 7,
            version: 3,
            at: chrono::Utc::now(),
            actor: "admin:1".into(),
            data: None,
        };

        let text = String::from_utf8(change_frame(&change).to_vec()).unwrap();

        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "id: 42");
        assert_eq!(lines[1], "event: change");
        let json = lines[2].strip_prefix("data: ").unwrap();
        assert_eq!(serde_json::from_str::<Change>(json).unwrap(), change);
        assert_eq!(&lines[3..], ["", ""], "an event ends with a blank line");
    }
}

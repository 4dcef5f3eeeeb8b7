//! Fuzz target bodies: every parser of outside input, driven with arbitrary bytes.
//!
//! The functions here are pure, take the fuzzer's bytes, and panic only when a parser breaks a
//! promise (a crash, or an accepted value that does not round-trip or leaks what it must not).
//! `fuzz/` (cargo-fuzz, libFuzzer) calls them, and so do this module's tests with random and
//! hand-picked inputs, so they also run where libFuzzer cannot.

use actix_web::web::Query;
use chrono::Utc;

use crate::db::customers::CustomerSort;
use crate::db::keys::KeySort;
use crate::license_key::{log_prefix, LicenseKey, MAX_KEY_LEN};
use crate::pagination::{page_params, KeysetCursor, MAX_LIMIT};
use crate::routes::customers::ListCustomersQuery;
use crate::routes::license_keys::ListKeysQuery;
use crate::routes::sync::{sign, verify_signature, SignatureHeader, Since, SyncQuery};

/// `{"key": …}` of validations, deactivations and downloads, and `X-License-Key`.
pub fn license_key(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let prefix = log_prefix(raw);
    if let Ok(key) = LicenseKey::parse(raw) {
        assert!(key.as_str().len() <= MAX_KEY_LEN);
        assert_eq!(LicenseKey::parse(key.as_str()).as_ref(), Ok(&key));
        // What is logged of a key never holds its secret groups.
        let logged = key.log_prefix();
        let last_groups = &key.as_str()[key.as_str().len() - 14..];
        assert!(
            !logged.contains(last_groups),
            "{logged} leaks {last_groups}"
        );
        assert!(
            !prefix.contains(last_groups),
            "{prefix} leaks {last_groups}"
        );
    }
}

/// `GET /api/admin/sync?since=` (a cursor or an RFC 3339 time) and the rest of its query.
pub fn since(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match Since::parse(Some(raw)) {
        Ok(Since::Cursor(cursor)) => {
            assert!(cursor >= 0);
            assert_eq!(
                Since::parse(Some(&cursor.to_string())).ok(),
                Some(Since::Cursor(cursor))
            );
        }
        Ok(Since::Now) => assert!(raw.trim().is_empty()),
        Ok(Since::Time(_)) | Err(_) => {}
    }
    if let Ok(query) = Query::<SyncQuery>::from_query(raw) {
        let _ = Since::parse(query.since.as_deref());
    }
}

/// `X-Keysync-Signature: t=<unix>,v1=<hex>` and its verification.
pub fn signature_header(data: &[u8]) {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(raw) = std::str::from_utf8(header) else {
        return;
    };
    const SECRET: &str = "fuzzing secret";
    if let Ok(parsed) = SignatureHeader::parse(raw) {
        assert!(!parsed.signatures.is_empty());
        // Arbitrary bytes never pass as a signature of their body, unless they are the one.
        let genuine = sign(SECRET, parsed.timestamp, body);
        let verdict = verify_signature(SECRET, &parsed, body, parsed.timestamp);
        if verdict.is_ok() {
            let expected = SignatureHeader::parse(&genuine).expect("our own header parses");
            assert!(parsed
                .signatures
                .iter()
                .any(|s| s == &expected.signatures[0]));
        }
    }
    // A header we make always verifies.
    let now = Utc::now().timestamp();
    let made = sign(SECRET, now, body);
    let parsed = SignatureHeader::parse(&made).expect("our own header parses");
    assert!(verify_signature(SECRET, &parsed, body, now).is_ok());
}

/// The list query strings (`?q=&status=&sort=&cursor=&limit=`) of keys and customers, and
/// cursors: whatever `page_params` accepts is in range, and a cursor it hands out reads back.
pub fn list_query(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(query) = Query::<ListKeysQuery>::from_query(raw) {
        if let Ok(page) = page_params::<KeySort>(
            query.sort.as_deref(),
            query.cursor.as_deref(),
            query.limit,
            query.q.as_deref(),
        ) {
            assert!((1..=MAX_LIMIT).contains(&page.limit));
            if let Some(after) = page.after {
                let again = KeysetCursor::decode(&after.encode(&page.sort_name), &page.sort_name);
                assert_eq!(again.ok(), Some(after));
            }
        }
    }
    if let Ok(query) = Query::<ListCustomersQuery>::from_query(raw) {
        if let Ok(page) = page_params::<CustomerSort>(
            query.sort.as_deref(),
            query.cursor.as_deref(),
            query.limit,
            query.q.as_deref(),
        ) {
            assert!((1..=MAX_LIMIT).contains(&page.limit));
        }
    }
    // The raw text as a cursor of every sort.
    for sort in ["created_at", "-created_at", "key", "name"] {
        if let Ok(cursor) = KeysetCursor::decode(raw, sort) {
            assert_eq!(
                KeysetCursor::decode(&cursor.encode(sort), sort).ok(),
                Some(cursor)
            );
        }
    }
}

/// A target body.
pub type Target = fn(&[u8]);

/// Every target by name, for the fallback runner and `cargo xtask fuzz`.
pub const TARGETS: &[(&str, Target)] = &[
    ("license_key", license_key),
    ("since", since),
    ("signature_header", signature_header),
    ("list_query", list_query),
];

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// Inputs near the formats, so random mutation reaches past the first check.
    const SEEDS: &[&str] = &[
        "SCO-7K2M-Q9XD-HT4P-WB3N",
        " sco-7k2m-q9xd-ht4p-wb3n ",
        "ABCDEFGHIJKLMNOP-AAAA-BBBB-CCCC-DDDD",
        "41",
        "2026-11-25T08:30:00.123456Z",
        "t=1700000000,v1=deadbeef",
        "t=1,v1=00,v1=zz",
        "sort=-created_at&limit=20&cursor=eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjoieCIsImkiOjF9",
        "q=%25_&status=active&customer_id=3",
        "since=41&limit=500&wait=0",
    ];

    /// Random bytes and random mutations of the seeds through every target: the libFuzzer-free
    /// companion of `fuzz/`, so `cargo test` exercises the same promises.
    #[test]
    fn every_target_holds_on_random_and_mutated_inputs() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x006b_6579_7379_6e63);
        for (_, target) in TARGETS {
            for seed in SEEDS {
                target(seed.as_bytes());
            }
            for _ in 0..3_000 {
                let mut bytes: Vec<u8> = if rng.gen_bool(0.5) {
                    SEEDS[rng.gen_range(0..SEEDS.len())].as_bytes().to_vec()
                } else {
                    (0..rng.gen_range(0..80)).map(|_| rng.gen()).collect()
                };
                for _ in 0..rng.gen_range(0..4) {
                    if bytes.is_empty() {
                        break;
                    }
                    let i = rng.gen_range(0..bytes.len());
                    match rng.gen_range(0..3) {
                        0 => bytes[i] = rng.gen(),
                        1 => {
                            bytes.remove(i);
                        }
                        _ => bytes.insert(i, b"-=,&%0aZ9"[rng.gen_range(0..9)]),
                    }
                }
                target(&bytes);
            }
        }
    }

    #[test]
    fn a_valid_key_logs_only_its_prefix_and_first_group() {
        license_key(b"SCO-7K2M-Q9XD-HT4P-WB3N");
        assert_eq!(log_prefix("SCO-7K2M-Q9XD-HT4P-WB3N"), "SCO-7K2M...");
    }
}

//! List responses: `{"items":[...],"next_cursor":"...","total":N}`.

use serde::{Deserialize, Serialize};

/// One page of a list. `next_cursor` is opaque; pass it back as `?cursor=` for the next page.
/// It is `null` on the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
    pub total: i64,
}

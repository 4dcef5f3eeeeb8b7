//! Partial updates: telling "field absent" from "field set to null".

/// `Option<Option<T>>` with serde: absent → `None`, `null` → `Some(None)`, a value →
/// `Some(Some(v))`. Use with `#[serde(default, with = "crate::patch::double_option")]`.
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::PatchKey;

    #[test]
    fn absent_null_and_value_are_three_different_patches() {
        let absent: PatchKey = serde_json::from_str("{}").unwrap();
        let null: PatchKey = serde_json::from_str(r#"{"customer_id":null}"#).unwrap();
        let value: PatchKey = serde_json::from_str(r#"{"customer_id":7}"#).unwrap();

        assert_eq!(absent.customer_id, None);
        assert_eq!(null.customer_id, Some(None));
        assert_eq!(value.customer_id, Some(Some(7)));
        assert_eq!(serde_json::to_string(&absent).unwrap(), "{}");
        assert_eq!(
            serde_json::to_string(&null).unwrap(),
            r#"{"customer_id":null}"#
        );
    }
}

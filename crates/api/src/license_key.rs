//! License key values: generation, parsing, and the prefix that is safe to log.
//!
//! Format: `PREFIX-XXXX-XXXX-XXXX-XXXX`. The 16 random characters come from a 32-letter alphabet
//! without look-alikes (no 0/O, 1/I/L), drawn from the OS CSPRNG: 16 × log2(31) ≈ 79 bits.

use rand::rngs::OsRng;
use rand::Rng;

/// 23 letters and 8 digits: A–Z without I, L, O; 2–9.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const GROUPS: usize = 4;
const GROUP_LEN: usize = 4;
/// Longest key text accepted from outside (prefix up to 16 plus the groups), with margin.
pub const MAX_KEY_LEN: usize = 64;

/// A well-formed license key, upper-cased and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseKey(String);

impl LicenseKey {
    pub fn generate(prefix: &str) -> Self {
        let mut rng = OsRng;
        let mut out = String::with_capacity(prefix.len() + GROUPS * (GROUP_LEN + 1));
        out.push_str(prefix);
        for _ in 0..GROUPS {
            out.push('-');
            for _ in 0..GROUP_LEN {
                out.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
            }
        }
        Self(out)
    }

    /// Accepts any `PREFIX-XXXX-XXXX-XXXX-XXXX` of letters and digits, case-insensitively.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let key = raw.trim().to_ascii_uppercase();
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err("a license key has the form PREFIX-XXXX-XXXX-XXXX-XXXX".into());
        }
        let parts: Vec<&str> = key.split('-').collect();
        let well_formed = parts.len() == GROUPS + 1
            && valid_prefix(parts[0])
            && parts[1..]
                .iter()
                .all(|g| g.len() == GROUP_LEN && g.bytes().all(|b| b.is_ascii_alphanumeric()));
        if well_formed {
            Ok(Self(key))
        } else {
            Err("a license key has the form PREFIX-XXXX-XXXX-XXXX-XXXX".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn log_prefix(&self) -> String {
        log_prefix(&self.0)
    }
}

/// A prefix: 1 to 16 letters or digits.
pub fn valid_prefix(prefix: &str) -> bool {
    (1..=16).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What may be logged of a key: its prefix and first group, then `...`
/// (`SCO-AB12...`). For text that is not a key, its first 4 characters.
pub fn log_prefix(key: &str) -> String {
    let mut parts = key.splitn(3, '-');
    match (parts.next(), parts.next()) {
        (Some(prefix), Some(group)) if prefix.len() <= 16 => {
            let group: String = group.chars().take(GROUP_LEN).collect();
            format!("{prefix}-{group}...")
        }
        _ => format!("{}...", key.chars().take(4).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_use_only_unambiguous_letters() {
        for _ in 0..200 {
            let key = LicenseKey::generate("SCO");
            assert_eq!(LicenseKey::parse(key.as_str()).unwrap(), key);
            let body = &key.as_str()[4..];
            assert!(!body.contains(['0', 'O', '1', 'I', 'L']), "{body}");
            assert_eq!(key.as_str().len(), 3 + 4 * 5);
        }
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(LicenseKey::generate("SCO"), LicenseKey::generate("SCO"));
    }

    #[test]
    fn parsing_normalises_case_and_refuses_other_shapes() {
        assert_eq!(
            LicenseKey::parse(" sco-abcd-efgh-jkmn-pqrs ")
                .unwrap()
                .as_str(),
            "SCO-ABCD-EFGH-JKMN-PQRS"
        );
        for bad in [
            "",
            "SCO",
            "SCO-ABCD-EFGH-JKMN",
            "SCO-ABCD-EFGH-JKMN-PQRS-TUVW",
            "SCO-AB!D-EFGH-JKMN-PQRS",
            "-ABCD-EFGH-JKMN-PQRS",
        ] {
            assert!(LicenseKey::parse(bad).is_err(), "{bad}");
        }
        assert!(LicenseKey::parse(&"A".repeat(100)).is_err());
    }

    #[test]
    fn the_log_prefix_never_contains_the_secret_part() {
        let key = "SCO-ABCD-EFGH-JKMN-PQRS";
        let prefix = log_prefix(key);
        assert_eq!(prefix, "SCO-ABCD...");
        assert!(!prefix.contains("EFGH"));
        assert_eq!(log_prefix("nodashes"), "noda...");
    }
}

//! Values with rules, parsed once at the edge so the rest of the server can trust them.

use std::fmt;

/// A plausible email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            Err(format!("`{}` is not a valid email address", raw.trim()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password long enough to be worth hashing.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_LEN: usize = 10;
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: String) -> Result<Self, String> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            Err(format!(
                "a password needs at least {} characters",
                Self::MIN_LEN
            ))
        } else if len > Self::MAX_LEN {
            Err(format!(
                "a password may have at most {} characters",
                Self::MAX_LEN
            ))
        } else {
            Ok(Self(raw))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(**redacted**)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@c.d",
            "ada@.com",
            "a@b@c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn short_passwords_are_refused_and_never_printed() {
        assert!(NewPassword::parse("short".into()).is_err());
        let ok = NewPassword::parse("long enough password".into()).unwrap();
        assert!(!format!("{ok:?}").contains("long enough"));
    }
}

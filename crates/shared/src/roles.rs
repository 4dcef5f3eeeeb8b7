//! Admin roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an admin may do: an `owner` manages everything including other admins, an `admin`
/// manages keys and customers, a `viewer` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    Viewer,
    Admin,
    Owner,
}

impl AdminRole {
    pub const ALL: [AdminRole; 3] = [AdminRole::Owner, AdminRole::Admin, AdminRole::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }
}

impl fmt::Display for AdminRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of `owner`, `admin`, `viewer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role `{}` (expected owner, admin or viewer)",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for AdminRole {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        for role in AdminRole::ALL {
            assert_eq!(role.as_str().parse::<AdminRole>(), Ok(role));
        }
        assert!("root".parse::<AdminRole>().is_err());
    }

    #[test]
    fn owner_outranks_admin_outranks_viewer() {
        assert!(AdminRole::Owner > AdminRole::Admin);
        assert!(AdminRole::Admin > AdminRole::Viewer);
    }
}

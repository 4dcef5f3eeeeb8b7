//! The server's Ed25519 key pair, which signs every validation answer so a client can trust a
//! copy of it while offline.
//!
//! The pair is created on the first start and kept either in `server_settings` (the default; every
//! instance on the same database then signs with the same key) or in the file named by
//! `license_signing_key_file`. Both hold the 32-byte private seed as base64. The private key is
//! never logged and never leaves this module except to be stored; `Debug` shows the public key.
//!
//! Keys are handled with `ed25519-dalek`; signing, which every validation answer pays for, uses
//! AWS-LC's implementation of the same deterministic algorithm (RFC 8032), which produces the same
//! bytes in half the time on x86_64.

use std::path::Path;

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::OsRng;

use crate::db::server_settings::SettingStore;
use crate::db::Database;
use crate::with_store;

/// `server_settings` names of the pair.
pub const PRIVATE_KEY_SETTING: &str = "license_signing_key.ed25519.private";
pub const PUBLIC_KEY_SETTING: &str = "license_signing_key.ed25519.public";

pub struct LicenseSigner {
    key: SigningKey,
    /// The same pair, as the signing implementation holds it.
    signing: Ed25519KeyPair,
    public_b64: String,
}

impl std::fmt::Debug for LicenseSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicenseSigner")
            .field("public_key", &self.public_b64)
            .finish_non_exhaustive()
    }
}

impl LicenseSigner {
    fn from_key(key: SigningKey) -> anyhow::Result<Self> {
        let public = key.verifying_key().to_bytes();
        let signing = Ed25519KeyPair::from_seed_and_public_key(&key.to_bytes(), &public)
            .map_err(|e| anyhow::anyhow!("the signing key pair is not usable: {e}"))?;
        Ok(Self {
            key,
            signing,
            public_b64: BASE64.encode(public),
        })
    }

    /// A new pair from the OS CSPRNG.
    pub fn generate() -> anyhow::Result<Self> {
        Self::from_key(SigningKey::generate(&mut OsRng))
    }

    /// The pair whose private seed is `text` (base64 of 32 bytes).
    pub fn from_seed_b64(text: &str) -> anyhow::Result<Self> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| anyhow::anyhow!("the stored signing key is not base64"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored signing key is not 32 bytes long"))?;
        Self::from_key(SigningKey::from_bytes(&seed))
    }

    fn seed_b64(&self) -> String {
        BASE64.encode(self.key.to_bytes())
    }

    /// Base64 of the 32-byte public key, as `GET /api/license/public-key` publishes it.
    pub fn public_key_b64(&self) -> &str {
        &self.public_b64
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Base64 of the signature over `message`.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        BASE64.encode(self.signing.sign(message))
    }

    /// Loads the pair from `file` when one is configured (creating the file with a new pair when
    /// it does not exist), else from the database (storing a new pair on the first start).
    /// Blocking: call it off the async workers.
    pub fn load_or_create(db: &Database, file: Option<&Path>) -> anyhow::Result<Self> {
        match file {
            Some(path) => Self::load_or_create_file(path),
            None => {
                let mut conn = db.get_blocking().map_err(|e| {
                    anyhow::anyhow!("cannot reach the database for the signing key: {e}")
                })?;
                with_store!(&mut conn, |store| Self::load_or_create_stored(store))
            }
        }
    }

    fn load_or_create_stored<S: SettingStore>(store: &mut S) -> anyhow::Result<Self> {
        if let Some(seed) = store.get_setting(PRIVATE_KEY_SETTING)? {
            return Self::from_seed_b64(&seed);
        }
        // Two instances starting together may both get here: each offers its own pair, one
        // insert wins, and both read back (and use) the winner.
        let offered = Self::generate()?;
        store.insert_setting_if_absent(PRIVATE_KEY_SETTING, &offered.seed_b64())?;
        let seed = store
            .get_setting(PRIVATE_KEY_SETTING)?
            .ok_or_else(|| anyhow::anyhow!("the signing key vanished right after it was stored"))?;
        let signer = Self::from_seed_b64(&seed)?;
        store.insert_setting_if_absent(PUBLIC_KEY_SETTING, signer.public_key_b64())?;
        tracing::info!(public_key = %signer.public_key_b64(), "license signing key pair created");
        Ok(signer)
    }

    fn load_or_create_file(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_seed_b64(&text)
                .map_err(|e| anyhow::anyhow!("signing key file {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = Self::generate()?;
                write_private_file(path, &signer.seed_b64()).map_err(|e| {
                    anyhow::anyhow!("cannot create signing key file {}: {e}", path.display())
                })?;
                tracing::info!(
                    public_key = %signer.public_key_b64(),
                    file = %path.display(),
                    "license signing key pair created"
                );
                Ok(signer)
            }
            Err(e) => Err(anyhow::anyhow!(
                "cannot read signing key file {}: {e}",
                path.display()
            )),
        }
    }
}

/// Writes a new file only the server's user can read; never overwrites one.
fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, Verifier};

    use super::*;

    #[test]
    fn a_signature_verifies_with_the_published_key_and_fails_on_other_bytes() {
        let signer = LicenseSigner::generate().unwrap();
        let public: [u8; 32] = BASE64
            .decode(signer.public_key_b64())
            .unwrap()
            .try_into()
            .unwrap();
        let key = VerifyingKey::from_bytes(&public).unwrap();

        let sig_bytes: [u8; 64] = BASE64
            .decode(signer.sign_b64(b"payload"))
            .unwrap()
            .try_into()
            .unwrap();
        let signature = Signature::from_bytes(&sig_bytes);

        assert!(key.verify(b"payload", &signature).is_ok());
        assert!(key.verify(b"payloae", &signature).is_err());
    }

    #[test]
    fn signatures_are_the_deterministic_ones_every_ed25519_implementation_computes() {
        use ed25519_dalek::Signer;
        let signer = LicenseSigner::generate().unwrap();

        for message in [&b""[..], b"payload", &[0xa5; 1000]] {
            let reference = BASE64.encode(signer.key.sign(message).to_bytes());
            assert_eq!(signer.sign_b64(message), reference);
        }
    }

    #[test]
    fn a_seed_round_trips_and_debug_hides_it() {
        let signer = LicenseSigner::generate().unwrap();
        let again = LicenseSigner::from_seed_b64(&signer.seed_b64()).unwrap();

        assert_eq!(again.public_key_b64(), signer.public_key_b64());
        assert!(!format!("{signer:?}").contains(&signer.seed_b64()));
        assert!(LicenseSigner::from_seed_b64("c2hvcnQ=").is_err());
    }

    #[test]
    fn a_key_file_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.key");

        let first = LicenseSigner::load_or_create_file(&path).unwrap();
        let second = LicenseSigner::load_or_create_file(&path).unwrap();

        assert_eq!(first.public_key_b64(), second.public_key_b64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key file is private to its owner");
        }
    }
}

//! The server's Ed25519 key pair, which signs every validation answer so a client can trust a
//! copy of it while offline.
//!
//! The pair is created on the first start and kept either in `server_settings` (the default; every
//! instance on the same database then signs with the same key) or in the file named by
//! `license_signing_key_file`. Both hold the 32-byte private seed as base64. The private key is
//! never logged and never leaves this module except to be stored; `Debug` shows the public key.
//!
//! Keys are handled with `ed25519-dalek`; signing uses AWS-LC's implementation of the same
//! deterministic algorithm (RFC 8032), which produces the same bytes in half the time on x86_64.
//!
//! One signature covers a whole batch of answers ([`BatchTree`]): the answers' payloads are the
//! leaves of a Merkle tree, the root is signed, and each answer carries the sibling hashes that
//! lead from its leaf to the root (the scheme is described in `keysync_shared::license`). A
//! signature costs about 13 µs on the benchmark machine; a batch pays it once instead of once
//! per answer.

use std::path::Path;

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use keysync_shared::{ProofSide, ProofStep, BATCH_ROOT_CONTEXT};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

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

/// The Merkle tree over the payloads of one batch's answers, and the signature over its root;
/// shared by those answers, each of which takes its own proof from it.
#[derive(Debug)]
pub struct BatchTree {
    /// `levels[0]` holds the leaves, the last level the root alone.
    levels: Vec<Vec<[u8; 32]>>,
    /// Base64 of the signature over [`root_message`] of the root.
    signature: String,
}

impl BatchTree {
    /// The tree over `payloads`, in order, signed by `signer`; `None` when there are none.
    pub fn new(signer: &LicenseSigner, payloads: &[&[u8]]) -> Option<Self> {
        if payloads.is_empty() {
            return None;
        }
        let mut levels = vec![payloads.iter().map(|p| leaf_hash(p)).collect::<Vec<_>>()];
        while let Some(level) = levels.last().filter(|l| l.len() > 1) {
            let parents = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [alone] => *alone,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(parents);
        }
        let root = &levels[levels.len() - 1][0];
        let signature = signer.sign_b64(&root_message(root));
        Some(Self { levels, signature })
    }

    pub fn root(&self) -> &[u8; 32] {
        &self.levels[self.levels.len() - 1][0]
    }

    /// The sibling hashes from leaf `index` up to the root, lowest first.
    pub fn proof(&self, index: usize) -> Vec<ProofStep> {
        let mut position = index;
        let mut proof = Vec::with_capacity(self.levels.len() - 1);
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = position ^ 1;
            if let Some(hash) = level.get(sibling) {
                proof.push(ProofStep {
                    side: if sibling < position {
                        ProofSide::Left
                    } else {
                        ProofSide::Right
                    },
                    hash: BASE64.encode(hash),
                });
            }
            position /= 2;
        }
        proof
    }

    pub fn signature(&self) -> &str {
        &self.signature
    }
}

/// A payload's leaf in the batch tree.
pub fn leaf_hash(payload: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(payload)
        .finalize()
        .into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The bytes signed for a batch whose root is `root`.
pub fn root_message(root: &[u8; 32]) -> Vec<u8> {
    [BATCH_ROOT_CONTEXT, root].concat()
}

/// The root `payload` and `proof` lead to; `None` when a step's hash is not 32 bytes of base64.
pub fn root_from_proof(payload: &[u8], proof: &[ProofStep]) -> Option<[u8; 32]> {
    proof.iter().try_fold(leaf_hash(payload), |node, step| {
        let sibling: [u8; 32] = BASE64.decode(&step.hash).ok()?.try_into().ok()?;
        Some(match step.side {
            ProofSide::Left => node_hash(&sibling, &node),
            ProofSide::Right => node_hash(&node, &sibling),
        })
    })
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

    fn verifies(key: &VerifyingKey, payload: &[u8], proof: &[ProofStep], signature: &str) -> bool {
        let Some(root) = root_from_proof(payload, proof) else {
            return false;
        };
        let bytes: [u8; 64] = BASE64.decode(signature).unwrap().try_into().unwrap();
        key.verify(&root_message(&root), &Signature::from_bytes(&bytes))
            .is_ok()
    }

    #[test]
    fn every_answer_of_a_batch_verifies_through_its_proof_and_no_other() {
        let signer = LicenseSigner::generate().unwrap();
        let key = signer.verifying_key();
        assert!(BatchTree::new(&signer, &[]).is_none());
        for n in 1..=70usize {
            let payloads: Vec<Vec<u8>> = (0..n)
                .map(|i| format!("payload {i}").into_bytes())
                .collect();
            let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let tree = BatchTree::new(&signer, &refs).unwrap();
            let signature = tree.signature();

            let depth = usize::BITS - (n - 1).leading_zeros();
            for i in 0..n {
                let proof = &tree.proof(i);
                assert!(proof.len() <= depth as usize, "n={n} i={i}");
                assert!(
                    verifies(&key, &payloads[i], proof, signature),
                    "n={n} i={i}"
                );
                let other = &payloads[(i + 1) % n];
                if n > 1 {
                    assert!(!verifies(&key, other, proof, signature), "n={n} i={i}");
                }
                if let Some(first) = proof.first() {
                    let mut flipped = proof.clone();
                    flipped[0].side = match first.side {
                        ProofSide::Left => ProofSide::Right,
                        ProofSide::Right => ProofSide::Left,
                    };
                    assert!(!verifies(&key, &payloads[i], &flipped, signature));
                }
            }
        }
    }

    #[test]
    fn the_tree_is_the_documented_one() {
        let signer = LicenseSigner::generate().unwrap();
        let leaf = |p: &[u8]| -> [u8; 32] { Sha256::digest([&[0u8][..], p].concat()).into() };
        let node = |l: [u8; 32], r: [u8; 32]| -> [u8; 32] {
            Sha256::digest([&[1u8][..], &l, &r].concat()).into()
        };
        let (a, b, c) = (leaf(b"a"), leaf(b"b"), leaf(b"c"));
        // Three leaves: the third has no sibling on the lowest level and moves up as it is.
        let root = node(node(a, b), c);
        let mut message = b"keysync license batch v1\n".to_vec();
        message.extend_from_slice(&root);

        let tree = BatchTree::new(&signer, &[b"a", b"b", b"c"]).unwrap();
        let proofs: Vec<_> = (0..3).map(|i| tree.proof(i)).collect();

        assert_eq!(tree.root(), &root);
        assert_eq!(tree.signature(), signer.sign_b64(&message));
        let step = |side, hash: [u8; 32]| ProofStep {
            side,
            hash: BASE64.encode(hash),
        };
        assert_eq!(
            proofs,
            vec![
                vec![step(ProofSide::Right, b), step(ProofSide::Right, c)],
                vec![step(ProofSide::Left, a), step(ProofSide::Right, c)],
                vec![step(ProofSide::Left, node(a, b))],
            ]
        );
        // A batch of one signs its leaf.
        let alone = BatchTree::new(&signer, &[b"a"]).unwrap();
        assert_eq!(alone.proof(0), Vec::new());
        let mut message = b"keysync license batch v1\n".to_vec();
        message.extend_from_slice(&a);
        assert_eq!(alone.signature(), signer.sign_b64(&message));
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

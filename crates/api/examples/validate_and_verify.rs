//! A license client in a page: validate a key against a running keysync server, verify the
//! signed answer with the server's published Ed25519 key, and decide what to do offline.
//!
//! ```sh
//! cargo run -p keysync-api --example validate_and_verify -- \
//!     http://127.0.0.1:8080 SCO-ABCD-EFGH-JKMN-PQRS my-machine-fingerprint
//! ```
//!
//! A real client fetches the public key once (or ships it inside the product), keeps the last
//! verified `payload`, `proof` and `signature` on disk, and while the server cannot be reached
//! trusts the stored payload until its `grace_until`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use keysync_shared::{
    ProofSide, ProofStep, PublicKeyView, SignedPayload, ValidateLicenseResponse, BATCH_ROOT_CONTEXT,
};
use sha2::{Digest, Sha256};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(key)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: validate_and_verify SERVER_URL LICENSE_KEY [FINGERPRINT]");
    };
    let fingerprint = args.next();
    let server = server.trim_end_matches('/');
    let http = reqwest::Client::new();

    // 1. The server's public key (in a product, ship it or pin it after the first fetch).
    let published: PublicKeyView = http
        .get(format!("{server}/api/license/public-key"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let public_key = decode_public_key(&published)?;

    // 2. Validate.
    let answer: ValidateLicenseResponse = http
        .post(format!("{server}/api/validate-license"))
        .json(&serde_json::json!({
            "key": key,
            "fingerprint": fingerprint,
            "version": env!("CARGO_PKG_VERSION"),
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;

    // 3. Verify the payload's exact bytes through its proof and the signature, then read it.
    let payload = verify(
        &public_key,
        &answer.payload,
        &answer.proof,
        &answer.signature,
    )?;
    let expected_hash = hex::encode(Sha256::digest(key.trim().to_ascii_uppercase()));
    if payload.key_hash != expected_hash || payload.fingerprint != fingerprint {
        anyhow::bail!("the signed answer is for another key or machine");
    }
    println!(
        "server says {} ({}): {}",
        payload.code.as_str(),
        if payload.valid { "valid" } else { "not valid" },
        answer.detail
    );

    // 4. What a client would decide later, offline, from the stored payload alone.
    let now = Utc::now();
    match offline_valid_until(&payload) {
        Some(until) if until > now => println!("may run offline until {until}"),
        _ => println!("must not run without a fresh validation"),
    }
    Ok(())
}

fn decode_public_key(published: &PublicKeyView) -> anyhow::Result<VerifyingKey> {
    if published.algorithm != "ed25519" {
        anyhow::bail!("unexpected signing algorithm {}", published.algorithm);
    }
    let bytes: [u8; 32] = BASE64
        .decode(&published.public_key)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("an Ed25519 public key is 32 bytes"))?;
    Ok(VerifyingKey::from_bytes(&bytes)?)
}

/// Checks that the bytes of `payload` as received lead through `proof` to the root `signature`
/// signs, and only then parses them.
fn verify(
    key: &VerifyingKey,
    payload: &str,
    proof: &[ProofStep],
    signature: &str,
) -> anyhow::Result<SignedPayload> {
    let signature: [u8; 64] = BASE64
        .decode(signature)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("an Ed25519 signature is 64 bytes"))?;
    let root = batch_root(payload.as_bytes(), proof)?;
    let message = [BATCH_ROOT_CONTEXT, &root].concat();
    key.verify(&message, &Signature::from_bytes(&signature))
        .map_err(|_| anyhow::anyhow!("the answer's signature does not verify: do not trust it"))?;
    Ok(serde_json::from_str(payload)?)
}

/// The root of the batch the answer was signed in: the payload's leaf, `SHA-256(0x00 ||
/// payload)`, folded with each sibling of the proof into `SHA-256(0x01 || left || right)`.
fn batch_root(payload: &[u8], proof: &[ProofStep]) -> anyhow::Result<[u8; 32]> {
    let mut node: [u8; 32] = Sha256::new()
        .chain_update([0u8])
        .chain_update(payload)
        .finalize()
        .into();
    for step in proof {
        let sibling: [u8; 32] = BASE64
            .decode(&step.hash)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("a proof hash is 32 bytes"))?;
        let (left, right) = match step.side {
            ProofSide::Left => (sibling, node),
            ProofSide::Right => (node, sibling),
        };
        node = Sha256::new()
            .chain_update([1u8])
            .chain_update(left)
            .chain_update(right)
            .finalize()
            .into();
    }
    Ok(node)
}

/// Until when a verified payload lets the product run without reaching the server.
fn offline_valid_until(payload: &SignedPayload) -> Option<DateTime<Utc>> {
    if payload.valid {
        payload.grace_until
    } else {
        None
    }
}

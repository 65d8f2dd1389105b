//! `crypto::sha256`, `crypto::hmac_sha256`, `crypto::uuid`, `crypto::random_hex`.

use rhai::plugin::*;
use rhai::{Blob, INT};

use crate::answers::{Keep, pass};

#[export_module]
pub mod crypto_functions {
    use hmac::{Hmac, Mac};
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    /// Most random bytes one `random_hex` call returns.
    pub const MAX_RANDOM_BYTES: INT = 1024;

    /// SHA-256 of the UTF-8 bytes of `text`, as lowercase hex.
    ///
    /// ```rhai
    /// crypto::sha256("abc")   // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    /// ```
    pub fn sha256(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// SHA-256 of a BLOB, as lowercase hex.
    ///
    /// ```rhai
    /// crypto::sha256(blob(3, 0))
    /// ```
    #[rhai_fn(name = "sha256")]
    pub fn sha256_blob(bytes: Blob) -> String {
        hex::encode(Sha256::digest(&bytes))
    }

    /// HMAC-SHA256 of `message` under `key`, as lowercase hex: what webhook
    /// signatures are checked against.
    ///
    /// ```rhai
    /// let expected = crypto::hmac_sha256(secret, ctx.request.body);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hmac_sha256(key: &str, message: &str) -> Result<String, Box<EvalAltResult>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .map_err(|err| format!("crypto::hmac_sha256: {err}"))?;
        mac.update(message.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// A random (version 4) UUID in its hyphenated form.
    ///
    /// ```rhai
    /// let id = crypto::uuid();   // e.g. "0b5f2a7e-…"
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn uuid() -> Result<String, Box<EvalAltResult>> {
        pass(
            "crypto::uuid",
            Keep::Value,
            || Value::Null,
            || Ok(uuid::Uuid::new_v4().to_string()),
        )
    }

    /// `n` bytes from the operating system's secure random source, as `2 * n` hex
    /// characters. `n` must be between 0 and 1024.
    ///
    /// ```rhai
    /// let token = crypto::random_hex(16);   // 32 hex characters
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn random_hex(n: INT) -> Result<String, Box<EvalAltResult>> {
        if !(0..=MAX_RANDOM_BYTES).contains(&n) {
            return Err(format!(
                "crypto::random_hex: byte count must be between 0 and {MAX_RANDOM_BYTES}, got {n}"
            )
            .into());
        }
        pass(
            "crypto::random_hex",
            Keep::Value,
            || serde_json::json!({ "n": n }),
            || {
                let mut bytes = vec![0u8; usize::try_from(n).unwrap_or(0)];
                getrandom::fill(&mut bytes)
                    .map_err(|err| format!("crypto::random_hex: no randomness available: {err}"))?;
                Ok(hex::encode(bytes))
            },
        )
    }
}

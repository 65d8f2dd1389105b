//! The instance master key and the values sealed under it.
//!
//! Secrets (and webhook signing secrets) reach the event log only sealed:
//! XChaCha20-Poly1305 under the instance's 32-byte master key, a fresh random
//! 24-byte nonce per value, and the value's *purpose* (`secret`, app id and name;
//! `webhook`, app id and trigger id) as associated data, so a sealed value copied
//! into another secret, app or trigger does not open. The text form is
//! `v1.<base64url(nonce ‖ ciphertext ‖ tag)>`.
//!
//! The key comes from `PICLOUD_MASTER_KEY` (base64 of 32 bytes) or, when that is
//! unset, from `<data-dir>/master-key`, generated once with mode 0600. The first
//! node to start seals a fixed check text on the `master-key` stream; every later
//! start opens it, so a node given another key stops with a clear error instead of
//! sealing new values under a second key or failing secret by secret.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use chrono::Utc;
use picloud_events::domain::{InstanceEvent, decode, encode, stream};
use picloud_events::{ExpectedVersion, Metadata, Store, StoreError};

/// The environment variable holding the master key (base64, 32 bytes).
pub const MASTER_KEY_ENV: &str = "PICLOUD_MASTER_KEY";
/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "master-key";

const VERSION_PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// What the `master-key` stream's check value seals.
const CHECK_TEXT: &[u8] = b"picloud master key check v1";
const CHECK_PURPOSE: &str = "master-key-check";

/// The instance master key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

/// Where the key came from (for the start-up log line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
    Generated(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => write!(f, "{MASTER_KEY_ENV}"),
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Generated(path) => write!(f, "{} (generated)", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{source_name}: the master key must be base64 of exactly 32 bytes ({reason})")]
    Malformed { source_name: String, reason: String },
    #[error("master key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(
        "the master key ({source_name}) is not the key this store's secrets are sealed with; \
         start every node with the same {MASTER_KEY_ENV} (or the original {KEY_FILE} file)"
    )]
    Mismatch { source_name: String },
    #[error("checking the master key against the store: {0}")]
    Store(#[from] StoreError),
    #[error("no randomness available: {0}")]
    Random(String),
}

/// A sealed value that does not open: altered, sealed under another key, or moved
/// to another purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed value could not be opened")]
pub struct OpenError;

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Default for MasterKey {
    /// A fresh random key (tests, and runtimes started without configuration).
    fn default() -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        MasterKey::from_bytes(bytes)
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let key = Key::from(bytes);
        MasterKey {
            cipher: XChaCha20Poly1305::new(&key),
        }
    }

    /// A new random key.
    pub fn generate() -> Result<([u8; 32], MasterKey), KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok((bytes, MasterKey::from_bytes(bytes)))
    }

    /// Parse base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
    pub fn from_base64(text: &str, source_name: &str) -> Result<MasterKey, KeyError> {
        let text = text.trim();
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok());
        let malformed = |reason: String| KeyError::Malformed {
            source_name: source_name.to_owned(),
            reason,
        };
        let bytes = decoded.ok_or_else(|| malformed("not base64".into()))?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| malformed(format!("{} bytes", bytes.len())))?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The key of this node: `env` (the value of `PICLOUD_MASTER_KEY`) when set,
    /// else `<data_dir>/master-key`, generated (mode 0600) if it does not exist.
    pub fn load(env: Option<&str>, data_dir: &Path) -> Result<(MasterKey, KeySource), KeyError> {
        if let Some(text) = env.filter(|t| !t.trim().is_empty()) {
            return Ok((
                MasterKey::from_base64(text, MASTER_KEY_ENV)?,
                KeySource::Env,
            ));
        }
        let path = data_dir.join(KEY_FILE);
        let file_error = |reason: String| KeyError::File {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                warn_if_readable_by_others(&path);
                let key = MasterKey::from_base64(&text, &path.display().to_string())?;
                Ok((key, KeySource::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| file_error(e.to_string()))?;
                let (bytes, key) = MasterKey::generate()?;
                match create_private(&path) {
                    Ok(mut file) => {
                        writeln!(file, "{}", STANDARD.encode(bytes))
                            .and_then(|()| file.sync_all())
                            .map_err(|e| file_error(e.to_string()))?;
                        Ok((key, KeySource::Generated(path)))
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        MasterKey::load(None, data_dir)
                    }
                    Err(e) => Err(file_error(e.to_string())),
                }
            }
            Err(e) => Err(file_error(e.to_string())),
        }
    }

    /// Seal `plaintext` for `purpose` (the associated data).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| KeyError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Random("sealing failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Open a value sealed for `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let body = sealed.strip_prefix(VERSION_PREFIX).ok_or(OpenError)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| OpenError)
    }

    /// Open a value sealed for `purpose` as UTF-8 text.
    pub fn open_text(&self, purpose: &str, sealed: &str) -> Result<String, OpenError> {
        String::from_utf8(self.open(purpose, sealed)?).map_err(|_| OpenError)
    }

    /// Check this key against the store: register it on the first start of an
    /// instance, else open the registered check value. `source` names the key in
    /// the error.
    pub async fn verify(&self, store: &dyn Store, source: &str) -> Result<(), KeyError> {
        for _ in 0..3 {
            let events = store.read_stream(stream::MASTER_KEY, 1, 1).await?;
            if let Some(event) = events.first() {
                let Some(InstanceEvent::MasterKeyRegistered { check, .. }) = decode(event) else {
                    return Err(KeyError::Mismatch {
                        source_name: source.to_owned(),
                    });
                };
                return match self.open(CHECK_PURPOSE, &check) {
                    Ok(text) if text == CHECK_TEXT => Ok(()),
                    _ => Err(KeyError::Mismatch {
                        source_name: source.to_owned(),
                    }),
                };
            }
            let event = InstanceEvent::MasterKeyRegistered {
                check: self.seal(CHECK_PURPOSE, CHECK_TEXT)?,
                at: Utc::now(),
            };
            match store
                .append(
                    stream::MASTER_KEY,
                    ExpectedVersion::NoStream,
                    vec![encode(&event, &Metadata::default())],
                )
                .await
            {
                Ok(_) => return Ok(()),
                // Another node registered first: check against theirs.
                Err(StoreError::VersionConflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(KeyError::Store(StoreError::Unavailable(
            "the master-key stream keeps changing".into(),
        )))
    }
}

/// The associated data of an app secret.
pub fn secret_purpose(app_id: &str, name: &str) -> String {
    format!("secret\u{0}{app_id}\u{0}{name}")
}

/// The associated data of a webhook trigger's signing secret.
pub fn webhook_purpose(app_id: &str, trigger_id: &str) -> String {
    format!("webhook\u{0}{app_id}\u{0}{trigger_id}")
}

/// The associated data of the secret that verifies an app's git push webhooks.
pub fn git_purpose(app_id: &str) -> String {
    format!("git\u{0}{app_id}")
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %path.display(),
            "the master key file is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_purpose() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = key.seal("secret\0a\0TOKEN", b"hunter2").expect("seal");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            key.open("secret\0a\0TOKEN", &sealed).expect("open"),
            b"hunter2"
        );
        // Another purpose, another key, an altered byte: all refused.
        assert_eq!(key.open("secret\0a\0OTHER", &sealed), Err(OpenError));
        let other = MasterKey::from_bytes([8; 32]);
        assert_eq!(other.open("secret\0a\0TOKEN", &sealed), Err(OpenError));
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert_eq!(key.open("secret\0a\0TOKEN", &altered), Err(OpenError));
        assert_eq!(key.open("secret\0a\0TOKEN", "v1.AAAA"), Err(OpenError));
        assert_eq!(key.open("secret\0a\0TOKEN", "plain"), Err(OpenError));
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let key = MasterKey::from_bytes([1; 32]);
        let a = key.seal("p", b"same").expect("seal");
        let b = key.seal("p", b"same").expect("seal");
        assert_ne!(a, b, "a fresh nonce per value");
    }

    #[test]
    fn base64_keys_must_be_32_bytes() {
        let good = STANDARD.encode([3u8; 32]);
        assert!(MasterKey::from_base64(&good, "env").is_ok());
        assert!(MasterKey::from_base64(&URL_SAFE_NO_PAD.encode([3u8; 32]), "env").is_ok());
        let short = MasterKey::from_base64(&STANDARD.encode([3u8; 16]), "env");
        assert!(matches!(short, Err(KeyError::Malformed { .. })));
        let text = MasterKey::from_base64("not base64!", "env");
        assert!(matches!(text, Err(KeyError::Malformed { .. })));
    }

    #[test]
    fn the_key_file_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, source) = MasterKey::load(None, dir.path()).expect("generate");
        assert!(matches!(source, KeySource::Generated(_)));
        let (second, source) = MasterKey::load(None, dir.path()).expect("read");
        assert!(matches!(source, KeySource::File(_)));
        let sealed = first.seal("p", b"x").expect("seal");
        assert_eq!(second.open("p", &sealed).expect("same key"), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The environment wins over the file.
        let env = STANDARD.encode([9u8; 32]);
        let (from_env, source) = MasterKey::load(Some(&env), dir.path()).expect("env");
        assert_eq!(source, KeySource::Env);
        assert!(from_env.open("p", &sealed).is_err());
    }
}

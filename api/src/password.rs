//! Password hashing (argon2id with the crate's defaults: 19 MiB, 2 passes), off the
//! async runtime's worker threads.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::error::ApiError;

/// A PHC string for `password`.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| ApiError::internal("no randomness", e))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::internal("salt", e))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal("password hashing", e))
    })
    .await
    .map_err(|e| ApiError::internal("password hashing task", e))?
}

/// Does `password` match `phc`? With no hash, a dummy one is checked anyway so an
/// unknown username takes as long as a wrong password.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$5mI5K7bY5x0bBfD3Xb1c9d9O0m3hXo1l2VbqJd0CwZk";
    let known = phc.is_some();
    tokio::task::spawn_blocking(move || {
        let phc = phc.unwrap_or_else(|| DUMMY.to_owned());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = super::hash("correct horse".into()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(super::verify("correct horse".into(), Some(phc.clone())).await);
        assert!(!super::verify("wrong horse".into(), Some(phc)).await);
        assert!(!super::verify("correct horse".into(), None).await);
    }
}

//! Account tokens (email verification, password reset): `<id>.<secret>` where the secret is
//! 256 random bits in hex. Only SHA-256 of the secret is stored; the id finds the row, so a
//! wrong secret counts as a failed attempt against that token. Comparisons are constant-time.

use crate::db::Db;
use crate::error::ApiError;
use crate::validate::Rule;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

pub const MAX_ATTEMPTS: i64 = 5;

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// Bytes of lowercase or uppercase hex; `None` if it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A token to hand out once (in a link) and the hash to store.
pub struct IssuedToken {
    pub id: Uuid,
    /// What goes in the link: `<id>.<secret hex>`.
    pub link_token: String,
    /// SHA-256 of the secret, hex: the only part stored.
    pub hash_hex: String,
}

impl IssuedToken {
    /// `random` must come from a cryptographic source: see [`IssuedToken::generate`].
    pub fn new(id: Uuid, random: [u8; 32]) -> Self {
        Self { id, link_token: format!("{id}.{}", to_hex(&random)), hash_hex: sha256_hex(&random) }
    }

    /// A fresh token from the platform's cryptographic random source (WebCrypto in a worker).
    pub fn generate() -> Result<Self, ApiError> {
        let mut random = [0u8; 32];
        getrandom::getrandom(&mut random).map_err(|error| ApiError::internal().because(format!("no randomness: {error}")))?;
        Ok(Self::new(Uuid::new_v4(), random))
    }
}

/// A token as a user presents it.
#[derive(Debug)]
pub struct PresentedToken {
    pub id: Uuid,
    secret: [u8; 32],
}

impl PresentedToken {
    pub fn parse(text: &str) -> Result<Self, Rule> {
        let invalid = || Rule::new("token", "The link's token is malformed: use the whole link from the email.");
        let (id, secret) = text.trim().split_once('.').ok_or_else(invalid)?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        let secret: [u8; 32] = from_hex(secret).and_then(|bytes| bytes.try_into().ok()).ok_or_else(invalid)?;
        Ok(Self { id, secret })
    }
}

/// A token's stored state, as `service_role_account_token` returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredToken {
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub attempts: i64,
    pub consumed: bool,
    pub email: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Unknown id or wrong secret: counts as a failed attempt.
    Invalid,
    Expired,
    Used,
    TooManyAttempts,
}

impl From<TokenProblem> for ApiError {
    fn from(problem: TokenProblem) -> Self {
        match problem {
            TokenProblem::Invalid => ApiError::bad_request("invalid_token", "This link is not valid."),
            TokenProblem::Expired => ApiError::bad_request("token_expired", "This link has expired: ask for a new one."),
            TokenProblem::Used => ApiError::conflict("token_used", "This link was already used."),
            TokenProblem::TooManyAttempts => {
                ApiError::new(429, "too_many_attempts", "Too many failed attempts with this link: ask for a new one.")
            }
        }
    }
}

/// Checks a presented token against its stored state. Locked and used tokens are refused
/// before the secret is even compared; the comparison itself takes the same time whatever
/// the secret.
pub fn verify(presented: &PresentedToken, stored: Option<&StoredToken>, now: DateTime<Utc>) -> Result<(), TokenProblem> {
    let stored = stored.ok_or(TokenProblem::Invalid)?;
    if stored.attempts >= MAX_ATTEMPTS {
        return Err(TokenProblem::TooManyAttempts);
    }
    if stored.consumed {
        return Err(TokenProblem::Used);
    }
    let expected = from_hex(&stored.token_hash).unwrap_or_default();
    let presented_hash = Sha256::digest(presented.secret);
    if !bool::from(presented_hash.as_slice().ct_eq(&expected)) {
        return Err(TokenProblem::Invalid);
    }
    if stored.expires_at <= now {
        return Err(TokenProblem::Expired);
    }
    Ok(())
}

/// Looks a presented token up (`kind` is `email_verification` or `password_reset`) and checks
/// it, counting a wrong secret as a failed attempt against the token.
pub async fn check(db: &Db, kind: &str, presented: &PresentedToken, now: DateTime<Utc>) -> Result<StoredToken, ApiError> {
    let stored: Option<StoredToken> = db.rpc("service_role_account_token", &serde_json::json!({ "kind": kind, "token_id": presented.id })).await?;
    match verify(presented, stored.as_ref(), now) {
        Ok(()) => stored.ok_or_else(ApiError::internal),
        Err(problem) => {
            if problem == TokenProblem::Invalid && stored.is_some() {
                let _: Option<i64> = db.rpc("service_role_fail_token_attempt", &serde_json::json!({ "kind": kind, "token_id": presented.id })).await?;
            }
            Err(problem.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse_instant;

    fn now() -> DateTime<Utc> {
        parse_instant("2030-01-01T10:00:00Z").unwrap()
    }

    fn issued() -> IssuedToken {
        IssuedToken::new(Uuid::parse_str("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f").unwrap(), [7u8; 32])
    }

    fn stored(token: &IssuedToken) -> StoredToken {
        StoredToken { token_hash: token.hash_hex.clone(), expires_at: now() + chrono::Duration::hours(1), attempts: 0, consumed: false, email: "c@example.com".into() }
    }

    #[test]
    fn only_the_hash_is_stored_and_it_is_sha256_of_the_secret() {
        let token = issued();
        assert_eq!(token.link_token, format!("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f.{}", "07".repeat(32)));
        // SHA-256 of 32 bytes of 0x07, computed independently (Python's hashlib).
        assert_eq!(token.hash_hex, "4bb06f8e4e3a7715d201d573d0aa423762e55dabd61a2c02278fa56cc6d294e0");
    }

    #[test]
    fn the_right_token_verifies() {
        let token = issued();
        let presented = PresentedToken::parse(&token.link_token).unwrap();
        assert_eq!(verify(&presented, Some(&stored(&token)), now()), Ok(()));
    }

    #[test]
    fn a_wrong_secret_an_unknown_id_and_a_malformed_token_are_refused() {
        let token = issued();
        let wrong = PresentedToken::parse(&format!("{}.{}", token.id, "08".repeat(32))).unwrap();
        assert_eq!(verify(&wrong, Some(&stored(&token)), now()), Err(TokenProblem::Invalid));
        assert_eq!(verify(&PresentedToken::parse(&token.link_token).unwrap(), None, now()), Err(TokenProblem::Invalid));
        for malformed in ["", "abc", "2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f", "2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f.abcd", "x.0707"] {
            assert!(PresentedToken::parse(malformed).is_err(), "{malformed}");
        }
    }

    #[test]
    fn expired_used_and_locked_tokens_are_refused_with_their_reason() {
        let token = issued();
        let presented = PresentedToken::parse(&token.link_token).unwrap();
        let expired = StoredToken { expires_at: now(), ..stored(&token) };
        assert_eq!(verify(&presented, Some(&expired), now()), Err(TokenProblem::Expired));
        let used = StoredToken { consumed: true, ..stored(&token) };
        assert_eq!(verify(&presented, Some(&used), now()), Err(TokenProblem::Used));
        let locked = StoredToken { attempts: 5, ..stored(&token) };
        assert_eq!(verify(&presented, Some(&locked), now()), Err(TokenProblem::TooManyAttempts), "even with the right secret");
    }

    #[test]
    fn each_problem_has_its_status() {
        let statuses: Vec<u16> = [TokenProblem::Invalid, TokenProblem::Expired, TokenProblem::Used, TokenProblem::TooManyAttempts].into_iter().map(|p| ApiError::from(p).status).collect();
        assert_eq!(statuses, [400, 400, 409, 429]);
    }
}

//! Account tokens (email verification, password reset): `<id>.<secret>` where the secret is
//! 256 random bits in hex. Only SHA-256 of the secret is stored; the id finds the row, so a
//! wrong secret counts as a failed attempt against that token. Comparisons are constant-time.

#[cfg(feature = "worker")]
use crate::db::Db;
use crate::error::ApiError;
#[cfg(feature = "worker")]
use crate::rpc::{AccountToken, FailTokenAttempt};
use crate::validate::Rule;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
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
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    // Digit by digit: `u8::from_str_radix` would also take a sign ("+f").
    let digit = |b: u8| (b as char).to_digit(16);
    bytes.chunks(2).map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)).collect()
}

/// A token to hand out once (in a link) and the hash to store.
pub struct IssuedToken {
    pub id: Uuid,
    /// What goes in the link: `<id>.<secret hex>`.
    pub link_token: String,
    /// SHA-256 of the secret, hex: the only part stored.
    pub hash_hex: String,
}

/// What a token is for; part of what its secret is derived from, so that a secret for one
/// purpose is never valid for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    EmailVerification,
    PasswordReset,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::EmailVerification => "email_verification",
            TokenKind::PasswordReset => "password_reset",
        }
    }
}

/// The workers' key for account tokens (`ACCOUNT_TOKEN_KEY`): a token's secret is
/// HMAC-SHA256(key, kind:id), so the email that carries it can be rendered from the outbox,
/// which holds only the id, while the database stores only the secret's hash.
pub struct TokenKey(Vec<u8>);

impl TokenKey {
    pub const MIN_BYTES: usize = 32;

    pub fn parse(text: &str) -> Result<Self, String> {
        let key = text.trim().as_bytes().to_vec();
        if key.len() < Self::MIN_BYTES {
            return Err(format!("ACCOUNT_TOKEN_KEY must be at least {} bytes", Self::MIN_BYTES));
        }
        Ok(Self(key))
    }

    fn secret(&self, kind: TokenKind, id: Uuid) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(format!("{}:{id}", kind.as_str()).as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The token with this id; the same every time, for the issuer and for the email.
    pub fn token(&self, kind: TokenKind, id: Uuid) -> IssuedToken {
        let secret = self.secret(kind, id);
        IssuedToken { id, link_token: format!("{id}.{}", to_hex(&secret)), hash_hex: sha256_hex(&secret) }
    }

    /// A new token: a random id from the platform's cryptographic source, its secret derived.
    pub fn issue(&self, kind: TokenKind) -> IssuedToken {
        self.token(kind, Uuid::new_v4())
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
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
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
            TokenProblem::Expired => {
                ApiError::bad_request("token_expired", "This link has expired: ask for a new one.")
            }
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
pub fn verify(
    presented: &PresentedToken,
    stored: Option<&StoredToken>,
    now: DateTime<Utc>,
) -> Result<(), TokenProblem> {
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

/// Looks a presented token up and checks it, counting a wrong secret as a failed attempt
/// against the token.
#[cfg(feature = "worker")]
pub async fn check(
    db: &Db,
    kind: TokenKind,
    presented: &PresentedToken,
    now: DateTime<Utc>,
) -> Result<StoredToken, ApiError> {
    let kind = kind.as_str();
    let stored = db.call(&AccountToken { kind: kind.into(), token_id: presented.id }).await?;
    match verify(presented, stored.as_ref(), now) {
        Ok(()) => stored.ok_or_else(ApiError::internal),
        Err(problem) => {
            if problem == TokenProblem::Invalid && stored.is_some() {
                db.call(&FailTokenAttempt { kind: kind.into(), token_id: presented.id }).await?;
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

    fn key() -> TokenKey {
        TokenKey::parse("a-key-of-at-least-thirty-two-bytes-for-tests").unwrap()
    }

    fn issued() -> IssuedToken {
        key().token(TokenKind::PasswordReset, Uuid::parse_str("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f").unwrap())
    }

    fn stored(token: &IssuedToken) -> StoredToken {
        StoredToken {
            token_hash: token.hash_hex.clone(),
            expires_at: now() + chrono::Duration::hours(1),
            attempts: 0,
            consumed: false,
            email: "c@example.com".into(),
        }
    }

    #[test]
    fn hex_round_trips_and_refuses_anything_but_pairs_of_hex_digits() {
        assert_eq!(from_hex(&to_hex(&[0, 15, 160, 255])), Some(vec![0, 15, 160, 255]));
        assert_eq!(from_hex("0AfF"), Some(vec![10, 255]));
        for bad in ["+f", "-1", "0g", "abc", " 0"] {
            assert_eq!(from_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_secret_is_the_hmac_of_kind_and_id_and_only_its_hash_is_stored() {
        let token = issued();
        // Computed independently: Python's hmac.new(key, b"password_reset:<id>", sha256), then sha256 of that.
        assert_eq!(
            token.link_token,
            "2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f.21dfd1e29faff2f8c8df63635973bb05e0b479b7f0885e07deda786b6ed65467"
        );
        assert_eq!(token.hash_hex, "d71e1fac835f75b877b8ff619d78f46c6a91a7801b350f45a7ff90fbb87980f1");
    }

    #[test]
    fn a_token_is_derived_again_identically_and_differs_per_kind_id_and_key() {
        let id = Uuid::parse_str("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f").unwrap();
        assert_eq!(key().token(TokenKind::PasswordReset, id).link_token, issued().link_token);
        assert_ne!(key().token(TokenKind::EmailVerification, id).link_token, issued().link_token);
        assert_ne!(key().token(TokenKind::PasswordReset, Uuid::new_v4()).hash_hex, issued().hash_hex);
        let other = TokenKey::parse("another-key-of-at-least-thirty-two-bytes").unwrap();
        assert_ne!(other.token(TokenKind::PasswordReset, id).link_token, issued().link_token);
        assert!(TokenKey::parse("too short").is_err());
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
        for malformed in
            ["", "abc", "2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f", "2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f.abcd", "x.0707"]
        {
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
        assert_eq!(
            verify(&presented, Some(&locked), now()),
            Err(TokenProblem::TooManyAttempts),
            "even with the right secret"
        );
    }

    #[test]
    fn each_problem_has_its_status() {
        let statuses: Vec<u16> =
            [TokenProblem::Invalid, TokenProblem::Expired, TokenProblem::Used, TokenProblem::TooManyAttempts]
                .into_iter()
                .map(|p| ApiError::from(p).status)
                .collect();
        assert_eq!(statuses, [400, 400, 409, 429]);
    }
}

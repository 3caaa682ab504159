//! Verifies Supabase JWTs with jwt-compact and turns them into a typed [`Caller`].
//!
//! Keys: the project's legacy HS256 secret, and the asymmetric ES256 / RS256 keys of its JWKS
//! document (selected by `kid`). A token must carry a known algorithm for its key (no `none`, no
//! HS256/RS256 swap), be unexpired and already valid (with a small leeway), and name a role;
//! user tokens also need a UUID `sub` and the `authenticated` audience.

use crate::error::ApiError;
use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Es256, Hs256, Hs256Key, Rsa, RsaPublicKey, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmExt, Claims, TimeOptions, Token, UntrustedToken, ValidationError};
use serde::Deserialize;
use std::fmt;
use uuid::Uuid;

/// Who is calling, as the verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anon,
    User { id: Uuid, email: Option<String> },
    ServiceRole,
}

impl Caller {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Caller::User { id, .. } => Some(*id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Malformed,
    UnknownKey,
    UnsupportedAlgorithm(String),
    BadSignature,
    Expired,
    NotYetValid,
    MissingExpiry,
    MissingSubject,
    WrongAudience,
    UnknownRole(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Malformed => f.write_str("The token is not a well-formed JWT."),
            AuthError::UnknownKey => f.write_str("The token is signed with a key this project does not know."),
            AuthError::UnsupportedAlgorithm(alg) => write!(f, "The token's algorithm {alg} is not accepted."),
            AuthError::BadSignature => f.write_str("The token's signature is invalid."),
            AuthError::Expired => f.write_str("The token has expired."),
            AuthError::NotYetValid => f.write_str("The token is not valid yet."),
            AuthError::MissingExpiry => f.write_str("The token has no expiry."),
            AuthError::MissingSubject => f.write_str("The token names no user (sub)."),
            AuthError::WrongAudience => f.write_str("The token is not meant for this project (aud)."),
            AuthError::UnknownRole(role) => write!(f, "The token's role {role} is not accepted."),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::unauthorized(error.to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct SupabaseClaims {
    role: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    email: Option<String>,
}

enum VerifyingKey {
    Es256(p256::ecdsa::VerifyingKey),
    Rsa { alg: Rsa, key: RsaPublicKey },
}

/// The keys a project signs tokens with.
pub struct Verifier {
    hs256: Option<Hs256Key>,
    jwks: Vec<(Option<String>, VerifyingKey)>,
    leeway: Duration,
}

#[derive(Deserialize)]
struct JwksDocument<'a> {
    #[serde(borrow)]
    keys: Vec<JwksEntry<'a>>,
}

#[derive(Deserialize)]
struct JwksEntry<'a> {
    kid: Option<String>,
    alg: Option<String>,
    #[serde(borrow, flatten)]
    key: JsonWebKey<'a>,
}

impl Verifier {
    /// Allowed clock difference between the token issuer and this worker.
    pub const LEEWAY_SECONDS: i64 = 30;

    pub fn new(hs256_secret: Option<&str>) -> Self {
        Self {
            hs256: hs256_secret.filter(|secret| !secret.is_empty()).map(|secret| Hs256Key::new(secret.as_bytes())),
            jwks: Vec::new(),
            leeway: Duration::seconds(Self::LEEWAY_SECONDS),
        }
    }

    /// Adds the public keys of a JWKS document. Keys of other types (symmetric, other curves)
    /// are ignored: they cannot verify project tokens.
    pub fn with_jwks(mut self, document: &str) -> Result<Self, String> {
        let document: JwksDocument<'_> = serde_json::from_str(document).map_err(|error| format!("unreadable JWKS: {error}"))?;
        for entry in document.keys {
            let key = match (entry.alg.as_deref(), &entry.key) {
                (Some("ES256") | None, JsonWebKey::EllipticCurve { .. }) => {
                    p256::ecdsa::VerifyingKey::try_from(&entry.key).map(VerifyingKey::Es256).map_err(|error| error.to_string())
                }
                (alg, JsonWebKey::Rsa { .. }) if alg.map_or(true, |alg| matches!(alg, "RS256" | "RS384" | "RS512")) => {
                    let alg = Rsa::with_name(alg.unwrap_or("RS256"));
                    // StrongKey refuses moduli under 2048 bits.
                    RsaPublicKey::try_from(&entry.key)
                        .map_err(|error| error.to_string())
                        .and_then(|key| StrongKey::try_from(key).map_err(|error| error.to_string()))
                        .map(|key| VerifyingKey::Rsa { alg, key: key.into_inner() })
                }
                _ => continue,
            }?;
            self.jwks.push((entry.kid, key));
        }
        Ok(self)
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Caller, AuthError> {
        let untrusted = UntrustedToken::new(token).map_err(|_| AuthError::Malformed)?;
        let algorithm = untrusted.algorithm().to_owned();
        let kid = untrusted.header().key_id.clone();
        let token: Token<SupabaseClaims> = match algorithm.as_str() {
            "HS256" => {
                let key = self.hs256.as_ref().ok_or(AuthError::UnknownKey)?;
                Hs256.validator(key).validate(&untrusted)
            }
            "ES256" => match self.find(kid.as_deref(), |key| matches!(key, VerifyingKey::Es256(_)))? {
                VerifyingKey::Es256(key) => Es256.validator(key).validate(&untrusted),
                VerifyingKey::Rsa { .. } => return Err(AuthError::UnknownKey),
            },
            "RS256" | "RS384" | "RS512" => {
                match self.find(kid.as_deref(), |key| matches!(key, VerifyingKey::Rsa { alg, .. } if alg.name() == algorithm))? {
                    VerifyingKey::Rsa { alg, key } => alg.validator(key).validate(&untrusted),
                    VerifyingKey::Es256(_) => return Err(AuthError::UnknownKey),
                }
            }
            other => return Err(AuthError::UnsupportedAlgorithm(other.to_owned())),
        }
        .map_err(|error| match error {
            ValidationError::InvalidSignature | ValidationError::MalformedSignature(_) => AuthError::BadSignature,
            ValidationError::AlgorithmMismatch { .. } => AuthError::UnsupportedAlgorithm(algorithm.clone()),
            _ => AuthError::Malformed,
        })?;
        self.check_claims(token.claims(), now)
    }

    fn find(&self, kid: Option<&str>, usable: impl Fn(&VerifyingKey) -> bool) -> Result<&VerifyingKey, AuthError> {
        self.jwks
            .iter()
            .filter(|(_, key)| usable(key))
            .find(|(key_id, _)| kid.is_none() || key_id.as_deref() == kid)
            .map(|(_, key)| key)
            .ok_or(AuthError::UnknownKey)
    }

    fn check_claims(&self, claims: &Claims<SupabaseClaims>, now: DateTime<Utc>) -> Result<Caller, AuthError> {
        let options = TimeOptions::new(self.leeway, move || now);
        claims.validate_expiration(&options).map_err(|error| match error {
            ValidationError::Expired => AuthError::Expired,
            _ => AuthError::MissingExpiry,
        })?;
        if claims.not_before.is_some() {
            claims.validate_maturity(&options).map_err(|_| AuthError::NotYetValid)?;
        }
        if claims.issued_at.is_some_and(|issued| issued > now + self.leeway) {
            return Err(AuthError::NotYetValid);
        }
        let custom = &claims.custom;
        match custom.role.as_deref() {
            Some("anon") => Ok(Caller::Anon),
            Some("service_role") => Ok(Caller::ServiceRole),
            Some("authenticated") => {
                let audience_ok = match &custom.aud {
                    Some(Audience::One(aud)) => aud == "authenticated",
                    Some(Audience::Many(auds)) => auds.iter().any(|aud| aud == "authenticated"),
                    None => false,
                };
                if !audience_ok {
                    return Err(AuthError::WrongAudience);
                }
                let id = custom.sub.as_deref().and_then(|sub| Uuid::try_parse(sub).ok()).ok_or(AuthError::MissingSubject)?;
                Ok(Caller::User { id, email: custom.email.clone() })
            }
            other => Err(AuthError::UnknownRole(other.unwrap_or("(none)").to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/jwt-vectors.json")).unwrap()
    }

    fn now(vectors: &Value) -> DateTime<Utc> {
        DateTime::from_timestamp(vectors["now"].as_i64().unwrap(), 0).unwrap()
    }

    fn verify(name: &str) -> Result<Caller, AuthError> {
        let vectors = vectors();
        let verifier = Verifier::new(vectors["secret"].as_str()).with_jwks(&vectors["jwks"].to_string()).unwrap();
        verifier.verify(vectors["tokens"][name].as_str().unwrap(), now(&vectors))
    }

    fn casey() -> Caller {
        Caller::User { id: Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap(), email: Some("casey@example.com".into()) }
    }

    #[test]
    fn a_user_token_signed_with_the_hs256_secret_is_accepted() {
        assert_eq!(verify("hs256_user"), Ok(casey()));
    }

    #[test]
    fn user_tokens_signed_with_the_jwks_es256_and_rs256_keys_are_accepted() {
        assert_eq!(verify("es256_user"), Ok(casey()));
        assert_eq!(verify("rs256_user"), Ok(casey()));
    }

    #[test]
    fn the_project_keys_become_anon_and_service_role_callers() {
        assert_eq!(verify("hs256_anon"), Ok(Caller::Anon));
        assert_eq!(verify("hs256_service_role"), Ok(Caller::ServiceRole));
    }

    #[test]
    fn an_audience_list_containing_authenticated_is_accepted() {
        assert_eq!(verify("audience_list"), Ok(casey()));
    }

    #[test]
    fn an_expiry_within_the_leeway_is_tolerated() {
        assert_eq!(verify("expired_within_leeway"), Ok(casey()));
    }

    #[test]
    fn every_bad_token_is_rejected_with_its_reason() {
        let cases = [
            ("hs256_wrong_secret", AuthError::BadSignature),
            ("alg_none", AuthError::UnsupportedAlgorithm("none".into())),
            ("hs256_signed_with_rsa_public_key", AuthError::BadSignature),
            ("rs256_header_hmac_signature", AuthError::BadSignature),
            ("expired", AuthError::Expired),
            ("not_yet_valid", AuthError::NotYetValid),
            ("no_expiry", AuthError::MissingExpiry),
            ("missing_sub", AuthError::MissingSubject),
            ("sub_not_a_uuid", AuthError::MissingSubject),
            ("wrong_audience", AuthError::WrongAudience),
            ("unknown_role", AuthError::UnknownRole("supabase_admin".into())),
            ("malformed_base64", AuthError::Malformed),
            ("malformed_json", AuthError::Malformed),
            ("es256_unknown_kid", AuthError::UnknownKey),
            ("es256_other_key_same_kid", AuthError::BadSignature),
            ("rs256_tampered", AuthError::BadSignature),
        ];
        for (name, expected) in cases {
            assert_eq!(verify(name), Err(expected), "{name}");
        }
    }

    #[test]
    fn without_an_hs256_secret_hs256_tokens_are_refused() {
        let vectors = vectors();
        let verifier = Verifier::new(None).with_jwks(&vectors["jwks"].to_string()).unwrap();
        assert_eq!(verifier.verify(vectors["tokens"]["hs256_user"].as_str().unwrap(), now(&vectors)), Err(AuthError::UnknownKey));
    }

    #[test]
    fn an_unreadable_jwks_document_is_an_error() {
        assert!(Verifier::new(None).with_jwks("{\"keys\": 3}").is_err());
    }

    #[test]
    fn an_auth_error_is_a_401_naming_the_problem() {
        let error = ApiError::from(AuthError::Expired);
        assert_eq!((error.status, error.code.as_ref(), error.message.as_str()), (401, "unauthorized", "The token has expired."));
    }
}

//! Verifies Supabase JWTs with jwt-compact and turns them into a typed [`Caller`].
//!
//! Keys: the project's legacy HS256 secret, and the asymmetric ES256 / RS256 keys of its JWKS
//! document (selected by `kid`). A token must carry a known algorithm for its key (no `none`, no
//! HS256/RS256 swap), be unexpired and already valid (with a small leeway), and name a role;
//! user tokens also need a UUID `sub` and the `authenticated` audience.
//!
//! HS256 is checked here with jwt-compact. ES256 and RS256 signatures are checked by a
//! [`SignatureCheck`]: WebCrypto in the workers (the platform's native code, far smaller than
//! elliptic-curve and RSA arithmetic compiled to wasm), jwt-compact's own in native tests.

use crate::error::ApiError;
use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, TimeOptions, UntrustedToken, ValidationError};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use uuid::Uuid;

/// Who is calling, as the verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anon,
    User { id: Uuid, email: Option<String> },
    ServiceRole,
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

/// The asymmetric algorithms a project's JWKS may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asymmetric {
    Es256,
    Rs256,
}

/// One public key of the project's JWKS, kept as its JSON for the signature checker.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: Option<String>,
    pub alg: Asymmetric,
    pub jwk: Value,
}

/// Checks an ES256 (raw r||s) or RS256 (PKCS#1 v1.5) signature of `message` with `key`.
#[allow(async_fn_in_trait)]
pub trait SignatureCheck {
    async fn verify(&self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool;
}

/// The keys a project signs tokens with.
pub struct Verifier {
    hs256: Option<Hs256Key>,
    keys: Vec<PublicKey>,
    leeway: Duration,
}

impl Verifier {
    /// Allowed clock difference between the token issuer and this worker.
    pub const LEEWAY_SECONDS: i64 = 30;

    pub fn new(hs256_secret: Option<&str>) -> Self {
        Self {
            hs256: hs256_secret.filter(|secret| !secret.is_empty()).map(|secret| Hs256Key::new(secret.as_bytes())),
            keys: Vec::new(),
            leeway: Duration::seconds(Self::LEEWAY_SECONDS),
        }
    }

    /// Adds the public keys of a JWKS document: P-256 keys for ES256 and RSA keys for RS256.
    /// Other keys (symmetric, other curves or algorithms) cannot verify project tokens and
    /// are ignored.
    pub fn with_jwks(mut self, document: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let document: Jwks = serde_json::from_str(document).map_err(|error| format!("unreadable JWKS: {error}"))?;
        for jwk in document.keys {
            let text = |field: &str| jwk.get(field).and_then(Value::as_str);
            let alg = match (text("kty"), text("crv"), text("alg")) {
                (Some("EC"), Some("P-256"), Some("ES256") | None) => Asymmetric::Es256,
                (Some("RSA"), _, Some("RS256") | None) => Asymmetric::Rs256,
                _ => continue,
            };
            self.keys.push(PublicKey { kid: text("kid").map(str::to_owned), alg, jwk });
        }
        Ok(self)
    }

    pub async fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
        check: &impl SignatureCheck,
    ) -> Result<Caller, AuthError> {
        let untrusted = UntrustedToken::new(token).map_err(|_| AuthError::Malformed)?;
        let algorithm = untrusted.algorithm().to_owned();
        let claims: Claims<SupabaseClaims> = match algorithm.as_str() {
            "HS256" => {
                let key = self.hs256.as_ref().ok_or(AuthError::UnknownKey)?;
                let token =
                    Hs256.validator::<SupabaseClaims>(key).validate(&untrusted).map_err(|error| match error {
                        ValidationError::InvalidSignature | ValidationError::MalformedSignature(_) => {
                            AuthError::BadSignature
                        }
                        ValidationError::AlgorithmMismatch { .. } => AuthError::UnsupportedAlgorithm(algorithm.clone()),
                        _ => AuthError::Malformed,
                    })?;
                token.into_parts().1
            }
            "ES256" | "RS256" => {
                let wanted = if algorithm == "ES256" { Asymmetric::Es256 } else { Asymmetric::Rs256 };
                let kid = untrusted.header().key_id.as_deref();
                let key = self
                    .keys
                    .iter()
                    .filter(|key| key.alg == wanted)
                    .find(|key| kid.is_none() || key.kid.as_deref() == kid)
                    .ok_or(AuthError::UnknownKey)?;
                let (message, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
                let signature = Base64UrlUnpadded::decode_vec(signature).map_err(|_| AuthError::BadSignature)?;
                if !check.verify(key, message.as_bytes(), &signature).await {
                    return Err(AuthError::BadSignature);
                }
                untrusted.deserialize_claims_unchecked().map_err(|_| AuthError::Malformed)?
            }
            other => return Err(AuthError::UnsupportedAlgorithm(other.to_owned())),
        };
        self.check_claims(&claims, now)
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
                let id =
                    custom.sub.as_deref().and_then(|sub| Uuid::try_parse(sub).ok()).ok_or(AuthError::MissingSubject)?;
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

    /// The native stand-in for WebCrypto: jwt-compact's own ES256 and RS256 (test builds only).
    struct NativeCheck;

    impl SignatureCheck for NativeCheck {
        async fn verify(&self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
            use jwt_compact::alg::{Es256, Rsa, RsaPublicKey};
            use jwt_compact::jwk::JsonWebKey;
            use jwt_compact::{Algorithm, AlgorithmSignature};
            let Ok(jwk) = serde_json::from_value::<JsonWebKey<'_>>(key.jwk.clone()) else { return false };
            match key.alg {
                Asymmetric::Es256 => {
                    match (p256::ecdsa::VerifyingKey::try_from(&jwk), AlgorithmSignature::try_from_slice(signature)) {
                        (Ok(public), Ok(signature)) => Es256.verify_signature(&signature, &public, message),
                        _ => false,
                    }
                }
                Asymmetric::Rs256 => {
                    match (RsaPublicKey::try_from(&jwk), AlgorithmSignature::try_from_slice(signature)) {
                        (Ok(public), Ok(signature)) => Rsa::rs256().verify_signature(&signature, &public, message),
                        _ => false,
                    }
                }
            }
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        // The checks never wait on anything: one poll finishes them.
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("verification waited on nothing"),
        }
    }

    fn verify(name: &str) -> Result<Caller, AuthError> {
        let vectors = vectors();
        let verifier = Verifier::new(vectors["secret"].as_str()).with_jwks(&vectors["jwks"].to_string()).unwrap();
        block_on(verifier.verify(vectors["tokens"][name].as_str().unwrap(), now(&vectors), &NativeCheck))
    }

    fn casey() -> Caller {
        Caller::User {
            id: Uuid::parse_str("11111111-1111-4111-8111-111111111111").unwrap(),
            email: Some("casey@example.com".into()),
        }
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
        assert_eq!(
            block_on(verifier.verify(vectors["tokens"]["hs256_user"].as_str().unwrap(), now(&vectors), &NativeCheck)),
            Err(AuthError::UnknownKey)
        );
    }

    #[test]
    fn an_unreadable_jwks_document_is_an_error() {
        assert!(Verifier::new(None).with_jwks("{\"keys\": 3}").is_err());
    }

    #[test]
    fn an_auth_error_is_a_401_naming_the_problem() {
        let error = ApiError::from(AuthError::Expired);
        assert_eq!(
            (error.status, error.code.as_ref(), error.message.as_str()),
            (401, "unauthorized", "The token has expired.")
        );
    }
}

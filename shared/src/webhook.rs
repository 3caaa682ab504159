//! Standard Webhooks (https://www.standardwebhooks.com): signing the platform's outbound
//! webhooks and verifying the Supabase Auth Send Email hook, with one MAC for both; and the
//! emails each `email_action_type` of the hook asks for, with the links Supabase Auth expects.

use crate::email::{Draft, Message};
use crate::error::ApiError;
use base64ct::{Base64, Encoding};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

/// How far a delivery's timestamp may be from the worker's clock, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A Standard Webhooks secret: `whsec_<base64 key>`, or as Supabase shows it, `v1,whsec_<base64 key>`.
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.trim().trim_start_matches("v1,").trim_start_matches("whsec_");
        Base64::decode_vec(encoded)
            .ok()
            .filter(|key| !key.is_empty())
            .map(Self)
            .ok_or_else(|| "the secret is not whsec_<base64>".into())
    }

    /// HMAC-SHA256 over `{id}.{timestamp}.{body}`: what every signature of a message signs.
    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header of an outbound message: `v1,<base64 signature>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let signature = self.mac(id, &timestamp.to_string(), body).finalize().into_bytes();
        format!("v1,{}", Base64::encode_string(&signature))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookError {
    MissingHeader(&'static str),
    BadTimestamp,
    Stale,
    BadSignature,
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::MissingHeader(name) => ApiError::unauthorized(format!("The {name} header is missing.")),
            WebhookError::BadTimestamp => ApiError::unauthorized("The webhook-timestamp header is not a Unix time."),
            WebhookError::Stale => {
                ApiError::unauthorized("The delivery's timestamp is outside the 5-minute tolerance.")
            }
            WebhookError::BadSignature => ApiError::unauthorized("No signature in webhook-signature matches the body."),
        }
    }
}

/// Verifies a delivery: the timestamp within tolerance, and at least one `v1,` signature of
/// `{id}.{timestamp}.{body}` matching (HMAC-SHA256, compared in constant time).
pub fn verify(
    secret: &WebhookSecret,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WebhookError> {
    let id = id.ok_or(WebhookError::MissingHeader("webhook-id"))?;
    let timestamp = timestamp.ok_or(WebhookError::MissingHeader("webhook-timestamp"))?;
    let signatures = signatures.ok_or(WebhookError::MissingHeader("webhook-signature"))?;
    let sent_at: i64 = timestamp.trim().parse().map_err(|_| WebhookError::BadTimestamp)?;
    if (now_unix - sent_at).abs() > TOLERANCE_SECONDS {
        return Err(WebhookError::Stale);
    }
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| Base64::decode_vec(encoded).ok())
        .any(|candidate| secret.mac(id, timestamp.trim(), body).verify_slice(&candidate).is_ok());
    matches.then_some(()).ok_or(WebhookError::BadSignature)
}

/// The hook's error answer, which Supabase Auth shows the user: `{"error": {"http_code", "message"}}`.
pub fn hook_error_body(error: &ApiError) -> Value {
    json!({ "error": { "http_code": error.status, "message": error.message } })
}

#[derive(Debug, Deserialize)]
pub struct HookPayload {
    pub user: HookUser,
    pub email_data: EmailData,
}

#[derive(Debug, Deserialize)]
pub struct HookUser {
    pub id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub new_email: Option<String>,
    #[serde(default)]
    pub user_metadata: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailData {
    pub token: String,
    pub token_hash: String,
    pub redirect_to: String,
    pub email_action_type: String,
    pub site_url: String,
    pub token_new: String,
    pub token_hash_new: String,
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl HookPayload {
    /// The emails to send. `auth_url` is the project's Auth URL (`https://<ref>.supabase.co/auth/v1`),
    /// whose `/verify` endpoint checks the token hash and redirects.
    pub fn messages(&self, auth_url: &str) -> Result<Vec<Message>, ApiError> {
        let data = &self.email_data;
        let link = |token_hash: &str| {
            format!(
                "{}/verify?token={}&type={}&redirect_to={}",
                auth_url.trim_end_matches('/'),
                encode_query_value(token_hash),
                encode_query_value(&data.email_action_type),
                encode_query_value(&data.redirect_to)
            )
        };
        let name = self.user.user_metadata.get("full_name").and_then(Value::as_str).unwrap_or_default();
        // Links also offer the one-time code, except for email changes, whose two codes belong
        // to different addresses.
        let code = (data.email_action_type != "email_change" && !data.token.is_empty())
            .then(|| format!("Or enter this code: {}", data.token));
        let draft = |to: &str, subject: &str, paragraph: String, action: Option<(&str, String)>| -> Message {
            let mut paragraphs = vec![paragraph];
            if action.is_some() {
                paragraphs.extend(code.clone());
            }
            Draft {
                to,
                subject: subject.to_owned(),
                greeting_name: name,
                paragraphs,
                action: action.as_ref().map(|(label, url)| (*label, url.as_str())),
            }
            .render()
        };
        let required = |value: &str, field: &str| {
            if value.is_empty() {
                Err(ApiError::bad_request(
                    "invalid_payload",
                    format!("email_data.{field} is required for {}.", data.email_action_type),
                ))
            } else {
                Ok(())
            }
        };
        let email = self.user.email.as_str();
        match data.email_action_type.as_str() {
            "signup" => {
                required(&data.token_hash, "token_hash")?;
                Ok(vec![draft(
                    email,
                    "Confirm your email address",
                    "Welcome to Call-an-Expert. Confirm your email address to finish signing up.".into(),
                    Some(("Confirm your email", link(&data.token_hash))),
                )])
            }
            "invite" => {
                required(&data.token_hash, "token_hash")?;
                Ok(vec![draft(
                    email,
                    "You are invited to Call-an-Expert",
                    "You have been invited to join Call-an-Expert.".into(),
                    Some(("Accept the invitation", link(&data.token_hash))),
                )])
            }
            "magiclink" => {
                required(&data.token_hash, "token_hash")?;
                Ok(vec![draft(
                    email,
                    "Your sign-in link",
                    "Use this link to sign in. It works once and expires soon.".into(),
                    Some(("Sign in", link(&data.token_hash))),
                )])
            }
            "recovery" => {
                required(&data.token_hash, "token_hash")?;
                Ok(vec![draft(
                    email,
                    "Reset your password",
                    "Someone asked to reset your password. If it was not you, ignore this email.".into(),
                    Some(("Reset your password", link(&data.token_hash))),
                )])
            }
            "email_change" => {
                required(&data.token_hash, "token_hash")?;
                let new_email = self.user.new_email.as_deref().filter(|new| !new.is_empty()).ok_or_else(|| {
                    ApiError::bad_request("invalid_payload", "user.new_email is required for email_change.")
                })?;
                let to_new = draft(
                    new_email,
                    "Confirm your new email address",
                    format!("Confirm that {new_email} is your new Call-an-Expert address."),
                    Some(("Confirm the new address", link(&data.token_hash))),
                );
                if data.token_hash_new.is_empty() {
                    return Ok(vec![to_new]);
                }
                // Secure email change: the current address confirms too. Supabase Auth pairs
                // token_hash_new with the current address and token_hash with the new one.
                let to_current = draft(
                    email,
                    "Confirm your email address change",
                    format!("Confirm that you want to change your address from {email} to {new_email}."),
                    Some(("Confirm the change", link(&data.token_hash_new))),
                );
                Ok(vec![to_current, to_new])
            }
            "reauthentication" => {
                required(&data.token, "token")?;
                Ok(vec![draft(
                    email,
                    "Your confirmation code",
                    format!("Enter this code to confirm it is you: {}", data.token),
                    None,
                )])
            }
            other => {
                Err(ApiError::bad_request("unknown_email_action_type", format!("Unknown email_action_type {other:?}.")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/webhook-vectors.json")).unwrap()
    }

    fn check(signature_field: &str, now: i64) -> Result<(), WebhookError> {
        let v = vectors();
        let secret = WebhookSecret::parse(v["secret"].as_str().unwrap()).unwrap();
        let timestamp = v["timestamp"].to_string();
        verify(
            &secret,
            v["id"].as_str(),
            Some(&timestamp),
            v[signature_field].as_str(),
            v["body"].as_str().unwrap().as_bytes(),
            now,
        )
    }

    #[test]
    fn a_delivery_signed_with_the_secret_verifies() {
        assert_eq!(check("signature", 1_893_456_000), Ok(()));
    }

    #[test]
    fn any_matching_signature_among_several_is_enough() {
        assert_eq!(check("signature_among_others", 1_893_456_000), Ok(()));
    }

    #[test]
    fn a_signature_with_another_key_or_over_another_body_is_refused() {
        assert_eq!(check("signature_other_key", 1_893_456_000), Err(WebhookError::BadSignature));
        let v = vectors();
        let secret = WebhookSecret::parse(v["secret"].as_str().unwrap()).unwrap();
        let tampered = v["body"].as_str().unwrap().replace("signup", "recovery");
        assert_eq!(
            verify(
                &secret,
                v["id"].as_str(),
                Some("1893456000"),
                v["signature"].as_str(),
                tampered.as_bytes(),
                1_893_456_000
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn the_timestamp_must_be_within_five_minutes_either_way() {
        assert_eq!(check("signature", 1_893_456_000 + 300), Ok(()));
        assert_eq!(check("signature", 1_893_456_000 + 301), Err(WebhookError::Stale));
        assert_eq!(check("signature", 1_893_456_000 - 301), Err(WebhookError::Stale));
    }

    #[test]
    fn a_signed_message_verifies_and_matches_the_independent_vector() {
        let v = vectors();
        let secret = WebhookSecret::parse(v["secret"].as_str().unwrap()).unwrap();
        let body = v["body"].as_str().unwrap().as_bytes();
        let signature = secret.sign(v["id"].as_str().unwrap(), v["timestamp"].as_i64().unwrap(), body);
        assert_eq!(signature, v["signature"].as_str().unwrap(), "the same bytes as node:crypto made");
        assert_eq!(
            verify(&secret, v["id"].as_str(), Some(&v["timestamp"].to_string()), Some(&signature), body, 1_893_456_000),
            Ok(())
        );
    }

    #[test]
    fn missing_headers_and_a_malformed_timestamp_are_named() {
        let secret = WebhookSecret::parse("v1,whsec_a2V5").unwrap();
        assert_eq!(
            verify(&secret, None, Some("1"), Some("v1,x"), b"{}", 1),
            Err(WebhookError::MissingHeader("webhook-id"))
        );
        assert_eq!(verify(&secret, Some("m"), Some("soon"), Some("v1,x"), b"{}", 1), Err(WebhookError::BadTimestamp));
        assert!(WebhookSecret::parse("v1,whsec_!!!").is_err());
    }

    fn payload(action: &str, extra: Value) -> HookPayload {
        let mut value = json!({
            "user": {"id": "11111111-1111-4111-8111-111111111111", "email": "casey@example.com", "new_email": "casey.new@example.com", "user_metadata": {"full_name": "Casey"}},
            "email_data": {"token": "123456", "token_hash": "hash-current", "redirect_to": "http://localhost:3000/done?a=1&b=2", "email_action_type": action, "site_url": "x", "token_new": "", "token_hash_new": ""}
        });
        if let (Some(data), Some(extra)) = (value["email_data"].as_object_mut(), extra.as_object()) {
            data.extend(extra.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn each_link_action_gets_the_verify_link_supabase_expects() {
        for action in ["signup", "invite", "magiclink", "recovery"] {
            let messages = payload(action, json!({})).messages("https://ref.supabase.co/auth/v1/").unwrap();
            assert_eq!(messages.len(), 1);
            assert_eq!(messages[0].to, "casey@example.com");
            let expected = format!("https://ref.supabase.co/auth/v1/verify?token=hash-current&type={action}&redirect_to=http%3A%2F%2Flocalhost%3A3000%2Fdone%3Fa%3D1%26b%3D2");
            assert!(messages[0].text.contains(&expected), "{action}: {}", messages[0].text);
            assert!(messages[0].text.contains("Or enter this code: 123456"));
        }
    }

    #[test]
    fn a_secure_email_change_writes_to_both_addresses_with_their_own_token() {
        let messages = payload("email_change", json!({"token_hash_new": "hash-for-current"}))
            .messages("https://ref.supabase.co/auth/v1")
            .unwrap();
        let to: Vec<&str> = messages.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(to, ["casey@example.com", "casey.new@example.com"]);
        assert!(messages[0].text.contains("token=hash-for-current&type=email_change"));
        assert!(messages[1].text.contains("token=hash-current&type=email_change"));
    }

    #[test]
    fn a_plain_email_change_writes_to_the_new_address_only() {
        let messages = payload("email_change", json!({})).messages("https://ref.supabase.co/auth/v1").unwrap();
        assert_eq!(messages.iter().map(|m| m.to.as_str()).collect::<Vec<_>>(), ["casey.new@example.com"]);
    }

    #[test]
    fn reauthentication_sends_the_code_without_a_link() {
        let messages = payload("reauthentication", json!({})).messages("https://ref.supabase.co/auth/v1").unwrap();
        assert!(messages[0].text.contains("123456") && !messages[0].text.contains("/verify"));
    }

    #[test]
    fn an_unknown_action_is_a_400_naming_it() {
        let error = payload("sms", json!({})).messages("https://x").unwrap_err();
        assert_eq!((error.status, error.code.as_ref()), (400, "unknown_email_action_type"));
        assert_eq!(
            hook_error_body(&error),
            json!({"error": {"http_code": 400, "message": "Unknown email_action_type \"sms\"."}})
        );
    }
}

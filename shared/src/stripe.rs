//! Stripe, pure: verifying the `Stripe-Signature` of its webhook deliveries, the requests the
//! workers make (form-encoded as Stripe parses them) and how its answers are read. The calls
//! themselves are made by `edge::Stripe`.

use crate::error::ApiError;
use crate::tokens::{from_hex, to_hex};
use crate::webhook::encode_query_value;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// How old a delivery's signature may be, as Stripe's libraries default to.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;
/// The API version the requests are written for, sent as `Stripe-Version`.
pub const API_VERSION: &str = "2024-06-20";

/// The endpoints' signing secrets (`whsec_...`): a comma-separated list, so that a secret can be
/// rolled and a Connect endpoint's secret sit beside the platform endpoint's.
pub struct WebhookSecrets(Vec<Vec<u8>>);

impl WebhookSecrets {
    pub fn parse(text: &str) -> Result<Self, String> {
        let secrets: Vec<Vec<u8>> =
            text.split(',').map(str::trim).filter(|secret| !secret.is_empty()).map(|s| s.as_bytes().to_vec()).collect();
        if secrets.is_empty() || secrets.iter().any(|secret| !secret.starts_with(b"whsec_")) {
            return Err("STRIPE_WEBHOOK_SECRET is one or more whsec_ secrets, comma-separated".into());
        }
        Ok(Self(secrets))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    Stale,
    NoMatch,
}

impl SignatureError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "The Stripe-Signature header is missing.",
            Self::Malformed => "The Stripe-Signature header is not t=<time>,v1=<signature>.",
            Self::Stale => "The delivery's signature is older than the 5-minute tolerance.",
            Self::NoMatch => "No v1 signature in Stripe-Signature matches the body.",
        }
    }
}

/// A `v1` value: the hex of an HMAC-SHA256.
fn signature_of(hex: &str) -> Option<[u8; 32]> {
    from_hex(hex)?.try_into().ok()
}

fn mac(secret: &[u8], timestamp: &str, payload: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// Verifies a delivery as Stripe documents it: `t=<unix time>` and one or more `v1=<hex>`, each
/// an HMAC-SHA256 of `<t>.<payload>` under the endpoint's secret; any `v1` matching any secret
/// (compared in constant time) within the tolerance accepts it. Returns the signature's time.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &WebhookSecrets,
    now_unix: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value),
            Some(("v1", value)) => signatures.push(signature_of(value).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    let signed_at: i64 = timestamp.parse().map_err(|_| SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now_unix - signed_at > TOLERANCE_SECONDS || signed_at - now_unix > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let mut matched = subtle::Choice::from(0);
    for secret in &secrets.0 {
        let expected = mac(secret, timestamp, payload);
        for candidate in &signatures {
            matched |= expected.ct_eq(candidate);
        }
    }
    if bool::from(matched) {
        Ok(signed_at)
    } else {
        Err(SignatureError::NoMatch)
    }
}

/// The `Stripe-Signature` header Stripe would send for `payload` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let signature = mac(secret.as_bytes(), &timestamp.to_string(), payload);
    format!("t={timestamp},v1={}", to_hex(&signature))
}

/// A request body as Stripe parses it: `application/x-www-form-urlencoded`, nested keys in
/// brackets (`metadata[session_id]=...`), lists as `key[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn field(mut self, key: &str, value: impl ToString) -> Self {
        self.0.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(key, value)| format!("{}={}", encode_query_value(key), encode_query_value(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// One call to the Stripe API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub path: String,
    pub form: Form,
    /// Same key and body: Stripe answers as the first time without doing it again.
    pub idempotency_key: Option<String>,
}

/// What create-session makes a PaymentIntent with (`service_role_payment_plan`).
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentPlan {
    pub session_id: Uuid,
    pub amount_cents: i64,
    /// Lower case, as Stripe writes it.
    pub currency: String,
    pub application_fee_cents: i64,
    pub destination: String,
    pub manual_capture: bool,
    pub description: String,
}

impl PaymentPlan {
    /// A destination charge to the expert's account with the platform fee as application fee;
    /// manual capture for a request. The key is the session's: one PaymentIntent per session.
    pub fn payment_intent(&self) -> Call {
        let form = Form::new()
            .field("amount", self.amount_cents)
            .field("currency", &self.currency)
            .field("capture_method", if self.manual_capture { "manual" } else { "automatic" })
            .field("payment_method_types[]", "card")
            .field("application_fee_amount", self.application_fee_cents)
            .field("transfer_data[destination]", &self.destination)
            .field("description", &self.description)
            .field("metadata[session_id]", self.session_id);
        Call {
            path: "/v1/payment_intents".into(),
            form,
            idempotency_key: Some(format!("payment_intent:{}", self.session_id)),
        }
    }
}

/// An express account for an expert, once (its key is the expert's).
pub fn create_account(expert_id: Uuid, email: &str) -> Call {
    let form = Form::new()
        .field("type", "express")
        .field("email", email)
        .field("capabilities[card_payments][requested]", "true")
        .field("capabilities[transfers][requested]", "true")
        .field("metadata[expert_id]", expert_id);
    Call { path: "/v1/accounts".into(), form, idempotency_key: Some(format!("account:{expert_id}")) }
}

/// A fresh onboarding link (links are single-use and short-lived, so never replayed).
pub fn account_link(account: &str, refresh_url: &str, return_url: &str) -> Call {
    let form = Form::new()
        .field("account", account)
        .field("refresh_url", refresh_url)
        .field("return_url", return_url)
        .field("type", "account_onboarding");
    Call { path: "/v1/account_links".into(), form, idempotency_key: None }
}

/// A payment operation the outbox holds (`service_role_claim_outbox`'s `payments`).
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentWork {
    pub id: Uuid,
    pub topic: String,
    pub idempotency_key: String,
    pub session_id: Uuid,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub amount_cents: Option<i64>,
    #[serde(default)]
    pub platform_fee_cents: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    /// For a fee refund: the application fee and the refund it follows.
    #[serde(default)]
    pub fee: Option<String>,
    #[serde(default)]
    pub refund: Option<String>,
}

impl PaymentWork {
    /// The Stripe call that carries this operation out, or why there is none.
    pub fn call(&self) -> Result<Call, String> {
        let payment_intent =
            || self.payment_intent.as_deref().ok_or_else(|| format!("{} names no PaymentIntent", self.topic));
        let amount =
            || self.amount_cents.filter(|amount| *amount > 0).ok_or_else(|| format!("{} has no amount", self.topic));
        let (path, form) = match self.topic.as_str() {
            // The charge comes back expanded: its application fee and transfer enter the ledger.
            "payment.capture" => (
                format!("/v1/payment_intents/{}/capture", payment_intent()?),
                Form::new().field("expand[]", "latest_charge"),
            ),
            "payment.release" => {
                let reason = match self.reason.as_deref() {
                    Some("requested_by_customer") => "requested_by_customer",
                    Some("duplicate") => "duplicate",
                    _ => "abandoned",
                };
                (
                    format!("/v1/payment_intents/{}/cancel", payment_intent()?),
                    Form::new().field("cancellation_reason", reason),
                )
            }
            // The transfer to the expert is reversed by the whole refund; the platform's share
            // comes back from the application fee in its own call (payment.fee_refund), with
            // the exact amount, so that Stripe's proportional rounding cannot move a cent.
            "payment.refund" => (
                "/v1/refunds".into(),
                Form::new()
                    .field("payment_intent", payment_intent()?)
                    .field("amount", amount()?)
                    .field("reverse_transfer", "true")
                    .field("refund_application_fee", "false")
                    .field("reason", "requested_by_customer")
                    .field("metadata[session_id]", self.session_id)
                    .field("metadata[platform_fee_cents]", self.platform_fee_cents.unwrap_or(0))
                    .field("expand[]", "charge")
                    .field("expand[]", "transfer_reversal"),
            ),
            "payment.fee_refund" => {
                let fee = self.fee.as_deref().ok_or("the application fee is not known yet")?;
                let mut form = Form::new().field("amount", amount()?).field("metadata[session_id]", self.session_id);
                if let Some(refund) = &self.refund {
                    form = form.field("metadata[refund]", refund);
                }
                (format!("/v1/application_fees/{fee}/refunds"), form)
            }
            topic => return Err(format!("no Stripe call for {topic}")),
        };
        Ok(Call { path, form, idempotency_key: Some(self.idempotency_key.clone()) })
    }
}

/// How Stripe answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 2xx: the object.
    Object(Value),
    /// An error Stripe will answer the same way again (4xx but 409, 429): retrying is pointless.
    /// Its object, when the error names one (`payment_intent` in a state error), still tells what is.
    Refused { message: String, object: Option<Value> },
    /// Stripe down, rate limiting, an idempotent request still in flight, or no answer: retry.
    Unavailable(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct StripeError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    payment_intent: Option<Value>,
}

pub fn read_answer(status: u16, body: &str) -> Answer {
    if (200..300).contains(&status) {
        return match serde_json::from_str::<Value>(body) {
            // Every Stripe object names its type; not all have an id (an account link has none).
            Ok(object) if object.get("object").is_some() => Answer::Object(object),
            _ => Answer::Unavailable(format!("Stripe answered {status} without an object")),
        };
    }
    let error = serde_json::from_str::<ErrorBody>(body).ok().map(|body| body.error);
    let described = error
        .as_ref()
        .map(|error| {
            let code = error.code.as_deref().or(error.kind.as_deref()).unwrap_or("error");
            format!("Stripe answered {status} {code}: {}", error.message.as_deref().unwrap_or(""))
        })
        .unwrap_or_else(|| format!("Stripe answered {status}"));
    match status {
        400..=499 if status != 409 && status != 429 => {
            Answer::Refused { message: described, object: error.and_then(|error| error.payment_intent) }
        }
        _ => Answer::Unavailable(described),
    }
}

impl Answer {
    /// The answer of a request that needed Stripe and did not get its object: 502 when Stripe
    /// refused, 503 (retry shortly) when it could not be reached. The cause goes to the log.
    pub fn into_error(self) -> ApiError {
        match self {
            Self::Refused { message, .. } => ApiError::upstream(
                "payment_provider_error",
                "The payment provider refused the request; nothing was changed.",
            )
            .because(message),
            Self::Unavailable(message) => ApiError::unavailable(
                "payment_provider_unavailable",
                "The payment provider cannot be reached right now; nothing was changed. Try again shortly.",
            )
            .with_retry_after(5)
            .because(message),
            Self::Object(_) => ApiError::internal().because("Stripe's object was taken for a failure"),
        }
    }
}

/// What the dispatcher records of a payment operation.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Reported {
    pub provider_ref: Option<String>,
    pub error: Option<String>,
    pub object: Option<Value>,
    pub permanent: bool,
}

impl From<Answer> for Reported {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Object(object) => Self {
                provider_ref: object.get("id").and_then(Value::as_str).map(str::to_owned),
                object: Some(object),
                ..Default::default()
            },
            Answer::Refused { message, object } => {
                Self { error: Some(message), object, permanent: true, ..Default::default() }
            }
            Answer::Unavailable(message) => Self { error: Some(message), ..Default::default() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "whsec_test_secret";

    fn secrets(text: &str) -> WebhookSecrets {
        WebhookSecrets::parse(text).unwrap()
    }

    // Computed with node:crypto:
    // createHmac('sha256', 'whsec_test_secret').update('1700000000.{"id":"evt_1"}').digest('hex')
    const VECTOR: &str = "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

    #[test]
    fn a_signature_made_the_way_stripe_makes_it_verifies_and_gives_its_time() {
        assert_eq!(sign(SECRET, 1_700_000_000, br#"{"id":"evt_1"}"#), VECTOR);
        assert_eq!(verify(Some(VECTOR), br#"{"id":"evt_1"}"#, &secrets(SECRET), 1_700_000_100), Ok(1_700_000_000));
    }

    #[test]
    fn any_of_several_v1_signatures_and_any_of_several_secrets_may_match() {
        let good = sign("whsec_second", 1_700_000_000, b"{}");
        let (_, v1) = good.split_once(",v1=").unwrap();
        let header = format!("t=1700000000,v1={},v0=ignored,v1={v1}", "0".repeat(64));
        assert_eq!(
            verify(Some(&header), b"{}", &secrets("whsec_first, whsec_second"), 1_700_000_000),
            Ok(1_700_000_000)
        );
    }

    #[test]
    fn a_changed_body_a_wrong_secret_a_stale_or_future_time_and_a_malformed_header_are_refused() {
        let header = sign(SECRET, 1_700_000_000, b"{}");
        assert_eq!(verify(Some(&header), b"{ }", &secrets(SECRET), 1_700_000_000), Err(SignatureError::NoMatch));
        assert_eq!(verify(Some(&header), b"{}", &secrets("whsec_other"), 1_700_000_000), Err(SignatureError::NoMatch));
        assert_eq!(verify(Some(&header), b"{}", &secrets(SECRET), 1_700_000_301), Err(SignatureError::Stale));
        assert_eq!(verify(Some(&header), b"{}", &secrets(SECRET), 1_699_999_699), Err(SignatureError::Stale));
        assert_eq!(
            verify(Some(&header), b"{}", &secrets(SECRET), 1_700_000_300),
            Ok(1_700_000_000),
            "the tolerance's edge"
        );
        assert_eq!(verify(None, b"{}", &secrets(SECRET), 0), Err(SignatureError::Missing));
        assert_eq!(verify(Some("v1=abc"), b"{}", &secrets(SECRET), 0), Err(SignatureError::Malformed));
        assert_eq!(
            verify(Some("t=1700000000"), b"{}", &secrets(SECRET), 1_700_000_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(verify(Some("t=soon,v1=00"), b"{}", &secrets(SECRET), 0), Err(SignatureError::Malformed));
    }

    #[test]
    fn secrets_must_all_be_whsec() {
        assert!(WebhookSecrets::parse("").is_err());
        assert!(WebhookSecrets::parse("whsec_a,sk_live_b").is_err());
        assert!(WebhookSecrets::parse("whsec_a, whsec_b").is_ok());
    }

    #[test]
    fn forms_encode_nested_keys_and_lists_as_stripe_parses_them() {
        let form = Form::new().field("metadata[session_id]", "a b&c").field("expand[]", "charge").field("amount", 1500);
        assert_eq!(form.encode(), "metadata%5Bsession_id%5D=a%20b%26c&expand%5B%5D=charge&amount=1500");
    }

    fn plan(manual: bool) -> PaymentPlan {
        serde_json::from_value(json!({
            "session_id": "55555555-5555-4555-8555-555555555503", "amount_cents": 9000, "currency": "usd", "application_fee_cents": 900,
            "destination": "acct_1", "manual_capture": manual, "description": "60-minute session with Rae Hooks"
        }))
        .unwrap()
    }

    #[test]
    fn a_payment_intent_is_a_destination_charge_with_the_fee_keyed_by_its_session() {
        let call = plan(true).payment_intent();
        assert_eq!(call.path, "/v1/payment_intents");
        assert_eq!(call.idempotency_key.as_deref(), Some("payment_intent:55555555-5555-4555-8555-555555555503"));
        let body = call.form.encode();
        for expected in [
            "amount=9000",
            "currency=usd",
            "capture_method=manual",
            "application_fee_amount=900",
            "transfer_data%5Bdestination%5D=acct_1",
            "metadata%5Bsession_id%5D=55555555-5555-4555-8555-555555555503",
        ] {
            assert!(body.contains(expected), "{expected} in {body}");
        }
        assert!(plan(false).payment_intent().form.encode().contains("capture_method=automatic"));
    }

    fn work(topic: &str, extra: Value) -> PaymentWork {
        let mut value = json!({ "id": "aaaaaaaa-0000-4000-8000-000000000001", "topic": topic, "idempotency_key": format!("{topic}:pi_1"),
                                "session_id": "55555555-5555-4555-8555-555555555503", "payment_intent": "pi_1" });
        value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn each_operation_is_its_stripe_call_under_its_own_key() {
        let capture = work("payment.capture", json!({})).call().unwrap();
        assert_eq!(
            (capture.path.as_str(), capture.idempotency_key.as_deref()),
            ("/v1/payment_intents/pi_1/capture", Some("payment.capture:pi_1"))
        );
        let release = work("payment.release", json!({ "reason": "requested_by_customer" })).call().unwrap();
        assert_eq!(release.path, "/v1/payment_intents/pi_1/cancel");
        assert_eq!(release.form.encode(), "cancellation_reason=requested_by_customer");
        let refund = work("payment.refund", json!({ "amount_cents": 4500, "platform_fee_cents": 450 })).call().unwrap();
        let body = refund.form.encode();
        assert!(
            body.contains("amount=4500")
                && body.contains("reverse_transfer=true")
                && body.contains("refund_application_fee=false")
        );
        assert!(body.contains("metadata%5Bplatform_fee_cents%5D=450"));
        let fee = work("payment.fee_refund", json!({ "amount_cents": 450, "fee": "fee_1", "refund": "re_1" }))
            .call()
            .unwrap();
        assert_eq!(fee.path, "/v1/application_fees/fee_1/refunds");
        assert_eq!(
            fee.form.encode(),
            "amount=450&metadata%5Bsession_id%5D=55555555-5555-4555-8555-555555555503&metadata%5Brefund%5D=re_1"
        );
        assert!(
            work("payment.fee_refund", json!({ "amount_cents": 450 })).call().is_err(),
            "no call before the fee is known"
        );
        assert!(work("payment.refund", json!({ "amount_cents": 0 })).call().is_err(), "no refund of nothing");
    }

    #[test]
    fn answers_are_objects_refusals_to_stop_at_or_failures_to_retry() {
        let object = read_answer(200, r#"{"id": "pi_1", "object": "payment_intent", "status": "succeeded"}"#);
        assert_eq!(Reported::from(object).provider_ref.as_deref(), Some("pi_1"));
        let state = read_answer(
            400,
            r#"{"error": {"code": "payment_intent_unexpected_state", "message": "already canceled", "type": "invalid_request_error",
                                        "payment_intent": {"id": "pi_1", "object": "payment_intent", "status": "canceled"}}}"#,
        );
        let reported = Reported::from(state);
        assert!(reported.permanent);
        assert_eq!(reported.object.unwrap()["status"], "canceled");
        assert!(reported.error.unwrap().contains("payment_intent_unexpected_state"));
        for status in [409, 429, 500, 503] {
            assert!(
                matches!(read_answer(status, r#"{"error": {"message": "try later"}}"#), Answer::Unavailable(_)),
                "{status}"
            );
        }
        assert!(matches!(read_answer(200, "<html>"), Answer::Unavailable(_)));
        assert!(matches!(
            read_answer(200, r#"{"object": "account_link", "url": "https://connect.stripe.com/x"}"#),
            Answer::Object(_)
        ));
        assert!(matches!(read_answer(200, r#"{"ok": true}"#), Answer::Unavailable(_)), "not a Stripe object");
    }

    #[test]
    fn a_request_that_needed_stripe_answers_502_when_refused_and_503_when_unreachable() {
        let refused = read_answer(402, r#"{"error": {"code": "card_declined", "message": "declined"}}"#).into_error();
        assert_eq!((refused.status, refused.code.as_ref()), (502, "payment_provider_error"));
        let down = Answer::Unavailable("connection refused".into()).into_error();
        assert_eq!((down.status, down.code.as_ref(), down.retry_after), (503, "payment_provider_unavailable", Some(5)));
        assert!(!down.body().to_string().contains("connection refused"), "the cause stays in the log");
    }
}

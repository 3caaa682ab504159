//! The outside services the dispatcher calls, over the Workers fetch API: Resend for email,
//! Daily.co for video rooms, and operators' webhook endpoints. Base URLs are configurable so
//! that local runs use the stand-in. Each call reports what the dispatcher records: the
//! provider's reference on success, the reason otherwise.

use super::runtime::{self, HeaderLines};
use super::Runtime;
use crate::email::Message;
use crate::outbox::{BatchAnswer, Outcome, RoomWork, WebhookWork};
use crate::stripe::{self, PaymentWork};
use crate::webhook::WebhookSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::js_sys;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, AbortSignal};

/// How long an endpoint has to answer a webhook.
const WEBHOOK_TIMEOUT_MS: u32 = 10_000;
/// How long Stripe has to answer; an idempotent call that timed out is simply made again.
const STRIPE_TIMEOUT_MS: u32 = 15_000;

/// A provider's answer: its status and body.
struct Received {
    status: u16,
    text: String,
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

/// A fetched response, its body read by the runtime itself: one call for the whole text rather
/// than worker::Response's chunk-by-chunk reading of the stream through wasm, which costs more
/// than the request it follows on small answers.
pub struct Fetched(web_sys::Response);

impl Fetched {
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    pub async fn text(self) -> Result<String, String> {
        let promise = self.0.text().map_err(js_error)?;
        JsFuture::from(promise).await.map_err(js_error)?.as_string().ok_or_else(|| "a body that is not text".into())
    }

    /// The body as a stream, for passing it on unread.
    pub fn into_body(self) -> Option<web_sys::ReadableStream> {
        self.0.body()
    }
}

pub(super) fn js_error(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|error| String::from(error.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "a JavaScript error".into())
}

async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
    signal: Option<&AbortSignal>,
) -> Result<Received, String> {
    send_lines(method, url, &HeaderLines::from(headers), body.as_deref(), signal).await
}

/// `fetch(url, init)` with the body read as text, in one promise.
async fn send_lines(
    method: &str,
    url: &str,
    lines: &HeaderLines,
    body: Option<&str>,
    signal: Option<&AbortSignal>,
) -> Result<Received, String> {
    let promise = runtime::send_for_text(method, url, lines.as_str(), body, signal.cloned());
    let answer: runtime::TextAnswer =
        JsFuture::from(promise).await.map_err(|error| format!("{url}: {}", js_error(error)))?.unchecked_into();
    Ok(Received { status: answer.status(), text: answer.text() })
}

/// `fetch(url, init)` on the runtime's global scope, the body unread.
pub async fn fetch(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<Fetched, String> {
    fetch_lines(method, url, &HeaderLines::from(headers), body).await
}

async fn fetch_lines(method: &str, url: &str, lines: &HeaderLines, body: Option<&str>) -> Result<Fetched, String> {
    let response = JsFuture::from(runtime::send(method, url, lines.as_str(), body, None))
        .await
        .map_err(|error| format!("{url}: {}", js_error(error)))?;
    Ok(Fetched(response.unchecked_into()))
}

/// A request some builder made (postgrest-rs's, for PostgREST), with its headers as the fetch
/// API takes them.
pub struct Built {
    request: reqwest::Request,
    lines: HeaderLines,
}

impl From<reqwest::Request> for Built {
    fn from(request: reqwest::Request) -> Self {
        let mut lines = HeaderLines::default();
        for (name, value) in request.headers() {
            if let Ok(value) = value.to_str() {
                lines.push(name.as_str(), value);
            }
        }
        Self { request, lines }
    }
}

impl Built {
    /// postgrest-rs gives every request a body, empty for reads; fetch refuses one on GET.
    fn body(&self) -> Option<&str> {
        self.request.body().filter(|body| !body.is_empty())
    }

    /// The answer, its body unread.
    pub async fn send(&self) -> Result<Fetched, String> {
        let (method, url) = (self.request.method().as_str(), self.request.url());
        fetch_lines(method, url, &self.lines, self.body()).await
    }

    /// The answer's status and text.
    pub async fn send_for_text(&self) -> Result<(u16, String), String> {
        let (method, url) = (self.request.method().as_str(), self.request.url());
        let answer = send_lines(method, url, &self.lines, self.body(), None).await?;
        Ok((answer.status, answer.text))
    }
}

pub struct Resend {
    base_url: String,
    api_key: String,
    from: String,
}

#[derive(Deserialize)]
struct ProviderError {
    #[serde(default)]
    name: String,
}

impl Resend {
    pub fn from_env(runtime: &impl Runtime) -> Result<Self, crate::ApiError> {
        Ok(Self {
            base_url: runtime.var("RESEND_API_URL")?.trim_end_matches('/').to_owned(),
            api_key: runtime.var("RESEND_API_KEY")?,
            from: runtime.var("EMAIL_FROM")?,
        })
    }

    /// The sender's address, without its display name.
    pub fn from_address(&self) -> &str {
        self.from.rsplit_once('<').map_or(self.from.as_str(), |(_, rest)| rest.trim_end_matches('>').trim())
    }

    /// Sends one email; the idempotency key makes a retried send deliver it once.
    pub async fn send(&self, message: &Message, idempotency_key: &str) -> Result<String, String> {
        let authorization = format!("Bearer {}", self.api_key);
        let headers = [
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", idempotency_key),
        ];
        let answer = send(
            "POST",
            &format!("{}/emails", self.base_url),
            &headers,
            Some(message.to_resend(&self.from).to_string()),
            None,
        )
        .await?;
        #[derive(Deserialize)]
        struct Sent {
            id: String,
        }
        match answer.status {
            200..=299 => serde_json::from_str::<Sent>(&answer.text)
                .map(|sent| sent.id)
                .map_err(|_| "the email provider answered without an id".into()),
            status => Err(format!("email provider answered {status}: {}", excerpt(&answer.text))),
        }
    }

    /// Sends up to 100 emails in one call under `idempotency_key`: the same key and body again
    /// answers the same ids without sending; the same key with another body means the first
    /// batch went out (Resend's `invalid_idempotent_request`).
    pub async fn send_batch(&self, messages: &[Message], idempotency_key: &str) -> BatchAnswer {
        let body = Value::Array(messages.iter().map(|message| message.to_resend(&self.from)).collect()).to_string();
        let authorization = format!("Bearer {}", self.api_key);
        let headers = [
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
            ("idempotency-key", idempotency_key),
        ];
        let answer = match send("POST", &format!("{}/emails/batch", self.base_url), &headers, Some(body), None).await {
            Ok(answer) => answer,
            Err(error) => return BatchAnswer::Failed(error),
        };
        #[derive(Deserialize)]
        struct Sent {
            id: String,
        }
        #[derive(Deserialize)]
        struct Batch {
            data: Vec<Sent>,
        }
        match answer.status {
            200..=299 => serde_json::from_str::<Batch>(&answer.text)
                .map(|batch| BatchAnswer::Sent(batch.data.into_iter().map(|sent| sent.id).collect()))
                .unwrap_or_else(|_| BatchAnswer::Failed(format!("unreadable batch answer: {}", excerpt(&answer.text)))),
            409 if serde_json::from_str::<ProviderError>(&answer.text)
                .is_ok_and(|error| error.name == "invalid_idempotent_request") =>
            {
                BatchAnswer::AlreadySent
            }
            status => BatchAnswer::Failed(format!("email provider answered {status}: {}", excerpt(&answer.text))),
        }
    }
}

pub struct Daily {
    base_url: String,
    api_key: String,
}

impl Daily {
    pub fn from_env(runtime: &impl Runtime) -> Result<Self, crate::ApiError> {
        Ok(Self {
            base_url: runtime.var("DAILY_API_URL")?.trim_end_matches('/').to_owned(),
            api_key: runtime.var("DAILY_API_KEY")?,
        })
    }

    /// Makes or removes a session's room. Both are idempotent: a room that already exists is
    /// made, one already gone is removed.
    pub async fn carry_out(&self, work: &RoomWork) -> Outcome {
        let authorization = format!("Bearer {}", self.api_key);
        let headers = [("authorization", authorization.as_str()), ("content-type", "application/json")];
        let answer = if work.topic == "room.delete" {
            send("DELETE", &format!("{}/rooms/{}", self.base_url, work.room_name), &headers, None, None).await
        } else {
            // Private, usable from 15 minutes before the start until an hour after the end.
            let body = json!({ "name": work.room_name, "privacy": "private", "properties": { "nbf": work.not_before, "exp": work.expires, "enable_chat": true } });
            send("POST", &format!("{}/rooms", self.base_url), &headers, Some(body.to_string()), None).await
        };
        match answer {
            Err(error) => Outcome::failed(work.id, error),
            Ok(answer) => {
                let already = match work.topic.as_str() {
                    "room.delete" => answer.status == 404,
                    _ => answer.status == 400 && answer.text.contains("already exists"),
                };
                if (200..300).contains(&answer.status) || already {
                    Outcome::done(work.id, format!("{} {}", work.topic, work.room_name))
                } else {
                    Outcome::failed(
                        work.id,
                        format!("video provider answered {}: {}", answer.status, excerpt(&answer.text)),
                    )
                }
            }
        }
    }
}

/// Delivers one outbound webhook, signed as Standard Webhooks asks, within a timeout.
pub async fn deliver_webhook(work: &WebhookWork) -> Outcome {
    let secret = match WebhookSecret::parse(&work.secret) {
        Ok(secret) => secret,
        Err(error) => return Outcome::failed(work.id, error),
    };
    let body = work.body.to_string();
    let timestamp = (super::now_millis() / 1000) as i64;
    let signature = secret.sign(&work.webhook_id, timestamp, body.as_bytes());
    let sent_at = timestamp.to_string();
    let headers = [
        ("content-type", "application/json"),
        ("user-agent", "Call-an-Expert-Webhooks/1"),
        ("webhook-id", work.webhook_id.as_str()),
        ("webhook-timestamp", sent_at.as_str()),
        ("webhook-signature", signature.as_str()),
    ];
    let signal = AbortSignal::timeout_with_u32(WEBHOOK_TIMEOUT_MS);
    let started = super::now_millis();
    let answer = send("POST", &work.url, &headers, Some(body), Some(&signal)).await;
    let latency_ms = Some(super::now_millis().saturating_sub(started));
    match answer {
        Err(error) => Outcome { latency_ms, ..Outcome::failed(work.id, error) },
        Ok(answer) => {
            let mut outcome = if (200..300).contains(&answer.status) {
                Outcome::done(work.id, format!("HTTP {}", answer.status))
            } else {
                Outcome::failed(work.id, format!("endpoint answered {}", answer.status))
            };
            outcome.status_code = Some(answer.status);
            outcome.latency_ms = latency_ms;
            outcome.response_excerpt = Some(excerpt(&answer.text)).filter(|text| !text.is_empty());
            outcome
        }
    }
}

/// The Stripe API, with the platform's secret key.
pub struct Stripe {
    base_url: String,
    secret_key: String,
}

impl Stripe {
    pub fn from_env(runtime: &impl Runtime) -> Result<Self, crate::ApiError> {
        Ok(Self {
            base_url: runtime
                .optional_var("STRIPE_API_URL")
                .unwrap_or_else(|| "https://api.stripe.com".into())
                .trim_end_matches('/')
                .to_owned(),
            secret_key: runtime.var("STRIPE_SECRET_KEY")?,
        })
    }

    /// Makes one call: form-encoded, under its idempotency key, pinned to the API version the
    /// requests are written for.
    pub async fn send(&self, call: &stripe::Call) -> stripe::Answer {
        let authorization = format!("Bearer {}", self.secret_key);
        let mut headers = vec![
            ("authorization", authorization.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
            ("stripe-version", stripe::API_VERSION),
        ];
        if let Some(key) = &call.idempotency_key {
            headers.push(("idempotency-key", key.as_str()));
        }
        let signal = AbortSignal::timeout_with_u32(STRIPE_TIMEOUT_MS);
        let url = format!("{}{}", self.base_url, call.path);
        match send("POST", &url, &headers, Some(call.form.encode()), Some(&signal)).await {
            Ok(answer) => stripe::read_answer(answer.status, &answer.text),
            Err(error) => stripe::Answer::Unavailable(error),
        }
    }

    /// Carries out one payment operation of the outbox.
    pub async fn carry_out(&self, work: &PaymentWork) -> Outcome {
        match work.call() {
            Ok(call) => Outcome::reported(work.id, self.send(&call).await.into()),
            Err(reason) => Outcome::failed(work.id, reason),
        }
    }
}

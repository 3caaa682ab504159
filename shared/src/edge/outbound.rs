//! The two SaaS APIs the functions call, over the Workers fetch API: Resend for email and
//! Daily.co for video rooms. Base URLs are configurable so that local runs use the stand-in.

use super::Runtime;
use crate::email::Message;
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Fetch, Headers, Method, Request, RequestInit};

/// Sends a JSON request; any transport failure or non-2xx answer is an upstream error.
async fn send_json(
    method: Method,
    url: &str,
    api_key: &str,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
    upstream: &'static str,
) -> Result<Value, ApiError> {
    let failure = |cause: String| ApiError::upstream(upstream, format!("The {} did not answer as expected; nothing was changed.", upstream.replace('_', " "))).because(cause);
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|error| failure(error.to_string()));
    set("authorization", &format!("Bearer {api_key}"))?;
    set("content-type", "application/json")?;
    if let Some(key) = idempotency_key {
        set("idempotency-key", key)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = body {
        init.with_body(Some(body.to_string().into()));
    }
    let request = Request::new_with_init(url, &init).map_err(|error| failure(error.to_string()))?;
    let mut response = Fetch::Request(request).send().await.map_err(|error| failure(error.to_string()))?;
    let status = response.status_code();
    let text = response.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(failure(format!("{url} answered {status}: {}", text.chars().take(300).collect::<String>())));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub struct Resend {
    base_url: String,
    api_key: String,
    from: String,
}

#[derive(Deserialize)]
struct Sent {
    id: String,
}

impl Resend {
    pub fn from_env(runtime: &impl Runtime) -> Result<Self, ApiError> {
        Ok(Self {
            base_url: runtime.var("RESEND_API_URL")?.trim_end_matches('/').to_owned(),
            api_key: runtime.var("RESEND_API_KEY")?,
            from: runtime.var("EMAIL_FROM")?,
        })
    }

    /// Sends one email; the idempotency key makes a retried send deliver it once.
    pub async fn send(&self, message: &Message, idempotency_key: &str) -> Result<String, ApiError> {
        let body = message.to_resend(&self.from);
        let answer = send_json(Method::Post, &format!("{}/emails", self.base_url), &self.api_key, Some(&body), Some(idempotency_key), "email_provider").await?;
        serde_json::from_value::<Sent>(answer).map(|sent| sent.id).map_err(|_| ApiError::upstream("email_provider", "The email provider answered without an id."))
    }

    /// Sends up to 100 emails in one call; the ids come back in the same order.
    pub async fn send_batch(&self, messages: &[Message], idempotency_key: &str) -> Result<Vec<String>, ApiError> {
        let body = Value::Array(messages.iter().map(|message| message.to_resend(&self.from)).collect());
        let answer = send_json(Method::Post, &format!("{}/emails/batch", self.base_url), &self.api_key, Some(&body), Some(idempotency_key), "email_provider").await?;
        #[derive(Deserialize)]
        struct Batch {
            data: Vec<Sent>,
        }
        let batch: Batch = serde_json::from_value(answer).map_err(|_| ApiError::upstream("email_provider", "The email provider's batch answer was unreadable."))?;
        Ok(batch.data.into_iter().map(|sent| sent.id).collect())
    }
}

pub struct Daily {
    base_url: String,
    api_key: String,
}

#[derive(Debug, Deserialize)]
pub struct Room {
    pub name: String,
    pub url: String,
}

impl Daily {
    pub fn from_env(runtime: &impl Runtime) -> Result<Self, ApiError> {
        Ok(Self { base_url: runtime.var("DAILY_API_URL")?.trim_end_matches('/').to_owned(), api_key: runtime.var("DAILY_API_KEY")? })
    }

    /// A private room usable from 15 minutes before the start until an hour after the end.
    pub async fn create_room(&self, name: &str, not_before: i64, expires: i64) -> Result<Room, ApiError> {
        let body = json!({ "name": name, "privacy": "private", "properties": { "nbf": not_before, "exp": expires, "enable_chat": true } });
        let answer = send_json(Method::Post, &format!("{}/rooms", self.base_url), &self.api_key, Some(&body), None, "video_provider").await?;
        serde_json::from_value(answer).map_err(|_| ApiError::upstream("video_provider", "The video provider's answer was unreadable."))
    }

    pub async fn delete_room(&self, name: &str) -> Result<(), ApiError> {
        send_json(Method::Delete, &format!("{}/rooms/{name}", self.base_url), &self.api_key, None, None, "video_provider").await.map(|_| ())
    }
}

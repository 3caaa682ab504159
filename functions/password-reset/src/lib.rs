//! password-reset: request a reset link by email (the same answer whether or not the account
//! exists, rate limited per address and per client), then complete it with a new password.

use serde::Deserialize;
use serde_json::json;
use shared::edge::dispatch::Scope;
use shared::edge::{self, json_reply, Call, IncomingRequest, OutgoingResponse, Reply, Route, Runtime, Service};
use shared::rpc::{CompletePasswordReset, HitRateLimit, IssuePasswordReset};
use shared::tokens::{self, sha256_hex, PresentedToken, TokenKey, TokenKind};
use shared::validate::{Email, Password, Violations};
use shared::ApiError;
use worker::{event, Context, Delay, Env, Method, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    openapi: include_str!("../../../openapi/password-reset.json"),
    routes: &[
        Route { method: Method::Post, path: "/request", handler: |call| Box::pin(request_reset(call)) },
        Route { method: Method::Post, path: "/complete", handler: |call| Box::pin(complete_reset(call)) },
    ],
};

#[event(fetch)]
async fn fetch(req: IncomingRequest, env: Env, ctx: Context) -> Result<OutgoingResponse> {
    edge::serve(req, env, ctx, &SERVICE).await
}

/// Per address and per client, per hour.
const PER_EMAIL_PER_HOUR: i64 = 5;
const PER_CLIENT_PER_HOUR: i64 = 20;
/// Every answer to /request takes at least this long, so timing tells nothing either.
const RESPONSE_FLOOR_MS: u64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    email: Option<String>,
}

/// The outbox row of the email the database queued with the token or the new password.
async fn request_reset(mut call: Call) -> Reply {
    let started = edge::now_millis();
    let request: ResetRequest = call.json().await?;
    let mut violations = Violations::new();
    let email =
        violations.require("email", request.email).and_then(|email| violations.check("email", Email::parse(&email)));
    violations.finish()?;
    let email = email.ok_or_else(ApiError::internal)?;
    let db = call.db_as_service()?;

    // Buckets name the address by its hash: rate-limit rows hold no personal data.
    let email_digest = sha256_hex(email.as_str().as_bytes());
    let client = call.client_ip().unwrap_or_else(|| "unknown".into());
    for (bucket, max_hits) in [
        (format!("password-reset:email:{email_digest}"), PER_EMAIL_PER_HOUR),
        (format!("password-reset:client:{client}"), PER_CLIENT_PER_HOUR),
    ] {
        let wait = db.call(&HitRateLimit { bucket, max_hits, window_seconds: 3600 }).await?;
        if wait > 0 {
            return Err(
                ApiError::new(429, "rate_limited", "Too many reset requests: try again later.").with_retry_after(wait)
            );
        }
    }

    // The email with the link is queued with the token and sent once the answer has gone.
    let token = token_key(&call)?.issue(TokenKind::PasswordReset);
    let queued = db
        .call(&IssuePasswordReset {
            email: email.as_str().to_owned(),
            token_id: token.id,
            token_hash: token.hash_hex.clone(),
            context: call.audit_context(),
        })
        .await?;
    if let Some(outbox_id) = queued.and_then(|queued| queued.outbox_id) {
        call.dispatch_after_response(Scope::Rows(vec![outbox_id]));
    }
    let elapsed = edge::now_millis().saturating_sub(started);
    if elapsed < RESPONSE_FLOOR_MS {
        Delay::from(std::time::Duration::from_millis(RESPONSE_FLOOR_MS - elapsed)).await;
    }
    json_reply(202, &json!({ "message": "If an account uses that address, a reset link is on its way." }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteRequest {
    token: Option<String>,
    password: Option<String>,
}

async fn complete_reset(mut call: Call) -> Reply {
    let request: CompleteRequest = call.json().await?;
    let mut violations = Violations::new();
    let presented = violations
        .require("token", request.token)
        .and_then(|token| violations.check("token", PresentedToken::parse(&token)));
    let password = violations.require("password", request.password);
    violations.finish()?;
    let (presented, password) = presented.zip(password).ok_or_else(ApiError::internal)?;

    let db = call.db_as_service()?;
    let stored = tokens::check(&db, TokenKind::PasswordReset, &presented, call.now()).await?;
    // The policy is checked against the account's address; a weak password costs no attempt.
    let mut violations = Violations::new();
    let email = Email::parse(&stored.email).ok();
    let password = violations.check("password", Password::parse(&password, email.as_ref()));
    violations.finish()?;
    let password = password.ok_or_else(ApiError::internal)?;

    let queued = db
        .call(&CompletePasswordReset {
            token_id: presented.id,
            password: password.expose().to_owned(),
            context: call.audit_context(),
        })
        .await?;
    if let Some(outbox_id) = queued.outbox_id {
        call.dispatch_after_response(Scope::Rows(vec![outbox_id]));
    }
    json_reply(200, &json!({ "password_changed": true, "signed_out_everywhere": true }))
}

fn token_key(call: &Call) -> std::result::Result<TokenKey, ApiError> {
    TokenKey::parse(&call.var("ACCOUNT_TOKEN_KEY")?).map_err(|error| ApiError::internal().because(error))
}

//! auth-email-verify: the Supabase Auth Send Email hook, and the platform's own email
//! verification flow (request a link while signed in, confirm it once).
//!
//! The hook is the one place that calls the email provider before answering: Supabase Auth
//! waits for it and retries a delivery answered 503, and its one-time codes must not be stored
//! in the outbox. The verification email goes through the outbox like every other.

use serde::Deserialize;
use serde_json::json;
use shared::edge::dispatch::Scope;
use shared::edge::{
    self, json_reply, log_error, Call, IncomingRequest, OutgoingResponse, Reply, Resend, Route, Runtime, Service,
};
use shared::rpc::{ConfirmEmail, ForgetWebhook, IssueEmailVerification, RecordWebhook};
use shared::tokens::{self, PresentedToken, TokenKey, TokenKind};
use shared::validate::Violations;
use shared::webhook::{self, hook_error_body, HookPayload, WebhookSecret};
use shared::ApiError;
use worker::{event, Context, Env, Method, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    openapi: include_str!("../../../openapi/auth-email-verify.json"),
    routes: &[
        Route { method: Method::Post, path: "/hook", handler: |call| Box::pin(send_email_hook(call)) },
        Route { method: Method::Post, path: "/request", handler: |call| Box::pin(request_verification(call)) },
        Route { method: Method::Post, path: "/confirm", handler: |call| Box::pin(confirm(call)) },
    ],
};

#[event(fetch)]
async fn fetch(req: IncomingRequest, env: Env, ctx: Context) -> Result<OutgoingResponse> {
    edge::serve(req, env, ctx, &SERVICE).await
}

/// Answers in the hook contract's format: `{}` on success, `{"error": {"http_code", "message"}}`
/// otherwise, which Supabase Auth shows the user.
async fn send_email_hook(mut call: Call) -> Reply {
    match deliver_hook(&mut call).await {
        Ok(()) => json_reply(200, &json!({})),
        Err(error) => {
            if error.status >= 500 {
                log_error(&call.request_id, &error.code, error.cause.as_deref().unwrap_or(&error.message));
            }
            let answer = json_reply(error.status, &hook_error_body(&error))?;
            Ok(match error.retry_after {
                Some(seconds) => answer.with_header("retry-after", &seconds.to_string()),
                None => answer,
            })
        }
    }
}

async fn deliver_hook(call: &mut Call) -> std::result::Result<(), ApiError> {
    let secret = WebhookSecret::parse(&call.var("SEND_EMAIL_HOOK_SECRET")?)
        .map_err(|error| ApiError::internal().because(error))?;
    let body = call.json_bytes().await?;
    let id = call.header("webhook-id");
    webhook::verify(
        &secret,
        id.as_deref(),
        call.header("webhook-timestamp").as_deref(),
        call.header("webhook-signature").as_deref(),
        &body,
        call.now().timestamp(),
    )?;
    let id = id.unwrap_or_default();
    let payload: HookPayload = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("invalid_payload", format!("The hook payload is not readable: {error}."))
    })?;
    let messages = payload.messages(&format!("{}/auth/v1", call.var("SUPABASE_URL")?.trim_end_matches('/')))?;

    let db = call.db_as_service()?;
    let fresh = db.call(&RecordWebhook { webhook_id: id.clone() }).await?;
    if !fresh {
        return Err(ApiError::conflict("replayed", "This delivery was already processed."));
    }
    let resend = Resend::from_env(call)?;
    for (index, message) in messages.iter().enumerate() {
        if let Err(error) = resend.send(message, &format!("auth-hook/{id}/{index}")).await {
            // Forget the delivery so that Supabase Auth's retry (same id) is processed; the
            // idempotency keys keep any email already accepted from going out twice.
            // Best effort: if even this fails, the retry is refused as a replay and Supabase Auth reports it.
            let _ = db.call(&ForgetWebhook { webhook_id: id.clone() }).await;
            return Err(ApiError::unavailable("email_provider", "The email could not be sent right now; try again.")
                .with_retry_after(2)
                .because(error));
        }
    }
    Ok(())
}

/// A signed-in user asks for a verification link (at most 3 an hour); the email is queued
/// with the token and sent once the answer has gone.
async fn request_verification(call: Call) -> Reply {
    let (user_id, _) = call.require_user().await?;
    let key = TokenKey::parse(&call.var("ACCOUNT_TOKEN_KEY")?).map_err(|error| ApiError::internal().because(error))?;
    let token = key.issue(TokenKind::EmailVerification);
    let issued = call
        .db_as_service()?
        .call(&IssueEmailVerification {
            user_id,
            token_id: token.id,
            token_hash: token.hash_hex.clone(),
            context: call.audit_context(),
        })
        .await?;
    if let Some(outbox_id) = issued.outbox_id {
        call.dispatch_after_response(Scope::Rows(vec![outbox_id]));
    }
    json_reply(202, &json!({ "sent_to": issued.email, "expires_at": issued.expires_at }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    token: Option<String>,
}

/// Confirms the address with the link's token: once, before it expires, within 5 attempts.
async fn confirm(mut call: Call) -> Reply {
    let request: ConfirmRequest = call.json().await?;
    let mut violations = Violations::new();
    let presented = violations
        .require("token", request.token)
        .and_then(|token| violations.check("token", PresentedToken::parse(&token)));
    violations.finish()?;
    let presented = presented.ok_or_else(ApiError::internal)?;
    let db = call.db_as_service()?;
    tokens::check(&db, TokenKind::EmailVerification, &presented, call.now()).await?;
    let confirmed = db.call(&ConfirmEmail { token_id: presented.id, context: call.audit_context() }).await?;
    json_reply(200, &json!({ "confirmed": true, "user_id": confirmed.user_id }))
}

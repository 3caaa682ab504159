//! payment-events: Stripe's webhook receiver, and the experts' Connect onboarding links.
//!
//! `POST /` takes Stripe's events: the `Stripe-Signature` is verified over the exact bytes
//! before anything is read (HMAC-SHA256 of `timestamp.payload`, any `v1` of any configured
//! secret, 5-minute tolerance, constant time), then the event goes, unparsed, to the database,
//! which stores it once per event id and applies it to the ledger and the session, in any order
//! and as often as Stripe sends it; what it cannot apply yet it keeps and the dispatcher retries.
//! The answer is quick: 200 once stored, 400 for a forged, stale or replayed delivery (which
//! Stripe need not retry), 503 when the database is down (which it should).
//!
//! `POST /onboarding-link` gives a signed-in expert a Stripe Connect (Express) onboarding link,
//! creating their account once.

use serde::Deserialize;
use serde_json::json;
use shared::edge::dispatch::Scope;
use shared::edge::{self, json_reply, Call, IncomingRequest, OutgoingResponse, Reply, Route, Runtime, Service, Stripe};
use shared::rpc::{PayoutAccountOf, ReceiveStripeEvent, RecordStripeObjects};
use shared::stripe::{self, Answer, WebhookSecrets};
use shared::ApiError;
use worker::{event, Context, Env, Method, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    openapi: include_str!("../../../openapi/payment-events.json"),
    routes: &[
        Route { method: Method::Post, path: "/", handler: |call| Box::pin(receive(call)) },
        Route { method: Method::Post, path: "/onboarding-link", handler: |call| Box::pin(onboarding_link(call)) },
    ],
};

#[event(fetch)]
async fn fetch(req: IncomingRequest, env: Env, ctx: Context) -> Result<OutgoingResponse> {
    edge::serve(req, env, ctx, &SERVICE).await
}

/// Stripe's events are small, but a charge with its refunds listed can pass the usual 64 KiB.
const MAX_EVENT_BYTES: usize = 512 * 1024;

async fn receive(mut call: Call) -> Reply {
    let payload = call.json_bytes_up_to(MAX_EVENT_BYTES).await?;
    let secrets = WebhookSecrets::parse(&call.var("STRIPE_WEBHOOK_SECRET")?)
        .map_err(|problem| ApiError::internal().because(problem))?;
    let signed_at =
        stripe::verify(call.header("stripe-signature").as_deref(), &payload, &secrets, call.now().timestamp())
            .map_err(|error| ApiError::bad_request("invalid_signature", error.message()))?;
    // The event reaches the database as Stripe signed it: the worker only checks it is JSON.
    let event = String::from_utf8(payload)
        .ok()
        .and_then(|text| serde_json::value::RawValue::from_string(text).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_json", "The body is not JSON."))?;
    let received = call.db_as_service()?.call(&ReceiveStripeEvent { event, signed_at }).await?;
    if received.status == "applied" {
        if let Some(session) = received.session_id {
            call.dispatch_after_response(Scope::Session(session));
        }
    }
    json_reply(200, &json!({ "received": true, "event": received.event, "status": received.status }))
}

#[derive(Deserialize)]
struct AccountLink {
    url: String,
    expires_at: i64,
}

async fn onboarding_link(call: Call) -> Reply {
    let (user, _) = call.require_user().await?;
    let service = call.db_as_service()?;
    let account = service.call(&PayoutAccountOf { expert_id: user }).await?;
    let account = account
        .ok_or_else(|| ApiError::forbidden("Only an expert can set up payouts: create your expert profile first."))?;
    let stripe = Stripe::from_env(&call)?;
    let account_id = match &account.stripe_account_id {
        Some(id) => id.clone(),
        None => match stripe.send(&stripe::create_account(account.expert_id, &account.email)).await {
            Answer::Object(created) => {
                let id = created.get("id").and_then(|id| id.as_str()).unwrap_or_default().to_owned();
                service.call(&RecordStripeObjects { objects: vec![created] }).await?;
                id
            }
            failed => return Err(failed.into_error()),
        },
    };
    let site = call.var("SITE_URL")?;
    let site = site.trim_end_matches('/');
    let link = stripe::account_link(
        &account_id,
        &format!("{site}/expert/payouts?onboarding=refresh"),
        &format!("{site}/expert/payouts?onboarding=done"),
    );
    let link: AccountLink = match stripe.send(&link).await {
        Answer::Object(link) => serde_json::from_value(link)
            .map_err(|error| ApiError::internal().because(format!("Stripe's account link: {error}")))?,
        failed => return Err(failed.into_error()),
    };
    json_reply(
        200,
        &json!({
            "url": link.url, "expires_at": link.expires_at,
            "account": { "id": account_id, "charges_enabled": account.charges_enabled, "payouts_enabled": account.payouts_enabled,
                         "details_submitted": account.details_submitted },
        }),
    )
}

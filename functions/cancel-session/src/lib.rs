//! cancel-session: cancels a session for either participant, refunding by the policy.
//!
//! The session is read with the caller's own token, so a stranger learns nothing (404). The
//! refund is computed by the shared crate with the worker's clock and written, with the status
//! and the audit row, in one database transaction that also queues the side effects (the Stripe refund
//! or the release of an authorisation, both participants told, the room removed, webhooks),
//! carried out once the answer has gone.
//! Cancelling again returns the same answer and writes nothing more.

use serde::Deserialize;
use serde_json::json;
use shared::booking::{CancelRequest, Cancellation, Side};
use shared::edge::dispatch::Scope;
use shared::edge::{self, json_reply, Call, IncomingRequest, OutgoingResponse, Reply, Route, Runtime, Service};
use shared::refund::{self, Charge, NotCancellable};
use shared::rpc::CancelSession;
use shared::ApiError;
use uuid::Uuid;
use worker::{event, Context, Env, Method, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    openapi: include_str!("../../../openapi/cancel-session.json"),
    routes: &[Route { method: Method::Post, path: "/", handler: |call| Box::pin(cancel_session(call)) }],
};

#[event(fetch)]
async fn fetch(req: IncomingRequest, env: Env, ctx: Context) -> Result<OutgoingResponse> {
    edge::serve(req, env, ctx, &SERVICE).await
}

#[derive(Deserialize)]
struct Session {
    id: Uuid,
    client_id: Uuid,
    #[serde(deserialize_with = "shared::validate::rfc3339::deserialize")]
    starts_at: chrono::DateTime<chrono::Utc>,
    status: String,
    amount_cents: i64,
    platform_fee_cents: i64,
    expert_payout_cents: i64,
}

const COLUMNS: &str = "id,client_id,starts_at,status,amount_cents,platform_fee_cents,expert_payout_cents";

async fn cancel_session(mut call: Call) -> Reply {
    let (caller, token) = call.require_user().await?;
    let request: CancelRequest = call.json().await?;
    let cancellation = Cancellation::parse(request)?;

    let db = call.db_as(Some(&token));
    let query = db.from("sessions").select(COLUMNS).eq("id", cancellation.session_id.to_string());
    let mut found: Vec<Session> = db.run(query).await?;
    let session = found.pop().ok_or_else(|| ApiError::not_found("No such session."))?;
    let side = if session.client_id == caller { Side::Client } else { Side::Expert };
    let charge = charge_of(&session);

    let refund = match session.status.as_str() {
        "awaiting_payment" | "requested" | "confirmed" => refund::refund(charge, session.starts_at, side, call.now())
            .map_err(|NotCancellable::AlreadyStarted| {
            ApiError::conflict("already_started", "A session cannot be cancelled once it has started.")
        })?,
        // Already cancelled (the database answers with the stored result) or not cancellable
        // (the database refuses with the reason): nothing to compute.
        _ => refund::split(charge, 0, 0),
    };
    let outcome = call
        .db_as_service()?
        .call(&CancelSession {
            session_id: session.id,
            actor_id: caller,
            reason: cancellation.reason.clone(),
            refund_percent: refund.percent,
            refund_amount_cents: refund.amount_cents,
            refund_fee_cents: refund.platform_fee_cents,
            refund_payout_cents: refund.expert_payout_cents,
            context: call.audit_context(),
        })
        .await?;
    let cancelled = outcome.session;
    let stored =
        refund::split(charge, cancelled.refund_percent.unwrap_or(0), cancelled.refund_amount_cents.unwrap_or(0));
    if outcome.newly_cancelled {
        call.dispatch_after_response(Scope::Session(cancelled.id));
    }
    json_reply(
        200,
        &json!({
            "session_id": cancelled.id,
            "status": cancelled.status,
            "cancelled_at": cancelled.cancelled_at,
            "cancelled_by": cancelled.cancelled_by,
            "refund": { "percent": stored.percent, "amount_cents": stored.amount_cents, "platform_fee_cents": stored.platform_fee_cents,
                        "expert_payout_cents": stored.expert_payout_cents, "currency": cancelled.currency },
        }),
    )
}

fn charge_of(session: &Session) -> Charge {
    // A confirmed session was charged (captured, or its capture queued); a hold or a request
    // has at most an authorisation, released rather than refunded.
    let captured = session.status == "confirmed";
    Charge {
        amount_cents: session.amount_cents,
        platform_fee_cents: session.platform_fee_cents,
        expert_payout_cents: session.expert_payout_cents,
        captured,
    }
}

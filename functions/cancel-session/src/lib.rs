//! cancel-session: cancels a session for either participant, refunding by the policy.
//!
//! The session is read with the caller's own token, so a stranger learns nothing (404). The
//! refund is computed by the shared crate with the worker's clock and written, with the status,
//! ledger and audit rows, in one database transaction. Cancelling again returns the same answer
//! and writes nothing more.

use serde::Deserialize;
use serde_json::json;
use shared::booking::{CancelRequest, Cancellation, Side};
use shared::edge::{self, json_reply, log_error, Call, Daily, Reply, Resend, Route, Runtime, Service};
use shared::email::SessionContacts;
use shared::refund::{self, Charge, NotCancellable, Refund};
use shared::ApiError;
use uuid::Uuid;
use worker::{event, Context, Env, Method, Request, Response, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    routes: &[Route { method: Method::Post, path: "/", handler: |call| Box::pin(cancel_session(call)) }],
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    edge::serve(req, env, &SERVICE).await
}

#[derive(Deserialize)]
struct Session {
    id: Uuid,
    client_id: Uuid,
    starts_at: chrono::DateTime<chrono::Utc>,
    status: String,
    amount_cents: i64,
    platform_fee_cents: i64,
    expert_payout_cents: i64,
    currency: String,
    room_name: Option<String>,
    cancelled_by: Option<Uuid>,
    cancelled_at: Option<chrono::DateTime<chrono::Utc>>,
    refund_amount_cents: Option<i64>,
    refund_percent: Option<u8>,
    #[serde(default)]
    payments: Vec<Payment>,
}

#[derive(Deserialize)]
struct Payment {
    kind: String,
    status: String,
}

#[derive(Deserialize)]
struct Outcome {
    session: Session,
    newly_cancelled: bool,
}

const COLUMNS: &str = "id,client_id,starts_at,status,amount_cents,platform_fee_cents,expert_payout_cents,currency,room_name,cancelled_by,cancelled_at,refund_amount_cents,refund_percent";

async fn cancel_session(mut call: Call) -> Reply {
    let (caller, token) = call.require_user().await?;
    let request: CancelRequest = call.json().await?;
    let cancellation = Cancellation::parse(request)?;

    let db = call.db_as(Some(&token));
    let query = db.from("sessions").select(format!("{COLUMNS},payments(kind,status)")).eq("id", cancellation.session_id.to_string());
    let mut found: Vec<Session> = db.run(query).await?;
    let session = found.pop().ok_or_else(|| ApiError::not_found("No such session."))?;
    let side = if session.client_id == caller { Side::Client } else { Side::Expert };
    let charge = charge_of(&session);

    let refund = match session.status.as_str() {
        "requested" | "confirmed" => refund::refund(charge, session.starts_at, side, call.now())
            .map_err(|NotCancellable::AlreadyStarted| ApiError::conflict("already_started", "A session cannot be cancelled once it has started."))?,
        // Already cancelled (the database answers with the stored result) or not cancellable
        // (the database refuses with the reason): nothing to compute.
        _ => refund::split(charge, 0, 0),
    };
    let outcome: Outcome = call
        .db_as_service()?
        .rpc("service_role_cancel_session", &json!({
            "session_id": session.id, "actor_id": caller, "reason": cancellation.reason, "refund_percent": refund.percent,
            "refund_amount_cents": refund.amount_cents, "refund_fee_cents": refund.platform_fee_cents,
            "refund_payout_cents": refund.expert_payout_cents, "context": call.audit_context(),
        }))
        .await?;
    let cancelled = outcome.session;
    let stored = refund::split(charge, cancelled.refund_percent.unwrap_or(0), cancelled.refund_amount_cents.unwrap_or(0));
    if outcome.newly_cancelled {
        follow_up(&call, &cancelled, side, &stored, &cancellation.reason).await;
    }
    json_reply(200, &json!({
        "session_id": cancelled.id,
        "status": cancelled.status,
        "cancelled_at": cancelled.cancelled_at,
        "cancelled_by": cancelled.cancelled_by,
        "refund": { "percent": stored.percent, "amount_cents": stored.amount_cents, "platform_fee_cents": stored.platform_fee_cents,
                    "expert_payout_cents": stored.expert_payout_cents, "currency": cancelled.currency },
    }))
}

fn charge_of(session: &Session) -> Charge {
    // A charge is captured when it succeeded; a request never confirmed has only a pending one.
    let captured = session.payments.iter().any(|payment| payment.kind == "charge" && payment.status == "succeeded");
    Charge { amount_cents: session.amount_cents, platform_fee_cents: session.platform_fee_cents, expert_payout_cents: session.expert_payout_cents, captured }
}

/// Best effort once the cancellation is recorded: free the room, tell the other participant.
async fn follow_up(call: &Call, session: &Session, side: Side, refund: &Refund, reason: &str) {
    if let Some(room) = &session.room_name {
        if let Err(error) = async { Daily::from_env(call)?.delete_room(room).await }.await {
            log_error(&call.request_id, "room_delete_failed", &format!("room {room}: {}", error.cause.unwrap_or(error.message)));
        }
    }
    let notified = async {
        let contacts: SessionContacts = call.db_as_service()?.rpc("service_role_session_contacts", &json!({ "session_id": session.id })).await?;
        let to = side.other();
        let message = contacts.cancellation_notice(to, refund, &session.currency, reason);
        Resend::from_env(call)?.send(&message, &format!("session-cancelled/{}/{}", session.id, to.as_str())).await
    };
    if let Err(error) = notified.await {
        log_error(&call.request_id, "cancel_email_failed", &error.cause.unwrap_or(error.message));
    }
}

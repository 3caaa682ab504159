//! create-session: books a paid video session with an expert.
//!
//! Prices with the shared crate, creates the Daily.co room under the new session's id, then
//! books in one database transaction (which re-checks rate, availability and overlaps). If the
//! booking fails the room is deleted, so nothing is left half-made; if the room cannot be
//! created nothing is booked.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::booking::{Booking, BookingRequest, Side};
use shared::edge::{self, json_reply, log_error, Call, Daily, Reply, Resend, Route, Runtime, Service};
use shared::email::SessionContacts;
use shared::pricing::Price;
use shared::validate::{CommissionBps, Currency, MinorUnits};
use shared::ApiError;
use uuid::Uuid;
use worker::{event, Context, Env, Method, Request, Response, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    routes: &[Route { method: Method::Post, path: "/", handler: |call| Box::pin(create_session(call)) }],
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    edge::serve(req, env, &SERVICE).await
}

/// An active expert's rate and the commission the server applies to them.
#[derive(Deserialize)]
struct Quote {
    hourly_rate_cents: i64,
    currency: String,
    commission_bps: i64,
}

async fn create_session(mut call: Call) -> Reply {
    let (client_id, token) = call.require_user().await?;
    let request: BookingRequest = call.json().await?;
    let booking = Booking::parse(request, call.now(), call.booking_window())?;
    let db = call.db_as(Some(&token));

    let quote: Option<Quote> = db.rpc("expert_quote", &json!({ "expert_id": booking.expert_id })).await?;
    let quote = quote.ok_or_else(|| ApiError::not_found("No such expert."))?;
    if booking.expert_id == client_id {
        return Err(ApiError::conflict("self_booking", "An expert cannot book a session with themselves."));
    }
    let currency = Currency::parse(&quote.currency).map_err(|rule| ApiError::internal().because(format!("stored currency: {rule}")))?;
    let rate = MinorUnits::parse(quote.hourly_rate_cents).map_err(|rule| ApiError::internal().because(format!("stored rate: {rule}")))?;
    let commission = CommissionBps::parse(quote.commission_bps).map_err(|rule| ApiError::internal().because(format!("server commission: {rule}")))?;
    let price = Price::quote(rate, booking.duration, commission, currency).map_err(|overflow| ApiError::internal().because(overflow.to_string()))?;
    if booking.expected_amount_cents.is_some_and(|expected| expected != price.amount_cents) {
        return Err(ApiError::conflict("price_changed", "The expert's rate changed since the quote.").with_detail("price", json!(price)));
    }

    let session_id = Uuid::new_v4();
    let daily = Daily::from_env(&call)?;
    let room_name = format!("cae-{session_id}");
    let room = daily
        .create_room(&room_name, (booking.starts_at - chrono::Duration::minutes(15)).timestamp(), (booking.ends_at() + chrono::Duration::hours(1)).timestamp())
        .await?;

    // The database prices again with its own rate and commission and refuses any difference.
    let args = json!({
        "session_id": session_id, "expert_id": booking.expert_id, "starts_at": booking.starts_at.to_rfc3339(),
        "duration_minutes": booking.duration.get(), "hourly_rate_cents": price.hourly_rate_cents, "commission_bps": price.commission_bps,
        "amount_cents": price.amount_cents, "platform_fee_cents": price.platform_fee_cents, "expert_payout_cents": price.expert_payout_cents,
        "currency": currency.as_str(), "notes": booking.notes, "context": call.audit_context(),
    });
    let session: Value = match db.rpc("book_session", &args).await {
        Ok(session) => session,
        Err(error) => {
            if let Err(cleanup) = daily.delete_room(&room.name).await {
                log_error(&call.request_id, "room_cleanup_failed", &format!("room {} of a failed booking: {}", room.name, cleanup.cause.unwrap_or(cleanup.message)));
            }
            return Err(error);
        }
    };

    notify_both(&call, session_id, &price).await;
    json_reply(201, &json!({ "session": session, "price": price }))
}

/// Best effort: the booking stands whether or not the emails go out; failures are logged.
async fn notify_both(call: &Call, session_id: Uuid, price: &Price) {
    let sent = async {
        let contacts: SessionContacts = call.db_as_service()?.rpc("service_role_session_contacts", &json!({ "session_id": session_id })).await?;
        let resend = Resend::from_env(call)?;
        for side in [Side::Client, Side::Expert] {
            resend.send(&contacts.booking_confirmation(side, price), &format!("session-booked/{session_id}/{}", side.as_str())).await?;
        }
        Ok::<(), ApiError>(())
    };
    if let Err(error) = sent.await {
        log_error(&call.request_id, "booking_email_failed", &error.cause.unwrap_or(error.message));
    }
}

//! create-session: books a paid video session with an expert.
//!
//! Prices with the shared crate, then books in one database transaction, which prices again,
//! re-checks availability and overlaps, and queues the session's side effects (the video room,
//! both participants' emails, webhooks) in the outbox. They are carried out once the answer has
//! gone, so the client waits on no provider; the cron's dispatcher finishes whatever is left.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::booking::{Booking, BookingRequest};
use shared::edge::dispatch::Scope;
use shared::edge::{self, json_reply, Call, Reply, Route, Runtime, Service};
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
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    edge::serve(req, env, ctx, &SERVICE).await
}

/// An active expert's rate and the commission the server applies to them.
#[derive(Deserialize)]
struct Quote {
    hourly_rate_cents: i64,
    currency: String,
    commission_bps: i64,
}

#[derive(Deserialize)]
struct Booked {
    id: Uuid,
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
    let currency = Currency::parse(&quote.currency)
        .map_err(|rule| ApiError::internal().because(format!("stored currency: {rule}")))?;
    let rate = MinorUnits::parse(quote.hourly_rate_cents)
        .map_err(|rule| ApiError::internal().because(format!("stored rate: {rule}")))?;
    let commission = CommissionBps::parse(quote.commission_bps)
        .map_err(|rule| ApiError::internal().because(format!("server commission: {rule}")))?;
    let price = Price::quote(rate, booking.duration, commission, currency)
        .map_err(|overflow| ApiError::internal().because(overflow.to_string()))?;
    if booking.expected_amount_cents.is_some_and(|expected| expected != price.amount_cents) {
        return Err(ApiError::conflict("price_changed", "The expert's rate changed since the quote.")
            .with_detail("price", json!(price)));
    }

    // The database prices again with its own rate and commission and refuses any difference.
    let args = json!({
        "expert_id": booking.expert_id, "starts_at": booking.starts_at.to_rfc3339(), "duration_minutes": booking.duration.get(),
        "hourly_rate_cents": price.hourly_rate_cents, "commission_bps": price.commission_bps, "amount_cents": price.amount_cents,
        "platform_fee_cents": price.platform_fee_cents, "expert_payout_cents": price.expert_payout_cents,
        "currency": currency.as_str(), "notes": booking.notes, "context": call.audit_context(),
    });
    let session: Value = db.rpc("book_session", &args).await?;
    let booked: Booked = serde_json::from_value(session.clone())
        .map_err(|error| ApiError::internal().because(format!("book_session answered: {error}")))?;
    call.dispatch_after_response(Scope::Session(booked.id));
    json_reply(201, &json!({ "session": session, "price": price }))
}

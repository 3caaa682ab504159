//! create-session: books a paid video session with an expert.
//!
//! Prices with the shared crate, then books in one database transaction, which prices again and
//! re-checks availability and overlaps; the slot is held as awaiting_payment. Then it creates the
//! session's Stripe PaymentIntent (a destination charge to the expert's Connect account, the
//! platform fee as application fee, manual capture for a request) and answers with its
//! `client_secret`, for the browser to confirm the payment with Stripe.js. Stripe's events move
//! the session on (payment-events). If Stripe cannot be reached, the booking is removed and the
//! answer is 503: no session without a payment to make.

use serde::Deserialize;
use serde_json::json;
use shared::booking::{Booking, BookingRequest};
use shared::edge::{self, json_reply, Call, IncomingRequest, OutgoingResponse, Reply, Route, Runtime, Service, Stripe};
use shared::pricing::Price;
use shared::rpc::{AbandonBooking, BookSession, ExpertQuote, PaymentPlanOf, RecordStripeObjects};
use shared::stripe::Answer;
use shared::validate::{CommissionBps, Currency, MinorUnits};
use shared::ApiError;
use worker::{event, Context, Env, Method, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    openapi: include_str!("../../../openapi/create-session.json"),
    routes: &[Route { method: Method::Post, path: "/", handler: |call| Box::pin(create_session(call)) }],
};

#[event(fetch)]
async fn fetch(req: IncomingRequest, env: Env, ctx: Context) -> Result<OutgoingResponse> {
    edge::serve(req, env, ctx, &SERVICE).await
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    client_secret: String,
    status: String,
}

async fn create_session(mut call: Call) -> Reply {
    let (client_id, token) = call.require_user().await?;
    let request: BookingRequest = call.json().await?;
    let booking = Booking::parse(request, call.now(), call.booking_window())?;
    let db = call.db_as(Some(&token));

    let quote = db.call(&ExpertQuote { expert_id: booking.expert_id }).await?;
    let quote = quote.ok_or_else(|| ApiError::not_found("No such expert."))?;
    if booking.expert_id == client_id {
        return Err(ApiError::conflict("self_booking", "An expert cannot book a session with themselves."));
    }
    if !quote.accepts_payments {
        return Err(ApiError::conflict("payments_not_enabled", "This expert cannot take payments yet."));
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
    let stripe = Stripe::from_env(&call)?;

    // The database prices again with its own rate and commission and refuses any difference.
    let session = db
        .call(&BookSession {
            expert_id: booking.expert_id,
            starts_at: booking.starts_at,
            duration_minutes: i64::from(booking.duration.get()),
            hourly_rate_cents: price.hourly_rate_cents,
            commission_bps: i64::from(price.commission_bps),
            amount_cents: price.amount_cents,
            platform_fee_cents: price.platform_fee_cents,
            expert_payout_cents: price.expert_payout_cents,
            currency: currency.as_str().to_owned(),
            notes: booking.notes.clone(),
            context: call.audit_context(),
        })
        .await?;

    let service = call.db_as_service()?;
    let plan = service.call(&PaymentPlanOf { session_id: session.id }).await?;
    let plan = plan.ok_or_else(|| ApiError::internal().because("the held session has no payment plan"))?;
    let intent = match stripe.send(&plan.payment_intent()).await {
        Answer::Object(object) => object,
        failed => {
            let error = failed.into_error();
            let reason = error.cause.clone().unwrap_or_default();
            service.call(&AbandonBooking { session_id: session.id, reason, context: call.audit_context() }).await?;
            return Err(error);
        }
    };
    service.call(&RecordStripeObjects { objects: vec![intent.clone()] }).await?;
    let payment: PaymentIntent = serde_json::from_value(intent)
        .map_err(|error| ApiError::internal().because(format!("Stripe's PaymentIntent: {error}")))?;
    json_reply(
        201,
        &json!({
            "session": session,
            "price": price,
            "payment": {
                "provider": "stripe", "payment_intent_id": payment.id, "client_secret": payment.client_secret,
                "status": payment.status, "pay_by": session.payment_due_at,
            },
        }),
    )
}

//! booking-reminders: the dispatcher. Moves sessions along in time and sends the 24 h and 1 h
//! reminders of confirmed sessions.
//!
//! Runs from the cron trigger (every 5 minutes) and from `POST /run`, which only the service
//! role may call. Each run first expires requests left unanswered at their start and completes
//! sessions past their end, then claims due reminders under a lease, sends them in batches
//! through the email provider with an idempotency key, records the outcomes, and stops before
//! its subrequest budget would be exceeded, leaving the rest to the next run.

use serde_json::json;
use shared::edge::{self, json_reply, log_line, Call, Reply, Resend, Route, Runtime, Service, System};
use shared::reminders::{batch_key, Advanced, Budget, Claim, Recorded, Summary, DEFAULT_BUDGET, MAX_BATCH};
use shared::ApiError;
use worker::{event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    routes: &[Route { method: Method::Post, path: "/run", handler: |call| Box::pin(run_now(call)) }],
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    edge::serve(req, env, &SERVICE).await
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // Errors are logged inside; the next cron run tries again.
    if let Ok(system) = System::new(env) {
        let _ = dispatch(&system).await;
    }
}

async fn run_now(call: Call) -> Reply {
    call.require_service_role().await?;
    json_reply(200, &dispatch(&call).await?)
}

async fn dispatch(runtime: &impl Runtime) -> std::result::Result<Summary, ApiError> {
    let db = runtime.db_as_service()?;
    let resend = Resend::from_env(runtime)?;
    let batch_size = runtime.number("REMINDER_BATCH_SIZE", i64::from(MAX_BATCH)).clamp(1, i64::from(MAX_BATCH));
    let lease_seconds = runtime.number("REMINDER_LEASE_SECONDS", 300).clamp(1, 3600);
    let mut budget = Budget::new(runtime.number("REMINDER_SUBREQUEST_BUDGET", i64::from(DEFAULT_BUDGET)).clamp(0, 1000) as u32);
    let mut summary = Summary::default();

    let outcome = async {
        budget.spend();
        let advanced: Advanced = db.rpc("service_role_advance_sessions", &json!({})).await?;
        summary.add_advanced(&advanced);
        while budget.allows_round() {
            budget.spend();
            let claim: Claim = db.rpc("service_role_claim_reminders", &json!({ "batch_size": batch_size, "lease_seconds": lease_seconds })).await?;
            summary.add_claim(&claim);
            if claim.reminders.is_empty() {
                break;
            }
            let messages: Vec<_> = claim.reminders.iter().map(|reminder| reminder.message()).collect();
            budget.spend();
            summary.batches += 1;
            let results: Vec<_> = match resend.send_batch(&messages, &batch_key(&claim.reminders)).await {
                Ok(ids) => claim.reminders.iter().zip(ids).map(|(reminder, id)| json!({ "id": reminder.id, "provider_message_id": id })).collect(),
                Err(error) => {
                    let reason = error.cause.unwrap_or(error.message);
                    claim.reminders.iter().map(|reminder| json!({ "id": reminder.id, "error": reason })).collect()
                }
            };
            budget.spend();
            let recorded: Recorded = db.rpc("service_role_complete_reminders", &json!({ "results": results })).await?;
            summary.add_recorded(&recorded);
            if claim.remaining == 0 {
                break;
            }
        }
        Ok::<(), ApiError>(())
    }
    .await;
    summary.subrequests = budget.used();
    let mut line = json!({ "level": if outcome.is_ok() { "info" } else { "error" }, "event": "reminders_run", "run_id": runtime.request_id() });
    if let (Some(line), Ok(counts)) = (line.as_object_mut(), serde_json::to_value(&summary)) {
        line.extend(counts.as_object().cloned().unwrap_or_default());
        if let Err(error) = &outcome {
            line.insert("error".into(), json!(error.cause.clone().unwrap_or_else(|| error.message.clone())));
        }
    }
    log_line(&line);
    outcome.map(|_| summary)
}

//! The dispatcher: drains the outbox in rounds (claim, carry out, record) within a subrequest
//! budget. booking-reminders runs it, for everything due from its cron trigger and `POST /run`,
//! and for the work one request just queued when that request hands it over after answering
//! (`Call::dispatch_after_response`); the outbox is the guarantee if a run cannot finish.

use super::outbound::{deliver_webhook, Daily, Resend, Stripe};
use super::{log_line, Runtime, System};
use crate::error::ApiError;
use crate::outbox::{batch_outcomes, BatchAnswer, Budget, Outcome, Renderer, Summary, MAX_BATCH};
use crate::rpc::{AdvanceSessions, ClaimOutbox, CompleteOutbox};
use crate::tokens::TokenKey;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// Which outbox rows a run may take; as JSON `"everything"`, `{"session": id}`, `{"rows": [ids]}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything due, after moving sessions along in time: the cron's and operators' run.
    #[default]
    Everything,
    /// What one request just queued for a session.
    Session(Uuid),
    /// What one request just queued, by id.
    Rows(Vec<Uuid>),
}

/// Runs the dispatcher within `budget` subrequests and logs its summary line. It takes the
/// detached [`System`] whoever runs it (cron, `POST /run`, a replay), so that the worker holds
/// one copy of the dispatcher, not one per caller type.
pub async fn run(runtime: &System, scope: &Scope, budget: u32) -> Result<Summary, ApiError> {
    let mut budget = Budget::new(budget);
    let mut summary = Summary::default();
    let outcome = drain(runtime, scope, &mut budget, &mut summary).await;
    summary.subrequests = budget.used();
    let mut line = json!({
        "level": if outcome.is_ok() { "info" } else { "error" }, "event": "outbox_run", "run_id": runtime.request_id(),
        "scope": match scope { Scope::Everything => "everything", Scope::Session(_) => "session", Scope::Rows(_) => "rows" },
    });
    if let (Some(line), Ok(counts)) = (line.as_object_mut(), serde_json::to_value(&summary)) {
        line.extend(counts.as_object().cloned().unwrap_or_default());
        if let Err(error) = &outcome {
            line.insert("error".into(), json!(error.cause.clone().unwrap_or_else(|| error.message.clone())));
        }
    }
    log_line(&line);
    outcome.map(|_| summary)
}

async fn drain(runtime: &System, scope: &Scope, budget: &mut Budget, summary: &mut Summary) -> Result<(), ApiError> {
    let db = runtime.db_as_service()?;
    let resend = Resend::from_env(runtime)?;
    let daily = Daily::from_env(runtime)?;
    let stripe = Stripe::from_env(runtime)?;
    let site_url = runtime.var("SITE_URL")?;
    // Account emails need the key their tokens derive from; without it they fail, visibly.
    let token_key = runtime.optional_var("ACCOUNT_TOKEN_KEY").and_then(|key| TokenKey::parse(&key).ok());
    let renderer = Renderer { site_url: &site_url, organizer: resend.from_address(), token_key: token_key.as_ref() };
    let email_batch = runtime.number("OUTBOX_BATCH_SIZE", i64::from(MAX_BATCH)).clamp(1, i64::from(MAX_BATCH));
    let lease_seconds = runtime.number("OUTBOX_LEASE_SECONDS", 300).clamp(1, 3600);
    let (only_session, only_ids) = match scope {
        Scope::Everything => (None, None),
        Scope::Session(id) => (Some(*id), None),
        Scope::Rows(ids) => (None, Some(ids.clone())),
    };

    if matches!(scope, Scope::Everything) && budget.allows_round() {
        budget.spend(1);
        let advanced = db.call(&AdvanceSessions { batch_size: 200, grace_minutes: 30 }).await?;
        for room in &advanced.rooms_missing {
            log_line(
                &json!({ "level": "alert", "event": "room_missing", "run_id": runtime.request_id(), "session": room }),
            );
        }
        summary.add_advanced(&advanced);
    }

    while budget.allows_round() {
        let calls = budget.calls_for_round();
        budget.spend(1);
        let claim = db
            .call(&ClaimOutbox {
                email_batch,
                calls: i64::from(calls),
                lease_seconds,
                only_session,
                only_ids: only_ids.clone(),
            })
            .await?;
        summary.add_claim(&claim);
        if claim.is_empty() {
            break;
        }
        let mut outcomes: Vec<Outcome> =
            Vec::with_capacity(claim.emails.len() + claim.rooms.len() + claim.webhooks.len() + claim.payments.len());
        if let (false, Some(batch_key)) = (claim.emails.is_empty(), claim.batch_key.as_deref()) {
            let mut rendered = Vec::with_capacity(claim.emails.len());
            let mut sendable = Vec::with_capacity(claim.emails.len());
            for email in &claim.emails {
                match email.render(&renderer) {
                    Ok(message) => {
                        rendered.push(message);
                        sendable.push(email.clone());
                    }
                    Err(error) => outcomes.push(Outcome::failed(email.id, error)),
                }
            }
            if !rendered.is_empty() {
                budget.spend(1);
                summary.batches += 1;
                let answer = resend.send_batch(&rendered, batch_key).await;
                if let BatchAnswer::Failed(error) = &answer {
                    log_line(
                        &json!({ "level": "warn", "event": "email_batch_failed", "run_id": runtime.request_id(), "batch_key": batch_key, "error": error }),
                    );
                }
                outcomes.extend(batch_outcomes(&sendable, batch_key, answer));
            }
        }
        for payment in &claim.payments {
            budget.spend(1);
            summary.calls += 1;
            outcomes.push(stripe.carry_out(payment).await);
        }
        for room in &claim.rooms {
            budget.spend(1);
            summary.calls += 1;
            outcomes.push(daily.carry_out(room).await);
        }
        for webhook in &claim.webhooks {
            budget.spend(1);
            summary.calls += 1;
            outcomes.push(deliver_webhook(webhook).await);
        }
        budget.spend(1);
        let recorded = db.call(&CompleteOutbox { results: outcomes }).await?;
        summary.add_recorded(&recorded);
        if claim.remaining.total() == 0 {
            break;
        }
    }
    Ok(())
}

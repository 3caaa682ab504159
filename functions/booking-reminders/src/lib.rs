//! booking-reminders: the dispatcher. Moves sessions along in time and drains the outbox:
//! every email (transition notices, the 24 h and 1 h reminders, account emails), the video
//! rooms and the outbound webhooks.
//!
//! Runs from the cron trigger (every 5 minutes) and from `POST /run`, which only the service
//! role may call. Each run first expires requests left unanswered at their start and completes
//! sessions past their end, then claims due outbox rows under a lease, carries them out with
//! idempotency keys, records the outcomes, and stops before its subrequest budget would be
//! exceeded, leaving the rest to the next run. `POST /replay` starts one delivery over.

use serde::Deserialize;
use shared::edge::dispatch::{self, Scope};
use shared::edge::{
    self, json_reply, Answer, Call, IncomingRequest, OutgoingResponse, Reply, Route, Runtime, Service, System,
};
use shared::outbox::DEFAULT_BUDGET;
use shared::rpc::ReplayOutbox;
use shared::validate::{parse_uuid, Violations};
use worker::{event, Context, Env, Method, Result, ScheduleContext, ScheduledEvent};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    openapi: include_str!("../../../openapi/booking-reminders.json"),
    routes: &[
        Route { method: Method::Post, path: "/run", handler: |call| Box::pin(run_now(call)) },
        Route { method: Method::Post, path: "/replay", handler: |call| Box::pin(replay(call)) },
    ],
};

#[event(fetch)]
async fn fetch(req: IncomingRequest, env: Env, ctx: Context) -> Result<OutgoingResponse> {
    edge::serve(req, env, ctx, &SERVICE).await
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // Errors are logged inside; the next cron run tries again.
    if let Ok(system) = System::new(env) {
        let _ = dispatch::run(&system, &Scope::Everything, budget(&system)).await;
    }
}

fn budget(runtime: &impl Runtime) -> u32 {
    runtime.number("OUTBOX_SUBREQUEST_BUDGET", i64::from(DEFAULT_BUDGET)).clamp(0, 1000) as u32
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    scope: Scope,
}

/// Runs the dispatcher now: for everything due (an operator, no body), or for what one request
/// just queued (`{"scope": {"session": id}}` or `{"scope": {"rows": [ids]}}`, from the workers'
/// DISPATCHER binding).
async fn run_now(mut call: Call) -> Reply {
    call.require_service_role()?;
    let scope =
        if call.header("content-type").is_some() { call.json::<RunRequest>().await?.scope } else { Scope::Everything };
    let system = call.detach();
    json_reply(200, &dispatch::run(&system, &scope, budget(&system)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    outbox_id: Option<String>,
}

/// An operator starts a delivery over (same webhook id, attempts from zero); it goes out once
/// the answer has gone.
async fn replay(mut call: Call) -> Reply {
    call.require_service_role()?;
    let request: ReplayRequest = call.json().await?;
    let mut violations = Violations::new();
    let id = violations
        .require("outbox_id", request.outbox_id)
        .and_then(|id| violations.check("outbox_id", parse_uuid(&id)));
    violations.finish()?;
    let id = id.ok_or_else(shared::ApiError::internal)?;
    // The database's answer (the row's id, channel, topic and status) is passed on unread.
    let replayed = call.db_as_service()?.call_stream(&ReplayOutbox { outbox_id: id }).await?;
    let system = call.detach();
    let limit = budget(&system);
    call.ctx.wait_until(async move {
        // Logged by the run; the cron carries out the replay if this does not.
        let _ = dispatch::run(&system, &Scope::Rows(vec![id]), limit).await;
    });
    Ok(Answer::json_stream(202, replayed))
}

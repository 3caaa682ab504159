//! booking-reminders

use shared::edge::{self, Service};
use worker::{event, Context, Env, Request, Response, Result};

static SERVICE: Service = Service { name: env!("CARGO_PKG_NAME"), version: env!("CARGO_PKG_VERSION"), routes: &[] };

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    edge::serve(req, env, &SERVICE).await
}

//! find-experts: ranks experts for a search. Public; an authenticated search is recorded.

use serde_json::{json, Value};
use shared::edge::{self, json_reply, Call, Reply, Route, Service};
use shared::search::{Cursor, Search, SearchRequest};
use shared::validate::Violations;
use shared::ApiError;
use worker::{event, Context, Env, Method, Request, Response, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        Route { method: Method::Post, path: "/", handler: |call| Box::pin(search_by_body(call)) },
        Route { method: Method::Get, path: "/", handler: |call| Box::pin(search_by_query(call)) },
    ],
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    edge::serve(req, env, ctx, &SERVICE).await
}

async fn search_by_body(mut call: Call) -> Reply {
    let request: SearchRequest = call.json().await?;
    search(call, Search::parse(request, Violations::new())?).await
}

async fn search_by_query(call: Call) -> Reply {
    let url = call.req.url().map_err(|_| ApiError::bad_request("invalid_url", "The URL could not be read."))?;
    let mut violations = Violations::new();
    let request = SearchRequest::from_query(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())), &mut violations);
    search(call, Search::parse(request, violations)?).await
}

async fn search(call: Call, search: Search) -> Reply {
    // Verified here so that a bad token is a 401, not an anonymous search.
    call.caller().await?;
    let token = call.bearer_token();
    let found: Value = call.db_as(token.as_deref()).rpc("find_experts", &search.rpc_args()).await?;
    let experts = found["experts"].as_array().cloned().unwrap_or_default();
    let next_cursor = (experts.len() == usize::from(search.limit.get()))
        .then(|| experts.last())
        .flatten()
        .and_then(|last| Some(Cursor { score: last["score"].to_string(), expert_id: last["expert_id"].as_str()?.parse().ok()? }.encode()));
    let mut response = json_reply(200, &json!({ "experts": experts, "next_cursor": next_cursor, "match_request_id": found["match_request_id"] }))?;
    if token.is_none() {
        // Anonymous results are the same for everyone: let browsers and the edge cache them briefly.
        let _ = response.headers_mut().set("cache-control", "public, max-age=30");
    }
    Ok(response)
}

//! find-experts: ranks experts for a search. Public; an authenticated search is recorded. The
//! ranking, filtering and paging all happen in the database function `find_experts`.

use shared::edge::{self, Answer, Call, IncomingRequest, OutgoingResponse, Reply, Route, Service};
use shared::search::{Search, SearchRequest};
use shared::validate::Violations;
use worker::{event, Context, Env, Method, Result};

static SERVICE: Service = Service {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    openapi: include_str!("../../../openapi/find-experts.json"),
    routes: &[
        Route { method: Method::Post, path: "/", handler: |call| Box::pin(search_by_body(call)) },
        Route { method: Method::Get, path: "/", handler: |call| Box::pin(search_by_query(call)) },
    ],
};

#[event(fetch)]
async fn fetch(req: IncomingRequest, env: Env, ctx: Context) -> Result<OutgoingResponse> {
    edge::serve(req, env, ctx, &SERVICE).await
}

async fn search_by_body(mut call: Call) -> Reply {
    let request: SearchRequest = call.json().await?;
    search(call, Search::parse(request, Violations::new())?).await
}

async fn search_by_query(call: Call) -> Reply {
    let mut violations = Violations::new();
    let request = SearchRequest::from_url(&call.url(), &mut violations);
    search(call, Search::parse(request, violations)?).await
}

async fn search(call: Call, search: Search) -> Reply {
    // Verified here so that a bad token is a 401, not an anonymous search.
    call.caller().await?;
    let token = call.bearer_token();
    // The database's answer is the whole response (experts, cursor, the recorded search's id):
    // streamed through, never read into the worker.
    let answer = Answer::json_stream(200, call.db_as(token.as_deref()).call_stream(&search.rpc_args()).await?);
    Ok(match token {
        // Anonymous results are the same for everyone: let browsers and the edge cache them briefly.
        None => answer.with_header("cache-control", "public, max-age=30"),
        Some(_) => answer,
    })
}

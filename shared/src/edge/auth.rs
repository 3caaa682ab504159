//! The token verifier of a worker: the HS256 secret and the project's JWKS, fetched from
//! `SUPABASE_JWKS_URL` and kept for ten minutes per isolate.

use super::{log_error, read_var, Call};
use crate::auth::Verifier;
use crate::error::ApiError;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Date, Fetch, Url};

const JWKS_TTL_MS: u64 = 10 * 60 * 1000;

thread_local! {
    // Workers run one request at a time per isolate thread; the cache lives as long as the isolate.
    static CACHED: RefCell<Option<(u64, Rc<Verifier>)>> = const { RefCell::new(None) };
}

pub(super) async fn verifier(call: &Call) -> Result<Rc<Verifier>, ApiError> {
    let now = Date::now().as_millis();
    if let Some(verifier) = CACHED.with(|cached| cached.borrow().as_ref().filter(|(at, _)| now - at < JWKS_TTL_MS).map(|(_, v)| v.clone())) {
        return Ok(verifier);
    }
    let secret = read_var(&call.env, "SUPABASE_JWT_SECRET");
    let jwks_url = read_var(&call.env, "SUPABASE_JWKS_URL");
    if secret.is_none() && jwks_url.is_none() {
        log_error(&call.request_id, "config", "set SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL to verify tokens");
        return Err(ApiError::internal());
    }
    let mut verifier = Verifier::new(secret.as_deref());
    if let Some(url) = jwks_url {
        let unavailable = |cause: String| {
            ApiError::unavailable("auth_keys_unavailable", "The project's signing keys cannot be fetched right now.").because(cause)
        };
        let url = Url::parse(&url).map_err(|error| unavailable(format!("bad SUPABASE_JWKS_URL: {error}")))?;
        let mut response = Fetch::Url(url).send().await.map_err(|error| unavailable(format!("JWKS fetch failed: {error}")))?;
        let document = response.text().await.map_err(|error| unavailable(format!("JWKS read failed: {error}")))?;
        verifier = verifier.with_jwks(&document).map_err(unavailable)?;
    }
    let verifier = Rc::new(verifier);
    CACHED.with(|cached| *cached.borrow_mut() = Some((now, verifier.clone())));
    Ok(verifier)
}

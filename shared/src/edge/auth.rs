//! The token verifier of a worker: the HS256 secret and the project's JWKS, fetched from
//! `SUPABASE_JWKS_URL` and kept for ten minutes per isolate; ES256 and RS256 signatures are
//! checked by the runtime's WebCrypto.

use super::{log_error, read_var, Call};
use crate::auth::{Asymmetric, PublicKey, SignatureCheck, Verifier};
use crate::error::ApiError;
use std::cell::RefCell;
use std::rc::Rc;
use worker::js_sys::{self, Array, Function, Object, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;

/// `crypto.subtle.importKey("jwk", …)` then `crypto.subtle.verify(…)`.
pub(super) struct WebCrypto;

impl WebCrypto {
    async fn check(key: &PublicKey, message: &[u8], signature: &[u8]) -> Result<bool, JsValue> {
        let subtle = Reflect::get(&Reflect::get(&js_sys::global(), &"crypto".into())?, &"subtle".into())?;
        let call = |method: &str, args: Array| -> Result<JsFuture, JsValue> {
            let function: Function = Reflect::get(&subtle, &method.into())?.dyn_into()?;
            Ok(JsFuture::from(function.apply(&subtle, &args)?.dyn_into::<Promise>()?))
        };
        let (import_params, verify_params) = match key.alg {
            Asymmetric::Es256 => (r#"{"name":"ECDSA","namedCurve":"P-256"}"#, r#"{"name":"ECDSA","hash":"SHA-256"}"#),
            Asymmetric::Rs256 => {
                (r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#, r#"{"name":"RSASSA-PKCS1-v1_5"}"#)
            }
        };
        let jwk: Object = js_sys::JSON::parse(&key.jwk.to_string())?.dyn_into()?;
        let usages = Array::of1(&"verify".into());
        let imported = call(
            "importKey",
            Array::of5(&"jwk".into(), &jwk, &js_sys::JSON::parse(import_params)?, &false.into(), &usages),
        )?
        .await?;
        let verified = call(
            "verify",
            Array::of4(
                &js_sys::JSON::parse(verify_params)?,
                &imported,
                &Uint8Array::from(signature),
                &Uint8Array::from(message),
            ),
        )?
        .await?;
        Ok(verified.as_bool().unwrap_or(false))
    }
}

impl SignatureCheck for WebCrypto {
    async fn verify(&self, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        // A key WebCrypto refuses to import verifies nothing.
        Self::check(key, message, signature).await.unwrap_or(false)
    }
}

const JWKS_TTL_MS: u64 = 10 * 60 * 1000;

thread_local! {
    // Workers run one request at a time per isolate thread; the cache lives as long as the isolate.
    static CACHED: RefCell<Option<(u64, Rc<Verifier>)>> = const { RefCell::new(None) };
}

pub(super) async fn verifier(call: &Call) -> Result<Rc<Verifier>, ApiError> {
    let now = super::now_millis();
    if let Some(verifier) =
        CACHED.with(|cached| cached.borrow().as_ref().filter(|(at, _)| now - at < JWKS_TTL_MS).map(|(_, v)| v.clone()))
    {
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
            ApiError::unavailable("auth_keys_unavailable", "The project's signing keys cannot be fetched right now.")
                .because(cause)
        };
        let response = super::outbound::fetch("GET", &url, &[], None)
            .await
            .map_err(|error| unavailable(format!("JWKS fetch failed: {error}")))?;
        let document = response.text().await.map_err(|error| unavailable(format!("JWKS read failed: {error}")))?;
        verifier = verifier.with_jwks(&document).map_err(unavailable)?;
    }
    let verifier = Rc::new(verifier);
    CACHED.with(|cached| *cached.borrow_mut() = Some((now, verifier.clone())));
    Ok(verifier)
}

//! PostgREST access: one small client on the `postgrest` crate, and the one place where
//! PostgREST's errors become the crate's [`ApiError`].
//!
//! User-initiated work sends the caller's own JWT, so that RLS decides; system work (cron,
//! hooks, token checks) sends the service-role key. Both send the anon key as `apikey`, which
//! hosted Supabase's gateway requires, and the worker's request id as `x-request-id`, which the
//! database records in audit rows as a fact of the request it received.

use crate::error::ApiError;
#[cfg(feature = "worker")]
use crate::rpc::Rpc;
#[cfg(feature = "worker")]
use postgrest::{Builder, Postgrest};
#[cfg(feature = "worker")]
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

#[cfg(feature = "worker")]
pub struct Db {
    client: Postgrest,
    with_user_jwt: bool,
}

/// PostgREST's error body: `{code, message, details, hint}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct PostgrestError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
    #[serde(default)]
    pub hint: Option<String>,
}

#[cfg(feature = "worker")]
impl Db {
    /// Acts as the caller: RLS applies to what their token allows.
    pub fn as_caller(url: &str, anon_key: &str, jwt: &str, request_id: &str) -> Self {
        Self::with_bearer(url, anon_key, jwt, request_id, true)
    }

    /// Acts as service_role, for system work only.
    pub fn as_service(url: &str, anon_key: &str, service_role_key: &str, request_id: &str) -> Self {
        Self::with_bearer(url, anon_key, service_role_key, request_id, false)
    }

    fn with_bearer(url: &str, anon_key: &str, bearer: &str, request_id: &str, with_user_jwt: bool) -> Self {
        let client = Postgrest::new(url)
            .insert_header("apikey", anon_key)
            .insert_header("Authorization", format!("Bearer {bearer}"))
            .insert_header("x-request-id", request_id);
        Self { client, with_user_jwt }
    }

    pub fn from(&self, table: &str) -> Builder {
        self.client.from(table)
    }

    /// Calls a database function (`POST /rpc/<name>`) with its typed arguments and decodes its
    /// typed result: the one way the workers call the database's functions.
    pub async fn call<R: Rpc>(&self, args: &R) -> Result<R::Output, ApiError> {
        self.run(self.client.rpc(R::NAME, encode(args)?)).await
    }

    /// Sends a request built with [`Db::from`] (or [`Db::call`]) and decodes the JSON answer.
    pub async fn run<T: DeserializeOwned>(&self, builder: Builder) -> Result<T, ApiError> {
        decode(&self.text(builder).await?)
    }

    /// Calls a database function and hands back its JSON answer (a `R::Output`) unread, for
    /// answers the worker passes on as they are.
    pub async fn call_stream<R: Rpc>(&self, args: &R) -> Result<crate::edge::Fetched, ApiError> {
        let response = built(self.client.rpc(R::NAME, encode(args)?))?.send().await.map_err(|_| unavailable())?;
        let status = response.status();
        if status >= 300 {
            let text = response.text().await.map_err(|_| unavailable())?;
            return Err(translate(status, &text, self.with_user_jwt));
        }
        Ok(response)
    }

    /// The answer's text, or the error PostgREST's error body says. The awaiting is written
    /// once here, not once per answer type: each generic copy of it was a few KB of every worker.
    async fn text(&self, builder: Builder) -> Result<String, ApiError> {
        let (status, text) = built(builder)?.send_for_text().await.map_err(|_| unavailable())?;
        if status >= 300 {
            return Err(translate(status, &text, self.with_user_jwt));
        }
        Ok(if text.is_empty() { "null".into() } else { text })
    }
}

/// postgrest-rs builds the request; the Workers fetch API carries it, which is smaller and
/// quicker in a worker than the reqwest transport under postgrest-rs.
#[cfg(feature = "worker")]
fn built(builder: Builder) -> Result<crate::edge::Built, ApiError> {
    let request =
        builder.build().build().map_err(|error| ApiError::internal().because(format!("PostgREST request: {error}")))?;
    Ok(crate::edge::Built::from(request))
}

#[cfg(feature = "worker")]
fn encode(args: &impl serde::Serialize) -> Result<String, ApiError> {
    serde_json::to_string(args).map_err(|_| ApiError::internal())
}

#[cfg(feature = "worker")]
fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text)
        .map_err(|error| ApiError::internal().because(format!("unexpected PostgREST answer: {error}")))
}

fn unavailable() -> ApiError {
    ApiError::unavailable(
        "database_unavailable",
        "The database cannot be reached right now; nothing was changed. Try again shortly.",
    )
    .with_retry_after(5)
}

/// Maps a PostgREST error to the crate's error. Our SQL functions raise business errors with
/// `errcode 'PTnnn'` (PostgREST answers HTTP nnn) and put the stable code in `hint` and
/// structured details as JSON in `detail`.
pub fn translate(status: u16, body: &str, with_user_jwt: bool) -> ApiError {
    let error: PostgrestError = serde_json::from_str(body).unwrap_or_default();
    let code = error.code.as_deref().unwrap_or_default();
    let message = error.message.clone().unwrap_or_default();
    if code.starts_with("PT") {
        let mut api = ApiError::new(status, error.hint.clone().unwrap_or_else(|| "rejected".into()), message);
        if let Some(Value::String(details)) = &error.details {
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(details) {
                api.details = map;
            }
        }
        if let Some(seconds) = api.details.get("retry_after").and_then(Value::as_u64) {
            api = api.with_retry_after(seconds);
        }
        return api;
    }
    match (status, code) {
        (_, "PGRST000" | "PGRST001" | "PGRST002" | "PGRST003") | (502..=504, _) => unavailable(),
        (_, "PGRST102") => ApiError::bad_request("invalid_json", "The body is not valid JSON."),
        (_, "23505") => ApiError::conflict("duplicate", "That already exists."),
        (_, "23P01") => ApiError::conflict("overlap", "That time overlaps another active session."),
        (_, "23503") => ApiError::conflict("missing_reference", "A referenced record does not exist."),
        (_, "23514") => ApiError::bad_request(
            "constraint_violated",
            if message.is_empty() { "A value breaks a rule of the data.".into() } else { message },
        ),
        // Two transactions racing for the same rows: the loser may simply try again.
        (_, "40P01" | "40001") => ApiError::conflict(
            "concurrent_update",
            "Another request changed the same data at the same time; try again.",
        )
        .with_retry_after(1),
        (_, "42501") if with_user_jwt => {
            ApiError::forbidden(if message.is_empty() { "Not allowed.".into() } else { message })
        }
        (_, "PGRST301" | "PGRST302") => ApiError::unauthorized("The token was not accepted by the database."),
        (_, "PGRST116") => ApiError::not_found("No such record."),
        _ => ApiError::internal().because(format!("PostgREST {status} {code}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies as the real PostgREST 12 sends them.
    #[test]
    fn a_raised_business_error_keeps_its_status_code_message_and_details() {
        let body = r#"{"code":"PT409","details":"{\"amount_cents\": 16000}","hint":"price_changed","message":"The expert's rate changed since the quote."}"#;
        let error = translate(409, body, true);
        assert_eq!(
            (error.status, error.code.as_ref(), error.message.as_str()),
            (409, "price_changed", "The expert's rate changed since the quote.")
        );
        assert_eq!(error.details["amount_cents"], 16000);
    }

    #[test]
    fn a_raised_rate_limit_carries_its_retry_after() {
        let body = r#"{"code":"PT429","details":"{\"retry_after\": 3600}","hint":"rate_limited","message":"At most 3 verification emails an hour: try again later."}"#;
        let error = translate(429, body, false);
        assert_eq!((error.status, error.code.as_ref(), error.retry_after), (429, "rate_limited", Some(3600)));
    }

    #[test]
    fn permission_denied_is_forbidden_for_a_user() {
        let body = r#"{"code":"42501","details":null,"hint":null,"message":"permission denied for table sessions"}"#;
        let error = translate(403, body, true);
        assert_eq!((error.status, error.code.as_ref()), (403, "forbidden"));
    }

    #[test]
    fn permission_denied_for_the_service_role_is_our_bug_not_the_callers() {
        let body = r#"{"code":"42501","details":null,"hint":null,"message":"permission denied for table sessions"}"#;
        assert_eq!(translate(403, body, false).status, 500);
    }

    #[test]
    fn unique_and_exclusion_violations_are_conflicts() {
        let unique = r#"{"code":"23505","details":"Key (slug)=(react) already exists.","hint":null,"message":"duplicate key value violates unique constraint \"skill_categories_slug_key\""}"#;
        assert_eq!(translate(409, unique, true).status, 409);
        let overlap = r#"{"code":"23P01","details":"Key conflicts with existing key.","hint":null,"message":"conflicting key value violates exclusion constraint \"sessions_expert_no_overlap\""}"#;
        let error = translate(400, overlap, true);
        assert_eq!((error.status, error.code.as_ref()), (409, "overlap"));
    }

    #[test]
    fn a_check_violation_is_a_400_and_a_deadlock_a_conflict_to_retry() {
        let check = r#"{"code":"23514","details":"Failing row contains (...).","hint":null,"message":"new row for relation \"reviews\" violates check constraint \"reviews_rating_check\""}"#;
        let error = translate(400, check, true);
        assert_eq!((error.status, error.code.as_ref()), (400, "constraint_violated"));
        assert!(error.message.contains("reviews_rating_check"));
        let deadlock = r#"{"code":"40P01","details":"Process 1 waits for ShareLock on transaction 2","hint":"See server log for query details.","message":"deadlock detected"}"#;
        let error = translate(500, deadlock, true);
        assert_eq!((error.status, error.code.as_ref(), error.retry_after), (409, "concurrent_update", Some(1)));
    }

    #[test]
    fn a_database_that_cannot_be_reached_is_a_503_with_retry_after() {
        let body = r#"{"code":"PGRST001","details":"connection refused","hint":null,"message":"Database client error. Retrying the connection."}"#;
        let error = translate(503, body, true);
        assert_eq!((error.status, error.code.as_ref(), error.retry_after), (503, "database_unavailable", Some(5)));
        assert_eq!(translate(502, "<html>Bad gateway</html>", true).status, 503);
    }

    #[test]
    fn a_body_postgrest_cannot_parse_is_the_callers_400() {
        let body = r#"{"code":"PGRST102","details":null,"hint":null,"message":"Empty or invalid json"}"#;
        let error = translate(400, body, false);
        assert_eq!((error.status, error.code.as_ref()), (400, "invalid_json"));
    }

    #[test]
    fn a_rejected_jwt_is_unauthorized() {
        let body = r#"{"code":"PGRST301","details":null,"hint":null,"message":"JWSError JWSInvalidSignature"}"#;
        assert_eq!(translate(401, body, true).status, 401);
    }

    #[test]
    fn anything_unexpected_is_an_internal_error_with_a_generic_message() {
        let body = r#"{"code":"42883","details":null,"hint":"No function matches","message":"function public.nope() does not exist"}"#;
        let error = translate(404, body, true);
        assert_eq!(error.status, 500);
        assert!(!error.body().to_string().contains("nope"), "the cause stays out of the answer");
        assert!(error.cause.unwrap().contains("public.nope()"), "and goes to the log");
    }
}

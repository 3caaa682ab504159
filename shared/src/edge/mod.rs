//! The Cloudflare Workers glue every function shares: routing with 404/405 in the shared error
//! shape, CORS and preflight, request ids, JSON bodies with their limits, the health route and
//! one structured log line per request.

mod auth;
pub mod dispatch;
mod outbound;
mod runtime;

pub use outbound::{Built, Fetched, Resend, Stripe};

use crate::auth::Caller;
use crate::config::Config;
use crate::cors::{self, AllowedOrigins};
use crate::db::Db;
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use runtime::HeaderLines;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use subtle::ConstantTimeEq;
use worker::js_sys::{self, Uint8Array};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{console_log, web_sys, Context, Env, Method};

pub type Reply = Result<Answer, ApiError>;
pub type Handler = fn(Call) -> Pin<Box<dyn Future<Output = Reply>>>;

/// One route of a function: `GET /health`, `GET /openapi.json` and `OPTIONS` are added by [`serve`].
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub handler: Handler,
}

/// A function's identity and routes, declared once in its `lib.rs`.
pub struct Service {
    pub name: &'static str,
    pub version: &'static str,
    pub routes: &'static [Route],
    /// The function's OpenAPI document (openapi/<name>.json), served at `GET /openapi.json`.
    pub openapi: &'static str,
}

/// Bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request as the runtime hands it over. Only what a route reads crosses into wasm, which
/// `worker::Request` would not allow: it copies the URL, path, method and `cf` object of every
/// request up front.
pub type IncomingRequest = web_sys::Request;

/// The response as the runtime takes it, built in one call from an [`Answer`].
pub type OutgoingResponse = web_sys::Response;

/// What a route answers: a status, headers and a body, which cross into the runtime together
/// when the request is done rather than header by header as `worker::Response` sends them.
pub struct Answer {
    status: u16,
    headers: HeaderLines,
    body: Body,
}

enum Body {
    Empty,
    Text(Cow<'static, str>),
    Stream(Option<web_sys::ReadableStream>),
}

impl Answer {
    fn new(status: u16, body: Body) -> Self {
        Self { status, headers: HeaderLines::default(), body }
    }

    /// A JSON text that is already written, with the given status.
    fn json_text(status: u16, text: impl Into<Cow<'static, str>>) -> Self {
        Self::new(status, Body::Text(text.into())).with_header("content-type", "application/json")
    }

    /// A fetched JSON answer passed on unread.
    pub fn json_stream(status: u16, fetched: Fetched) -> Self {
        Self::new(status, Body::Stream(fetched.into_body())).with_header("content-type", "application/json")
    }

    /// Appends a header (a name or value with a line break in it is refused by the runtime,
    /// which makes the request a 500).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(name, value);
        self
    }

    fn into_response(self) -> Result<OutgoingResponse, worker::wasm_bindgen::JsValue> {
        let headers = self.headers.as_str();
        match self.body {
            Body::Empty => runtime::respond_text(self.status, headers, None),
            Body::Text(text) => runtime::respond_text(self.status, headers, Some(&text)),
            Body::Stream(stream) => runtime::respond_stream(self.status, headers, stream),
        }
    }
}

/// A request being served, with what every handler needs.
pub struct Call {
    pub req: IncomingRequest,
    pub env: Env,
    pub ctx: Context,
    pub config: Config,
    pub request_id: String,
}

/// The service binding to the dispatcher (booking-reminders), which carries out what a request
/// queued once the request has answered.
const DISPATCHER_BINDING: &str = "DISPATCHER";

/// What a worker's code can reach whether it serves a request or a cron event: its
/// environment, configuration and an id to log under.
pub trait Runtime {
    fn env(&self) -> &Env;
    fn config(&self) -> &Config;
    fn request_id(&self) -> &str;

    /// The value of a secret or variable this function needs beyond [`Config`].
    fn var(&self, name: &'static str) -> Result<String, ApiError> {
        read_var(self.env(), name).ok_or_else(|| {
            log_error(self.request_id(), "config", &format!("missing environment variable {name}"));
            ApiError::internal()
        })
    }

    /// A secret or variable that may be absent.
    fn optional_var(&self, name: &str) -> Option<String> {
        read_var(self.env(), name).filter(|value| !value.trim().is_empty())
    }

    /// An optional numeric setting, with its default when unset or unreadable.
    fn number(&self, name: &str, default: i64) -> i64 {
        read_var(self.env(), name).and_then(|value| value.trim().parse().ok()).unwrap_or(default)
    }

    /// The worker's clock: the server's "now", never the caller's.
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(now_millis() as i64).unwrap_or_default()
    }

    /// PostgREST as service_role, for system work.
    fn db_as_service(&self) -> Result<Db, ApiError> {
        Ok(Db::as_service(
            &self.config().postgrest_url,
            &self.config().anon_key,
            &self.var("SUPABASE_SERVICE_ROLE_KEY")?,
            self.request_id(),
        ))
    }
}

impl Runtime for Call {
    fn env(&self) -> &Env {
        &self.env
    }
    fn config(&self) -> &Config {
        &self.config
    }
    fn request_id(&self) -> &str {
        &self.request_id
    }
}

/// The runtime of a scheduled (cron) invocation.
pub struct System {
    env: Env,
    config: Config,
    run_id: String,
}

impl System {
    pub fn new(env: Env) -> Result<Self, ApiError> {
        let run_id = uuid::Uuid::new_v4().to_string();
        let config = cached_config(&env).map_err(|missing| {
            log_error(&run_id, "config", &missing.to_string());
            ApiError::internal()
        })?;
        Ok(Self { env, config, run_id })
    }
}

impl Runtime for System {
    fn env(&self) -> &Env {
        &self.env
    }
    fn config(&self) -> &Config {
        &self.config
    }
    fn request_id(&self) -> &str {
        &self.run_id
    }
}

impl Call {
    /// This worker's runtime, owned, for work that outlives the request (`ctx.wait_until`).
    pub fn detach(&self) -> System {
        System { env: self.env.clone(), config: self.config.clone(), run_id: self.request_id.clone() }
    }

    /// Hands the side effects this request queued to the dispatcher once the response has gone,
    /// so that the caller waits on no provider; whatever does not finish, the cron's run does.
    /// The dispatcher is a service binding: workers of one zone cannot call each other by URL,
    /// and the dispatch code lives in that one worker, keeping the others small.
    pub fn dispatch_after_response(&self, scope: dispatch::Scope) {
        let Some(dispatcher) =
            js_sys::Reflect::get(&self.env, &DISPATCHER_BINDING.into()).ok().filter(|binding| !binding.is_undefined())
        else {
            return log_error(
                &self.request_id,
                "config",
                "no DISPATCHER service binding: queued work waits for the cron",
            );
        };
        let Ok(service_key) = self.var("SUPABASE_SERVICE_ROLE_KEY") else { return };
        let request_id = self.request_id.clone();
        self.ctx.wait_until(async move {
            let mut headers = HeaderLines::default();
            headers.push("authorization", &format!("Bearer {service_key}"));
            headers.push("content-type", "application/json");
            headers.push("x-request-id", &request_id);
            let body = json!({ "scope": scope }).to_string();
            let promise =
                runtime::send_through(&dispatcher, "POST", "https://dispatcher/run", headers.as_str(), Some(&body));
            let handed = JsFuture::from(promise)
                .await
                .map(|response| response.unchecked_into::<web_sys::Response>().status())
                .map_err(outbound::js_error);
            match handed {
                Ok(status) if status < 300 => {}
                Ok(status) => log_error(
                    &request_id,
                    "dispatch_failed",
                    &format!("the dispatcher answered {status}; the cron will retry"),
                ),
                Err(error) => log_error(&request_id, "dispatch_failed", &format!("{error}; the cron will retry")),
            }
        });
    }

    /// Reads a JSON body: 415 unless it is declared JSON, 413 past [`MAX_BODY_BYTES`], 400 for
    /// malformed JSON or a shape that does not match, naming where it went wrong.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let bytes = self.json_bytes().await?;
        serde_json::from_slice(&bytes).map_err(|error| {
            ApiError::bad_request("invalid_json", format!("The body is not valid JSON for this request: {error}."))
        })
    }

    /// The raw bytes of a JSON body, with the checks of [`Call::json`] but before parsing (for
    /// signatures computed over the exact bytes).
    pub async fn json_bytes(&mut self) -> Result<Vec<u8>, ApiError> {
        self.json_bytes_up_to(MAX_BODY_BYTES).await
    }

    /// [`Call::json_bytes`] with another size limit, for senders whose bodies are larger.
    pub async fn json_bytes_up_to(&mut self, limit: usize) -> Result<Vec<u8>, ApiError> {
        let content_type = self.header("content-type").unwrap_or_default();
        if !content_type.to_ascii_lowercase().starts_with("application/json") {
            return Err(ApiError::new(415, "unsupported_media_type", "Send the body as application/json."));
        }
        let declared = self.header("content-length").and_then(|length| length.parse::<usize>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(body_too_large(limit));
        }
        let unreadable = |_| ApiError::bad_request("invalid_body", "The body could not be read.");
        let buffer = JsFuture::from(self.req.array_buffer().map_err(unreadable)?).await.map_err(unreadable)?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        if bytes.len() > limit {
            return Err(body_too_large(limit));
        }
        Ok(bytes)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.req.headers().get(name).ok().flatten()
    }

    /// The request's URL as the runtime serialised it.
    pub fn url(&self) -> String {
        self.req.url()
    }

    /// The caller's bearer token, if one was sent.
    pub fn bearer_token(&self) -> Option<String> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|token| !token.is_empty())
    }

    /// The client's address as Cloudflare reports it.
    pub fn client_ip(&self) -> Option<String> {
        self.header("cf-connecting-ip")
    }

    /// Who is calling: anon without a token; 401 for a token that does not verify.
    pub async fn caller(&self) -> Result<Caller, ApiError> {
        match self.bearer_token() {
            None => Ok(Caller::Anon),
            Some(token) => {
                auth::verifier(self).await?.verify(&token, self.now(), &auth::WebCrypto).await.map_err(ApiError::from)
            }
        }
    }

    /// A signed-in user, with their token for PostgREST; 401 otherwise.
    pub async fn require_user(&self) -> Result<(uuid::Uuid, String), ApiError> {
        match (self.caller().await?, self.bearer_token()) {
            (Caller::User { id, .. }, Some(token)) => Ok((id, token)),
            _ => Err(ApiError::unauthorized("Sign in: this needs a user's access token.")),
        }
    }

    /// Only the service role may call this route: 401 without a token, 403 with another one.
    /// The key is the project's secret itself, so it is compared (in constant time) rather than
    /// verified as a JWT: that also serves Supabase's newer opaque secret keys.
    pub fn require_service_role(&self) -> Result<(), ApiError> {
        let presented =
            self.bearer_token().ok_or_else(|| ApiError::unauthorized("This route needs the service role key."))?;
        let expected = self.var("SUPABASE_SERVICE_ROLE_KEY")?;
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::forbidden("Only the service role may call this route."))
        }
    }

    /// PostgREST as the caller (RLS applies), or as anon without a token.
    pub fn db_as(&self, token: Option<&str>) -> Db {
        Db::as_caller(
            &self.config.postgrest_url,
            &self.config.anon_key,
            token.unwrap_or(&self.config.anon_key),
            &self.request_id,
        )
    }

    /// How far ahead sessions may be booked, from the environment.
    pub fn booking_window(&self) -> crate::validate::BookingWindow {
        crate::validate::BookingWindow::from_vars(|name| read_var(&self.env, name))
    }

    /// What the worker saw of its client (request id, address, user agent), passed to the
    /// database, which keeps it in audit rows as reported context beside its own facts.
    pub fn audit_context(&self) -> crate::rpc::AuditContext {
        crate::rpc::AuditContext {
            request_id: self.request_id.clone(),
            ip: self.client_ip(),
            user_agent: self.header("user-agent").map(|ua| ua.chars().take(500).collect()),
        }
    }
}

fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(413, "payload_too_large", format!("The body exceeds {limit} bytes."))
}

/// A JSON response with the given status.
pub fn json_reply(status: u16, body: &impl Serialize) -> Reply {
    serde_json::to_string(body).map(|text| Answer::json_text(status, text)).map_err(|_| ApiError::internal())
}

fn read_var(env: &Env, name: &str) -> Option<String> {
    env.secret(name).map(|value| value.to_string()).or_else(|_| env.var(name).map(|value| value.to_string())).ok()
}

/// Serves one request: the entry point of every function's `#[event(fetch)]`.
pub async fn serve(
    req: IncomingRequest,
    env: Env,
    ctx: Context,
    service: &'static Service,
) -> worker::Result<OutgoingResponse> {
    let started = now_millis();
    let method = Method::from(req.method());
    let url = req.url();
    let path = crate::config::path_of(&url);
    let headers = req.headers();
    let origin = headers.get("origin").ok().flatten();
    let request_id =
        headers.get("x-request-id").ok().flatten().filter(|id| is_safe_request_id(id)).unwrap_or_else(next_request_id);

    let config = cached_config(&env);
    let allowed_origins =
        config.as_ref().map(|config| config.allowed_origins.clone()).unwrap_or(AllowedOrigins::parse(""));
    let reply = match config {
        Err(missing) => {
            log_error(&request_id, "config", &missing.to_string());
            Err(ApiError::internal())
        }
        Ok(config) => {
            let route_path = config.route(service.name, path).to_owned();
            route(Call { req, env, ctx, config, request_id: request_id.clone() }, service, &method, &route_path).await
        }
    };
    let status = match &reply {
        Ok(answer) => answer.status,
        Err(error) => error.status,
    };
    if let Err(error) = &reply {
        if error.status >= 500 {
            log_error(&request_id, &error.code, error.cause.as_deref().unwrap_or(&error.message));
        }
    }
    let answer = match reply {
        Ok(answer) => answer,
        Err(error) => error_answer(&error),
    };
    let answer = decorate(answer, &request_id, allowed_origins.allow(origin.as_deref()));
    #[derive(Serialize)]
    struct Served<'a> {
        level: &'static str,
        function: &'static str,
        request_id: &'a str,
        method: &'a str,
        path: &'a str,
        status: u16,
        duration_ms: u64,
    }
    let line = Served {
        level: "info",
        function: service.name,
        request_id: &request_id,
        method: method.as_ref(),
        path,
        status,
        duration_ms: now_millis().saturating_sub(started),
    };
    if let Ok(line) = serde_json::to_string(&line) {
        console_log!("{line}");
    }
    Ok(answer.into_response()?)
}

async fn route(call: Call, service: &'static Service, method: &Method, path: &str) -> Reply {
    let on_path: Vec<&Route> = service.routes.iter().filter(|route| route.path == path).collect();
    let built_in = path == "/health" || path == "/openapi.json";
    let allowed = || {
        let mut methods: Vec<String> = on_path.iter().map(|route| route.method.to_string()).collect();
        if built_in {
            methods.push("GET".into());
        }
        methods.push("OPTIONS".into());
        methods.join(", ")
    };
    if on_path.is_empty() && !built_in {
        return Err(ApiError::not_found(format!("No route {path} on {}.", service.name)));
    }
    if *method == Method::Options {
        return preflight(&allowed());
    }
    if path == "/health" && *method == Method::Get {
        return health(&call, service).await;
    }
    if path == "/openapi.json" && *method == Method::Get {
        return Ok(Answer::json_text(200, service.openapi));
    }
    match on_path.iter().find(|route| route.method == *method) {
        Some(route) => (route.handler)(call).await,
        None => Err(ApiError::new(405, "method_not_allowed", format!("{method} is not allowed on {path}."))
            .with_detail("allow", allowed())),
    }
}

thread_local! {
    // A random prefix drawn once per isolate and a counter: unique ids without a call into
    // the runtime's random source on every request.
    static REQUEST_IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

fn next_request_id() -> String {
    REQUEST_IDS.with(|ids| {
        let (mut prefix, count) = ids.get();
        if prefix == 0 {
            let mut random = [0u8; 8];
            prefix = getrandom::getrandom(&mut random).map(|_| u64::from_le_bytes(random)).unwrap_or(1) | 1;
        }
        ids.set((prefix, count + 1));
        uuid::Uuid::from_u64_pair(prefix, count + 1).to_string()
    })
}

thread_local! {
    // An isolate's environment never changes: read it once, not on every request.
    static CONFIG: std::cell::RefCell<Option<Config>> = const { std::cell::RefCell::new(None) };
}

fn cached_config(env: &Env) -> Result<Config, crate::config::MissingVariables> {
    if let Some(config) = CONFIG.with(|cached| cached.borrow().clone()) {
        return Ok(config);
    }
    let config = Config::read(|name| read_var(env, name))?;
    CONFIG.with(|cached| *cached.borrow_mut() = Some(config.clone()));
    Ok(config)
}

fn preflight(allow: &str) -> Reply {
    Ok(Answer::new(204, Body::Empty)
        .with_header("access-control-allow-methods", allow)
        .with_header("access-control-allow-headers", cors::ALLOWED_HEADERS)
        .with_header("access-control-max-age", cors::MAX_AGE_SECONDS)
        .with_header("allow", allow))
}

/// `GET /health`: the function's name and version, and whether PostgREST and the database
/// answer (`GET /rpc/health`, a function that returns true).
async fn health(call: &Call, service: &Service) -> Reply {
    let url = format!("{}/rpc/health", call.config.postgrest_url);
    let started = now_millis();
    let authorization = format!("Bearer {}", call.config.anon_key);
    let headers = [("apikey", call.config.anon_key.as_str()), ("authorization", authorization.as_str())];
    let upstream_status = outbound::fetch("GET", &url, &headers, None).await.ok().map(|response| response.status());
    let reachable = upstream_status.is_some_and(|status| status < 500);
    json_reply(
        if reachable { 200 } else { 503 },
        &json!({
            "name": service.name,
            "version": service.version,
            "status": if reachable { "ok" } else { "degraded" },
            "postgrest": {
                "reachable": reachable,
                "status": upstream_status,
                "latency_ms": now_millis().saturating_sub(started),
            },
        }),
    )
}

fn error_answer(error: &ApiError) -> Answer {
    let mut answer = Answer::json_text(error.status, error.body().to_string());
    if let Some(seconds) = error.retry_after {
        answer = answer.with_header("retry-after", &seconds.to_string());
    }
    if let Some(allow) = error.details.get("allow").and_then(|allow| allow.as_str()) {
        answer = answer.with_header("allow", allow);
    }
    answer
}

fn decorate(answer: Answer, request_id: &str, allow_origin: Option<String>) -> Answer {
    let answer = answer.with_header("x-request-id", request_id);
    match allow_origin {
        Some(origin) => answer
            .with_header("access-control-allow-origin", &origin)
            .with_header("access-control-expose-headers", cors::EXPOSED_HEADERS)
            .with_header("vary", "Origin"),
        None => answer,
    }
}

/// Milliseconds since the epoch, read without allocating a `Date` as `worker::Date::now` does.
pub fn now_millis() -> u64 {
    js_sys::Date::now() as u64
}

fn is_safe_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn log_line(value: &serde_json::Value) {
    console_log!("{value}");
}

pub fn log_error(request_id: &str, code: &str, message: &str) {
    log_line(&json!({ "level": "error", "request_id": request_id, "code": code, "message": message }));
}

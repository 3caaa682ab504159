//! Domain rules and plumbing shared by every Call-an-Expert worker.
//!
//! Everything except [`edge`] is plain Rust, tested natively with `cargo test`; [`edge`] is the
//! thin Cloudflare Workers glue, compiled only with the `worker` feature.

pub mod auth;
pub mod booking;
pub mod calendar;
pub mod config;
pub mod cors;
pub mod db;
pub mod email;
pub mod error;
pub mod outbox;
pub mod pricing;
pub mod refund;
pub mod rpc;
pub mod search;
pub mod stripe;
pub mod tokens;
pub mod validate;
pub mod webhook;

#[cfg(feature = "worker")]
pub mod edge;

pub use error::ApiError;

//! Domain rules and plumbing shared by every Call-an-Expert worker.
//!
//! Everything except [`edge`] is plain Rust, tested natively with `cargo test`; [`edge`] is the
//! thin Cloudflare Workers glue, compiled only with the `worker` feature.

pub mod config;
pub mod auth;
pub mod booking;
pub mod calendar;
pub mod cors;
pub mod db;
pub mod email;
pub mod error;
pub mod pricing;
pub mod refund;
pub mod outbox;
pub mod search;
pub mod tokens;
pub mod webhook;
pub mod validate;

#[cfg(feature = "worker")]
pub mod edge;

pub use error::ApiError;

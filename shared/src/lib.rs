//! Domain rules and plumbing shared by every Call-an-Expert worker.
//!
//! Everything except [`edge`] is plain Rust, tested natively with `cargo test`; [`edge`] is the
//! thin Cloudflare Workers glue, compiled only with the `worker` feature.

pub mod config;
pub mod cors;
pub mod error;

#[cfg(feature = "worker")]
pub mod edge;

pub use error::ApiError;

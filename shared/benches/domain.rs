//! `cargo bench -p shared`: the cost per call of pricing, a refund decision and HS256 token
//! verification, natively. Plain timing loops; the figures are printed, not judged.

use shared::auth::{PublicKey, SignatureCheck, Verifier};
use shared::booking::Side;
use shared::pricing::Price;
use shared::refund::{refund, Charge};
use shared::validate::{parse_instant, CommissionBps, Currency, DurationMinutes, MinorUnits};
use std::hint::black_box;
use std::time::Instant;

fn measure<T>(name: &str, iterations: u32, mut run: impl FnMut() -> T) {
    for _ in 0..iterations / 10 {
        black_box(run());
    }
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(run());
    }
    let per_call = started.elapsed().as_secs_f64() / f64::from(iterations);
    println!("{name:<32} {:>10.3} µs per call ({iterations} calls)", per_call * 1e6);
}

/// HS256 needs no asymmetric check.
struct NoAsymmetricKeys;

impl SignatureCheck for NoAsymmetricKeys {
    async fn verify(&self, _: &PublicKey, _: &[u8], _: &[u8]) -> bool {
        false
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("HS256 verification does not wait"),
    }
}

fn main() {
    let rate = MinorUnits::parse(15_000).unwrap();
    let duration = DurationMinutes::parse(75).unwrap();
    let currency = Currency::parse("USD").unwrap();
    measure("pricing (Price::quote)", 1_000_000, || {
        Price::quote(black_box(rate), duration, CommissionBps::DEFAULT, currency)
    });

    let charge =
        Charge { amount_cents: 18_750, platform_fee_cents: 1_875, expert_payout_cents: 16_875, captured: true };
    let start = parse_instant("2030-06-10T12:00:00Z").unwrap();
    let now = parse_instant("2030-06-09T20:00:00Z").unwrap();
    measure("refund decision", 1_000_000, || refund(black_box(charge), start, Side::Client, now));

    let vectors: serde_json::Value = serde_json::from_str(include_str!("../tests/fixtures/jwt-vectors.json")).unwrap();
    let verifier = Verifier::new(vectors["secret"].as_str());
    let token = vectors["tokens"]["hs256_user"].as_str().unwrap();
    let clock = chrono::DateTime::from_timestamp(vectors["now"].as_i64().unwrap(), 0).unwrap();
    assert!(block_on(verifier.verify(token, clock, &NoAsymmetricKeys)).is_ok());
    measure("HS256 JWT verification", 100_000, || {
        block_on(verifier.verify(black_box(token), clock, &NoAsymmetricKeys))
    });
}

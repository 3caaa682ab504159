//! The cancellation policy (SPEC section 3), decided with the server's clock:
//!
//! - by the expert: 100%;
//! - by the client more than 24 hours before the start (strictly): 100%;
//! - by the client later, but before the start: 50%, rounded half up in the client's favour;
//! - nothing can be cancelled once started;
//! - a session never charged (a request the expert has not confirmed) refunds nothing.
//!
//! The refund is split between platform fee and expert payout in proportion to the charge,
//! the fee part rounded half up; the payout part is the rest, so the parts add up.

use crate::booking::Side;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// What the policy needs to know about a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub amount_cents: i64,
    pub platform_fee_cents: i64,
    pub expert_payout_cents: i64,
    /// False while the charge is only pending (a requested session).
    pub captured: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Refund {
    pub percent: u8,
    pub amount_cents: i64,
    pub platform_fee_cents: i64,
    pub expert_payout_cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCancellable {
    AlreadyStarted,
}

/// Strictly more than this before the start, a client gets everything back.
pub const FULL_REFUND_NOTICE: Duration = Duration::hours(24);

pub fn refund(
    charge: Charge,
    starts_at: DateTime<Utc>,
    by: Side,
    now: DateTime<Utc>,
) -> Result<Refund, NotCancellable> {
    if now >= starts_at {
        return Err(NotCancellable::AlreadyStarted);
    }
    let percent: u8 = match by {
        _ if !charge.captured => 0,
        Side::Expert => 100,
        Side::Client if starts_at - now > FULL_REFUND_NOTICE => 100,
        Side::Client => 50,
    };
    let amount = match percent {
        100 => charge.amount_cents,
        50 => (charge.amount_cents + 1) / 2,
        _ => 0,
    };
    Ok(split(charge, percent, amount))
}

/// The refund of `amount` split between fee and payout in proportion to the charge: the fee
/// part rounded half up, the payout part the rest. Also rebuilds a stored refund's breakdown.
pub fn split(charge: Charge, percent: u8, amount: i64) -> Refund {
    let fee = if charge.amount_cents == 0 {
        0
    } else {
        // i128: fee x refund can exceed i64 for the largest sessions.
        let numerator = i128::from(charge.platform_fee_cents) * i128::from(amount);
        let denominator = i128::from(charge.amount_cents);
        ((numerator * 2 + denominator) / (denominator * 2)) as i64
    };
    Refund { percent, amount_cents: amount, platform_fee_cents: fee, expert_payout_cents: amount - fee }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-06-10T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    const CHARGED: Charge =
        Charge { amount_cents: 15_001, platform_fee_cents: 1_500, expert_payout_cents: 13_501, captured: true };

    #[test]
    fn the_policy_at_its_boundaries() {
        let cases = [
            ("25 hours before", Duration::hours(-25), Side::Client, Some(100)),
            ("24 h and 1 s before", Duration::hours(-24) - Duration::seconds(1), Side::Client, Some(100)),
            ("exactly 24 h before (not strictly more)", Duration::hours(-24), Side::Client, Some(50)),
            ("24 h less 1 s before", Duration::hours(-24) + Duration::seconds(1), Side::Client, Some(50)),
            ("1 s before the start", Duration::seconds(-1), Side::Client, Some(50)),
            ("at the start", Duration::zero(), Side::Client, None),
            ("after the start", Duration::minutes(5), Side::Client, None),
            ("the expert, 1 hour before", Duration::hours(-1), Side::Expert, Some(100)),
            ("the expert, at the start", Duration::zero(), Side::Expert, None),
        ];
        for (case, offset, by, expected) in cases {
            let outcome = refund(CHARGED, start(), by, start() + offset).ok().map(|refund| refund.percent);
            assert_eq!(outcome, expected, "{case}");
        }
    }

    #[test]
    fn half_of_an_odd_amount_rounds_in_the_clients_favour() {
        let refund = refund(CHARGED, start(), Side::Client, start() - Duration::hours(2)).unwrap();
        assert_eq!(refund.amount_cents, 7_501);
        assert_eq!((refund.platform_fee_cents, refund.expert_payout_cents), (750, 6_751));
    }

    #[test]
    fn a_full_refund_returns_the_fee_and_payout_exactly() {
        let refund = refund(CHARGED, start(), Side::Expert, start() - Duration::hours(2)).unwrap();
        assert_eq!(
            (refund.amount_cents, refund.platform_fee_cents, refund.expert_payout_cents),
            (15_001, 1_500, 13_501)
        );
    }

    #[test]
    fn a_session_never_charged_refunds_nothing() {
        let pending = Charge { captured: false, ..CHARGED };
        let refund = refund(pending, start(), Side::Client, start() - Duration::days(3)).unwrap();
        assert_eq!(
            (refund.percent, refund.amount_cents, refund.platform_fee_cents, refund.expert_payout_cents),
            (0, 0, 0, 0)
        );
    }

    proptest! {
        #[test]
        fn a_refund_never_exceeds_the_charge_and_its_parts_add_up(
            amount in 1i64..=80_000_000, bps in 0i64..=10_000, minutes_before in -600i64..=10_000, expert in any::<bool>(), captured in any::<bool>()
        ) {
            let fee = (amount * bps + 5_000) / 10_000;
            let charge = Charge { amount_cents: amount, platform_fee_cents: fee, expert_payout_cents: amount - fee, captured };
            let by = if expert { Side::Expert } else { Side::Client };
            if let Ok(refund) = refund(charge, start(), by, start() - Duration::minutes(minutes_before)) {
                prop_assert!(refund.amount_cents <= amount && refund.amount_cents >= 0);
                prop_assert_eq!(refund.platform_fee_cents + refund.expert_payout_cents, refund.amount_cents);
                prop_assert!(refund.platform_fee_cents <= fee && refund.expert_payout_cents <= amount - fee);
                prop_assert!(refund.platform_fee_cents >= 0 && refund.expert_payout_cents >= 0);
            } else {
                prop_assert!(minutes_before <= 0);
            }
        }
    }
}

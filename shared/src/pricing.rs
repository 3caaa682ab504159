//! Pricing (SPEC section 3): integer minor units only, checked arithmetic throughout.
//!
//! - amount = hourly rate x duration / 60, rounded half up to a whole minor unit;
//! - platform fee = amount x commission (basis points) / 10000, rounded half up;
//! - expert payout = amount - fee, so fee + payout == amount always.
//!
//! Half up on non-negative integers: round(x / d) = (x + d / 2) / d with d even (60, 10000).
//! The database mirrors these formulas as CHECK constraints on `sessions`.

use crate::validate::{CommissionBps, Currency, DurationMinutes, MinorUnits};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Price {
    pub hourly_rate_cents: i64,
    pub duration_minutes: u32,
    pub commission_bps: u16,
    pub amount_cents: i64,
    pub platform_fee_cents: i64,
    pub expert_payout_cents: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the price does not fit in 64-bit minor units")
    }
}

/// `numerator / denominator` rounded half up, for a non-negative numerator and even denominator.
fn div_round_half_up(numerator: i64, denominator: i64) -> Option<i64> {
    numerator.checked_add(denominator / 2)?.checked_div(denominator)
}

impl Price {
    pub fn quote(
        rate: MinorUnits,
        duration: DurationMinutes,
        commission: CommissionBps,
        currency: Currency,
    ) -> Result<Self, Overflow> {
        let amount = rate
            .get()
            .checked_mul(i64::from(duration.get()))
            .and_then(|total| div_round_half_up(total, 60))
            .ok_or(Overflow)?;
        let fee = amount
            .checked_mul(i64::from(commission.get()))
            .and_then(|total| div_round_half_up(total, 10_000))
            .ok_or(Overflow)?;
        Ok(Self {
            hourly_rate_cents: rate.get(),
            duration_minutes: duration.get(),
            commission_bps: commission.get(),
            amount_cents: amount,
            platform_fee_cents: fee,
            expert_payout_cents: amount - fee,
            currency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn quote(rate: i64, minutes: i64, bps: i64) -> Price {
        Price::quote(
            MinorUnits::parse(rate).unwrap(),
            DurationMinutes::parse(minutes).unwrap(),
            CommissionBps::parse(bps).unwrap(),
            Currency::parse("USD").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn an_hour_at_150_dollars_costs_150_with_a_15_dollar_fee() {
        let price = quote(15_000, 60, 1000);
        assert_eq!((price.amount_cents, price.platform_fee_cents, price.expert_payout_cents), (15_000, 1_500, 13_500));
    }

    #[test]
    fn a_fraction_of_a_cent_rounds_half_up() {
        // 33.33/h for 75 minutes = 4166.25 cents -> 4166; fee 416.6 -> 417.
        let price = quote(3_333, 75, 1000);
        assert_eq!((price.amount_cents, price.platform_fee_cents, price.expert_payout_cents), (4_166, 417, 3_749));
        // 0.02/h for 75 minutes = 2.5 cents -> 3 (exactly half goes up).
        assert_eq!(quote(2, 75, 1000).amount_cents, 3);
        // 0.01/h for 90 minutes = 1.5 -> 2, fee 0.2 -> 0.
        let tiny = quote(1, 90, 1000);
        assert_eq!((tiny.amount_cents, tiny.platform_fee_cents, tiny.expert_payout_cents), (2, 0, 2));
    }

    #[test]
    fn a_fee_of_exactly_half_a_cent_rounds_up() {
        // 1.05 at 10% = 10.5 cents -> 11.
        assert_eq!(quote(105, 60, 1000).platform_fee_cents, 11);
    }

    #[test]
    fn the_largest_allowed_inputs_price_without_overflow() {
        let price = quote(MinorUnits::MAX_RATE, 480, 10_000);
        assert_eq!(price.amount_cents, MinorUnits::MAX_RATE * 8);
        assert_eq!(price.platform_fee_cents, price.amount_cents);
        assert_eq!(price.expert_payout_cents, 0);
    }

    #[test]
    fn arithmetic_that_would_overflow_is_an_error_not_a_wrap() {
        assert_eq!(div_round_half_up(i64::MAX, 60), None);
    }

    proptest! {
        #[test]
        fn fee_plus_payout_is_always_the_amount(rate in 1i64..=MinorUnits::MAX_RATE, steps in 0i64..=28, bps in 0i64..=10_000) {
            let price = quote(rate, 60 + steps * 15, bps);
            prop_assert_eq!(price.platform_fee_cents + price.expert_payout_cents, price.amount_cents);
            prop_assert!(price.platform_fee_cents >= 0 && price.expert_payout_cents >= 0);
        }

        #[test]
        fn the_amount_never_decreases_with_duration(rate in 1i64..=MinorUnits::MAX_RATE, steps in 0i64..28, bps in 0i64..=10_000) {
            prop_assert!(quote(rate, 60 + steps * 15, bps).amount_cents <= quote(rate, 75 + steps * 15, bps).amount_cents);
        }

        #[test]
        fn the_amount_never_decreases_with_the_rate(rate in 1i64..MinorUnits::MAX_RATE, steps in 0i64..=28) {
            prop_assert!(quote(rate, 60 + steps * 15, 1000).amount_cents <= quote(rate + 1, 60 + steps * 15, 1000).amount_cents);
        }

        #[test]
        fn the_amount_is_the_exact_product_rounded_half_up(rate in 1i64..=MinorUnits::MAX_RATE, steps in 0i64..=28) {
            let minutes = 60 + steps * 15;
            let exact_times_60 = i128::from(rate) * i128::from(minutes);
            let amount = i128::from(quote(rate, minutes, 1000).amount_cents);
            // |amount - exact| <= 1/2, with exactly 1/2 resolved upwards.
            prop_assert!((amount * 60 - exact_times_60) * 2 <= 60 && (exact_times_60 - amount * 60) * 2 < 60);
        }
    }
}

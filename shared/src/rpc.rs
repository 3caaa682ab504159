//! The contract between the workers and the database: one type per database function the
//! workers call, with its name, its named arguments (the struct's fields, serialised as they
//! are) and its result. `Db::call` is the only way a worker calls a function.
//!
//! The argument names and types are checked from both sides:
//! `supabase/tests/database/017-rpc-contract.test.sql` checks each function's signature in the
//! database, and the test below checks each struct's fields against that same file, so that
//! renaming an argument on either side fails a test.

use crate::outbox::{Advanced, Claim, Outcome, Recorded};
use crate::stripe::PaymentPlan;
use crate::tokens::StoredToken;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A database function the workers call, in `public`.
pub trait Rpc: Serialize {
    const NAME: &'static str;
    type Output: DeserializeOwned;
}

macro_rules! rpc {
    ($(#[$doc:meta])* $name:ident = $sql:literal -> $output:ty { $($(#[$field_doc:meta])* $field:ident: $kind:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Serialize)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: $kind),*
        }

        impl Rpc for $name {
            const NAME: &'static str = $sql;
            type Output = $output;
        }
    };
}

/// What the worker saw of its client, kept in audit rows as reported context beside the
/// database's own facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditContext {
    pub request_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A session as the database returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub id: Uuid,
    pub client_id: Uuid,
    pub expert_id: Uuid,
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
    pub starts_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
    pub ends_at: DateTime<Utc>,
    pub duration_minutes: i64,
    pub status: String,
    pub hourly_rate_cents: i64,
    pub amount_cents: i64,
    pub platform_fee_cents: i64,
    pub expert_payout_cents: i64,
    pub commission_bps: i64,
    pub currency: String,
    pub notes: String,
    pub meeting_provider: String,
    pub room_name: Option<String>,
    pub room_url: Option<String>,
    pub payment_intent_id: Option<String>,
    #[serde(default, deserialize_with = "crate::validate::rfc3339::option")]
    pub payment_due_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::validate::rfc3339::option")]
    pub answer_by: Option<DateTime<Utc>>,
    pub cancelled_by: Option<Uuid>,
    #[serde(default, deserialize_with = "crate::validate::rfc3339::option")]
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancellation_reason: Option<String>,
    pub refund_amount_cents: Option<i64>,
    pub refund_percent: Option<u8>,
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
    pub created_at: DateTime<Utc>,
}

/// An active expert's rate, the commission the server applies to them, and whether they can be paid.
#[derive(Debug, Clone, Deserialize)]
pub struct Quote {
    pub expert_id: Uuid,
    pub hourly_rate_cents: i64,
    pub currency: String,
    pub commission_bps: i64,
    pub instant_booking: bool,
    pub accepts_payments: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cancelled {
    pub session: Session,
    pub newly_cancelled: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Replayed {
    pub id: Uuid,
    pub channel: String,
    pub topic: String,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Queued {
    pub outbox_id: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issued {
    pub email: String,
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
    pub expires_at: DateTime<Utc>,
    pub outbox_id: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Confirmed {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedEvent {
    pub event: String,
    pub status: String,
    pub session_id: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PayoutAccount {
    pub expert_id: Uuid,
    pub email: String,
    pub stripe_account_id: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
}

/// One ranked expert of a search page.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FoundExpert {
    pub expert_id: Uuid,
    pub score: f64,
    pub score_parts: Value,
    #[serde(deserialize_with = "crate::validate::rfc3339::list")]
    pub next_slots: Vec<DateTime<Utc>>,
    #[serde(flatten)]
    pub profile: serde_json::Map<String, Value>,
}

/// The whole answer of find-experts, as the database writes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SearchPage {
    pub experts: Vec<FoundExpert>,
    pub match_request_id: Option<Uuid>,
    pub next_cursor: Option<String>,
}

rpc!(ExpertQuote = "expert_quote" -> Option<Quote> { expert_id: Uuid });

rpc!(
    /// Books for the calling user at the database's own price; the slot is held for its payment.
    BookSession = "book_session" -> Session {
        expert_id: Uuid, starts_at: DateTime<Utc>, duration_minutes: i64, hourly_rate_cents: i64, commission_bps: i64,
        amount_cents: i64, platform_fee_cents: i64, expert_payout_cents: i64, currency: String, notes: String,
        context: AuditContext,
    }
);

rpc!(
    FindExperts = "find_experts" -> SearchPage {
        skills: Vec<String>, max_rate_cents: Option<i64>, currency: Option<String>, window_from: Option<DateTime<Utc>>,
        window_to: Option<DateTime<Utc>>, duration_minutes: i64, min_rating: Option<f64>, page_size: i64,
        /// The cursor's score, as the database wrote it (numeric, exact).
        after_score: Option<String>,
        after_id: Option<Uuid>,
    }
);

rpc!(
    CancelSession = "service_role_cancel_session" -> Cancelled {
        session_id: Uuid, actor_id: Uuid, reason: String, refund_percent: u8, refund_amount_cents: i64,
        refund_fee_cents: i64, refund_payout_cents: i64, context: AuditContext,
    }
);

rpc!(PaymentPlanOf = "service_role_payment_plan" -> Option<PaymentPlan> { session_id: Uuid });

rpc!(
    /// Stripe objects received in API answers, mirrored into the ledger as events are.
    RecordStripeObjects = "service_role_record_stripe_objects" -> Vec<String> { objects: Vec<Value> }
);

rpc!(AbandonBooking = "service_role_abandon_booking" -> bool { session_id: Uuid, reason: String, context: AuditContext });

/// A verified Stripe event, passed on as it was signed (its JSON only checked for syntax).
#[derive(Debug, Clone, Serialize)]
pub struct ReceiveStripeEvent {
    pub event: Box<serde_json::value::RawValue>,
    pub signed_at: i64,
}

impl Rpc for ReceiveStripeEvent {
    const NAME: &'static str = "service_role_receive_stripe_event";
    type Output = ReceivedEvent;
}

rpc!(PayoutAccountOf = "service_role_payout_account" -> Option<PayoutAccount> { expert_id: Uuid });

rpc!(AdvanceSessions = "service_role_advance_sessions" -> Advanced { batch_size: i64, grace_minutes: i64 });

rpc!(
    ClaimOutbox = "service_role_claim_outbox" -> Claim {
        email_batch: i64, calls: i64, lease_seconds: i64, only_session: Option<Uuid>, only_ids: Option<Vec<Uuid>>,
    }
);

rpc!(CompleteOutbox = "service_role_complete_outbox" -> Recorded { results: Vec<Outcome> });

rpc!(ReplayOutbox = "service_role_replay_outbox" -> Replayed { outbox_id: Uuid });

rpc!(RecordWebhook = "service_role_record_webhook" -> bool { webhook_id: String });

rpc!(ForgetWebhook = "service_role_forget_webhook" -> () { webhook_id: String });

rpc!(
    IssueEmailVerification = "service_role_issue_email_verification" -> Issued {
        user_id: Uuid, token_id: Uuid, token_hash: String, context: AuditContext,
    }
);

rpc!(ConfirmEmail = "service_role_confirm_email" -> Confirmed { token_id: Uuid, context: AuditContext });

rpc!(
    /// Counts a hit in a rate-limit bucket: the seconds to wait, 0 when under the limit.
    HitRateLimit = "service_role_hit_rate_limit" -> u64 { bucket: String, max_hits: i64, window_seconds: i64 }
);

rpc!(
    IssuePasswordReset = "service_role_issue_password_reset" -> Option<Queued> {
        email: String, token_id: Uuid, token_hash: String, context: AuditContext,
    }
);

rpc!(
    CompletePasswordReset = "service_role_complete_password_reset" -> Queued {
        token_id: Uuid, password: String, context: AuditContext,
    }
);

rpc!(AccountToken = "service_role_account_token" -> Option<StoredToken> { kind: String, token_id: Uuid });

rpc!(FailTokenAttempt = "service_role_fail_token_attempt" -> Option<i64> { kind: String, token_id: Uuid });

impl Default for ReceiveStripeEvent {
    fn default() -> Self {
        Self { event: serde_json::value::RawValue::from_string("{}".into()).expect("{} is JSON"), signed_at: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT: &str = include_str!("../../supabase/tests/database/017-rpc-contract.test.sql");

    /// The argument names the contract file gives a function: `('name', 'a uuid, b text')`.
    fn contract_arguments(name: &str) -> Vec<String> {
        let marker = format!("('{name}', '");
        let line = CONTRACT.lines().find(|line| line.trim_start().starts_with(&marker));
        let line = line.unwrap_or_else(|| panic!("{name} is not in 017-rpc-contract.test.sql"));
        let arguments = &line.trim_start()[marker.len()..];
        let arguments = &arguments[..arguments.find("')").expect("the line closes its arguments")];
        arguments.split(", ").map(|argument| argument.split(' ').next().unwrap_or_default().to_owned()).collect()
    }

    fn fields<T: Rpc + Default>() -> Vec<String> {
        match serde_json::to_value(T::default()).expect("arguments serialise") {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("{} serialises as {other}", T::NAME),
        }
    }

    fn check<T: Rpc + Default>() {
        let mut ours = fields::<T>();
        let mut theirs = contract_arguments(T::NAME);
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{}: the struct's fields against the database's arguments", T::NAME);
    }

    #[test]
    fn every_function_the_workers_call_takes_the_arguments_its_type_sends() {
        check::<ExpertQuote>();
        check::<BookSession>();
        check::<FindExperts>();
        check::<CancelSession>();
        check::<PaymentPlanOf>();
        check::<RecordStripeObjects>();
        check::<AbandonBooking>();
        check::<ReceiveStripeEvent>();
        check::<PayoutAccountOf>();
        check::<AdvanceSessions>();
        check::<ClaimOutbox>();
        check::<CompleteOutbox>();
        check::<ReplayOutbox>();
        check::<RecordWebhook>();
        check::<ForgetWebhook>();
        check::<IssueEmailVerification>();
        check::<ConfirmEmail>();
        check::<HitRateLimit>();
        check::<IssuePasswordReset>();
        check::<CompletePasswordReset>();
        check::<AccountToken>();
        check::<FailTokenAttempt>();
    }

    #[test]
    fn the_contract_lists_no_function_the_workers_do_not_call() {
        let listed = CONTRACT.lines().filter(|line| line.trim_start().starts_with("('")).count();
        assert_eq!(listed, 22, "one line per type above");
    }

    #[test]
    fn a_session_reads_as_the_database_writes_it() {
        let row = r#"{"id": "55555555-5555-4555-8555-555555555503", "client_id": "11111111-1111-4111-8111-111111111111",
            "expert_id": "22222222-2222-4222-8222-222222222204", "starts_at": "2030-01-07T10:00:00+00:00", "ends_at": "2030-01-07T11:00:00+00:00",
            "duration_minutes": 60, "status": "awaiting_payment", "hourly_rate_cents": 9000, "amount_cents": 9000, "platform_fee_cents": 900,
            "expert_payout_cents": 8100, "commission_bps": 1000, "currency": "USD", "notes": "", "meeting_provider": "daily",
            "room_name": "cae-5", "room_url": "https://x.daily.co/cae-5", "payment_intent_id": null,
            "payment_due_at": "2030-01-01T10:15:00.123456+00:00", "answer_by": null, "cancelled_by": null, "cancelled_at": null,
            "cancellation_reason": null, "refund_amount_cents": null, "refund_percent": null, "created_at": "2030-01-01T10:00:00.123456+00:00",
            "calendar_sequence": 0, "updated_at": "2030-01-01T10:00:00+00:00"}"#;
        let session: Session = serde_json::from_str(row).unwrap();
        assert_eq!((session.status.as_str(), session.amount_cents), ("awaiting_payment", 9000));
        assert!(session.payment_due_at.is_some());
    }
}

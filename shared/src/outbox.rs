//! The dispatcher's rules, pure: what a claim hands over, how each email topic is rendered,
//! what is recorded back, and the subrequest budget of one invocation. The database claims,
//! backs off and records; `edge::dispatch` talks to the providers.

use crate::booking::Side;
use crate::email::{
    password_changed, password_reset, verify_email, Message, Sender, SessionContacts, SessionEvent, Transition,
};
use crate::stripe::{PaymentWork, Reported};
use crate::tokens::{TokenKey, TokenKind};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

/// The most emails the provider's batch endpoint takes in one call.
pub const MAX_BATCH: u32 = 100;
/// The most room or webhook calls one round makes.
pub const MAX_CALLS: u32 = 10;
/// The Workers free plan allows 50 subrequests per invocation; the default leaves headroom.
pub const DEFAULT_BUDGET: u32 = 40;
/// The smallest round: a claim, one call, the record of its outcome.
pub const MIN_ROUND: u32 = 3;

/// Counts the subrequests of one invocation so that it never exceeds its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    limit: u32,
    used: u32,
}

impl Budget {
    pub fn new(limit: u32) -> Self {
        Self { limit, used: 0 }
    }

    /// Whether a round can still start and finish: a claim, a call and a record.
    pub fn allows_round(&self) -> bool {
        self.used + MIN_ROUND <= self.limit
    }

    /// How many room and webhook calls a round may make on top of its claim, its email batch
    /// and its record.
    pub fn calls_for_round(&self) -> u32 {
        self.limit.saturating_sub(self.used + MIN_ROUND).min(MAX_CALLS)
    }

    pub fn spend(&mut self, subrequests: u32) {
        self.used += subrequests;
    }

    pub fn used(&self) -> u32 {
        self.used
    }
}

/// How many rows of each channel are still due after a claim.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct Remaining {
    pub email: u64,
    pub room: u64,
    pub webhook: u64,
    #[serde(default)]
    pub payment: u64,
}

impl Remaining {
    pub fn total(&self) -> u64 {
        self.email + self.room + self.webhook + self.payment
    }
}

/// What `service_role_claim_outbox` hands one round.
#[derive(Debug, Clone, Deserialize)]
pub struct Claim {
    /// The idempotency key of the email batch: kept by the database until the batch is sent.
    pub batch_key: Option<String>,
    pub emails: Vec<ClaimedEmail>,
    pub rooms: Vec<RoomWork>,
    pub webhooks: Vec<WebhookWork>,
    #[serde(default)]
    pub payments: Vec<PaymentWork>,
    pub skipped: u64,
    pub failed: u64,
    pub remaining: Remaining,
}

impl Claim {
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.rooms.is_empty() && self.webhooks.is_empty() && self.payments.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Recipient {
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Their side of the session, for session emails.
    pub side: Option<Side>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClaimedEmail {
    pub id: Uuid,
    pub topic: String,
    /// When the row was queued: the invitation's DTSTAMP, so that a retried batch has the
    /// very same body under its idempotency key.
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
    pub queued_at: DateTime<Utc>,
    /// Kept as the database wrote it and read once into the type its topic needs: decoding a
    /// `Value` again would build a second deserializer of every payload type into the wasm.
    #[serde(default)]
    pub payload: Option<Box<RawValue>>,
    pub recipient: Recipient,
    pub contacts: Option<SessionContacts>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoomWork {
    pub id: Uuid,
    pub topic: String,
    pub room_name: String,
    pub not_before: i64,
    pub expires: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookWork {
    pub id: Uuid,
    pub topic: String,
    /// The Standard Webhooks message id: the same on every attempt and replay.
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
    pub body: Value,
}

/// What renders claimed emails: links, the invitations' organizer, and the token key.
pub struct Renderer<'a> {
    pub site_url: &'a str,
    pub organizer: &'a str,
    pub token_key: Option<&'a TokenKey>,
}

#[derive(Deserialize)]
struct TokenPayload {
    token_id: Uuid,
}

impl ClaimedEmail {
    fn payload<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(self.payload.as_deref().map_or("null", RawValue::get))
            .map_err(|error| format!("{}: {error}", self.topic))
    }

    /// The message this row asks for, or why it cannot be made.
    pub fn render(&self, renderer: &Renderer<'_>) -> Result<Message, String> {
        let to = self.recipient.email.as_deref().ok_or("the recipient has no email address")?;
        let name = self.recipient.name.as_deref().unwrap_or_default();
        let site = renderer.site_url.trim_end_matches('/');
        let link = |kind: TokenKind, path: &str| -> Result<String, String> {
            let payload: TokenPayload = self.payload()?;
            let key = renderer.token_key.ok_or("ACCOUNT_TOKEN_KEY is not set")?;
            Ok(format!("{site}/{path}?token={}", key.token(kind, payload.token_id).link_token))
        };
        match self.topic.as_str() {
            "account.password_reset" => {
                Ok(password_reset(to, name, &link(TokenKind::PasswordReset, "reset-password")?))
            }
            "account.email_verification" => {
                Ok(verify_email(to, name, &link(TokenKind::EmailVerification, "verify-email")?))
            }
            "account.password_changed" => Ok(password_changed(to, name)),
            topic => {
                let contacts = self.contacts.as_ref().ok_or_else(|| format!("{topic} has no session"))?;
                let side = self.recipient.side.ok_or_else(|| format!("{topic}: the recipient is not a participant"))?;
                if let Some(kind) = topic.strip_prefix("reminder.") {
                    return Ok(contacts.reminder(side, kind));
                }
                let event = SessionEvent::parse(topic).ok_or_else(|| format!("no email for {topic}"))?;
                let change: Transition = self.payload()?;
                let sender = Sender { site_url: renderer.site_url, organizer: renderer.organizer, now: self.queued_at };
                Ok(contacts.notification(event, side, &change, &sender))
            }
        }
    }
}

/// What is recorded for one claimed row (`service_role_complete_outbox`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Outcome {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    /// Payments: the Stripe object the answer carried, mirrored into the ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// Payments: Stripe refused in a way it will repeat; no retry.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub permanent: bool,
}

impl Outcome {
    pub fn done(id: Uuid, provider_ref: impl Into<String>) -> Self {
        Self { id, provider_ref: Some(provider_ref.into()), ..Default::default() }
    }

    pub fn failed(id: Uuid, error: impl Into<String>) -> Self {
        Self { id, error: Some(error.into()), ..Default::default() }
    }

    /// A payment operation's outcome from what Stripe answered.
    pub fn reported(id: Uuid, reported: Reported) -> Self {
        Self {
            id,
            provider_ref: reported.provider_ref,
            error: reported.error,
            object: reported.object,
            permanent: reported.permanent,
            ..Default::default()
        }
    }
}

/// How the provider answered a batch of emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchAnswer {
    /// Sent (or replayed under the same key): the provider's ids, in order.
    Sent(Vec<String>),
    /// The key was already used for a batch with other members (some were skipped since):
    /// that earlier batch went out, so every member was sent then.
    AlreadySent,
    Failed(String),
}

/// One outcome per email of a batch.
pub fn batch_outcomes(emails: &[ClaimedEmail], batch_key: &str, answer: BatchAnswer) -> Vec<Outcome> {
    match answer {
        BatchAnswer::Sent(ids) if ids.len() == emails.len() => {
            emails.iter().zip(ids).map(|(email, id)| Outcome::done(email.id, id)).collect()
        }
        BatchAnswer::Sent(ids) => emails
            .iter()
            .map(|email| {
                Outcome::failed(
                    email.id,
                    format!("the provider answered {} ids for {} emails", ids.len(), emails.len()),
                )
            })
            .collect(),
        BatchAnswer::AlreadySent => emails
            .iter()
            .enumerate()
            .map(|(index, email)| Outcome::done(email.id, format!("sent earlier under {batch_key}#{index}")))
            .collect(),
        BatchAnswer::Failed(error) => emails.iter().map(|email| Outcome::failed(email.id, error.clone())).collect(),
    }
}

/// What `service_role_advance_sessions` did, and the rooms still missing near their start.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Advanced {
    pub expired: u64,
    pub completed: u64,
    #[serde(default)]
    pub rooms_missing: Vec<Value>,
    /// Stripe events that named something not known yet, applied again.
    #[serde(default)]
    pub stripe_events_retried: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Recorded {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// One run's structured summary line.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub expired: u64,
    pub completed: u64,
    pub rooms_missing: u64,
    pub stripe_events_retried: u64,
    pub claimed: u64,
    pub sent: u64,
    pub skipped: u64,
    pub retrying: u64,
    pub failed: u64,
    pub remaining: u64,
    pub batches: u32,
    pub calls: u32,
    pub subrequests: u32,
}

impl Summary {
    pub fn add_advanced(&mut self, advanced: &Advanced) {
        self.expired += advanced.expired;
        self.completed += advanced.completed;
        self.rooms_missing = advanced.rooms_missing.len() as u64;
        self.stripe_events_retried += advanced.stripe_events_retried;
    }

    pub fn add_claim(&mut self, claim: &Claim) {
        self.claimed += (claim.emails.len() + claim.rooms.len() + claim.webhooks.len() + claim.payments.len()) as u64;
        self.skipped += claim.skipped;
        self.failed += claim.failed;
        self.remaining = claim.remaining.total();
    }

    pub fn add_recorded(&mut self, recorded: &Recorded) {
        self.sent += recorded.sent;
        self.retrying += recorded.retrying;
        self.failed += recorded.failed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contacts() -> Value {
        json!({
            "session_id": "55555555-5555-4555-8555-555555555503", "room_url": "https://x.daily.co/cae-1", "duration_minutes": 60, "status": "confirmed",
            "starts_at": "2030-01-07T10:00:00Z", "ends_at": "2030-01-07T11:00:00Z", "amount_cents": 9000, "expert_payout_cents": 8100, "currency": "USD",
            "client": {"id": "11111111-1111-4111-8111-111111111111", "email": "c@example.com", "name": "C", "starts_local": "2030-01-07 11:00 (Europe/Paris, UTC+01:00)"},
            "expert": {"id": "22222222-2222-4222-8222-222222222204", "email": "e@example.com", "name": "E", "starts_local": "2030-01-07 02:00 (America/Los_Angeles, UTC-08:00)"}
        })
    }

    fn email(topic: &str, payload: Value, side: Option<&str>, with_contacts: bool) -> ClaimedEmail {
        serde_json::from_value(json!({
            "id": "aaaaaaaa-0000-4000-8000-000000000001", "topic": topic, "queued_at": "2030-01-01T00:00:00Z", "attempts": 1, "payload": payload,
            "recipient": {"id": "11111111-1111-4111-8111-111111111111", "email": "c@example.com", "name": "C", "side": side},
            "contacts": if with_contacts { contacts() } else { Value::Null },
        }))
        .unwrap()
    }

    fn key() -> TokenKey {
        TokenKey::parse("a-key-of-at-least-thirty-two-bytes-for-tests").unwrap()
    }

    fn render(email: &ClaimedEmail) -> Result<Message, String> {
        let key = key();
        email.render(&Renderer {
            site_url: "https://app.example.com/",
            organizer: "no-reply@example.com",
            token_key: Some(&key),
        })
    }

    #[test]
    fn a_budget_of_40_allows_13_smallest_rounds_and_calls_only_within_it() {
        let mut budget = Budget::new(DEFAULT_BUDGET);
        let mut rounds = 0;
        while budget.allows_round() {
            budget.spend(MIN_ROUND);
            rounds += 1;
        }
        assert_eq!((rounds, budget.used()), (13, 39));
        assert_eq!(Budget::new(40).calls_for_round(), MAX_CALLS);
        let mut nearly_spent = Budget::new(40);
        nearly_spent.spend(34);
        assert_eq!(nearly_spent.calls_for_round(), 3);
        assert!(!Budget::new(2).allows_round());
    }

    #[test]
    fn a_reminder_renders_for_its_recipient() {
        let message = render(&email("reminder.1h", json!({}), Some("client"), true)).unwrap();
        assert_eq!(message.to, "c@example.com");
        assert!(message.text.contains("in one hour: 2030-01-07 11:00 (Europe/Paris, UTC+01:00)"));
    }

    #[test]
    fn a_reset_email_carries_the_token_derived_from_its_id_and_nothing_else_is_needed() {
        let token_id = "2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f";
        let message = render(&email("account.password_reset", json!({ "token_id": token_id }), None, false)).unwrap();
        let expected = key().token(TokenKind::PasswordReset, Uuid::parse_str(token_id).unwrap()).link_token;
        assert!(
            message.text.contains(&format!("https://app.example.com/reset-password?token={expected}")),
            "{}",
            message.text
        );
    }

    #[test]
    fn an_email_that_cannot_be_rendered_says_why() {
        assert!(render(&email("account.password_reset", json!({}), None, false)).unwrap_err().contains("token_id"));
        assert!(render(&email("session.confirmed", json!({}), Some("client"), false))
            .unwrap_err()
            .contains("no session"));
        assert!(render(&email("session.teleported", json!({}), Some("client"), true))
            .unwrap_err()
            .contains("no email for"));
        assert!(render(&email("session.confirmed", json!({}), None, true)).unwrap_err().contains("not a participant"));
    }

    #[test]
    fn a_claim_hands_over_rooms_and_webhooks_apart() {
        let claim: Claim = serde_json::from_value(json!({
            "batch_key": null, "emails": [], "skipped": 0, "failed": 0, "remaining": {"email": 0, "room": 1, "webhook": 2},
            "rooms": [{"id": "aaaaaaaa-0000-4000-8000-000000000002", "topic": "room.create", "attempts": 1, "room_name": "cae-1", "not_before": 1, "expires": 2}],
            "webhooks": [{"id": "aaaaaaaa-0000-4000-8000-000000000003", "topic": "session.confirmed", "attempts": 1, "webhook_id": "msg_1", "url": "https://hooks.example.com", "secret": "whsec_a2V5", "body": {"type": "session.confirmed"}}]
        }))
        .unwrap();
        assert_eq!((claim.rooms[0].room_name.as_str(), claim.webhooks[0].webhook_id.as_str()), ("cae-1", "msg_1"));
        assert!(!claim.is_empty());
        assert_eq!(claim.remaining.total(), 3);
    }

    #[test]
    fn a_batch_answer_becomes_one_outcome_per_email() {
        let emails = vec![email("reminder.1h", json!({}), Some("client"), true)];
        assert_eq!(
            batch_outcomes(&emails, "k", BatchAnswer::Sent(vec!["m1".into()]))[0].provider_ref.as_deref(),
            Some("m1")
        );
        assert_eq!(
            batch_outcomes(&emails, "k", BatchAnswer::AlreadySent)[0].provider_ref.as_deref(),
            Some("sent earlier under k#0")
        );
        assert_eq!(batch_outcomes(&emails, "k", BatchAnswer::Failed("503".into()))[0].error.as_deref(), Some("503"));
        assert!(
            batch_outcomes(&emails, "k", BatchAnswer::Sent(vec![]))[0].error.is_some(),
            "ids that do not match the emails are not trusted"
        );
    }

    #[test]
    fn an_outcome_serialises_only_what_it_knows() {
        let outcome = Outcome::failed(Uuid::nil(), "timeout");
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            json!({"id": "00000000-0000-0000-0000-000000000000", "error": "timeout"})
        );
    }
}

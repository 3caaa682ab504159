//! Reminder dispatch rules: the subrequest budget of one run, the batches it sends, their
//! idempotency keys and the run's summary. The database claims and records; this decides.

use crate::booking::Side;
use crate::email::{Message, SessionContacts};
use serde::{Deserialize, Serialize};
use crate::tokens::sha256_hex;
use uuid::Uuid;

/// The most emails the provider's batch endpoint takes in one call.
pub const MAX_BATCH: u32 = 100;
/// The Workers free plan allows 50 subrequests per invocation; the default leaves headroom.
pub const DEFAULT_BUDGET: u32 = 40;
/// One round is a claim, a batch send and the recording of its outcome.
pub const SUBREQUESTS_PER_ROUND: u32 = 3;

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

    /// Whether a whole round still fits; a round is never started that could not finish.
    pub fn allows_round(&self) -> bool {
        self.used + SUBREQUESTS_PER_ROUND <= self.limit
    }

    pub fn spend(&mut self) {
        self.used += 1;
    }

    pub fn used(&self) -> u32 {
        self.used
    }
}

/// One reminder as `service_role_claim_reminders` hands it over.
#[derive(Debug, Clone, Deserialize)]
pub struct ClaimedReminder {
    pub id: Uuid,
    pub kind: String,
    pub recipient: Side,
    pub contacts: SessionContacts,
}

impl ClaimedReminder {
    pub fn message(&self) -> Message {
        self.contacts.reminder(self.recipient, &self.kind)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Claim {
    pub reminders: Vec<ClaimedReminder>,
    pub skipped: u64,
    pub failed: u64,
    pub remaining: u64,
}

/// What `service_role_advance_sessions` did: requests expired, sessions completed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Advanced {
    pub expired: u64,
    pub completed: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Recorded {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// The idempotency key of a batch: derived from the ids of its reminders only, so a retried
/// call, or the same reminders claimed again after a crashed run, can never send twice.
pub fn batch_key(reminders: &[ClaimedReminder]) -> String {
    let mut ids: Vec<String> = reminders.iter().map(|reminder| reminder.id.to_string()).collect();
    ids.sort();
    format!("reminders/{}", sha256_hex(ids.join(",").as_bytes()))
}

/// One run's structured summary line.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub expired: u64,
    pub completed: u64,
    pub claimed: u64,
    pub sent: u64,
    pub skipped: u64,
    pub retrying: u64,
    pub failed: u64,
    pub remaining: u64,
    pub batches: u32,
    pub subrequests: u32,
}

impl Summary {
    pub fn add_advanced(&mut self, advanced: &Advanced) {
        self.expired += advanced.expired;
        self.completed += advanced.completed;
    }

    pub fn add_claim(&mut self, claim: &Claim) {
        self.claimed += claim.reminders.len() as u64;
        self.skipped += claim.skipped;
        self.failed += claim.failed;
        self.remaining = claim.remaining;
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

    fn reminder(id: &str) -> ClaimedReminder {
        serde_json::from_value(json!({
            "id": id, "kind": "1h", "recipient": "client",
            "contacts": {
                "session_id": "55555555-5555-4555-8555-555555555503", "room_url": null, "duration_minutes": 60, "status": "confirmed",
                "client": {"id": "11111111-1111-4111-8111-111111111111", "email": "c@example.com", "name": "C", "starts_local": "2030-01-07 11:00 (Europe/Paris, UTC+01:00)"},
                "expert": {"id": "22222222-2222-4222-8222-222222222204", "email": "e@example.com", "name": "E", "starts_local": "2030-01-07 02:00 (America/Los_Angeles, UTC-08:00)"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_budget_of_40_allows_13_whole_rounds() {
        let mut budget = Budget::new(DEFAULT_BUDGET);
        let mut rounds = 0;
        while budget.allows_round() {
            (0..SUBREQUESTS_PER_ROUND).for_each(|_| budget.spend());
            rounds += 1;
        }
        assert_eq!((rounds, budget.used()), (13, 39));
    }

    #[test]
    fn a_budget_smaller_than_a_round_allows_none() {
        assert!(!Budget::new(2).allows_round());
    }

    #[test]
    fn the_batch_key_depends_on_the_reminders_not_their_order() {
        let a = reminder("aaaaaaaa-0000-4000-8000-000000000001");
        let b = reminder("aaaaaaaa-0000-4000-8000-000000000002");
        assert_eq!(batch_key(&[a.clone(), b.clone()]), batch_key(&[b.clone(), a.clone()]));
        assert_ne!(batch_key(&[a.clone()]), batch_key(&[a, b]));
        assert!(batch_key(&[reminder("aaaaaaaa-0000-4000-8000-000000000003")]).starts_with("reminders/"));
    }

    #[test]
    fn a_claimed_reminder_renders_for_its_recipient() {
        let message = reminder("aaaaaaaa-0000-4000-8000-000000000001").message();
        assert_eq!(message.to, "c@example.com");
        assert!(message.text.contains("in one hour: 2030-01-07 11:00 (Europe/Paris, UTC+01:00)"));
    }

    #[test]
    fn the_summary_adds_up_claims_and_outcomes() {
        let mut summary = Summary::default();
        summary.add_claim(&Claim { reminders: vec![reminder("aaaaaaaa-0000-4000-8000-000000000001")], skipped: 2, failed: 1, remaining: 7 });
        summary.add_recorded(&Recorded { sent: 1, retrying: 0, failed: 0 });
        assert_eq!((summary.claimed, summary.sent, summary.skipped, summary.failed, summary.remaining), (1, 1, 2, 1, 7));
    }
}

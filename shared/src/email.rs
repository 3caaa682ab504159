//! Email rendering: every message as plain text and HTML (escaped), built from one layout.
//! Times arrive already rendered in the recipient's timezone by the database, in a
//! language-neutral form such as `2030-01-07 10:00 (Europe/Paris, UTC+01:00)`.

use crate::booking::Side;
use crate::calendar::{self, EventStatus, Invite, Method};
use base64ct::{Base64, Encoding};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
}

/// A file sent with a message, such as a calendar invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

impl Message {
    /// The body of Resend's `POST /emails` (and of each item of `POST /emails/batch`).
    pub fn to_resend(&self, from: &str) -> Value {
        let mut body =
            json!({ "from": from, "to": [self.to], "subject": self.subject, "text": self.text, "html": self.html });
        if !self.attachments.is_empty() {
            body["attachments"] = self
                .attachments
                .iter()
                .map(|file| json!({ "filename": file.filename, "content_type": file.content_type, "content": Base64::encode_string(&file.content) }))
                .collect();
        }
        body
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Minor units as a decimal amount with its currency: 15000 USD -> `150.00 USD`.
pub fn format_money(minor_units: i64, currency: &str) -> String {
    let sign = if minor_units < 0 { "-" } else { "" };
    let units = minor_units.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", units / 100, units % 100)
}

/// One message: a greeting, paragraphs and an optional button, the same in text and HTML.
pub struct Draft<'a> {
    pub to: &'a str,
    pub subject: String,
    pub greeting_name: &'a str,
    pub paragraphs: Vec<String>,
    pub action: Option<(&'a str, &'a str)>,
}

impl Draft<'_> {
    pub fn render(self) -> Message {
        let greeting =
            if self.greeting_name.is_empty() { "Hello,".to_owned() } else { format!("Hello {},", self.greeting_name) };
        let mut text = format!("{greeting}\n\n");
        let mut html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5\"><p>{}</p>",
            escape_html(&greeting)
        );
        for paragraph in &self.paragraphs {
            text.push_str(paragraph);
            text.push_str("\n\n");
            html.push_str(&format!("<p>{}</p>", escape_html(paragraph)));
        }
        if let Some((label, url)) = self.action {
            text.push_str(&format!("{label}: {url}\n\n"));
            html.push_str(&format!("<p><a href=\"{}\">{}</a></p>", escape_html(url), escape_html(label)));
        }
        text.push_str("Call-an-Expert");
        html.push_str("<p>Call-an-Expert</p></body></html>");
        Message { to: self.to.to_owned(), subject: self.subject, text, html, attachments: Vec::new() }
    }
}

/// One participant of a session as notifications need them: the time already in their zone.
#[derive(Debug, Clone, Deserialize)]
pub struct Participant {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub starts_local: String,
}

/// What the database's `service_role_session_contacts` returns.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionContacts {
    pub session_id: Uuid,
    pub room_url: Option<String>,
    pub duration_minutes: i64,
    pub status: String,
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
    pub starts_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::validate::rfc3339::deserialize")]
    pub ends_at: DateTime<Utc>,
    pub amount_cents: i64,
    pub expert_payout_cents: i64,
    pub currency: String,
    pub client: Participant,
    pub expert: Participant,
}

/// What a session's transition was, as the outbox row recorded it when it happened.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Transition {
    /// The invitation's SEQUENCE at this change.
    #[serde(default)]
    pub sequence: u32,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub cancelled_by: Option<Side>,
    #[serde(default)]
    pub refund_percent: Option<u8>,
    #[serde(default)]
    pub refund_amount_cents: Option<i64>,
}

/// The events of a session that people are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    Requested,
    Confirmed,
    Declined,
    Expired,
    Cancelled,
    Completed,
}

impl SessionEvent {
    pub fn parse(topic: &str) -> Option<Self> {
        Some(match topic {
            "session.requested" => Self::Requested,
            "session.confirmed" => Self::Confirmed,
            "session.declined" => Self::Declined,
            "session.expired" => Self::Expired,
            "session.cancelled" => Self::Cancelled,
            "session.completed" => Self::Completed,
            _ => return None,
        })
    }
}

/// Where links in session emails point and who sends the invitations.
pub struct Sender<'a> {
    pub site_url: &'a str,
    /// The address calendar invitations name as their organizer.
    pub organizer: &'a str,
    /// When the invitation is issued (its DTSTAMP).
    pub now: DateTime<Utc>,
}

impl SessionContacts {
    pub fn side(&self, side: Side) -> &Participant {
        match side {
            Side::Client => &self.client,
            Side::Expert => &self.expert,
        }
    }

    fn draft<'a>(&'a self, to: Side, subject: String, paragraphs: Vec<String>) -> Draft<'a> {
        let person = self.side(to);
        Draft {
            to: &person.email,
            subject,
            greeting_name: &person.name,
            paragraphs,
            action: self.room_url.as_deref().map(|url| ("Join the call", url)),
        }
    }

    fn price_line(&self, to: Side) -> String {
        match to {
            Side::Client => {
                format!("Price: {} (platform fee included).", format_money(self.amount_cents, &self.currency))
            }
            Side::Expert => format!("Your payout: {}.", format_money(self.expert_payout_cents, &self.currency)),
        }
    }

    /// The calendar invitation of this session for one participant.
    fn invite(&self, to: Side, method: Method, status: EventStatus, sequence: u32, sender: &Sender<'_>) -> Attachment {
        let other = &self.side(to.other()).name;
        let person = self.side(to);
        let summary = format!("Call-an-Expert session with {other}");
        let description =
            calendar::describe(other, self.duration_minutes, &person.starts_local, self.room_url.as_deref());
        let session_id = self.session_id.to_string();
        let invite = Invite {
            session_id: &session_id,
            sequence,
            method,
            status,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            stamp: sender.now,
            summary: &summary,
            description: &description,
            url: self.room_url.as_deref(),
            organizer_email: sender.organizer,
            attendee_email: &person.email,
            attendee_name: &person.name,
        };
        Attachment {
            filename: if method == Method::Cancel { "cancel.ics".into() } else { "invite.ics".into() },
            content_type: invite.content_type().to_owned(),
            content: invite.to_ics().into_bytes(),
        }
    }

    /// The email telling `to` about `event`, with the calendar invitation it changes.
    pub fn notification(&self, event: SessionEvent, to: Side, change: &Transition, sender: &Sender<'_>) -> Message {
        let other = self.side(to.other()).name.clone();
        let when = self.side(to).starts_local.clone();
        let duration = format!("When: {when}, {} minutes.", self.duration_minutes);
        let (subject, paragraphs, invite) = match (event, to) {
            (SessionEvent::Requested, Side::Client) => (
                format!("Session requested for {when}"),
                vec![format!("Your request for a session with {other} is sent; you will hear when they confirm."), duration, self.price_line(to)],
                Some((Method::Request, EventStatus::Tentative)),
            ),
            (SessionEvent::Requested, Side::Expert) => (
                format!("Session requested for {when}"),
                vec![format!("{other} asked for a session with you. Confirm or decline it in your dashboard before it starts."), duration, self.price_line(to)],
                Some((Method::Request, EventStatus::Tentative)),
            ),
            (SessionEvent::Confirmed, _) => (
                format!("Session confirmed for {when}"),
                vec![format!("Your session with {other} is confirmed."), duration, self.price_line(to)],
                Some((Method::Request, EventStatus::Confirmed)),
            ),
            (SessionEvent::Declined, Side::Client) => (
                format!("Session declined: {when}"),
                vec![format!("{other} declined your request for {when}. Nothing was charged.")],
                Some((Method::Cancel, EventStatus::Cancelled)),
            ),
            (SessionEvent::Declined, Side::Expert) => (
                format!("Request declined: {when}"),
                vec![format!("You declined the request from {other} for {when}.")],
                Some((Method::Cancel, EventStatus::Cancelled)),
            ),
            (SessionEvent::Expired, Side::Client) => (
                format!("Request expired: {when}"),
                vec![format!("{other} did not answer your request for {when} in time, so it expired. Nothing was charged.")],
                Some((Method::Cancel, EventStatus::Cancelled)),
            ),
            (SessionEvent::Expired, Side::Expert) => (
                format!("Request expired: {when}"),
                vec![format!("The request from {other} for {when} expired unanswered.")],
                Some((Method::Cancel, EventStatus::Cancelled)),
            ),
            (SessionEvent::Cancelled, _) => {
                let by_me = change.cancelled_by == Some(to);
                let mut paragraphs = vec![if by_me { format!("You cancelled your session of {when} with {other}.") } else { format!("{other} cancelled your session of {when}.") }];
                if let Some(reason) = change.reason.as_deref().filter(|reason| !reason.is_empty()) {
                    paragraphs.push(format!("Reason given: {reason}"));
                }
                let refund = change.refund_amount_cents.unwrap_or(0);
                paragraphs.push(match to {
                    Side::Client if refund > 0 => {
                        format!("You will be refunded {} ({}%).", format_money(refund, &self.currency), change.refund_percent.unwrap_or(0))
                    }
                    Side::Client => "Nothing will be refunded for this session.".to_owned(),
                    Side::Expert => "The time is free again in your calendar.".to_owned(),
                });
                (format!("Session cancelled: {when}"), paragraphs, Some((Method::Cancel, EventStatus::Cancelled)))
            }
            (SessionEvent::Completed, _) => {
                let review = format!("{}/sessions/{}/review", sender.site_url.trim_end_matches('/'), self.session_id);
                let mut message = self.draft(to, format!("How was your session with {other}?"), vec![
                    format!("Thanks for your session with {other} on {when}."),
                    "A short review helps other clients choose, and helps your expert.".to_owned(),
                ]);
                message.action = Some(("Leave a review", &review));
                return message.render();
            }
        };
        let mut draft = self.draft(to, subject, paragraphs);
        if matches!(event, SessionEvent::Declined | SessionEvent::Expired | SessionEvent::Cancelled) {
            draft.action = None;
        }
        let mut message = draft.render();
        if let Some((method, status)) = invite {
            message.attachments.push(self.invite(to, method, status, change.sequence, sender));
        }
        message
    }

    /// The reminder `kind` (24h or 1h) before the session.
    pub fn reminder(&self, to: Side, kind: &str) -> Message {
        let other = &self.side(to.other()).name;
        let when = &self.side(to).starts_local;
        let lead = if kind == "1h" { "in one hour" } else { "tomorrow" };
        self.draft(
            to,
            format!("Reminder: session with {other} {lead}"),
            vec![format!("Your session with {other} starts {lead}: {when}, {} minutes.", self.duration_minutes)],
        )
        .render()
    }
}

/// Asks a user to confirm their address with the link of an email verification token.
pub fn verify_email(to: &str, name: &str, link: &str) -> Message {
    Draft {
        to,
        subject: "Confirm your email address".into(),
        greeting_name: name,
        paragraphs: vec![
            "Confirm your email address for Call-an-Expert. The link works once and expires in 24 hours.".into()
        ],
        action: Some(("Confirm your email", link)),
    }
    .render()
}

/// The password reset link; sent only when the account exists.
pub fn password_reset(to: &str, name: &str, link: &str) -> Message {
    Draft {
        to,
        subject: "Reset your password".into(),
        greeting_name: name,
        paragraphs: vec![
            "Someone asked to reset your Call-an-Expert password. The link works once and expires in one hour.".into(),
            "If it was not you, ignore this email: your password stays as it is.".into(),
        ],
        action: Some(("Choose a new password", link)),
    }
    .render()
}

pub fn password_changed(to: &str, name: &str) -> Message {
    Draft {
        to,
        subject: "Your password was changed".into(),
        greeting_name: name,
        paragraphs: vec![
            "Your Call-an-Expert password was just changed, and every device was signed out.".into(),
            "If it was not you, reset your password at once and contact support.".into(),
        ],
        action: None,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_emails_carry_their_link_or_none() {
        assert!(verify_email("c@example.com", "C", "https://app/verify-email?token=t")
            .text
            .contains("Confirm your email: https://app/verify-email?token=t"));
        assert!(password_reset("c@example.com", "C", "https://app/reset?token=t")
            .html
            .contains("href=\"https://app/reset?token=t\""));
        assert!(!password_changed("c@example.com", "C").html.contains("href"));
    }

    fn contacts(status: &str) -> SessionContacts {
        serde_json::from_value(json!({
            "session_id": "55555555-5555-4555-8555-555555555503", "room_url": "https://x.daily.co/cae-1", "duration_minutes": 60, "status": status,
            "starts_at": "2030-01-07T10:00:00Z", "ends_at": "2030-01-07T11:00:00Z", "amount_cents": 9000, "expert_payout_cents": 8100, "currency": "USD",
            "client": {"id": "11111111-1111-4111-8111-111111111111", "email": "casey@example.com", "name": "Casey", "starts_local": "2030-01-07 11:00 (Europe/Paris, UTC+01:00)"},
            "expert": {"id": "22222222-2222-4222-8222-222222222204", "email": "rae@example.com", "name": "Rae", "starts_local": "2030-01-07 02:00 (America/Los_Angeles, UTC-08:00)"}
        }))
        .unwrap()
    }

    fn sender() -> Sender<'static> {
        Sender {
            site_url: "https://app.example.com",
            organizer: "no-reply@example.com",
            now: DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc),
        }
    }

    fn ics(message: &Message) -> String {
        String::from_utf8(message.attachments[0].content.clone()).unwrap()
    }

    #[test]
    fn each_side_reads_the_time_in_its_own_zone_and_its_own_share() {
        let change = Transition { sequence: 1, ..Default::default() };
        let to_client = contacts("confirmed").notification(SessionEvent::Confirmed, Side::Client, &change, &sender());
        let to_expert = contacts("confirmed").notification(SessionEvent::Confirmed, Side::Expert, &change, &sender());
        assert!(
            to_client.text.contains("2030-01-07 11:00 (Europe/Paris, UTC+01:00)")
                && to_client.text.contains("Price: 90.00 USD")
        );
        assert!(
            to_expert.text.contains("2030-01-07 02:00 (America/Los_Angeles, UTC-08:00)")
                && to_expert.text.contains("Your payout: 81.00 USD")
        );
        assert_eq!((to_client.to.as_str(), to_expert.to.as_str()), ("casey@example.com", "rae@example.com"));
    }

    #[test]
    fn a_request_is_a_tentative_invitation_its_confirmation_an_update_and_its_cancellation_a_cancel() {
        let requested = contacts("requested").notification(
            SessionEvent::Requested,
            Side::Expert,
            &Transition::default(),
            &sender(),
        );
        assert!(requested.text.contains("Confirm or decline"));
        assert!(ics(&requested).contains("STATUS:TENTATIVE") && ics(&requested).contains("SEQUENCE:0"));
        let confirmed = contacts("confirmed").notification(
            SessionEvent::Confirmed,
            Side::Client,
            &Transition { sequence: 1, ..Default::default() },
            &sender(),
        );
        assert!(ics(&confirmed).contains("STATUS:CONFIRMED") && ics(&confirmed).contains("SEQUENCE:1"));
        let cancelled = contacts("cancelled").notification(
            SessionEvent::Cancelled,
            Side::Client,
            &Transition {
                sequence: 2,
                cancelled_by: Some(Side::Expert),
                refund_percent: Some(100),
                refund_amount_cents: Some(9000),
                reason: Some("Ill".into()),
            },
            &sender(),
        );
        assert!(ics(&cancelled).contains("METHOD:CANCEL") && ics(&cancelled).contains("SEQUENCE:2"));
        assert_eq!(cancelled.attachments[0].content_type, "text/calendar; charset=utf-8; method=CANCEL");
        let uid = |message: &Message| ics(message).lines().find(|line| line.starts_with("UID:")).unwrap().to_owned();
        assert_eq!(uid(&requested), uid(&cancelled));
    }

    #[test]
    fn the_cancellation_notice_tells_each_side_what_happened_and_the_client_the_refund() {
        let change = Transition {
            sequence: 2,
            cancelled_by: Some(Side::Expert),
            refund_percent: Some(50),
            refund_amount_cents: Some(4500),
            reason: Some("Sick <b>".into()),
        };
        let notice = contacts("cancelled").notification(SessionEvent::Cancelled, Side::Client, &change, &sender());
        assert!(notice.text.contains("Rae cancelled") && notice.text.contains("refunded 45.00 USD (50%)"));
        assert!(notice.html.contains("Sick &lt;b&gt;") && !notice.html.contains("Join the call"));
        let own = contacts("cancelled").notification(SessionEvent::Cancelled, Side::Expert, &change, &sender());
        assert!(own.text.contains("You cancelled your session") && own.text.contains("free again"));
    }

    #[test]
    fn a_completed_session_asks_the_client_for_a_review() {
        let message = contacts("completed").notification(
            SessionEvent::Completed,
            Side::Client,
            &Transition::default(),
            &sender(),
        );
        assert!(message
            .text
            .contains("Leave a review: https://app.example.com/sessions/55555555-5555-4555-8555-555555555503/review"));
        assert!(message.attachments.is_empty());
    }

    #[test]
    fn an_invitation_travels_base64_encoded_to_the_provider() {
        let message = contacts("confirmed").notification(
            SessionEvent::Confirmed,
            Side::Client,
            &Transition::default(),
            &sender(),
        );
        let body = message.to_resend("Call-an-Expert <no-reply@example.com>");
        let encoded = body["attachments"][0]["content"].as_str().unwrap();
        assert_eq!(Base64::decode_vec(encoded).unwrap(), message.attachments[0].content);
        assert_eq!(body["attachments"][0]["filename"], "invite.ics");
    }

    #[test]
    fn a_reminder_names_its_lead_time() {
        assert!(contacts("confirmed").reminder(Side::Expert, "1h").subject.contains("in one hour"));
        assert!(contacts("confirmed").reminder(Side::Client, "24h").text.contains("starts tomorrow: 2030-01-07 11:00"));
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape_html(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn money_is_shown_with_two_decimals_and_its_currency() {
        assert_eq!(format_money(15_000, "USD"), "150.00 USD");
        assert_eq!(format_money(7_501, "EUR"), "75.01 EUR");
        assert_eq!(format_money(5, "GBP"), "0.05 GBP");
        assert_eq!(format_money(-250, "USD"), "-2.50 USD");
    }

    #[test]
    fn a_draft_renders_the_same_content_as_text_and_escaped_html() {
        let message = Draft {
            to: "casey@example.com",
            subject: "Your session".into(),
            greeting_name: "Casey <script>",
            paragraphs: vec!["Starts 2030-01-07 10:00 (Europe/Paris, UTC+01:00).".into()],
            action: Some(("Join the call", "https://example.daily.co/room?a=1&b=2")),
        }
        .render();
        assert!(message.text.starts_with("Hello Casey <script>,\n\nStarts 2030-01-07 10:00"));
        assert!(message.text.contains("Join the call: https://example.daily.co/room?a=1&b=2"));
        assert!(message.html.contains("Hello Casey &lt;script&gt;,"));
        assert!(message.html.contains("href=\"https://example.daily.co/room?a=1&amp;b=2\""));
        assert!(!message.html.contains("<script>"));
        assert_eq!(message.to_resend("Call-an-Expert <no-reply@example.com>")["to"][0], "casey@example.com");
    }
}

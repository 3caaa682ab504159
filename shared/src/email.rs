//! Email rendering: every message as plain text and HTML (escaped), built from one layout.
//! Times arrive already rendered in the recipient's timezone by the database, in a
//! language-neutral form such as `2030-01-07 10:00 (Europe/Paris, UTC+01:00)`.

use crate::booking::Side;
use crate::pricing::Price;
use crate::refund::Refund;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Message {
    /// The body of Resend's `POST /emails` (and of each item of `POST /emails/batch`).
    pub fn to_resend(&self, from: &str) -> Value {
        json!({ "from": from, "to": [self.to], "subject": self.subject, "text": self.text, "html": self.html })
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
        let greeting = if self.greeting_name.is_empty() { "Hello,".to_owned() } else { format!("Hello {},", self.greeting_name) };
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
        Message { to: self.to.to_owned(), subject: self.subject, text, html }
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
    pub client: Participant,
    pub expert: Participant,
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
        Draft { to: &person.email, subject, greeting_name: &person.name, paragraphs, action: self.room_url.as_deref().map(|url| ("Join the call", url)) }
    }

    /// Sent to each side when a session is booked.
    pub fn booking_confirmation(&self, to: Side, price: &Price) -> Message {
        let other = &self.side(to.other()).name;
        let when = &self.side(to).starts_local;
        let requested = self.status == "requested";
        let opening = match (to, requested) {
            (Side::Client, true) => format!("Your request for a session with {other} is sent; you will hear when they confirm."),
            (Side::Client, false) => format!("Your session with {other} is confirmed."),
            (Side::Expert, true) => format!("{other} asked for a session with you. Confirm or decline it in your dashboard."),
            (Side::Expert, false) => format!("{other} booked a session with you."),
        };
        let money = match to {
            Side::Client => format!("Price: {} (platform fee included).", format_money(price.amount_cents, price.currency.as_str())),
            Side::Expert => format!("Your payout: {}.", format_money(price.expert_payout_cents, price.currency.as_str())),
        };
        let subject = if requested { format!("Session requested for {when}") } else { format!("Session confirmed for {when}") };
        self.draft(to, subject, vec![opening, format!("When: {when}, {} minutes.", self.duration_minutes), money]).render()
    }

    /// Sent to the side that did not cancel.
    pub fn cancellation_notice(&self, to: Side, refund: &Refund, currency: &str, reason: &str) -> Message {
        let other = &self.side(to.other()).name;
        let when = &self.side(to).starts_local;
        let mut paragraphs = vec![format!("{other} cancelled your session of {when}.")];
        if !reason.is_empty() {
            paragraphs.push(format!("Reason given: {reason}"));
        }
        paragraphs.push(match to {
            Side::Client if refund.amount_cents > 0 => format!("You will be refunded {} ({}%).", format_money(refund.amount_cents, currency), refund.percent),
            Side::Client => "Nothing was charged for this session.".to_owned(),
            Side::Expert => "The time is free again in your calendar.".to_owned(),
        });
        let mut message = self.draft(to, format!("Session cancelled: {when}"), paragraphs);
        message.action = None;
        message.render()
    }

    /// The reminder `kind` (24h or 1h) before the session.
    pub fn reminder(&self, to: Side, kind: &str) -> Message {
        let other = &self.side(to.other()).name;
        let when = &self.side(to).starts_local;
        let lead = if kind == "1h" { "in one hour" } else { "tomorrow" };
        self.draft(to, format!("Reminder: session with {other} {lead}"), vec![
            format!("Your session with {other} starts {lead}: {when}, {} minutes.", self.duration_minutes),
        ])
        .render()
    }
}

/// Asks a user to confirm their address with the link of an email verification token.
pub fn verify_email(to: &str, name: &str, link: &str) -> Message {
    Draft {
        to,
        subject: "Confirm your email address".into(),
        greeting_name: name,
        paragraphs: vec!["Confirm your email address for Call-an-Expert. The link works once and expires in 24 hours.".into()],
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
    use crate::validate::{CommissionBps, Currency, DurationMinutes, MinorUnits};

    #[test]
    fn account_emails_carry_their_link_or_none() {
        assert!(verify_email("c@example.com", "C", "https://app/verify-email?token=t").text.contains("Confirm your email: https://app/verify-email?token=t"));
        assert!(password_reset("c@example.com", "C", "https://app/reset?token=t").html.contains("href=\"https://app/reset?token=t\""));
        assert!(!password_changed("c@example.com", "C").html.contains("href"));
    }

    fn contacts(status: &str) -> SessionContacts {
        serde_json::from_value(json!({
            "session_id": "55555555-5555-4555-8555-555555555503", "room_url": "https://x.daily.co/cae-1", "duration_minutes": 60, "status": status,
            "client": {"id": "11111111-1111-4111-8111-111111111111", "email": "casey@example.com", "name": "Casey", "starts_local": "2030-01-07 11:00 (Europe/Paris, UTC+01:00)"},
            "expert": {"id": "22222222-2222-4222-8222-222222222204", "email": "rae@example.com", "name": "Rae", "starts_local": "2030-01-07 02:00 (America/Los_Angeles, UTC-08:00)"}
        }))
        .unwrap()
    }

    #[test]
    fn each_side_reads_the_time_in_its_own_zone() {
        let price = Price::quote(MinorUnits::parse(9000).unwrap(), DurationMinutes::parse(60).unwrap(), CommissionBps::DEFAULT, Currency::parse("USD").unwrap()).unwrap();
        let to_client = contacts("confirmed").booking_confirmation(Side::Client, &price);
        let to_expert = contacts("confirmed").booking_confirmation(Side::Expert, &price);
        assert!(to_client.text.contains("2030-01-07 11:00 (Europe/Paris, UTC+01:00)") && to_client.text.contains("Price: 90.00 USD"));
        assert!(to_expert.text.contains("2030-01-07 02:00 (America/Los_Angeles, UTC-08:00)") && to_expert.text.contains("Your payout: 81.00 USD"));
        assert_eq!((to_client.to.as_str(), to_expert.to.as_str()), ("casey@example.com", "rae@example.com"));
        assert!(contacts("requested").booking_confirmation(Side::Expert, &price).text.contains("Confirm or decline"));
    }

    #[test]
    fn the_cancellation_notice_tells_the_client_the_refund() {
        let refund = Refund { percent: 50, amount_cents: 4500, platform_fee_cents: 450, expert_payout_cents: 4050 };
        let notice = contacts("cancelled").cancellation_notice(Side::Client, &refund, "USD", "Sick <b>");
        assert!(notice.text.contains("Rae cancelled") && notice.text.contains("refunded 45.00 USD (50%)"));
        assert!(notice.html.contains("Sick &lt;b&gt;") && !notice.html.contains("Join the call"));
    }

    #[test]
    fn a_reminder_names_its_lead_time() {
        assert!(contacts("confirmed").reminder(Side::Expert, "1h").subject.contains("in one hour"));
        assert!(contacts("confirmed").reminder(Side::Client, "24h").text.contains("starts tomorrow: 2030-01-07 11:00"));
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(escape_html(r#"<script>alert("x") & 'y'</script>"#), "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;");
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

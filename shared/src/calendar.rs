//! iCalendar invitations (RFC 5545) attached to session emails, so that calendar clients add,
//! update and remove the session: one stable UID per session, a SEQUENCE that grows with each
//! change, METHOD REQUEST (tentative for a request, confirmed once confirmed) or CANCEL.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Tentative,
    Confirmed,
    Cancelled,
}

/// One session as a calendar event, for one attendee.
#[derive(Debug, Clone, PartialEq)]
pub struct Invite<'a> {
    pub session_id: &'a str,
    pub sequence: u32,
    pub method: Method,
    pub status: EventStatus,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub stamp: DateTime<Utc>,
    pub summary: &'a str,
    pub description: &'a str,
    pub url: Option<&'a str>,
    pub organizer_email: &'a str,
    pub attendee_email: &'a str,
    pub attendee_name: &'a str,
}

/// The domain of every UID: a UID must be globally unique and stable for the session.
pub const UID_DOMAIN: &str = "call-an-expert.com";

impl Invite<'_> {
    pub fn uid(&self) -> String {
        format!("session-{}@{UID_DOMAIN}", self.session_id)
    }

    /// The MIME type of the attachment, with the method as RFC 6047 asks.
    pub fn content_type(&self) -> &'static str {
        match self.method {
            Method::Request => "text/calendar; charset=utf-8; method=REQUEST",
            Method::Cancel => "text/calendar; charset=utf-8; method=CANCEL",
        }
    }

    /// The `.ics` text: CRLF line ends, long lines folded at 75 octets, text values escaped.
    pub fn to_ics(&self) -> String {
        let method = match self.method {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        };
        let status = match self.status {
            EventStatus::Tentative => "TENTATIVE",
            EventStatus::Confirmed => "CONFIRMED",
            EventStatus::Cancelled => "CANCELLED",
        };
        let mut lines = vec![
            "BEGIN:VCALENDAR".to_owned(),
            "VERSION:2.0".to_owned(),
            "PRODID:-//Call-an-Expert//Sessions//EN".to_owned(),
            "CALSCALE:GREGORIAN".to_owned(),
            format!("METHOD:{method}"),
            "BEGIN:VEVENT".to_owned(),
            format!("UID:{}", self.uid()),
            format!("SEQUENCE:{}", self.sequence),
            format!("DTSTAMP:{}", utc(self.stamp)),
            format!("DTSTART:{}", utc(self.starts_at)),
            format!("DTEND:{}", utc(self.ends_at)),
            format!("SUMMARY:{}", escape(self.summary)),
            format!("DESCRIPTION:{}", escape(self.description)),
            format!("STATUS:{status}"),
            format!("ORGANIZER;CN=Call-an-Expert:mailto:{}", self.organizer_email),
            format!("ATTENDEE;CN={};ROLE=REQ-PARTICIPANT:mailto:{}", param(self.attendee_name), self.attendee_email),
        ];
        if let Some(url) = self.url {
            lines.push(format!("URL:{url}"));
            lines.push(format!("LOCATION:{}", escape(url)));
        }
        lines.push("END:VEVENT".to_owned());
        lines.push("END:VCALENDAR".to_owned());
        let mut ics = String::new();
        for line in lines {
            ics.push_str(&fold(&line));
            ics.push_str("\r\n");
        }
        ics
    }
}

/// A UTC date-time in the basic format RFC 5545 names "form #2": `20300107T100000Z` (written
/// out by hand: chrono's strftime machinery costs the workers more than this whole module).
fn utc(at: DateTime<Utc>) -> String {
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", at.year(), at.month(), at.day(), at.hour(), at.minute(), at.second())
}

/// TEXT escaping (RFC 5545 3.3.11): backslash, semicolon, comma, and newlines.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\;"),
            ',' => escaped.push_str("\\,"),
            '\n' => escaped.push_str("\\n"),
            '\r' => {}
            _ => escaped.push(c),
        }
    }
    escaped
}

/// A parameter value: quoted, without the characters a quoted value may not hold.
fn param(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !matches!(c, '"' | '\r' | '\n') && !c.is_control()).collect();
    format!("\"{clean}\"")
}

/// Folds a content line into pieces of at most 75 octets, continuation lines starting with a
/// space, never splitting a UTF-8 character.
fn fold(line: &str) -> String {
    let mut folded = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            folded.push_str("\r\n ");
            width = 1;
        }
        folded.push(c);
        width += len;
    }
    folded
}

/// A short, human description line used in the invitation.
pub fn describe(with: &str, minutes: i64, local_time: &str, url: Option<&str>) -> String {
    let mut text = String::new();
    let _ = write!(text, "Video session with {with}, {minutes} minutes, {local_time}.");
    if let Some(url) = url {
        let _ = write!(text, "\nJoin: {url}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn invite(method: Method, status: EventStatus, sequence: u32) -> Invite<'static> {
        Invite {
            session_id: "55555555-5555-4555-8555-555555555503",
            sequence,
            method,
            status,
            starts_at: at("2030-01-07T10:00:00Z"),
            ends_at: at("2030-01-07T11:30:00Z"),
            stamp: at("2030-01-01T09:00:00Z"),
            summary: "Session with Rae, React; hooks",
            description: "Video session with Rae, 90 minutes.\nJoin: https://x.daily.co/cae-1",
            url: Some("https://x.daily.co/cae-1"),
            organizer_email: "no-reply@call-an-expert.com",
            attendee_email: "casey@example.com",
            attendee_name: "Casey \"C\" Client",
        }
    }

    #[test]
    fn an_invitation_has_the_fields_calendar_clients_need() {
        let ics = invite(Method::Request, EventStatus::Confirmed, 1).to_ics();
        for line in [
            "BEGIN:VCALENDAR\r\n",
            "VERSION:2.0\r\n",
            "METHOD:REQUEST\r\n",
            "UID:session-55555555-5555-4555-8555-555555555503@call-an-expert.com\r\n",
            "SEQUENCE:1\r\n",
            "DTSTART:20300107T100000Z\r\n",
            "DTEND:20300107T113000Z\r\n",
            "DTSTAMP:20300101T090000Z\r\n",
            "STATUS:CONFIRMED\r\n",
            "END:VEVENT\r\nEND:VCALENDAR\r\n",
        ] {
            assert!(ics.contains(line), "{line:?} in\n{ics}");
        }
    }

    #[test]
    fn text_is_escaped_and_parameters_quoted() {
        let ics = invite(Method::Request, EventStatus::Tentative, 0).to_ics().replace("\r\n ", "");
        assert!(ics.contains("SUMMARY:Session with Rae\\, React\\; hooks\r\n"));
        assert!(ics.contains("DESCRIPTION:Video session with Rae\\, 90 minutes.\\nJoin: https://x.daily.co/cae-1"));
        assert!(ics.contains("ATTENDEE;CN=\"Casey C Client\";ROLE=REQ-PARTICIPANT:mailto:casey@example.com"));
    }

    #[test]
    fn a_cancellation_keeps_the_uid_and_says_cancel() {
        let request = invite(Method::Request, EventStatus::Confirmed, 1);
        let cancel = invite(Method::Cancel, EventStatus::Cancelled, 2);
        assert_eq!(request.uid(), cancel.uid());
        let ics = cancel.to_ics();
        assert!(
            ics.contains("METHOD:CANCEL\r\n") && ics.contains("STATUS:CANCELLED\r\n") && ics.contains("SEQUENCE:2\r\n")
        );
        assert_eq!(cancel.content_type(), "text/calendar; charset=utf-8; method=CANCEL");
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let line = format!("DESCRIPTION:{}", "é".repeat(60));
        let folded = fold(&line);
        for piece in folded.split("\r\n") {
            assert!(piece.len() <= 75, "{} octets", piece.len());
        }
        assert_eq!(folded.replace("\r\n ", ""), line);
        assert!(invite(Method::Request, EventStatus::Confirmed, 0).to_ics().split("\r\n").all(|l| l.len() <= 75));
    }
}

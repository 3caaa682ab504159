//! The requests of the booking functions, parsed once into domain types with every bad field
//! reported together: create-session's booking and cancel-session's cancellation.

use crate::error::ApiError;
use crate::validate::{parse_uuid, BookingWindow, DurationMinutes, Rule, StartTime, Violations};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The two sides of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Expert,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Expert,
            Side::Expert => Side::Client,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Expert => "expert",
        }
    }
}

/// create-session's body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    pub expert_id: Option<String>,
    pub starts_at: Option<String>,
    pub duration_minutes: Option<i64>,
    pub notes: Option<String>,
    /// The amount the client was shown; when given, a different current price is a 409.
    pub expected_amount_cents: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub expert_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub duration: DurationMinutes,
    pub notes: String,
    pub expected_amount_cents: Option<i64>,
}

pub const MAX_NOTES_CHARS: usize = 2000;

impl Booking {
    pub fn parse(request: BookingRequest, now: DateTime<Utc>, window: BookingWindow) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let expert_id = violations
            .require("expert_id", request.expert_id)
            .and_then(|id| violations.check("expert_id", parse_uuid(&id)));
        let starts_at = violations
            .require("starts_at", request.starts_at)
            .and_then(|text| violations.check("starts_at", StartTime::parse(&text)));
        let duration = violations
            .require("duration_minutes", request.duration_minutes)
            .and_then(|minutes| violations.check("duration_minutes", DurationMinutes::parse(minutes)));
        let notes = request.notes.unwrap_or_default();
        if notes.chars().count() > MAX_NOTES_CHARS {
            violations.add("notes", Rule::new("too_long", format!("Notes are at most {MAX_NOTES_CHARS} characters.")));
        }
        if request.expected_amount_cents.is_some_and(|amount| amount <= 0) {
            violations.add(
                "expected_amount_cents",
                Rule::new("positive", "An amount is a positive whole number of minor units (cents)."),
            );
        }
        violations.finish()?;
        match (expert_id, starts_at, duration) {
            (Some(expert_id), Some(starts_at), Some(duration)) => {
                let starts_at =
                    starts_at.within(now, window).map_err(|rule| ApiError::conflict(rule.name, rule.message))?;
                Ok(Self {
                    expert_id,
                    starts_at: starts_at.get(),
                    duration,
                    notes,
                    expected_amount_cents: request.expected_amount_cents,
                })
            }
            _ => Err(ApiError::internal()),
        }
    }

    pub fn ends_at(&self) -> DateTime<Utc> {
        self.starts_at + chrono::Duration::minutes(i64::from(self.duration.get()))
    }
}

/// cancel-session's body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub session_id: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cancellation {
    pub session_id: Uuid,
    pub reason: String,
}

pub const MAX_REASON_CHARS: usize = 1000;

impl Cancellation {
    pub fn parse(request: CancelRequest) -> Result<Self, ApiError> {
        let mut violations = Violations::new();
        let session_id = violations
            .require("session_id", request.session_id)
            .and_then(|id| violations.check("session_id", parse_uuid(&id)));
        let reason = request.reason.unwrap_or_default().trim().to_owned();
        if reason.chars().count() > MAX_REASON_CHARS {
            violations
                .add("reason", Rule::new("too_long", format!("A reason is at most {MAX_REASON_CHARS} characters.")));
        }
        violations.finish()?;
        session_id.map(|session_id| Self { session_id, reason }).ok_or_else(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse_instant;

    fn now() -> DateTime<Utc> {
        parse_instant("2030-01-01T10:00:00Z").unwrap()
    }

    fn request(expert_id: &str, starts_at: &str, duration: i64) -> BookingRequest {
        BookingRequest {
            expert_id: Some(expert_id.into()),
            starts_at: Some(starts_at.into()),
            duration_minutes: Some(duration),
            notes: None,
            expected_amount_cents: None,
        }
    }

    #[test]
    fn a_valid_booking_parses_into_domain_types() {
        let booking = Booking::parse(
            request("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f", "2030-01-02T15:00:00Z", 90),
            now(),
            BookingWindow::default(),
        )
        .unwrap();
        assert_eq!(booking.duration.get(), 90);
        assert_eq!(booking.ends_at(), parse_instant("2030-01-02T16:30:00Z").unwrap());
    }

    #[test]
    fn every_bad_field_of_a_booking_is_named_at_once() {
        let error = Booking::parse(
            BookingRequest {
                expert_id: Some("x".into()),
                starts_at: Some("2030-01-01T10:30:30Z".into()),
                duration_minutes: Some(50),
                notes: Some("n".repeat(2001)),
                expected_amount_cents: Some(0),
            },
            now(),
            BookingWindow::default(),
        )
        .unwrap_err();
        let fields: Vec<(&str, &str)> = error.details["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["field"].as_str().unwrap(), f["rule"].as_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [
                ("expert_id", "uuid"),
                ("starts_at", "whole_minute"),
                ("duration_minutes", "range"),
                ("notes", "too_long"),
                ("expected_amount_cents", "positive")
            ]
        );
    }

    #[test]
    fn a_start_outside_the_booking_window_is_a_conflict_naming_the_reason() {
        let error = Booking::parse(
            request("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f", "2030-01-01T10:30:00Z", 60),
            now(),
            BookingWindow::default(),
        )
        .unwrap_err();
        assert_eq!((error.status, error.code.as_ref()), (409, "too_soon"));
        let error = Booking::parse(
            request("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f", "2030-06-01T10:00:00Z", 60),
            now(),
            BookingWindow::default(),
        )
        .unwrap_err();
        assert_eq!((error.status, error.code.as_ref()), (409, "too_far"));
    }

    #[test]
    fn missing_fields_are_required() {
        let error = Booking::parse(
            BookingRequest {
                expert_id: None,
                starts_at: None,
                duration_minutes: None,
                notes: None,
                expected_amount_cents: None,
            },
            now(),
            BookingWindow::default(),
        )
        .unwrap_err();
        assert_eq!(error.details["fields"].as_array().unwrap().len(), 3);
        assert!(error.details["fields"].as_array().unwrap().iter().all(|f| f["rule"] == "required"));
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let parsed: Result<BookingRequest, _> = serde_json::from_str(r#"{"expert_id": "x", "amount_cents": 1}"#);
        assert!(parsed.unwrap_err().to_string().contains("unknown field `amount_cents`"));
    }

    #[test]
    fn a_cancellation_needs_a_session_id_and_a_short_reason() {
        assert!(Cancellation::parse(CancelRequest {
            session_id: Some("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f".into()),
            reason: Some(" sick ".into())
        })
        .is_ok_and(|c| c.reason == "sick"));
        let error =
            Cancellation::parse(CancelRequest { session_id: None, reason: Some("r".repeat(1001)) }).unwrap_err();
        assert_eq!(error.details["fields"].as_array().unwrap().len(), 2);
    }
}

//! Request fields as types (parse, don't validate): each type can only hold a valid value, and a
//! [`Violations`] collector gathers every bad field of a request so that all are reported at once.

use crate::error::ApiError;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// One rejected field: where, which rule, and a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub rule: &'static str,
    pub message: String,
}

/// Collects the violations of a whole request.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value if it parsed, records the violation (under `field`) if not.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, Rule>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(rule) => {
                self.0.push(Violation { field: field.to_owned(), rule: rule.name, message: rule.message });
                None
            }
        }
    }

    /// A field that must be present: records `required` when it is absent.
    pub fn require<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        self.check(field, value.ok_or_else(|| Rule::new("required", format!("{field} is required."))))
    }

    pub fn add(&mut self, field: &str, rule: Rule) {
        self.0.push(Violation { field: field.to_owned(), rule: rule.name, message: rule.message });
    }

    /// `Ok(())` when nothing was rejected, otherwise the 400 naming every bad field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = self.0.iter().map(|violation| violation.field.as_str()).collect();
        let message = format!("Invalid request: check {}.", fields.join(", "));
        Err(ApiError::bad_request("validation_failed", message)
            .with_detail("fields", serde_json::to_value(&self.0).unwrap_or(Value::Null)))
    }
}

/// The rule a value broke, with a sentence saying what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub message: String,
}

impl Rule {
    pub fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, message: message.into() }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// A session length: 60 to 480 minutes in steps of 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DurationMinutes(u32);

impl DurationMinutes {
    pub const MIN: u32 = 60;
    pub const MAX: u32 = 480;
    pub const STEP: u32 = 15;

    pub fn parse(minutes: i64) -> Result<Self, Rule> {
        if !(i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&minutes) {
            return Err(Rule::new("range", format!("A session lasts {} to {} minutes.", Self::MIN, Self::MAX)));
        }
        if minutes % i64::from(Self::STEP) != 0 {
            return Err(Rule::new("step", format!("A session lasts a multiple of {} minutes.", Self::STEP)));
        }
        Ok(Self(minutes as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// How far ahead a session may be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingWindow {
    pub min_notice: Duration,
    pub max_horizon: Duration,
}

impl Default for BookingWindow {
    fn default() -> Self {
        Self { min_notice: Duration::hours(1), max_horizon: Duration::days(90) }
    }
}

impl BookingWindow {
    /// The window from `BOOKING_MIN_NOTICE_MINUTES` and `BOOKING_MAX_HORIZON_DAYS`, each
    /// defaulting to the policy (60 minutes, 90 days) and only ever narrowing it: the database
    /// enforces the policy's outer bounds itself.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let default = Self::default();
        let read = |name: &str| lookup(name).and_then(|value| value.trim().parse::<i64>().ok());
        Self {
            min_notice: read("BOOKING_MIN_NOTICE_MINUTES")
                .map(Duration::minutes)
                .filter(|notice| *notice > default.min_notice)
                .unwrap_or(default.min_notice),
            max_horizon: read("BOOKING_MAX_HORIZON_DAYS")
                .map(Duration::days)
                .filter(|horizon| *horizon > Duration::zero() && *horizon < default.max_horizon)
                .unwrap_or(default.max_horizon),
        }
    }
}

/// A session start: an RFC 3339 instant on a whole minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StartTime(DateTime<Utc>);

impl StartTime {
    pub fn parse(text: &str) -> Result<Self, Rule> {
        let start = parse_instant(text)?;
        if start.timestamp() % 60 != 0 {
            return Err(Rule::new("whole_minute", "A session starts on a whole minute."));
        }
        Ok(Self(start))
    }

    /// At least the minimum notice and at most the horizon after `now`. A well-formed start
    /// outside the window is a conflict with the calendar, not a malformed request.
    pub fn within(self, now: DateTime<Utc>, window: BookingWindow) -> Result<Self, Rule> {
        if self.0 < now + window.min_notice {
            return Err(Rule::new(
                "too_soon",
                format!("A session must be booked at least {} minutes ahead.", window.min_notice.num_minutes()),
            ));
        }
        if self.0 > now + window.max_horizon {
            return Err(Rule::new(
                "too_far",
                format!("A session can be booked at most {} days ahead.", window.max_horizon.num_days()),
            ));
        }
        Ok(self)
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

/// An RFC 3339 instant with an explicit offset (`2030-01-07T10:00:00Z`).
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, Rule> {
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|_| Rule::new("format", "Give an RFC 3339 date-time with an offset, like 2030-01-07T10:00:00Z."))
}

/// Timestamps read from JSON (`#[serde(deserialize_with = "rfc3339::…")]`) with chrono's strict
/// RFC 3339 parser, the one [`parse_instant`] uses. chrono's own `Deserialize` goes through its
/// lenient `FromStr`, whose general format parser was about 10 KB of every worker's wasm;
/// PostgREST writes `timestamptz` as RFC 3339, which both accept.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::de::{Deserializer, Error, Visitor};
    use serde::Deserialize;
    use std::fmt;

    struct Instant(DateTime<Utc>);

    impl<'de> Deserialize<'de> for Instant {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Text;
            impl Visitor<'_> for Text {
                type Value = Instant;
                fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                    formatter.write_str("an RFC 3339 date-time")
                }
                fn visit_str<E: Error>(self, text: &str) -> Result<Instant, E> {
                    super::parse_instant(text)
                        .map(Instant)
                        .map_err(|_| E::custom(format_args!("not an RFC 3339 date-time: {text}")))
                }
            }
            deserializer.deserialize_str(Text)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        Instant::deserialize(deserializer).map(|instant| instant.0)
    }

    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Instant>::deserialize(deserializer)?.map(|instant| instant.0))
    }

    pub fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<DateTime<Utc>>, D::Error> {
        Ok(Vec::<Instant>::deserialize(deserializer)?.into_iter().map(|instant| instant.0).collect())
    }
}

/// An ISO 4217 currency code the platform prices in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Currency {
    /// Active ISO 4217 codes with two minor digits: the ones a cents-based hourly rate means.
    const SUPPORTED: &'static [&'static str] = &[
        "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "ILS", "INR", "MXN", "NOK", "NZD", "PLN",
        "SEK", "SGD", "USD", "ZAR",
    ];

    pub fn parse(code: &str) -> Result<Self, Rule> {
        if !Self::SUPPORTED.contains(&code) {
            return Err(Rule::new(
                "currency",
                format!("Use an ISO 4217 code in capitals, one of {}.", Self::SUPPORTED.join(", ")),
            ));
        }
        let bytes = code.as_bytes();
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A positive amount in integer minor units (cents); never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MinorUnits(i64);

impl MinorUnits {
    /// The largest hourly rate the schema accepts (100,000.00 an hour).
    pub const MAX_RATE: i64 = 10_000_000;

    pub fn parse(amount: i64) -> Result<Self, Rule> {
        if amount <= 0 {
            return Err(Rule::new("positive", "An amount is a positive whole number of minor units (cents)."));
        }
        if amount > Self::MAX_RATE {
            return Err(Rule::new("range", format!("An amount is at most {} minor units.", Self::MAX_RATE)));
        }
        Ok(Self(amount))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A commission in basis points: 1000 is 10%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CommissionBps(u16);

impl CommissionBps {
    pub const DEFAULT: CommissionBps = CommissionBps(1000);

    pub fn parse(bps: i64) -> Result<Self, Rule> {
        u16::try_from(bps)
            .ok()
            .filter(|bps| *bps <= 10_000)
            .map(Self)
            .ok_or_else(|| Rule::new("range", "A commission is 0 to 10000 basis points."))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// A skill slug: lowercase letters and digits in words joined by single hyphens, at most 40.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SkillSlug(String);

impl SkillSlug {
    pub fn parse(slug: &str) -> Result<Self, Rule> {
        let well_formed = !slug.is_empty()
            && slug.len() <= 40
            && slug
                .split('-')
                .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if well_formed {
            Ok(Self(slug.to_owned()))
        } else {
            Err(Rule::new(
                "slug",
                "A skill is a slug like react or ci-cd: lowercase words joined by hyphens, at most 40 characters.",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A review rating: 1 to 5 stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Rating(u8);

impl Rating {
    pub fn parse(stars: i64) -> Result<Self, Rule> {
        u8::try_from(stars)
            .ok()
            .filter(|stars| (1..=5).contains(stars))
            .map(Self)
            .ok_or_else(|| Rule::new("range", "A rating is 1 to 5."))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A minimum average rating to filter on: 0 to 5.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct MinRating(f64);

impl MinRating {
    pub fn parse(value: f64) -> Result<Self, Rule> {
        if value.is_finite() && (0.0..=5.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Rule::new("range", "A minimum rating is between 0 and 5."))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// An email address, trimmed and lowercased: one `@`, a dotted domain, no spaces, at most 254.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, Rule> {
        let email = text.trim().to_ascii_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && match email.split_once('@') {
                Some((local, domain)) => {
                    (1..=64).contains(&local.len())
                        && !domain.contains('@')
                        && domain.contains('.')
                        && domain
                            .split('.')
                            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
                }
                None => false,
            };
        if valid {
            Ok(Self(email))
        } else {
            Err(Rule::new("email", "Give an email address like name@example.com."))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

/// A new password that meets the policy: 10 to 72 bytes (bcrypt's limit), at least two of
/// lowercase, uppercase, digits and symbols, and not built from the account's email.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_BYTES: usize = 72;

    pub fn parse(text: &str, email: Option<&Email>) -> Result<Self, Rule> {
        if text.chars().count() < Self::MIN_CHARS {
            return Err(Rule::new("too_short", format!("A password has at least {} characters.", Self::MIN_CHARS)));
        }
        if text.len() > Self::MAX_BYTES {
            return Err(Rule::new("too_long", format!("A password has at most {} bytes.", Self::MAX_BYTES)));
        }
        let classes = [
            text.chars().any(|c| c.is_lowercase()),
            text.chars().any(|c| c.is_uppercase()),
            text.chars().any(|c| c.is_ascii_digit()),
            text.chars().any(|c| !c.is_alphanumeric()),
        ];
        if classes.iter().filter(|present| **present).count() < 2 {
            return Err(Rule::new("one_class", "Mix at least two of lowercase, uppercase, digits and symbols."));
        }
        if let Some(email) = email {
            let lowered = text.to_lowercase();
            if lowered == email.as_str() || (email.local_part().len() >= 3 && lowered.contains(email.local_part())) {
                return Err(Rule::new("contains_email", "A password must not contain your email address."));
            }
        }
        Ok(Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// How many results a page holds: 1 to 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PageLimit(u8);

impl PageLimit {
    pub const DEFAULT: PageLimit = PageLimit(10);

    pub fn parse(limit: i64) -> Result<Self, Rule> {
        u8::try_from(limit)
            .ok()
            .filter(|limit| (1..=50).contains(limit))
            .map(Self)
            .ok_or_else(|| Rule::new("range", "A limit is 1 to 50."))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A UUID in its canonical text form.
pub fn parse_uuid(text: &str) -> Result<uuid::Uuid, Rule> {
    uuid::Uuid::try_parse(text).map_err(|_| Rule::new("uuid", "Give a UUID like 2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f."))
}

/// An IANA timezone name (`Europe/Paris`, `America/Argentina/Buenos_Aires`, `UTC`): checked for
/// form here; the database checks it against its own zone list (`pg_timezone_names`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn parse(name: &str) -> Result<Self, Rule> {
        let part_ok = |part: &str| {
            !part.is_empty()
                && part.len() <= 30
                && part.starts_with(|c: char| c.is_ascii_uppercase())
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+')
        };
        let parts: Vec<&str> = name.split('/').collect();
        let known_single = matches!(name, "UTC" | "GMT" | "Etc/UTC");
        if known_single || (parts.len() >= 2 && parts.len() <= 3 && parts.iter().all(|part| part_ok(part))) {
            Ok(Self(name.to_owned()))
        } else {
            Err(Rule::new("timezone", "Give an IANA timezone like Europe/Paris or America/New_York."))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_instant(text).unwrap()
    }

    #[derive(Debug, serde::Deserialize)]
    struct Stamps {
        #[serde(deserialize_with = "rfc3339::deserialize")]
        at: DateTime<Utc>,
        #[serde(default, deserialize_with = "rfc3339::option")]
        maybe: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "rfc3339::list")]
        slots: Vec<DateTime<Utc>>,
    }

    #[test]
    fn json_timestamps_read_as_postgrest_writes_them() {
        let stamps: Stamps = serde_json::from_str(
            r#"{"at": "2030-06-10T14:00:00.123456+02:00", "maybe": null, "slots": ["2030-06-10T12:00:00Z", "2030-06-10T12:15:00+00:00"]}"#,
        )
        .unwrap();
        assert_eq!(stamps.at, at("2030-06-10T12:00:00.123456Z"));
        assert_eq!(stamps.maybe, None);
        assert_eq!(stamps.slots, [at("2030-06-10T12:00:00Z"), at("2030-06-10T12:15:00Z")]);
        let stamps: Stamps =
            serde_json::from_str(r#"{"at": "2030-06-10t12:00:00z", "maybe": "2030-06-11T00:00:00-05:00"}"#).unwrap();
        assert_eq!((stamps.at, stamps.maybe), (at("2030-06-10T12:00:00Z"), Some(at("2030-06-11T05:00:00Z"))));
        assert!(stamps.slots.is_empty());
    }

    #[test]
    fn json_timestamps_without_an_offset_or_not_text_are_refused() {
        for body in
            [r#"{"at": "2030-06-10T12:00:00"}"#, r#"{"at": "tomorrow"}"#, r#"{"at": 1900000000}"#, r#"{"at": null}"#]
        {
            let error = serde_json::from_str::<Stamps>(body).unwrap_err().to_string();
            assert!(error.contains("RFC 3339"), "{body}: {error}");
        }
    }

    #[test]
    fn durations_from_60_to_480_in_15_minute_steps_are_accepted() {
        for minutes in (60..=480).step_by(15) {
            assert_eq!(DurationMinutes::parse(minutes).unwrap().get(), minutes as u32);
        }
    }

    #[test]
    fn a_duration_outside_the_range_or_off_step_is_rejected_with_its_rule() {
        assert_eq!(DurationMinutes::parse(45).unwrap_err().name, "range");
        assert_eq!(DurationMinutes::parse(495).unwrap_err().name, "range");
        assert_eq!(DurationMinutes::parse(70).unwrap_err().name, "step");
        assert_eq!(DurationMinutes::parse(-60).unwrap_err().name, "range");
    }

    fn start(text: &str, now: DateTime<Utc>, window: BookingWindow) -> Result<StartTime, Rule> {
        StartTime::parse(text)?.within(now, window)
    }

    #[test]
    fn a_start_inside_the_booking_window_is_accepted() {
        let now = at("2030-01-01T10:00:00Z");
        assert!(start("2030-01-01T11:00:00Z", now, BookingWindow::default()).is_ok(), "exactly one hour ahead");
        assert!(start("2030-04-01T10:00:00Z", now, BookingWindow::default()).is_ok(), "exactly 90 days ahead");
        assert!(start("2030-01-01T12:00:00+01:00", now, BookingWindow::default()).is_ok(), "an offset is converted");
    }

    #[test]
    fn a_start_too_soon_too_far_or_off_minute_is_rejected() {
        let now = at("2030-01-01T10:00:00Z");
        let window = BookingWindow::default();
        assert_eq!(start("2030-01-01T10:59:00Z", now, window).unwrap_err().name, "too_soon");
        assert_eq!(start("2029-12-31T10:00:00Z", now, window).unwrap_err().name, "too_soon");
        assert_eq!(start("2030-04-01T10:01:00Z", now, window).unwrap_err().name, "too_far");
        assert_eq!(start("2030-01-02T10:00:30Z", now, window).unwrap_err().name, "whole_minute");
        assert_eq!(start("2030-01-02 10:00", now, window).unwrap_err().name, "format");
    }

    #[test]
    fn the_booking_window_is_configurable() {
        let now = at("2030-01-01T10:00:00Z");
        let window = BookingWindow { min_notice: Duration::hours(24), max_horizon: Duration::days(7) };
        assert_eq!(start("2030-01-01T20:00:00Z", now, window).unwrap_err().name, "too_soon");
        assert_eq!(start("2030-01-09T10:00:00Z", now, window).unwrap_err().name, "too_far");
    }

    #[test]
    fn the_window_is_read_from_the_environment_and_only_narrows_the_policy() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let window = BookingWindow::from_vars(vars(&[
            ("BOOKING_MIN_NOTICE_MINUTES", "120"),
            ("BOOKING_MAX_HORIZON_DAYS", "30"),
        ]));
        assert_eq!((window.min_notice, window.max_horizon), (Duration::minutes(120), Duration::days(30)));
        let widened =
            BookingWindow::from_vars(vars(&[("BOOKING_MIN_NOTICE_MINUTES", "5"), ("BOOKING_MAX_HORIZON_DAYS", "365")]));
        assert_eq!(widened, BookingWindow::default());
        assert_eq!(BookingWindow::from_vars(vars(&[("BOOKING_MAX_HORIZON_DAYS", "soon")])), BookingWindow::default());
    }

    #[test]
    fn currencies_are_iso_4217_codes_in_capitals() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        assert_eq!(serde_json::to_value(Currency::parse("EUR").unwrap()).unwrap(), "EUR");
        for bad in ["eur", "EURO", "XXX", "", "E1R"] {
            assert_eq!(Currency::parse(bad).unwrap_err().name, "currency", "{bad}");
        }
    }

    #[test]
    fn money_is_a_positive_bounded_integer() {
        assert_eq!(MinorUnits::parse(1).unwrap().get(), 1);
        assert_eq!(MinorUnits::parse(0).unwrap_err().name, "positive");
        assert_eq!(MinorUnits::parse(-5).unwrap_err().name, "positive");
        assert_eq!(MinorUnits::parse(MinorUnits::MAX_RATE + 1).unwrap_err().name, "range");
    }

    #[test]
    fn commissions_are_0_to_10000_basis_points() {
        assert_eq!(CommissionBps::parse(0).unwrap().get(), 0);
        assert_eq!(CommissionBps::parse(10_000).unwrap().get(), 10_000);
        assert!(CommissionBps::parse(10_001).is_err());
        assert!(CommissionBps::parse(-1).is_err());
    }

    #[test]
    fn skill_slugs_are_lowercase_hyphenated_words() {
        for good in ["react", "ci-cd", "v0", "llm-apps"] {
            assert!(SkillSlug::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "React", "ci--cd", "-react", "react-", "re act", "a".repeat(41).as_str()] {
            assert!(SkillSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratings_are_1_to_5_and_minimum_ratings_0_to_5() {
        assert!(Rating::parse(1).is_ok() && Rating::parse(5).is_ok());
        assert!(Rating::parse(0).is_err() && Rating::parse(6).is_err());
        assert!(MinRating::parse(4.5).is_ok());
        assert!(MinRating::parse(5.1).is_err() && MinRating::parse(f64::NAN).is_err());
    }

    #[test]
    fn emails_are_trimmed_lowercased_and_checked_for_form() {
        assert_eq!(Email::parse("  Casey@Example.COM ").unwrap().as_str(), "casey@example.com");
        for bad in [
            "casey",
            "casey@",
            "@example.com",
            "casey@example",
            "ca sey@example.com",
            "a@b@example.com",
            "casey@-example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_password_meets_the_policy() {
        let email = Email::parse("casey@example.com").unwrap();
        assert!(Password::parse("correct-Horse-7", Some(&email)).is_ok());
        assert_eq!(Password::parse("Short-1", None).unwrap_err().name, "too_short");
        assert_eq!(Password::parse("alllowercaseletters", None).unwrap_err().name, "one_class");
        assert_eq!(Password::parse("Casey-was-here-1", Some(&email)).unwrap_err().name, "contains_email");
        assert_eq!(Password::parse(&"aA".repeat(37), None).unwrap_err().name, "too_long");
    }

    #[test]
    fn a_password_is_never_printed() {
        assert_eq!(format!("{:?}", Password::parse("correct-Horse-7", None).unwrap()), "Password(..)");
    }

    #[test]
    fn page_limits_are_1_to_50() {
        assert_eq!(PageLimit::parse(50).unwrap().get(), 50);
        assert!(PageLimit::parse(0).is_err() && PageLimit::parse(51).is_err());
    }

    #[test]
    fn uuids_and_timezones_are_checked_for_form() {
        assert!(parse_uuid("2f1c6f0e-8d7a-4f6b-9c1e-0a2b3c4d5e6f").is_ok());
        assert!(parse_uuid("not-a-uuid").is_err());
        for good in ["Europe/Paris", "America/Argentina/Buenos_Aires", "UTC", "America/Port-au-Prince", "Etc/GMT+5"] {
            assert!(TimeZoneName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "paris", "Europe/", "+01:00", "EST5EDT+99/x/y/z", "Europe/Pa ris"] {
            assert!(TimeZoneName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut violations = Violations::new();
        violations.check("duration_minutes", DurationMinutes::parse(50));
        violations.check("currency", Currency::parse("usd"));
        violations.require::<i64>("expert_id", None);
        let error = violations.finish().unwrap_err();
        assert_eq!(error.status, 400);
        assert_eq!(error.code, "validation_failed");
        let fields: Vec<&str> =
            error.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["duration_minutes", "currency", "expert_id"]);
        assert_eq!(error.details["fields"][2]["rule"], "required");
    }

    #[test]
    fn no_violation_means_success() {
        assert!(Violations::new().finish().is_ok());
    }
}

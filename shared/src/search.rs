//! find-experts' search, from a JSON body (`POST /`) or query parameters (`GET /`), parsed into
//! one [`Search`] with every bad field reported at once, and its keyset cursor.

use crate::error::ApiError;
use crate::rpc::FindExperts;
use crate::tokens::from_hex;
use crate::validate::{
    parse_instant, Currency, DurationMinutes, MinRating, MinorUnits, PageLimit, Rule, SkillSlug, Violations,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub skills: Option<Vec<String>>,
    pub max_rate_cents: Option<i64>,
    pub currency: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub duration_minutes: Option<i64>,
    pub min_rating: Option<f64>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Where the previous page ended: its last score and expert id.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub score: String,
    pub expert_id: Uuid,
}

impl Cursor {
    /// A cursor is opaque to clients: hex of `score|expert_id`, as `find_experts` makes it.
    pub fn decode(text: &str) -> Result<Self, Rule> {
        let invalid = || Rule::new("cursor", "Pass back the cursor of the previous page unchanged.");
        if text.len() > 200 {
            return Err(invalid());
        }
        let decoded = String::from_utf8(from_hex(text).ok_or_else(invalid)?).map_err(|_| invalid())?;
        let (score, id) = decoded.split_once('|').ok_or_else(invalid)?;
        let score_ok =
            !score.is_empty() && score.bytes().all(|b| b.is_ascii_digit() || b == b'.') && score.parse::<f64>().is_ok();
        let expert_id = Uuid::try_parse(id).map_err(|_| invalid())?;
        if !score_ok {
            return Err(invalid());
        }
        Ok(Self { score: score.to_owned(), expert_id })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub skills: Vec<SkillSlug>,
    pub max_rate: Option<MinorUnits>,
    pub currency: Option<Currency>,
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub duration: DurationMinutes,
    pub min_rating: Option<MinRating>,
    pub limit: PageLimit,
    pub after: Option<Cursor>,
}

pub const MAX_SKILLS: usize = 10;
pub const MAX_WINDOW_DAYS: i64 = 31;

impl SearchRequest {
    /// The search a `GET` URL's query asks for.
    pub fn from_url(url: &str, violations: &mut Violations) -> Self {
        Self::from_query(form_pairs(url), violations)
    }

    /// The same search from `GET /?skills=react,typescript&max_rate_cents=15000&...`.
    pub fn from_query(pairs: impl Iterator<Item = (String, String)>, violations: &mut Violations) -> Self {
        let mut request = SearchRequest::default();
        let number = |field: &str, value: &str, violations: &mut Violations| -> Option<i64> {
            violations.check(
                field,
                value.parse::<i64>().map_err(|_| Rule::new("number", format!("{field} must be a whole number."))),
            )
        };
        for (key, value) in pairs {
            match key.as_str() {
                "skills" => {
                    request.skills =
                        Some(value.split(',').map(|skill| skill.trim().to_owned()).filter(|s| !s.is_empty()).collect())
                }
                "max_rate_cents" => request.max_rate_cents = number("max_rate_cents", &value, violations),
                "currency" => request.currency = Some(value),
                "from" => request.from = Some(value),
                "to" => request.to = Some(value),
                "duration_minutes" => request.duration_minutes = number("duration_minutes", &value, violations),
                "min_rating" => {
                    request.min_rating = violations.check(
                        "min_rating",
                        value.parse::<f64>().map_err(|_| Rule::new("number", "min_rating must be a number.")),
                    )
                }
                "limit" => request.limit = number("limit", &value, violations),
                "cursor" => request.cursor = Some(value),
                other => violations.add(other, Rule::new("unknown", format!("{other} is not a search parameter."))),
            }
        }
        request
    }
}

impl Search {
    pub fn parse(request: SearchRequest, mut violations: Violations) -> Result<Self, ApiError> {
        let skills = violations.require("skills", request.skills).and_then(|skills| {
            if skills.is_empty() || skills.len() > MAX_SKILLS {
                violations.add("skills", Rule::new("count", format!("Give 1 to {MAX_SKILLS} skills.")));
                return None;
            }
            let parsed: Vec<Option<SkillSlug>> = skills
                .iter()
                .enumerate()
                .map(|(i, skill)| violations.check(&format!("skills[{i}]"), SkillSlug::parse(skill)))
                .collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        });
        let max_rate =
            request.max_rate_cents.and_then(|rate| violations.check("max_rate_cents", MinorUnits::parse(rate)));
        let currency = request.currency.and_then(|code| violations.check("currency", Currency::parse(&code)));
        let from = request.from.and_then(|text| violations.check("from", parse_instant(&text)));
        let to = request.to.and_then(|text| violations.check("to", parse_instant(&text)));
        let window = match (from, to) {
            (Some(from), Some(to)) if to <= from => {
                violations.add("to", Rule::new("order", "The window ends after it starts."));
                None
            }
            (Some(from), Some(to)) if (to - from).num_days() > MAX_WINDOW_DAYS => {
                violations.add("to", Rule::new("too_long", format!("A window spans at most {MAX_WINDOW_DAYS} days.")));
                None
            }
            (Some(from), Some(to)) => Some((from, to)),
            (None, None) => None,
            (Some(_), None) => {
                violations.add("to", Rule::new("required", "A window needs both from and to."));
                None
            }
            (None, Some(_)) => {
                violations.add("from", Rule::new("required", "A window needs both from and to."));
                None
            }
        };
        let duration =
            violations.check("duration_minutes", DurationMinutes::parse(request.duration_minutes.unwrap_or(60)));
        let min_rating = request.min_rating.and_then(|rating| violations.check("min_rating", MinRating::parse(rating)));
        let limit = violations.check("limit", request.limit.map_or(Ok(PageLimit::DEFAULT), PageLimit::parse));
        let after = request.cursor.and_then(|cursor| violations.check("cursor", Cursor::decode(&cursor)));
        violations.finish()?;
        match (skills, duration, limit) {
            (Some(skills), Some(duration), Some(limit)) => {
                Ok(Self { skills, max_rate, currency, window, duration, min_rating, limit, after })
            }
            _ => Err(ApiError::internal()),
        }
    }

    /// The call of the `find_experts` database function.
    pub fn rpc_args(&self) -> FindExperts {
        FindExperts {
            skills: self.skills.iter().map(|skill| skill.as_str().to_owned()).collect(),
            max_rate_cents: self.max_rate.map(MinorUnits::get),
            currency: self.currency.map(|currency| currency.as_str().to_owned()),
            window_from: self.window.map(|(from, _)| from),
            window_to: self.window.map(|(_, to)| to),
            duration_minutes: i64::from(self.duration.get()),
            min_rating: self.min_rating.map(MinRating::get),
            page_size: i64::from(self.limit.get()),
            after_score: self.after.as_ref().map(|cursor| cursor.score.clone()),
            after_id: self.after.as_ref().map(|cursor| cursor.expert_id),
        }
    }
}

/// A URL's query as `application/x-www-form-urlencoded` pairs, decoded as browsers and the `url`
/// crate decode them: `+` is a space, `%XX` a byte, a malformed escape stays as written, and
/// bytes that are not UTF-8 become U+FFFD.
fn form_pairs(url: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(name), form_decode(value))
    })
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = match bytes[at] {
            b'%' => {
                bytes.get(at + 1..at + 3).and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
            }
            _ => None,
        };
        match (bytes[at], escaped) {
            (_, Some(byte)) => {
                decoded.push(byte);
                at += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                at += 1;
            }
            (byte, None) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::to_hex;

    fn query(pairs: &[(&str, &str)]) -> Result<Search, ApiError> {
        let mut violations = Violations::new();
        let request =
            SearchRequest::from_query(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())), &mut violations);
        Search::parse(request, violations)
    }

    fn pairs_of(url: &str) -> Vec<(String, String)> {
        form_pairs(url).collect()
    }

    #[test]
    fn a_url_query_decodes_as_a_form() {
        let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
        };
        assert_eq!(
            pairs_of("https://x.test/find-experts?skills=react%2Ctypescript&q=Ana+Mar%C3%ADa&&flag#part"),
            owned(&[("skills", "react,typescript"), ("q", "Ana María"), ("flag", "")])
        );
        assert_eq!(
            pairs_of("https://x.test/?a=100%&b=%zz%4&c=%ff"),
            owned(&[("a", "100%"), ("b", "%zz%4"), ("c", "\u{fffd}")])
        );
        assert_eq!(pairs_of("https://x.test/find-experts"), owned(&[]));
        assert_eq!(pairs_of("https://x.test/?=v&k=a=b"), owned(&[("", "v"), ("k", "a=b")]));
    }

    #[test]
    fn a_search_reads_its_url() {
        let mut violations = Violations::new();
        let request = SearchRequest::from_url("https://x.test/?skills=react,typescript&limit=5", &mut violations);
        let search = Search::parse(request, violations).unwrap();
        assert_eq!(search, query(&[("skills", "react,typescript"), ("limit", "5")]).unwrap());
    }

    fn fields(error: &ApiError) -> Vec<String> {
        error.details["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn a_query_string_search_parses_with_defaults() {
        let search =
            query(&[("skills", "react, typescript"), ("max_rate_cents", "15000"), ("currency", "USD")]).unwrap();
        assert_eq!(search.skills.len(), 2);
        assert_eq!((search.duration.get(), search.limit.get()), (60, 10));
        assert_eq!(search.rpc_args().skills, ["react", "typescript"]);
        assert_eq!(search.rpc_args().window_from, None);
    }

    #[test]
    fn every_bad_parameter_is_reported() {
        let error = query(&[
            ("skills", "React,ok"),
            ("max_rate_cents", "lots"),
            ("from", "2030-01-02T00:00:00Z"),
            ("limit", "99"),
            ("colour", "red"),
        ])
        .unwrap_err();
        assert_eq!(fields(&error), ["max_rate_cents", "colour", "skills[0]", "to", "limit"]);
    }

    #[test]
    fn skills_are_required_and_at_most_ten() {
        assert_eq!(fields(&Search::parse(SearchRequest::default(), Violations::new()).unwrap_err()), ["skills"]);
        let eleven: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
        let error =
            Search::parse(SearchRequest { skills: Some(eleven), ..Default::default() }, Violations::new()).unwrap_err();
        assert_eq!(error.details["fields"][0]["rule"], "count");
    }

    #[test]
    fn a_window_must_be_ordered_and_bounded() {
        let error = query(&[("skills", "react"), ("from", "2030-01-05T00:00:00Z"), ("to", "2030-01-04T00:00:00Z")])
            .unwrap_err();
        assert_eq!(error.details["fields"][0]["rule"], "order");
        let error = query(&[("skills", "react"), ("from", "2030-01-01T00:00:00Z"), ("to", "2030-03-01T00:00:00Z")])
            .unwrap_err();
        assert_eq!(error.details["fields"][0]["rule"], "too_long");
    }

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let cursor = Cursor {
            score: "0.7950".into(),
            expert_id: Uuid::parse_str("22222222-2222-4222-8222-222222222204").unwrap(),
        };
        let encoded = to_hex(b"0.7950|22222222-2222-4222-8222-222222222204");
        assert_eq!(Cursor::decode(&encoded), Ok(cursor.clone()));
        let search = query(&[("skills", "react"), ("cursor", &encoded)]).unwrap();
        assert_eq!(search.rpc_args().after_score.as_deref(), Some("0.7950"));
        for forged in ["zz", "abc", &to_hex(b"0.5|x"), &to_hex(b"1;drop|22222222-2222-4222-8222-222222222204")] {
            assert!(Cursor::decode(forged).is_err(), "{forged}");
        }
    }
}

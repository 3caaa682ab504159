//! CORS decisions, kept pure so they are tested natively; the worker glue applies them.

/// The origins allowed to call a function, from a comma-separated list (`*` allows any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    pub fn parse(list: &str) -> Self {
        Self(list.split(',').map(str::trim).filter(|origin| !origin.is_empty()).map(str::to_owned).collect())
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    pub fn allow(&self, origin: Option<&str>) -> Option<String> {
        if self.0.iter().any(|allowed| allowed == "*") {
            return Some("*".to_owned());
        }
        let origin = origin?;
        self.0.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)).then(|| origin.to_owned())
    }
}

pub const ALLOWED_HEADERS: &str = "authorization, apikey, content-type, x-client-info, x-request-id";
pub const EXPOSED_HEADERS: &str = "x-request-id, retry-after";
pub const MAX_AGE_SECONDS: &str = "86400";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_origin_is_echoed_back() {
        let origins = AllowedOrigins::parse("https://app.example.com, http://localhost:3000");
        assert_eq!(origins.allow(Some("http://localhost:3000")).as_deref(), Some("http://localhost:3000"));
    }

    #[test]
    fn an_unlisted_origin_gets_no_allow_header() {
        let origins = AllowedOrigins::parse("https://app.example.com");
        assert_eq!(origins.allow(Some("https://evil.example")), None);
        assert_eq!(origins.allow(None), None);
    }

    #[test]
    fn a_wildcard_allows_every_origin() {
        assert_eq!(AllowedOrigins::parse("*").allow(Some("https://any.example")).as_deref(), Some("*"));
    }
}

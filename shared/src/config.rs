//! Configuration read once per request from the environment. Every missing variable is named
//! at once, so a misconfigured deployment is fixed in one go.

use crate::cors::AllowedOrigins;

/// What every function needs. Secrets used only by some functions are read where needed.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgREST's base URL: `https://<project>.supabase.co/rest/v1` when hosted.
    pub postgrest_url: String,
    /// The project's anon key, sent as `apikey` on every PostgREST request.
    pub anon_key: String,
    pub allowed_origins: AllowedOrigins,
    /// Where the functions also answer, as Supabase's Edge Functions do: every route of a
    /// function `<name>` is served under `<functions_path>/<name>` too (supabase-js calls
    /// `https://<host>/functions/v1/<name>`).
    pub functions_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVariables(pub Vec<&'static str>);

impl std::fmt::Display for MissingVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "missing environment variables: {}", self.0.join(", "))
    }
}

/// Reads variables through `lookup`, collecting the name of every one that is absent or empty.
pub struct Reader<F: Fn(&str) -> Option<String>> {
    lookup: F,
    missing: Vec<&'static str>,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup, missing: Vec::new() }
    }

    pub fn required(&mut self, name: &'static str) -> String {
        match (self.lookup)(name).filter(|value| !value.trim().is_empty()) {
            Some(value) => value,
            None => {
                self.missing.push(name);
                String::new()
            }
        }
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    pub fn finish<T>(self, value: T) -> Result<T, MissingVariables> {
        if self.missing.is_empty() {
            Ok(value)
        } else {
            Err(MissingVariables(self.missing))
        }
    }
}

/// The path of an absolute URL as the runtime serialises it (`https://host/a/b?q` -> `/a/b`):
/// read off the string, since a serialised URL's first `/` after the host begins its path and
/// `?` and `#` inside the path are always percent-encoded.
pub fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let rest = &url[after_scheme..];
    match rest.find(['/', '?', '#']) {
        Some(start) if rest[start..].starts_with('/') => {
            let path = &rest[start..];
            &path[..path.find(['?', '#']).unwrap_or(path.len())]
        }
        _ => "/",
    }
}

impl Config {
    /// A request's route within a function: the path itself, or what follows
    /// `<functions_path>/<name>` (`/functions/v1/find-experts/health` -> `/health`).
    pub fn route<'a>(&self, name: &str, path: &'a str) -> &'a str {
        let rest = path
            .strip_prefix(self.functions_path.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.strip_prefix(name));
        match rest {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        }
    }

    pub fn read(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MissingVariables> {
        let mut vars = Reader::new(lookup);
        let config = Config {
            postgrest_url: vars.required("POSTGREST_URL").trim_end_matches('/').to_owned(),
            anon_key: vars.required("SUPABASE_ANON_KEY"),
            allowed_origins: AllowedOrigins::parse(&vars.optional("ALLOWED_ORIGINS").unwrap_or_default()),
            functions_path: vars
                .optional("FUNCTIONS_PATH")
                .unwrap_or_else(|| "/functions/v1".into())
                .trim_end_matches('/')
                .to_owned(),
        };
        vars.finish(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_path_is_read_off_the_serialised_url() {
        for (url, path) in [
            ("https://example.com/", "/"),
            ("https://example.com/functions/v1/find-experts/health", "/functions/v1/find-experts/health"),
            ("https://example.com:8080/a?b=/c", "/a"),
            ("https://example.com/a#/b?c", "/a"),
            ("https://example.com/a%3F%23b?c", "/a%3F%23b"),
            ("https://example.com?q=/x", "/"),
            ("https://example.com#/x", "/"),
            ("https://example.com", "/"),
        ] {
            assert_eq!(path_of(url), path, "{url}");
        }
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let error = Config::read(lookup(&[("SUPABASE_ANON_KEY", "  ")])).unwrap_err();
        assert_eq!(error.0, vec!["POSTGREST_URL", "SUPABASE_ANON_KEY"]);
        assert_eq!(error.to_string(), "missing environment variables: POSTGREST_URL, SUPABASE_ANON_KEY");
    }

    #[test]
    fn a_complete_environment_reads_and_trims_the_trailing_slash() {
        let config =
            Config::read(lookup(&[("POSTGREST_URL", "http://127.0.0.1:3000/"), ("SUPABASE_ANON_KEY", "k")])).unwrap();
        assert_eq!(config.postgrest_url, "http://127.0.0.1:3000");
        assert_eq!(config.allowed_origins.allow(Some("https://x.example")), None);
        assert_eq!(config.functions_path, "/functions/v1");
    }

    #[test]
    fn routes_answer_at_the_origin_and_under_the_functions_path() {
        let config = Config::read(lookup(&[("POSTGREST_URL", "http://x"), ("SUPABASE_ANON_KEY", "k")])).unwrap();
        assert_eq!(config.route("find-experts", "/"), "/");
        assert_eq!(config.route("find-experts", "/health"), "/health");
        assert_eq!(config.route("find-experts", "/functions/v1/find-experts"), "/");
        assert_eq!(config.route("find-experts", "/functions/v1/find-experts/health"), "/health");
        assert_eq!(
            config.route("find-experts", "/functions/v1/find-experts-x/health"),
            "/functions/v1/find-experts-x/health"
        );
        assert_eq!(config.route("find-experts", "/functions/v1/create-session/"), "/functions/v1/create-session/");
        let custom = Config::read(lookup(&[
            ("POSTGREST_URL", "http://x"),
            ("SUPABASE_ANON_KEY", "k"),
            ("FUNCTIONS_PATH", "/api/"),
        ]))
        .unwrap();
        assert_eq!(custom.route("cancel-session", "/api/cancel-session"), "/");
    }
}

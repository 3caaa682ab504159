//! reqwest 0.11's request builder as postgrest-rs uses it: `Client::request`, `headers`, `query`,
//! `body`, `build`. A built [`Request`] is plain data (method, URL text, headers, body) for the
//! caller to send; in the workers that is the Workers fetch API (`shared::edge::Built`).

use std::fmt;

use header::HeaderMap;
pub use http::{header, Method};

#[derive(Clone, Debug, Default)]
pub struct Client;

impl Client {
    pub fn new() -> Self {
        Self
    }

    pub fn request(&self, method: Method, url: impl Into<String>) -> RequestBuilder {
        RequestBuilder { request: Request { method, url: url.into(), headers: HeaderMap::new(), body: None } }
    }
}

#[derive(Debug)]
pub struct RequestBuilder {
    request: Request,
}

impl RequestBuilder {
    /// Adds the headers, replacing any of the same names, as reqwest does.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        // A name's further values come without the name.
        let mut last = None;
        for (name, value) in headers {
            match name {
                Some(name) => {
                    self.request.headers.insert(&name, value);
                    last = Some(name);
                }
                None => {
                    if let Some(name) = &last {
                        self.request.headers.append(name, value);
                    }
                }
            }
        }
        self
    }

    /// Appends the pairs to the URL's query, `application/x-www-form-urlencoded` as reqwest's
    /// serialiser writes them (PostgREST decodes `+` as a space).
    pub fn query(mut self, pairs: &[(String, String)]) -> Self {
        let url = &mut self.request.url;
        for (name, value) in pairs {
            url.push(if url.contains('?') { '&' } else { '?' });
            form_encode(name, url);
            url.push('=');
            form_encode(value, url);
        }
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.request.body = Some(body.into());
        self
    }

    pub fn build(self) -> Result<Request, Error> {
        Ok(self.request)
    }

    /// This crate has no transport: the request is [`build`](Self::build)t and sent by the caller.
    pub async fn send(self) -> Result<Response, Error> {
        Err(Error("this reqwest has no transport: send the built request with the runtime's fetch".into()))
    }
}

fn form_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(byte >> 4)] as char);
                out.push(HEX[usize::from(byte & 15)] as char);
            }
        }
    }
}

#[derive(Debug)]
pub struct Request {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Option<String>,
}

impl Request {
    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

/// A response never comes from this crate (see [`RequestBuilder::send`]).
#[derive(Debug)]
pub enum Response {}

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use header::HeaderValue;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn query_pairs_are_form_encoded_in_order() {
        let request = Client::new()
            .request(Method::GET, "http://db/experts")
            .query(&pairs(&[("select", "id,name"), ("name", "eq.Ana María & co"), ("rate", "lt.8000")]))
            .build()
            .unwrap();
        assert_eq!(request.url(), "http://db/experts?select=id%2Cname&name=eq.Ana+Mar%C3%ADa+%26+co&rate=lt.8000");
    }

    #[test]
    fn no_pairs_leave_the_url_as_it_is() {
        let request = Client::new().request(Method::POST, "http://db/rpc/book").query(&[]).body("{}").build().unwrap();
        assert_eq!((request.url(), request.body()), ("http://db/rpc/book", Some("{}")));
    }

    #[test]
    fn later_headers_replace_earlier_ones_of_the_same_name() {
        let mut first = HeaderMap::new();
        first.insert("prefer", HeaderValue::from_static("return=minimal"));
        first.insert("apikey", HeaderValue::from_static("anon"));
        let mut second = HeaderMap::new();
        second.insert("prefer", HeaderValue::from_static("return=representation"));
        let request =
            Client::new().request(Method::PATCH, "http://db/t").headers(first).headers(second).build().unwrap();
        assert_eq!(request.headers()["prefer"], "return=representation");
        assert_eq!(request.headers()["apikey"], "anon");
        assert_eq!(request.method(), Method::PATCH);
    }

    #[test]
    fn every_value_of_a_repeated_header_is_kept() {
        let mut headers = HeaderMap::new();
        headers.append("accept", HeaderValue::from_static("application/json"));
        headers.append("accept", HeaderValue::from_static("text/csv"));
        let request = Client::new().request(Method::GET, "http://db/t").headers(headers).build().unwrap();
        let values: Vec<_> = request.headers().get_all("accept").iter().collect();
        assert_eq!(values, ["application/json", "text/csv"]);
    }
}

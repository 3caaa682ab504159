//! The runtime's Response and fetch, reached in one call each (`runtime.js`), and the header
//! lines that cross with them.

use wasm_bindgen::prelude::*;
use worker::js_sys::Promise;
use worker::web_sys::{AbortSignal, ReadableStream, Response};

#[wasm_bindgen(module = "/src/edge/runtime.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = respond)]
    pub fn respond_text(status: u16, lines: &str, body: Option<&str>) -> Result<Response, JsValue>;
    #[wasm_bindgen(catch, js_name = respond)]
    pub fn respond_stream(status: u16, lines: &str, body: Option<ReadableStream>) -> Result<Response, JsValue>;
    pub fn send(method: &str, url: &str, lines: &str, body: Option<&str>, signal: Option<AbortSignal>) -> Promise;
    /// `send` through a service binding's fetch.
    #[wasm_bindgen(js_name = sendThrough)]
    pub fn send_through(binding: &JsValue, method: &str, url: &str, lines: &str, body: Option<&str>) -> Promise;
    #[wasm_bindgen(js_name = sendForText)]
    pub fn send_for_text(
        method: &str,
        url: &str,
        lines: &str,
        body: Option<&str>,
        signal: Option<AbortSignal>,
    ) -> Promise;

    /// What `sendForText` resolves to.
    pub type TextAnswer;
    #[wasm_bindgen(method, getter)]
    pub fn status(this: &TextAnswer) -> u16;
    #[wasm_bindgen(method, getter)]
    pub fn text(this: &TextAnswer) -> String;
}

/// Headers as one string, a line for each name and a line for each value: HTTP allows no line
/// break in either, and one string crosses into the runtime in one call.
#[derive(Default)]
pub struct HeaderLines(String);

impl HeaderLines {
    pub fn push(&mut self, name: &str, value: &str) {
        for part in [name, value] {
            self.0.push_str(part);
            self.0.push('\n');
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&[(&str, &str)]> for HeaderLines {
    fn from(headers: &[(&str, &str)]) -> Self {
        let mut lines = Self::default();
        for (name, value) in headers {
            lines.push(name, value);
        }
        lines
    }
}

//! Pages without a browser: a client that does not follow redirects (so a test sees where a
//! form leads), carries the page's CSRF token, posts forms as a browser without JavaScript does
//! or as the page scripts do, and parses pages for HTML selectors.

use super::app::Gaze;
use reqwest::redirect::Policy;
use scraper::{Html, Selector};
use serde_json::Value;

/// A form-posting client of one running gaze.
pub struct FormClient<'a> {
    pub g: &'a Gaze,
    pub http: reqwest::Client,
    pub token: String,
}

/// A page as fetched: its status, its text and its parsed HTML.
pub struct Page {
    pub status: u16,
    pub html: Html,
    pub text: String,
}

impl Page {
    pub fn all(&self, sel: &str) -> Vec<scraper::ElementRef<'_>> {
        let s = Selector::parse(sel).unwrap();
        self.html.select(&s).collect()
    }

    pub fn count(&self, sel: &str) -> usize {
        self.all(sel).len()
    }

    pub fn text_of(&self, sel: &str) -> String {
        self.all(sel)
            .first()
            .map(|e| e.text().collect::<String>())
            .unwrap_or_default()
    }

    pub fn attr(&self, sel: &str, attr: &str) -> Option<String> {
        self.all(sel)
            .first()
            .and_then(|e| e.value().attr(attr).map(String::from))
    }

    pub fn attrs(&self, sel: &str, attr: &str) -> Vec<String> {
        self.all(sel)
            .iter()
            .filter_map(|e| e.value().attr(attr).map(String::from))
            .collect()
    }
}

/// Percent-encodes a form name or value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes a percent-encoded query value (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&String::from_utf8_lossy(&b[i + 1..i + 3]), 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The message a redirect carries (`flash`, or `flash_err` → false), decoded.
pub fn flash(location: &str) -> (bool, String) {
    let q = location.split_once('?').map_or("", |x| x.1);
    for pair in q.split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            let text = percent_decode(v.split('#').next().unwrap_or(v));
            if k == "flash" {
                return (true, text);
            }
            if k == "flash_err" {
                return (false, text);
            }
        }
    }
    (true, String::new())
}

impl<'a> FormClient<'a> {
    /// A client holding the CSRF token the layout puts in every page.
    pub async fn new(g: &'a Gaze) -> FormClient<'a> {
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        let mut c = FormClient {
            g,
            http,
            token: String::new(),
        };
        c.token = c
            .get("/library")
            .await
            .attr("meta[name=csrf-token]", "content")
            .unwrap();
        c
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.g.url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Page {
            status,
            html: Html::parse_document(&text),
            text,
        }
    }

    /// Posts a form the way a browser without JavaScript does; returns (status, Location).
    pub async fn form(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, String) {
        let r = self.send_form(path, pairs, false).await;
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), loc)
    }

    /// Posts a form as the page scripts do (X-Requested-With): JSON back.
    pub async fn ajax(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
        let r = self.send_form(path, pairs, true).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts `pairs` (after the CSRF token) as an urlencoded form from the same origin.
    pub async fn send_form(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        ajax: bool,
    ) -> reqwest::Response {
        let mut body = format!("csrf={}", enc(&self.token));
        for (k, v) in pairs {
            body.push_str(&format!("&{}={}", enc(k), enc(v)));
        }
        let mut req = self
            .http
            .post(format!("{}{path}", self.g.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(body);
        if ajax {
            req = req.header("x-requested-with", "XMLHttpRequest");
        }
        req.send().await.unwrap()
    }
}

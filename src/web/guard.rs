//! The request guard: one layer in front of every route, pages and API alike, so that only the
//! user — not a web page they happen to visit — can drive GAZE.
//!
//! In order, a request is refused when:
//! 1. its `Host` is not a loopback name, the bound address or an `--allow-host` name (403: DNS
//!    rebinding);
//! 2. it writes (any method but GET, HEAD, OPTIONS) and `Sec-Fetch-Site` says `cross-site` or
//!    `same-site`, or an `Origin` is present that is not this Host (403: cross-site request);
//! 3. it writes to `/api/…` with a body that is not JSON (multipart or an image type only for
//!    cover uploads) (415), so a plain HTML form on another site cannot reach the API;
//! 4. it writes a form (urlencoded or multipart) to a page route without the CSRF token, as a
//!    `csrf` field or an `X-CSRF-Token` header (403). JSON bodies pass: no other origin can send
//!    them without a CORS preflight, which GAZE never grants.
//!
//! Requests with neither `Origin` nor `Sec-Fetch-Site` (curl, scripts, the CLI) pass checks 2
//! and 4 unless they send a form. A refused request reaches no handler, so nothing is written.
//! Every response also gets the security headers (CSP without inline script, nosniff,
//! `Referrer-Policy`, no framing) and a cache policy.

use super::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// The Content-Security-Policy of every response: scripts, styles, fonts and images from this
/// origin only; no inline script or style, no plugins, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Form bodies read to find the CSRF field (a cover upload is at most 20 MiB).
const MAX_FORM_BYTES: usize = 24 * 1024 * 1024;

/// The name of the CSRF form field and header.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the guard allows, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Host names allowed besides loopback (lower case, as given to `--allow-host`).
    allowed: Vec<String>,
    /// The address the server is bound to (its IP is an allowed Host unless unspecified).
    bound: Option<SocketAddr>,
    csrf: String,
}

impl Guard {
    pub fn new(allowed: &[String], bound: Option<SocketAddr>, csrf: String) -> Guard {
        Guard {
            allowed: allowed
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            bound,
            csrf,
        }
    }

    /// The token every HTML form carries (and scripts send as `X-CSRF-Token`).
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether a `Host` header value names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if self.allowed.contains(&host) {
            return true;
        }
        let name = strip_port(&host);
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        if self.allowed.iter().any(|a| a == name) {
            return true;
        }
        match name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) if ip.is_loopback() => true,
            Ok(ip) => self
                .bound
                .is_some_and(|b| !b.ip().is_unspecified() && b.ip() == ip),
            Err(_) => false,
        }
    }

    /// The warning to log when the server listens beyond loopback with no name allowed: pages
    /// reached by the machine's LAN name would be refused.
    pub fn exposure_warning(&self) -> Option<String> {
        let bound = self.bound?;
        if bound.ip().is_loopback() || !self.allowed.is_empty() {
            return None;
        }
        Some(format!(
            "listening on {bound}, beyond this machine, but no --allow-host is given: requests \
             are accepted only with Host localhost, a loopback address{}; add --allow-host NAME \
             (or GAZE_ALLOW_HOSTS) for the name other machines use",
            if bound.ip().is_unspecified() {
                String::new()
            } else {
                format!(" or {}", bound.ip())
            }
        ))
    }
}

/// `host:port` → `host`; `[::1]:5000` → `[::1]`; a bare IPv6 address is left alone.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The `host[:port]` of an `Origin` value, lower case, with the scheme's default port dropped;
/// `None` for `null` or anything unparsable.
fn origin_authority(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let authority = rest.split('/').next()?.to_ascii_lowercase();
    if authority.is_empty() {
        return None;
    }
    Some(drop_default_port(&authority, &scheme.to_ascii_lowercase()))
}

fn drop_default_port(authority: &str, scheme: &str) -> String {
    let default = match scheme {
        "https" => ":443",
        _ => ":80",
    };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_string()
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The media type without parameters, lower case.
fn media_type(headers: &HeaderMap) -> Option<String> {
    header_str(headers, header::CONTENT_TYPE).map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = header_str(headers, header::CONTENT_LENGTH)
        .and_then(|l| l.trim().parse::<u64>().ok())
        .unwrap_or(0);
    length > 0 || headers.contains_key(header::TRANSFER_ENCODING)
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn is_form(media: &str) -> bool {
    media == "application/x-www-form-urlencoded" || media == "multipart/form-data"
}

/// Routes that take an uploaded image (raw or multipart).
fn is_upload_route(path: &str) -> bool {
    path.ends_with("/cover") || path.ends_with("/upload")
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

impl Refused {
    fn forbidden(message: String) -> Refused {
        Refused {
            status: StatusCode::FORBIDDEN,
            message,
        }
    }
}

/// Checks 1–3 and decides whether the body must be searched for the CSRF field (check 4).
/// Pure: headers in, verdict out (tested by table).
pub fn check_headers(
    guard: &Guard,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<NeedsToken, Refused> {
    let host = header_str(headers, header::HOST);
    if let Some(host) = host
        && !guard.host_allowed(host)
    {
        return Err(Refused::forbidden(format!(
            "Host '{host}' is not allowed: GAZE answers only to localhost, loopback addresses \
             and the address it listens on, so that other web sites cannot reach it through \
             their own names (DNS rebinding). If you reach GAZE through this name on purpose \
             (a reverse proxy, your LAN), start it with --allow-host {} (or GAZE_ALLOW_HOSTS).",
            strip_port(&host.to_ascii_lowercase())
        )));
    }
    if !is_write(method) {
        return Ok(NeedsToken::No);
    }
    if let Some(site) = header_str(headers, "sec-fetch-site") {
        let site = site.trim().to_ascii_lowercase();
        if site == "cross-site" || site == "same-site" {
            return Err(Refused::forbidden(format!(
                "cross-site request refused: the browser says this {method} comes from another \
                 site (Sec-Fetch-Site: {site}). Only GAZE's own pages, or tools that are not \
                 browsers, can change anything."
            )));
        }
    }
    if let Some(origin) = header_str(headers, header::ORIGIN) {
        let expected = host.map(|h| h.trim().to_ascii_lowercase());
        let matches = match (origin_authority(origin), &expected) {
            (Some(o), Some(h)) => {
                o == *h || o == drop_default_port(h, "http") || o == drop_default_port(h, "https")
            }
            _ => false,
        };
        if !matches {
            return Err(Refused::forbidden(format!(
                "cross-site request refused: Origin '{origin}' is not this server ({}). Only \
                 GAZE's own pages, or tools that send no Origin, can change anything.",
                expected.as_deref().unwrap_or("no Host header")
            )));
        }
    }
    let token_header = header_str(headers, CSRF_HEADER);
    let media = media_type(headers);
    let body = has_body(headers);
    if path == "/api" || path.starts_with("/api/") {
        if !body {
            return Ok(NeedsToken::No);
        }
        let media = media.unwrap_or_default();
        let upload_ok = is_upload_route(path)
            && (media == "multipart/form-data" || media.starts_with("image/"));
        if is_json(&media) || upload_ok {
            return Ok(NeedsToken::No);
        }
        return Err(Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "the API takes JSON: send the body with Content-Type: application/json{} (got {})",
                if is_upload_route(path) {
                    ", or the image as multipart/form-data or with its image/* type"
                } else {
                    ""
                },
                if media.is_empty() {
                    "no Content-Type".to_string()
                } else {
                    format!("'{media}'")
                }
            ),
        });
    }
    if let Some(t) = token_header {
        return if same_token(t.trim(), &guard.csrf) {
            Ok(NeedsToken::No)
        } else {
            Err(stale_token())
        };
    }
    match media.as_deref() {
        _ if !body => Ok(NeedsToken::No),
        Some(m) if is_json(m) => Ok(NeedsToken::No),
        Some(m) if is_form(m) => Ok(NeedsToken::InBody),
        other => Err(Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "this route takes a form (with its csrf field) or JSON, not {}",
                other.map_or("a body without Content-Type".to_string(), |m| format!(
                    "'{m}'"
                ))
            ),
        }),
    }
}

fn stale_token() -> Refused {
    Refused::forbidden(
        "the form's security token is missing or out of date: reload the page and try again".into(),
    )
}

/// Whether the body must carry the CSRF field.
#[derive(Debug, PartialEq, Eq)]
pub enum NeedsToken {
    No,
    InBody,
}

/// The `csrf` field of a form body, urlencoded or multipart.
pub fn token_in_form(media_type_header: &str, body: &[u8]) -> Option<String> {
    let media = media_type_header
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == "application/x-www-form-urlencoded" {
        let text = std::str::from_utf8(body).ok()?;
        return text.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == CSRF_FIELD).then(|| super::form::decode(v))
        });
    }
    let boundary = media_type_header.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })?;
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut start = find(text, delimiter.as_bytes(), 0)?;
    loop {
        let part_start = start + delimiter.len();
        if text.get(part_start..part_start + 2) == Some(b"--") {
            return None;
        }
        let headers_end = find(text, b"\r\n\r\n", part_start)?;
        let next = find(text, delimiter.as_bytes(), headers_end)?;
        let headers = String::from_utf8_lossy(&text[part_start..headers_end]).to_ascii_lowercase();
        let is_csrf = headers.lines().any(|l| {
            l.starts_with("content-disposition:")
                && (l.contains(&format!("name=\"{CSRF_FIELD}\""))
                    || l.contains(&format!("name={CSRF_FIELD};"))
                    || l.trim_end().ends_with(&format!("name={CSRF_FIELD}")))
        });
        if is_csrf {
            let value = &text[headers_end + 4..next.saturating_sub(2).max(headers_end + 4)];
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        start = next;
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Whether the client would rather read a JSON error than an HTML page.
fn wants_json(path: &str, headers: &HeaderMap) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/mcp/")
        || header_str(headers, header::ACCEPT).is_some_and(|a| !a.contains("text/html"))
        || header_str(headers, "x-requested-with").is_some()
}

fn refusal_response(r: Refused, json: bool) -> Response {
    tracing::warn!("request refused ({}): {}", r.status.as_u16(), r.message);
    if json {
        return (
            r.status,
            axum::Json(serde_json::json!({ "error": r.message })),
        )
            .into_response();
    }
    let escaped = r
        .message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused · GAZE\
         </title></head><body><h1>Request refused</h1><p>{escaped}</p><p><a href=\"/\">Back to \
         GAZE</a></p></body></html>"
    );
    (
        r.status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// The guard as axum middleware.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let json = wants_json(&path, req.headers());
    let verdict = check_headers(&state.guard, req.method(), &path, req.headers());
    let req = match verdict {
        Err(r) => return with_headers(refusal_response(r, json), &path, false),
        Ok(NeedsToken::No) => req,
        Ok(NeedsToken::InBody) => {
            let (parts, body) = req.into_parts();
            let bytes: Bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
                Ok(b) => b,
                Err(_) => {
                    let r = Refused {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        message: format!("the form is larger than {MAX_FORM_BYTES} bytes"),
                    };
                    return with_headers(refusal_response(r, json), &path, false);
                }
            };
            let ct = header_str(&parts.headers, header::CONTENT_TYPE).unwrap_or_default();
            match token_in_form(ct, &bytes) {
                Some(t) if same_token(t.trim(), state.guard.csrf_token()) => {}
                _ => return with_headers(refusal_response(stale_token(), json), &path, false),
            }
            Request::from_parts(parts, Body::from(bytes))
        }
    };
    let versioned = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("v=")));
    let res = next.run(req).await;
    with_headers(res, &path, versioned)
}

/// Adds the security headers and the cache policy: versioned static URLs are immutable,
/// everything else is revalidated.
fn with_headers(mut res: Response, path: &str, versioned: bool) -> Response {
    let ok = res.status().is_success();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        let policy = if versioned && path.starts_with("/static/") && ok {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    res
}

/// The CSRF secret kept beside the ledger (`csrf.secret`, mode 0600), so forms stay valid
/// across restarts. Made on first use; if it cannot be stored, a per-process one is used.
pub fn load_or_make_secret(ledger_file: &Path) -> String {
    let path = ledger_file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("csrf.secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if s.len() >= 32 && s.chars().all(|c| c.is_ascii_hexdigit()) {
            return s.to_string();
        }
    }
    let mut bytes = [0u8; 32];
    let token = match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(e) => {
            tracing::warn!("no OS randomness for the CSRF secret ({e}); using ULIDs");
            format!(
                "{:032x}{:032x}",
                u128::from(ulid::Ulid::generate()),
                u128::from(ulid::Ulid::generate())
            )
        }
    };
    if let Err(e) = crate::library::settings::write_key(&path, Some(&token)) {
        tracing::warn!(
            "could not keep the CSRF secret in {} ({e}); open pages need a reload after a restart",
            path.display()
        );
    }
    token
}

/// The hidden field every HTML form carries.
pub fn csrf_field(state: &AppState) -> maud::Markup {
    maud::html! {
        input type="hidden" name=(CSRF_FIELD) value=(state.guard.csrf_token());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(
            &["gaze.lan".into(), "proxy.example:8443".into()],
            Some("127.0.0.1:5000".parse().unwrap()),
            "t0k3n".repeat(8),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hosts_are_allowed_by_name_ip_and_flag() {
        let g = guard();
        for ok in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:1",
            "app.localhost",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.8.9.10:80",
            "[::1]",
            "[::1]:5000",
            "gaze.lan",
            "gaze.lan:5000",
            "proxy.example:8443",
        ] {
            assert!(g.host_allowed(ok), "{ok} should pass");
        }
        for bad in [
            "evil.example",
            "evil.example:5000",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "proxy.example",
            "",
            "gaze.lan.evil",
        ] {
            assert!(!g.host_allowed(bad), "{bad} should be refused");
        }
    }

    #[test]
    fn the_bound_address_is_allowed_unless_unspecified() {
        let lan = Guard::new(&[], Some("192.168.1.5:5000".parse().unwrap()), "x".into());
        assert!(lan.host_allowed("192.168.1.5:5000"));
        assert!(!lan.host_allowed("192.168.1.6"));
        assert!(lan.exposure_warning().is_some());
        let any = Guard::new(&[], Some("0.0.0.0:5000".parse().unwrap()), "x".into());
        assert!(!any.host_allowed("0.0.0.0"));
        assert!(any.exposure_warning().unwrap().contains("--allow-host"));
        assert_eq!(guard().exposure_warning(), None);
        let named = Guard::new(
            &["box".into()],
            Some("0.0.0.0:1".parse().unwrap()),
            "x".into(),
        );
        assert_eq!(named.exposure_warning(), None);
    }

    #[test]
    fn the_verdict_table() {
        let g = guard();
        let token = g.csrf_token().to_string();
        let host = ("host", "127.0.0.1:5000");
        let json = ("content-type", "application/json");
        let len = ("content-length", "2");
        type Row<'a> = (
            &'a str,
            &'a str,
            Vec<(&'a str, &'a str)>,
            Result<NeedsToken, u16>,
        );
        let rows: Vec<Row> = vec![
            // reads pass whatever their origin, once the host is right
            (
                "GET",
                "/api/library/characters",
                vec![host],
                Ok(NeedsToken::No),
            ),
            (
                "GET",
                "/",
                vec![host, ("sec-fetch-site", "cross-site")],
                Ok(NeedsToken::No),
            ),
            ("GET", "/", vec![("host", "evil.example:5000")], Err(403)),
            (
                "DELETE",
                "/api/library/characters/x",
                vec![("host", "evil.example")],
                Err(403),
            ),
            // cross-site writes
            (
                "POST",
                "/api/library/characters",
                vec![host, json, len, ("sec-fetch-site", "cross-site")],
                Err(403),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![host, json, len, ("sec-fetch-site", "same-site")],
                Err(403),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![host, json, len, ("sec-fetch-site", "same-origin")],
                Ok(NeedsToken::No),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![host, json, len, ("sec-fetch-site", "none")],
                Ok(NeedsToken::No),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![host, json, len, ("origin", "http://evil.example")],
                Err(403),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![host, json, len, ("origin", "null")],
                Err(403),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![host, json, len, ("origin", "http://127.0.0.1:5000")],
                Ok(NeedsToken::No),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![
                    ("host", "localhost"),
                    json,
                    len,
                    ("origin", "http://localhost:80"),
                ],
                Ok(NeedsToken::No),
            ),
            (
                "DELETE",
                "/api/library/characters/x",
                vec![host, ("origin", "http://evil.example")],
                Err(403),
            ),
            // API bodies must be JSON (uploads: multipart or images)
            (
                "POST",
                "/api/library/characters",
                vec![host, ("content-type", "text/plain"), len],
                Err(415),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![
                    host,
                    ("content-type", "application/x-www-form-urlencoded"),
                    len,
                ],
                Err(415),
            ),
            ("POST", "/api/library/characters", vec![host, len], Err(415)),
            (
                "PUT",
                "/api/settings",
                vec![
                    host,
                    ("content-type", "application/json; charset=utf-8"),
                    len,
                ],
                Ok(NeedsToken::No),
            ),
            (
                "POST",
                "/api/library/characters/x/cover",
                vec![host, ("content-type", "image/png"), len],
                Ok(NeedsToken::No),
            ),
            (
                "POST",
                "/api/library/characters/x/cover",
                vec![
                    host,
                    ("content-type", "multipart/form-data; boundary=b"),
                    len,
                ],
                Ok(NeedsToken::No),
            ),
            (
                "POST",
                "/api/library/characters",
                vec![
                    host,
                    ("content-type", "multipart/form-data; boundary=b"),
                    len,
                ],
                Err(415),
            ),
            ("POST", "/api/rescan", vec![host], Ok(NeedsToken::No)),
            // page forms need the token
            (
                "POST",
                "/character/x/edit",
                vec![
                    host,
                    ("content-type", "application/x-www-form-urlencoded"),
                    len,
                ],
                Ok(NeedsToken::InBody),
            ),
            (
                "POST",
                "/character/x/upload",
                vec![
                    host,
                    ("content-type", "multipart/form-data; boundary=b"),
                    len,
                ],
                Ok(NeedsToken::InBody),
            ),
            (
                "POST",
                "/character/x/edit",
                vec![host, ("content-type", "text/plain"), len],
                Err(415),
            ),
            (
                "POST",
                "/character/x/generate",
                vec![host, json, len],
                Ok(NeedsToken::No),
            ),
            ("POST", "/rescan", vec![host], Ok(NeedsToken::No)),
            (
                "POST",
                "/character/x/edit",
                vec![
                    host,
                    ("content-type", "text/plain"),
                    len,
                    ("x-csrf-token", &token),
                ],
                Ok(NeedsToken::No),
            ),
            (
                "POST",
                "/character/x/edit",
                vec![host, json, len, ("x-csrf-token", "wrong")],
                Err(403),
            ),
        ];
        for (method, path, hs, want) in rows {
            let got = check_headers(&g, &method.parse().unwrap(), path, &headers(&hs))
                .map_err(|r| r.status.as_u16());
            assert_eq!(got, want, "{method} {path} {hs:?}");
        }
    }

    #[test]
    fn refusals_name_the_fix() {
        let g = guard();
        let e = check_headers(
            &g,
            &Method::GET,
            "/",
            &headers(&[("host", "evil.example:5000")]),
        )
        .unwrap_err();
        assert!(
            e.message.contains("--allow-host evil.example"),
            "{}",
            e.message
        );
        let e = check_headers(
            &g,
            &Method::POST,
            "/api/x",
            &headers(&[
                ("host", "localhost"),
                ("content-type", "text/plain"),
                ("content-length", "1"),
            ]),
        )
        .unwrap_err();
        assert!(e.message.contains("application/json"), "{}", e.message);
    }

    #[test]
    fn the_token_is_found_in_urlencoded_and_multipart_forms() {
        let url = token_in_form(
            "application/x-www-form-urlencoded",
            b"name=Tifa+L&csrf=abc%2Fd&x=1",
        );
        assert_eq!(url.as_deref(), Some("abc/d"));
        assert_eq!(
            token_in_form("application/x-www-form-urlencoded", b"a=1"),
            None
        );
        let body =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG--not-a-boundary\r\n--XyZ\r\nContent-Disposition: form-data; \
name=\"csrf\"\r\n\r\nsecret123\r\n--XyZ--\r\n";
        assert_eq!(
            token_in_form("multipart/form-data; boundary=XyZ", body).as_deref(),
            Some("secret123")
        );
        assert_eq!(
            token_in_form("multipart/form-data; boundary=\"XyZ\"", body).as_deref(),
            Some("secret123")
        );
        let without =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n";
        assert_eq!(
            token_in_form("multipart/form-data; boundary=XyZ", without),
            None
        );
        assert_eq!(token_in_form("multipart/form-data", body), None);
        assert_eq!(
            token_in_form("multipart/form-data; boundary=XyZ", b"garbage"),
            None
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        assert!(!same_token("", "a"));
    }

    #[test]
    fn the_policy_forbids_inline_script_and_framing() {
        assert!(CSP.contains("script-src 'self';"));
        assert!(!CSP.contains("unsafe-inline"));
        assert!(CSP.contains("frame-ancestors 'none'"));
    }
}

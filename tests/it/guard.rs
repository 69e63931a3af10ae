//! The request guard through the real binary: rebinding Hosts, cross-site writes, non-JSON API
//! bodies and forms without their token are refused with nothing written; the same requests as
//! curl sends them pass; pages carry the security headers.

use crate::support::app::{Gaze, sample_data};
use reqwest::Method;
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir` with its bytes, to prove nothing changed.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

struct Try<'a> {
    method: Method,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Option<Vec<u8>>,
}

async fn send(g: &Gaze, t: &Try<'_>) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = g
        .http
        .request(t.method.clone(), format!("{}{}", g.url, t.path));
    for (k, v) in &t.headers {
        req = req.header(*k, v);
    }
    if let Some(b) = &t.body {
        req = req.body(b.clone());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap(), headers)
}

fn json_doc(name: &str) -> Vec<u8> {
    format!(r#"{{"character_name": "{name}"}}"#).into_bytes()
}

#[tokio::test]
async fn attacks_are_refused_and_write_nothing() {
    let g = Gaze::start(Some(&sample_data()), &["--no-watch"]);
    let host = g.url.trim_start_matches("http://").to_string();
    let json = ("content-type", "application/json".to_string());
    let attacks = vec![
        // A page on another site posting with its own Origin (no preflight for text/plain).
        (
            Try {
                method: Method::POST,
                path: "/api/library/characters",
                headers: vec![
                    ("content-type", "text/plain".into()),
                    ("origin", "http://evil.example".into()),
                ],
                body: Some(json_doc("Evil One")),
            },
            403,
            "Origin",
        ),
        (
            Try {
                method: Method::POST,
                path: "/api/library/characters",
                headers: vec![json.clone(), ("sec-fetch-site", "cross-site".into())],
                body: Some(json_doc("Evil Two")),
            },
            403,
            "cross-site",
        ),
        (
            Try {
                method: Method::POST,
                path: "/api/library/characters",
                headers: vec![json.clone(), ("origin", "null".into())],
                body: Some(json_doc("Evil Null")),
            },
            403,
            "Origin",
        ),
        // DNS rebinding: the attacker's name resolving to 127.0.0.1.
        (
            Try {
                method: Method::DELETE,
                path: "/api/library/characters/tifa_lockhart",
                headers: vec![("host", "evil.example:5000".into())],
                body: None,
            },
            403,
            "--allow-host evil.example",
        ),
        (
            Try {
                method: Method::GET,
                path: "/api/library/characters",
                headers: vec![("host", "evil.example:5000".into())],
                body: None,
            },
            403,
            "DNS rebinding",
        ),
        // Bodies a plain HTML form can send, on API writes.
        (
            Try {
                method: Method::POST,
                path: "/api/library/characters",
                headers: vec![("content-type", "text/plain".into())],
                body: Some(json_doc("Plain Text")),
            },
            415,
            "application/json",
        ),
        (
            Try {
                method: Method::POST,
                path: "/api/library/characters",
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: Some(b"character_name=Form+Post".to_vec()),
            },
            415,
            "application/json",
        ),
        (
            Try {
                method: Method::PUT,
                path: "/api/settings",
                headers: vec![],
                body: Some(br#"{"llm_model": "x"}"#.to_vec()),
            },
            415,
            "no Content-Type",
        ),
        // Page forms without, or with a wrong, token.
        (
            Try {
                method: Method::POST,
                path: "/rescan",
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: Some(b"x=1".to_vec()),
            },
            403,
            "security token",
        ),
        (
            Try {
                method: Method::POST,
                path: "/rescan",
                headers: vec![("content-type", "application/x-www-form-urlencoded".into())],
                body: Some(b"csrf=0123456789abcdef0123456789abcdef".to_vec()),
            },
            403,
            "security token",
        ),
        (
            Try {
                method: Method::POST,
                path: "/rescan",
                headers: vec![("x-csrf-token", "wrong".into())],
                body: None,
            },
            403,
            "security token",
        ),
    ];
    // An outside edit waits in data/ so that a rescan that got through would record it.
    std::fs::write(
        g.data().join("characters/waiting.json"),
        r#"{"character_id": "waiting", "character_name": "Waiting"}"#,
    )
    .unwrap();
    let seq = g.seq().await;
    let files = tree(&g.data());
    for (t, status, needle) in &attacks {
        let (got, text, headers) = send(&g, t).await;
        assert_eq!(got, *status, "{} {}: {text}", t.method, t.path);
        assert!(text.contains(needle), "{} {}: {text}", t.method, t.path);
        let is_json = headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        if t.path.starts_with("/api/") {
            assert!(is_json, "API refusals are JSON: {text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(v["error"].is_string());
        }
        assert_eq!(
            g.seq().await,
            seq,
            "{} {} wrote to the ledger",
            t.method,
            t.path
        );
        assert!(
            tree(&g.data()) == files,
            "{} {} changed data/",
            t.method,
            t.path
        );
    }
    assert_eq!(g.get("/api/library/characters/waiting").await.0, 404);
    assert_eq!(g.get("/api/library/characters/tifa_lockhart").await.0, 200);

    // The same writes as curl or a script sends them pass.
    let ok = vec![
        Try {
            method: Method::POST,
            path: "/api/library/characters",
            headers: vec![json.clone()],
            body: Some(json_doc("Curl Made")),
        },
        Try {
            method: Method::POST,
            path: "/api/library/characters",
            headers: vec![
                json.clone(),
                ("origin", format!("http://{host}")),
                ("sec-fetch-site", "same-origin".into()),
            ],
            body: Some(json_doc("Page Made")),
        },
        Try {
            method: Method::PUT,
            path: "/api/settings",
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            body: Some(br#"{"llm_model": "m"}"#.to_vec()),
        },
        Try {
            method: Method::GET,
            path: "/api/library/characters",
            headers: vec![(
                "host",
                format!("localhost:{}", host.rsplit(':').next().unwrap()),
            )],
            body: None,
        },
    ];
    for t in &ok {
        let (got, text, _) = send(&g, t).await;
        assert!(got < 300, "{} {}: {got} {text}", t.method, t.path);
    }
    assert_eq!(g.get("/api/library/characters/curl_made").await.0, 200);
    assert_eq!(g.get("/api/library/characters/page_made").await.0, 200);
}

/// The token from the page's form, as a browser would submit it.
async fn page_token(g: &Gaze) -> String {
    let html = g
        .http
        .get(format!("{}/library", g.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let i = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a csrf field");
    let rest = &html[i + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn forms_with_the_token_pass_and_the_token_survives_a_restart() {
    let mut g = Gaze::start(Some(&sample_data()), &["--no-watch"]);
    let token = page_token(&g).await;
    assert!(token.len() >= 32);
    std::fs::write(
        g.data().join("characters/waiting.json"),
        r#"{"character_id": "waiting", "character_name": "Waiting"}"#,
    )
    .unwrap();
    let r = g
        .http
        .post(format!("{}/rescan", g.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", g.url.clone())
        .header("sec-fetch-site", "same-origin")
        .body(format!("csrf={token}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(g.get("/api/library/characters/waiting").await.0, 200);

    // Multipart forms carry it as a field too.
    let form = reqwest::multipart::Form::new().text("csrf", token.clone());
    let r = g
        .http
        .post(format!("{}/rescan", g.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() < 400, "{}", r.status());

    g.restart();
    assert_eq!(
        page_token(&g).await,
        token,
        "open pages keep working after a restart"
    );
    let secret = g.ledger_dir().join("csrf.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the secret is readable by its owner only");
    }
}

#[tokio::test]
async fn an_allowed_host_passes_and_refusals_for_browsers_are_pages() {
    let g = Gaze::start(Some(&sample_data()), &["--allow-host", "gaze.lan"]);
    let port = g.url.rsplit(':').next().unwrap().to_string();
    for host in [
        format!("gaze.lan:{port}"),
        "gaze.lan".into(),
        "127.0.0.1".into(),
        "[::1]".into(),
    ] {
        let r = g
            .http
            .get(format!("{}/api/health", g.url))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    let r = g
        .http
        .get(format!("{}/library", g.url))
        .header("host", "gaze.lan.evil.example")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("--allow-host gaze.lan.evil.example"),
        "{body}"
    );
}

#[tokio::test]
async fn pages_carry_security_headers_and_versioned_assets_are_immutable() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let r = g
        .http
        .get(format!("{}/library", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-cache");
    let html = r.text().await.unwrap();
    let i = html
        .find("/static/style.css?v=")
        .expect("a versioned stylesheet link");
    let href = &html[i..i + html[i..].find('"').unwrap()];
    let css = g.http.get(format!("{}{href}", g.url)).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let plain = g
        .http
        .get(format!("{}/static/style.css", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    // Even the not-found page is guarded and framed by the policy.
    let r = g
        .http
        .get(format!("{}/no/such/page", g.url))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

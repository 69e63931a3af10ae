//! Headless Chromium over WebDriver (chromedriver + fantoccini) for browser tests: one
//! session per test, reused across its steps. Also: screenshots at desktop and phone widths
//! into `target/screenshots/`, an axe-core accessibility check (serious and critical
//! violations), and the list of requests a page made to other origins.
//!
//! Without Chromium the browser tests are skipped with a message, except under `CI=true`,
//! where they fail and say what to install.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini::Locator;

pub const DESKTOP: (u32, u32) = (1366, 900);
pub const PHONE: (u32, u32) = (390, 844);

const CHROMIUM: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];
const DRIVER: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn find(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9515)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` (with a message) when
    /// they are not installed and this is not CI.
    pub async fn start() -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (find(&CHROMIUM), find(&DRIVER)) else {
            let msg = "browser tests need Chromium and chromedriver: apt-get install -y chromium chromium-driver";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("skipping: {msg}");
            return None;
        };
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if http.get(format!("{url}/status")).send().await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium.display().to_string(), "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut driver_child = child;
        let client = match fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let _ = driver_child.kill();
                panic!("no WebDriver session: {e}");
            }
        };
        Some(Browser {
            client,
            driver: driver_child,
            _profile: profile,
        })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until `script` (an expression) is truthy.
    pub async fn until(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self
                .client
                .execute(&format!("return ({script});"), vec![])
                .await
                .unwrap_or(Value::Null);
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let alerts = self
                    .client
                    .execute(
                        "return [...document.querySelectorAll('.alert')].map(a => a.textContent.trim());",
                        vec![],
                    )
                    .await
                    .unwrap_or(Value::Null);
                panic!("timed out waiting for {what} ({script}); alerts on the page: {alerts}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        // Into the middle of the window, clear of the sticky navbar.
        let _ = self
            .client
            .execute(
                "document.documentElement.style.scrollBehavior = 'auto';
                 const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'center'});",
                vec![json!(css)],
            )
            .await;
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        if let Err(e) = el.click().await {
            let why = self
                .client
                .execute(
                    "const e = document.querySelector(arguments[0]); const r = e.getBoundingClientRect();
                     const x = r.left + r.width / 2, y = r.top + r.height / 2; const o = document.elementFromPoint(x, y);
                     return [innerWidth, innerHeight, scrollY, r.top, o ? o.outerHTML.slice(0, 200) : null];",
                    vec![json!(css)],
                )
                .await;
            panic!("click {css}: {e} ({why:?})");
        }
    }

    /// Sets a field's value as typing would (input and change events fire).
    pub async fn fill(&self, css: &str, value: &str) {
        self.client
            .execute(
                "const e = document.querySelector(arguments[0]); e.focus(); e.value = arguments[1];
                 e.dispatchEvent(new Event('input', {bubbles: true}));
                 e.dispatchEvent(new Event('change', {bubbles: true}));",
                vec![json!(css), json!(value)],
            )
            .await
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    pub async fn resize(&self, (w, h): (u32, u32)) {
        self.client.set_window_size(w, h).await.unwrap();
    }

    /// Saves `target/screenshots/<name>-desktop.png` and `-phone.png` (full page height
    /// up to 3 screens), then returns to the desktop size.
    pub async fn screenshots(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for (label, size) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.resize(size).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        }
        self.resize(DESKTOP).await;
    }

    /// axe-core's serious and critical violations on the current page.
    pub async fn axe(&self) -> Vec<Value> {
        let src = include_str!("vendor/axe-4.14.1.min.js");
        self.client.execute(src, vec![]).await.unwrap();
        let v = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))
                 )).catch(e => done([{id: 'axe-error', help: String(e)}]));",
                vec![],
            )
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    /// URLs the page loaded from anywhere but `origin` (the browser's resource timing list).
    pub async fn foreign_requests(&self, origin: &str) -> Vec<String> {
        let v = self
            .js(
                "return performance.getEntriesByType('resource').map(e => e.name)
                   .concat([location.href]);",
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|u| {
                !u.starts_with(origin) && !u.starts_with("data:") && !u.starts_with("blob:")
            })
            .map(String::from)
            .collect()
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

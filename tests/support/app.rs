//! Starts the real `gaze` binary on a free loopback port with temporary folders, and talks to
//! it over HTTP. Tests kill it (SIGKILL) and restart it on the same folders.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Gaze {
    pub url: String,
    root: tempfile::TempDir,
    child: Option<Child>,
    args: Vec<String>,
    pub http: reqwest::Client,
    /// What the last run printed on stderr (its log), for failure messages.
    pub stderr_path: PathBuf,
}

pub use super::sample::sample_data;

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

impl Gaze {
    /// Starts gaze on a copy of `data` (or an empty library) with extra `args`.
    pub fn start(data: Option<&Path>, args: &[&str]) -> Gaze {
        let root = tempfile::tempdir().unwrap();
        match data {
            Some(d) => copy_dir(d, &root.path().join("data")),
            None => std::fs::create_dir_all(root.path().join("data")).unwrap(),
        }
        let mut g = Gaze {
            url: String::new(),
            stderr_path: root.path().join("stderr.log"),
            root,
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        g.spawn();
        g
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn ledger_dir(&self) -> PathBuf {
        self.root.path().join("ledger")
    }

    pub fn uploads(&self) -> PathBuf {
        self.root.path().join("uploads")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gaze"));
        c.arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(self.data())
            .arg("--ledger")
            .arg(self.ledger_dir())
            .arg("--uploads")
            .arg(self.uploads())
            .arg("--workflow")
            .arg(self.root.path().join("comfy_workflow.json"))
            .arg("--rescan-secs")
            .arg("3600")
            .args(&self.args)
            .env("RUST_LOG", "gaze=debug")
            .env_remove("GAZE_LLM_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        c
    }

    /// Runs gaze on these folders in the foreground and returns its exit status and stderr
    /// (for start-up failures).
    pub fn run_to_exit(&self) -> (std::process::ExitStatus, String) {
        let out = self.command().stderr(Stdio::piped()).output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts the process and waits for its "listening" line.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(&self.stderr_path).unwrap();
        let mut child = self.command().stderr(log).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("gaze listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => self.url = url,
            Err(_) => {
                let _ = child.kill();
                panic!("gaze did not start:\n{}", self.log());
            }
        }
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    pub async fn seq(&self) -> u64 {
        self.get("/api/health").await.1["seq"].as_u64().unwrap()
    }
}

impl Drop for Gaze {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! The ComfyUI client: the only code in GAZE that speaks ComfyUI's HTTP and WebSocket wire format.
//!
//! Everything here follows `shared/reference/comfyui-api.md` (ComfyUI 0.3.64 as observed, plus
//! what newer servers change). The job reactor calls this module and never sees ComfyUI JSON.
//!
//! # API
//!
//! - [`prompt_id_for`] / [`job_for_prompt_id`]: a job's ULID bits ⇄ the canonical lower-case UUID
//!   sent as `prompt_id`, so a restarted app can ask ComfyUI about a job it may already have sent.
//! - [`Backend`] (cheap to clone, one HTTP client inside):
//!   - [`Backend::new`], [`Backend::url`];
//!   - health and capabilities: [`Backend::system_stats`], [`Backend::has_node`],
//!     [`Backend::models`];
//!   - running a job: [`Backend::submit`], [`Backend::history`], [`Backend::queue`],
//!     [`Backend::lookup`] (history, then queue: the check before any (re)submission),
//!     [`Backend::view`];
//!   - cancelling: [`Backend::interrupt`], [`Backend::delete_pending`], [`Backend::cancel`];
//!   - live progress: [`Backend::watch_progress`] (reconnecting WebSocket listener).
//! - Results: [`Submitted`], [`Outcome`], [`ImageRef`], [`Known`], [`QueueState`], [`SystemStats`],
//!   [`Progress`].
//! - Errors: [`ComfyError`] (with [`ComfyError::retryable`] and a one-line
//!   [`ComfyError::summary`]) and [`NodeError`].
//!
//! # Wire facts the reactor relies on
//!
//! - ComfyUI does not de-duplicate prompt ids: posting twice runs twice. Call [`Backend::lookup`]
//!   and post only on [`Known::Unknown`].
//! - `/history/{id}` is `{}` while a prompt is queued or running; the entry appears when it ends.
//!   History and queue live in memory only: a ComfyUI restart forgets both ([`Known::Unknown`]).
//! - Servers before 2025-07 ignore our `prompt_id` and mint their own: always use the id in
//!   [`Submitted::prompt_id`].
//! - The WebSocket is for live progress only; history is the record.
//!
//! Parsing is defensive: no body makes this module panic; a 200 whose JSON lacks the fields we
//! need is [`ComfyError::Garbage`].

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Url;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// How long to wait for a TCP connection (HTTP and WebSocket).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one HTTP request may take in total, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// First WebSocket reconnect delay; doubles after each failure.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest WebSocket reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A WebSocket that stays silent this long gets a ping.
const WS_PING_AFTER: Duration = Duration::from_secs(20);
/// A WebSocket silent for this many ping periods is considered dead and reopened.
const WS_DEAD_AFTER_PINGS: u32 = 2;
/// Longest body excerpt kept in an error.
const EXCERPT_CHARS: usize = 300;

// ───────────────────────────── prompt ids ─────────────────────────────

/// The ComfyUI `prompt_id` of a job: its 128 ULID bits written as a canonical lower-case
/// hyphenated UUID (8-4-4-4-12 hex). Deterministic and one-to-one, so distinct jobs never share
/// an id and a restarted app can find a job it may already have sent.
pub fn prompt_id_for(job: u128) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        job >> 96,
        (job >> 80) & 0xffff,
        (job >> 64) & 0xffff,
        (job >> 48) & 0xffff,
        job & 0xffff_ffff_ffff
    )
}

/// The inverse of [`prompt_id_for`]: the job bits of a canonical lower-case UUID, `None` for any
/// other string (e.g. an id a server minted with upper case or no hyphens is still a UUID, but
/// ids minted by old servers are random and are not jobs anyway).
pub fn job_for_prompt_id(prompt_id: &str) -> Option<u128> {
    let b = prompt_id.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut hex = String::with_capacity(32);
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
        } else if c.is_ascii_digit() || (b'a'..=b'f').contains(&c) {
            hex.push(c as char);
        } else {
            return None;
        }
    }
    u128::from_str_radix(&hex, 16).ok()
}

// ───────────────────────────── result types ─────────────────────────────

/// What `GET /system_stats` says that GAZE shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemStats {
    /// `system.comfyui_version`, when the server reports it.
    pub comfyui_version: Option<String>,
    /// `devices[].name`, e.g. `cpu` or `cuda:0 NVIDIA …`.
    pub devices: Vec<String>,
}

/// A successful `POST /prompt`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submitted {
    /// The id the server queued the prompt under: ours, or its own on servers before 2025-07.
    pub prompt_id: String,
    /// The server's queue number, when given.
    pub number: Option<f64>,
    /// Outputs that failed validation and were dropped while others run (usually empty).
    pub node_errors: Vec<NodeError>,
}

/// One image a finished prompt produced: a `outputs[node].images[]` entry of its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// The output node that produced it (e.g. the SaveImage node).
    pub node_id: String,
    /// File name, e.g. `red_00001_.png`.
    pub filename: String,
    /// Subfolder under the kind's directory (may be empty).
    pub subfolder: String,
    /// `output` (SaveImage) or `temp` (PreviewImage): the `/view` `type` parameter.
    pub kind: String,
}

/// How a prompt ended, from its history entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// `status_str: "success"`; every image of every output node, in node order.
    Success { images: Vec<ImageRef> },
    /// `execution_error`: a node raised.
    Failed {
        node_id: Option<String>,
        node_type: Option<String>,
        exception_type: String,
        /// The exception message, trailing whitespace trimmed.
        message: String,
    },
    /// `execution_interrupted`: stopped by `/interrupt`.
    Interrupted { node_id: Option<String> },
}

impl Outcome {
    /// One line for a job event, e.g. `node 4 (CheckpointLoaderSimple) RuntimeError: boom`.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Success { images } => format!("succeeded with {} image(s)", images.len()),
            Outcome::Failed {
                node_id,
                node_type,
                exception_type,
                message,
            } => {
                let mut s = node_label(node_id.as_deref(), node_type.as_deref());
                if !s.is_empty() {
                    s.push(' ');
                }
                if !exception_type.is_empty() {
                    let _ = write!(s, "{exception_type}: ");
                }
                s.push_str(&one_line(message));
                s
            }
            Outcome::Interrupted { node_id } => match node_id {
                Some(n) => format!("interrupted at node {n}"),
                None => "interrupted".to_string(),
            },
        }
    }
}

/// What ComfyUI knows of a prompt id ([`Backend::lookup`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Known {
    /// In history: it ended this way.
    Finished(Outcome),
    /// Executing now.
    Running,
    /// Waiting in the queue.
    Pending,
    /// Neither in history nor in the queue: never sent, deleted, or lost by a ComfyUI restart.
    Unknown,
}

/// `GET /queue`, reduced to prompt ids.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct QueueState {
    /// Prompt ids being executed (at most one on a stock server).
    pub running: Vec<String>,
    /// Prompt ids waiting (heap order, not execution order).
    pub pending: Vec<String>,
}

/// A live event from `/ws`, for the browser. Not stored: history is the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Progress {
    /// `status`: prompts pending plus running on this backend (sent on connect and on changes).
    Queue { remaining: u64 },
    /// `execution_start`.
    Started { prompt_id: String },
    /// `executing` with a node: that node started.
    Executing { prompt_id: String, node: String },
    /// `progress`: sampler steps (KSampler, FaceDetailer).
    Step {
        prompt_id: String,
        node: Option<String>,
        value: u64,
        max: u64,
    },
    /// `execution_error`, as one line naming node, class, exception type and message.
    Error { prompt_id: String, message: String },
    /// `execution_interrupted`.
    Interrupted {
        prompt_id: String,
        node: Option<String>,
    },
    /// `executing` with `node: null`: the prompt is over (success, error or interrupt); read
    /// its history.
    Finished { prompt_id: String },
}

// ───────────────────────────── errors ─────────────────────────────

/// One validation error of one node in a 400 from `/prompt` (`node_errors[id].errors[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeError {
    pub node_id: String,
    pub class_type: String,
    /// ComfyUI's error type, e.g. `value_not_in_list`, `required_input_missing`.
    pub kind: String,
    pub message: String,
    pub details: String,
    /// `extra_info.input_name`, when the error concerns one input.
    pub input: Option<String>,
}

impl NodeError {
    /// `node 4 (CheckpointLoaderSimple) ckpt_name: Value not in list: ckpt_name: 'x' not in [...]`.
    pub fn summary(&self) -> String {
        let mut s = node_label(Some(&self.node_id), Some(&self.class_type));
        if let Some(input) = &self.input {
            let _ = write!(s, " {input}");
        }
        let _ = write!(s, ": {}", one_line(&self.message));
        let details = one_line(&self.details);
        // `required_input_missing` says just the input name again.
        if !details.is_empty() && Some(&details) != self.input.as_ref() {
            let _ = write!(s, ": {details}");
        }
        s
    }
}

/// Why a call to ComfyUI did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ComfyError {
    /// Connection refused, timeout, reset, unreadable body: retry later.
    Unreachable(String),
    /// 5xx or an unexpected status (body excerpt ≤ 300 chars): retry later.
    Server { status: u16, body: String },
    /// 200 but not the JSON shape expected: retry later.
    Garbage(String),
    /// 400 from `/prompt`: the workflow will never pass as it is.
    Rejected {
        /// `error.type`, e.g. `prompt_outputs_failed_validation`, `invalid_prompt`.
        kind: String,
        message: String,
        details: String,
        nodes: Vec<NodeError>,
    },
    /// 404 (e.g. `/view` of a missing file, `/models/{unknown folder}`).
    NotFound(String),
}

impl ComfyError {
    /// `true` when the same call may succeed later (backend down, erroring or confused).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ComfyError::Unreachable(_) | ComfyError::Server { .. } | ComfyError::Garbage(_)
        )
    }

    /// One line naming node, class and input where known, e.g.
    /// `node 4 (CheckpointLoaderSimple) ckpt_name: Value not in list: ckpt_name: 'x' not in [...]`;
    /// several node errors are joined with `; `.
    pub fn summary(&self) -> String {
        match self {
            ComfyError::Unreachable(m) => format!("ComfyUI unreachable: {}", one_line(m)),
            ComfyError::Server { status, body } => {
                let body = one_line(body);
                if body.is_empty() {
                    format!("ComfyUI answered HTTP {status}")
                } else {
                    format!("ComfyUI answered HTTP {status}: {body}")
                }
            }
            ComfyError::Garbage(m) => format!("unexpected reply from ComfyUI: {}", one_line(m)),
            ComfyError::NotFound(m) => format!("not found on ComfyUI: {}", one_line(m)),
            ComfyError::Rejected {
                kind,
                message,
                details,
                nodes,
            } => {
                if !nodes.is_empty() {
                    return nodes
                        .iter()
                        .map(NodeError::summary)
                        .collect::<Vec<_>>()
                        .join("; ");
                }
                let message = one_line(message);
                let details = one_line(details);
                let mut s = if message.is_empty() {
                    format!("ComfyUI rejected the prompt ({kind})")
                } else {
                    message.clone()
                };
                if !details.is_empty() && details != message {
                    let _ = write!(s, " ({details})");
                }
                s
            }
        }
    }
}

impl std::fmt::Display for ComfyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

impl std::error::Error for ComfyError {}

// ───────────────────────────── backend ─────────────────────────────

/// One ComfyUI server. Cheap to clone (the HTTP client and its connection pool are shared).
#[derive(Debug, Clone)]
pub struct Backend {
    base: String,
    base_url: Url,
    http: reqwest::Client,
}

impl Backend {
    /// A backend at `url` (`http://host:port`, optionally with a path prefix; a trailing `/` is
    /// trimmed). Only `http` and `https` are accepted, without query or fragment.
    pub fn new(url: &str) -> Result<Backend, String> {
        let trimmed = url.trim().trim_end_matches('/');
        let parsed =
            Url::parse(trimmed).map_err(|e| format!("ComfyUI URL {url:?} is not valid: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "ComfyUI URL {url:?} must start with http:// or https://"
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("ComfyUI URL {url:?} has no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "ComfyUI URL {url:?} must not have a query or fragment"
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Backend {
            base: trimmed.to_string(),
            base_url: parsed,
            http,
        })
    }

    /// The base URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Health check: `GET /system_stats`.
    pub async fn system_stats(&self) -> Result<SystemStats, ComfyError> {
        let url = self.endpoint(&["system_stats"]);
        let v = self.get_json(&url).await?;
        parse_system_stats(&v).ok_or_else(|| garbage(&url, &v))
    }

    /// Whether a node class is installed: `GET /object_info/{class}` is `{}` when it is not.
    pub async fn has_node(&self, class: &str) -> Result<bool, ComfyError> {
        let url = self.endpoint(&["object_info", class]);
        let v = self.get_json(&url).await?;
        parse_has_node(&v, class).ok_or_else(|| garbage(&url, &v))
    }

    /// KSampler's sampler and scheduler names: `GET /object_info/KSampler`.
    pub async fn sampler_lists(&self) -> Result<(Vec<String>, Vec<String>), ComfyError> {
        let url = self.endpoint(&["object_info", "KSampler"]);
        let v = self.get_json(&url).await?;
        parse_sampler_lists(&v).ok_or_else(|| garbage(&url, &v))
    }

    /// Model file names of a folder (`checkpoints`, `loras`, …), relative and sorted:
    /// `GET /models/{folder}`. An unknown folder is [`ComfyError::NotFound`].
    pub async fn models(&self, folder: &str) -> Result<Vec<String>, ComfyError> {
        let url = self.endpoint(&["models", folder]);
        let v = self.get_json(&url).await?;
        parse_string_list(&v).ok_or_else(|| garbage(&url, &v))
    }

    /// Queues a workflow (API format): `POST /prompt` with `prompt`, `client_id` (omitted when
    /// empty) and `prompt_id` (use [`prompt_id_for`]). A 400 is [`ComfyError::Rejected`].
    pub async fn submit(
        &self,
        workflow: &Value,
        prompt_id: &str,
        client_id: &str,
    ) -> Result<Submitted, ComfyError> {
        let url = self.endpoint(&["prompt"]);
        let mut body = Map::new();
        body.insert("prompt".into(), workflow.clone());
        if !client_id.is_empty() {
            body.insert("client_id".into(), json!(client_id));
        }
        body.insert("prompt_id".into(), json!(prompt_id));
        let reply = self
            .send(self.http.post(url.clone()).json(&body), &url, Retry::Never)
            .await?;
        if reply.status == 400 {
            let v = serde_json::from_slice::<Value>(&reply.body).ok();
            return Err(v.as_ref().and_then(parse_rejection).unwrap_or_else(|| {
                ComfyError::Server {
                    status: 400,
                    body: excerpt(&reply.body),
                }
            }));
        }
        let v = reply.json(&url)?;
        let submitted = parse_submitted(&v).ok_or_else(|| garbage(&url, &v))?;
        if submitted.prompt_id != prompt_id {
            tracing::debug!(
                ours = prompt_id,
                theirs = %submitted.prompt_id,
                "ComfyUI queued the prompt under its own id"
            );
        }
        Ok(submitted)
    }

    /// `GET /history/{id}`: how the prompt ended, or `None` while it is queued or running and
    /// when the server does not know it.
    pub async fn history(&self, prompt_id: &str) -> Result<Option<Outcome>, ComfyError> {
        let url = self.endpoint(&["history", prompt_id]);
        let v = self.get_json(&url).await?;
        parse_history(&v, prompt_id).ok_or_else(|| garbage(&url, &v))
    }

    /// `GET /queue`: the prompt ids running and pending.
    pub async fn queue(&self) -> Result<QueueState, ComfyError> {
        let url = self.endpoint(&["queue"]);
        let v = self.get_json(&url).await?;
        parse_queue(&v).ok_or_else(|| garbage(&url, &v))
    }

    /// What ComfyUI knows of a prompt id: history first, then the queue (§16 step 2); post a
    /// job only when this says [`Known::Unknown`]. When the queue does not list it, history is
    /// read once more, because the prompt may have finished between the two reads (ComfyUI
    /// writes history before it drops the prompt from the queue).
    pub async fn lookup(&self, prompt_id: &str) -> Result<Known, ComfyError> {
        if let Some(outcome) = self.history(prompt_id).await? {
            return Ok(Known::Finished(outcome));
        }
        let q = self.queue().await?;
        if q.running.iter().any(|p| p == prompt_id) {
            return Ok(Known::Running);
        }
        if q.pending.iter().any(|p| p == prompt_id) {
            return Ok(Known::Pending);
        }
        Ok(match self.history(prompt_id).await? {
            Some(outcome) => Known::Finished(outcome),
            None => Known::Unknown,
        })
    }

    /// The bytes of an image: `GET /view` with its filename, subfolder and type verbatim.
    /// A missing file is [`ComfyError::NotFound`]; a text reply is [`ComfyError::Garbage`].
    pub async fn view(&self, image: &ImageRef) -> Result<Vec<u8>, ComfyError> {
        let mut url = self.endpoint(&["view"]);
        url.query_pairs_mut()
            .append_pair("filename", &image.filename)
            .append_pair("subfolder", &image.subfolder)
            .append_pair("type", &image.kind);
        let reply = self
            .send(self.http.get(url.clone()), &url, Retry::Once)
            .await?;
        reply.expect_ok(&url)?;
        let texty = reply.content_type.as_deref().is_some_and(|ct| {
            let ct = ct.trim().to_ascii_lowercase();
            ct.starts_with("text/") || ct.starts_with("application/json")
        });
        if texty || reply.body.is_empty() {
            return Err(ComfyError::Garbage(format!(
                "GET {}: expected image bytes, got {:?} {}",
                url.path(),
                reply.content_type.as_deref().unwrap_or(""),
                excerpt(&reply.body)
            )));
        }
        Ok(reply.body)
    }

    /// `POST /interrupt {"prompt_id"}`: stops that prompt if it is the one running (servers
    /// before 2025-09 interrupt whatever runs: check with [`Backend::queue`] first, or use
    /// [`Backend::cancel`]).
    pub async fn interrupt(&self, prompt_id: &str) -> Result<(), ComfyError> {
        let url = self.endpoint(&["interrupt"]);
        let body = json!({"prompt_id": prompt_id});
        let reply = self
            .send(self.http.post(url.clone()).json(&body), &url, Retry::Once)
            .await?;
        reply.expect_ok(&url)
    }

    /// `POST /queue {"delete": [id]}`: removes the prompt if it is pending (a running one is
    /// untouched). A deleted prompt never reaches history.
    pub async fn delete_pending(&self, prompt_id: &str) -> Result<(), ComfyError> {
        let url = self.endpoint(&["queue"]);
        let body = json!({"delete": [prompt_id]});
        let reply = self
            .send(self.http.post(url.clone()).json(&body), &url, Retry::Once)
            .await?;
        reply.expect_ok(&url)
    }

    /// Cancels a prompt wherever it is (§16 step 5): deletes it if pending, then interrupts it
    /// if the queue shows it running. Returns what it found after the delete:
    /// [`Known::Running`] (interrupted), or [`Known::Unknown`] (deleted, finished or never
    /// known: nothing left to stop).
    pub async fn cancel(&self, prompt_id: &str) -> Result<Known, ComfyError> {
        self.delete_pending(prompt_id).await?;
        let q = self.queue().await?;
        if q.running.iter().any(|p| p == prompt_id) {
            self.interrupt(prompt_id).await?;
            return Ok(Known::Running);
        }
        if q.pending.iter().any(|p| p == prompt_id) {
            // Queued twice under the same id: delete removes one item per call.
            self.delete_pending(prompt_id).await?;
            return Ok(Known::Pending);
        }
        Ok(Known::Unknown)
    }

    /// Listens to `/ws?clientId=…` and forwards [`Progress`] until `stop` resolves, the receiver
    /// is dropped or the task is aborted. Reconnects with back-off (0.2 s doubling to 5 s) when
    /// the socket drops or the server is down, pings a silent socket and reopens it when it stays
    /// dead; skips binary frames (previews). Events of prompts sent with this `client_id` arrive
    /// here; after a reconnect, events sent meanwhile are lost (read history).
    pub fn watch_progress<S>(
        &self,
        client_id: &str,
        tx: UnboundedSender<Progress>,
        stop: S,
    ) -> JoinHandle<()>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let url = self.ws_url(client_id);
        tokio::spawn(async move {
            let closed = tx.clone();
            tokio::select! {
                _ = stop => {}
                _ = closed.closed() => {}
                _ = watch_loop(url, tx) => {}
            }
        })
    }

    // ── plumbing ──

    /// `base + /seg/seg…`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `ws(s)://…/ws?clientId=…`.
    fn ws_url(&self, client_id: &str) -> String {
        let mut url = self.endpoint(&["ws"]);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // http→ws and https→wss are both "special" schemes, so this cannot fail.
        let _ = url.set_scheme(scheme);
        url.query_pairs_mut().append_pair("clientId", client_id);
        url.to_string()
    }

    /// Sends a request and reads the whole reply. With [`Retry::Once`], a request that failed
    /// after connecting (a pooled keep-alive connection the server had closed, e.g. across a
    /// ComfyUI restart) is sent once more on a fresh connection.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &Url,
        retry: Retry,
    ) -> Result<Reply, ComfyError> {
        let again = match retry {
            Retry::Once => req.try_clone(),
            Retry::Never => None,
        };
        let resp = match (req.send().await, again) {
            (Ok(resp), _) => resp,
            (Err(e), Some(again)) if !e.is_connect() && !e.is_timeout() => {
                tracing::debug!(url = %url, error = %e, "ComfyUI request failed; retrying once");
                again.send().await.map_err(|e| unreachable(url, &e))?
            }
            (Err(e), _) => return Err(unreachable(url, &e)),
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.bytes().await.map_err(|e| unreachable(url, &e))?;
        Ok(Reply {
            status,
            content_type,
            body: body.to_vec(),
        })
    }

    async fn get_json(&self, url: &Url) -> Result<Value, ComfyError> {
        self.send(self.http.get(url.clone()), url, Retry::Once)
            .await?
            .json(url)
    }
}

/// Whether a request may be sent twice: every call but `POST /prompt` is idempotent (a second
/// `/prompt` could queue the job twice; the caller's [`Backend::lookup`] decides instead).
#[derive(Clone, Copy)]
enum Retry {
    Once,
    Never,
}

/// A whole HTTP reply.
struct Reply {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    /// `Ok` for 200; 404 → NotFound; anything else → Server.
    fn expect_ok(&self, url: &Url) -> Result<(), ComfyError> {
        match self.status {
            200 => Ok(()),
            404 => Err(ComfyError::NotFound(format!(
                "{}{}",
                url.path(),
                url.query().map(|q| format!("?{q}")).unwrap_or_default()
            ))),
            status => Err(ComfyError::Server {
                status,
                body: excerpt(&self.body),
            }),
        }
    }

    /// The body of a 200 as JSON.
    fn json(&self, url: &Url) -> Result<Value, ComfyError> {
        self.expect_ok(url)?;
        serde_json::from_slice(&self.body).map_err(|e| {
            ComfyError::Garbage(format!(
                "{}: not JSON ({e}): {}",
                url.path(),
                excerpt(&self.body)
            ))
        })
    }
}

fn unreachable(url: &Url, e: &reqwest::Error) -> ComfyError {
    let mut msg = String::new();
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let _ = write!(
        msg,
        "{} {}: {kind}",
        url.host_str().unwrap_or(""),
        url.path()
    );
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let _ = write!(msg, ": {s}");
        source = s.source();
    }
    ComfyError::Unreachable(msg)
}

fn garbage(url: &Url, v: &Value) -> ComfyError {
    ComfyError::Garbage(format!(
        "{}: unexpected JSON: {}",
        url.path(),
        excerpt(v.to_string().as_bytes())
    ))
}

/// At most [`EXCERPT_CHARS`] characters of a body, trimmed.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(EXCERPT_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Whitespace runs (newlines included) become one space; ends trimmed.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `node 4 (KSampler)`, `node 4`, `(KSampler)` or empty.
fn node_label(node: Option<&str>, class: Option<&str>) -> String {
    match (
        node.filter(|n| !n.is_empty()),
        class.filter(|c| !c.is_empty()),
    ) {
        (Some(n), Some(c)) => format!("node {n} ({c})"),
        (Some(n), None) => format!("node {n}"),
        (None, Some(c)) => format!("({c})"),
        (None, None) => String::new(),
    }
}

// ───────────────────────────── parsing ─────────────────────────────

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A JSON id that may be a string or a number (ComfyUI stringifies ids, but be lenient).
fn id_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_system_stats(v: &Value) -> Option<SystemStats> {
    let system = v.get("system")?.as_object()?;
    let devices = match v.get("devices") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(|d| str_field(d, "name")).collect(),
        Some(_) => return None,
    };
    Some(SystemStats {
        comfyui_version: system
            .get("comfyui_version")
            .and_then(Value::as_str)
            .map(str::to_string),
        devices,
    })
}

/// `{}` → false, `{class: …}` → true, anything else → `None`.
fn parse_has_node(v: &Value, class: &str) -> Option<bool> {
    let m = v.as_object()?;
    if m.is_empty() {
        Some(false)
    } else {
        m.get(class).map(Value::is_object)
    }
}

/// A combo input's options: `[[…names…], {…}]` (older ComfyUI) or `["COMBO", {"options": […]}]`.
fn combo_options(input: &Value) -> Option<Vec<String>> {
    let spec = input.as_array()?;
    match spec.first()? {
        Value::Array(_) => parse_string_list(spec.first()?),
        Value::String(t) if t == "COMBO" => parse_string_list(spec.get(1)?.get("options")?),
        _ => None,
    }
}

/// `/object_info/KSampler` → (samplers, schedulers).
fn parse_sampler_lists(v: &Value) -> Option<(Vec<String>, Vec<String>)> {
    let required = v.get("KSampler")?.get("input")?.get("required")?;
    Some((
        combo_options(required.get("sampler_name")?)?,
        combo_options(required.get("scheduler")?)?,
    ))
}

fn parse_string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn parse_submitted(v: &Value) -> Option<Submitted> {
    let prompt_id = str_field(v, "prompt_id").filter(|s| !s.is_empty())?;
    Some(Submitted {
        prompt_id,
        number: v.get("number").and_then(Value::as_f64),
        node_errors: v
            .get("node_errors")
            .map(parse_node_errors)
            .unwrap_or_default(),
    })
}

/// The body of a 400 from `/prompt`: `{"error": {type, message, details, …}, "node_errors": {…}}`.
/// Older servers may send `error` as a plain string.
fn parse_rejection(v: &Value) -> Option<ComfyError> {
    let e = v.get("error")?;
    let (kind, message, details) = match e {
        Value::Object(_) => (
            str_field(e, "type").unwrap_or_default(),
            str_field(e, "message").unwrap_or_default(),
            str_field(e, "details").unwrap_or_default(),
        ),
        Value::String(s) => (String::new(), s.clone(), String::new()),
        _ => return None,
    };
    Some(ComfyError::Rejected {
        kind,
        message,
        details,
        nodes: v
            .get("node_errors")
            .map(parse_node_errors)
            .unwrap_or_default(),
    })
}

/// `{"<id>": {"errors": [...], "dependent_outputs": [...], "class_type": …}}`, one
/// [`NodeError`] per error, in the server's order.
fn parse_node_errors(v: &Value) -> Vec<NodeError> {
    let Some(nodes) = v.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (node_id, n) in nodes {
        let class_type = str_field(n, "class_type").unwrap_or_default();
        let errors = n.get("errors").and_then(Value::as_array);
        for e in errors.into_iter().flatten() {
            out.push(NodeError {
                node_id: node_id.clone(),
                class_type: class_type.clone(),
                kind: str_field(e, "type").unwrap_or_default(),
                message: str_field(e, "message").unwrap_or_default(),
                details: str_field(e, "details").unwrap_or_default(),
                input: e.get("extra_info").and_then(|x| str_field(x, "input_name")),
            });
        }
    }
    out
}

/// `GET /history/{id}` body → `Some(None)` for `{}`, `Some(Some(outcome))` for an entry, `None`
/// when the shape is not ComfyUI's.
fn parse_history(v: &Value, prompt_id: &str) -> Option<Option<Outcome>> {
    let m = v.as_object()?;
    if m.is_empty() {
        return Some(None);
    }
    parse_history_entry(m.get(prompt_id)?).map(Some)
}

/// One history entry → its outcome (`status.status_str` decides; details from `messages`).
fn parse_history_entry(entry: &Value) -> Option<Outcome> {
    let status = entry.get("status")?;
    let messages: &[Value] = status
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let message = |event: &str| {
        messages.iter().rev().find_map(|m| {
            let pair = m.as_array()?;
            (pair.first()?.as_str()? == event).then(|| pair.get(1))?
        })
    };
    match status.get("status_str")?.as_str()? {
        "success" => Some(Outcome::Success {
            images: parse_images(entry.get("outputs")?)?,
        }),
        "error" => {
            if let Some(e) = message("execution_error") {
                Some(Outcome::Failed {
                    node_id: id_field(e, "node_id"),
                    node_type: str_field(e, "node_type"),
                    exception_type: str_field(e, "exception_type").unwrap_or_default(),
                    message: str_field(e, "exception_message")
                        .unwrap_or_default()
                        .trim_end()
                        .to_string(),
                })
            } else if let Some(i) = message("execution_interrupted") {
                Some(Outcome::Interrupted {
                    node_id: id_field(i, "node_id"),
                })
            } else {
                Some(Outcome::Failed {
                    node_id: None,
                    node_type: None,
                    exception_type: String::new(),
                    message: "ComfyUI reported an error without details".to_string(),
                })
            }
        }
        _ => None,
    }
}

/// `outputs` → every `images[]` entry of every node, in node order. Entries without a file name
/// are skipped; a missing subfolder is `""` and a missing type `output`. Other output kinds
/// (`text`, `gifs`, …) are ignored.
fn parse_images(outputs: &Value) -> Option<Vec<ImageRef>> {
    let outputs = outputs.as_object()?;
    let mut images = Vec::new();
    for (node_id, ui) in outputs {
        let list = ui.get("images").and_then(Value::as_array);
        for img in list.into_iter().flatten() {
            let Some(filename) = str_field(img, "filename").filter(|f| !f.is_empty()) else {
                continue;
            };
            images.push(ImageRef {
                node_id: node_id.clone(),
                filename,
                subfolder: str_field(img, "subfolder").unwrap_or_default(),
                kind: str_field(img, "type").unwrap_or_else(|| "output".to_string()),
            });
        }
    }
    Some(images)
}

/// `{"queue_running": [item…], "queue_pending": [item…]}`, item = `[number, prompt_id, …]`.
/// Strict: an item without a string id makes the whole reply garbage, so that a lookup never
/// reports `Unknown` for a prompt it could not read.
fn parse_queue(v: &Value) -> Option<QueueState> {
    let ids = |key: &str| -> Option<Vec<String>> {
        v.get(key)?
            .as_array()?
            .iter()
            .map(|item| item.as_array()?.get(1)?.as_str().map(str::to_string))
            .collect()
    };
    Some(QueueState {
        running: ids("queue_running")?,
        pending: ids("queue_pending")?,
    })
}

/// A count that may arrive as an integer or a float.
fn count_field(v: &Value, key: &str) -> Option<u64> {
    let x = v.get(key)?;
    x.as_u64()
        .or_else(|| x.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
}

/// One WebSocket text frame → the event GAZE relays, `None` for anything else (cached,
/// executed, progress_state, feature_flags, malformed frames, `executing` without prompt id).
fn parse_ws_text(text: &str) -> Option<Progress> {
    let v: Value = serde_json::from_str(text).ok()?;
    let data = v.get("data")?;
    let pid = || str_field(data, "prompt_id");
    match v.get("type")?.as_str()? {
        "status" => Some(Progress::Queue {
            remaining: count_field(data.get("status")?.get("exec_info")?, "queue_remaining")?,
        }),
        "execution_start" => Some(Progress::Started { prompt_id: pid()? }),
        "executing" => {
            let prompt_id = pid()?;
            match data.get("node") {
                None | Some(Value::Null) => Some(Progress::Finished { prompt_id }),
                Some(_) => Some(Progress::Executing {
                    prompt_id,
                    node: id_field(data, "node")?,
                }),
            }
        }
        "progress" => Some(Progress::Step {
            prompt_id: pid()?,
            node: id_field(data, "node"),
            value: count_field(data, "value")?,
            max: count_field(data, "max")?,
        }),
        "execution_error" => {
            let outcome = Outcome::Failed {
                node_id: id_field(data, "node_id"),
                node_type: str_field(data, "node_type"),
                exception_type: str_field(data, "exception_type").unwrap_or_default(),
                message: str_field(data, "exception_message").unwrap_or_default(),
            };
            Some(Progress::Error {
                prompt_id: pid()?,
                message: outcome.summary(),
            })
        }
        "execution_interrupted" => Some(Progress::Interrupted {
            prompt_id: pid()?,
            node: id_field(data, "node_id"),
        }),
        _ => None,
    }
}

/// Connects, forwards, reconnects; returns only when the receiver is gone.
async fn watch_loop(url: String, tx: UnboundedSender<Progress>) {
    let mut delay = BACKOFF_MIN;
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(&url)).await {
            Ok(Ok((mut ws, _))) => {
                tracing::debug!(%url, "ComfyUI WebSocket connected");
                let mut silent = 0;
                loop {
                    match tokio::time::timeout(WS_PING_AFTER, ws.next()).await {
                        Err(_) => {
                            silent += 1;
                            if silent >= WS_DEAD_AFTER_PINGS
                                || ws.send(Message::Ping(Default::default())).await.is_err()
                            {
                                tracing::debug!(%url, "ComfyUI WebSocket silent; reopening");
                                break;
                            }
                        }
                        Ok(None) | Ok(Some(Ok(Message::Close(_)))) => {
                            tracing::debug!(%url, "ComfyUI WebSocket closed");
                            break;
                        }
                        Ok(Some(Err(e))) => {
                            tracing::debug!(%url, error = %e, "ComfyUI WebSocket dropped");
                            break;
                        }
                        Ok(Some(Ok(msg))) => {
                            silent = 0;
                            delay = BACKOFF_MIN;
                            if let Message::Text(t) = msg
                                && let Some(p) = parse_ws_text(t.as_str())
                                && tx.send(p).is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            }
            Ok(Err(e)) => tracing::debug!(%url, error = %e, "ComfyUI WebSocket connect failed"),
            Err(_) => tracing::debug!(%url, "ComfyUI WebSocket connect timed out"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

// ───────────────────────────── unit tests ─────────────────────────────

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        serde_json::from_str(s).expect("test JSON")
    }

    // Bodies observed from ComfyUI 0.3.64 (shared/reference/comfyui-api.md), "…" filled in.

    const HISTORY_SUCCESS: &str = r#"{"abc": {"prompt": [0, "abc", {"1": {"class_type": "EmptyImage", "inputs": {}}}, {"client_id": "t"}, ["2"]],
      "outputs": {"2": {"images": [{"filename": "red_00001_.png", "subfolder": "sub", "type": "output"}]}},
      "status": {"status_str": "success", "completed": true, "messages": [
         ["execution_start", {"prompt_id": "abc", "timestamp": 1}],
         ["execution_cached", {"nodes": [], "prompt_id": "abc", "timestamp": 2}],
         ["execution_success", {"prompt_id": "abc", "timestamp": 3}]]},
      "meta": {"2": {"node_id": "2", "display_node": "2", "parent_node": null, "real_node_id": "2"}}}}"#;

    const HISTORY_ERROR: &str = r#"{"1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae": {
      "prompt": [0, "1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae", {}, {"client_id": "test"}, ["9"]],
      "outputs": {},
      "status": {"status_str": "error", "completed": false, "messages": [
         ["execution_start", {"prompt_id": "1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae", "timestamp": 1795467617805}],
         ["execution_cached", {"nodes": [], "prompt_id": "1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae", "timestamp": 1795467617807}],
         ["execution_error", {"prompt_id": "1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae", "node_id": "4", "node_type": "CheckpointLoaderSimple", "executed": [],
            "exception_message": "Error while deserializing header: header too small\n",
            "exception_type": "safetensors._safetensors_rust.SafetensorError",
            "traceback": ["a", "b"],
            "current_inputs": {"ckpt_name": ["Illustrious/test.safetensors"]},
            "current_outputs": ["10", "6", "8", "5", "7", "3", "9", "4"], "timestamp": 1795467617809}]]},
      "meta": {}}}"#;

    const HISTORY_INTERRUPTED: &str = r#"{"slow-4": {"prompt": [3, "slow-4", {}, {}, ["2"]], "outputs": {},
      "status": {"status_str": "error", "completed": false, "messages": [
         ["execution_start", {"prompt_id": "slow-4", "timestamp": 1}],
         ["execution_cached", {"nodes": [], "prompt_id": "slow-4", "timestamp": 2}],
         ["execution_interrupted", {"prompt_id": "slow-4", "node_id": "1", "node_type": "EmptyImage", "executed": [], "timestamp": 3}]]},
      "meta": {}}}"#;

    const REJECT_NOT_IN_LIST: &str = r#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
      "node_errors": {"4": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "ckpt_name: 'Illustrious/missing.safetensors' not in ['Illustrious/test.safetensors']", "extra_info": {"input_name": "ckpt_name", "input_config": [["Illustrious/test.safetensors"], {"tooltip": "The name of the checkpoint (model) to load."}], "received_value": "Illustrious/missing.safetensors"}}], "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"}}}"#;

    const REJECT_MISSING_SEED: &str = r#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
      "node_errors": {"3": {"errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "seed", "extra_info": {"input_name": "seed"}}], "dependent_outputs": ["9"], "class_type": "KSampler"}}}"#;

    const REJECT_UNKNOWN_CLASS: &str = r#"{"error": {"type": "invalid_prompt", "message": "Cannot execute because node NoSuchNode does not exist.", "details": "Node ID '#11'", "extra_info": {}}, "node_errors": {}}"#;

    const REJECT_NO_PROMPT: &str = r#"{"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}"#;

    const SYSTEM_STATS: &str = r#"{"system": {"os": "posix", "ram_total": 25276502016, "ram_free": 24224157696, "comfyui_version": "0.3.64", "required_frontend_version": "1.27.10", "installed_templates_version": "0.1.95", "required_templates_version": "0.1.95", "python_version": "3.11.7 (main) [GCC 12.2.0]", "pytorch_version": "2.8.0+cu128", "embedded_python": false, "argv": ["main.py", "--cpu"]}, "devices": [{"name": "cpu", "type": "cpu", "index": null, "vram_total": 25276502016, "vram_free": 24224157696, "torch_vram_total": 25276502016, "torch_vram_free": 24224157696}]}"#;

    #[test]
    fn history_success_lists_images() {
        let out = parse_history(&v(HISTORY_SUCCESS), "abc").expect("shape");
        assert_eq!(
            out,
            Some(Outcome::Success {
                images: vec![ImageRef {
                    node_id: "2".into(),
                    filename: "red_00001_.png".into(),
                    subfolder: "sub".into(),
                    kind: "output".into(),
                }]
            })
        );
    }

    #[test]
    fn history_images_from_every_node_in_order() {
        let body = json!({"p": {"outputs": {
            "9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"},
                             {"filename": "b.png", "subfolder": "", "type": "output"}]},
            "12": {"images": [{"filename": "c.png", "type": "temp"}], "text": ["x"]},
            "13": {"text": ["no images"]}},
            "status": {"status_str": "success", "completed": true, "messages": []}}});
        let Some(Some(Outcome::Success { images })) = parse_history(&body, "p") else {
            panic!("expected success");
        };
        let names: Vec<_> = images
            .iter()
            .map(|i| (i.node_id.as_str(), i.filename.as_str(), i.kind.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("9", "a.png", "output"),
                ("9", "b.png", "output"),
                ("12", "c.png", "temp")
            ]
        );
        assert_eq!(images[2].subfolder, "");
    }

    #[test]
    fn history_execution_error_is_failed() {
        let id = "1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae";
        let out = parse_history(&v(HISTORY_ERROR), id).expect("shape");
        let expected = Outcome::Failed {
            node_id: Some("4".into()),
            node_type: Some("CheckpointLoaderSimple".into()),
            exception_type: "safetensors._safetensors_rust.SafetensorError".into(),
            message: "Error while deserializing header: header too small".into(),
        };
        assert_eq!(out, Some(expected.clone()));
        assert_eq!(
            expected.summary(),
            "node 4 (CheckpointLoaderSimple) safetensors._safetensors_rust.SafetensorError: \
             Error while deserializing header: header too small"
        );
    }

    #[test]
    fn history_interrupted() {
        let out = parse_history(&v(HISTORY_INTERRUPTED), "slow-4").expect("shape");
        assert_eq!(
            out,
            Some(Outcome::Interrupted {
                node_id: Some("1".into())
            })
        );
    }

    #[test]
    fn history_empty_is_none_and_odd_shapes_are_garbage() {
        assert_eq!(parse_history(&json!({}), "x"), Some(None));
        assert_eq!(parse_history(&json!([]), "x"), None);
        assert_eq!(parse_history(&json!("x"), "x"), None);
        assert_eq!(parse_history(&json!({"other": {}}), "x"), None);
        assert_eq!(parse_history(&json!({"x": {"outputs": {}}}), "x"), None);
        assert_eq!(
            parse_history(&json!({"x": {"status": {"status_str": "weird"}}}), "x"),
            None
        );
        // Success without outputs is not something we can download from.
        assert_eq!(
            parse_history(&json!({"x": {"status": {"status_str": "success"}}}), "x"),
            None
        );
        // Error without any detail message still ends the job.
        let bare =
            json!({"x": {"outputs": {}, "status": {"status_str": "error", "messages": "?"}}});
        assert!(matches!(
            parse_history(&bare, "x"),
            Some(Some(Outcome::Failed { node_id: None, .. }))
        ));
    }

    #[test]
    fn rejection_value_not_in_list_names_node_and_input() {
        let err = parse_rejection(&v(REJECT_NOT_IN_LIST)).expect("shape");
        let ComfyError::Rejected {
            kind,
            message,
            details,
            nodes,
        } = &err
        else {
            panic!("expected Rejected, got {err:?}");
        };
        assert_eq!(kind, "prompt_outputs_failed_validation");
        assert_eq!(message, "Prompt outputs failed validation");
        assert_eq!(details, "");
        assert_eq!(
            nodes,
            &[NodeError {
                node_id: "4".into(),
                class_type: "CheckpointLoaderSimple".into(),
                kind: "value_not_in_list".into(),
                message: "Value not in list".into(),
                details: "ckpt_name: 'Illustrious/missing.safetensors' not in ['Illustrious/test.safetensors']".into(),
                input: Some("ckpt_name".into()),
            }]
        );
        assert_eq!(
            err.summary(),
            "node 4 (CheckpointLoaderSimple) ckpt_name: Value not in list: ckpt_name: \
             'Illustrious/missing.safetensors' not in ['Illustrious/test.safetensors']"
        );
        assert!(!err.retryable());
    }

    #[test]
    fn rejection_missing_input_does_not_repeat_the_name() {
        let err = parse_rejection(&v(REJECT_MISSING_SEED)).expect("shape");
        assert_eq!(
            err.summary(),
            "node 3 (KSampler) seed: Required input is missing"
        );
    }

    #[test]
    fn rejection_unknown_class_and_no_prompt() {
        let err = parse_rejection(&v(REJECT_UNKNOWN_CLASS)).expect("shape");
        assert!(matches!(&err, ComfyError::Rejected { kind, nodes, .. }
            if kind == "invalid_prompt" && nodes.is_empty()));
        assert_eq!(
            err.summary(),
            "Cannot execute because node NoSuchNode does not exist. (Node ID '#11')"
        );
        let err = parse_rejection(&v(REJECT_NO_PROMPT)).expect("shape");
        assert!(matches!(&err, ComfyError::Rejected { kind, .. } if kind == "no_prompt"));
        assert_eq!(err.summary(), "No prompt provided");
        assert!(!err.retryable());
        // Not ComfyUI's shape: the caller turns it into Server { 400 }.
        assert_eq!(parse_rejection(&json!({"detail": "nope"})), None);
        assert_eq!(parse_rejection(&json!([1])), None);
    }

    #[test]
    fn submitted_reply() {
        let s = parse_submitted(&json!({"prompt_id": "1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae", "number": 0, "node_errors": {}}))
            .expect("shape");
        assert_eq!(s.prompt_id, "1b8c8549-8e8f-4454-9b31-1e7bf6dc22ae");
        assert_eq!(s.number, Some(0.0));
        assert!(s.node_errors.is_empty());
        let s = parse_submitted(&json!({"prompt_id": "my-own-id-123", "number": 5, "node_errors": v(REJECT_NOT_IN_LIST)["node_errors"]}))
            .expect("shape");
        assert_eq!(s.node_errors.len(), 1);
        assert_eq!(parse_submitted(&json!({"number": 1})), None);
        assert_eq!(parse_submitted(&json!("ok")), None);
    }

    #[test]
    fn queue_items() {
        let q = parse_queue(&json!({
            "queue_running": [[15, "slow-1", {}, {"client_id": "q"}, ["3"]]],
            "queue_pending": [[16, "slow-2", {}, {}, ["3"]], [17.5, "slow-3", {}, {}, ["3"]]]}))
        .expect("shape");
        assert_eq!(q.running, ["slow-1"]);
        assert_eq!(q.pending, ["slow-2", "slow-3"]);
        assert_eq!(
            parse_queue(&json!({"queue_running": [], "queue_pending": []})),
            Some(QueueState::default())
        );
        assert_eq!(parse_queue(&json!({"queue_running": []})), None);
        assert_eq!(
            parse_queue(&json!({"queue_running": [[1]], "queue_pending": []})),
            None
        );
    }

    #[test]
    fn system_stats_object_info_models() {
        assert_eq!(
            parse_system_stats(&v(SYSTEM_STATS)),
            Some(SystemStats {
                comfyui_version: Some("0.3.64".into()),
                devices: vec!["cpu".into()],
            })
        );
        assert_eq!(parse_system_stats(&json!({"devices": []})), None);
        assert_eq!(parse_has_node(&json!({}), "FaceDetailer"), Some(false));
        assert_eq!(
            parse_has_node(&json!({"FaceDetailer": {"input": {}}}), "FaceDetailer"),
            Some(true)
        );
        assert_eq!(parse_has_node(&json!({"Other": {}}), "FaceDetailer"), None);
        assert_eq!(parse_has_node(&json!([]), "FaceDetailer"), None);
        assert_eq!(
            parse_string_list(&json!(["Illustrious/test.safetensors"])),
            Some(vec!["Illustrious/test.safetensors".to_string()])
        );
        assert_eq!(parse_string_list(&json!([1])), None);
    }

    #[test]
    fn sampler_lists_from_both_combo_shapes() {
        let new = v(r#"{"KSampler": {"input": {"required": {
            "sampler_name": ["COMBO", {"options": ["euler", "dpmpp_2m"]}],
            "scheduler": ["COMBO", {"options": ["normal", "karras"]}]}}}}"#);
        assert_eq!(
            parse_sampler_lists(&new),
            Some((
                vec!["euler".to_string(), "dpmpp_2m".to_string()],
                vec!["normal".to_string(), "karras".to_string()]
            ))
        );
        let old = v(r#"{"KSampler": {"input": {"required": {
            "sampler_name": [["euler"], {}], "scheduler": [["simple"], {}]}}}}"#);
        assert_eq!(
            parse_sampler_lists(&old),
            Some((vec!["euler".to_string()], vec!["simple".to_string()]))
        );
        assert_eq!(parse_sampler_lists(&v("{}")), None);
        assert_eq!(
            parse_sampler_lists(&v(
                r#"{"KSampler": {"input": {"required": {"sampler_name": "x", "scheduler": [[], {}]}}}}"#
            )),
            None
        );
    }

    #[test]
    fn ws_frames() {
        let p = |s: &str| parse_ws_text(s);
        assert_eq!(
            p(
                r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 2}}, "sid": "test"}}"#
            ),
            Some(Progress::Queue { remaining: 2 })
        );
        assert_eq!(
            p(r#"{"type": "execution_start", "data": {"prompt_id": "a", "timestamp": 1}}"#),
            Some(Progress::Started {
                prompt_id: "a".into()
            })
        );
        assert_eq!(
            p(
                r#"{"type": "executing", "data": {"node": "4", "display_node": "4", "prompt_id": "a"}}"#
            ),
            Some(Progress::Executing {
                prompt_id: "a".into(),
                node: "4".into()
            })
        );
        assert_eq!(
            p(r#"{"type": "executing", "data": {"node": null, "prompt_id": "a"}}"#),
            Some(Progress::Finished {
                prompt_id: "a".into()
            })
        );
        // Sent on reconnect while our prompt runs: no prompt id, nothing to attribute it to.
        assert_eq!(p(r#"{"type": "executing", "data": {"node": "3"}}"#), None);
        assert_eq!(
            p(
                r#"{"type": "progress", "data": {"value": 3, "max": 20, "prompt_id": "a", "node": "3"}}"#
            ),
            Some(Progress::Step {
                prompt_id: "a".into(),
                node: Some("3".into()),
                value: 3,
                max: 20
            })
        );
        assert_eq!(
            p(
                r#"{"type": "execution_error", "data": {"prompt_id": "a", "node_id": "4", "node_type": "CheckpointLoaderSimple", "executed": [], "exception_message": "Error while deserializing header: header too small\n", "exception_type": "safetensors._safetensors_rust.SafetensorError", "traceback": [], "current_inputs": {}, "current_outputs": [], "timestamp": 1}}"#
            ),
            Some(Progress::Error {
                prompt_id: "a".into(),
                message: "node 4 (CheckpointLoaderSimple) safetensors._safetensors_rust.SafetensorError: Error while deserializing header: header too small".into()
            })
        );
        assert_eq!(
            p(
                r#"{"type": "execution_interrupted", "data": {"prompt_id": "a", "node_id": "1", "node_type": "EmptyImage", "executed": [], "timestamp": 3}}"#
            ),
            Some(Progress::Interrupted {
                prompt_id: "a".into(),
                node: Some("1".into())
            })
        );
        for ignored in [
            r#"{"type": "execution_cached", "data": {"nodes": [], "prompt_id": "a", "timestamp": 2}}"#,
            r#"{"type": "executed", "data": {"node": "2", "output": {}, "prompt_id": "a"}}"#,
            r#"{"type": "progress_state", "data": {"prompt_id": "a", "nodes": {}}}"#,
            r#"{"type": "execution_success", "data": {"prompt_id": "a", "timestamp": 3}}"#,
            r#"{"type": "progress", "data": {"value": "x", "max": 20, "prompt_id": "a"}}"#,
            "not json",
            "[]",
            r#"{"type": 5}"#,
        ] {
            assert_eq!(p(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn prompt_ids_are_canonical_uuids() {
        let a = ulid::Ulid::from_parts(1_700_000_000_000, 42).0;
        let b = ulid::Ulid::from_parts(1_700_000_000_000, 43).0;
        for job in [
            a,
            b,
            0,
            u128::MAX,
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        ] {
            let id = prompt_id_for(job);
            assert_eq!(id.len(), 36, "{id}");
            for (i, c) in id.char_indices() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    assert_eq!(c, '-', "{id}");
                } else {
                    assert!(matches!(c, '0'..='9' | 'a'..='f'), "{id}");
                }
            }
            assert_eq!(prompt_id_for(job), id, "stable");
            assert_eq!(job_for_prompt_id(&id), Some(job), "round trip");
        }
        assert_ne!(prompt_id_for(a), prompt_id_for(b));
        assert_eq!(
            prompt_id_for(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert_eq!(
            job_for_prompt_id("01234567-89AB-cdef-0123-456789abcdef"),
            None
        );
        assert_eq!(job_for_prompt_id("0123456789abcdef0123456789abcdef"), None);
        assert_eq!(job_for_prompt_id("dup-id"), None);
    }

    #[test]
    fn backend_urls() {
        let b = Backend::new("http://127.0.0.1:8188/").expect("valid");
        assert_eq!(b.url(), "http://127.0.0.1:8188");
        assert_eq!(
            b.endpoint(&["history", "a b/c"]).as_str(),
            "http://127.0.0.1:8188/history/a%20b%2Fc"
        );
        assert_eq!(b.ws_url("gaze 1"), "ws://127.0.0.1:8188/ws?clientId=gaze+1");
        let b = Backend::new("https://box.lan/comfy").expect("valid");
        assert_eq!(
            b.endpoint(&["prompt"]).as_str(),
            "https://box.lan/comfy/prompt"
        );
        assert_eq!(b.ws_url("c"), "wss://box.lan/comfy/ws?clientId=c");
        for bad in [
            "",
            "127.0.0.1:8188",
            "ftp://x",
            "ws://x:1",
            "http://x/?a=1",
            "file:///tmp",
        ] {
            let err = Backend::new(bad).expect_err(bad);
            assert!(err.contains("ComfyUI URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn error_summaries_and_retry() {
        let e = ComfyError::Unreachable("127.0.0.1 /queue: cannot connect".into());
        assert!(e.retryable());
        assert!(e.summary().starts_with("ComfyUI unreachable"));
        let e = ComfyError::Server {
            status: 500,
            body: "500 Internal Server Error\n\nServer got itself in trouble".into(),
        };
        assert!(e.retryable());
        assert_eq!(
            e.summary(),
            "ComfyUI answered HTTP 500: 500 Internal Server Error Server got itself in trouble"
        );
        assert!(ComfyError::Garbage("x".into()).retryable());
        assert!(!ComfyError::NotFound("/view".into()).retryable());
        assert_eq!(excerpt("é".repeat(400).as_bytes()).chars().count(), 301);
        assert_eq!(
            Outcome::Interrupted { node_id: None }.summary(),
            "interrupted"
        );
    }
}

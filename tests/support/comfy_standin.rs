//! Stand-in ComfyUI server for GAZE's integration tests: owns a faithful fake of ComfyUI's HTTP and WebSocket wire format (shared/reference/comfyui-api.md, §16) plus the controls tests use to drive it (outages, restarts, failures, counters).
//!
//! What it models, in short:
//! - `POST /prompt` with ComfyUI 0.3.64's validation (§13) and the newer servers' UUID rule for
//!   `prompt_id`; no de-duplication; a global `number` that also advances for rejected prompts.
//! - One worker that runs queued prompts in `(number, prompt_id)` order, emits the WebSocket events
//!   of §12 and writes history entries in the observed shape of §3. SaveImage writes a real PNG
//!   (8×8 RGB, stored-deflate zlib, `tEXt` chunk `prompt`) that `/view` serves.
//! - ComfyUI's "classic" output cache: resubmitting an identical graph re-executes nothing, lists
//!   every node in `execution_cached`, replays `executed` and writes no new file
//!   (`StandIn::set_caching(false)` turns this off). `set_cache_reports_outputs(false)` mimics
//!   ComfyUI builds that report nothing for cached nodes: a fully cached graph then ends with
//!   empty `outputs` and no image at all.
//! - `go_down` models a network outage: the listener is closed and every open connection
//!   (HTTP keep-alive and WebSocket) is cut, but queue, history and the worker keep going, so a job
//!   submitted before the outage can finish during it. `restart_forget` models a ComfyUI restart:
//!   queue, history, running job, cache and `number` are lost; files already written stay (`/view`).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

// ───────────────────────────── public API ─────────────────────────────

/// What the stand-in starts with. Model lists may contain subfolders (`Illustrious/x.safetensors`);
/// they are served sorted, like ComfyUI does.
#[derive(Clone, Debug)]
pub struct StandInConfig {
    pub checkpoints: Vec<String>,
    pub loras: Vec<String>,
    pub vaes: Vec<String>,
    /// Wall time of one prompt whose nodes are not all cached (split evenly over its nodes).
    pub exec_time: Duration,
    /// Whether the Impact Pack (FaceDetailer) and Impact Subpack (UltralyticsDetectorProvider) are installed.
    pub impact_pack: bool,
}

impl Default for StandInConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        StandInConfig {
            checkpoints: s(&[
                "Illustrious/waiIllustriousSDXL_v140.safetensors",
                "Noob/noobaiXLNAIXL_vPred10.safetensors",
            ]),
            loras: s(&[
                "Illustrious/Looks/glossy_skin.safetensors",
                "Illustrious/Clothing/school_uniform.safetensors",
                "Illustrious/Poses/peace_sign.safetensors",
                "Illustrious/Styles/watercolor_style.safetensors",
                "Illustrious/Detailers/detail_tweaker.safetensors",
                "Illustrious/Backgrounds/city_night.safetensors",
            ]),
            vaes: s(&["sdxl_vae.safetensors"]),
            exec_time: Duration::from_millis(50),
            impact_pack: true,
        }
    }
}

/// How every route answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Real behaviour.
    #[default]
    Normal,
    /// Every request gets HTTP 500 with aiohttp's text/plain error page.
    Error500,
    /// Every request gets HTTP 200 with a body that is not JSON (an HTML page).
    Garbage,
}

/// Handle to a running stand-in. Cheap to clone; every method is safe to call from any task.
#[derive(Clone)]
pub struct StandIn {
    sh: Arc<Shared>,
}

/// Binds 127.0.0.1 on a free port and starts serving (bare routes and the same under `/api`).
pub async fn start(config: StandInConfig) -> StandIn {
    let listener = bind_loopback(0).expect("comfy stand-in: bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    let sh = Arc::new(Shared {
        state: Mutex::new(Inner::new(config)),
        wake: Notify::new(),
        conns: Arc::new(Registry::default()),
        tasks: tokio::sync::Mutex::new(Tasks::default()),
        port,
    });
    let server = spawn_server(&sh, listener);
    let worker = tokio::spawn(worker_loop(sh.clone()));
    {
        let mut tasks = sh.tasks.lock().await;
        tasks.server = Some(server);
        tasks.worker = Some(worker);
    }
    sh.lock().up = true;
    StandIn { sh }
}

impl StandIn {
    /// `http://127.0.0.1:PORT` (no trailing slash). Stays the same across `go_down`/`come_up`/`restart_forget`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.sh.port)
    }

    /// `ws://127.0.0.1:PORT/ws?clientId=<client_id>`.
    pub fn ws_url(&self, client_id: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?clientId={client_id}", self.sh.port)
    }

    pub fn port(&self) -> u16 {
        self.sh.port
    }

    /// Changes how long a prompt takes; applies at once, also to the prompt that is running.
    pub fn set_exec_time(&self, d: Duration) {
        self.sh.lock().exec_time = d.min(Duration::from_secs(86_400));
        self.sh.wake.notify_one();
    }

    pub fn set_mode(&self, mode: Mode) {
        self.sh.lock().mode = mode;
    }

    /// Network outage: closes the listener (new connections are refused) and cuts every open
    /// connection, WebSockets included. Queue, history and the worker keep going.
    pub async fn go_down(&self) {
        let mut tasks = self.sh.tasks.lock().await;
        if let Some(task) = tasks.server.take() {
            task.abort();
            let _ = task.await;
        }
        {
            let mut st = self.sh.lock();
            st.up = false;
            st.clients.clear();
        }
        self.sh.conns.kill_all();
    }

    /// Rebinds the same port and serves again, with the state kept by `go_down`.
    pub async fn come_up(&self) {
        let mut tasks = self.sh.tasks.lock().await;
        if tasks.server.is_some() {
            return;
        }
        let mut tries = 0;
        let listener = loop {
            match bind_loopback(self.sh.port) {
                Ok(l) => break l,
                Err(e) => {
                    tries += 1;
                    if tries > 100 {
                        panic!("comfy stand-in: cannot rebind port {}: {e}", self.sh.port);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        tasks.server = Some(spawn_server(&self.sh, listener));
        self.sh.lock().up = true;
    }

    /// `true` between `start`/`come_up` and `go_down`/`shutdown`.
    pub fn is_up(&self) -> bool {
        self.sh.lock().up
    }

    /// A ComfyUI restart on the same port: pending queue, history, the running job (dropped
    /// without a history entry), output cache, WebSocket sessions and open connections are lost,
    /// and `number` starts again at 0. Image files already written stay servable by `/view`.
    /// Test counters (`executions`, `posts`, `received`, …) are kept.
    pub fn restart_forget(&self) {
        {
            let mut st = self.sh.lock();
            st.pending.clear();
            st.history.clear();
            st.running = None;
            st.run_epoch += 1;
            st.cache.clear();
            st.number = 0;
            st.clients.clear();
        }
        self.sh.conns.kill_all();
        self.sh.wake.notify_one();
    }

    /// Installs or removes the Impact Pack (FaceDetailer, UltralyticsDetectorProvider).
    pub fn set_impact_pack(&self, installed: bool) {
        self.sh.lock().impact_pack = installed;
    }

    /// The next `n` prompts that start executing fail with an `execution_error` (exception type
    /// `RuntimeError`, this message) at their CheckpointLoaderSimple node (or their first node if
    /// they have none). Replaces any earlier `fail_next`; `n = 0` cancels.
    pub fn fail_next(&self, n: usize, message: impl Into<String>) {
        let mut st = self.sh.lock();
        st.fail_remaining = n;
        st.fail_message = message.into();
    }

    /// Turns ComfyUI's output cache on (the default) or off.
    pub fn set_caching(&self, on: bool) {
        self.sh.lock().caching = on;
    }

    /// Whether nodes served from the cache report their outputs (the default). Off: an
    /// identical graph produces no new outputs at all, and its history lists none.
    pub fn set_cache_reports_outputs(&self, on: bool) {
        self.sh.lock().cache_reports_outputs = on;
    }

    pub fn set_checkpoints(&self, names: Vec<String>) {
        self.sh.lock().checkpoints = sorted(names);
    }

    pub fn set_loras(&self, names: Vec<String>) {
        self.sh.lock().loras = sorted(names);
    }

    pub fn set_vaes(&self, names: Vec<String>) {
        self.sh.lock().vaes = sorted(names);
    }

    /// How many runs of this prompt_id ended (success, execution error or interrupt). A run
    /// dropped by `restart_forget` does not count.
    pub fn executions(&self, prompt_id: &str) -> usize {
        self.sh
            .lock()
            .executions
            .get(prompt_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_executions(&self) -> usize {
        self.sh.lock().total_executions
    }

    /// Number of `POST /prompt` that were accepted (HTTP 200).
    pub fn posts(&self) -> usize {
        self.sh.lock().posts
    }

    /// The last graph posted under this prompt_id, verbatim (before coercion), accepted or
    /// rejected by validation.
    pub fn received(&self, prompt_id: &str) -> Option<Value> {
        self.sh.lock().received.get(prompt_id).cloned()
    }

    /// Pending plus running prompts (ComfyUI's `queue_remaining`).
    pub fn queue_len(&self) -> usize {
        self.sh.lock().queue_remaining()
    }

    /// The prompt_id being executed right now, if any.
    pub fn running(&self) -> Option<String> {
        self.sh
            .lock()
            .running
            .as_ref()
            .map(|r| r.item.prompt_id.clone())
    }

    /// The history entry of a prompt_id, as `GET /history/{id}` would give it under the id.
    pub fn history_entry(&self, prompt_id: &str) -> Option<Value> {
        self.sh
            .lock()
            .history
            .iter()
            .find(|(k, _)| k == prompt_id)
            .map(|(_, v)| v.clone())
    }

    /// Number of image files written so far (kept across `restart_forget`).
    pub fn images_written(&self) -> usize {
        self.sh.lock().images.len()
    }

    /// Waits until nothing is pending or running; `false` on timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.queue_len() == 0 {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops serving and stops the worker for good.
    pub async fn shutdown(&self) {
        self.go_down().await;
        {
            let mut st = self.sh.lock();
            st.shutdown = true;
            st.running = None;
            st.run_epoch += 1;
        }
        self.sh.wake.notify_one();
        let worker = self.sh.tasks.lock().await.worker.take();
        if let Some(w) = worker {
            w.abort();
            let _ = w.await;
        }
    }
}

// ───────────────────────────── state ─────────────────────────────

struct Shared {
    state: Mutex<Inner>,
    /// Wakes the worker: new prompt, interrupt, restart, exec_time change, shutdown.
    wake: Notify,
    conns: Arc<Registry>,
    tasks: tokio::sync::Mutex<Tasks>,
    port: u16,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Tasks {
    server: Option<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
}

const MAX_HISTORY: usize = 10_000;

#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn key(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
    fn json(self) -> Value {
        match self {
            Num::Int(i) => json!(i),
            Num::Float(f) => json!(f),
        }
    }
}

#[derive(Clone)]
struct QueueItem {
    number: Num,
    prompt_id: String,
    prompt: Value,
    extra_data: Value,
    outputs: Vec<String>,
    seq: u64,
}

impl QueueItem {
    fn json(&self) -> Value {
        json!([
            self.number.json(),
            self.prompt_id,
            self.prompt,
            self.extra_data,
            self.outputs
        ])
    }
    fn client_id(&self) -> Option<String> {
        self.extra_data
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

struct Running {
    item: QueueItem,
    interrupt: bool,
    last_node: Option<String>,
}

struct Client {
    id: u64,
    tx: mpsc::UnboundedSender<String>,
}

struct Inner {
    checkpoints: Vec<String>,
    loras: Vec<String>,
    vaes: Vec<String>,
    impact_pack: bool,
    exec_time: Duration,
    mode: Mode,
    caching: bool,
    /// Cached nodes replay their UI output (`executed`, history `outputs`); when false they
    /// report nothing, like ComfyUI builds whose cache hides outputs.
    cache_reports_outputs: bool,
    fail_remaining: usize,
    fail_message: String,
    up: bool,
    shutdown: bool,

    number: i64,
    item_seq: u64,
    pending: Vec<QueueItem>,
    running: Option<Running>,
    run_epoch: u64,
    history: Vec<(String, Value)>,
    /// Output cache: node signature → its UI output (Null for nodes without one).
    cache: HashMap<String, Value>,
    /// Files in the output directory: (subfolder, filename) → bytes.
    images: HashMap<(String, String), Arc<Vec<u8>>>,
    /// Last counter used per (subfolder, filename prefix).
    image_counters: HashMap<(String, String), u32>,
    clients: HashMap<String, Client>,
    client_seq: u64,

    executions: HashMap<String, usize>,
    total_executions: usize,
    posts: usize,
    received: HashMap<String, Value>,
}

impl Inner {
    fn new(c: StandInConfig) -> Self {
        Inner {
            checkpoints: sorted(c.checkpoints),
            loras: sorted(c.loras),
            vaes: sorted(c.vaes),
            impact_pack: c.impact_pack,
            exec_time: c.exec_time.min(Duration::from_secs(86_400)),
            mode: Mode::Normal,
            caching: true,
            cache_reports_outputs: true,
            fail_remaining: 0,
            fail_message: String::new(),
            up: false,
            shutdown: false,
            number: 0,
            item_seq: 0,
            pending: Vec::new(),
            running: None,
            run_epoch: 0,
            history: Vec::new(),
            cache: HashMap::new(),
            images: HashMap::new(),
            image_counters: HashMap::new(),
            clients: HashMap::new(),
            client_seq: 0,
            executions: HashMap::new(),
            total_executions: 0,
            posts: 0,
            received: HashMap::new(),
        }
    }

    fn catalog(&self) -> Catalog {
        Catalog::build(&self.checkpoints, &self.loras, &self.vaes, self.impact_pack)
    }

    fn queue_remaining(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }

    fn send(&self, event: &str, data: &Value, sid: Option<&str>) {
        let text = ws_text(event, data);
        match sid {
            None => {
                for c in self.clients.values() {
                    let _ = c.tx.send(text.clone());
                }
            }
            Some(sid) => {
                if let Some(c) = self.clients.get(sid) {
                    let _ = c.tx.send(text);
                }
            }
        }
    }

    fn send_status(&self) {
        let data = json!({"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}});
        self.send("status", &data, None);
    }

    fn enqueue(&mut self, mut item: QueueItem) {
        item.seq = self.item_seq;
        self.item_seq += 1;
        self.pending.push(item);
        self.pending.sort_by(|a, b| {
            a.number
                .key()
                .total_cmp(&b.number.key())
                .then_with(|| a.prompt_id.cmp(&b.prompt_id))
                .then_with(|| a.seq.cmp(&b.seq))
        });
    }

    fn take_next(&mut self) -> Option<(u64, QueueItem)> {
        if self.running.is_some() || self.pending.is_empty() {
            return None;
        }
        let item = self.pending.remove(0);
        self.running = Some(Running {
            item: item.clone(),
            interrupt: false,
            last_node: None,
        });
        self.send_status();
        Some((self.run_epoch, item))
    }

    fn check_run(&self, epoch: u64) -> Check {
        if self.shutdown || self.run_epoch != epoch {
            return Check::Dropped;
        }
        match &self.running {
            Some(r) if r.interrupt => Check::Interrupted,
            Some(_) => Check::Go,
            None => Check::Dropped,
        }
    }

    fn put_history(&mut self, id: &str, entry: Value) {
        if let Some(slot) = self.history.iter_mut().find(|(k, _)| k == id) {
            slot.1 = entry;
            return;
        }
        self.history.push((id.to_string(), entry));
        while self.history.len() > MAX_HISTORY {
            self.history.remove(0);
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

// ───────────────────────────── listener & connections ─────────────────────────────

/// Open connections, so that `go_down`/`restart_forget` can cut them (HTTP keep-alive and WebSocket).
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, std::net::TcpStream>>,
    seq: AtomicU64,
}

impl Registry {
    fn map(&self) -> MutexGuard<'_, HashMap<u64, std::net::TcpStream>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kill_all(&self) {
        let conns: Vec<_> = self.map().drain().map(|(_, s)| s).collect();
        for s in conns {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn register(self: &Arc<Self>, stream: TcpStream) -> io::Result<Conn> {
        let _ = stream.set_nodelay(true);
        let std_stream = stream.into_std()?;
        let handle = std_stream.try_clone()?;
        let io = TcpStream::from_std(std_stream)?;
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        self.map().insert(id, handle);
        Ok(Conn {
            io,
            id,
            reg: self.clone(),
        })
    }
}

struct KillableListener {
    inner: TcpListener,
    reg: Arc<Registry>,
}

impl axum::serve::Listener for KillableListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if let Ok(conn) = self.reg.register(stream) {
                        return (conn, addr);
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP connection whose socket `Registry::kill_all` can shut down from outside.
struct Conn {
    io: TcpStream,
    id: u64,
    reg: Arc<Registry>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reg.map().remove(&self.id);
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

fn bind_loopback(port: u16) -> io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    sock.listen(1024)
}

fn spawn_server(sh: &Arc<Shared>, listener: TcpListener) -> JoinHandle<()> {
    let app = router(sh.clone());
    let listener = KillableListener {
        inner: listener,
        reg: sh.conns.clone(),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

// ───────────────────────────── HTTP routes ─────────────────────────────

type St = State<Arc<Shared>>;

fn router(sh: Arc<Shared>) -> Router {
    let routes: Router<Arc<Shared>> = Router::new()
        .route("/prompt", get(get_prompt).post(post_prompt))
        .route("/history", get(get_history).post(post_history))
        .route("/history/{id}", get(get_history_id))
        .route("/queue", get(get_queue).post(post_queue))
        .route("/interrupt", post(post_interrupt))
        .route("/free", post(post_free))
        .route("/view", get(get_view))
        .route("/object_info", get(get_object_info))
        .route("/object_info/{class}", get(get_object_info_class))
        .route("/models", get(get_models))
        .route("/models/{folder}", get(get_models_folder))
        .route("/embeddings", get(get_embeddings))
        .route("/features", get(get_features))
        .route("/system_stats", get(get_system_stats))
        .route("/ws", get(get_ws));
    Router::new()
        .merge(routes.clone())
        .nest("/api", routes)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sh.clone(), mode_layer))
        .with_state(sh)
}

async fn mode_layer(State(sh): St, req: Request, next: Next) -> Response {
    let mode = sh.lock().mode;
    match mode {
        Mode::Normal => next.run(req).await,
        Mode::Error500 => server_error(),
        Mode::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><h1>It works!</h1>not ComfyUI {\"prompt_id\":</body></html>",
        )
            .into_response(),
    }
}

fn json_text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json_resp(status: StatusCode, v: &Value) -> Response {
    json_text(status, py_json(v))
}

fn ok_json(v: &Value) -> Response {
    json_resp(StatusCode::OK, v)
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// aiohttp's answer when a handler raises (e.g. `await request.json()` on a non-JSON body).
fn server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "500 Internal Server Error\n\nServer got itself in trouble",
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404: Not Found",
    )
        .into_response()
}

fn error_body(ty: &str, message: &str, details: &str, node_errors: Map<String, Value>) -> Value {
    json!({
        "error": {"type": ty, "message": message, "details": details, "extra_info": {}},
        "node_errors": node_errors,
    })
}

async fn get_prompt(State(sh): St) -> Response {
    let q = sh.lock().queue_remaining();
    ok_json(&json!({"exec_info": {"queue_remaining": q}}))
}

async fn post_prompt(State(sh): St, body: Bytes) -> Response {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    let mut st = sh.lock();
    let number = match req.get("number") {
        Some(n) => match coerce_float(n) {
            Ok(f) => Num::Float(f),
            Err(_) => return server_error(),
        },
        None => {
            let n = st.number;
            st.number += 1;
            if py_truthy(req.get("front")) {
                Num::Int(-n)
            } else {
                Num::Int(n)
            }
        }
    };
    let Some(prompt) = req.get("prompt") else {
        return json_resp(
            StatusCode::BAD_REQUEST,
            &error_body(
                "no_prompt",
                "No prompt provided",
                "No prompt provided",
                Map::new(),
            ),
        );
    };
    let prompt_id = match req.get("prompt_id") {
        None | Some(Value::Null) => mint_uuid(),
        Some(Value::String(s)) if is_canonical_uuid(s) => s.clone(),
        Some(_) => {
            let body = json!({
                "error": {
                    "type": "invalid_prompt_id",
                    "message": "prompt_id must be a valid UUID",
                    "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one",
                    "extra_info": {},
                },
                "node_errors": {},
            });
            return json_resp(StatusCode::BAD_REQUEST, &body);
        }
    };
    let Value::Object(graph) = prompt else {
        return server_error();
    };
    st.received.insert(prompt_id.clone(), prompt.clone());
    let mut graph = graph.clone();
    let targets: Option<Vec<String>> = match req.get("partial_execution_targets") {
        Some(Value::Array(a)) => Some(a.iter().map(py_str).collect()),
        _ => None,
    };
    let mut extra_data = req.get("extra_data").cloned().unwrap_or_else(|| json!({}));
    if let Some(cid) = req.get("client_id") {
        match extra_data.as_object_mut() {
            Some(m) => {
                m.insert("client_id".into(), cid.clone());
            }
            None => return server_error(),
        }
    }
    let catalog = st.catalog();
    match validate_prompt(&catalog, &mut graph, targets.as_deref()) {
        Ok((outputs, node_errors)) => {
            st.enqueue(QueueItem {
                number,
                prompt_id: prompt_id.clone(),
                prompt: Value::Object(graph),
                extra_data,
                outputs,
                seq: 0,
            });
            st.posts += 1;
            st.send_status();
            drop(st);
            sh.wake.notify_one();
            ok_json(
                &json!({"prompt_id": prompt_id, "number": number.json(), "node_errors": node_errors}),
            )
        }
        Err(body) => json_resp(StatusCode::BAD_REQUEST, &body),
    }
}

async fn get_history(State(sh): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let max_items = match q.get("max_items") {
        Some(s) => match parse_py_int(s) {
            Some(n) => Some(n),
            None => return server_error(),
        },
        None => None,
    };
    let mut offset = match q.get("offset") {
        Some(s) => match parse_py_int(s) {
            Some(n) => n,
            None => return server_error(),
        },
        None => -1,
    };
    let st = sh.lock();
    if offset < 0
        && let Some(m) = max_items
    {
        offset = st.history.len() as i128 - m;
    }
    // Python dict order is insertion order: write the object by hand to keep it.
    let mut parts = Vec::new();
    for (i, (k, v)) in st.history.iter().enumerate() {
        if i as i128 >= offset {
            parts.push(format!("{}: {}", py_json(&json!(k)), py_json(v)));
            if let Some(m) = max_items
                && parts.len() as i128 >= m
            {
                break;
            }
        }
    }
    json_text(StatusCode::OK, format!("{{{}}}", parts.join(", ")))
}

async fn get_history_id(State(sh): St, Path(id): Path<String>) -> Response {
    let st = sh.lock();
    let mut out = Map::new();
    if let Some((k, v)) = st.history.iter().find(|(k, _)| *k == id) {
        out.insert(k.clone(), v.clone());
    }
    ok_json(&Value::Object(out))
}

async fn post_history(State(sh): St, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    let mut st = sh.lock();
    if py_truthy(v.get("clear")) {
        st.history.clear();
    }
    if let Some(Value::Array(ids)) = v.get("delete") {
        for id in ids {
            if let Some(id) = id.as_str() {
                st.history.retain(|(k, _)| k != id);
            }
        }
    }
    empty(StatusCode::OK)
}

async fn get_queue(State(sh): St) -> Response {
    let st = sh.lock();
    let running: Vec<Value> = st.running.iter().map(|r| r.item.json()).collect();
    let pending: Vec<Value> = st.pending.iter().map(QueueItem::json).collect();
    ok_json(&json!({"queue_running": running, "queue_pending": pending}))
}

async fn post_queue(State(sh): St, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    let mut st = sh.lock();
    if py_truthy(v.get("clear")) {
        st.pending.clear();
        st.send_status();
    }
    if let Some(Value::Array(ids)) = v.get("delete") {
        for id in ids {
            // Like ComfyUI's delete_queue_item: removes the first matching pending item only.
            if let Some(pos) = st
                .pending
                .iter()
                .position(|it| Some(it.prompt_id.as_str()) == id.as_str())
            {
                st.pending.remove(pos);
                st.send_status();
            }
        }
    }
    empty(StatusCode::OK)
}

async fn post_interrupt(State(sh): St, body: Bytes) -> Response {
    let v = serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| json!({}));
    let Value::Object(m) = v else {
        return server_error();
    };
    let mut st = sh.lock();
    let target = m.get("prompt_id");
    if let Some(running) = st.running.as_mut() {
        let hit = if py_truthy(target) {
            target.and_then(Value::as_str) == Some(running.item.prompt_id.as_str())
        } else {
            true
        };
        if hit {
            running.interrupt = true;
            drop(st);
            sh.wake.notify_one();
        }
    }
    empty(StatusCode::OK)
}

async fn post_free(State(sh): St, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return server_error();
    };
    if py_truthy(v.get("free_memory")) {
        sh.lock().cache.clear();
    }
    empty(StatusCode::OK)
}

async fn get_view(State(sh): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(raw) = q.get("filename") else {
        return empty(StatusCode::NOT_FOUND);
    };
    let (filename, annotated) = annotated_filepath(raw);
    if filename.is_empty() {
        return empty(StatusCode::BAD_REQUEST);
    }
    if filename.starts_with('/') || filename.contains("..") {
        return empty(StatusCode::BAD_REQUEST);
    }
    let dir = match annotated {
        Some(d) => d.to_string(),
        None => q.get("type").cloned().unwrap_or_else(|| "output".into()),
    };
    if !matches!(dir.as_str(), "output" | "input" | "temp") {
        return empty(StatusCode::BAD_REQUEST);
    }
    let subfolder = match q.get("subfolder") {
        Some(s) => match normalize_rel(s) {
            Some(s) => s,
            None => return empty(StatusCode::FORBIDDEN),
        },
        None => String::new(),
    };
    let base = filename.rsplit('/').next().unwrap_or(filename).to_string();
    if dir != "output" {
        return empty(StatusCode::NOT_FOUND);
    }
    let bytes = sh.lock().images.get(&(subfolder, base.clone())).cloned();
    match bytes {
        Some(b) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/png".to_string()),
                (header::CONTENT_DISPOSITION, format!("filename=\"{base}\"")),
            ],
            b.as_ref().clone(),
        )
            .into_response(),
        None => empty(StatusCode::NOT_FOUND),
    }
}

/// `folder_paths.annotated_filepath`: `name.png [output]` names its directory.
fn annotated_filepath(name: &str) -> (&str, Option<&'static str>) {
    for (suffix, dir) in [
        (" [output]", "output"),
        (" [input]", "input"),
        (" [temp]", "temp"),
    ] {
        if let Some(n) = name.strip_suffix(suffix) {
            return (n, Some(dir));
        }
    }
    (name, None)
}

/// Normalises a relative path like `os.path.normpath`; `None` when it is absolute or climbs out.
fn normalize_rel(p: &str) -> Option<String> {
    if p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

async fn get_object_info(State(sh): St) -> Response {
    let cat = sh.lock().catalog();
    let mut out = Map::new();
    for n in &cat.nodes {
        out.insert(n.class.to_string(), n.info());
    }
    ok_json(&Value::Object(out))
}

async fn get_object_info_class(State(sh): St, Path(class): Path<String>) -> Response {
    let cat = sh.lock().catalog();
    let mut out = Map::new();
    if let Some(n) = cat.get(&class) {
        out.insert(class, n.info());
    }
    ok_json(&Value::Object(out))
}

const MODEL_FOLDERS: [&str; 20] = [
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
];

const IMPACT_FOLDERS: [&str; 3] = ["ultralytics_bbox", "ultralytics_segm", "ultralytics"];

async fn get_models(State(sh): St) -> Response {
    let impact = sh.lock().impact_pack;
    let mut folders: Vec<&str> = MODEL_FOLDERS.to_vec();
    if impact {
        folders.extend(IMPACT_FOLDERS);
    }
    ok_json(&json!(folders))
}

async fn get_models_folder(State(sh): St, Path(folder): Path<String>) -> Response {
    let st = sh.lock();
    let list: Vec<String> = match folder.as_str() {
        "checkpoints" => st.checkpoints.clone(),
        "loras" => st.loras.clone(),
        "vae" => st.vaes.clone(),
        "ultralytics_bbox" if st.impact_pack => {
            vec!["face_yolov8m.pt".into(), "hand_yolov8s.pt".into()]
        }
        "ultralytics_segm" if st.impact_pack => vec!["person_yolov8m-seg.pt".into()],
        "ultralytics" if st.impact_pack => Vec::new(),
        f if MODEL_FOLDERS.contains(&f) => Vec::new(),
        _ => return empty(StatusCode::NOT_FOUND),
    };
    ok_json(&json!(list))
}

async fn get_embeddings() -> Response {
    ok_json(&json!([]))
}

async fn get_features() -> Response {
    ok_json(&json!({"supports_preview_metadata": true, "max_upload_size": 104857600}))
}

async fn get_system_stats(State(sh): St) -> Response {
    let port = sh.port.to_string();
    let ram: u64 = 25_276_502_016;
    let free: u64 = 24_224_157_696;
    ok_json(&json!({
        "system": {
            "os": "posix",
            "ram_total": ram,
            "ram_free": free,
            "comfyui_version": "0.3.64",
            "required_frontend_version": "1.27.10",
            "installed_templates_version": "0.1.95",
            "required_templates_version": "0.1.95",
            "python_version": "3.11.7 (main, Dec  8 2023, 14:22:46) [GCC 12.2.0]",
            "pytorch_version": "2.8.0+cu128",
            "embedded_python": false,
            "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", port, "--disable-auto-launch"],
        },
        "devices": [{
            "name": "cpu", "type": "cpu", "index": null,
            "vram_total": ram, "vram_free": free,
            "torch_vram_total": ram, "torch_vram_free": free,
        }],
    }))
}

// ───────────────────────────── WebSocket ─────────────────────────────

async fn get_ws(
    State(sh): St,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let sid = q
        .get("clientId")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| mint_uuid().replace('-', ""));
    ws.on_upgrade(move |socket| ws_session(sh, sid, socket))
}

async fn ws_session(sh: Arc<Shared>, sid: String, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let my_id = {
        let mut st = sh.lock();
        st.client_seq += 1;
        let my_id = st.client_seq;
        // Reusing a clientId replaces the older socket (which then gets nothing more).
        st.clients.insert(
            sid.clone(),
            Client {
                id: my_id,
                tx: tx.clone(),
            },
        );
        let data =
            json!({"status": {"exec_info": {"queue_remaining": st.queue_remaining()}}, "sid": sid});
        let _ = tx.send(ws_text("status", &data));
        if let Some(r) = &st.running
            && r.item.client_id().as_deref() == Some(sid.as_str())
            && let Some(node) = &r.last_node
        {
            let _ = tx.send(ws_text("executing", &json!({"node": node})));
        }
        my_id
    };
    drop(tx);
    let mut outgoing_open = true;
    loop {
        tokio::select! {
            msg = rx.recv(), if outgoing_open => match msg {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                None => outgoing_open = false,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let is_flags = serde_json::from_str::<Value>(t.as_str())
                        .ok()
                        .and_then(|v| v.get("type").and_then(Value::as_str).map(|s| s == "feature_flags"))
                        .unwrap_or(false);
                    if is_flags {
                        let reply = ws_text(
                            "feature_flags",
                            &json!({"supports_preview_metadata": true, "max_upload_size": 104857600}),
                        );
                        if socket.send(Message::Text(reply.into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut st = sh.lock();
    if st.clients.get(&sid).map(|c| c.id) == Some(my_id) {
        st.clients.remove(&sid);
    }
}

fn ws_text(event: &str, data: &Value) -> String {
    format!(
        "{{\"type\": {}, \"data\": {}}}",
        py_json(&json!(event)),
        py_json(data)
    )
}

// ───────────────────────────── node catalog ─────────────────────────────

const SAMPLERS: &[&str] = &[
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun",
    "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "ipndm_v",
    "deis",
    "res_multistep",
    "res_multistep_cfg_pp",
    "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp",
    "gradient_estimation",
    "gradient_estimation_cfg_pp",
    "er_sde",
    "seeds_2",
    "seeds_3",
    "sa_solver",
    "sa_solver_pece",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
];

const SCHEDULERS: &[&str] = &[
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
];

const IMPACT_SCHEDULERS: &[&str] = &["AYS SDXL", "AYS SD1", "AYS SVD", "GITS[coeff=1.2]"];

const ULTRALYTICS_MODELS: &[&str] = &[
    "bbox/face_yolov8m.pt",
    "bbox/hand_yolov8s.pt",
    "segm/person_yolov8m-seg.pt",
];

const U64_MAX: u64 = u64::MAX;

#[derive(Clone)]
enum Kind {
    Int,
    Float,
    Str,
    Bool,
    /// A V1 combo list; `lenient` skips the membership check (sampler and scheduler names).
    Combo {
        options: Vec<String>,
        lenient: bool,
    },
    /// A linked type such as MODEL.
    Typed(&'static str),
}

impl Kind {
    fn type_json(&self) -> Value {
        match self {
            Kind::Int => json!("INT"),
            Kind::Float => json!("FLOAT"),
            Kind::Str => json!("STRING"),
            Kind::Bool => json!("BOOLEAN"),
            Kind::Combo { options, .. } => json!(options),
            Kind::Typed(t) => json!(t),
        }
    }
}

struct InputSpec {
    name: &'static str,
    kind: Kind,
    opts: Value,
}

impl InputSpec {
    fn config(&self) -> Value {
        json!([self.kind.type_json(), self.opts])
    }
}

struct NodeSpec {
    class: &'static str,
    display_name: &'static str,
    description: &'static str,
    category: &'static str,
    python_module: &'static str,
    output_node: bool,
    required: Vec<InputSpec>,
    optional: Vec<InputSpec>,
    hidden: Vec<(&'static str, &'static str)>,
    /// (type, name, is_list)
    outputs: Vec<(&'static str, &'static str, bool)>,
    output_tooltips: Vec<&'static str>,
}

impl NodeSpec {
    fn inputs(&self) -> impl Iterator<Item = (&InputSpec, bool)> {
        self.required
            .iter()
            .map(|i| (i, true))
            .chain(self.optional.iter().map(|i| (i, false)))
    }

    fn info(&self) -> Value {
        let group = |v: &[InputSpec]| {
            let mut m = Map::new();
            for i in v {
                m.insert(i.name.to_string(), i.config());
            }
            Value::Object(m)
        };
        let names = |v: &[InputSpec]| json!(v.iter().map(|i| i.name).collect::<Vec<_>>());
        let mut input = Map::new();
        let mut order = Map::new();
        input.insert("required".into(), group(&self.required));
        order.insert("required".into(), names(&self.required));
        if !self.optional.is_empty() {
            input.insert("optional".into(), group(&self.optional));
            order.insert("optional".into(), names(&self.optional));
        }
        if !self.hidden.is_empty() {
            let mut h = Map::new();
            for (k, v) in &self.hidden {
                h.insert(k.to_string(), json!(v));
            }
            input.insert("hidden".into(), Value::Object(h));
            order.insert(
                "hidden".into(),
                json!(self.hidden.iter().map(|(k, _)| *k).collect::<Vec<_>>()),
            );
        }
        let mut info = json!({
            "input": input,
            "input_order": order,
            "output": self.outputs.iter().map(|o| o.0).collect::<Vec<_>>(),
            "output_is_list": self.outputs.iter().map(|o| o.2).collect::<Vec<_>>(),
            "output_name": self.outputs.iter().map(|o| o.1).collect::<Vec<_>>(),
            "name": self.class,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        });
        if !self.output_tooltips.is_empty() {
            info["output_tooltips"] = json!(self.output_tooltips);
        }
        info
    }
}

fn i(name: &'static str, kind: Kind, opts: Value) -> InputSpec {
    InputSpec { name, kind, opts }
}

fn combo(list: &[String]) -> Kind {
    Kind::Combo {
        options: list.to_vec(),
        lenient: false,
    }
}

fn fixed_combo(list: &[&str], lenient: bool) -> Kind {
    Kind::Combo {
        options: list.iter().map(|s| s.to_string()).collect(),
        lenient,
    }
}

struct Catalog {
    nodes: Vec<NodeSpec>,
}

impl Catalog {
    fn get(&self, class: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.class == class)
    }

    fn class_of<'a>(&self, graph: &'a Map<String, Value>, id: &str) -> Option<&'a str> {
        graph.get(id)?.get("class_type")?.as_str()
    }

    fn build(ckpts: &[String], loras: &[String], vaes: &[String], impact: bool) -> Catalog {
        let core = |class,
                    display_name,
                    description,
                    category,
                    output_node,
                    required,
                    outputs,
                    output_tooltips| NodeSpec {
            class,
            display_name,
            description,
            category,
            python_module: "nodes",
            output_node,
            required,
            optional: Vec::new(),
            hidden: Vec::new(),
            outputs,
            output_tooltips,
        };
        let mut nodes = vec![
            core(
                "CheckpointLoaderSimple",
                "Load Checkpoint",
                "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
                "loaders",
                false,
                vec![i(
                    "ckpt_name",
                    combo(ckpts),
                    json!({"tooltip": "The name of the checkpoint (model) to load."}),
                )],
                vec![
                    ("MODEL", "MODEL", false),
                    ("CLIP", "CLIP", false),
                    ("VAE", "VAE", false),
                ],
                vec![
                    "The model used for denoising latents.",
                    "The CLIP model used for encoding text prompts.",
                    "The VAE model used for encoding and decoding images to and from latent space.",
                ],
            ),
            core(
                "LoraLoader",
                "Load LoRA",
                "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as applying styles. Multiple LoRA nodes can be linked together.",
                "loaders",
                false,
                vec![
                    i(
                        "model",
                        Kind::Typed("MODEL"),
                        json!({"tooltip": "The diffusion model the LoRA will be applied to."}),
                    ),
                    i(
                        "clip",
                        Kind::Typed("CLIP"),
                        json!({"tooltip": "The CLIP model the LoRA will be applied to."}),
                    ),
                    i(
                        "lora_name",
                        combo(loras),
                        json!({"tooltip": "The name of the LoRA."}),
                    ),
                    i(
                        "strength_model",
                        Kind::Float,
                        json!({"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01, "tooltip": "How strongly to modify the diffusion model. This value can be negative."}),
                    ),
                    i(
                        "strength_clip",
                        Kind::Float,
                        json!({"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01, "tooltip": "How strongly to modify the CLIP model. This value can be negative."}),
                    ),
                ],
                vec![("MODEL", "MODEL", false), ("CLIP", "CLIP", false)],
                vec!["The modified diffusion model.", "The modified CLIP model."],
            ),
            core(
                "CLIPTextEncode",
                "CLIP Text Encode (Prompt)",
                "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model towards generating specific images.",
                "conditioning",
                false,
                vec![
                    i(
                        "text",
                        Kind::Str,
                        json!({"multiline": true, "dynamicPrompts": true, "tooltip": "The text to be encoded."}),
                    ),
                    i(
                        "clip",
                        Kind::Typed("CLIP"),
                        json!({"tooltip": "The CLIP model used for encoding the text."}),
                    ),
                ],
                vec![("CONDITIONING", "CONDITIONING", false)],
                vec![
                    "A conditioning containing the embedded text used to guide the diffusion model.",
                ],
            ),
            core(
                "EmptyLatentImage",
                "Empty Latent Image",
                "Create a new batch of empty latent images to be denoised via sampling.",
                "latent",
                false,
                vec![
                    i(
                        "width",
                        Kind::Int,
                        json!({"default": 512, "min": 16, "max": 8192, "step": 8, "tooltip": "The width of the latent images in pixels."}),
                    ),
                    i(
                        "height",
                        Kind::Int,
                        json!({"default": 512, "min": 16, "max": 8192, "step": 8, "tooltip": "The height of the latent images in pixels."}),
                    ),
                    i(
                        "batch_size",
                        Kind::Int,
                        json!({"default": 1, "min": 1, "max": 4096, "tooltip": "The number of latent images in the batch."}),
                    ),
                ],
                vec![("LATENT", "LATENT", false)],
                vec!["The empty latent image batch."],
            ),
            core(
                "KSampler",
                "KSampler",
                "Uses the provided model, positive and negative conditioning to denoise the latent image.",
                "sampling",
                false,
                vec![
                    i(
                        "model",
                        Kind::Typed("MODEL"),
                        json!({"tooltip": "The model used for denoising the input latent."}),
                    ),
                    i(
                        "seed",
                        Kind::Int,
                        json!({"default": 0, "min": 0, "max": U64_MAX, "control_after_generate": true, "tooltip": "The random seed used for creating the noise."}),
                    ),
                    i(
                        "steps",
                        Kind::Int,
                        json!({"default": 20, "min": 1, "max": 10000, "tooltip": "The number of steps used in the denoising process."}),
                    ),
                    i(
                        "cfg",
                        Kind::Float,
                        json!({"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01, "tooltip": "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values result in images more closely matching the prompt however too high values will negatively impact quality."}),
                    ),
                    i(
                        "sampler_name",
                        fixed_combo(SAMPLERS, true),
                        json!({"tooltip": "The algorithm used when sampling, this can affect the quality, speed, and style of the generated output."}),
                    ),
                    i(
                        "scheduler",
                        fixed_combo(SCHEDULERS, true),
                        json!({"tooltip": "The scheduler controls how noise is gradually removed to form the image."}),
                    ),
                    i(
                        "positive",
                        Kind::Typed("CONDITIONING"),
                        json!({"tooltip": "The conditioning describing the attributes you want to include in the image."}),
                    ),
                    i(
                        "negative",
                        Kind::Typed("CONDITIONING"),
                        json!({"tooltip": "The conditioning describing the attributes you want to exclude from the image."}),
                    ),
                    i(
                        "latent_image",
                        Kind::Typed("LATENT"),
                        json!({"tooltip": "The latent image to denoise."}),
                    ),
                    i(
                        "denoise",
                        Kind::Float,
                        json!({"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": "The amount of denoising applied, lower values will maintain the structure of the initial image allowing for image to image sampling."}),
                    ),
                ],
                vec![("LATENT", "LATENT", false)],
                vec!["The denoised latent."],
            ),
            core(
                "VAEDecode",
                "VAE Decode",
                "Decodes latent images back into pixel space images.",
                "latent",
                false,
                vec![
                    i(
                        "samples",
                        Kind::Typed("LATENT"),
                        json!({"tooltip": "The latent to be decoded."}),
                    ),
                    i(
                        "vae",
                        Kind::Typed("VAE"),
                        json!({"tooltip": "The VAE model used for decoding the latent."}),
                    ),
                ],
                vec![("IMAGE", "IMAGE", false)],
                vec!["The decoded image."],
            ),
            core(
                "VAELoader",
                "Load VAE",
                "",
                "loaders",
                false,
                vec![i("vae_name", combo(vaes), json!({}))],
                vec![("VAE", "VAE", false)],
                vec![],
            ),
            NodeSpec {
                hidden: vec![("prompt", "PROMPT"), ("extra_pnginfo", "EXTRA_PNGINFO")],
                ..core(
                    "SaveImage",
                    "Save Image",
                    "Saves the input images to your ComfyUI output directory.",
                    "image",
                    true,
                    vec![
                        i(
                            "images",
                            Kind::Typed("IMAGE"),
                            json!({"tooltip": "The images to save."}),
                        ),
                        i(
                            "filename_prefix",
                            Kind::Str,
                            json!({"default": "ComfyUI", "tooltip": "The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."}),
                        ),
                    ],
                    vec![],
                    vec![],
                )
            },
        ];
        if impact {
            nodes.push(face_detailer());
            nodes.push(NodeSpec {
                class: "UltralyticsDetectorProvider",
                display_name: "UltralyticsDetectorProvider",
                description: "",
                category: "ImpactPack",
                python_module: "custom_nodes.ComfyUI-Impact-Subpack",
                output_node: false,
                required: vec![i(
                    "model_name",
                    fixed_combo(ULTRALYTICS_MODELS, false),
                    json!({}),
                )],
                optional: Vec::new(),
                hidden: Vec::new(),
                outputs: vec![
                    ("BBOX_DETECTOR", "BBOX_DETECTOR", false),
                    ("SEGM_DETECTOR", "SEGM_DETECTOR", false),
                ],
                output_tooltips: Vec::new(),
            });
        }
        Catalog { nodes }
    }
}

fn face_detailer() -> NodeSpec {
    let mut schedulers: Vec<&str> = SCHEDULERS.to_vec();
    schedulers.extend(IMPACT_SCHEDULERS);
    let enabled = |d: bool| json!({"default": d, "label_on": "enabled", "label_off": "disabled"});
    NodeSpec {
        class: "FaceDetailer",
        display_name: "FaceDetailer",
        description: "",
        category: "ImpactPack/Simple",
        python_module: "custom_nodes.ComfyUI-Impact-Pack",
        output_node: false,
        required: vec![
            i("image", Kind::Typed("IMAGE"), json!({})),
            i(
                "model",
                Kind::Typed("MODEL"),
                json!({"tooltip": "If the `ImpactDummyInput` is connected to the model, the inference stage is skipped."}),
            ),
            i("clip", Kind::Typed("CLIP"), json!({})),
            i("vae", Kind::Typed("VAE"), json!({})),
            i(
                "guide_size",
                Kind::Float,
                json!({"default": 512, "min": 64, "max": 8192, "step": 8}),
            ),
            i(
                "guide_size_for",
                Kind::Bool,
                json!({"default": true, "label_on": "bbox", "label_off": "crop_region"}),
            ),
            i(
                "max_size",
                Kind::Float,
                json!({"default": 1024, "min": 64, "max": 8192, "step": 8}),
            ),
            i(
                "seed",
                Kind::Int,
                json!({"default": 0, "min": 0, "max": U64_MAX}),
            ),
            i(
                "steps",
                Kind::Int,
                json!({"default": 20, "min": 1, "max": 10000}),
            ),
            i(
                "cfg",
                Kind::Float,
                json!({"default": 8.0, "min": 0.0, "max": 100.0}),
            ),
            i("sampler_name", fixed_combo(SAMPLERS, true), json!({})),
            i("scheduler", fixed_combo(&schedulers, true), json!({})),
            i("positive", Kind::Typed("CONDITIONING"), json!({})),
            i("negative", Kind::Typed("CONDITIONING"), json!({})),
            i(
                "denoise",
                Kind::Float,
                json!({"default": 0.5, "min": 0.0001, "max": 1.0, "step": 0.01}),
            ),
            i(
                "feather",
                Kind::Int,
                json!({"default": 5, "min": 0, "max": 100, "step": 1}),
            ),
            i("noise_mask", Kind::Bool, enabled(true)),
            i("force_inpaint", Kind::Bool, enabled(true)),
            i(
                "bbox_threshold",
                Kind::Float,
                json!({"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}),
            ),
            i(
                "bbox_dilation",
                Kind::Int,
                json!({"default": 10, "min": -512, "max": 512, "step": 1}),
            ),
            i(
                "bbox_crop_factor",
                Kind::Float,
                json!({"default": 3.0, "min": 1.0, "max": 10, "step": 0.1}),
            ),
            i(
                "sam_detection_hint",
                fixed_combo(
                    &[
                        "center-1",
                        "horizontal-2",
                        "vertical-2",
                        "rect-4",
                        "diamond-4",
                        "mask-area",
                        "mask-points",
                        "mask-point-bbox",
                        "none",
                    ],
                    false,
                ),
                json!({}),
            ),
            i(
                "sam_dilation",
                Kind::Int,
                json!({"default": 0, "min": -512, "max": 512, "step": 1}),
            ),
            i(
                "sam_threshold",
                Kind::Float,
                json!({"default": 0.93, "min": 0.0, "max": 1.0, "step": 0.01}),
            ),
            i(
                "sam_bbox_expansion",
                Kind::Int,
                json!({"default": 0, "min": 0, "max": 1000, "step": 1}),
            ),
            i(
                "sam_mask_hint_threshold",
                Kind::Float,
                json!({"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.01}),
            ),
            i(
                "sam_mask_hint_use_negative",
                fixed_combo(&["False", "Small", "Outter"], false),
                json!({}),
            ),
            i(
                "drop_size",
                Kind::Int,
                json!({"min": 1, "max": 8192, "step": 1, "default": 10}),
            ),
            i("bbox_detector", Kind::Typed("BBOX_DETECTOR"), json!({})),
            i(
                "wildcard",
                Kind::Str,
                json!({"multiline": true, "dynamicPrompts": false}),
            ),
            i(
                "cycle",
                Kind::Int,
                json!({"default": 1, "min": 1, "max": 10, "step": 1}),
            ),
        ],
        optional: vec![
            i("sam_model_opt", Kind::Typed("SAM_MODEL"), json!({})),
            i("segm_detector_opt", Kind::Typed("SEGM_DETECTOR"), json!({})),
            i("detailer_hook", Kind::Typed("DETAILER_HOOK"), json!({})),
            i("inpaint_model", Kind::Bool, enabled(false)),
            i(
                "noise_mask_feather",
                Kind::Int,
                json!({"default": 20, "min": 0, "max": 100, "step": 1}),
            ),
            i(
                "scheduler_func_opt",
                Kind::Typed("SCHEDULER_FUNC"),
                json!({}),
            ),
            i("tiled_encode", Kind::Bool, enabled(false)),
            i("tiled_decode", Kind::Bool, enabled(false)),
        ],
        hidden: Vec::new(),
        outputs: vec![
            ("IMAGE", "image", false),
            ("IMAGE", "cropped_refined", true),
            ("IMAGE", "cropped_enhanced_alpha", true),
            ("MASK", "mask", false),
            ("DETAILER_PIPE", "detailer_pipe", false),
            ("IMAGE", "cnet_images", true),
        ],
        output_tooltips: Vec::new(),
    }
}

// ───────────────────────────── validation (execution.py) ─────────────────────────────

/// A Python exception raised while validating (turned into `exception_during_*` errors).
struct PyExc {
    ty: &'static str,
    msg: String,
}

fn fake_traceback(func: &str) -> Value {
    json!([
        format!(
            "  File \"/ComfyUI/execution.py\", line 1125, in validate_prompt\n    m = await validate_inputs(prompt_id, prompt, o, validated)\n"
        ),
        format!(
            "  File \"/ComfyUI/execution.py\", line 951, in {func}\n    o_class_type = prompt[o_id]['class_type']\n                   ~~~~~~^^^^^^\n"
        ),
    ])
}

struct Validator<'a> {
    catalog: &'a Catalog,
    /// Python's `validated` dict, in insertion order: (node id, ok, reasons).
    validated: Vec<(String, bool, Vec<Value>)>,
    visiting: HashSet<String>,
}

impl<'a> Validator<'a> {
    fn get(&self, id: &str) -> Option<&(String, bool, Vec<Value>)> {
        self.validated.iter().find(|(k, _, _)| k == id)
    }

    fn set(&mut self, id: &str, ok: bool, reasons: Vec<Value>) {
        if let Some(slot) = self.validated.iter_mut().find(|(k, _, _)| k == id) {
            slot.1 = ok;
            slot.2 = reasons;
        } else {
            self.validated.push((id.to_string(), ok, reasons));
        }
    }

    fn validate_inputs(
        &mut self,
        prompt: &mut Map<String, Value>,
        id: &str,
    ) -> Result<bool, PyExc> {
        if let Some((_, ok, _)) = self.get(id) {
            return Ok(*ok);
        }
        self.visiting.insert(id.to_string());
        let r = self.validate_node(prompt, id);
        self.visiting.remove(id);
        r
    }

    fn validate_node(&mut self, prompt: &mut Map<String, Value>, id: &str) -> Result<bool, PyExc> {
        let catalog = self.catalog;
        let class = catalog.class_of(prompt, id).unwrap_or_default().to_string();
        let spec = catalog.get(&class).ok_or_else(|| PyExc {
            ty: "KeyError",
            msg: py_str_repr(&class),
        })?;
        let inputs = match prompt.get(id).and_then(|n| n.get("inputs")) {
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(PyExc {
                    ty: "TypeError",
                    msg: format!("argument of type '{}' is not iterable", py_type_name(other)),
                });
            }
            None => {
                return Err(PyExc {
                    ty: "KeyError",
                    msg: "'inputs'".into(),
                });
            }
        };
        let mut errors: Vec<Value> = Vec::new();
        let mut valid = true;
        for (inp, required) in spec.inputs() {
            let x = inp.name;
            let info = inp.config();
            let Some(val) = inputs.get(x) else {
                if required {
                    errors.push(json!({"type": "required_input_missing", "message": "Required input is missing", "details": x, "extra_info": {"input_name": x}}));
                }
                continue;
            };
            if let Value::Array(link) = val {
                if link.len() != 2 {
                    errors.push(json!({"type": "bad_linked_input", "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]", "details": x, "extra_info": {"input_name": x, "input_config": info, "received_value": val}}));
                    continue;
                }
                let o_id = match &link[0] {
                    Value::String(s) if prompt.contains_key(s) => s.clone(),
                    Value::Array(_) => {
                        return Err(PyExc {
                            ty: "TypeError",
                            msg: "unhashable type: 'list'".into(),
                        });
                    }
                    Value::Object(_) => {
                        return Err(PyExc {
                            ty: "TypeError",
                            msg: "unhashable type: 'dict'".into(),
                        });
                    }
                    other => {
                        return Err(PyExc {
                            ty: "KeyError",
                            msg: py_repr(other),
                        });
                    }
                };
                let o_class = catalog.class_of(prompt, &o_id).unwrap_or_default();
                let o_spec = catalog.get(o_class).ok_or_else(|| PyExc {
                    ty: "KeyError",
                    msg: py_str_repr(o_class),
                })?;
                let n = o_spec.outputs.len() as i64;
                let slot = match &link[1] {
                    Value::Number(num) if num.is_i64() || num.is_u64() => {
                        let s = num.as_i64().unwrap_or(i64::MAX);
                        let s = if s < 0 { s + n } else { s };
                        if s < 0 || s >= n {
                            return Err(PyExc {
                                ty: "IndexError",
                                msg: "tuple index out of range".into(),
                            });
                        }
                        s as usize
                    }
                    Value::Bool(b) => {
                        let s = usize::from(*b);
                        if s as i64 >= n {
                            return Err(PyExc {
                                ty: "IndexError",
                                msg: "tuple index out of range".into(),
                            });
                        }
                        s
                    }
                    other => {
                        return Err(PyExc {
                            ty: "TypeError",
                            msg: format!(
                                "tuple indices must be integers or slices, not {}",
                                py_type_name(other)
                            ),
                        });
                    }
                };
                let received = o_spec.outputs[slot].0;
                if !types_match(received, &inp.kind) {
                    let input_type = match &inp.kind {
                        Kind::Combo { .. } => py_repr(&inp.kind.type_json()),
                        _ => py_str(&inp.kind.type_json()),
                    };
                    errors.push(json!({"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes", "details": format!("{x}, received_type({received}) mismatch input_type({input_type})"), "extra_info": {"input_name": x, "input_config": info, "received_type": received, "linked_node": val}}));
                    continue;
                }
                if self.visiting.contains(&o_id) {
                    // Newer servers name this error; 0.3.64 would hit Python's recursion limit.
                    errors.push(json!({"type": "dependency_cycle", "message": "Dependency cycle detected", "details": format!("{x}, node {id} links to node {o_id}, which depends on it"), "extra_info": {"input_name": x, "linked_node": val}}));
                    continue;
                }
                match self.validate_inputs(prompt, &o_id) {
                    Ok(true) => {}
                    Ok(false) => valid = false,
                    Err(e) => {
                        valid = false;
                        let reason = json!({"type": "exception_during_inner_validation", "message": "Exception when validating inner node", "details": e.msg, "extra_info": {"input_name": x, "input_config": info, "exception_message": e.msg, "exception_type": e.ty, "traceback": fake_traceback("validate_inputs"), "linked_node": val}});
                        self.set(&o_id, false, vec![reason]);
                    }
                }
                continue;
            }
            let mut val = val.clone();
            if let Some(inner) = val.get("__value__").filter(|_| val.is_object()).cloned() {
                val = inner;
                write_input(prompt, id, x, val.clone());
            }
            let num = match &inp.kind {
                Kind::Int | Kind::Float => {
                    let coerced = if matches!(inp.kind, Kind::Int) {
                        coerce_int(&val)
                    } else {
                        coerce_float(&val).map(PyNum::Float)
                    };
                    match coerced {
                        Ok(n) => {
                            write_input(prompt, id, x, n.json());
                            Some(n)
                        }
                        Err(ex) => {
                            let ty = if matches!(inp.kind, Kind::Int) {
                                "INT"
                            } else {
                                "FLOAT"
                            };
                            errors.push(json!({"type": "invalid_input_type", "message": format!("Failed to convert an input value to a {ty} value"), "details": format!("{x}, {}, {ex}", py_str(&val)), "extra_info": {"input_name": x, "input_config": info, "received_value": val, "exception_message": ex}}));
                            continue;
                        }
                    }
                }
                Kind::Str => {
                    write_input(prompt, id, x, Value::String(py_str(&val)));
                    None
                }
                Kind::Bool => {
                    write_input(prompt, id, x, Value::Bool(py_truthy(Some(&val))));
                    None
                }
                _ => None,
            };
            if let Some(n) = num {
                if let Some(min) = inp.opts.get("min").and_then(PyNum::from_json)
                    && n.lt(min)
                {
                    errors.push(json!({"type": "value_smaller_than_min", "message": format!("Value {} smaller than min of {}", n.repr(), min.repr()), "details": x, "extra_info": {"input_name": x, "input_config": info, "received_value": n.json()}}));
                    continue;
                }
                if let Some(max) = inp.opts.get("max").and_then(PyNum::from_json)
                    && max.lt(n)
                {
                    errors.push(json!({"type": "value_bigger_than_max", "message": format!("Value {} bigger than max of {}", n.repr(), max.repr()), "details": x, "extra_info": {"input_name": x, "input_config": info, "received_value": n.json()}}));
                    continue;
                }
            }
            if let Kind::Combo { options, lenient } = &inp.kind
                && !lenient
            {
                let present = match &val {
                    Value::String(s) => {
                        options.contains(s) || (x == "ckpt_name" && s.starts_with("fail/"))
                    }
                    _ => false,
                };
                if !present {
                    let (list_info, input_config) = if options.len() > 20 {
                        (format!("(list of length {})", options.len()), Value::Null)
                    } else {
                        (py_repr(&json!(options)), info.clone())
                    };
                    errors.push(json!({"type": "value_not_in_list", "message": "Value not in list", "details": format!("{x}: '{}' not in {list_info}", py_str(&val)), "extra_info": {"input_name": x, "input_config": input_config, "received_value": val}}));
                    continue;
                }
            }
        }
        let ok = errors.is_empty() && valid;
        self.set(id, ok, errors);
        Ok(ok)
    }
}

fn write_input(prompt: &mut Map<String, Value>, id: &str, name: &str, v: Value) {
    if let Some(m) = prompt
        .get_mut(id)
        .and_then(|n| n.get_mut("inputs"))
        .and_then(Value::as_object_mut)
    {
        m.insert(name.to_string(), v);
    }
}

/// `validate_node_input` for our types: exact match, `*`, or overlapping comma-separated unions.
fn types_match(received: &str, kind: &Kind) -> bool {
    let input = match kind {
        Kind::Combo { .. } => return received == "*",
        Kind::Int => "INT",
        Kind::Float => "FLOAT",
        Kind::Str => "STRING",
        Kind::Bool => "BOOLEAN",
        Kind::Typed(t) => t,
    };
    if received == input {
        return true;
    }
    let r: HashSet<&str> = received.split(',').map(str::trim).collect();
    let i: HashSet<&str> = input.split(',').map(str::trim).collect();
    r.contains("*") || i.contains("*") || !r.is_disjoint(&i)
}

type Validated = (Vec<String>, Map<String, Value>);
/// The whole HTTP 400 body: `{"error", "node_errors"}`.
type Rejected = Value;

/// `execution.validate_prompt`: `Ok((outputs_to_execute, node_errors))` or `Err(http_400_body)`.
/// Coerced values are written back into `prompt`.
fn validate_prompt(
    catalog: &Catalog,
    prompt: &mut Map<String, Value>,
    targets: Option<&[String]>,
) -> Result<Validated, Rejected> {
    let reject = |ty: &str, message: String, details: String, node_errors: Map<String, Value>| {
        json!({
            "error": {"type": ty, "message": message, "details": details, "extra_info": {}},
            "node_errors": node_errors,
        })
    };
    let mut outputs = Vec::new();
    for (id, node) in prompt.iter() {
        let Some(ct) = node.get("class_type").filter(|_| node.is_object()) else {
            return Err(reject(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.".into(),
                format!("Node ID '#{id}'"),
                Map::new(),
            ));
        };
        let Some(spec) = ct.as_str().and_then(|c| catalog.get(c)) else {
            return Err(reject(
                "invalid_prompt",
                format!("Cannot execute because node {} does not exist.", py_str(ct)),
                format!("Node ID '#{id}'"),
                Map::new(),
            ));
        };
        if spec.output_node && targets.is_none_or(|t| t.contains(id)) {
            outputs.push(id.clone());
        }
    }
    if outputs.is_empty() {
        return Err(reject(
            "prompt_no_outputs",
            "Prompt has no outputs".into(),
            String::new(),
            Map::new(),
        ));
    }
    let mut v = Validator {
        catalog,
        validated: Vec::new(),
        visiting: HashSet::new(),
    };
    let mut good = Vec::new();
    let mut failed: Vec<Vec<Value>> = Vec::new();
    let mut node_errors = Map::new();
    for o in &outputs {
        let (valid, reasons) = match v.validate_inputs(prompt, o) {
            Ok(ok) => (ok, v.get(o).map(|r| r.2.clone()).unwrap_or_default()),
            Err(e) => {
                let reasons = vec![
                    json!({"type": "exception_during_validation", "message": "Exception when validating node", "details": e.msg, "extra_info": {"exception_type": e.ty, "traceback": fake_traceback("validate_inputs")}}),
                ];
                v.set(o, false, reasons.clone());
                (false, reasons)
            }
        };
        if valid {
            good.push(o.clone());
            continue;
        }
        failed.push(reasons);
        for (nid, ok, reasons) in &v.validated {
            if !ok && !reasons.is_empty() {
                let class_type = prompt
                    .get(nid)
                    .and_then(|n| n.get("class_type"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let entry = node_errors.entry(nid.clone()).or_insert_with(|| {
                    json!({"errors": reasons, "dependent_outputs": [], "class_type": class_type})
                });
                if let Some(d) = entry
                    .get_mut("dependent_outputs")
                    .and_then(Value::as_array_mut)
                {
                    d.push(json!(o));
                }
            }
        }
    }
    if good.is_empty() {
        let details: Vec<String> = failed
            .iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}: {}",
                    r["message"].as_str().unwrap_or_default(),
                    r["details"].as_str().unwrap_or_default()
                )
            })
            .collect();
        return Err(reject(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation".into(),
            details.join("\n"),
            node_errors,
        ));
    }
    Ok((good, node_errors))
}

// ───────────────────────────── worker ─────────────────────────────

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    Go,
    Interrupted,
    Dropped,
}

async fn worker_loop(sh: Arc<Shared>) {
    loop {
        let next = {
            let mut st = sh.lock();
            if st.shutdown {
                return;
            }
            st.take_next()
        };
        match next {
            Some((epoch, item)) => execute(&sh, epoch, item).await,
            None => sh.wake.notified().await,
        }
    }
}

/// One prompt being executed.
struct Run {
    epoch: u64,
    item: QueueItem,
    graph: Map<String, Value>,
    client: Option<String>,
    messages: Vec<Value>,
    outputs: Map<String, Value>,
    meta: Map<String, Value>,
    executed: Vec<String>,
    /// Node signatures whose outputs exist after this run (for the cache), with their UI output.
    completed: Vec<(String, Value)>,
    node_states: Map<String, Value>,
    start: Instant,
}

enum Outcome {
    Success,
    Error {
        node: String,
        message: String,
        ty: String,
    },
    Interrupted {
        node: String,
    },
}

impl Run {
    fn pid(&self) -> &str {
        &self.item.prompt_id
    }

    /// `PromptExecutor.add_message`: recorded in history; sent to the client, or to everyone
    /// when `broadcast` and the prompt has no client.
    fn add_message(&mut self, st: &Inner, event: &str, data: Value, broadcast: bool) {
        self.messages.push(json!([event, data]));
        self.send(st, event, &data, broadcast);
    }

    fn send(&self, st: &Inner, event: &str, data: &Value, broadcast_without_client: bool) {
        match &self.client {
            Some(c) => st.send(event, data, Some(c)),
            None if broadcast_without_client => st.send(event, data, None),
            None => {}
        }
    }

    fn node_state(&mut self, st: &Inner, node: &str, state: &str, value: f64, max: f64) {
        let pid = self.pid().to_string();
        self.node_states.insert(
            node.to_string(),
            json!({"value": value, "max": max, "state": state, "node_id": node, "prompt_id": pid, "display_node_id": node, "parent_node_id": null, "real_node_id": node}),
        );
        let data = json!({"prompt_id": pid, "nodes": self.node_states});
        self.send(st, "progress_state", &data, true);
    }

    fn add_output(&mut self, st: &Inner, node: &str, ui: Value) {
        self.outputs.insert(node.to_string(), ui.clone());
        self.meta.insert(
            node.to_string(),
            json!({"node_id": node, "display_node": node, "parent_node": null, "real_node_id": node}),
        );
        let data =
            json!({"node": node, "display_node": node, "output": ui, "prompt_id": self.pid()});
        self.send(st, "executed", &data, false);
    }

    fn finish(mut self, st: &mut Inner, outcome: Outcome, sigs: &HashMap<String, String>) {
        let pid = self.pid().to_string();
        let success = matches!(outcome, Outcome::Success);
        match outcome {
            Outcome::Success => {
                self.add_message(
                    st,
                    "execution_success",
                    json!({"prompt_id": pid, "timestamp": now_ms()}),
                    false,
                );
            }
            Outcome::Error { node, message, ty } => {
                let class = self.class_of(&node);
                let data = json!({
                    "prompt_id": pid,
                    "node_id": node,
                    "node_type": class,
                    "executed": self.executed,
                    "exception_message": message,
                    "exception_type": ty,
                    "traceback": exec_traceback(&class),
                    "current_inputs": self.current_inputs(&node),
                    "current_outputs": self.graph.keys().collect::<Vec<_>>(),
                    "timestamp": now_ms(),
                });
                self.add_message(st, "execution_error", data, false);
            }
            Outcome::Interrupted { node } => {
                let class = self.class_of(&node);
                let data = json!({"prompt_id": pid, "node_id": node, "node_type": class, "executed": self.executed, "timestamp": now_ms()});
                self.add_message(st, "execution_interrupted", data, true);
            }
        }
        let entry = json!({
            "prompt": self.item.json(),
            "outputs": self.outputs,
            "status": {
                "status_str": if success { "success" } else { "error" },
                "completed": success,
                "messages": self.messages,
            },
            "meta": self.meta,
        });
        st.put_history(&pid, entry);
        *st.executions.entry(pid.clone()).or_default() += 1;
        st.total_executions += 1;
        let in_prompt: HashSet<&String> = sigs.values().collect();
        st.cache.retain(|k, _| in_prompt.contains(k));
        for (sig, ui) in self.completed.drain(..) {
            st.cache.insert(sig, ui);
        }
        st.running = None;
        st.send_status();
        if let Some(c) = &self.client {
            st.send(
                "executing",
                &json!({"node": null, "prompt_id": pid}),
                Some(c),
            );
        }
    }

    fn class_of(&self, node: &str) -> String {
        self.graph
            .get(node)
            .and_then(|n| n.get("class_type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// `current_inputs` of an execution_error: each input as a one-element list; linked
    /// values are objects in Python and appear as their `str()`.
    fn current_inputs(&self, node: &str) -> Value {
        let mut m = Map::new();
        if let Some(Value::Object(inputs)) = self.graph.get(node).and_then(|n| n.get("inputs")) {
            for (k, v) in inputs {
                let shown = match v {
                    Value::Array(_) => json!("<object object at 0x7f0000000000>"),
                    other => other.clone(),
                };
                m.insert(k.clone(), json!([shown]));
            }
        }
        Value::Object(m)
    }
}

fn exec_traceback(class: &str) -> Value {
    let mut tb = vec![
        "  File \"/ComfyUI/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n".to_string(),
        "  File \"/ComfyUI/execution.py\", line 315, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n".to_string(),
        "  File \"/ComfyUI/execution.py\", line 289, in _async_map_node_over_list\n    await process_inputs(input_dict, i)\n".to_string(),
        "  File \"/ComfyUI/execution.py\", line 277, in process_inputs\n    result = f(**inputs)\n".to_string(),
    ];
    if class == "CheckpointLoaderSimple" {
        tb.extend([
            "  File \"/ComfyUI/nodes.py\", line 580, in load_checkpoint\n    out = comfy.sd.load_checkpoint_guess_config(ckpt_path, output_vae=True, output_clip=True, embedding_directory=folder_paths.get_folder_paths(\"embeddings\"))\n".to_string(),
            "  File \"/ComfyUI/comfy/sd.py\", line 1039, in load_checkpoint_guess_config\n    sd, metadata = comfy.utils.load_torch_file(ckpt_path, return_metadata=True)\n".to_string(),
            "  File \"/ComfyUI/comfy/utils.py\", line 74, in load_torch_file\n    raise e\n".to_string(),
            "  File \"/ComfyUI/comfy/utils.py\", line 61, in load_torch_file\n    with safetensors.safe_open(ckpt, framework=\"pt\", device=device.type) as f:\n".to_string(),
        ]);
    } else {
        tb.push(format!(
            "  File \"/ComfyUI/nodes.py\", line 1, in {}\n    raise RuntimeError(message)\n",
            class.to_lowercase()
        ));
    }
    json!(tb)
}

async fn wait_frac(sh: &Shared, epoch: u64, start: Instant, frac: f64) -> Check {
    loop {
        let deadline = {
            let st = sh.lock();
            match st.check_run(epoch) {
                Check::Go => {}
                other => return other,
            }
            start + st.exec_time.mul_f64(frac.clamp(0.0, 1.0))
        };
        if Instant::now() >= deadline {
            return Check::Go;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = sh.wake.notified() => {}
        }
    }
}

/// Post-order walk from the outputs over declared link inputs: dependencies run first.
fn exec_order(graph: &Map<String, Value>, catalog: &Catalog, outputs: &[String]) -> Vec<String> {
    fn visit(
        id: &str,
        graph: &Map<String, Value>,
        catalog: &Catalog,
        seen: &mut HashSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(id.to_string()) {
            return;
        }
        if let Some(spec) = catalog.class_of(graph, id).and_then(|c| catalog.get(c)) {
            for (inp, _) in spec.inputs() {
                if let Some(src) = link_source(graph, id, inp.name) {
                    visit(&src, graph, catalog, seen, order);
                }
            }
        }
        order.push(id.to_string());
    }
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    for o in outputs {
        visit(o, graph, catalog, &mut seen, &mut order);
    }
    order
}

fn link_source(graph: &Map<String, Value>, id: &str, input: &str) -> Option<String> {
    let v = graph.get(id)?.get("inputs")?.get(input)?.as_array()?;
    let src = v.first()?.as_str()?;
    (v.len() == 2 && graph.contains_key(src)).then(|| src.to_string())
}

/// Cache key of a node: its class and inputs, with links replaced by the upstream signature
/// (ComfyUI's `CacheKeySetInputSignature`; node ids do not matter).
fn signatures(graph: &Map<String, Value>, catalog: &Catalog) -> HashMap<String, String> {
    fn sig(
        id: &str,
        graph: &Map<String, Value>,
        catalog: &Catalog,
        memo: &mut HashMap<String, String>,
        visiting: &mut HashSet<String>,
    ) -> String {
        if let Some(s) = memo.get(id) {
            return s.clone();
        }
        if !visiting.insert(id.to_string()) {
            return "<cycle>".into();
        }
        let class = catalog.class_of(graph, id).unwrap_or_default();
        let mut s = format!("{class}(");
        if let Some(spec) = catalog.get(class) {
            for (inp, _) in spec.inputs() {
                let Some(v) = graph
                    .get(id)
                    .and_then(|n| n.get("inputs"))
                    .and_then(|m| m.get(inp.name))
                else {
                    continue;
                };
                match link_source(graph, id, inp.name) {
                    Some(src) => {
                        let up = sig(&src, graph, catalog, memo, visiting);
                        let _ = write!(s, "{}=@{{{up}}}#{},", inp.name, py_json(&v[1]));
                    }
                    None => {
                        let _ = write!(s, "{}={},", inp.name, py_json(v));
                    }
                }
            }
        }
        s.push(')');
        visiting.remove(id);
        memo.insert(id.to_string(), s.clone());
        s
    }
    let mut memo = HashMap::new();
    let mut visiting = HashSet::new();
    for id in graph.keys() {
        sig(id, graph, catalog, &mut memo, &mut visiting);
    }
    memo
}

fn progress_points(steps: u64) -> Vec<u64> {
    let steps = steps.max(1);
    let n = steps.min(10);
    (1..=n).map(|k| (steps * k).div_ceil(n)).collect()
}

async fn execute(sh: &Arc<Shared>, epoch: u64, item: QueueItem) {
    // Execution knows every class that validation accepted, whatever is installed now.
    let catalog = Catalog::build(&[], &[], &[], true);
    let graph = item.prompt.as_object().cloned().unwrap_or_default();
    let order = exec_order(&graph, &catalog, &item.outputs);
    let sigs = signatures(&graph, &catalog);
    let mut run = Run {
        epoch,
        client: item.client_id(),
        item,
        graph,
        messages: Vec::new(),
        outputs: Map::new(),
        meta: Map::new(),
        executed: Vec::new(),
        completed: Vec::new(),
        node_states: Map::new(),
        start: Instant::now(),
    };
    let (cached, fail): (HashSet<String>, Option<(String, String, String)>) = {
        let mut st = sh.lock();
        if st.check_run(epoch) == Check::Dropped {
            return;
        }
        let forced = if st.fail_remaining > 0 {
            st.fail_remaining -= 1;
            Some(st.fail_message.clone())
        } else {
            None
        };
        let use_cache = st.caching && forced.is_none();
        let cached: HashSet<String> = run
            .graph
            .keys()
            .filter(|id| use_cache && sigs.get(*id).is_some_and(|s| st.cache.contains_key(s)))
            .cloned()
            .collect();
        let fail = match forced {
            Some(msg) => order
                .iter()
                .find(|n| run.class_of(n) == "CheckpointLoaderSimple")
                .or(order.first())
                .map(|n| (n.clone(), msg, "RuntimeError".to_string())),
            None => order
                .iter()
                .find(|n| {
                    run.class_of(n) == "CheckpointLoaderSimple"
                        && run.graph[n.as_str()]["inputs"]["ckpt_name"]
                            .as_str()
                            .is_some_and(|c| c.starts_with("fail/"))
                })
                .map(|n| {
                    (
                        n.clone(),
                        "Error while deserializing header: header too small\n".to_string(),
                        "safetensors._safetensors_rust.SafetensorError".to_string(),
                    )
                }),
        };
        let pid = run.pid().to_string();
        run.add_message(
            &st,
            "execution_start",
            json!({"prompt_id": pid, "timestamp": now_ms()}),
            false,
        );
        let cached_list: Vec<&String> = run.graph.keys().filter(|k| cached.contains(*k)).collect();
        let data = json!({"nodes": cached_list, "prompt_id": pid, "timestamp": now_ms()});
        run.add_message(&st, "execution_cached", data, false);
        (cached, fail)
    };
    let n_exec = order.iter().filter(|n| !cached.contains(*n)).count().max(1) as f64;
    let mut k = 0.0_f64;
    for node in &order {
        let sig = sigs.get(node).cloned().unwrap_or_default();
        if cached.contains(node) {
            let st = sh.lock();
            if st.check_run(epoch) == Check::Dropped {
                return;
            }
            let ui = st.cache.get(&sig).cloned().unwrap_or(Value::Null);
            if !ui.is_null() && st.cache_reports_outputs {
                run.add_output(&st, node, ui.clone());
            }
            run.completed.push((sig, ui));
            run.node_state(&st, node, "finished", 1.0, 1.0);
            continue;
        }
        {
            let mut st = sh.lock();
            match st.check_run(epoch) {
                Check::Go => {}
                Check::Dropped => return,
                Check::Interrupted => {
                    let node = node.clone();
                    run.finish(&mut st, Outcome::Interrupted { node }, &sigs);
                    return;
                }
            }
            if let Some(r) = st.running.as_mut() {
                r.last_node = Some(node.clone());
            }
            run.node_state(&st, node, "running", 0.0, 1.0);
            let data = json!({"node": node, "display_node": node, "prompt_id": run.pid()});
            run.send(&st, "executing", &data, false);
            if let Some((fnode, message, ty)) = &fail
                && fnode == node
            {
                let outcome = Outcome::Error {
                    node: node.clone(),
                    message: message.clone(),
                    ty: ty.clone(),
                };
                run.finish(&mut st, outcome, &sigs);
                return;
            }
        }
        let class = run.class_of(node);
        let points = if class == "KSampler" || class == "FaceDetailer" {
            let steps = run.graph[node.as_str()]["inputs"]["steps"]
                .as_u64()
                .unwrap_or(1);
            progress_points(steps)
        } else {
            Vec::new()
        };
        let slices = points.len().max(1);
        for p in 0..slices {
            let frac = (k + (p + 1) as f64 / slices as f64) / n_exec;
            match wait_frac(sh, epoch, run.start, frac).await {
                Check::Go => {}
                Check::Dropped => return,
                Check::Interrupted => {
                    let mut st = sh.lock();
                    if st.check_run(epoch) == Check::Dropped {
                        return;
                    }
                    let node = node.clone();
                    run.finish(&mut st, Outcome::Interrupted { node }, &sigs);
                    return;
                }
            }
            if let Some(&value) = points.get(p) {
                let st = sh.lock();
                if st.check_run(epoch) == Check::Dropped {
                    return;
                }
                let max = *points.last().unwrap_or(&1);
                let data =
                    json!({"value": value, "max": max, "prompt_id": run.pid(), "node": node});
                run.send(&st, "progress", &data, true);
                run.node_state(&st, node, "running", value as f64, max as f64);
            }
        }
        let mut st = sh.lock();
        if st.check_run(epoch) == Check::Dropped {
            return;
        }
        let mut ui = Value::Null;
        if class == "SaveImage" {
            match save_images(&mut st, &run, node) {
                Ok(v) => {
                    run.add_output(&st, node, v.clone());
                    ui = v;
                }
                Err(message) => {
                    let outcome = Outcome::Error {
                        node: node.clone(),
                        message,
                        ty: "Exception".into(),
                    };
                    run.finish(&mut st, outcome, &sigs);
                    return;
                }
            }
        }
        run.executed.push(node.clone());
        run.completed.push((sig, ui));
        run.node_state(&st, node, "finished", 1.0, 1.0);
        k += 1.0;
    }
    let mut st = sh.lock();
    if st.check_run(epoch) == Check::Dropped {
        return;
    }
    run.finish(&mut st, Outcome::Success, &sigs);
}

/// SaveImage: `folder_paths.get_save_image_path` + one PNG per latent in the batch.
fn save_images(st: &mut Inner, run: &Run, node: &str) -> Result<Value, String> {
    const SIZE: u32 = 8;
    let inputs = &run.graph[node]["inputs"];
    let prefix = inputs["filename_prefix"]
        .as_str()
        .unwrap_or("ComfyUI")
        .replace("%width%", &SIZE.to_string())
        .replace("%height%", &SIZE.to_string());
    let outside = || {
        format!(
            "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: /ComfyUI/output/{prefix}\n         output_dir: /ComfyUI/output\n         commonpath: /"
        )
    };
    let norm = normalize_rel(&prefix).ok_or_else(outside)?;
    let (subfolder, filename) = match norm.rsplit_once('/') {
        Some((d, f)) => (d.to_string(), f.to_string()),
        None => (String::new(), norm.clone()),
    };
    let batch = upstream_batch_size(&run.graph, node).clamp(1, 16);
    let key = (subfolder.clone(), filename.clone());
    let mut counter = st.image_counters.get(&key).copied().unwrap_or(0) + 1;
    let mut texts = vec![(
        "prompt".to_string(),
        py_json(&Value::Object(run.graph.clone())),
    )];
    if let Some(Value::Object(extra)) = run.item.extra_data.get("extra_pnginfo") {
        for (k, v) in extra {
            if !k.is_empty() && k.len() < 80 && k.is_ascii() && !k.contains('\0') {
                texts.push((k.clone(), py_json(v)));
            }
        }
    }
    let mut results = Vec::new();
    for b in 0..batch {
        let name = format!(
            "{}_{counter:05}_.png",
            filename.replace("%batch_num%", &b.to_string())
        );
        let seed = fnv1a(format!("{}#{b}#{name}", run.pid()).as_bytes());
        let png = make_png(SIZE, seed, &texts);
        st.images
            .insert((subfolder.clone(), name.clone()), Arc::new(png));
        results.push(json!({"filename": name, "subfolder": subfolder, "type": "output"}));
        counter += 1;
    }
    st.image_counters.insert(key, counter - 1);
    Ok(json!({"images": results}))
}

fn upstream_batch_size(graph: &Map<String, Value>, node: &str) -> u64 {
    let mut stack = vec![node.to_string()];
    let mut seen = HashSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(n) = graph.get(&id) else { continue };
        if n["class_type"] == "EmptyLatentImage" {
            return n["inputs"]["batch_size"].as_u64().unwrap_or(1);
        }
        if let Some(Value::Object(inputs)) = n.get("inputs") {
            for v in inputs.values() {
                if let Some(src) = v.as_array().and_then(|a| a.first()).and_then(Value::as_str) {
                    stack.push(src.to_string());
                }
            }
        }
    }
    1
}

// ───────────────────────────── PNG ─────────────────────────────

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// A zlib stream made of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    let last = chunks.len() - 1;
    for (n, c) in chunks.iter().enumerate() {
        out.push(u8::from(n == last));
        let len = c.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend(adler32(data).to_be_bytes());
    out
}

fn png_chunk(out: &mut Vec<u8>, ty: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(ty);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A `size`×`size` 8-bit RGB PNG whose colours come from `seed`, with `tEXt` chunks.
fn make_png(size: u32, seed: u64, texts: &[(String, String)]) -> Vec<u8> {
    let [r, g, b, ..] = seed.to_le_bytes();
    let mut raw = Vec::with_capacity(((1 + 3 * size) * size) as usize);
    for y in 0..size {
        raw.push(0);
        for x in 0..size {
            raw.push(r.wrapping_add((x * 16) as u8));
            raw.push(g.wrapping_add((y * 16) as u8));
            raw.push(b ^ ((x + y) * 8) as u8);
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(size.to_be_bytes());
    ihdr.extend(size.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    for (k, v) in texts {
        let mut d = k.as_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(v.as_bytes());
        png_chunk(&mut png, b"tEXt", &d);
    }
    png_chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

// ───────────────────────────── ids & time ─────────────────────────────

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A UUID v4-shaped id from a process-wide counter (no randomness needed, unique per process).
fn mint_uuid() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    });
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let hi = splitmix64(seed ^ splitmix64(n));
    let lo = splitmix64(hi ^ n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        8 | ((lo >> 62) & 3),
        (lo >> 48) & 0xfff,
        lo & 0xffff_ffff_ffff
    )
}

/// `str(uuid.UUID(v)) == v`: lower-case hex, hyphens at 8, 13, 18, 23.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }
        })
}

// ───────────────────────────── Python-flavoured values ─────────────────────────────

#[derive(Clone, Copy, Debug)]
enum PyNum {
    Int(i128),
    Float(f64),
}

impl PyNum {
    fn from_json(v: &Value) -> Option<PyNum> {
        let n = v.as_number()?;
        if let Some(i) = n.as_i64() {
            Some(PyNum::Int(i128::from(i)))
        } else if let Some(u) = n.as_u64() {
            Some(PyNum::Int(i128::from(u)))
        } else {
            n.as_f64().map(PyNum::Float)
        }
    }

    fn lt(self, other: PyNum) -> bool {
        match (self, other) {
            (PyNum::Int(a), PyNum::Int(b)) => a < b,
            (a, b) => a.f64() < b.f64(),
        }
    }

    fn f64(self) -> f64 {
        match self {
            PyNum::Int(i) => i as f64,
            PyNum::Float(f) => f,
        }
    }

    fn json(self) -> Value {
        match self {
            PyNum::Int(i) => {
                if let Ok(v) = i64::try_from(i) {
                    json!(v)
                } else if let Ok(v) = u64::try_from(i) {
                    json!(v)
                } else {
                    json!(i as f64)
                }
            }
            PyNum::Float(f) => json!(f),
        }
    }

    fn repr(self) -> String {
        match self {
            PyNum::Int(i) => i.to_string(),
            PyNum::Float(f) => py_float_repr(f),
        }
    }
}

fn py_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python `int(v)`.
fn coerce_int(v: &Value) -> Result<PyNum, String> {
    match v {
        Value::Bool(b) => Ok(PyNum::Int(i128::from(*b))),
        Value::Number(_) => match PyNum::from_json(v) {
            Some(PyNum::Float(f)) => Ok(PyNum::Int(f.trunc() as i128)),
            Some(n) => Ok(n),
            None => Err("invalid number".into()),
        },
        Value::String(s) => parse_py_int(s)
            .map(PyNum::Int)
            .ok_or_else(|| format!("invalid literal for int() with base 10: {}", py_str_repr(s))),
        other => Err(format!(
            "int() argument must be a string, a bytes-like object or a real number, not '{}'",
            py_type_name(other)
        )),
    }
}

/// Python `float(v)`.
fn coerce_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64().ok_or_else(|| "invalid number".into()),
        Value::String(s) => parse_py_float(s)
            .ok_or_else(|| format!("could not convert string to float: {}", py_str_repr(s))),
        other => Err(format!(
            "float() argument must be a string or a real number, not '{}'",
            py_type_name(other)
        )),
    }
}

fn strip_underscores(digits: &str) -> Option<String> {
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    Some(digits.replace('_', ""))
}

fn parse_py_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let clean = strip_underscores(digits)?;
    if clean.is_empty() || !clean.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i128 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let clean = strip_underscores(t)?;
    if clean.is_empty()
        || !clean
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    clean.parse::<f64>().ok()
}

/// Python's `repr(float)`.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{f:?}");
    match s.split_once('e') {
        Some((mant, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mant}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Python's `repr(str)`.
fn py_str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Python's `repr()` of the value a JSON document decodes to.
fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(_) => PyNum::from_json(v).map(PyNum::repr).unwrap_or_default(),
        Value::String(s) => py_str_repr(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `str()`.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python truthiness; a missing key is falsy.
fn py_truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// `json.dumps(v)` with Python's defaults: `", "` and `": "` separators, `ensure_ascii=True`.
fn py_json(v: &Value) -> String {
    let mut out = String::new();
    write_py_json(&mut out, v);
    out
}

fn write_py_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    out.push_str(&py_float_repr(f));
                }
            }
        }
        Value::String(s) => write_py_json_str(out, s),
        Value::Array(a) => {
            out.push('[');
            for (n, x) in a.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_py_json(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (n, (k, x)) in m.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_py_json_str(out, k);
                out.push_str(": ");
                write_py_json(out, x);
            }
            out.push('}');
        }
    }
}

fn write_py_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

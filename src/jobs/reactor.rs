//! The job reactor: the only code that drives ComfyUI. It reads the jobs projection, hands queued
//! jobs to the healthiest, least busy backend, watches them there, saves their images, and
//! records every outcome as an event. Its own state (which backend is up, why a job waits, live
//! progress) is derived and kept in memory only; the ledger is the record.
//!
//! No job is lost and none runs twice: a job's ComfyUI `prompt_id` is derived from its id (and
//! its retry round), and before any POST the reactor asks the backend whether it already has
//! that id, in history or in its queue. It posts only when neither knows it.

use crate::engine;
use crate::handle::{Handle, Request};
use crate::jobs::comfy::{self, Backend, ComfyError, Known, Outcome};
use crate::jobs::png;
use crate::jobs::projection::{Job, JobState};
use crate::jobs::request;
use crate::library::command::Command;
use crate::library::files;
use crate::store::event::{Event, JobSpec, Origin};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

/// Identical execution errors after which a job is set aside.
pub const SAME_FAILURE_LIMIT: usize = 3;
/// Failed executions of any kind after which a job is set aside.
pub const FAILURE_LIMIT: usize = 5;
/// How long a backend's model lists are trusted before they are read again.
const MODELS_TTL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ReactorOptions {
    pub backends: Vec<String>,
    pub uploads: PathBuf,
    /// The WebSocket client id GAZE submits under (progress for its prompts comes to it).
    pub client_id: String,
    /// Jobs one backend holds at a time (queued or running there).
    pub max_in_flight: usize,
    /// How often in-flight jobs are checked when no progress message says they finished.
    pub poll: Duration,
}

impl Default for ReactorOptions {
    fn default() -> Self {
        ReactorOptions {
            backends: vec!["http://127.0.0.1:8188".into()],
            uploads: "static/uploads".into(),
            client_id: "gaze".into(),
            max_in_flight: 16,
            poll: Duration::from_millis(250),
        }
    }
}

/// What a backend looks like from here.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BackendStatus {
    pub url: String,
    /// `flag` (`--comfy` / `COMFYUI_URL`: always there) or `settings` (added at run time).
    pub source: &'static str,
    /// Removed from the settings: takes no new jobs, finishes the ones it holds.
    pub removed: bool,
    pub healthy: bool,
    /// Whether FaceDetailer and its detector provider are installed; `None` until asked.
    pub impact_pack: Option<bool>,
    pub version: Option<String>,
    pub in_flight: usize,
    pub error: Option<String>,
}

/// A live update for browsers. Not stored.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    Progress {
        job: String,
        node: Option<String>,
        value: u64,
        max: u64,
    },
    Waiting {
        job: String,
        reason: String,
    },
    Backends {
        backends: Vec<BackendStatus>,
    },
}

#[derive(Default)]
struct LiveState {
    waiting: HashMap<u128, String>,
    progress: HashMap<u128, (Option<String>, u64, u64)>,
    backends: Vec<BackendStatus>,
    /// KSampler's sampler and scheduler names, from the first healthy backend that answered.
    samplers: Option<(Vec<String>, Vec<String>)>,
}

/// The reactor's derived state, shared with the web layer.
#[derive(Clone)]
pub struct Live {
    state: Arc<Mutex<LiveState>>,
    tx: broadcast::Sender<LiveEvent>,
}

impl Live {
    fn new(urls: &[String]) -> Live {
        let (tx, _) = broadcast::channel(1024);
        let backends = urls
            .iter()
            .map(|u| BackendStatus {
                url: u.clone(),
                source: "flag",
                removed: false,
                healthy: false,
                impact_pack: None,
                version: None,
                in_flight: 0,
                error: Some("not checked yet".into()),
            })
            .collect();
        Live {
            state: Arc::new(Mutex::new(LiveState {
                backends,
                ..LiveState::default()
            })),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }

    /// Why a queued job is waiting, if it is.
    pub fn waiting(&self, job: u128) -> Option<String> {
        self.lock().waiting.get(&job).cloned()
    }

    /// The last progress of a running job: (node, step, of).
    pub fn progress(&self, job: u128) -> Option<(Option<String>, u64, u64)> {
        self.lock().progress.get(&job).cloned()
    }

    pub fn backends(&self) -> Vec<BackendStatus> {
        self.lock().backends.clone()
    }

    /// The sampler and scheduler names a backend offers, once one has answered.
    pub fn sampler_lists(&self) -> Option<(Vec<String>, Vec<String>)> {
        self.lock().samplers.clone()
    }

    fn set_waiting(&self, job: u128, reason: Option<String>) {
        let mut s = self.lock();
        let changed = match &reason {
            Some(r) => s.waiting.insert(job, r.clone()).as_ref() != Some(r),
            None => s.waiting.remove(&job).is_some(),
        };
        drop(s);
        if let (true, Some(reason)) = (changed, reason) {
            let _ = self.tx.send(LiveEvent::Waiting {
                job: ulid::Ulid::from(job).to_string(),
                reason,
            });
        }
    }
}

/// A backend's model lists, for validating workflows before they are sent.
#[derive(Default, Debug)]
struct Models {
    checkpoints: Option<Vec<String>>,
    loras: Option<Vec<String>>,
    vaes: Option<Vec<String>>,
}

impl Models {
    fn known(&self) -> engine::KnownModels<'_> {
        engine::KnownModels {
            checkpoints: self.checkpoints.as_deref(),
            loras: self.loras.as_deref(),
            vaes: self.vaes.as_deref(),
            ..Default::default()
        }
    }
}

/// Where a backend came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// `--comfy` / `COMFYUI_URL`: always present, cannot be removed at run time.
    Flag,
    /// The `comfy_backends` setting, added and removed at run time.
    Settings,
}

struct Slot {
    backend: Backend,
    source: Source,
    /// No longer wanted: takes no new jobs, keeps following the ones it holds.
    removed: bool,
    models: Arc<Models>,
    models_at: Option<Instant>,
    healthy: bool,
    impact: Option<bool>,
    version: Option<String>,
    error: Option<String>,
    retry_at: Instant,
    backoff: Duration,
}

impl Slot {
    fn new(url: &str, source: Source) -> Result<Slot, String> {
        Ok(Slot {
            backend: Backend::new(url)?,
            source,
            removed: false,
            models: Arc::default(),
            models_at: None,
            healthy: false,
            impact: None,
            version: None,
            error: None,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(250),
        })
    }

    fn down(&mut self, e: &ComfyError) {
        self.healthy = false;
        self.error = Some(e.summary());
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(10));
    }
}

/// A job the reactor has handed to a backend.
#[derive(Clone, Debug)]
struct Tracked {
    slot: usize,
    prompt_id: String,
}

struct Reactor {
    handle: Handle,
    opts: ReactorOptions,
    slots: Vec<Slot>,
    tracked: HashMap<u128, Tracked>,
    /// Prompt ids whose progress says they are over: check them now.
    finished_hint: HashSet<String>,
    live: Live,
    /// The ledger seq when this reactor started: jobs requested later cannot have been posted
    /// by an earlier run of the app.
    started_seq: u64,
    /// Prompt ids this reactor has posted (or tried to post).
    posted: HashSet<String>,
    /// Full specs (recipes) of the jobs in hand, read from the ledger when first needed.
    specs: HashMap<u128, Arc<JobSpec>>,
    /// Progress from every backend's socket, tagged with its slot.
    progress_tx: mpsc::UnboundedSender<(usize, comfy::Progress)>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    /// The settings text the slots were last matched against.
    settings_seen: Option<String>,
}

/// Starts the reactor on the current tokio runtime. `opts.backends` (the flags) are always
/// there; backends in the `comfy_backends` setting join and leave at run time.
pub fn start(handle: Handle, opts: ReactorOptions) -> Result<Live, String> {
    let mut slots = Vec::new();
    for url in &opts.backends {
        slots.push(Slot::new(url, Source::Flag)?);
    }
    let live = Live::new(&opts.backends);
    let started_seq = handle.library().seq;
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let reactor = Reactor {
        started_seq,
        posted: HashSet::new(),
        specs: HashMap::new(),
        handle,
        opts,
        slots,
        tracked: HashMap::new(),
        finished_hint: HashSet::new(),
        live: live.clone(),
        progress_tx,
        watchers: Vec::new(),
        settings_seen: None,
    };
    tokio::spawn(reactor.run(progress_rx));
    Ok(live)
}

/// What a test of a ComfyUI URL found (the settings page's "Test" button).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Probe {
    pub url: String,
    pub ok: bool,
    pub version: Option<String>,
    pub devices: Vec<String>,
    /// FaceDetailer and its detector provider are installed.
    pub impact_pack: Option<bool>,
    pub checkpoints: Option<usize>,
    pub loras: Option<usize>,
    pub error: Option<String>,
}

/// Asks a ComfyUI at `url` what it is, without sending it any work.
pub async fn probe(url: &str) -> Probe {
    let mut p = Probe {
        url: url.trim().trim_end_matches('/').to_string(),
        ok: false,
        version: None,
        devices: Vec::new(),
        impact_pack: None,
        checkpoints: None,
        loras: None,
        error: None,
    };
    let backend = match Backend::new(url) {
        Ok(b) => b,
        Err(e) => {
            p.error = Some(e);
            return p;
        }
    };
    match backend.system_stats().await {
        Ok(stats) => {
            p.ok = true;
            p.version = stats.comfyui_version;
            p.devices = stats.devices;
        }
        Err(e) => {
            p.error = Some(e.summary());
            return p;
        }
    }
    let mut impact = true;
    for class in engine::workflow::IMPACT_CLASSES {
        match backend.has_node(class).await {
            Ok(has) => impact &= has,
            Err(e) => {
                p.error = Some(e.summary());
                return p;
            }
        }
    }
    p.impact_pack = Some(impact);
    p.checkpoints = backend.models("checkpoints").await.ok().map(|l| l.len());
    p.loras = backend.models("loras").await.ok().map(|l| l.len());
    p
}

fn job_text(id: u128) -> String {
    ulid::Ulid::from(id).to_string()
}

/// The prompt id of a job's current retry round: a fresh id after each failed execution, so a
/// retry is not mistaken for the failed run in ComfyUI's history.
pub fn prompt_id(job: &Job) -> String {
    let round = job.failures.len() as u64;
    if round == 0 {
        return comfy::prompt_id_for(job.id);
    }
    // A full 128-bit mask per round: unlike adding the round, it cannot land on a
    // neighbouring job's id.
    let mask = (u128::from(engine::doc::splitmix64(round)) << 64)
        | u128::from(engine::doc::splitmix64(round ^ 0x5eed));
    comfy::prompt_id_for(job.id ^ mask)
}

impl Reactor {
    async fn run(mut self, mut prx: mpsc::UnboundedReceiver<(usize, comfy::Progress)>) {
        let mut events = self.handle.subscribe();
        for i in 0..self.slots.len() {
            self.watch(i);
        }
        self.sync_backends();
        loop {
            let progressed = self.step().await;
            if progressed {
                tokio::task::yield_now().await;
                continue;
            }
            let wait = if self.tracked.is_empty() {
                Duration::from_secs(1)
            } else {
                self.opts.poll
            };
            let next_retry = self
                .slots
                .iter()
                .filter(|s| !s.healthy)
                .map(|s| s.retry_at.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(wait);
            tokio::select! {
                r = events.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = r {
                        break;
                    }
                }
                Some((_, p)) = prx.recv() => self.on_progress(p),
                _ = tokio::time::sleep(wait.min(next_retry).max(Duration::from_millis(5))) => {}
            }
        }
        for w in &self.watchers {
            w.abort();
        }
    }

    /// Starts following slot `i`'s progress socket.
    fn watch(&mut self, i: usize) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.watchers.push(self.slots[i].backend.watch_progress(
            &self.opts.client_id,
            tx,
            std::future::pending::<()>(),
        ));
        let ptx = self.progress_tx.clone();
        self.watchers.push(tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if ptx.send((i, p)).is_err() {
                    break;
                }
            }
        }));
    }

    /// Matches the slots to the `comfy_backends` setting: new URLs get a slot (appended: tracked
    /// jobs refer to slots by index), removed ones stop taking jobs, re-added ones take jobs
    /// again. Flag backends are never touched.
    fn sync_backends(&mut self) {
        let settings = {
            let lib = self.handle.library();
            if self.settings_seen.as_deref() == Some(lib.settings.as_str()) {
                return;
            }
            lib.settings.clone()
        };
        let wanted = crate::library::settings::backends(&settings);
        for slot in self
            .slots
            .iter_mut()
            .filter(|s| s.source == Source::Settings)
        {
            let want = wanted.iter().any(|u| u == slot.backend.url());
            if slot.removed == want {
                slot.removed = !want;
                tracing::info!(
                    "ComfyUI at {} {}",
                    slot.backend.url(),
                    if want {
                        "is back in the settings"
                    } else {
                        "was removed: it finishes the jobs it holds and takes no new ones"
                    }
                );
            }
        }
        for url in wanted {
            if self.slots.iter().any(|s| s.backend.url() == url) {
                continue;
            }
            match Slot::new(&url, Source::Settings) {
                Ok(slot) => {
                    tracing::info!("ComfyUI at {url} added from the settings");
                    self.slots.push(slot);
                    self.watch(self.slots.len() - 1);
                }
                Err(e) => tracing::warn!("backend {url} from the settings: {e}"),
            }
        }
        self.settings_seen = Some(settings);
    }

    /// Whether slot `i` holds jobs.
    fn holds_jobs(&self, i: usize) -> bool {
        self.tracked.values().any(|t| t.slot == i)
    }

    fn job_of_prompt(&self, prompt_id: &str) -> Option<u128> {
        self.tracked
            .iter()
            .find(|(_, t)| t.prompt_id == prompt_id)
            .map(|(id, _)| *id)
    }

    fn on_progress(&mut self, p: comfy::Progress) {
        match p {
            comfy::Progress::Step {
                prompt_id,
                node,
                value,
                max,
            } => {
                if let Some(job) = self.job_of_prompt(&prompt_id) {
                    self.live
                        .lock()
                        .progress
                        .insert(job, (node.clone(), value, max));
                    let _ = self.live.tx.send(LiveEvent::Progress {
                        job: job_text(job),
                        node,
                        value,
                        max,
                    });
                }
            }
            comfy::Progress::Finished { prompt_id }
            | comfy::Progress::Error { prompt_id, .. }
            | comfy::Progress::Interrupted { prompt_id, .. } => {
                self.finished_hint.insert(prompt_id);
            }
            _ => {}
        }
    }

    fn publish_backends(&self) {
        let statuses: Vec<BackendStatus> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, s)| !s.removed || self.holds_jobs(*i))
            .map(|(i, s)| BackendStatus {
                url: s.backend.url().to_string(),
                source: match s.source {
                    Source::Flag => "flag",
                    Source::Settings => "settings",
                },
                removed: s.removed,
                healthy: s.healthy,
                impact_pack: s.impact,
                version: s.version.clone(),
                in_flight: self.tracked.values().filter(|t| t.slot == i).count(),
                error: s.error.clone(),
            })
            .collect();
        let mut live = self.live.lock();
        if live.backends != statuses {
            live.backends = statuses.clone();
            drop(live);
            let _ = self
                .live
                .tx
                .send(LiveEvent::Backends { backends: statuses });
        }
    }

    /// One pass over everything. Returns whether anything moved.
    async fn step(&mut self) -> bool {
        self.sync_backends();
        self.check_health().await;
        let mut events = Vec::new();
        self.follow_cancellations().await;
        self.adopt();
        // New work first: it is what a user is waiting to see start.
        self.top_up_endless().await;
        let dispatched = self.dispatch(&mut events).await;
        let checked = self.check_in_flight(&mut events).await;
        self.publish_backends();
        if events.is_empty() {
            return false;
        }
        let n = events.len();
        match self
            .handle
            .run(
                Origin::Reactor,
                Request::Command(Command::Record { events }),
            )
            .await
        {
            Ok(_) => {}
            Err(e) => tracing::error!("reactor could not record {n} outcome(s): {e}"),
        }
        checked || dispatched
    }

    async fn check_health(&mut self) {
        let now = Instant::now();
        // A removed backend is only asked about while it holds jobs.
        let idle_removed: Vec<bool> = (0..self.slots.len())
            .map(|i| self.slots[i].removed && !self.holds_jobs(i))
            .collect();
        for (_, slot) in self
            .slots
            .iter_mut()
            .enumerate()
            .filter(|(i, s)| !s.healthy && s.retry_at <= now && !idle_removed[*i])
        {
            match slot.backend.system_stats().await {
                Ok(stats) => {
                    let mut impact = true;
                    for class in engine::workflow::IMPACT_CLASSES {
                        match slot.backend.has_node(class).await {
                            Ok(has) => impact &= has,
                            Err(e) => {
                                slot.down(&e);
                                continue;
                            }
                        }
                    }
                    if slot.error.is_some() || !slot.healthy {
                        tracing::info!(
                            "ComfyUI at {} is up (Impact Pack: {impact})",
                            slot.backend.url()
                        );
                    }
                    slot.healthy = true;
                    slot.impact = Some(impact);
                    slot.version = stats.comfyui_version;
                    slot.error = None;
                    slot.backoff = Duration::from_millis(250);
                }
                Err(e) => {
                    tracing::debug!("ComfyUI at {} is down: {}", slot.backend.url(), e.summary());
                    slot.down(&e);
                }
            }
        }
        // Model lists change when files are added: refresh them now and then.
        for slot in self.slots.iter_mut().filter(|s| s.healthy && !s.removed) {
            if slot
                .models_at
                .is_some_and(|t| now.duration_since(t) < MODELS_TTL)
            {
                continue;
            }
            // A server without `/models` (or that fails) leaves the lists unknown.
            let list = |r: Result<Vec<String>, ComfyError>| r.ok();
            slot.models = Arc::new(Models {
                checkpoints: list(slot.backend.models("checkpoints").await),
                loras: list(slot.backend.models("loras").await),
                vaes: list(slot.backend.models("vae").await),
            });
            slot.models_at = Some(now);
            if let Ok(lists) = slot.backend.sampler_lists().await {
                self.live.lock().samplers = Some(lists);
            }
        }
    }

    /// Cancelled jobs that are still at a backend: take them out of its queue or interrupt them.
    async fn follow_cancellations(&mut self) {
        let cancelled: Vec<(u128, Tracked)> = {
            let lib = self.handle.library();
            self.tracked
                .iter()
                .filter(|(id, _)| {
                    lib.jobs
                        .get(**id)
                        .is_none_or(|j| j.state == JobState::Cancelled)
                })
                .map(|(id, t)| (*id, t.clone()))
                .collect()
        };
        for (id, t) in cancelled {
            if let Some(slot) = self.slots.get(t.slot) {
                match slot.backend.cancel(&t.prompt_id).await {
                    Ok(found) => {
                        tracing::info!("cancelled job {} at ComfyUI ({found:?})", job_text(id))
                    }
                    Err(e) => tracing::warn!(
                        "could not cancel job {} at ComfyUI: {}",
                        job_text(id),
                        e.summary()
                    ),
                }
            }
            self.tracked.remove(&id);
            self.live.lock().progress.remove(&id);
        }
    }

    /// Submitted jobs the reactor does not follow yet (after a restart) are followed again.
    fn adopt(&mut self) {
        let handle = self.handle.clone();
        let lib = handle.library();
        let mut new_slots = Vec::new();
        for id in &lib.jobs.submitted {
            if self.tracked.contains_key(id) {
                continue;
            }
            let Some(job) = lib.jobs.get(*id) else {
                continue;
            };
            let (Some(url), Some(pid)) = (&job.backend, &job.prompt_id) else {
                continue;
            };
            let url = url.trim_end_matches('/');
            let slot = match self.slots.iter().position(|s| s.backend.url() == url) {
                Some(i) => i,
                // A backend no longer configured (removed from the settings): it is followed
                // for the jobs it holds, and given no new ones.
                None => match Slot::new(url, Source::Settings) {
                    Ok(mut s) => {
                        s.removed = true;
                        self.slots.push(s);
                        new_slots.push(self.slots.len() - 1);
                        self.slots.len() - 1
                    }
                    Err(_) => 0,
                },
            };
            self.tracked.insert(
                *id,
                Tracked {
                    slot,
                    prompt_id: pid.clone(),
                },
            );
        }
        drop(lib);
        for i in new_slots {
            self.watch(i);
        }
    }

    /// Applies what talking to a backend about one job gave.
    fn apply(&mut self, slot: usize, id: u128, step: JobStep, events: &mut Vec<Event>) -> bool {
        match step {
            JobStep::Wait { down: Some(e) } => {
                let reason = format!(
                    "ComfyUI at {} is unavailable: {}",
                    self.slots[slot].backend.url(),
                    e.summary()
                );
                self.slots[slot].down(&e);
                if !self.tracked.contains_key(&id) {
                    self.live.set_waiting(id, Some(reason));
                }
                false
            }
            JobStep::Wait { down: None } => false,
            JobStep::Done {
                events: more,
                track,
            } => {
                events.extend(more);
                match track {
                    Some(prompt_id) => {
                        self.tracked.insert(id, Tracked { slot, prompt_id });
                    }
                    None => {
                        // Done with this job: what was kept to follow it can go.
                        if let Some(t) = self.tracked.remove(&id) {
                            self.posted.remove(&t.prompt_id);
                        }
                        self.specs.remove(&id);
                        self.live.lock().progress.remove(&id);
                    }
                }
                self.live.set_waiting(id, None);
                true
            }
        }
    }

    /// A job's full spec, cached while the job is in hand.
    fn spec_of(&mut self, id: u128) -> Option<Arc<JobSpec>> {
        if let Some(s) = self.specs.get(&id) {
            return Some(s.clone());
        }
        match self.handle.job_spec_shared(id) {
            Ok(spec) => {
                self.specs.insert(id, spec.clone());
                Some(spec)
            }
            Err(e) => {
                tracing::error!("job {}: {e}", job_text(id));
                None
            }
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            uploads: self.opts.uploads.clone(),
            client_id: self.opts.client_id.clone(),
            models: Arc::default(),
        }
    }

    /// Asks each backend about the jobs it holds and finishes the ones that ended, all jobs
    /// at once.
    async fn check_in_flight(&mut self, events: &mut Vec<Event>) -> bool {
        let mut checks = Vec::new();
        for i in 0..self.slots.len() {
            let mine: Vec<(u128, Tracked)> = self
                .tracked
                .iter()
                .filter(|(_, t)| t.slot == i)
                .map(|(id, t)| (*id, t.clone()))
                .collect();
            if mine.is_empty() || !self.slots[i].healthy {
                continue;
            }
            let backend = self.slots[i].backend.clone();
            let queue = match backend.queue().await {
                Ok(q) => q,
                Err(e) => {
                    self.slots[i].down(&e);
                    continue;
                }
            };
            let held: HashSet<&String> = queue.running.iter().chain(&queue.pending).collect();
            for (id, t) in mine {
                let is_held = held.contains(&t.prompt_id);
                let hinted = self.finished_hint.remove(&t.prompt_id);
                if is_held && !hinted {
                    continue;
                }
                let job = self.handle.library().jobs.get(id).cloned();
                // Sent in this very step: its submission is not recorded yet; next time.
                if job.as_ref().is_some_and(|j| j.state == JobState::Queued) {
                    continue;
                }
                let (Some(job), Some(spec)) = (job, self.spec_of(id)) else {
                    self.tracked.remove(&id);
                    continue;
                };
                let ctx = self.ctx();
                let backend = backend.clone();
                checks.push(async move {
                    (
                        i,
                        id,
                        check_one(backend, ctx, job, spec, t.prompt_id, is_held).await,
                    )
                });
            }
        }
        // Hints for prompts no longer followed (finished, cancelled) are stale now.
        self.finished_hint.clear();
        let mut moved = false;
        for (slot, id, step) in futures_util::future::join_all(checks).await {
            moved |= self.apply(slot, id, step, events);
        }
        moved
    }

    /// Hands queued jobs to backends with room, least busy first, all at once.
    async fn dispatch(&mut self, events: &mut Vec<Event>) -> bool {
        let (paused, queued): (bool, Vec<Job>) = {
            let lib = self.handle.library();
            let cap = self.opts.max_in_flight * self.slots.len().max(1);
            (
                lib.jobs.paused,
                lib.jobs
                    .queued
                    .iter()
                    .filter(|id| !self.tracked.contains_key(id))
                    .take(cap)
                    .filter_map(|id| lib.jobs.get(*id).cloned())
                    .collect(),
            )
        };
        if queued.is_empty() {
            return false;
        }
        if paused {
            for j in &queued {
                self.live
                    .set_waiting(j.id, Some("the queue is paused".into()));
            }
            return false;
        }
        let mut load: Vec<usize> = (0..self.slots.len())
            .map(|i| self.tracked.values().filter(|t| t.slot == i).count())
            .collect();
        let mut sends = Vec::new();
        for job in queued {
            let choice = (0..self.slots.len())
                .filter(|&i| {
                    self.slots[i].healthy
                        && !self.slots[i].removed
                        && load[i] < self.opts.max_in_flight
                })
                .min_by_key(|&i| load[i]);
            let Some(slot) = choice else {
                let reasons: Vec<String> = self
                    .slots
                    .iter()
                    .filter(|s| !s.removed)
                    .map(|s| match &s.error {
                        Some(e) => format!("{}: {e}", s.backend.url()),
                        None => format!("{}: busy", s.backend.url()),
                    })
                    .collect();
                self.live.set_waiting(
                    job.id,
                    Some(format!(
                        "waiting for a ComfyUI backend ({})",
                        reasons.join("; ")
                    )),
                );
                continue;
            };
            let Some(spec) = self.spec_of(job.id) else {
                continue;
            };
            load[slot] += 1;
            let backend = self.slots[slot].backend.clone();
            let vanilla = self.slots[slot].impact == Some(false);
            let mut ctx = self.ctx();
            ctx.models = self.slots[slot].models.clone();
            let pid = prompt_id(&job);
            let id = job.id;
            // Only a job this run has never posted, requested after it started, can skip
            // asking the backend first: nobody else can have sent it.
            let fresh = job.requested_seq > self.started_seq
                && job.attempts == 0
                && self.posted.insert(pid.clone());
            sends.push(async move {
                (
                    slot,
                    id,
                    submit_one(backend, ctx, job, spec, pid, vanilla, !fresh).await,
                )
            });
        }
        let mut moved = false;
        for (slot, id, step) in futures_util::future::join_all(sends).await {
            moved |= self.apply(slot, id, step, events);
        }
        moved
    }

    /// Keeps one job queued for every running endless session.
    async fn top_up_endless(&mut self) {
        let sessions: Vec<(u128, String)> = {
            let lib = self.handle.library();
            if lib.jobs.paused {
                return;
            }
            lib.jobs
                .endless
                .iter()
                .filter(|(id, _)| lib.jobs.endless_open(**id) == 0)
                .map(|(id, r)| (*id, r.clone()))
                .collect()
        };
        for (endless, request) in sessions {
            let made = {
                let lib = self.handle.library();
                request::job_from_json(&lib, &request, crate::handle::random_seed(), Some(endless))
            };
            let cmd = match made {
                Ok(spec) => Command::Enqueue {
                    jobs: vec![(u128::from(ulid::Ulid::generate()), spec)],
                },
                Err(e) => {
                    tracing::warn!("endless generation {} stops: {e}", job_text(endless));
                    Command::StopEndless { endless }
                }
            };
            if let Err(e) = self
                .handle
                .run(Origin::Reactor, Request::Command(cmd))
                .await
            {
                tracing::error!("endless generation {}: {e}", job_text(endless));
            }
        }
    }
}

/// Where the reactor keeps images and which client id it submits under.
struct Ctx {
    uploads: PathBuf,
    client_id: String,
    /// The backend's model lists, when known.
    models: Arc<Models>,
}

/// What became of one job after talking to its backend.
enum JobStep {
    /// Nothing to record yet: still running, or the backend failed (`down`).
    Wait { down: Option<ComfyError> },
    /// Record these events; `track` is the prompt id the job is (still) at the backend under.
    Done {
        events: Vec<Event>,
        track: Option<String>,
    },
}

/// Looks at one job the backend no longer holds (or says ended): finished, or forgotten and
/// sent again under the same prompt id.
async fn check_one(
    backend: Backend,
    ctx: Ctx,
    job: Job,
    spec: Arc<JobSpec>,
    pid: String,
    held: bool,
) -> JobStep {
    match backend.history(&pid).await {
        Err(e) => JobStep::Wait { down: Some(e) },
        Ok(None) if held => JobStep::Wait { down: None },
        // ComfyUI forgot it (a restart): send it again, same prompt id.
        Ok(None) => {
            let vanilla = job.vanilla;
            submit_one(backend, ctx, job, spec, pid, vanilla, true).await
        }
        Ok(Some(outcome)) => finish_one(&backend, &ctx, &job, &spec, outcome).await,
    }
}

/// Posts a job unless the backend already has it (an earlier run of the app may have posted it
/// before it could record that).
async fn submit_one(
    backend: Backend,
    ctx: Ctx,
    job: Job,
    spec: Arc<JobSpec>,
    pid: String,
    vanilla: bool,
    look_first: bool,
) -> JobStep {
    let submitted = Event::JobSubmitted {
        job: job.id,
        backend: backend.url().to_string(),
        prompt_id: pid.clone(),
        attempt: job.attempts + 1,
        vanilla,
    };
    let known = if look_first {
        backend.lookup(&pid).await
    } else {
        Ok(Known::Unknown)
    };
    match known {
        Err(e) => return JobStep::Wait { down: Some(e) },
        Ok(Known::Pending | Known::Running) => {
            return JobStep::Done {
                events: vec![submitted],
                track: Some(pid),
            };
        }
        Ok(Known::Finished(outcome)) => {
            return match finish_one(&backend, &ctx, &job, &spec, outcome).await {
                JobStep::Done { mut events, .. } => {
                    events.insert(0, submitted);
                    JobStep::Done {
                        events,
                        track: None,
                    }
                }
                JobStep::Wait { .. } => JobStep::Done {
                    events: vec![submitted],
                    track: Some(pid),
                },
            };
        }
        Ok(Known::Unknown) => {}
    }
    let checked = job_workflow(&spec, vanilla, &pid)
        .map_err(|e| (e, None))
        .and_then(|w| {
            // Names the backend does not have would only come back as a 400: say so now.
            match engine::validate(&w, &ctx.models.known()) {
                Ok(()) => Ok(w),
                Err(errors) => {
                    let node = errors.first().map(|e| e.node_id.clone());
                    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    Err((format!("not sent: {}", text.join("; ")), node))
                }
            }
        });
    let workflow = match checked {
        Ok(w) => w,
        Err((error, node)) => {
            return JobStep::Done {
                events: vec![Event::JobFailed {
                    job: job.id,
                    error,
                    node,
                    retryable: false,
                }],
                track: None,
            };
        }
    };
    match backend.submit(&workflow, &pid, &ctx.client_id).await {
        Ok(_) => JobStep::Done {
            events: vec![submitted],
            track: Some(pid),
        },
        Err(e @ ComfyError::Rejected { .. }) => {
            let node = match &e {
                ComfyError::Rejected { nodes, .. } => nodes.first().map(|n| n.node_id.clone()),
                _ => None,
            };
            JobStep::Done {
                events: vec![Event::JobFailed {
                    job: job.id,
                    error: format!("ComfyUI refused the workflow: {}", e.summary()),
                    node,
                    retryable: false,
                }],
                track: None,
            }
        }
        Err(e) => JobStep::Wait { down: Some(e) },
    }
}

/// Turns an ended prompt into events: saves the images of a success, decides between retry and
/// set-aside for a failure.
async fn finish_one(
    backend: &Backend,
    ctx: &Ctx,
    job: &Job,
    spec: &JobSpec,
    outcome: Outcome,
) -> JobStep {
    let id = job.id;
    let done = |events| JobStep::Done {
        events,
        track: None,
    };
    match outcome {
        Outcome::Success { images } => {
            let mut saved = Vec::new();
            for (n, image) in images.iter().enumerate() {
                match backend.view(image).await {
                    Ok(bytes) => match save_image(&ctx.uploads, job, spec, n, bytes).await {
                        Ok(path) => saved.push(path),
                        Err(e) => {
                            tracing::error!("job {}: {e}", job_text(id));
                            return JobStep::Wait { down: None };
                        }
                    },
                    Err(e) if e.retryable() => return JobStep::Wait { down: Some(e) },
                    Err(e) => {
                        return done(vec![Event::JobFailed {
                            job: id,
                            error: format!("ComfyUI lost the image: {}", e.summary()),
                            node: Some(image.node_id.clone()),
                            retryable: true,
                        }]);
                    }
                }
            }
            if saved.is_empty() {
                return done(vec![Event::JobFailed {
                    job: id,
                    error: "the workflow finished without saving an image".into(),
                    node: None,
                    retryable: false,
                }]);
            }
            let mut events = Vec::new();
            if let (true, Some((category, slug))) = (job.info.set_cover, &job.info.target) {
                events.push(Event::CoverSet {
                    category: *category,
                    slug: slug.clone(),
                    path: saved[0].clone(),
                });
            }
            events.push(Event::JobSucceeded {
                job: id,
                images: saved,
            });
            done(events)
        }
        Outcome::Failed { ref node_id, .. } => {
            let error = outcome.summary();
            let failed = Event::JobFailed {
                job: id,
                error: error.clone(),
                node: node_id.clone(),
                retryable: true,
            };
            let same = job.failures.iter().filter(|f| **f == error).count() + 1;
            if same >= SAME_FAILURE_LIMIT || job.failures.len() + 1 >= FAILURE_LIMIT {
                done(vec![
                    failed,
                    Event::JobSetAside {
                        job: id,
                        reason: format!(
                            "set aside after {} failed runs; last: {error}",
                            job.failures.len() + 1
                        ),
                    },
                ])
            } else {
                done(vec![failed])
            }
        }
        Outcome::Interrupted { node_id } => {
            if job.state == JobState::Cancelled {
                done(Vec::new())
            } else {
                done(vec![Event::JobFailed {
                    job: id,
                    error: "interrupted in ComfyUI".into(),
                    node: node_id,
                    retryable: false,
                }])
            }
        }
    }
}

/// The workflow to send for one submission of a job: the recipe's, as
/// `engine::workflow::sent_graph` makes it for this backend and prompt id (the audit derives
/// the same graph from the same inputs).
fn job_workflow(spec: &JobSpec, vanilla: bool, prompt_id: &str) -> Result<Value, String> {
    let recipe: Value = serde_json::from_str(&spec.recipe)
        .map_err(|e| format!("the job's recipe does not parse: {e}"))?;
    let workflow = recipe
        .get("workflow")
        .ok_or("the job's recipe has no workflow")?;
    Ok(engine::workflow::sent_graph(workflow, vanilla, prompt_id))
}

/// A PNG's A1111-style `parameters` text, so other tools' "PNG info" readers understand it.
pub fn a1111_parameters(recipe: &Value, job: u128) -> String {
    let prompts = &recipe["prompts"];
    let sampler = &recipe["workflow"]["3"]["inputs"];
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let model = recipe["checkpoint"]
        .as_str()
        .map(|c| {
            c.rsplit('/')
                .next()
                .unwrap_or(c)
                .trim_end_matches(".safetensors")
                .to_string()
        })
        .unwrap_or_default();
    let loras: Vec<String> = recipe["loras"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| format!("{}: {}", text(&l["name"]), text(&l["weight"])))
                .collect()
        })
        .unwrap_or_default();
    let mut s = format!(
        "{}\nNegative prompt: {}\nSteps: {}, Sampler: {}, Schedule type: {}, CFG scale: {}, Seed: {}, Size: {}x{}, Model: {}",
        text(&prompts["main"]),
        text(&prompts["negative"]),
        text(&sampler["steps"]),
        text(&sampler["sampler_name"]),
        text(&sampler["scheduler"]),
        text(&sampler["cfg"]),
        text(&recipe["seed"]),
        text(&recipe["width"]),
        text(&recipe["height"]),
        model
    );
    if !loras.is_empty() {
        s.push_str(&format!(", Lora: \"{}\"", loras.join(", ")));
    }
    s.push_str(&format!(", GAZE job: {}", job_text(job)));
    s
}

/// Where a job's images go: `uploads/<category>/<slug>/` or `uploads/generator/`.
fn image_dir(job: &Job) -> (PathBuf, String) {
    match &job.info.target {
        Some((c, slug)) if crate::library::category::is_slug(slug) => (
            PathBuf::from(c.key()).join(slug),
            format!("uploads/{}/{slug}", c.key()),
        ),
        _ => (PathBuf::from("generator"), "uploads/generator".to_string()),
    }
}

/// Saves one image of a job atomically, with GAZE's metadata added to a PNG. Returns its path
/// relative to the static root.
async fn save_image(
    uploads: &std::path::Path,
    job: &Job,
    spec: &JobSpec,
    n: usize,
    bytes: Vec<u8>,
) -> Result<String, String> {
    let recipe: Value = serde_json::from_str(&spec.recipe).unwrap_or(Value::Null);
    let (dir, rel) = image_dir(job);
    let id = job_text(job.id).to_lowercase();
    let uploads = uploads.to_path_buf();
    let gaze = json!({
        "job": job_text(job.id),
        "label": job.info.label,
        "seed": recipe["seed"],
        "prompts": recipe["prompts"],
        "checkpoint": recipe["checkpoint"],
        "loras": recipe["loras"],
        "versions": recipe["versions"],
    })
    .to_string();
    let params = a1111_parameters(&recipe, job.id);
    tokio::task::spawn_blocking(move || {
        let (data, ext) = match png::add_text(&bytes, &[("gaze", &gaze), ("parameters", &params)]) {
            Ok(with) => (with, "png"),
            Err(_) => {
                let ext = crate::library::uploads::image_kind(&bytes).unwrap_or("bin");
                (bytes, ext)
            }
        };
        let name = format!("{id}_{n}.{ext}");
        files::write_atomic(&uploads.join(&dir).join(&name), &data)
            .map_err(|e| format!("could not save {name}: {e}"))?;
        Ok(format!("{rel}/{name}"))
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_like_a1111() {
        let recipe = json!({
            "prompts": {"main": "1girl, smile", "negative": "lowres"},
            "workflow": {"3": {"inputs": {"steps": 28, "sampler_name": "euler_ancestral",
                                          "scheduler": "normal", "cfg": 5.5}}},
            "seed": 42, "width": 832, "height": 1216,
            "checkpoint": "Illustrious/wai_v14.safetensors",
            "loras": [{"name": "Illustrious/Looks/tifa.safetensors", "weight": 0.8}]
        });
        let p = a1111_parameters(&recipe, 1);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "1girl, smile");
        assert_eq!(lines[1], "Negative prompt: lowres");
        assert!(lines[2].starts_with(
            "Steps: 28, Sampler: euler_ancestral, Schedule type: normal, CFG scale: 5.5, Seed: 42, Size: 832x1216, Model: wai_v14"
        ), "{}", lines[2]);
        assert!(lines[2].contains("Lora: \"Illustrious/Looks/tifa.safetensors: 0.8\""));
    }

    #[test]
    fn prompt_ids_change_with_each_failed_round_only() {
        let spec = crate::store::event::JobSpec {
            label: String::new(),
            target: None,
            set_cover: false,
            recipe: String::new(),
            request: String::new(),
            batch: None,
            retry_of: None,
            endless: None,
        };
        let mut jobs = crate::jobs::projection::Jobs::default();
        jobs.apply(1, 0, &Event::JobRequested { job: 77, spec });
        let first = prompt_id(jobs.get(77).unwrap());
        assert_eq!(first, comfy::prompt_id_for(77));
        jobs.apply(
            2,
            0,
            &Event::JobSubmitted {
                job: 77,
                backend: "b".into(),
                prompt_id: first.clone(),
                attempt: 1,
                vanilla: false,
            },
        );
        assert_eq!(
            prompt_id(jobs.get(77).unwrap()),
            first,
            "a resubmission keeps the id"
        );
        jobs.apply(
            3,
            0,
            &Event::JobFailed {
                job: 77,
                error: "boom".into(),
                node: None,
                retryable: true,
            },
        );
        assert_ne!(
            prompt_id(jobs.get(77).unwrap()),
            first,
            "a retry after a failed run does not"
        );
        assert_eq!(jobs.get(77).unwrap().state, JobState::Queued);
    }
}

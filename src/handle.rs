//! The one write path. Every request goes to the writer thread, which does the IO a request
//! needs (reading files for a sync), decides the events against the projection, appends them
//! to the ledger, folds them into the projection, converges the files on disk, and tells
//! subscribers. Readers take the projection's read lock and are never held up by fsync.
//!
//! Group commit: requests that arrive while a commit is in flight are decided one after the
//! other and appended together in the next write transaction, one fsync for all of them. Each
//! request is answered only after the fsync that holds its events; a refused request writes
//! nothing and does not hold up the others. A request whose decision reads what an earlier
//! request of the same group writes (the same job, shelf or queue switch) is decided only after
//! that group is committed and folded in, so every decision sees the state it would have seen
//! alone.

use crate::jobs::projection::{Job, fold_job};
use crate::jobs::recipe;
use crate::jobs::spec;
use crate::library::category::Category;
use crate::library::command::{self, Command, Refusal};
use crate::library::files;
use crate::library::models;
use crate::library::projection::Library;
use crate::library::sync;
use crate::store::event::{CompactSpec, EntryState, Envelope, Event, JobSpec, Origin, Stored};
use crate::store::ledger::{Ledger, LedgerError};
use crate::store::snapshot::{SNAPSHOT_EVERY, load};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use tokio::sync::{broadcast, oneshot};

/// The folders the library reads and writes.
#[derive(Clone, Debug)]
pub struct Paths {
    pub data: PathBuf,
    pub uploads: PathBuf,
    pub loras: Option<PathBuf>,
    pub checkpoints: Option<PathBuf>,
    /// The user's workflow template file; `None` leaves the template alone (tools, tests).
    pub workflow: Option<PathBuf>,
}

/// What to do, before the IO that builds the command is done.
#[derive(Clone, Debug)]
pub enum Request {
    Command(Command),
    /// Compare whole category folders with the projection.
    Rescan(Vec<Category>),
    /// Look at some files of one category (from the watcher).
    SyncFiles(Category, Vec<String>),
    /// Give every checkpoint file on disk that has no document a default one.
    DiscoverCheckpoints,
    /// Compare the workflow template file with the version in use.
    SyncWorkflow,
    /// Queue new jobs (as `Command::Enqueue`), with their recipes also as JSON values when the
    /// caller has them: the writer then stores the recipes compactly without parsing them.
    Enqueue(Vec<NewJob>),
    /// Put the library back as it was right after a seq (one `Restored` event).
    Restore {
        to_seq: u64,
    },
    /// Bring back a deleted entry as it was before it went.
    Undelete {
        category: Category,
        slug: String,
    },
}

/// A job to queue: its id (a ULID chosen by the caller), its spec, and its recipe as the JSON
/// value whose text `spec.recipe` is, if the caller has it.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: u128,
    pub spec: JobSpec,
    pub recipe: Option<Arc<Value>>,
}

#[derive(Debug)]
pub enum ExecError {
    Refused(Refusal),
    Ledger(LedgerError),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Refused(r) => r.fmt(f),
            ExecError::Ledger(e) => e.fmt(f),
        }
    }
}

impl From<Refusal> for ExecError {
    fn from(r: Refusal) -> Self {
        ExecError::Refused(r)
    }
}

impl From<LedgerError> for ExecError {
    fn from(e: LedgerError) -> Self {
        ExecError::Ledger(e)
    }
}

/// What a request committed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: Vec<Stored>,
    /// Side effects that failed after the commit (e.g. a file that could not be written; it
    /// is retried before the next command).
    pub warnings: Vec<String>,
}

impl Outcome {
    pub fn last_seq(&self) -> Option<u64> {
        self.events.last().map(|s| s.seq)
    }
}

/// A file the projector could not converge yet.
type Dirty = (Category, String, String);

/// Requests taken from the queue at once, at most.
const MAX_GROUP: usize = 1024;
/// Full specs of new jobs kept for the reactor, at most (it asks for them right away).
const FRESH_SPECS: usize = 1024;
/// How long the writer waits for quiet before saving the start-up replay as a snapshot.
const IDLE_SNAPSHOT: std::time::Duration = std::time::Duration::from_millis(300);
/// Past this many files, one command's files are written together (`files::converge_many`).
const MANY_FILES: usize = 16;

/// What the writer thread and the readers share.
struct Shared {
    ledger: Ledger,
    library: RwLock<Library>,
    paths: Paths,
    tx: broadcast::Sender<Arc<[Stored]>>,
    /// Full specs of recently requested jobs, by job id, oldest first in `order`.
    fresh: Mutex<FreshSpecs>,
    /// Base recipes (parsed) by the seq of their `JobRequested` event.
    bases: spec::BaseCache,
}

#[derive(Default)]
struct FreshSpecs {
    specs: HashMap<u128, Arc<JobSpec>>,
    order: VecDeque<u128>,
}

impl FreshSpecs {
    fn put(&mut self, job: u128, spec: Arc<JobSpec>) {
        if self.specs.insert(job, spec).is_none() {
            self.order.push_back(job);
        }
        while self.order.len() > FRESH_SPECS {
            if let Some(old) = self.order.pop_front() {
                self.specs.remove(&old);
            }
        }
    }
}

/// How a request is answered: an async caller awaits a oneshot, a blocking one a channel.
enum Reply {
    Async(oneshot::Sender<Result<Outcome, ExecError>>),
    Blocking(mpsc::SyncSender<Result<Outcome, ExecError>>),
}

impl Reply {
    fn send(self, r: Result<Outcome, ExecError>) {
        // A caller that went away no longer needs the answer; what committed stays committed.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

// The channel holds a few messages at a time; boxing requests would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Exec {
        origin: Origin,
        request: Request,
        reply: Reply,
    },
    Snapshot(mpsc::SyncSender<()>),
    /// Tests: the writer waits here until told to go on, so requests pile up behind it.
    #[cfg(test)]
    Hold(mpsc::Receiver<()>),
}

struct Inner {
    shared: Arc<Shared>,
    queue: Option<mpsc::Sender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    /// The last handle closes the queue and waits for the writer to finish what it holds, so
    /// the ledger is closed (and can be opened again) when this returns.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A cheap-to-clone handle on the ledger and its projections.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A fresh random seed for a generation, exact in a browser's JavaScript numbers. Seeds are
/// drawn here and by nobody else; the engine only takes them.
pub fn random_seed() -> u64 {
    (u128::from(ulid::Ulid::generate()) as u64) & crate::jobs::request::MAX_RANDOM_SEED
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn writer_gone() -> ExecError {
    ExecError::Ledger(LedgerError::Storage(
        "the ledger writer has stopped; restart gaze".into(),
    ))
}

/// The writer dropped a request unanswered (it failed on it and went on with the next).
fn unanswered() -> ExecError {
    ExecError::Ledger(LedgerError::Storage(
        "the ledger writer failed on this request (see the log); it may not have been recorded"
            .into(),
    ))
}

impl Handle {
    /// Opens the ledger, replays it into the projection, finishes any file writes a crash
    /// interrupted, and starts the writer thread. Blocking.
    pub fn open(ledger_path: &Path, paths: Paths) -> Result<Handle, LedgerError> {
        let ledger = Ledger::open(ledger_path)?;
        let (library, snapshot_seq) = load(&ledger, u64::MAX)?;
        let (tx, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            ledger,
            library: RwLock::new(library),
            paths,
            tx,
            fresh: Mutex::default(),
            bases: Mutex::default(),
        });
        let mut writer = Writer {
            shared: shared.clone(),
            ulids: ulid::Generator::new(),
            dirty: BTreeSet::new(),
            snapshot_seq,
            bases: Bases::default(),
            values: HashMap::new(),
        };
        writer.recover_files()?;
        let (queue, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("gaze-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LedgerError::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok(Handle {
            inner: Arc::new(Inner {
                shared,
                queue: Some(queue),
                thread: Some(thread),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn send(&self, msg: Msg) -> bool {
        match &self.inner.queue {
            Some(q) => q.send(msg).is_ok(),
            None => false,
        }
    }

    /// Snapshots the projection now (at shutdown), so the next start replays nothing.
    /// Blocking.
    pub fn snapshot_now(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.send(Msg::Snapshot(tx)) {
            let _ = rx.recv();
        }
    }

    pub fn paths(&self) -> &Paths {
        &self.shared().paths
    }

    pub fn ledger(&self) -> &Ledger {
        &self.shared().ledger
    }

    /// Reads the current projection.
    pub fn library(&self) -> RwLockReadGuard<'_, Library> {
        self.shared().library()
    }

    /// The projection as it was right after `seq` (time travel), from the newest snapshot at
    /// or before it plus the events after that.
    pub fn library_at(&self, seq: u64) -> Result<Library, LedgerError> {
        load(self.ledger(), seq).map(|(lib, _)| lib)
    }

    /// A job's full spec (recipe and request included), read from its request event; a
    /// compact recipe is expanded to the exact text that was requested.
    pub fn job_spec(&self, job: u128) -> Result<JobSpec, String> {
        self.job_spec_shared(job).map(|s| (*s).clone())
    }

    /// `job_spec`, shared: new jobs' specs come from memory without a copy.
    pub fn job_spec_shared(&self, job: u128) -> Result<Arc<JobSpec>, String> {
        if let Some(s) = lock(&self.shared().fresh).specs.get(&job) {
            return Ok(s.clone());
        }
        let seq = self.requested_seq(job)?;
        spec::spec_at(self.ledger(), seq, job, &self.shared().bases).map(Arc::new)
    }

    /// The seq of a job's request event: unfinished jobs' from memory, finished ones' from
    /// the ledger's job index.
    pub fn requested_seq(&self, job: u128) -> Result<u64, String> {
        let no_job = || format!("no job {}", ulid::Ulid::from(job));
        let known = {
            let lib = self.library();
            match lib.jobs.requested_seq(job) {
                Some(seq) => Some(Some(seq)),
                None => lib.jobs.state_of(job).map(|_| None),
            }
        };
        match known {
            None => Err(no_job()),
            Some(Some(seq)) => Ok(seq),
            Some(None) => self
                .ledger()
                .job_seqs(job)
                .map_err(|e| e.to_string())?
                .first()
                .copied()
                .ok_or_else(no_job),
        }
    }

    /// An event as the API shows it, a compact request with its recipe text put back.
    pub fn event_json(&self, stored: &Stored) -> Value {
        spec::event_json(self.ledger(), stored, &self.shared().bases)
    }

    /// What restoring to `to_seq` would change, without changing anything: the event it would
    /// append (`None`: nothing to do) and the library it applies to.
    pub fn restore_plan(&self, to_seq: u64) -> Result<(Option<Event>, Library), ExecError> {
        let target = load(self.ledger(), to_seq)?.0;
        let lib = self.library().clone();
        match crate::history::restore::plan(&lib, &target, to_seq) {
            Ok(e) => Ok((e, lib)),
            Err(crate::history::restore::Refused::Invalid(m)) => {
                Err(ExecError::Refused(Refusal::Invalid(m)))
            }
            Err(crate::history::restore::Refused::Conflict(m)) => {
                Err(ExecError::Refused(Refusal::Conflict(m)))
            }
        }
    }

    /// Any job, unfinished (from memory) or finished (read back from its events); `None` for
    /// an unknown id.
    pub fn job(&self, id: u128) -> Result<Option<Job>, String> {
        {
            let lib = self.library();
            if let Some(j) = lib.jobs.get(id) {
                return Ok(Some(j.clone()));
            }
            if lib.jobs.state_of(id).is_none() {
                return Ok(None);
            }
        }
        self.job_from_ledger(id)
    }

    /// A job as its events in the ledger tell it, without looking at the projection (so a
    /// caller holding the projection's read lock may use it); `None` if it has no events.
    pub fn job_from_ledger(&self, id: u128) -> Result<Option<Job>, String> {
        let events = self.ledger().job_events(&[id]).map_err(|e| e.to_string())?;
        Ok(events.first().and_then(|e| fold_job(e)))
    }

    /// The newest `limit` jobs with status word `status` (any, with `None`), newest first.
    /// Finished ones are read back from the ledger, all on one snapshot.
    pub fn newest_jobs(&self, status: Option<&str>, limit: usize) -> Result<Vec<Job>, String> {
        let mut slots: Vec<Result<Job, u128>> = Vec::new();
        {
            let lib = self.library();
            for id in lib.jobs.newest(status, limit) {
                slots.push(lib.jobs.get(id).cloned().ok_or(id));
            }
        }
        let finished: Vec<u128> = slots
            .iter()
            .filter_map(|s| s.as_ref().err())
            .copied()
            .collect();
        if finished.is_empty() {
            return Ok(slots.into_iter().filter_map(Result::ok).collect());
        }
        let mut read = self
            .ledger()
            .job_events(&finished)
            .map_err(|e| e.to_string())?
            .into_iter();
        Ok(slots
            .into_iter()
            .filter_map(|s| match s {
                Ok(j) => Some(j),
                Err(_) => read.next().and_then(|e| fold_job(&e)),
            })
            .collect())
    }

    /// Committed batches, in order, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[Stored]>> {
        self.shared().tx.subscribe()
    }

    /// Runs `request` through the writer and waits (without blocking a thread) for the fsync
    /// that holds its events.
    pub async fn run(&self, origin: Origin, request: Request) -> Result<Outcome, ExecError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Msg::Exec {
            origin,
            request,
            reply: Reply::Async(tx),
        }) {
            return Err(writer_gone());
        }
        rx.await.unwrap_or_else(|_| Err(unanswered()))
    }

    /// `run` for callers outside async code. Blocking.
    pub fn execute(&self, origin: Origin, request: Request) -> Result<Outcome, ExecError> {
        let (tx, rx) = mpsc::sync_channel(1);
        if !self.send(Msg::Exec {
            origin,
            request,
            reply: Reply::Blocking(tx),
        }) {
            return Err(writer_gone());
        }
        rx.recv().unwrap_or_else(|_| Err(unanswered()))
    }

    /// Tests: makes the writer wait until the returned sender is dropped or sent to.
    #[cfg(test)]
    fn hold(&self) -> mpsc::SyncSender<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        assert!(self.send(Msg::Hold(rx)));
        tx
    }
}

impl Shared {
    fn library(&self) -> RwLockReadGuard<'_, Library> {
        self.library.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a decision reads or an event writes, for telling whether two requests of one group
/// depend on each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Key {
    Job(u128),
    Shelf(Category),
    /// The pause switch and the endless sessions.
    Queue,
}

/// The state a request's decision reads; `None` when it may read anything (library commands,
/// syncs): such a request waits for the group before it to be committed.
fn reads(request: &Request) -> Option<Vec<Key>> {
    let cmd = match request {
        Request::Command(cmd) => cmd,
        Request::Enqueue(jobs) => return Some(jobs.iter().map(|j| Key::Job(j.id)).collect()),
        _ => return None,
    };
    match cmd {
        Command::Enqueue { jobs } => Some(jobs.iter().map(|(id, _)| Key::Job(*id)).collect()),
        Command::CancelJob { job } => Some(vec![Key::Job(*job)]),
        Command::RetryJob { job, new_job, .. } => Some(vec![Key::Job(*job), Key::Job(*new_job)]),
        Command::PauseQueue { .. } | Command::StartEndless { .. } | Command::StopEndless { .. } => {
            Some(vec![Key::Queue])
        }
        Command::Record { events } => events
            .iter()
            .map(|e| match e {
                Event::CoverSet { category, .. } => Some(Key::Shelf(*category)),
                _ => e.job().map(Key::Job),
            })
            .collect(),
        _ => None,
    }
}

/// The state an event changes; `None` for anything else (read by `reads() == None` only, but
/// kept apart from every request to stay on the safe side).
fn writes(event: &Event) -> Option<Key> {
    if let Some(job) = event.job() {
        return Some(Key::Job(job));
    }
    match event {
        Event::QueuePaused { .. } | Event::EndlessStarted { .. } | Event::EndlessStopped { .. } => {
            Some(Key::Queue)
        }
        _ => event.category().map(Key::Shelf),
    }
}

/// A request decided and waiting for its group's commit.
struct Pending {
    origin: Origin,
    events: Vec<Event>,
    loras: Vec<String>,
    warnings: Vec<String>,
    reply: Reply,
}

#[derive(Default)]
struct Group {
    pending: Vec<Pending>,
    writes: HashSet<Key>,
    /// Some pending event changes something no key names.
    writes_other: bool,
}

impl Group {
    fn depends(&self, reads: &Option<Vec<Key>>) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        match reads {
            None => true,
            Some(keys) => self.writes_other || keys.iter().any(|k| self.writes.contains(k)),
        }
    }

    fn add(&mut self, p: Pending) {
        for e in &p.events {
            match writes(e) {
                Some(k) => {
                    self.writes.insert(k);
                }
                None => self.writes_other = true,
            }
        }
        self.pending.push(p);
    }
}

/// A recipe other recipes are stored against: the seq of its request event and the recipe.
#[derive(Clone)]
struct Base {
    seq: u64,
    value: Arc<Value>,
}

/// Where new recipes are diffed from. Per workflow shape, a recipe stored in full; per class
/// (shape and documents used), a recipe stored as a patch against its shape's full one, or the
/// full one itself. So a patch's base is at most one patch away from a full recipe. Bases of
/// earlier runs are not looked for: the first job of a shape after a start is stored in full.
#[derive(Clone, Default)]
struct Bases {
    shapes: HashMap<u64, Base>,
    classes: HashMap<u64, Base>,
    /// Bases added since the last commit, for the readers' cache.
    added: Vec<Base>,
}

/// Classes remembered at most (each holds a parsed recipe).
const CLASSES: usize = 256;

impl Bases {
    /// The patch to store for the recipe `value` (whose exact text is `text`) requested at
    /// `seq`, or `None` to store it in full; registers the bases this makes.
    fn choose(
        &mut self,
        seq: u64,
        value: Arc<Value>,
        text: &str,
    ) -> Option<crate::store::event::RecipePatch> {
        let shape = recipe::shape(&value);
        let class = recipe::class(&value, shape);
        let new = value.clone();
        let try_patch = |b: &Base| {
            let patch = recipe::diff(&b.value, &new, b.seq);
            let small = recipe::patch_size(&patch) * 2 < text.len();
            (small && recipe::expand(&b.value, &patch).as_deref() == Ok(text)).then_some(patch)
        };
        if let Some(p) = self.classes.get(&class).and_then(try_patch) {
            return Some(p);
        }
        if self.classes.len() >= CLASSES {
            self.classes.clear();
        }
        // A base is what readers will rebuild from the ledger: the stored text parsed, which
        // is not always the value handed in (serde_json does not parse every float back to the
        // exact value it printed).
        let Ok(parsed) = serde_json::from_str::<Value>(text) else {
            return None;
        };
        let me = Base {
            seq,
            value: Arc::new(parsed),
        };
        if let Some(p) = self.shapes.get(&shape).and_then(try_patch) {
            self.classes.insert(class, me.clone());
            self.added.push(me);
            return Some(p);
        }
        if self.shapes.len() >= CLASSES {
            self.shapes.clear();
            self.classes.clear();
        }
        self.shapes.insert(shape, me.clone());
        self.classes.insert(class, me.clone());
        self.added.push(me);
        None
    }
}

/// The writer thread's state. Only this thread appends to the ledger or changes the
/// projection.
struct Writer {
    shared: Arc<Shared>,
    ulids: ulid::Generator,
    dirty: BTreeSet<Dirty>,
    /// The seq of the newest snapshot written.
    snapshot_seq: u64,
    /// Where new recipes are diffed from.
    bases: Bases,
    /// Recipes handed in as values (`Request::Enqueue`) for the group being decided.
    values: HashMap<u128, Arc<Value>>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        // A long replay at start-up is saved for next time once the writer is first idle, so
        // neither start-up nor the first requests wait for it.
        let mut snapshot_when_idle = true;
        loop {
            let first = if snapshot_when_idle {
                match rx.recv_timeout(IDLE_SNAPSHOT) {
                    Ok(m) => m,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        snapshot_when_idle = false;
                        self.maybe_snapshot(false);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            let mut msgs = vec![first];
            while msgs.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run_group(msgs);
            }));
            if run.is_err() {
                // The requests of the group were dropped unanswered (their callers get an
                // error). The projection may lag the ledger now: fold it again.
                tracing::error!("the ledger writer failed on a request; reloading the projection");
                self.reload();
            }
        }
    }

    fn reload(&mut self) {
        match load(&self.shared.ledger, u64::MAX) {
            Ok((lib, _)) => {
                *self
                    .shared
                    .library
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) = lib;
            }
            Err(e) => tracing::error!("could not reload the projection: {e}"),
        }
        self.bases = Bases::default();
    }

    fn run_group(&mut self, msgs: Vec<Msg>) {
        let retried = self.retry_dirty();
        let mut group = Group::default();
        for msg in msgs {
            match msg {
                Msg::Snapshot(done) => {
                    self.flush(&mut group);
                    self.maybe_snapshot(true);
                    let _ = done.send(());
                }
                #[cfg(test)]
                Msg::Hold(go) => {
                    self.flush(&mut group);
                    let _ = go.recv();
                }
                Msg::Exec {
                    origin,
                    request,
                    reply,
                } => {
                    if group.depends(&reads(&request)) {
                        self.flush(&mut group);
                    }
                    match self.decide(request) {
                        Err(e) => reply.send(Err(e)),
                        Ok((events, _)) if events.is_empty() => reply.send(Ok(Outcome {
                            events: Vec::new(),
                            warnings: retried.clone(),
                        })),
                        Ok((events, loras)) => group.add(Pending {
                            origin,
                            events,
                            loras,
                            warnings: retried.clone(),
                            reply,
                        }),
                    }
                }
            }
        }
        self.flush(&mut group);
        self.values.clear();
    }

    /// Does a request's IO and decides its events against the projection (plus the LoRA
    /// files its hard deletes remove, named by the documents before they go).
    fn decide(&mut self, request: Request) -> Result<(Vec<Event>, Vec<String>), ExecError> {
        let commands = self.prepare(request)?;
        let lib = self.shared.library();
        let mut events = Vec::new();
        for cmd in &commands {
            events.extend(command::decide(&lib, cmd)?);
        }
        self.check_side_effects(&lib, &events)?;
        let loras: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::DocumentDeleted {
                    category,
                    slug,
                    hard: true,
                    ..
                } => lib.get(*category, slug).and_then(models::lora_name),
                _ => None,
            })
            .collect();
        Ok((events, loras))
    }

    /// Commits the group's events in one write transaction, folds them in, writes their
    /// files, tells subscribers and answers each request with its own events.
    fn flush(&mut self, group: &mut Group) {
        let mut pending = std::mem::take(&mut group.pending);
        group.writes.clear();
        group.writes_other = false;
        if pending.is_empty() {
            return;
        }
        let at = now_ms();
        let mut envelopes = Vec::new();
        let mut counts = Vec::with_capacity(pending.len());
        for p in &mut pending {
            counts.push(p.events.len());
            for event in std::mem::take(&mut p.events) {
                let id = self
                    .ulids
                    .generate()
                    .map(u128::from)
                    .unwrap_or_else(|_| u128::from(ulid::Ulid::generate()));
                envelopes.push(Envelope {
                    id,
                    at,
                    origin: p.origin,
                    event,
                });
            }
        }
        let before = self.shared.ledger.last_seq();
        let (fresh, bases) = self.compact_requests(before, &mut envelopes);
        let stored = match self.shared.ledger.append(envelopes) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("could not append {} request(s): {e}", pending.len());
                for p in pending {
                    p.reply.send(Err(ExecError::Ledger(e.clone())));
                }
                return;
            }
        };
        {
            let mut lib = self
                .shared
                .library
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for s in &stored {
                lib.apply(s);
            }
            let mut cache = lock(&self.shared.fresh);
            for (job, spec) in fresh {
                cache.put(job, spec);
            }
            for s in &stored {
                if let Some(job) = s.event().job()
                    && lib.jobs.get(job).is_none()
                {
                    cache.specs.remove(&job);
                }
            }
        }
        if let Some(mut bases) = bases {
            for b in std::mem::take(&mut bases.added) {
                spec::remember(&self.shared.bases, b.seq, b.value);
            }
            self.bases = bases;
        }
        let mut answers = Vec::with_capacity(pending.len());
        let mut from = 0;
        for (p, n) in pending.into_iter().zip(counts) {
            let mine = &stored[from..from + n];
            from += n;
            let mut warnings = p.warnings;
            warnings.extend(self.project(mine, &p.loras));
            answers.push((p.reply, mine.to_vec(), warnings));
        }
        // No subscriber is fine.
        let _ = self.shared.tx.send(stored.into());
        for (reply, events, warnings) in answers {
            reply.send(Ok(Outcome { events, warnings }));
        }
        self.maybe_snapshot(false);
    }

    /// Stores new jobs' recipes as patches where that reads back byte for byte: against the
    /// base of their class if there is one, else against the full recipe of their shape (and
    /// the job becomes its class's base), else in full (and the job becomes the base of both).
    /// Returns the full specs (for the reactor) and the bases as they are once the commit
    /// succeeds.
    fn compact_requests(
        &mut self,
        before: u64,
        envelopes: &mut [Envelope],
    ) -> (Vec<(u128, Arc<JobSpec>)>, Option<Bases>) {
        let mut fresh = Vec::new();
        let mut next: Option<Bases> = None;
        for (i, env) in envelopes.iter_mut().enumerate() {
            if !matches!(env.event, Event::JobRequested { .. }) {
                continue;
            }
            let placeholder = Event::QueuePaused { paused: false };
            let Event::JobRequested { job, spec } = std::mem::replace(&mut env.event, placeholder)
            else {
                continue;
            };
            let seq = before + 1 + i as u64;
            let bases = next.get_or_insert_with(|| self.bases.clone());
            let value = match self.values.remove(&job) {
                Some(v) => Ok(v),
                None => serde_json::from_str::<Value>(&spec.recipe).map(Arc::new),
            };
            let patch = match value {
                Err(_) => None,
                Ok(value) => bases.choose(seq, value, &spec.recipe),
            };
            let spec = Arc::new(spec);
            fresh.push((job, spec.clone()));
            env.event = match patch {
                Some(patch) => Event::JobRequestedCompact {
                    job,
                    spec: CompactSpec {
                        label: spec.label.clone(),
                        target: spec.target.clone(),
                        set_cover: spec.set_cover,
                        recipe: patch,
                        request: spec.request.clone(),
                        batch: spec.batch,
                        retry_of: spec.retry_of,
                        endless: spec.endless,
                    },
                },
                None => Event::JobRequested {
                    job,
                    spec: (*spec).clone(),
                },
            };
        }
        (fresh, next)
    }

    /// Writes a snapshot of the projection when enough events have passed since the last one
    /// (or now, with `force`). A failure only costs a longer replay later, so it is logged.
    /// The interval grows with the snapshot's size (documents, finished jobs), so writing
    /// snapshots stays a small share of the work.
    fn maybe_snapshot(&mut self, force: bool) {
        let lib = self.shared.library();
        let since = lib.seq.saturating_sub(self.snapshot_seq);
        let every = (lib.document_count() as u64)
            .max(lib.jobs.finished_count() as u64 / 4)
            .max(SNAPSHOT_EVERY);
        if since == 0 || (!force && since < every) {
            return;
        }
        let bytes = lib.to_snapshot();
        let seq = lib.seq;
        drop(lib);
        match self.shared.ledger.write_snapshot(seq, &bytes) {
            Ok(()) => self.snapshot_seq = seq,
            Err(e) => tracing::warn!("could not write a snapshot at seq {seq}: {e}"),
        }
    }

    fn prepare(&mut self, request: Request) -> Result<Vec<Command>, ExecError> {
        let paths = &self.shared.paths;
        let skip = |c: Category| -> Vec<String> {
            self.dirty
                .iter()
                .filter(|d| d.0 == c)
                .map(|d| d.2.clone())
                .collect()
        };
        Ok(match request {
            Request::Command(c) => vec![c],
            Request::Enqueue(jobs) => {
                let mut list = Vec::with_capacity(jobs.len());
                for j in jobs {
                    if let Some(v) = j.recipe {
                        self.values.insert(j.id, v);
                    }
                    list.push((j.id, j.spec));
                }
                vec![Command::Enqueue { jobs: list }]
            }
            Request::Rescan(categories) => categories
                .into_iter()
                .map(|c| Command::Sync {
                    category: c,
                    observations: sync::observe_category(&paths.data, c, &skip(c)),
                    complete: true,
                })
                .collect(),
            Request::SyncFiles(c, names) => {
                let skipped = skip(c);
                let names: Vec<String> =
                    names.into_iter().filter(|n| !skipped.contains(n)).collect();
                vec![Command::Sync {
                    category: c,
                    observations: sync::observe_files(&paths.data, c, &names),
                    complete: false,
                }]
            }
            Request::SyncWorkflow => match &paths.workflow {
                Some(path) => vec![Command::SyncWorkflow {
                    file: path.display().to_string(),
                    content: sync::read_file(path),
                }],
                None => Vec::new(),
            },
            Request::DiscoverCheckpoints => match &paths.checkpoints {
                Some(root) => {
                    let lib = self.shared.library();
                    models::discover_checkpoints(&lib, root)
                }
                None => Vec::new(),
            },
            Request::Restore { to_seq } => {
                let target = load(&self.shared.ledger, to_seq)?.0;
                vec![Command::Restore {
                    to_seq,
                    target: Arc::new(target),
                }]
            }
            Request::Undelete { category, slug } => {
                let found = self.deleted_entry(category, &slug)?;
                vec![Command::Undelete {
                    category,
                    slug,
                    found,
                }]
            }
        })
    }

    /// A deleted entry as it was before the event that took it out, or why there is none.
    fn deleted_entry(
        &self,
        c: Category,
        slug: &str,
    ) -> Result<Result<(u64, EntryState), String>, LedgerError> {
        let what = format!("{} '{slug}'", c.desc().singular);
        let found = crate::history::deleted::last_removal(&self.shared.ledger, c, slug)
            .map_err(LedgerError::Storage)?;
        let Some((s, how, _)) = found else {
            return Ok(Err(format!("no deleted {what} to bring back")));
        };
        if how == crate::history::deleted::How::HardDeleted {
            return Ok(Err(format!(
                "{what} was hard-deleted (its LoRA file is gone); restore the library to before seq {} instead",
                s.seq
            )));
        }
        let before = load(&self.shared.ledger, s.seq - 1)?.0;
        Ok(match before.get(c, slug) {
            Some(e) => Ok((s.seq, e.state(c))),
            None => Err(format!(
                "{what} was not in the library before seq {}",
                s.seq
            )),
        })
    }

    /// IO checks that must pass before anything is appended.
    fn check_side_effects(&self, lib: &Library, events: &[Event]) -> Result<(), Refusal> {
        let paths = &self.shared.paths;
        for e in events {
            match e {
                Event::DocumentCreated { category, file, .. } => {
                    let path = files::category_dir(&paths.data, *category).join(file);
                    if path.exists() {
                        return Err(Refusal::Conflict(format!(
                            "data/{}/{file} already exists on disk; it will be picked up by the next sync",
                            category.desc().dir
                        )));
                    }
                }
                Event::Undeleted { entry, .. } => {
                    let path = files::category_dir(&paths.data, entry.category).join(&entry.file);
                    if path.exists() {
                        return Err(Refusal::Conflict(format!(
                            "data/{}/{} exists on disk; it will be picked up by the next sync",
                            entry.category.desc().dir,
                            entry.file
                        )));
                    }
                }
                Event::Restored { put, .. } => {
                    for p in put {
                        let owned = lib.shelf(p.category).by_file.contains_key(&p.file);
                        let path = files::category_dir(&paths.data, p.category).join(&p.file);
                        if !owned && path.exists() {
                            return Err(Refusal::Conflict(format!(
                                "data/{}/{} is on disk but not in the library yet (the next sync takes it in); move it away or rescan before restoring",
                                p.category.desc().dir,
                                p.file
                            )));
                        }
                    }
                }
                Event::DocumentDeleted {
                    category,
                    slug,
                    hard: true,
                    ..
                } => {
                    if let Some(lora) = lib.get(*category, slug).and_then(models::lora_name) {
                        let root = paths.loras.as_deref().ok_or_else(|| {
                            Refusal::Invalid(format!(
                                "hard delete would remove the LoRA '{lora}', but no LoRA root is configured (--loras)"
                            ))
                        })?;
                        files::resolve_inside(root, &lora).map_err(|e| {
                            Refusal::Invalid(format!("refusing to delete the LoRA file: {e}"))
                        })?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Converges the files the committed events touch. Returns warnings for failures, which
    /// stay dirty (and out of syncs) until a later write succeeds.
    fn project(&mut self, stored: &[Stored], loras: &[String]) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut todo = Vec::new();
        for s in stored {
            match s.event() {
                Event::DocumentCreated {
                    category,
                    slug,
                    file,
                    ..
                } => todo.push((*category, slug.clone(), file.clone())),
                Event::DocumentEdited { category, slug, .. } => {
                    let file = self
                        .shared
                        .library()
                        .get(*category, slug)
                        .map(|e| e.file.clone())
                        .unwrap_or_default();
                    todo.push((*category, slug.clone(), file));
                }
                Event::DocumentDeleted {
                    category,
                    slug,
                    file,
                    ..
                } => todo.push((*category, slug.clone(), file.clone())),
                e @ (Event::Restored { .. } | Event::Undeleted { .. }) => {
                    todo.extend(restored_files(e));
                }
                _ => {}
            }
        }
        if !todo.is_empty() {
            let shared = self.shared.clone();
            let lib = shared.library();
            if todo.len() > MANY_FILES {
                // A restore of many documents: written together, synced together.
                for ((c, slug, file), e) in files::converge_many(&lib, &shared.paths.data, &todo) {
                    warnings.push(format!("could not write data/{}/{file}: {e}", c.desc().dir));
                    self.dirty.insert((c, slug, file));
                }
            } else {
                for (c, slug, file) in todo {
                    if let Err(e) = files::converge(&lib, &shared.paths.data, c, &slug, &file) {
                        warnings.push(format!("could not write data/{}/{file}: {e}", c.desc().dir));
                        self.dirty.insert((c, slug, file));
                    }
                }
            }
        }
        for lora in loras {
            if let Err(e) = self.remove_lora(lora) {
                warnings.push(e);
            }
        }
        for w in &warnings {
            tracing::error!("{w}");
        }
        warnings
    }

    fn remove_lora(&self, lora: &str) -> Result<(), String> {
        let Some(root) = self.shared.paths.loras.as_deref() else {
            return Ok(());
        };
        let path = files::resolve_inside(root, lora)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!("hard delete removed {}", path.display());
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("could not remove {}: {e}", path.display())),
        }
    }

    fn retry_dirty(&mut self) -> Vec<String> {
        if self.dirty.is_empty() {
            return Vec::new();
        }
        let shared = self.shared.clone();
        let lib = shared.library();
        let mut warnings = Vec::new();
        let dirty = std::mem::take(&mut self.dirty);
        for (c, slug, file) in dirty {
            if let Err(e) = files::converge(&lib, &shared.paths.data, c, &slug, &file) {
                warnings.push(format!(
                    "still cannot write data/{}/{file}: {e}",
                    c.desc().dir
                ));
                self.dirty.insert((c, slug, file));
            }
        }
        warnings
    }

    /// Converges the files of every app-made change after the projector's checkpoint: a crash
    /// between a commit and its file write is finished here, before any sync can mistake the
    /// old file for an outside edit.
    fn recover_files(&mut self) -> Result<(), LedgerError> {
        let shared = self.shared.clone();
        let ledger = &shared.ledger;
        let from = ledger.files_through()? + 1;
        let mut todo = Vec::new();
        ledger.fold(from, u64::MAX, |s| {
            match s.event() {
                Event::DocumentCreated {
                    category,
                    slug,
                    file,
                    ..
                }
                | Event::DocumentDeleted {
                    category,
                    slug,
                    file,
                    ..
                } => todo.push((*category, slug.clone(), file.clone())),
                Event::DocumentEdited { category, slug, .. } => {
                    todo.push((*category, slug.clone(), String::new()));
                }
                e @ (Event::Restored { .. } | Event::Undeleted { .. }) => {
                    todo.extend(restored_files(e));
                }
                _ => {}
            }
            true
        })?;
        let lib = shared.library();
        if todo.len() > MANY_FILES {
            for ((c, slug, file), e) in files::converge_many(&lib, &shared.paths.data, &todo) {
                tracing::error!("could not recover data/{}/{file}: {e}", c.desc().dir);
                self.dirty.insert((c, slug, file));
            }
            return Ok(());
        }
        for (c, slug, file) in todo {
            match files::converge(&lib, &shared.paths.data, c, &slug, &file) {
                Ok(true) => tracing::info!("recovered data/{}/{slug} after a crash", c.desc().dir),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("could not recover data/{}/{file}: {e}", c.desc().dir);
                    self.dirty.insert((c, slug, file));
                }
            }
        }
        Ok(())
    }
}

/// The files a restore or an undelete writes or removes. A removed entry's file is converged
/// by file alone (the empty slug names no entry): removed unless another entry owns it now,
/// also when the entry itself moved to another file.
fn restored_files(e: &Event) -> Vec<Dirty> {
    match e {
        Event::Restored { removed, put, .. } => removed
            .iter()
            .map(|r| (r.category, String::new(), r.file.clone()))
            .chain(
                put.iter()
                    .map(|p| (p.category, p.slug.clone(), p.file.clone())),
            )
            .collect(),
        Event::Undeleted { entry, .. } => {
            vec![(entry.category, entry.slug.clone(), entry.file.clone())]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::projection::JobState;
    use crate::jobs::request::{self, GenRequest};

    fn open(dir: &Path) -> Handle {
        let paths = Paths {
            data: dir.join("data"),
            uploads: dir.join("uploads"),
            loras: None,
            checkpoints: None,
            workflow: None,
        };
        Handle::open(&dir.join("ledger/gaze.redb"), paths).unwrap()
    }

    fn spec(recipe: &str) -> JobSpec {
        JobSpec {
            label: "generator".into(),
            target: None,
            set_cover: false,
            recipe: recipe.into(),
            request: "{}".into(),
            batch: None,
            retry_of: None,
            endless: None,
        }
    }

    /// Real recipes from the sample library, as text and as the value the web layer hands in.
    fn sample(slug: &str, seed: u64) -> (String, Value) {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let lib = sync::library_from_disk(&data);
        let req = GenRequest {
            target: Some((Category::Characters, slug.into())),
            seed: Some(seed),
            ..Default::default()
        };
        let r = request::resolve(&lib, &req, 0, &Default::default()).unwrap();
        (r.recipe_text(), r.into_recipe())
    }

    fn sample_recipe(slug: &str, seed: u64) -> String {
        sample(slug, seed).0
    }

    fn enqueue(id: u128, recipe: &str) -> Request {
        Request::Command(Command::Enqueue {
            jobs: vec![(id, spec(recipe))],
        })
    }

    type Answer = mpsc::Receiver<Result<Outcome, ExecError>>;

    impl Handle {
        /// Queues a request without waiting for it.
        fn submit(&self, request: Request) -> Answer {
            let (tx, rx) = mpsc::sync_channel(1);
            assert!(self.send(Msg::Exec {
                origin: Origin::Cli,
                request,
                reply: Reply::Blocking(tx),
            }));
            rx
        }
    }

    fn kinds(h: &Handle) -> Vec<(String, Option<u128>)> {
        h.ledger()
            .read_after(0, 1000)
            .unwrap()
            .iter()
            .map(|s| (s.event().kind().to_string(), s.event().job()))
            .collect()
    }

    #[test]
    fn requests_that_arrive_during_a_commit_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        let go = h.hold();
        let answers: Vec<(u128, Answer)> = (1..=50u128)
            .map(|id| (id, h.submit(enqueue(id, "{\"seed\":1}"))))
            .collect();
        let commits = h.ledger().commit_count();
        drop(go);
        for (id, a) in answers {
            let o = a.recv().unwrap().unwrap();
            assert_eq!(o.events.len(), 1);
            assert_eq!(
                o.events[0].event().job(),
                Some(id),
                "each request gets its own events"
            );
        }
        assert_eq!(
            h.ledger().commit_count() - commits,
            1,
            "one write transaction"
        );
        assert_eq!(h.ledger().last_seq(), 50);
        assert_eq!(h.library().jobs.queued.len(), 50);
    }

    #[test]
    fn a_refused_request_in_a_group_writes_nothing_and_later_ones_see_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        let go = h.hold();
        let a = h.submit(enqueue(1, "{}"));
        let unknown = h.submit(Request::Command(Command::CancelJob { job: 99 }));
        let b = h.submit(enqueue(2, "{}"));
        let pause = h.submit(Request::Command(Command::PauseQueue { paused: true }));
        // Reads job 1, which this group is about to write: decided after that commit.
        let cancel = h.submit(Request::Command(Command::CancelJob { job: 1 }));
        let again = h.submit(enqueue(1, "{}"));
        let commits = h.ledger().commit_count();
        drop(go);
        assert_eq!(a.recv().unwrap().unwrap().events.len(), 1);
        assert!(matches!(
            unknown.recv().unwrap(),
            Err(ExecError::Refused(Refusal::NotFound(_)))
        ));
        assert_eq!(b.recv().unwrap().unwrap().events.len(), 1);
        assert_eq!(pause.recv().unwrap().unwrap().events.len(), 1);
        let c = cancel.recv().unwrap().unwrap();
        assert!(matches!(
            c.events[0].event(),
            Event::JobCancelled { job: 1 }
        ));
        assert!(matches!(
            again.recv().unwrap(),
            Err(ExecError::Refused(Refusal::Conflict(_)))
        ));
        assert_eq!(
            kinds(&h),
            [
                ("job_requested".to_string(), Some(1)),
                ("job_requested".to_string(), Some(2)),
                ("queue_paused".to_string(), None),
                ("job_cancelled".to_string(), Some(1)),
            ]
        );
        assert_eq!(h.ledger().commit_count() - commits, 2);
        let lib = h.library();
        assert_eq!(lib.jobs.state_of(1), Some(JobState::Cancelled));
        assert_eq!(lib.jobs.state_of(2), Some(JobState::Queued));
        assert!(lib.jobs.paused);
    }

    #[test]
    fn recipes_read_back_byte_for_byte_old_and_compact_before_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<(u128, String, Value)> = [
            ("tifa_lockhart", 1),
            ("tifa_lockhart", 2),
            ("link", 3),
            ("aerith_gainsborough", 4),
            ("hatsune_miku", 5),
            ("tifa_lockhart", 6),
            ("princess_zelda", 7),
            ("hatsune_miku", 8),
        ]
        .iter()
        .enumerate()
        .map(|(i, (slug, seed))| {
            let (text, value) = sample(slug, *seed);
            (100 + i as u128, text, value)
        })
        .collect();
        let texts: Vec<(u128, String)> = samples.iter().map(|s| (s.0, s.1.clone())).collect();
        // An old ledger: a full request appended the way every request used to be.
        {
            let ledger = Ledger::open(&dir.path().join("ledger/gaze.redb")).unwrap();
            ledger
                .append(vec![Envelope {
                    id: 1,
                    at: 1,
                    origin: Origin::Web,
                    event: Event::JobRequested {
                        job: 7,
                        spec: spec(&texts[0].1),
                    },
                }])
                .unwrap();
        }
        let check = |h: &Handle| {
            assert_eq!(h.job_spec(7).unwrap().recipe, texts[0].1);
            for (id, text) in &texts {
                assert_eq!(&h.job_spec(*id).unwrap().recipe, text, "job {id}");
            }
        };
        {
            let h = open(dir.path());
            // Half as the web layer sends them (with the recipe as a value), half as text only.
            for (i, (id, text, value)) in samples.iter().enumerate() {
                let request = if i % 2 == 0 {
                    enqueue(*id, text)
                } else {
                    Request::Enqueue(vec![NewJob {
                        id: *id,
                        spec: spec(text),
                        recipe: Some(Arc::new(value.clone())),
                    }])
                };
                h.execute(Origin::Web, request).unwrap();
            }
            check(&h);
        }
        let h = open(dir.path());
        check(&h);
        let stored = h.ledger().read_after(0, 100).unwrap();
        let compact = stored
            .iter()
            .filter(|s| matches!(s.event(), Event::JobRequestedCompact { .. }))
            .count();
        // Tifa, Link and Zelda share a shape; Aerith and Miku share another.
        assert_eq!(compact, 6, "the first of each shape is kept in full");
        let base_of = |job: u128| {
            stored.iter().find_map(|s| match s.event() {
                Event::JobRequestedCompact { job: j, spec } if *j == job => Some(spec.recipe.base),
                _ => None,
            })
        };
        // The second Miku is stored against the first (a patch itself), the second Tifa
        // against the first (in full).
        let first_miku = stored
            .iter()
            .find(|s| s.event().job() == Some(104))
            .unwrap();
        assert_eq!(base_of(107), Some(first_miku.seq));
        assert!(base_of(104).is_some());
        assert_eq!(base_of(101), base_of(105));
        for s in &stored {
            let bytes = crate::store::event::encode(&s.envelope).unwrap().len();
            if let Event::JobRequestedCompact { job, .. } = s.event() {
                let full = &texts.iter().find(|t| t.0 == *job).unwrap().1;
                assert!(
                    bytes * 5 < full.len(),
                    "{bytes} bytes for a {} byte recipe",
                    full.len()
                );
            }
        }
    }

    #[test]
    fn recipes_read_back_exactly_even_when_a_value_handed_in_differs_from_its_text() {
        // Bases must be what readers rebuild (the stored text parsed), never the value a
        // caller handed in: here the first job's value says w = 2.0 but its text says 2.5, and
        // the second job's really is 2.0. (serde_json without `float_roundtrip` gives the same
        // situation for floats it does not parse back exactly.)
        let text_of = |seed: u64, w: &str| {
            format!(
                "{{\"seed\":{seed},\"workflow\":{{\"3\":{{\"class_type\":\"KSampler\",\"inputs\":{{\"seed\":{seed},\"w\":{w},\"text\":\"a long prompt, 1girl, solo, looking at viewer, smile\"}}}}}}}}"
            )
        };
        let value_of = |seed: u64, w: f64| {
            serde_json::json!({"seed": seed, "workflow": {"3": {"class_type": "KSampler",
                "inputs": {"seed": seed, "w": w, "text": "a long prompt, 1girl, solo, looking at viewer, smile"}}}})
        };
        let jobs = [
            (1u64, text_of(1, "2.5"), value_of(1, 2.0)),
            (2, text_of(2, "2.0"), value_of(2, 2.0)),
            (3, text_of(3, "2.5"), value_of(3, 2.5)),
        ];
        let dir = tempfile::tempdir().unwrap();
        {
            let h = open(dir.path());
            for (id, text, value) in &jobs {
                let job = NewJob {
                    id: u128::from(*id),
                    spec: spec(text),
                    recipe: Some(Arc::new(value.clone())),
                };
                h.execute(Origin::Web, Request::Enqueue(vec![job])).unwrap();
            }
            for (id, text, _) in &jobs {
                assert_eq!(&h.job_spec(u128::from(*id)).unwrap().recipe, text);
            }
            let compact = h
                .ledger()
                .read_after(0, 10)
                .unwrap()
                .iter()
                .filter(|s| matches!(s.event(), Event::JobRequestedCompact { .. }))
                .count();
            assert_eq!(compact, 2, "the later ones are patches");
        }
        let h = open(dir.path());
        for (id, text, _) in &jobs {
            assert_eq!(
                &h.job_spec(u128::from(*id)).unwrap().recipe,
                text,
                "job {id}"
            );
        }
    }

    #[test]
    fn finished_jobs_leave_memory_and_read_back_from_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        let recipe = sample_recipe("tifa_lockhart", 1);
        for id in 1..=4u128 {
            h.execute(Origin::Web, enqueue(id, &recipe)).unwrap();
        }
        let record = |events: Vec<Event>| {
            h.execute(
                Origin::Reactor,
                Request::Command(Command::Record { events }),
            )
            .unwrap()
        };
        let submitted = |job| Event::JobSubmitted {
            job,
            backend: "http://b".into(),
            prompt_id: format!("p{job}"),
            attempt: 1,
            vanilla: false,
        };
        record(vec![submitted(1), submitted(2), submitted(3)]);
        record(vec![
            Event::JobSucceeded {
                job: 1,
                images: vec!["uploads/generator/a_0.png".into()],
            },
            Event::JobFailed {
                job: 2,
                error: "boom".into(),
                node: None,
                retryable: false,
            },
        ]);
        h.execute(Origin::Web, Request::Command(Command::CancelJob { job: 4 }))
            .unwrap();
        {
            let lib = h.library();
            assert_eq!(lib.jobs.jobs.keys().copied().collect::<Vec<_>>(), [3]);
            assert_eq!(lib.jobs.finished_count(), 3);
        }
        let one = h.job(1).unwrap().unwrap();
        assert_eq!(one.state, JobState::Succeeded);
        assert_eq!(one.images, ["uploads/generator/a_0.png"]);
        assert_eq!(one.prompt_id.as_deref(), Some("p1"));
        assert_eq!(one.attempts, 1);
        assert_eq!(h.job(2).unwrap().unwrap().error.as_deref(), Some("boom"));
        assert!(h.job(77).unwrap().is_none());
        let newest: Vec<(u128, JobState)> = h
            .newest_jobs(None, 10)
            .unwrap()
            .iter()
            .map(|j| (j.id, j.state))
            .collect();
        assert_eq!(
            newest,
            [
                (4, JobState::Cancelled),
                (3, JobState::Submitted),
                (2, JobState::Failed),
                (1, JobState::Succeeded)
            ]
        );
        assert_eq!(h.newest_jobs(Some("done"), 10).unwrap()[0].id, 1);
        assert_eq!(h.job_spec(1).unwrap().recipe, recipe);
        // A finished job can be neither cancelled nor requested again.
        assert!(matches!(
            h.execute(Origin::Web, Request::Command(Command::CancelJob { job: 1 })),
            Err(ExecError::Refused(Refusal::Conflict(_)))
        ));
        assert!(matches!(
            h.execute(Origin::Web, enqueue(2, "{}")),
            Err(ExecError::Refused(Refusal::Conflict(_)))
        ));
    }

    #[test]
    fn dropping_the_last_handle_closes_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        let again = h.clone();
        h.execute(Origin::Web, enqueue(1, "{}")).unwrap();
        drop(h);
        drop(again);
        let h = open(dir.path());
        assert_eq!(h.library().jobs.queued.len(), 1);
    }
}

//! The one write path. `Handle::execute` takes the writer lock, does the IO a request needs
//! (reading files for a sync), decides the events against the projection, appends them in one
//! redb transaction, folds them into the projection, converges the files on disk, and then
//! tells subscribers. Readers take the projection's read lock and are never held up by fsync.

use crate::library::category::Category;
use crate::library::command::{self, Command, Refusal};
use crate::library::files;
use crate::library::models;
use crate::library::projection::Library;
use crate::library::sync;
use crate::store::event::{EntryState, Envelope, Event, Origin, Stored};
use crate::store::ledger::{Ledger, LedgerError};
use crate::store::snapshot::{SNAPSHOT_EVERY, load};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use tokio::sync::broadcast;

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

/// Past this many files, one command's files are written together (`files::converge_many`).
const MANY_FILES: usize = 16;

struct Inner {
    ledger: Ledger,
    writer: Mutex<Writer>,
    library: RwLock<Library>,
    paths: Paths,
    tx: broadcast::Sender<Arc<[Stored]>>,
}

struct Writer {
    ulids: ulid::Generator,
    dirty: BTreeSet<Dirty>,
    /// The seq of the newest snapshot written.
    snapshot_seq: u64,
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

impl Handle {
    /// Opens the ledger, replays it into the projection, and finishes any file writes a crash
    /// interrupted. Blocking.
    pub fn open(ledger_path: &Path, paths: Paths) -> Result<Handle, LedgerError> {
        let ledger = Ledger::open(ledger_path)?;
        let (library, snapshot_seq) = load(&ledger, u64::MAX)?;
        let (tx, _) = broadcast::channel(1024);
        let handle = Handle {
            inner: Arc::new(Inner {
                ledger,
                writer: Mutex::new(Writer {
                    ulids: ulid::Generator::new(),
                    dirty: BTreeSet::new(),
                    snapshot_seq,
                }),
                library: RwLock::new(library),
                paths,
                tx,
            }),
        };
        handle.recover_files()?;
        {
            let mut writer = lock(&handle.inner.writer);
            handle.maybe_snapshot(&mut writer, false);
        }
        Ok(handle)
    }

    /// Writes a snapshot of the projection when enough events have passed since the last one
    /// (or now, with `force`). A failure only costs a longer replay later, so it is logged.
    fn maybe_snapshot(&self, writer: &mut Writer, force: bool) {
        let lib = self.library();
        let since = lib.seq.saturating_sub(writer.snapshot_seq);
        let every = (lib.document_count() as u64).max(SNAPSHOT_EVERY);
        if since == 0 || (!force && since < every) {
            return;
        }
        let bytes = lib.to_snapshot();
        let seq = lib.seq;
        drop(lib);
        match self.inner.ledger.write_snapshot(seq, &bytes) {
            Ok(()) => writer.snapshot_seq = seq,
            Err(e) => tracing::warn!("could not write a snapshot at seq {seq}: {e}"),
        }
    }

    /// Snapshots the projection now (at shutdown), so the next start replays nothing.
    pub fn snapshot_now(&self) {
        let mut writer = lock(&self.inner.writer);
        self.maybe_snapshot(&mut writer, true);
    }

    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// Reads the current projection.
    pub fn library(&self) -> RwLockReadGuard<'_, Library> {
        self.inner.library.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The projection as it was right after `seq` (time travel), from the newest snapshot at
    /// or before it plus the events after that.
    pub fn library_at(&self, seq: u64) -> Result<Library, LedgerError> {
        load(&self.inner.ledger, seq).map(|(lib, _)| lib)
    }

    /// A job's full spec (recipe and request included), read from its request event.
    pub fn job_spec(&self, job: u128) -> Result<crate::store::event::JobSpec, String> {
        let seq = self
            .library()
            .jobs
            .get(job)
            .map(|j| j.requested_seq)
            .ok_or_else(|| format!("no job {}", ulid::Ulid::from(job)))?;
        let found = self
            .inner
            .ledger
            .read_after(seq - 1, 1)
            .map_err(|e| e.to_string())?;
        match found.first().map(Stored::event) {
            Some(Event::JobRequested { job: j, spec }) if *j == job => Ok(spec.clone()),
            _ => Err(format!(
                "the ledger has no request for job {} at seq {seq}",
                ulid::Ulid::from(job)
            )),
        }
    }

    /// Committed batches, in order, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[Stored]>> {
        self.inner.tx.subscribe()
    }

    /// Runs `request` on a blocking thread.
    pub async fn run(&self, origin: Origin, request: Request) -> Result<Outcome, ExecError> {
        let h = self.clone();
        match tokio::task::spawn_blocking(move || h.execute(origin, request)).await {
            Ok(r) => r,
            Err(e) => Err(ExecError::Ledger(LedgerError::Storage(format!(
                "the writer task failed: {e}"
            )))),
        }
    }

    /// The write path. Blocking: call from a blocking thread (see `run`).
    pub fn execute(&self, origin: Origin, request: Request) -> Result<Outcome, ExecError> {
        let inner = &*self.inner;
        let mut writer = lock(&inner.writer);
        let mut warnings = self.retry_dirty(&mut writer);
        let commands = self.prepare(&writer, request)?;
        let (events, hard_loras) = {
            let lib = self.library();
            let mut events = Vec::new();
            for cmd in &commands {
                events.extend(command::decide(&lib, cmd)?);
            }
            self.check_side_effects(&lib, &events)?;
            // The LoRAs hard deletes remove, named by the documents before they go.
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
            (events, loras)
        };
        if events.is_empty() {
            return Ok(Outcome {
                events: Vec::new(),
                warnings,
            });
        }
        let at = now_ms();
        let mut envelopes = Vec::with_capacity(events.len());
        for event in events {
            let id = writer
                .ulids
                .generate()
                .map(u128::from)
                .unwrap_or_else(|_| u128::from(ulid::Ulid::generate()));
            envelopes.push(Envelope {
                id,
                at,
                origin,
                event,
            });
        }
        let stored = inner.ledger.append(envelopes)?;
        {
            let mut lib = inner.library.write().unwrap_or_else(|p| p.into_inner());
            for s in &stored {
                lib.apply(s);
            }
        }
        warnings.extend(self.project(&mut writer, &stored, &hard_loras));
        self.maybe_snapshot(&mut writer, false);
        let shared: Arc<[Stored]> = stored.clone().into();
        // No subscriber is fine.
        let _ = inner.tx.send(shared);
        Ok(Outcome {
            events: stored,
            warnings,
        })
    }

    fn prepare(&self, writer: &Writer, request: Request) -> Result<Vec<Command>, ExecError> {
        let paths = &self.inner.paths;
        let skip = |c: Category| -> Vec<String> {
            writer
                .dirty
                .iter()
                .filter(|d| d.0 == c)
                .map(|d| d.2.clone())
                .collect()
        };
        Ok(match request {
            Request::Command(c) => vec![c],
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
                    let lib = self.library();
                    models::discover_checkpoints(&lib, root)
                }
                None => Vec::new(),
            },
            Request::Restore { to_seq } => {
                let target = load(&self.inner.ledger, to_seq)?.0;
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
        let found = crate::history::deleted::last_removal(&self.inner.ledger, c, slug)
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
        let before = load(&self.inner.ledger, s.seq - 1)?.0;
        Ok(match before.get(c, slug) {
            Some(e) => Ok((s.seq, e.state(c))),
            None => Err(format!(
                "{what} was not in the library before seq {}",
                s.seq
            )),
        })
    }

    /// What restoring to `to_seq` would change, without changing anything: the event it would
    /// append (`None`: nothing to do) and the library it applies to.
    pub fn restore_plan(&self, to_seq: u64) -> Result<(Option<Event>, Library), ExecError> {
        let target = load(&self.inner.ledger, to_seq)?.0;
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

    /// IO checks that must pass before anything is appended.
    fn check_side_effects(&self, lib: &Library, events: &[Event]) -> Result<(), Refusal> {
        let paths = &self.inner.paths;
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
    fn project(&self, writer: &mut Writer, stored: &[Stored], loras: &[String]) -> Vec<String> {
        let inner = &*self.inner;
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
        {
            let lib = self.library();
            if todo.len() > MANY_FILES {
                // A restore of many documents: written together, synced together.
                for ((c, slug, file), e) in files::converge_many(&lib, &inner.paths.data, &todo) {
                    warnings.push(format!("could not write data/{}/{file}: {e}", c.desc().dir));
                    writer.dirty.insert((c, slug, file));
                }
            } else {
                for (c, slug, file) in todo {
                    if let Err(e) = files::converge(&lib, &inner.paths.data, c, &slug, &file) {
                        warnings.push(format!("could not write data/{}/{file}: {e}", c.desc().dir));
                        writer.dirty.insert((c, slug, file));
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
        let Some(root) = self.inner.paths.loras.as_deref() else {
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

    fn retry_dirty(&self, writer: &mut Writer) -> Vec<String> {
        if writer.dirty.is_empty() {
            return Vec::new();
        }
        let lib = self.library();
        let mut warnings = Vec::new();
        let dirty = std::mem::take(&mut writer.dirty);
        for (c, slug, file) in dirty {
            if let Err(e) = files::converge(&lib, &self.inner.paths.data, c, &slug, &file) {
                warnings.push(format!(
                    "still cannot write data/{}/{file}: {e}",
                    c.desc().dir
                ));
                writer.dirty.insert((c, slug, file));
            }
        }
        warnings
    }

    /// Converges the files of every app-made change after the projector's checkpoint: a crash
    /// between a commit and its file write is finished here, before any sync can mistake the
    /// old file for an outside edit.
    fn recover_files(&self) -> Result<(), LedgerError> {
        let ledger = &self.inner.ledger;
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
        let lib = self.library();
        let mut writer = lock(&self.inner.writer);
        if todo.len() > MANY_FILES {
            for ((c, slug, file), e) in files::converge_many(&lib, &self.inner.paths.data, &todo) {
                tracing::error!("could not recover data/{}/{file}: {e}", c.desc().dir);
                writer.dirty.insert((c, slug, file));
            }
            return Ok(());
        }
        for (c, slug, file) in todo {
            match files::converge(&lib, &self.inner.paths.data, c, &slug, &file) {
                Ok(true) => tracing::info!("recovered data/{}/{slug} after a crash", c.desc().dir),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("could not recover data/{}/{file}: {e}", c.desc().dir);
                    writer.dirty.insert((c, slug, file));
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

//! The library projection: a pure fold of ledger events into the current documents, covers,
//! default fields, sync failures, preferences and settings. It never does IO and never fails,
//! so replaying from seq 1 always rebuilds the same state.

use crate::library::category::Category;
use crate::store::event::{DocBody, EntryState, Event, Stored, SweepCell};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One document in the library.
#[derive(Clone, Debug)]
pub struct Entry {
    pub slug: String,
    pub id: String,
    pub name: String,
    /// The file name inside the category's folder.
    pub file: String,
    /// The document text, byte for byte what its file holds.
    pub json: Arc<str>,
    /// The seq of the last event that touched this entry.
    pub version: u64,
    /// The seq of the last event that changed the document text (not its cover or default
    /// fields): what decides whether a cover made from an older version is stale.
    pub content_version: u64,
    pub cover: Option<String>,
    pub default_fields: Vec<String>,
    /// Starred in its gallery.
    pub favourite: bool,
    /// The document parsed, made on first use and shared by clones (a cache, not state).
    parsed: Arc<std::sync::OnceLock<Arc<serde_json::Value>>>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.slug == o.slug
            && self.id == o.id
            && self.name == o.name
            && self.file == o.file
            && self.json == o.json
            && self.version == o.version
            && self.content_version == o.content_version
            && self.cover == o.cover
            && self.default_fields == o.default_fields
            && self.favourite == o.favourite
    }
}

impl Entry {
    /// The document as a JSON value, parsed once (`Null` if the text is not JSON, which the
    /// command checks prevent).
    pub fn value(&self) -> Arc<serde_json::Value> {
        self.parsed
            .get_or_init(|| Arc::new(serde_json::from_str(&self.json).unwrap_or_default()))
            .clone()
    }

    /// The document parsed; `None` only if the stored text is not a JSON object, which the
    /// command checks prevent.
    pub fn data(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        match serde_json::from_str(&self.json) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        }
    }
}

/// A file that could not be taken into the library.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub hash: u64,
    pub error: String,
    pub seq: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shelf {
    pub docs: BTreeMap<String, Entry>,
    /// File name → slug of the entry that owns it.
    pub by_file: HashMap<String, String>,
    pub failures: BTreeMap<String, Failure>,
    /// Bumped by every event that changes this shelf, so readers can cache views of it.
    pub generation: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Library {
    /// The seq of the last event folded in.
    pub seq: u64,
    shelves: Vec<Shelf>,
    /// Scope (e.g. `characters/tifa`) → key → value as JSON text.
    pub preferences: BTreeMap<String, BTreeMap<String, String>>,
    /// Non-secret settings as JSON object text.
    pub settings: String,
    pub default_checkpoint: Option<String>,
    /// Generation jobs (not rewound by a restore).
    pub jobs: crate::jobs::projection::Jobs,
    /// The workflow template in use (`None` until the first `WorkflowSynced`).
    pub workflow: Option<Template>,
    /// The template file's last refusal, while the file stays broken.
    pub workflow_failure: Option<Failure>,
    /// Assistant drafts and bulk runs.
    pub assistant: crate::assistant::projection::Assistant,
    /// Strengths sweeps, by id (the batch id of their jobs).
    pub sweeps: BTreeMap<u128, Sweep>,
}

/// A strengths sweep as kept: what was swept and each cell's job.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub id: u128,
    pub seq: u64,
    pub at: u64,
    pub target: (Category, String),
    /// The shared generation request, as JSON text.
    pub request: Arc<str>,
    /// The axes, as JSON text (`{"x": {...}, "y": {...}}`).
    pub axes: Arc<str>,
    pub cells: Vec<SweepCell>,
}

/// A version of the user's workflow template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The seq of the `WorkflowSynced` event: the version recipes name.
    pub version: u64,
    pub json: Arc<str>,
    parsed: Arc<std::sync::OnceLock<Arc<serde_json::Value>>>,
}

impl PartialEq for Template {
    fn eq(&self, o: &Self) -> bool {
        self.version == o.version && self.json == o.json
    }
}

impl Template {
    pub fn new(version: u64, json: &str) -> Template {
        Template {
            version,
            json: Arc::from(json),
            parsed: Arc::default(),
        }
    }

    /// The template parsed, once (`Null` if the text is not JSON, which the checks before
    /// `WorkflowSynced` prevent).
    pub fn value(&self) -> Arc<serde_json::Value> {
        self.parsed
            .get_or_init(|| Arc::new(serde_json::from_str(&self.json).unwrap_or_default()))
            .clone()
    }
}

impl Default for Library {
    fn default() -> Self {
        Library {
            seq: 0,
            shelves: vec![Shelf::default(); Category::ALL.len()],
            preferences: BTreeMap::new(),
            settings: "{}".into(),
            default_checkpoint: None,
            jobs: crate::jobs::projection::Jobs::default(),
            workflow: None,
            workflow_failure: None,
            assistant: Default::default(),
            sweeps: BTreeMap::new(),
        }
    }
}

impl Library {
    pub fn shelf(&self, c: Category) -> &Shelf {
        &self.shelves[c.index()]
    }

    fn shelf_mut(&mut self, c: Category) -> &mut Shelf {
        &mut self.shelves[c.index()]
    }

    pub fn get(&self, c: Category, slug: &str) -> Option<&Entry> {
        self.shelf(c).docs.get(slug)
    }

    pub fn count(&self, c: Category) -> usize {
        self.shelf(c).docs.len()
    }

    pub fn document_count(&self) -> usize {
        self.shelves.iter().map(|s| s.docs.len()).sum()
    }

    /// Folds one committed event in. Events were checked when they were decided, so an event
    /// about a missing entry is ignored rather than treated as an error.
    pub fn apply(&mut self, stored: &Stored) {
        let seq = stored.seq;
        self.seq = seq;
        if let Some(c) = stored.event().category() {
            self.shelf_mut(c).generation += 1;
        }
        match stored.event() {
            Event::DocumentSynced {
                category,
                slug,
                file,
                body,
            }
            | Event::DocumentCreated {
                category,
                slug,
                file,
                body,
                ..
            } => {
                self.shelf_mut(*category).put(slug, file, body, seq);
                if matches!(stored.event(), Event::DocumentCreated { .. }) {
                    self.assistant
                        .apply(seq, stored.envelope.at, stored.event());
                }
            }
            Event::DocumentEdited {
                category,
                slug,
                body,
            } => {
                if let Some(e) = self.shelf_mut(*category).docs.get_mut(slug) {
                    e.id.clone_from(&body.id);
                    e.name.clone_from(&body.name);
                    if *e.json != *body.json {
                        e.content_version = seq;
                    }
                    e.json = Arc::from(body.json.as_str());
                    e.parsed = Arc::default();
                    e.version = seq;
                }
            }
            Event::DocumentDeleted {
                category,
                slug,
                file,
                ..
            }
            | Event::FileVanished {
                category,
                slug,
                file,
            } => {
                let shelf = self.shelf_mut(*category);
                // Only the entry that still lives in that file goes.
                if shelf.docs.get(slug).is_some_and(|e| &e.file == file) {
                    shelf.docs.remove(slug);
                    shelf.by_file.remove(file);
                }
            }
            Event::SyncFailed {
                category,
                file,
                hash,
                error,
            } => {
                self.shelf_mut(*category).failures.insert(
                    file.clone(),
                    Failure {
                        hash: *hash,
                        error: error.clone(),
                        seq,
                    },
                );
            }
            Event::SyncFailureCleared { category, file } => {
                self.shelf_mut(*category).failures.remove(file);
            }
            Event::CoverSet {
                category,
                slug,
                path,
            } => {
                if let Some(e) = self.shelf_mut(*category).docs.get_mut(slug) {
                    e.cover = Some(path.clone());
                    e.version = seq;
                }
            }
            Event::CoversCleared { category } => {
                for e in self.shelf_mut(*category).docs.values_mut() {
                    if e.cover.take().is_some() {
                        e.version = seq;
                    }
                }
            }
            Event::DefaultFieldsSaved {
                category,
                slug,
                fields,
            } => {
                if let Some(e) = self.shelf_mut(*category).docs.get_mut(slug) {
                    e.default_fields.clone_from(fields);
                    e.version = seq;
                }
            }
            Event::PreferenceSet { scope, key, json } => {
                self.preferences
                    .entry(scope.clone())
                    .or_default()
                    .insert(key.clone(), json.clone());
            }
            Event::SettingsChanged { json, .. } => self.settings.clone_from(json),
            Event::DefaultCheckpointSet { path } => self.default_checkpoint.clone_from(path),
            Event::JobRequested { .. }
            | Event::JobRequestedCompact { .. }
            | Event::JobSubmitted { .. }
            | Event::JobSucceeded { .. }
            | Event::JobFailed { .. }
            | Event::JobSetAside { .. }
            | Event::JobCancelled { .. }
            | Event::QueuePaused { .. }
            | Event::EndlessStarted { .. }
            | Event::EndlessStopped { .. } => {
                self.jobs.apply(seq, stored.envelope.at, stored.event());
            }
            Event::WorkflowSynced { json, .. } => {
                self.workflow = Some(Template::new(seq, json));
                self.workflow_failure = None;
            }
            Event::FavouriteSet { category, slug, on } => {
                if let Some(e) = self.shelf_mut(*category).docs.get_mut(slug) {
                    e.favourite = *on;
                }
            }
            Event::WorkflowRefused { hash, error, .. } => {
                self.workflow_failure = Some(Failure {
                    hash: *hash,
                    error: error.clone(),
                    seq,
                });
            }
            Event::DraftMade { .. }
            | Event::BulkStarted { .. }
            | Event::BulkItemFailed { .. }
            | Event::BulkCancelled { .. } => {
                self.assistant
                    .apply(seq, stored.envelope.at, stored.event());
            }
            Event::StrengthsSwept {
                sweep,
                target,
                request,
                axes,
                cells,
            } => {
                self.sweeps.insert(
                    *sweep,
                    Sweep {
                        id: *sweep,
                        seq,
                        at: stored.envelope.at,
                        target: target.clone(),
                        request: Arc::from(request.as_str()),
                        axes: Arc::from(axes.as_str()),
                        cells: cells.clone(),
                    },
                );
            }
            // Images are the gallery index's (`gallery`); provenance is history's to show.
            Event::ImageFavouriteSet { .. }
            | Event::ImageDeleted { .. }
            | Event::EntryTransferred { .. } => {}
            Event::Restored {
                removed,
                put,
                preferences,
                settings,
                default_checkpoint,
                ..
            } => {
                for r in removed {
                    let shelf = self.shelf_mut(r.category);
                    if shelf.docs.get(&r.slug).is_some_and(|e| e.file == r.file) {
                        shelf.docs.remove(&r.slug);
                        shelf.by_file.remove(&r.file);
                    }
                }
                for p in put {
                    self.shelf_mut(p.category).put_state(p, seq);
                }
                for p in preferences {
                    match &p.json {
                        Some(json) => {
                            self.preferences
                                .entry(p.scope.clone())
                                .or_default()
                                .insert(p.key.clone(), json.clone());
                        }
                        None => {
                            if let Some(m) = self.preferences.get_mut(&p.scope) {
                                m.remove(&p.key);
                                if m.is_empty() {
                                    self.preferences.remove(&p.scope);
                                }
                            }
                        }
                    }
                }
                if let Some(s) = settings {
                    self.settings.clone_from(s);
                }
                if let Some(d) = default_checkpoint {
                    self.default_checkpoint.clone_from(d);
                }
            }
            Event::Undeleted { entry, .. } => {
                self.shelf_mut(entry.category).put_state(entry, seq);
            }
        }
        if let Event::Restored { put, removed, .. } = stored.event() {
            // A restore may change several shelves; `category()` names none.
            let mut touched: Vec<Category> = put
                .iter()
                .map(|p| p.category)
                .chain(removed.iter().map(|r| r.category))
                .collect();
            touched.sort();
            touched.dedup();
            for c in touched {
                self.shelf_mut(c).generation += 1;
            }
        }
    }
}

impl Shelf {
    fn put(&mut self, slug: &str, file: &str, body: &DocBody, seq: u64) {
        // A file whose id changed moves to the new slug: drop the entry it used to hold.
        if let Some(old) = self.by_file.get(file)
            && old != slug
        {
            let old = old.clone();
            self.docs.remove(&old);
        }
        let (cover, default_fields, favourite, content_version) = match self.docs.remove(slug) {
            Some(prev) => {
                if prev.file != file {
                    self.by_file.remove(&prev.file);
                }
                let cv = if *prev.json == *body.json {
                    prev.content_version
                } else {
                    seq
                };
                (prev.cover, prev.default_fields, prev.favourite, cv)
            }
            None => (None, Vec::new(), false, seq),
        };
        self.by_file.insert(file.to_string(), slug.to_string());
        self.failures.remove(file);
        self.docs.insert(
            slug.to_string(),
            Entry {
                slug: slug.to_string(),
                id: body.id.clone(),
                name: body.name.clone(),
                file: file.to_string(),
                json: Arc::from(body.json.as_str()),
                version: seq,
                content_version,
                cover,
                default_fields,
                favourite,
                parsed: Arc::default(),
            },
        );
    }

    /// Puts an entry back in full (restore, undelete). Its content version moves only if the
    /// text differs from what the slug holds now.
    fn put_state(&mut self, p: &EntryState, seq: u64) {
        if let Some(old) = self.by_file.get(&p.file)
            && *old != p.slug
        {
            let old = old.clone();
            self.docs.remove(&old);
        }
        let content_version = match self.docs.remove(&p.slug) {
            Some(prev) => {
                if prev.file != p.file {
                    self.by_file.remove(&prev.file);
                }
                if *prev.json == *p.body.json {
                    prev.content_version
                } else {
                    seq
                }
            }
            None => seq,
        };
        self.by_file.insert(p.file.clone(), p.slug.clone());
        self.docs.insert(
            p.slug.clone(),
            Entry {
                slug: p.slug.clone(),
                id: p.body.id.clone(),
                name: p.body.name.clone(),
                file: p.file.clone(),
                json: Arc::from(p.body.json.as_str()),
                version: seq,
                content_version,
                cover: p.cover.clone(),
                default_fields: p.default_fields.clone(),
                favourite: p.favourite,
                parsed: Arc::default(),
            },
        );
    }
}

impl Entry {
    /// The entry in full, as a restore or an undelete would put it back.
    pub fn state(&self, category: Category) -> EntryState {
        EntryState {
            category,
            slug: self.slug.clone(),
            file: self.file.clone(),
            body: DocBody {
                id: self.id.clone(),
                name: self.name.clone(),
                json: self.json.to_string(),
            },
            cover: self.cover.clone(),
            default_fields: self.default_fields.clone(),
            favourite: self.favourite,
        }
    }
}

/// The snapshot encoding's version. Snapshots are caches of a fold, not history: a snapshot of
/// another version is ignored and the ledger is replayed instead.
const SNAPSHOT_V: u8 = 9;

#[derive(Serialize, Deserialize)]
struct SnapEntry {
    slug: String,
    id: String,
    name: String,
    file: String,
    json: String,
    version: u64,
    content_version: u64,
    cover: Option<String>,
    default_fields: Vec<String>,
    favourite: bool,
}

#[derive(Serialize, Deserialize)]
struct SnapShelf {
    docs: Vec<SnapEntry>,
    failures: Vec<(String, u64, String, u64)>,
    generation: u64,
}

#[derive(Serialize, Deserialize)]
struct Snap {
    seq: u64,
    shelves: Vec<SnapShelf>,
    preferences: Vec<(String, Vec<(String, String)>)>,
    settings: String,
    default_checkpoint: Option<String>,
    jobs: crate::jobs::projection::Jobs,
    /// (version, text) of the template in use.
    workflow: Option<(u64, String)>,
    workflow_failure: Option<(u64, String, u64)>,
    assistant: crate::assistant::projection::Assistant,
    sweeps: Vec<SnapSweep>,
}

#[derive(Serialize, Deserialize)]
struct SnapSweep {
    id: u128,
    seq: u64,
    at: u64,
    target: (Category, String),
    request: String,
    axes: String,
    cells: Vec<SweepCell>,
}

impl Library {
    /// Encodes the projection for a snapshot.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let snap = Snap {
            seq: self.seq,
            shelves: self
                .shelves
                .iter()
                .map(|s| SnapShelf {
                    docs: s
                        .docs
                        .values()
                        .map(|e| SnapEntry {
                            slug: e.slug.clone(),
                            id: e.id.clone(),
                            name: e.name.clone(),
                            file: e.file.clone(),
                            json: e.json.to_string(),
                            version: e.version,
                            content_version: e.content_version,
                            cover: e.cover.clone(),
                            default_fields: e.default_fields.clone(),
                            favourite: e.favourite,
                        })
                        .collect(),
                    failures: s
                        .failures
                        .iter()
                        .map(|(f, x)| (f.clone(), x.hash, x.error.clone(), x.seq))
                        .collect(),
                    generation: s.generation,
                })
                .collect(),
            preferences: self
                .preferences
                .iter()
                .map(|(k, m)| {
                    (
                        k.clone(),
                        m.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
                    )
                })
                .collect(),
            settings: self.settings.clone(),
            default_checkpoint: self.default_checkpoint.clone(),
            jobs: self.jobs.clone(),
            workflow: self
                .workflow
                .as_ref()
                .map(|w| (w.version, w.json.to_string())),
            workflow_failure: self
                .workflow_failure
                .as_ref()
                .map(|f| (f.hash, f.error.clone(), f.seq)),
            assistant: self.assistant.clone(),
            sweeps: self
                .sweeps
                .values()
                .map(|w| SnapSweep {
                    id: w.id,
                    seq: w.seq,
                    at: w.at,
                    target: w.target.clone(),
                    request: w.request.to_string(),
                    axes: w.axes.to_string(),
                    cells: w.cells.clone(),
                })
                .collect(),
        };
        let mut out = vec![SNAPSHOT_V];
        if let Ok(b) = bincode::serde::encode_to_vec(&snap, bincode::config::standard()) {
            out.extend_from_slice(&b);
        }
        out
    }

    /// Decodes a snapshot; `None` if it is of another version or damaged.
    pub fn from_snapshot(bytes: &[u8]) -> Option<Library> {
        let (&v, rest) = bytes.split_first()?;
        if v != SNAPSHOT_V {
            return None;
        }
        let (snap, _): (Snap, usize) =
            bincode::serde::decode_from_slice(rest, bincode::config::standard()).ok()?;
        if snap.shelves.len() != Category::ALL.len() {
            return None;
        }
        let shelves = snap
            .shelves
            .into_iter()
            .map(|s| {
                let mut shelf = Shelf {
                    generation: s.generation,
                    ..Shelf::default()
                };
                for e in s.docs {
                    shelf.by_file.insert(e.file.clone(), e.slug.clone());
                    shelf.docs.insert(
                        e.slug.clone(),
                        Entry {
                            slug: e.slug,
                            id: e.id,
                            name: e.name,
                            file: e.file,
                            json: Arc::from(e.json),
                            version: e.version,
                            content_version: e.content_version,
                            cover: e.cover,
                            default_fields: e.default_fields,
                            favourite: e.favourite,
                            parsed: Arc::default(),
                        },
                    );
                }
                for (file, hash, error, seq) in s.failures {
                    shelf.failures.insert(file, Failure { hash, error, seq });
                }
                shelf
            })
            .collect();
        Some(Library {
            seq: snap.seq,
            shelves,
            preferences: snap
                .preferences
                .into_iter()
                .map(|(k, m)| (k, m.into_iter().collect()))
                .collect(),
            settings: snap.settings,
            default_checkpoint: snap.default_checkpoint,
            jobs: snap.jobs,
            workflow: snap.workflow.map(|(v, j)| Template::new(v, &j)),
            workflow_failure: snap.workflow_failure.map(|(hash, error, seq)| Failure {
                hash,
                error,
                seq,
            }),
            assistant: snap.assistant,
            sweeps: snap
                .sweeps
                .into_iter()
                .map(|w| {
                    (
                        w.id,
                        Sweep {
                            id: w.id,
                            seq: w.seq,
                            at: w.at,
                            target: w.target,
                            request: Arc::from(w.request),
                            axes: Arc::from(w.axes),
                            cells: w.cells,
                        },
                    )
                })
                .collect(),
        })
    }
}

//! The event vocabulary and its frozen byte encoding: the envelope, every event kind, and the
//! schema-versioned bincode codec. Stored shapes never change; new shapes are new variants.

use crate::library::category::Category;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who caused an event. Stored by variant index: append only.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    Web,
    Watcher,
    Startup,
    Reactor,
    Cli,
    Mcp,
    Assistant,
}

impl Origin {
    /// Every origin, in variant order.
    pub const ALL: [Origin; 7] = [
        Origin::Web,
        Origin::Watcher,
        Origin::Startup,
        Origin::Reactor,
        Origin::Cli,
        Origin::Mcp,
        Origin::Assistant,
    ];

    /// An origin by its name (`web`, `watcher`, …).
    pub fn parse(s: &str) -> Option<Origin> {
        Origin::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Web => "web",
            Origin::Watcher => "watcher",
            Origin::Startup => "startup",
            Origin::Reactor => "reactor",
            Origin::Cli => "cli",
            Origin::Mcp => "mcp",
            Origin::Assistant => "assistant",
        }
    }
}

/// How a document came to be created in the app (as opposed to synced from disk).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub enum Source {
    /// Typed in or posted through the API.
    Manual,
    /// Cloned from another entry of the same category (its slug).
    Clone { from: String },
    /// Accepted from an assistant draft.
    Assistant { draft_id: String },
    /// Made for a model file found on disk with no JSON (checkpoint defaults).
    Discovered,
    // ---- workshop (issue 9) ----
    /// Turned from another kind of entry by the transfer page: the source entry, its version
    /// (seq) at the time, and for a character's wardrobe outfit, the outfit's name.
    Transfer {
        category: Category,
        slug: String,
        version: u64,
        part: Option<String>,
    },
}

/// A library document as carried by events: the exact bytes of its JSON file, plus the fields
/// the projections need so replay never parses JSON.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct DocBody {
    pub id: String,
    pub name: String,
    /// The file's full text, exactly as it is (synced) or will be (written) on disk.
    pub json: String,
}

/// Every fact the ledger records. Externally tagged, no `Value`, no skipped fields (bincode
/// rules in design.md). Never reorder, remove or reshape a variant.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub enum Event {
    /// A file in `data/` was read and differs from the projection (new or changed on disk).
    DocumentSynced {
        category: Category,
        slug: String,
        file: String,
        body: DocBody,
    },
    /// The app created a document; the file projector writes `file`.
    DocumentCreated {
        category: Category,
        slug: String,
        file: String,
        body: DocBody,
        source: Source,
    },
    /// The app replaced a document's content; its file keeps its name.
    DocumentEdited {
        category: Category,
        slug: String,
        body: DocBody,
    },
    /// Removed from the library and its JSON file deleted; `hard` also deleted the LoRA file.
    DocumentDeleted {
        category: Category,
        slug: String,
        file: String,
        hard: bool,
    },
    /// The document's file disappeared from disk while the app was not looking.
    FileVanished {
        category: Category,
        slug: String,
        file: String,
    },
    /// A file could not be taken into the library; it was left untouched.
    SyncFailed {
        category: Category,
        file: String,
        /// Content hash of the refused bytes, so the same failure is not recorded twice.
        hash: u64,
        error: String,
    },
    /// A previously failed file now parses, or is gone.
    SyncFailureCleared {
        category: Category,
        file: String,
    },
    CoverSet {
        category: Category,
        slug: String,
        /// Path relative to the static root, e.g. `uploads/characters/tifa/cover_….png`.
        path: String,
    },
    CoversCleared {
        category: Category,
    },
    DefaultFieldsSaved {
        category: Category,
        slug: String,
        fields: Vec<String>,
    },
    /// A per-page preference (what the original kept in the Flask session).
    PreferenceSet {
        scope: String,
        key: String,
        /// The value as JSON text.
        json: String,
    },
    /// Non-secret settings after the change, as a JSON object text. A changed LLM key is only
    /// flagged: the key itself never enters the ledger.
    SettingsChanged {
        json: String,
        llm_key_changed: bool,
    },
    DefaultCheckpointSet {
        path: Option<String>,
    },
    /// A generation was asked for, with everything needed to run it.
    JobRequested {
        job: u128,
        spec: JobSpec,
    },
    /// The reactor handed the job to a backend (or found it already there).
    JobSubmitted {
        job: u128,
        backend: String,
        prompt_id: String,
        attempt: u32,
        /// The backend lacked the Impact Pack, so the detailer nodes were dropped.
        vanilla: bool,
    },
    /// The job's images were saved (paths relative to the static root).
    JobSucceeded {
        job: u128,
        images: Vec<String>,
    },
    /// An attempt failed. `retryable` attempts go back to the queue.
    JobFailed {
        job: u128,
        error: String,
        node: Option<String>,
        retryable: bool,
    },
    /// Failed the same way too often: kept, not retried any more.
    JobSetAside {
        job: u128,
        reason: String,
    },
    JobCancelled {
        job: u128,
    },
    QueuePaused {
        paused: bool,
    },
    /// Endless generation: keep making jobs from `request` (a generation request as JSON).
    EndlessStarted {
        endless: u128,
        request: String,
    },
    EndlessStopped {
        endless: u128,
    },
    /// The workflow template file (`--workflow`) was read, passed the engine's checks, and
    /// differs from the version in use. Its seq is the template version recipes name.
    WorkflowSynced {
        /// The file as configured (for messages only).
        file: String,
        /// The file's full text.
        json: String,
    },
    /// The workflow template file could not be used; the last good version stays in use.
    WorkflowRefused {
        file: String,
        /// Content hash of the refused bytes, so the same failure is not recorded twice.
        hash: u64,
        error: String,
    },
    // ---- library pages (issue 8) ----
    /// An entry was starred (or unstarred) in its gallery. Not part of the document.
    FavouriteSet {
        category: Category,
        slug: String,
        on: bool,
    },
    // ---- assistant (issue 11) ----
    /// The assistant drafted a document. A single draft creates nothing until it is accepted
    /// (`DocumentCreated` with `Source::Assistant`); a bulk run's draft is committed together
    /// with its entry (or with `BulkItemFailed`).
    DraftMade {
        draft: u128,
        made: Draft,
    },
    /// A bulk run was started: one draft per LoRA file listed, in order.
    BulkStarted {
        batch: u128,
        category: Category,
        loras: Vec<String>,
    },
    /// A bulk run's LoRA could not be drafted or created; the run goes on with the next one.
    BulkItemFailed {
        batch: u128,
        lora: String,
        error: String,
    },
    /// A bulk run was stopped; LoRAs not drafted yet are left alone.
    BulkCancelled {
        batch: u128,
    },
    // ---- history (issue 10) ----
    /// The library was put back as it was right after `to_seq`: documents, covers, default
    /// fields, preferences, settings and the default checkpoint. Jobs, images, sync failures
    /// and the workflow template are not rewound. The event carries the difference computed
    /// when it was decided, so the fold never reads the ledger.
    Restored {
        to_seq: u64,
        /// Entries taken out first: present before, absent (or in another file) at `to_seq`.
        removed: Vec<EntryRef>,
        /// Entries put back as they were at `to_seq` (new, or different in any way).
        put: Vec<EntryState>,
        /// Preferences that differ; `json: None` means the key was not set at `to_seq`.
        preferences: Vec<PreferenceState>,
        /// The settings at `to_seq`, when they differ.
        settings: Option<String>,
        /// The default checkpoint at `to_seq` (`Some(None)`: none), when it differs.
        default_checkpoint: Option<Option<String>>,
    },
    /// A deleted entry (soft delete, or its file removed outside the app) put back as it was
    /// right before `deleted_seq`.
    Undeleted {
        deleted_seq: u64,
        entry: EntryState,
    },
    // ---- workshop (issue 9) ----
    /// An image was starred (or unstarred) in the image gallery. `path` is the image as events
    /// name images (`uploads/<category>/<slug>/…`).
    ImageFavouriteSet {
        path: String,
        on: bool,
    },
    /// An image was deleted from the gallery; its file is removed once this is committed. The
    /// job that made it (if any) and that job's recipe stay in the ledger.
    ImageDeleted {
        path: String,
        job: Option<u128>,
    },
    /// A strengths sweep was started: the jobs of one batch (`sweep`), each made at the
    /// weight(s) of its cell, everything else fixed.
    StrengthsSwept {
        sweep: u128,
        target: (Category, String),
        /// The generation request every cell shares, as JSON text (its seed is fixed).
        request: String,
        /// The swept axes as JSON text: `{"x": {"slot", "source", "min", "max", "step"}, "y": …}`.
        axes: String,
        cells: Vec<SweepCell>,
    },
    /// An entry (or one outfit of a character's wardrobe, `from_part`) was turned into another
    /// kind: a new entry, or an outfit added to a character's wardrobe (`to_part`). `unmapped`
    /// names the source fields that had no place in the new kind (shown to the user, kept here).
    EntryTransferred {
        from: Category,
        from_slug: String,
        from_version: u64,
        from_part: Option<String>,
        to: Category,
        to_slug: String,
        to_part: Option<String>,
        unmapped: Vec<String>,
    },
    // ---- queue (issue 12) ----
    /// A generation was asked for: the same fact as `JobRequested`, with the recipe stored as
    /// a patch against the recipe of an earlier `JobRequested` event. `Handle::job_spec` gives
    /// back the full spec, its recipe byte for byte the text that was requested.
    JobRequestedCompact {
        job: u128,
        spec: CompactSpec,
    },
}

/// Where an assistant draft came from and what it was. Frozen shape (see `Event`).
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Draft {
    pub category: Category,
    /// The model that wrote it, as `provider/model` (e.g. `openrouter/openai/gpt-4o-mini`).
    pub model: String,
    /// What the assistant was asked (the user's description, or what a bulk run said about
    /// the LoRA file).
    pub request: String,
    /// The tool calls made while drafting, as a JSON array text of
    /// `{"tool","server","arguments","result","error"}` objects.
    pub tool_calls: String,
    /// The drafted document as JSON text, before any human edit.
    pub document: String,
    /// The bulk run it was made for, if any.
    pub batch: Option<u128>,
    /// The LoRA file (relative to the LoRA root) a bulk run drafted it for.
    pub lora: Option<String>,
}

/// One library entry in full, as a restore or an undelete puts it back. Frozen shape.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct EntryState {
    pub category: Category,
    pub slug: String,
    pub file: String,
    pub body: DocBody,
    pub cover: Option<String>,
    pub default_fields: Vec<String>,
    /// Starred in its gallery.
    pub favourite: bool,
}

/// An entry a restore takes out (its file is removed unless another entry takes it). Frozen.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct EntryRef {
    pub category: Category,
    pub slug: String,
    pub file: String,
}

/// A preference as a restore puts it back; `json: None` removes the key. Frozen shape.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct PreferenceState {
    pub scope: String,
    pub key: String,
    pub json: Option<String>,
}

/// One cell of a strengths sweep: its job and the weight(s) it is made at. Frozen shape.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct SweepCell {
    pub job: u128,
    pub x: f64,
    pub y: Option<f64>,
}

/// A `JobSpec` whose recipe is a patch against an earlier full recipe. Frozen shape.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct CompactSpec {
    pub label: String,
    pub target: Option<(Category, String)>,
    pub set_cover: bool,
    pub recipe: RecipePatch,
    pub request: String,
    pub batch: Option<u128>,
    pub retry_of: Option<u128>,
    pub endless: Option<u128>,
}

/// A recipe as the difference from a base recipe (see `jobs::recipe`). Frozen shape.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct RecipePatch {
    /// The seq of the `JobRequested` event whose recipe is the base.
    pub base: u64,
    /// Every text the patch sets, once (values refer to them by position).
    pub strings: Vec<String>,
    pub root: PatchNode,
}

/// How one JSON value differs from the base's value at the same place. Frozen shape.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub enum PatchNode {
    /// Equal to the base.
    Same,
    /// Replaced as a whole.
    Set(PatchValue),
    /// An object with exactly the base's keys in the base's order; the members at these
    /// positions differ (ascending).
    Members(Vec<(u32, PatchNode)>),
    /// An array as long as the base's; the items at these positions differ (ascending).
    Items(Vec<(u32, PatchNode)>),
}

/// A JSON value inside a patch; texts (and object keys) are positions in `RecipePatch::strings`.
/// Numbers keep serde_json's three kinds so they print as they did. Frozen shape.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub enum PatchValue {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(u32),
    List(Vec<PatchValue>),
    Map(Vec<(u32, PatchValue)>),
}

impl CompactSpec {
    /// The spec with its recipe text put back (the text is made by `jobs::recipe::expand`).
    pub fn with_recipe(&self, recipe: String) -> JobSpec {
        JobSpec {
            label: self.label.clone(),
            target: self.target.clone(),
            set_cover: self.set_cover,
            recipe,
            request: self.request.clone(),
            batch: self.batch,
            retry_of: self.retry_of,
            endless: self.endless,
        }
    }
}

/// What a job is for and how to run it. Frozen shape (see `Event`).
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct JobSpec {
    /// A short human description, e.g. `characters/tifa_lockhart`.
    pub label: String,
    /// The library entry the images belong to; `None` for the generator.
    pub target: Option<(Category, String)>,
    /// Whether the first image becomes the target's cover (the original's `replace`).
    pub set_cover: bool,
    /// The recipe as JSON text: prompts, workflow, seed, checkpoint, LoRAs, document versions.
    pub recipe: String,
    /// The generation request as JSON text, to run it again with today's library.
    pub request: String,
    /// Jobs made together (a strengths sweep, "generate missing covers").
    pub batch: Option<u128>,
    pub retry_of: Option<u128>,
    pub endless: Option<u128>,
}

impl Event {
    /// The snake_case kind name used by the JSON API.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::DocumentSynced { .. } => "document_synced",
            Event::DocumentCreated { .. } => "document_created",
            Event::DocumentEdited { .. } => "document_edited",
            Event::DocumentDeleted { .. } => "document_deleted",
            Event::FileVanished { .. } => "file_vanished",
            Event::SyncFailed { .. } => "sync_failed",
            Event::SyncFailureCleared { .. } => "sync_failure_cleared",
            Event::CoverSet { .. } => "cover_set",
            Event::CoversCleared { .. } => "covers_cleared",
            Event::DefaultFieldsSaved { .. } => "default_fields_saved",
            Event::PreferenceSet { .. } => "preference_set",
            Event::SettingsChanged { .. } => "settings_changed",
            Event::DefaultCheckpointSet { .. } => "default_checkpoint_set",
            Event::JobRequested { .. } => "job_requested",
            Event::JobSubmitted { .. } => "job_submitted",
            Event::JobSucceeded { .. } => "job_succeeded",
            Event::JobFailed { .. } => "job_failed",
            Event::JobSetAside { .. } => "job_set_aside",
            Event::JobCancelled { .. } => "job_cancelled",
            Event::QueuePaused { .. } => "queue_paused",
            Event::EndlessStarted { .. } => "endless_started",
            Event::EndlessStopped { .. } => "endless_stopped",
            Event::WorkflowSynced { .. } => "workflow_synced",
            Event::WorkflowRefused { .. } => "workflow_refused",
            Event::FavouriteSet { .. } => "favourite_set",
            Event::DraftMade { .. } => "draft_made",
            Event::BulkStarted { .. } => "bulk_started",
            Event::BulkItemFailed { .. } => "bulk_item_failed",
            Event::BulkCancelled { .. } => "bulk_cancelled",
            Event::Restored { .. } => "restored",
            Event::Undeleted { .. } => "undeleted",
            Event::ImageFavouriteSet { .. } => "image_favourite_set",
            Event::ImageDeleted { .. } => "image_deleted",
            Event::StrengthsSwept { .. } => "strengths_swept",
            Event::EntryTransferred { .. } => "entry_transferred",
            // ---- queue (issue 12) ----
            // The same fact as `JobRequested`, stored more compactly.
            Event::JobRequestedCompact { .. } => "job_requested",
        }
    }

    /// The first position of the kind's name in `KINDS` (its stored variant index, except that
    /// `JobRequestedCompact` shares `job_requested`'s), used by the ledger's indexes.
    pub fn kind_code(&self) -> u8 {
        KINDS
            .iter()
            .position(|k| *k == self.kind())
            .map_or(u8::MAX, |i| i as u8)
    }

    /// Every library entry the event changes: its subject, or for a restore every entry it
    /// puts back or takes out.
    pub fn subjects(&self) -> Vec<(Category, &str)> {
        match self {
            Event::Restored { removed, put, .. } => {
                let mut out: Vec<(Category, &str)> = removed
                    .iter()
                    .map(|r| (r.category, r.slug.as_str()))
                    .chain(put.iter().map(|p| (p.category, p.slug.as_str())))
                    .collect();
                out.sort();
                out.dedup();
                out
            }
            _ => self.subject().into_iter().collect(),
        }
    }

    /// The job the event is about, if any.
    pub fn job(&self) -> Option<u128> {
        match self {
            Event::JobRequested { job, .. }
            | Event::JobRequestedCompact { job, .. }
            | Event::JobSubmitted { job, .. }
            | Event::JobSucceeded { job, .. }
            | Event::JobFailed { job, .. }
            | Event::JobSetAside { job, .. }
            | Event::JobCancelled { job } => Some(*job),
            _ => None,
        }
    }

    /// The library entry the event is about, if any.
    pub fn subject(&self) -> Option<(Category, &str)> {
        match self {
            Event::DocumentSynced { category, slug, .. }
            | Event::DocumentCreated { category, slug, .. }
            | Event::DocumentEdited { category, slug, .. }
            | Event::DocumentDeleted { category, slug, .. }
            | Event::FileVanished { category, slug, .. }
            | Event::CoverSet { category, slug, .. }
            | Event::DefaultFieldsSaved { category, slug, .. }
            | Event::FavouriteSet { category, slug, .. } => Some((*category, slug)),
            Event::Undeleted { entry, .. } => Some((entry.category, &entry.slug)),
            Event::StrengthsSwept {
                target: (category, slug),
                ..
            } => Some((*category, slug)),
            Event::EntryTransferred { to, to_slug, .. } => Some((*to, to_slug)),
            _ => None,
        }
    }

    /// The event as a JSON object for the API: `type` and every field of the event, losslessly
    /// (document and recipe texts as strings, ids as ULID text, categories by key, targets as
    /// `category/slug`). The README documents each kind's shape.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), self.kind().into());
        let mut put = |k: &str, v: Value| {
            m.insert(k.into(), v);
        };
        match self {
            Event::DocumentSynced {
                category,
                slug,
                file,
                body,
            } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("file", file.as_str().into());
                put("body", body_json(body));
            }
            Event::DocumentCreated {
                category,
                slug,
                file,
                body,
                source,
            } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("file", file.as_str().into());
                put("body", body_json(body));
                put("source", source_json(source));
            }
            Event::DocumentEdited {
                category,
                slug,
                body,
            } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("body", body_json(body));
            }
            Event::DocumentDeleted {
                category,
                slug,
                file,
                hard,
            } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("file", file.as_str().into());
                put("hard", (*hard).into());
            }
            Event::FileVanished {
                category,
                slug,
                file,
            } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("file", file.as_str().into());
            }
            Event::SyncFailed {
                category,
                file,
                hash,
                error,
            } => {
                put("category", category.key().into());
                put("file", file.as_str().into());
                put("hash", (*hash).into());
                put("error", error.as_str().into());
            }
            Event::SyncFailureCleared { category, file } => {
                put("category", category.key().into());
                put("file", file.as_str().into());
            }
            Event::CoverSet {
                category,
                slug,
                path,
            } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("path", path.as_str().into());
            }
            Event::CoversCleared { category } => put("category", category.key().into()),
            Event::DefaultFieldsSaved {
                category,
                slug,
                fields,
            } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("fields", fields.clone().into());
            }
            Event::PreferenceSet { scope, key, json } => {
                put("scope", scope.as_str().into());
                put("key", key.as_str().into());
                put("json", json.as_str().into());
            }
            Event::SettingsChanged {
                json,
                llm_key_changed,
            } => {
                put("json", json.as_str().into());
                put("llm_key_changed", (*llm_key_changed).into());
            }
            Event::DefaultCheckpointSet { path } => put("path", path.clone().into()),
            Event::JobRequested { job, spec } => {
                put("job", ulid_text(*job).into());
                put(
                    "spec",
                    serde_json::json!({
                        "label": spec.label,
                        "target": spec.target.as_ref().map(|(c, s)| format!("{}/{s}", c.key())),
                        "set_cover": spec.set_cover,
                        "recipe": spec.recipe,
                        "request": spec.request,
                        "batch": spec.batch.map(ulid_text),
                        "retry_of": spec.retry_of.map(ulid_text),
                        "endless": spec.endless.map(ulid_text),
                    }),
                );
            }
            Event::JobSubmitted {
                job,
                backend,
                prompt_id,
                attempt,
                vanilla,
            } => {
                put("job", ulid_text(*job).into());
                put("backend", backend.as_str().into());
                put("prompt_id", prompt_id.as_str().into());
                put("attempt", (*attempt).into());
                put("vanilla", (*vanilla).into());
            }
            Event::JobSucceeded { job, images } => {
                put("job", ulid_text(*job).into());
                put("images", images.clone().into());
            }
            Event::JobFailed {
                job,
                error,
                node,
                retryable,
            } => {
                put("job", ulid_text(*job).into());
                put("error", error.as_str().into());
                put("node", node.clone().into());
                put("retryable", (*retryable).into());
            }
            Event::JobSetAside { job, reason } => {
                put("job", ulid_text(*job).into());
                put("reason", reason.as_str().into());
            }
            Event::JobCancelled { job } => put("job", ulid_text(*job).into()),
            Event::QueuePaused { paused } => put("paused", (*paused).into()),
            Event::EndlessStarted { endless, request } => {
                put("endless", ulid_text(*endless).into());
                put("request", request.as_str().into());
            }
            Event::EndlessStopped { endless } => put("endless", ulid_text(*endless).into()),
            Event::WorkflowSynced { file, json } => {
                put("file", file.as_str().into());
                put("json", json.as_str().into());
            }
            Event::WorkflowRefused { file, hash, error } => {
                put("file", file.as_str().into());
                put("hash", (*hash).into());
                put("error", error.as_str().into());
            }
            Event::FavouriteSet { category, slug, on } => {
                put("category", category.key().into());
                put("slug", slug.as_str().into());
                put("on", (*on).into());
            }
            Event::DraftMade { draft, made } => {
                put("draft", ulid_text(*draft).into());
                // The texts as the JSON they hold (what the assistant's pages read).
                put(
                    "made",
                    serde_json::json!({
                        "category": made.category.key(),
                        "model": made.model,
                        "request": made.request,
                        "tool_calls": serde_json::from_str::<Value>(&made.tool_calls)
                            .unwrap_or(Value::String(made.tool_calls.clone())),
                        "document": serde_json::from_str::<Value>(&made.document)
                            .unwrap_or(Value::String(made.document.clone())),
                        "batch": made.batch.map(ulid_text),
                        "lora": made.lora,
                    }),
                );
            }
            Event::BulkStarted {
                batch,
                category,
                loras,
            } => {
                put("batch", ulid_text(*batch).into());
                put("category", category.key().into());
                put("loras", loras.clone().into());
            }
            Event::BulkItemFailed { batch, lora, error } => {
                put("batch", ulid_text(*batch).into());
                put("lora", lora.as_str().into());
                put("error", error.as_str().into());
            }
            Event::BulkCancelled { batch } => put("batch", ulid_text(*batch).into()),
            Event::Restored {
                to_seq,
                removed,
                put: entries,
                preferences,
                settings,
                default_checkpoint,
            } => {
                put("to_seq", (*to_seq).into());
                put(
                    "removed",
                    removed
                        .iter()
                        .map(|r| {
                            serde_json::json!({"category": r.category.key(), "slug": r.slug, "file": r.file})
                        })
                        .collect(),
                );
                put("put", entries.iter().map(entry_state_json).collect());
                put(
                    "preferences",
                    preferences
                        .iter()
                        .map(
                            |p| serde_json::json!({"scope": p.scope, "key": p.key, "json": p.json}),
                        )
                        .collect(),
                );
                put("settings", settings.clone().into());
                put(
                    "default_checkpoint",
                    match default_checkpoint {
                        None => Value::Null,
                        Some(path) => serde_json::json!({ "path": path }),
                    },
                );
            }
            Event::Undeleted { deleted_seq, entry } => {
                put("deleted_seq", (*deleted_seq).into());
                put("entry", entry_state_json(entry));
            }
            Event::ImageFavouriteSet { .. }
            | Event::ImageDeleted { .. }
            | Event::StrengthsSwept { .. }
            | Event::EntryTransferred { .. } => {
                for (k, v) in self.workshop_json() {
                    put(&k, v);
                }
            }
            Event::JobRequestedCompact { job, spec } => {
                put("job", ulid_text(*job).into());
                // The same shape as `job_requested`. The recipe is stored as a patch against
                // the recipe of the request event at `recipe_patch.base`: `recipe` is null
                // here, and readers holding the ledger put its text back
                // (`jobs::spec::event_json`).
                put(
                    "spec",
                    serde_json::json!({
                        "label": spec.label,
                        "target": spec.target.as_ref().map(|(c, s)| format!("{}/{s}", c.key())),
                        "set_cover": spec.set_cover,
                        "recipe": Value::Null,
                        "recipe_patch": serde_json::to_value(&spec.recipe).unwrap_or(Value::Null),
                        "request": spec.request,
                        "batch": spec.batch.map(ulid_text),
                        "retry_of": spec.retry_of.map(ulid_text),
                        "endless": spec.endless.map(ulid_text),
                    }),
                );
            }
        }
        m
    }

    /// The fields of the workshop's events for `to_json` (ids as ULID text: JSON numbers
    /// cannot hold a u128).
    fn workshop_json(&self) -> Map<String, Value> {
        use serde_json::json;
        let ulid = |id: u128| ulid::Ulid::from(id).to_string();
        let v = match self {
            Event::ImageFavouriteSet { path, on } => json!({"path": path, "on": on}),
            Event::ImageDeleted { path, job } => json!({"path": path, "job": job.map(ulid)}),
            Event::StrengthsSwept {
                sweep,
                target,
                request,
                axes,
                cells,
            } => json!({
                "sweep": ulid(*sweep),
                "target": format!("{}/{}", target.0.key(), target.1),
                "request": serde_json::from_str::<serde_json::Value>(request).unwrap_or_default(),
                "axes": serde_json::from_str::<serde_json::Value>(axes).unwrap_or_default(),
                "cells": cells.iter().map(|c| json!({"job": ulid(c.job), "x": c.x, "y": c.y})).collect::<Vec<_>>(),
            }),
            Event::EntryTransferred {
                from,
                from_slug,
                from_version,
                from_part,
                to,
                to_slug,
                to_part,
                unmapped,
            } => json!({
                "from": format!("{}/{from_slug}", from.key()),
                "from_version": from_version,
                "from_part": from_part,
                "to": format!("{}/{to_slug}", to.key()),
                "to_part": to_part,
                "unmapped": unmapped,
                "category": to.key(),
            }),
            _ => Value::Null,
        };
        match v {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The category the event changes, if any.
    pub fn category(&self) -> Option<Category> {
        match self {
            Event::SyncFailed { category, .. }
            | Event::SyncFailureCleared { category, .. }
            | Event::CoversCleared { category } => Some(*category),
            _ => self.subject().map(|s| s.0),
        }
    }
}

/// Every kind name, in variant order: a kind's position is its stored variant index. Append
/// only, like the variants. `JobRequestedCompact` (stored variant 35) is the same fact as
/// `JobRequested` and goes by the same name, so its kind code (`Event::kind_code`, the first
/// position of the name) is `job_requested`'s and a filter on that kind finds both; lists for
/// people use `kind_names`.
pub const KINDS: [&str; 36] = [
    "document_synced",
    "document_created",
    "document_edited",
    "document_deleted",
    "file_vanished",
    "sync_failed",
    "sync_failure_cleared",
    "cover_set",
    "covers_cleared",
    "default_fields_saved",
    "preference_set",
    "settings_changed",
    "default_checkpoint_set",
    "job_requested",
    "job_submitted",
    "job_succeeded",
    "job_failed",
    "job_set_aside",
    "job_cancelled",
    "queue_paused",
    "endless_started",
    "endless_stopped",
    "workflow_synced",
    "workflow_refused",
    "favourite_set",
    "draft_made",
    "bulk_started",
    "bulk_item_failed",
    "bulk_cancelled",
    "restored",
    "undeleted",
    "image_favourite_set",
    "image_deleted",
    "strengths_swept",
    "entry_transferred",
    // ---- queue (issue 12) ----
    "job_requested",
];

/// Every kind name once, in variant order (for filters and messages).
pub fn kind_names() -> impl Iterator<Item = (u8, &'static str)> {
    KINDS
        .iter()
        .enumerate()
        .filter(|(i, k)| KINDS.iter().position(|x| x == *k) == Some(*i))
        .map(|(i, k)| (i as u8, *k))
}

/// A ULID (as stored, a big-endian u128) in its 26-character text form.
pub fn ulid_text(id: u128) -> String {
    ulid::Ulid::from(id).to_string()
}

fn body_json(b: &DocBody) -> Value {
    serde_json::json!({"id": b.id, "name": b.name, "json": b.json})
}

/// A document's source as serde writes it (`"Manual"`, `{"Clone": {"from": …}}`, …), the shape
/// the API has always shown.
fn source_json(s: &Source) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

fn entry_state_json(e: &EntryState) -> Value {
    serde_json::json!({
        "category": e.category.key(),
        "slug": e.slug,
        "file": e.file,
        "body": body_json(&e.body),
        "cover": e.cover,
        "default_fields": e.default_fields,
        "favourite": e.favourite,
    })
}

/// An event with its envelope, before it has a sequence number.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Envelope {
    /// The event's ULID as a big-endian u128 (sorts by time).
    pub id: u128,
    /// Unix milliseconds.
    pub at: u64,
    pub origin: Origin,
    pub event: Event,
}

/// A committed event: its envelope and its position in the ledger (dense from 1).
#[derive(Clone, PartialEq, Debug)]
pub struct Stored {
    pub seq: u64,
    pub envelope: Envelope,
}

impl Stored {
    pub fn event(&self) -> &Event {
        &self.envelope.event
    }

    /// The API's JSON form: `seq`, `id`, `at`, `origin`, `type` and the event's fields.
    pub fn to_json(&self) -> Value {
        let mut map = self.envelope.event.to_json();
        map.insert("seq".into(), self.seq.into());
        map.insert("id".into(), ulid_text(self.envelope.id).into());
        map.insert("at".into(), self.envelope.at.into());
        map.insert("origin".into(), self.envelope.origin.as_str().into());
        Value::Object(map)
    }
}

/// The schema version written as the first byte of every stored event.
pub const SCHEMA_V1: u8 = 1;

#[derive(Debug)]
pub struct CodecError(pub String);

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event codec: {}", self.0)
    }
}

impl std::error::Error for CodecError {}

/// Encodes an envelope: one schema byte, then bincode (standard config) of the envelope.
pub fn encode(env: &Envelope) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![SCHEMA_V1];
    let body = bincode::serde::encode_to_vec(env, bincode::config::standard())
        .map_err(|e| CodecError(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes stored bytes of any known schema version (upcasting older ones when there are any).
pub fn decode(bytes: &[u8]) -> Result<Envelope, CodecError> {
    match bytes.split_first() {
        Some((&SCHEMA_V1, rest)) => {
            let (env, used): (Envelope, usize) =
                bincode::serde::decode_from_slice(rest, bincode::config::standard())
                    .map_err(|e| CodecError(e.to_string()))?;
            if used != rest.len() {
                return Err(CodecError(format!(
                    "{} trailing bytes after the event",
                    rest.len() - used
                )));
            }
            Ok(env)
        }
        Some((v, _)) => Err(CodecError(format!("unknown schema version {v}"))),
        None => Err(CodecError("empty record".into())),
    }
}

/// An event's envelope read from its stored bytes without decoding the event's body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peek {
    pub id: u128,
    pub at: u64,
    pub origin: Origin,
    pub kind: &'static str,
}

/// bincode's variable-length unsigned integer (standard config): one byte below 251, else a
/// marker (251: u16, 252: u32, 253: u64, 254: u128) and the little-endian bytes.
fn varint(b: &[u8], at: &mut usize) -> Result<u128, CodecError> {
    let short = || CodecError("the record ends inside its envelope".into());
    let first = *b.get(*at).ok_or_else(short)?;
    *at += 1;
    let width = match first {
        0..=250 => return Ok(u128::from(first)),
        251 => 2,
        252 => 4,
        253 => 8,
        254 => 16,
        _ => return Err(CodecError(format!("invalid integer marker {first}"))),
    };
    let bytes = b.get(*at..*at + width).ok_or_else(short)?;
    *at += width;
    let mut v = [0u8; 16];
    v[..width].copy_from_slice(bytes);
    Ok(u128::from_le_bytes(v))
}

/// The envelope of stored bytes (schema version 1) — id, time, origin and kind — without
/// decoding the rest: what an export needs per line.
pub fn peek(bytes: &[u8]) -> Result<Peek, CodecError> {
    match bytes.first() {
        Some(&SCHEMA_V1) => {}
        Some(v) => return Err(CodecError(format!("unknown schema version {v}"))),
        None => return Err(CodecError("empty record".into())),
    }
    let mut at = 1;
    let id = varint(bytes, &mut at)?;
    let time = u64::try_from(varint(bytes, &mut at)?)
        .map_err(|_| CodecError("the time does not fit 64 bits".into()))?;
    let o = varint(bytes, &mut at)?;
    let origin = usize::try_from(o)
        .ok()
        .and_then(|i| Origin::ALL.get(i).copied())
        .ok_or_else(|| CodecError(format!("unknown origin {o}")))?;
    let k = varint(bytes, &mut at)?;
    let kind = usize::try_from(k)
        .ok()
        .and_then(|i| KINDS.get(i).copied())
        .ok_or_else(|| CodecError(format!("unknown event kind {k}")))?;
    Ok(Peek {
        id,
        at: time,
        origin,
        kind,
    })
}

/// A stable 64-bit content hash (FNV-1a), used to recognise bytes already seen.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: &str) -> DocBody {
        DocBody {
            id: format!("{n}_id"),
            name: format!("{n} name"),
            json: format!("{{\n  \"x\": \"{n}\"\n}}\n"),
        }
    }

    /// One example of every event kind. The match makes adding a variant without a golden
    /// fixture a compile error.
    fn examples() -> Vec<Event> {
        let c = Category::Characters;
        let all = vec![
            Event::DocumentSynced {
                category: c,
                slug: "yuna_ff10".into(),
                file: "yuna_(ff10).json".into(),
                body: body("a"),
            },
            Event::DocumentCreated {
                category: Category::Outfits,
                slug: "maid".into(),
                file: "maid.json".into(),
                body: body("b"),
                source: Source::Clone {
                    from: "maid_0".into(),
                },
            },
            Event::DocumentEdited {
                category: c,
                slug: "s".into(),
                body: body("c"),
            },
            Event::DocumentDeleted {
                category: c,
                slug: "s".into(),
                file: "s.json".into(),
                hard: true,
            },
            Event::FileVanished {
                category: c,
                slug: "s".into(),
                file: "s.json".into(),
            },
            Event::SyncFailed {
                category: Category::Scenes,
                file: "bad.json".into(),
                hash: 42,
                error: "expected value at line 1 column 1".into(),
            },
            Event::SyncFailureCleared {
                category: Category::Scenes,
                file: "bad.json".into(),
            },
            Event::CoverSet {
                category: c,
                slug: "s".into(),
                path: "uploads/characters/s/cover.png".into(),
            },
            Event::CoversCleared {
                category: Category::Presets,
            },
            Event::DefaultFieldsSaved {
                category: c,
                slug: "s".into(),
                fields: vec!["identity::hair".into()],
            },
            Event::PreferenceSet {
                scope: "characters/s".into(),
                key: "fields".into(),
                json: "[\"identity::hair\"]".into(),
            },
            Event::SettingsChanged {
                json: "{\"llm_model\":\"m\"}".into(),
                llm_key_changed: true,
            },
            Event::DefaultCheckpointSet {
                path: Some("Illustrious/a.safetensors".into()),
            },
            Event::JobRequested {
                job: 7,
                spec: JobSpec {
                    label: "characters/s".into(),
                    target: Some((c, "s".into())),
                    set_cover: true,
                    recipe: "{\"seed\":1}".into(),
                    request: "{\"category\":\"characters\",\"slug\":\"s\"}".into(),
                    batch: Some(9),
                    retry_of: None,
                    endless: Some(11),
                },
            },
            Event::JobSubmitted {
                job: 7,
                backend: "http://127.0.0.1:8188".into(),
                prompt_id: "00000000-0000-0000-0000-000000000007".into(),
                attempt: 1,
                vanilla: false,
            },
            Event::JobSucceeded {
                job: 7,
                images: vec!["uploads/characters/s/x_0.png".into()],
            },
            Event::JobFailed {
                job: 7,
                error: "node 4: header too small".into(),
                node: Some("4".into()),
                retryable: true,
            },
            Event::JobSetAside {
                job: 7,
                reason: "failed 3 times".into(),
            },
            Event::JobCancelled { job: 7 },
            Event::QueuePaused { paused: true },
            Event::EndlessStarted {
                endless: 11,
                request: "{}".into(),
            },
            Event::EndlessStopped { endless: 11 },
            Event::WorkflowSynced {
                file: "comfy_workflow.json".into(),
                json: "{\"3\": {}}".into(),
            },
            Event::WorkflowRefused {
                file: "comfy_workflow.json".into(),
                hash: 43,
                error: "node 19 is missing".into(),
            },
            Event::FavouriteSet {
                category: c,
                slug: "s".into(),
                on: true,
            },
            Event::DraftMade {
                draft: 13,
                made: Draft {
                    category: Category::Outfits,
                    model: "openrouter/openai/gpt-4o-mini".into(),
                    request: "a victorian maid outfit".into(),
                    tool_calls: "[{\"tool\":\"validate_tags\"}]".into(),
                    document: "{\"outfit_id\":\"maid\"}".into(),
                    batch: Some(17),
                    lora: Some("Illustrious/Clothing/maid.safetensors".into()),
                },
            },
            Event::BulkStarted {
                batch: 17,
                category: Category::Outfits,
                loras: vec!["Illustrious/Clothing/maid.safetensors".into()],
            },
            Event::BulkItemFailed {
                batch: 17,
                lora: "Illustrious/Clothing/maid.safetensors".into(),
                error: "the model refused".into(),
            },
            Event::BulkCancelled { batch: 17 },
            Event::Restored {
                to_seq: 5,
                removed: vec![EntryRef {
                    category: c,
                    slug: "new".into(),
                    file: "new.json".into(),
                }],
                put: vec![EntryState {
                    category: Category::Outfits,
                    slug: "maid".into(),
                    file: "maid.json".into(),
                    body: body("d"),
                    cover: Some("uploads/outfits/maid/cover.png".into()),
                    default_fields: vec!["wardrobe::top".into()],
                    favourite: true,
                }],
                preferences: vec![
                    PreferenceState {
                        scope: "generator".into(),
                        key: "extra_positive".into(),
                        json: Some("\"sunset\"".into()),
                    },
                    PreferenceState {
                        scope: "global".into(),
                        key: "checkpoint".into(),
                        json: None,
                    },
                ],
                settings: Some("{}".into()),
                default_checkpoint: Some(None),
            },
            Event::Undeleted {
                deleted_seq: 9,
                entry: EntryState {
                    category: c,
                    slug: "s".into(),
                    file: "s.json".into(),
                    body: body("e"),
                    cover: None,
                    default_fields: Vec::new(),
                    favourite: false,
                },
            },
            Event::ImageFavouriteSet {
                path: "uploads/characters/s/x_0.png".into(),
                on: true,
            },
            Event::ImageDeleted {
                path: "uploads/characters/s/x_0.png".into(),
                job: Some(7),
            },
            Event::StrengthsSwept {
                sweep: 9,
                target: (Category::Outfits, "maid".into()),
                request: "{\"category\":\"outfits\",\"slug\":\"maid\",\"seed\":5}".into(),
                axes: "{\"x\":{\"slot\":\"outfit\",\"min\":0.2,\"max\":1.0,\"step\":0.4}}".into(),
                cells: vec![
                    SweepCell {
                        job: 21,
                        x: 0.2,
                        y: None,
                    },
                    SweepCell {
                        job: 22,
                        x: 0.6,
                        y: Some(0.5),
                    },
                ],
            },
            Event::EntryTransferred {
                from: c,
                from_slug: "s".into(),
                from_version: 12,
                from_part: Some("default".into()),
                to: Category::Outfits,
                to_slug: "s_default".into(),
                to_part: None,
                unmapped: vec!["wardrobe::hands".into()],
            },
            Event::DocumentCreated {
                category: Category::Outfits,
                slug: "s_default".into(),
                file: "s_default.json".into(),
                body: body("d"),
                source: Source::Transfer {
                    category: c,
                    slug: "s".into(),
                    version: 12,
                    part: Some("default".into()),
                },
            },
            Event::JobRequestedCompact {
                job: 8,
                spec: CompactSpec {
                    label: "characters/s".into(),
                    target: Some((c, "s".into())),
                    set_cover: false,
                    recipe: RecipePatch {
                        base: 14,
                        strings: vec!["1girl, smile".into(), "k".into()],
                        root: PatchNode::Members(vec![
                            (0, PatchNode::Set(PatchValue::Text(0))),
                            (
                                1,
                                PatchNode::Items(vec![
                                    (0, PatchNode::Same),
                                    (
                                        2,
                                        PatchNode::Set(PatchValue::List(vec![
                                            PatchValue::Null,
                                            PatchValue::Bool(true),
                                            PatchValue::Unsigned(42),
                                            PatchValue::Signed(-7),
                                            PatchValue::Float(0.8),
                                            PatchValue::Map(vec![(1, PatchValue::Text(0))]),
                                        ])),
                                    ),
                                ]),
                            ),
                        ]),
                    },
                    request: "{\"category\":\"characters\",\"slug\":\"s\",\"seed\":2}".into(),
                    batch: None,
                    retry_of: Some(7),
                    endless: None,
                },
            },
        ];
        for e in &all {
            match e {
                Event::DocumentSynced { .. }
                | Event::DocumentCreated { .. }
                | Event::DocumentEdited { .. }
                | Event::DocumentDeleted { .. }
                | Event::FileVanished { .. }
                | Event::SyncFailed { .. }
                | Event::SyncFailureCleared { .. }
                | Event::CoverSet { .. }
                | Event::CoversCleared { .. }
                | Event::DefaultFieldsSaved { .. }
                | Event::PreferenceSet { .. }
                | Event::SettingsChanged { .. }
                | Event::DefaultCheckpointSet { .. }
                | Event::JobRequested { .. }
                | Event::JobSubmitted { .. }
                | Event::JobSucceeded { .. }
                | Event::JobFailed { .. }
                | Event::JobSetAside { .. }
                | Event::JobCancelled { .. }
                | Event::QueuePaused { .. }
                | Event::EndlessStarted { .. }
                | Event::EndlessStopped { .. }
                | Event::WorkflowSynced { .. }
                | Event::WorkflowRefused { .. }
                | Event::FavouriteSet { .. }
                | Event::DraftMade { .. }
                | Event::BulkStarted { .. }
                | Event::BulkItemFailed { .. }
                | Event::BulkCancelled { .. }
                | Event::Restored { .. }
                | Event::Undeleted { .. }
                | Event::ImageFavouriteSet { .. }
                | Event::ImageDeleted { .. }
                | Event::StrengthsSwept { .. }
                | Event::EntryTransferred { .. }
                | Event::JobRequestedCompact { .. } => {}
            }
        }
        all
    }

    fn envelope(i: usize, event: Event) -> Envelope {
        Envelope {
            id: 0x0193_0000_0000_0000_0000_0000_0000_0000 + i as u128,
            at: 1_790_000_000_000 + i as u64,
            origin: Origin::Web,
            event,
        }
    }

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn from_hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect()
    }

    const GOLDEN: &str = include_str!("../../tests/fixtures/golden_events_v1.txt");

    #[test]
    fn golden_fixtures_decode_to_the_same_events_forever() {
        let examples = examples();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            let mut text = String::new();
            for (i, e) in examples.iter().enumerate() {
                let bytes = encode(&envelope(i, e.clone())).unwrap();
                text.push_str(&format!("{} {}\n", e.kind(), to_hex(&bytes)));
            }
            std::fs::write("tests/fixtures/golden_events_v1.txt", text).unwrap();
            return;
        }
        let lines: Vec<&str> = GOLDEN.lines().collect();
        assert_eq!(
            lines.len(),
            examples.len(),
            "one golden line per event kind"
        );
        for (i, (line, want)) in lines.iter().zip(&examples).enumerate() {
            let (kind, hex) = line.split_once(' ').unwrap();
            assert_eq!(kind, want.kind());
            let decoded = decode(&from_hex(hex)).unwrap();
            assert_eq!(decoded, envelope(i, want.clone()), "{kind}");
            // And today's encoder still writes the same bytes.
            assert_eq!(to_hex(&encode(&decoded).unwrap()), hex, "{kind}");
        }
    }

    #[test]
    fn unknown_versions_and_garbage_are_errors_not_panics() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[SCHEMA_V1, 0xff, 0xff, 0xff]).is_err());
        let mut ok = encode(&envelope(0, examples()[0].clone())).unwrap();
        ok.push(0);
        assert!(decode(&ok).is_err(), "trailing bytes are refused");
    }

    #[test]
    fn api_json_names_the_kind_and_carries_the_document_text() {
        let s = Stored {
            seq: 7,
            envelope: envelope(0, examples()[0].clone()),
        };
        let j = s.to_json();
        assert_eq!(j["type"], "document_synced");
        assert_eq!(j["seq"], 7);
        assert_eq!(j["origin"], "web");
        assert_eq!(j["category"], "characters");
        assert_eq!(j["body"]["id"], "a_id");
        assert_eq!(j["body"]["json"], "{\n  \"x\": \"a\"\n}\n");
        assert_eq!(j["id"].as_str().unwrap().len(), 26);
    }

    /// Every leaf value of an event (as serde sees it) somewhere in its API JSON: no field is
    /// summarised away.
    fn leaves(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.values().for_each(|x| leaves(x, out)),
            Value::Array(a) => a.iter().for_each(|x| leaves(x, out)),
            // JSON held as text counts by its own leaves (the API may show it parsed).
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => leaves(&v, out),
                _ => out.push(s.clone()),
            },
            Value::Number(n) => out.push(n.to_string()),
            Value::Bool(b) => out.push(b.to_string()),
            Value::Null => {}
        }
    }

    #[test]
    fn api_json_holds_every_field_of_every_kind() {
        for e in examples() {
            let raw = serde_json::to_value(&e).unwrap();
            let api = Value::Object(e.to_json());
            let mut want = Vec::new();
            leaves(&raw, &mut want);
            let mut have = Vec::new();
            leaves(&api, &mut have);
            // Targets are shown as `category/slug`: their parts count too.
            let parts: Vec<String> = have
                .iter()
                .flat_map(|h| h.split('/').map(String::from).collect::<Vec<_>>())
                .collect();
            for w in want {
                // Ids are shown as ULID text, categories by key.
                let mut forms = vec![w.clone()];
                if let Ok(n) = w.parse::<u128>() {
                    forms.push(ulid_text(n));
                }
                if let Some(c) = Category::ALL.iter().find(|c| format!("{c:?}") == w) {
                    forms.push(c.key().to_string());
                }
                assert!(
                    forms.iter().any(|f| have.contains(f) || parts.contains(f)),
                    "{}: {w} missing from {api}",
                    e.kind()
                );
            }
        }
    }

    #[test]
    fn peeking_reads_the_envelope_as_decoding_does() {
        let ids = [0u128, 250, 251, 70_000, 1 << 40, u128::MAX];
        let times = [0u64, 250, 65_535, 1_790_000_000_000, u64::MAX];
        for (i, e) in examples().into_iter().enumerate() {
            let env = Envelope {
                id: ids[i % ids.len()],
                at: times[i % times.len()],
                origin: Origin::ALL[i % Origin::ALL.len()],
                event: e,
            };
            let bytes = encode(&env).unwrap();
            let p = peek(&bytes).unwrap();
            assert_eq!(
                (p.id, p.at, p.origin, p.kind),
                (env.id, env.at, env.origin, env.event.kind())
            );
            assert!(peek(&bytes[..3]).is_err());
        }
        assert!(peek(&[]).is_err());
        assert!(peek(&[7, 0]).is_err());
        assert!(peek(&[SCHEMA_V1, 255]).is_err());
    }

    #[test]
    fn kinds_are_listed_in_variant_order() {
        // The examples list one of every variant in order, except that shapes of earlier kinds
        // added later (a document created by a transfer) sit where they were added.
        let all = examples();
        let extra = |e: &Event| {
            matches!(
                e,
                Event::DocumentCreated {
                    source: Source::Transfer { .. },
                    ..
                }
            )
        };
        let variants: Vec<&Event> = all.iter().filter(|e| !extra(e)).collect();
        assert_eq!(KINDS.len(), variants.len());
        for (i, e) in variants.iter().enumerate() {
            assert_eq!(KINDS[i], e.kind());
            if matches!(e, Event::JobRequestedCompact { .. }) {
                // The same fact as a `JobRequested`, indexed and filtered as one.
                assert_eq!(e.kind_code(), variants[13].kind_code());
                assert_eq!(KINDS[13], "job_requested");
            } else {
                assert_eq!(e.kind_code() as usize, i);
            }
        }
        for e in &all {
            assert_eq!(KINDS[e.kind_code() as usize], e.kind());
        }
        let names: Vec<&str> = kind_names().map(|(_, k)| k).collect();
        assert_eq!(names.len(), KINDS.len() - 1, "each name once");
        assert!(kind_names().all(|(code, k)| KINDS[code as usize] == k));
    }

    #[test]
    fn a_restore_names_every_entry_it_touches() {
        let e = &examples()[29];
        assert_eq!(
            e.subjects(),
            vec![(Category::Characters, "new"), (Category::Outfits, "maid")]
        );
        assert_eq!(examples()[30].subjects(), vec![(Category::Characters, "s")]);
    }
}

//! Commands and the rules that turn them into events. `decide` is pure: it checks a command
//! against the current library and returns the events to append, or a refusal. Anything that
//! needs IO (reading files, saving uploads) is done first and put into the command.

use crate::jobs::projection::JobState;
use crate::library::category::{Category, SlugRule, slugify};
use crate::library::projection::Library;
use crate::store::event::{
    DocBody, Draft, EntryState, Event, JobSpec, Source, SweepCell, content_hash,
};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What a file in `data/` held when the sync looked at it.
#[derive(Clone, Debug)]
pub enum FileContent {
    Missing,
    Unreadable(String),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Observation {
    /// File name inside the category folder.
    pub file: String,
    pub content: FileContent,
}

#[derive(Clone, Debug)]
pub enum Command {
    /// Files looked at on disk. With `complete`, every file of the category was observed, so
    /// tracked files not among them have vanished.
    Sync {
        category: Category,
        observations: Vec<Observation>,
        complete: bool,
    },
    Create {
        category: Category,
        doc: Map<String, Value>,
        source: Source,
    },
    Clone {
        category: Category,
        slug: String,
        new_id: Option<String>,
        new_name: Option<String>,
    },
    Edit {
        category: Category,
        slug: String,
        doc: Map<String, Value>,
    },
    Delete {
        category: Category,
        slug: String,
        hard: bool,
    },
    SetCover {
        category: Category,
        slug: String,
        path: String,
    },
    ClearCovers {
        category: Category,
    },
    SaveDefaultFields {
        category: Category,
        slug: String,
        fields: Vec<String>,
    },
    /// Star or unstar an entry.
    SetFavourite {
        category: Category,
        slug: String,
        on: bool,
    },
    SetPreferences {
        scope: String,
        values: Vec<(String, Value)>,
    },
    ChangeSettings {
        settings: Map<String, Value>,
        llm_key_changed: bool,
    },
    SetDefaultCheckpoint {
        path: Option<String>,
    },
    /// Queue generation jobs (ids are ULIDs chosen by the caller).
    Enqueue {
        jobs: Vec<(u128, JobSpec)>,
    },
    CancelJob {
        job: u128,
    },
    /// Run a finished job again as a new job linked to it.
    RetryJob {
        job: u128,
        new_job: u128,
        /// The old job's spec, read from the ledger by the caller.
        spec: Box<JobSpec>,
    },
    PauseQueue {
        paused: bool,
    },
    StartEndless {
        endless: u128,
        request: String,
    },
    StopEndless {
        endless: u128,
    },
    /// The workflow template file as read from disk (`--workflow`).
    SyncWorkflow {
        /// The file as configured, for messages.
        file: String,
        content: FileContent,
    },
    /// What the reactor saw happen. Facts that no longer apply (the job was cancelled
    /// meanwhile, the entry deleted) are dropped rather than refused.
    Record {
        events: Vec<Event>,
    },
    /// Record an assistant draft. With `create` (a bulk run), the entry is created from it in
    /// the same commit, its id made unique if taken; if it cannot be created the bulk item is
    /// recorded as failed instead, and the draft is kept for a human to accept.
    RecordDraft {
        draft: u128,
        made: Box<Draft>,
        create: bool,
    },
    StartBulk {
        batch: u128,
        category: Category,
        loras: Vec<String>,
    },
    FailBulkItem {
        batch: u128,
        lora: String,
        error: String,
    },
    CancelBulk {
        batch: u128,
    },
    // ---- workshop (issue 9) ----
    /// Star or unstar an image of the gallery (the caller checked that the image exists).
    SetImageFavourite {
        path: String,
        on: bool,
    },
    /// Delete an image (the caller checked that it exists and removes the file after the
    /// commit). An entry's cover cannot be deleted.
    DeleteImage {
        path: String,
        job: Option<u128>,
    },
    /// A strengths sweep: its record and its jobs, in one transaction.
    StartSweep {
        sweep: u128,
        target: (Category, String),
        request: String,
        axes: String,
        cells: Vec<SweepCell>,
        jobs: Vec<(u128, JobSpec)>,
    },
    /// Turn an entry into another kind (see `library::transfer`): create `doc` in `to`, or,
    /// with `into_wardrobe`, replace the character `to_slug` with `doc` (its wardrobe grown by
    /// one outfit).
    Transfer {
        from: Category,
        from_slug: String,
        from_part: Option<String>,
        to: Category,
        doc: Map<String, Value>,
        into_wardrobe: Option<(String, String)>,
        unmapped: Vec<String>,
    },
    /// Put the library back as it was right after `to_seq`; `target` is the projection then,
    /// read from the ledger by the caller.
    Restore {
        to_seq: u64,
        target: std::sync::Arc<Library>,
    },
    /// Bring a deleted entry back as it was before the event that took it out (`found`, read
    /// by the caller: that event's seq and the entry then, or why there is none).
    Undelete {
        category: Category,
        slug: String,
        found: Result<(u64, EntryState), String>,
    },
}

/// Why a command was refused. Nothing is written for a refused command.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    NotFound(String),
    Invalid(String),
    Conflict(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFound(m) | Refusal::Invalid(m) | Refusal::Conflict(m) => f.write_str(m),
        }
    }
}

/// The preference keys a page may store, and the JSON type each takes.
pub const PREFERENCE_KEYS: [(&str, &str); 17] = [
    ("fields", "list of strings"),
    ("preview", "string or null"),
    ("character", "string or null"),
    ("action", "string or null"),
    ("extra_positive", "string"),
    ("extra_negative", "string"),
    ("active_outfit", "string or null"),
    ("checkpoint", "string or null"),
    ("width", "whole number or null"),
    ("height", "whole number or null"),
    ("seed", "whole number or null"),
    // Global page settings: how NSFW entries are shown, and the colour theme.
    ("nsfw", "one of show, blur, hide"),
    ("theme", "one of dark, light"),
    // The generator: its mix-and-match items (`category/slug`) and how many images a run makes.
    ("extras", "list of strings"),
    ("batch", "whole number or null"),
    // The image gallery's thumbnail size, and whether the queue page hides finished jobs.
    ("density", "one of compact, comfortable, large"),
    ("hide_finished", "boolean"),
];

/// Renders a document the way the app writes files: two-space pretty JSON, keys in their
/// original order, trailing newline. Stable, so diffs stay readable.
pub fn render(doc: &Map<String, Value>) -> String {
    let mut s = serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

fn not_found(c: Category, slug: &str) -> Refusal {
    Refusal::NotFound(format!("no {} with slug '{slug}'", c.desc().singular))
}

/// The id and display name of a document, as its category defines them.
fn identity(c: Category, doc: &Map<String, Value>) -> Option<(String, String)> {
    let d = c.desc();
    let id = doc.get(d.id_field)?.as_str()?.trim();
    if id.is_empty() {
        return None;
    }
    let name = doc
        .get(d.name_field)
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(id);
    Some((id.to_string(), name.to_string()))
}

/// An id made from a display name: lower-case, other characters as `_`.
fn id_from_name(name: &str) -> String {
    let s = slugify(&name.trim().to_lowercase(), SlugRule::Underscore);
    s.trim_matches('_').to_string()
}

/// Puts `key` first in the map (new ids read best at the top of the file).
fn with_first(doc: Map<String, Value>, key: &str, value: Value) -> Map<String, Value> {
    let mut out = Map::with_capacity(doc.len() + 1);
    out.insert(key.to_string(), value);
    for (k, v) in doc {
        if k != key {
            out.insert(k, v);
        }
    }
    out
}

/// The file name a new document gets.
pub fn file_for_slug(slug: &str) -> String {
    format!("{slug}.json")
}

pub fn decide(lib: &Library, cmd: &Command) -> Result<Vec<Event>, Refusal> {
    match cmd {
        Command::Sync {
            category,
            observations,
            complete,
        } => Ok(decide_sync(lib, *category, observations, *complete)),
        Command::SyncWorkflow { file, content } => Ok(decide_workflow(lib, file, content)),
        Command::Create {
            category,
            doc,
            source,
        } => decide_create(lib, *category, doc.clone(), source.clone()),
        Command::Clone {
            category,
            slug,
            new_id,
            new_name,
        } => decide_clone(lib, *category, slug, new_id.as_deref(), new_name.as_deref()),
        Command::Edit {
            category,
            slug,
            doc,
        } => decide_edit(lib, *category, slug, doc.clone()),
        Command::Delete {
            category,
            slug,
            hard,
        } => {
            let e = lib
                .get(*category, slug)
                .ok_or_else(|| not_found(*category, slug))?;
            Ok(vec![Event::DocumentDeleted {
                category: *category,
                slug: slug.clone(),
                file: e.file.clone(),
                hard: *hard,
            }])
        }
        Command::SetCover {
            category,
            slug,
            path,
        } => {
            lib.get(*category, slug)
                .ok_or_else(|| not_found(*category, slug))?;
            Ok(vec![Event::CoverSet {
                category: *category,
                slug: slug.clone(),
                path: path.clone(),
            }])
        }
        Command::ClearCovers { category } => {
            let any = lib
                .shelf(*category)
                .docs
                .values()
                .any(|e| e.cover.is_some());
            Ok(if any {
                vec![Event::CoversCleared {
                    category: *category,
                }]
            } else {
                Vec::new()
            })
        }
        Command::SaveDefaultFields {
            category,
            slug,
            fields,
        } => {
            let e = lib
                .get(*category, slug)
                .ok_or_else(|| not_found(*category, slug))?;
            check_fields(fields)?;
            if &e.default_fields == fields {
                return Ok(Vec::new());
            }
            Ok(vec![Event::DefaultFieldsSaved {
                category: *category,
                slug: slug.clone(),
                fields: fields.clone(),
            }])
        }
        Command::SetFavourite { category, slug, on } => {
            let e = lib
                .get(*category, slug)
                .ok_or_else(|| not_found(*category, slug))?;
            Ok(if e.favourite == *on {
                Vec::new()
            } else {
                vec![Event::FavouriteSet {
                    category: *category,
                    slug: slug.clone(),
                    on: *on,
                }]
            })
        }
        Command::SetPreferences { scope, values } => decide_preferences(lib, scope, values),
        Command::ChangeSettings {
            settings,
            llm_key_changed,
        } => {
            let json = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
            if json == lib.settings && !llm_key_changed {
                return Ok(Vec::new());
            }
            Ok(vec![Event::SettingsChanged {
                json,
                llm_key_changed: *llm_key_changed,
            }])
        }
        Command::SetDefaultCheckpoint { path } => {
            if let Some(p) = path {
                let known = lib
                    .shelf(Category::Checkpoints)
                    .docs
                    .values()
                    .any(|e| &e.id == p);
                if !known {
                    return Err(Refusal::NotFound(format!("no checkpoint '{p}'")));
                }
            }
            if &lib.default_checkpoint == path {
                return Ok(Vec::new());
            }
            Ok(vec![Event::DefaultCheckpointSet { path: path.clone() }])
        }
        Command::SetImageFavourite { path, on } => Ok(vec![Event::ImageFavouriteSet {
            path: path.clone(),
            on: *on,
        }]),
        Command::DeleteImage { path, job } => {
            for c in Category::ALL {
                if let Some(e) = lib
                    .shelf(c)
                    .docs
                    .values()
                    .find(|e| e.cover.as_deref() == Some(path.as_str()))
                {
                    return Err(Refusal::Conflict(format!(
                        "this image is the cover of the {} '{}'; give it another cover first",
                        c.desc().singular,
                        e.name
                    )));
                }
            }
            Ok(vec![Event::ImageDeleted {
                path: path.clone(),
                job: *job,
            }])
        }
        Command::StartSweep {
            sweep,
            target,
            request,
            axes,
            cells,
            jobs,
        } => {
            lib.get(target.0, &target.1)
                .ok_or_else(|| not_found(target.0, &target.1))?;
            if cells.is_empty() || cells.len() != jobs.len() {
                return Err(Refusal::Invalid(
                    "a sweep needs one job per cell".to_string(),
                ));
            }
            let mut events = vec![Event::StrengthsSwept {
                sweep: *sweep,
                target: target.clone(),
                request: request.clone(),
                axes: axes.clone(),
                cells: cells.clone(),
            }];
            events.extend(decide_jobs(lib, &Command::Enqueue { jobs: jobs.clone() })?);
            Ok(events)
        }
        Command::Transfer {
            from,
            from_slug,
            from_part,
            to,
            doc,
            into_wardrobe,
            unmapped,
        } => {
            let src = lib
                .get(*from, from_slug)
                .ok_or_else(|| not_found(*from, from_slug))?;
            let (made, to_slug, to_part) = match into_wardrobe {
                Some((slug, outfit)) => (
                    decide_edit(lib, *to, slug, doc.clone())?,
                    slug.clone(),
                    Some(outfit.clone()),
                ),
                None => {
                    let made = decide_create(
                        lib,
                        *to,
                        doc.clone(),
                        Source::Transfer {
                            category: *from,
                            slug: from_slug.clone(),
                            version: src.version,
                            part: from_part.clone(),
                        },
                    )?;
                    let slug = made
                        .iter()
                        .find_map(|e| e.subject().map(|(_, s)| s.to_string()))
                        .unwrap_or_default();
                    (made, slug, None)
                }
            };
            if made.is_empty() {
                return Err(Refusal::Conflict(
                    "the character's wardrobe already holds this outfit as it is".to_string(),
                ));
            }
            let mut events = made;
            events.push(Event::EntryTransferred {
                from: *from,
                from_slug: from_slug.clone(),
                from_version: src.version,
                from_part: from_part.clone(),
                to: *to,
                to_slug,
                to_part,
                unmapped: unmapped.clone(),
            });
            Ok(events)
        }
        Command::Restore { to_seq, target } => {
            match crate::history::restore::plan(lib, target, *to_seq) {
                Ok(event) => Ok(event.into_iter().collect()),
                Err(crate::history::restore::Refused::Invalid(m)) => Err(Refusal::Invalid(m)),
                Err(crate::history::restore::Refused::Conflict(m)) => Err(Refusal::Conflict(m)),
            }
        }
        Command::Undelete {
            category,
            slug,
            found,
        } => decide_undelete(lib, *category, slug, found),
        Command::Enqueue { .. }
        | Command::CancelJob { .. }
        | Command::RetryJob { .. }
        | Command::PauseQueue { .. }
        | Command::StartEndless { .. }
        | Command::StopEndless { .. }
        | Command::Record { .. } => decide_jobs(lib, cmd),
        Command::RecordDraft {
            draft,
            made,
            create,
        } => decide_draft(lib, *draft, made, *create),
        Command::StartBulk {
            batch,
            category,
            loras,
        } => {
            if lib.assistant.batches.contains_key(batch) {
                return Err(Refusal::Conflict(format!(
                    "bulk run {} exists",
                    job_id_text(*batch)
                )));
            }
            if loras.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![Event::BulkStarted {
                batch: *batch,
                category: *category,
                loras: loras.clone(),
            }])
        }
        Command::FailBulkItem { batch, lora, error } => {
            let pending = lib
                .assistant
                .batches
                .get(batch)
                .is_some_and(|b| b.pending().any(|l| l == lora));
            Ok(if pending {
                vec![Event::BulkItemFailed {
                    batch: *batch,
                    lora: lora.clone(),
                    error: error.clone(),
                }]
            } else {
                Vec::new()
            })
        }
        Command::CancelBulk { batch } => {
            let b =
                lib.assistant.batches.get(batch).ok_or_else(|| {
                    Refusal::NotFound(format!("no bulk run {}", job_id_text(*batch)))
                })?;
            if !b.is_active() {
                return Err(Refusal::Conflict(format!(
                    "bulk run {} is already {}",
                    job_id_text(*batch),
                    b.status()
                )));
            }
            Ok(vec![Event::BulkCancelled { batch: *batch }])
        }
    }
}

/// The first id among `id`, `id_2`, `id_3`, … whose slug and file are free in the category.
fn free_id(lib: &Library, c: Category, id: &str) -> String {
    let shelf = lib.shelf(c);
    let free = |candidate: &str| {
        let slug = c.slug_of(candidate);
        let file = file_for_slug(&slug);
        !slug.is_empty()
            && !shelf.docs.contains_key(&slug)
            && !shelf.by_file.contains_key(&file)
            && !shelf.failures.contains_key(&file)
    };
    // An id with no slug at all is left for the create rules to refuse.
    if free(id) || c.slug_of(id).is_empty() {
        return id.to_string();
    }
    (2..1000)
        .map(|n| format!("{id}_{n}"))
        .find(|c| free(c))
        .unwrap_or_else(|| id.to_string())
}

fn decide_draft(
    lib: &Library,
    draft: u128,
    made: &Draft,
    create: bool,
) -> Result<Vec<Event>, Refusal> {
    let a = &lib.assistant;
    if a.drafts.contains_key(&draft) {
        return Err(Refusal::Conflict(format!(
            "draft {} exists",
            job_id_text(draft)
        )));
    }
    if let (Some(batch), Some(lora)) = (made.batch, &made.lora) {
        let pending = a
            .batches
            .get(&batch)
            .is_some_and(|b| b.pending().any(|l| l == lora));
        if !pending {
            return Err(Refusal::Conflict(format!(
                "bulk run {} has nothing left to draft for {lora}",
                job_id_text(batch)
            )));
        }
    }
    let made_event = Event::DraftMade {
        draft,
        made: made.clone(),
    };
    if !create {
        return Ok(vec![made_event]);
    }
    let c = made.category;
    let created = match serde_json::from_str::<Value>(&made.document) {
        Ok(Value::Object(doc)) => {
            let d = c.desc();
            let doc = match doc.get(d.id_field).and_then(Value::as_str) {
                Some(id) if c != Category::Checkpoints => {
                    let id = free_id(lib, c, id.trim());
                    with_first(doc, d.id_field, Value::String(id))
                }
                _ => doc,
            };
            create_doc(
                lib,
                c,
                doc,
                Source::Assistant {
                    draft_id: job_id_text(draft),
                },
            )
        }
        _ => Err(Refusal::Invalid("the draft is not a JSON object".into())),
    };
    let mut events = vec![made_event];
    match created {
        Ok(e) => events.extend(e),
        Err(r) => match (made.batch, &made.lora) {
            (Some(batch), Some(lora)) => events.push(Event::BulkItemFailed {
                batch,
                lora: lora.clone(),
                error: format!("drafted, but the entry could not be created: {r}"),
            }),
            _ => return Err(r),
        },
    }
    Ok(events)
}

fn decide_undelete(
    lib: &Library,
    c: Category,
    slug: &str,
    found: &Result<(u64, EntryState), String>,
) -> Result<Vec<Event>, Refusal> {
    let d = c.desc();
    if let Some(e) = lib.get(c, slug) {
        return Err(Refusal::Conflict(format!(
            "{} '{slug}' is in the library ({}); there is nothing to undelete",
            d.singular, e.file
        )));
    }
    let (deleted_seq, entry) = found.as_ref().map_err(|m| Refusal::NotFound(m.clone()))?;
    let shelf = lib.shelf(c);
    if let Some(owner) = shelf.by_file.get(&entry.file) {
        return Err(Refusal::Conflict(format!(
            "data/{}/{} now holds {} '{owner}'",
            d.dir, entry.file, d.singular
        )));
    }
    if let Some(f) = shelf.failures.get(&entry.file) {
        return Err(Refusal::Conflict(format!(
            "data/{}/{} could not be read ({}); fix or remove it first",
            d.dir, entry.file, f.error
        )));
    }
    Ok(vec![Event::Undeleted {
        deleted_seq: *deleted_seq,
        entry: entry.clone(),
    }])
}

fn job_id_text(id: u128) -> String {
    ulid::Ulid::from(id).to_string()
}

fn decide_jobs(lib: &Library, cmd: &Command) -> Result<Vec<Event>, Refusal> {
    let jobs = &lib.jobs;
    // Finished jobs count too: the projection keeps their ids and outcomes.
    let known = |id: u128| {
        jobs.state_of(id)
            .ok_or_else(|| Refusal::NotFound(format!("no job {}", job_id_text(id))))
    };
    match cmd {
        Command::Enqueue { jobs: new } => {
            let mut events = Vec::with_capacity(new.len());
            for (id, spec) in new {
                if jobs.state_of(*id).is_some() {
                    return Err(Refusal::Conflict(format!(
                        "job {} exists",
                        job_id_text(*id)
                    )));
                }
                events.push(Event::JobRequested {
                    job: *id,
                    spec: spec.clone(),
                });
            }
            Ok(events)
        }
        Command::CancelJob { job } => {
            let state = known(*job)?;
            if state.is_terminal() {
                return Err(Refusal::Conflict(format!(
                    "job {} is already {}",
                    job_id_text(*job),
                    state.status()
                )));
            }
            Ok(vec![Event::JobCancelled { job: *job }])
        }
        Command::RetryJob { job, new_job, spec } => {
            let state = known(*job)?;
            if !state.is_terminal() {
                return Err(Refusal::Conflict(format!(
                    "job {} is still {}; cancel it first",
                    job_id_text(*job),
                    state.status()
                )));
            }
            if jobs.state_of(*new_job).is_some() {
                return Err(Refusal::Conflict(format!(
                    "job {} exists",
                    job_id_text(*new_job)
                )));
            }
            let mut spec = (**spec).clone();
            spec.retry_of = Some(*job);
            spec.endless = None;
            Ok(vec![Event::JobRequested {
                job: *new_job,
                spec,
            }])
        }
        Command::PauseQueue { paused } => Ok(if jobs.paused == *paused {
            Vec::new()
        } else {
            vec![Event::QueuePaused { paused: *paused }]
        }),
        Command::StartEndless { endless, request } => Ok(vec![Event::EndlessStarted {
            endless: *endless,
            request: request.clone(),
        }]),
        Command::StopEndless { endless } => {
            if !jobs.endless.contains_key(endless) {
                return Err(Refusal::NotFound(format!(
                    "no endless generation {}",
                    job_id_text(*endless)
                )));
            }
            Ok(vec![Event::EndlessStopped { endless: *endless }])
        }
        Command::Record { events } => Ok(decide_record(lib, events)),
        _ => Ok(Vec::new()),
    }
}

/// Keeps the reactor's facts that still make sense, in order.
fn decide_record(lib: &Library, events: &[Event]) -> Vec<Event> {
    let mut state: HashMap<u128, JobState> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let current = e.job().and_then(|id| {
            state
                .get(&id)
                .copied()
                .or(lib.jobs.get(id).map(|j| j.state))
        });
        let next = match (e, current) {
            (Event::JobSubmitted { .. }, Some(JobState::Queued | JobState::Submitted)) => {
                Some(JobState::Submitted)
            }
            (Event::JobSucceeded { .. }, Some(JobState::Submitted)) => Some(JobState::Succeeded),
            (Event::JobFailed { retryable, .. }, Some(JobState::Submitted | JobState::Queued)) => {
                Some(if *retryable {
                    JobState::Queued
                } else {
                    JobState::Failed
                })
            }
            (Event::JobSetAside { .. }, Some(JobState::Submitted | JobState::Queued)) => {
                Some(JobState::SetAside)
            }
            (Event::CoverSet { category, slug, .. }, _) if lib.get(*category, slug).is_some() => {
                out.push(e.clone());
                continue;
            }
            _ => None,
        };
        if let (Some(next), Some(id)) = (next, e.job()) {
            state.insert(id, next);
            out.push(e.clone());
        }
    }
    out
}

/// A field selector is `section::key` with both parts non-empty.
pub fn check_fields(fields: &[String]) -> Result<(), Refusal> {
    if fields.len() > 500 {
        return Err(Refusal::Invalid("too many fields (at most 500)".into()));
    }
    for f in fields {
        match f.split_once("::") {
            Some((s, k)) if !s.is_empty() && !k.is_empty() && !k.contains("::") => {}
            _ => {
                return Err(Refusal::Invalid(format!(
                    "field '{f}' is not of the form section::key"
                )));
            }
        }
    }
    Ok(())
}

fn decide_preferences(
    lib: &Library,
    scope: &str,
    values: &[(String, Value)],
) -> Result<Vec<Event>, Refusal> {
    let scope_ok = match scope.split_once('/') {
        Some((c, slug)) => Category::parse(c).is_some_and(|c| lib.get(c, slug).is_some()),
        None => scope == "generator" || scope == "global",
    };
    if !scope_ok {
        return Err(Refusal::NotFound(format!(
            "no page '{scope}' to keep preferences for"
        )));
    }
    let current = lib.preferences.get(scope);
    let mut events = Vec::new();
    for (key, value) in values {
        let Some((_, kind)) = PREFERENCE_KEYS.iter().find(|(k, _)| k == key) else {
            let known: Vec<&str> = PREFERENCE_KEYS.iter().map(|(k, _)| *k).collect();
            return Err(Refusal::Invalid(format!(
                "unknown preference '{key}' (known: {})",
                known.join(", ")
            )));
        };
        let ok = match *kind {
            "list of strings" => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "string" => value.is_string(),
            "whole number or null" => value.is_u64() || value.is_null(),
            "one of show, blur, hide" => matches!(value.as_str(), Some("show" | "blur" | "hide")),
            "one of dark, light" => matches!(value.as_str(), Some("dark" | "light")),
            "one of compact, comfortable, large" => {
                matches!(value.as_str(), Some("compact" | "comfortable" | "large"))
            }
            "boolean" => value.is_boolean(),
            _ => value.is_string() || value.is_null(),
        };
        if !ok {
            return Err(Refusal::Invalid(format!(
                "preference '{key}' must be a {kind}"
            )));
        }
        if key == "fields" {
            let fields: Vec<String> = value
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            check_fields(&fields)?;
        }
        let json = value.to_string();
        if current.and_then(|m| m.get(key)) == Some(&json) {
            continue;
        }
        events.push(Event::PreferenceSet {
            scope: scope.to_string(),
            key: key.clone(),
            json,
        });
    }
    Ok(events)
}

fn decide_create(
    lib: &Library,
    c: Category,
    doc: Map<String, Value>,
    source: Source,
) -> Result<Vec<Event>, Refusal> {
    if let Source::Assistant { draft_id } = &source
        && let Some(why) = crate::assistant::projection::accept_error(&lib.assistant, draft_id, c)
    {
        return Err(if why.starts_with("no draft") {
            Refusal::NotFound(why)
        } else if why.contains("already accepted") {
            Refusal::Conflict(why)
        } else {
            Refusal::Invalid(why)
        });
    }
    create_doc(lib, c, doc, source)
}

/// Creates a document (the rules every create shares).
fn create_doc(
    lib: &Library,
    c: Category,
    doc: Map<String, Value>,
    source: Source,
) -> Result<Vec<Event>, Refusal> {
    let d = c.desc();
    let doc = match doc.get(d.id_field) {
        Some(Value::String(s)) if !s.trim().is_empty() => doc,
        Some(Value::String(_)) | None if c != Category::Checkpoints => {
            let derived = doc
                .get(d.name_field)
                .and_then(Value::as_str)
                .map(id_from_name)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    Refusal::Invalid(format!(
                        "the document needs \"{}\" (or \"{}\" to derive it from)",
                        d.id_field, d.name_field
                    ))
                })?;
            with_first(doc, d.id_field, Value::String(derived))
        }
        Some(_) => {
            return Err(Refusal::Invalid(format!(
                "\"{}\" must be a non-empty string",
                d.id_field
            )));
        }
        None => {
            return Err(Refusal::Invalid(format!(
                "the document needs \"{}\"",
                d.id_field
            )));
        }
    };
    let (id, name) = identity(c, &doc)
        .ok_or_else(|| Refusal::Invalid(format!("\"{}\" must be a string", d.id_field)))?;
    let slug = c.slug_of(&id);
    if slug.is_empty() {
        return Err(Refusal::Invalid(format!(
            "id '{id}' has no letters, digits or underscores to make a slug from"
        )));
    }
    if let Some(e) = lib.get(c, &slug) {
        return Err(Refusal::Conflict(format!(
            "{} '{}' already uses slug '{slug}' ({})",
            d.singular, e.id, e.file
        )));
    }
    let file = file_for_slug(&slug);
    let shelf = lib.shelf(c);
    if shelf.by_file.contains_key(&file) || shelf.failures.contains_key(&file) {
        return Err(Refusal::Conflict(format!(
            "a file named {file} already exists in data/{}; fix or remove it first",
            d.dir
        )));
    }
    Ok(vec![Event::DocumentCreated {
        category: c,
        slug,
        file,
        body: DocBody {
            id,
            name,
            json: render(&doc),
        },
        source,
    }])
}

fn decide_clone(
    lib: &Library,
    c: Category,
    slug: &str,
    new_id: Option<&str>,
    new_name: Option<&str>,
) -> Result<Vec<Event>, Refusal> {
    let d = c.desc();
    if !d.clonable {
        return Err(Refusal::Invalid(format!("{} cannot be cloned", d.key)));
    }
    let src = lib.get(c, slug).ok_or_else(|| not_found(c, slug))?;
    let doc = src
        .data()
        .ok_or_else(|| Refusal::Invalid("the source document is not a JSON object".into()))?;
    let id = match new_id {
        Some(id) => id.to_string(),
        None => {
            let mut n = 1;
            loop {
                let candidate = if n == 1 {
                    format!("{}_copy", src.id)
                } else {
                    format!("{}_copy_{n}", src.id)
                };
                let s = c.slug_of(&candidate);
                let file = file_for_slug(&s);
                if lib.get(c, &s).is_none()
                    && !lib.shelf(c).by_file.contains_key(&file)
                    && !lib.shelf(c).failures.contains_key(&file)
                {
                    break candidate;
                }
                n += 1;
            }
        }
    };
    let name = new_name.map_or_else(|| format!("{} (Copy)", src.name), String::from);
    let mut doc = with_first(doc, d.id_field, Value::String(id));
    doc.insert(d.name_field.to_string(), Value::String(name));
    decide_create(
        lib,
        c,
        doc,
        Source::Clone {
            from: slug.to_string(),
        },
    )
}

fn decide_edit(
    lib: &Library,
    c: Category,
    slug: &str,
    doc: Map<String, Value>,
) -> Result<Vec<Event>, Refusal> {
    let d = c.desc();
    let cur = lib.get(c, slug).ok_or_else(|| not_found(c, slug))?;
    let doc = match doc.get(d.id_field) {
        None => with_first(doc, d.id_field, Value::String(cur.id.clone())),
        Some(Value::String(s)) if !s.trim().is_empty() => doc,
        Some(_) => {
            return Err(Refusal::Invalid(format!(
                "\"{}\" must be a non-empty string",
                d.id_field
            )));
        }
    };
    let (id, name) = identity(c, &doc)
        .ok_or_else(|| Refusal::Invalid(format!("\"{}\" must be a string", d.id_field)))?;
    if c.slug_of(&id) != slug {
        return Err(Refusal::Invalid(format!(
            "id '{id}' would change the slug from '{slug}' to '{}'; clone the entry instead",
            c.slug_of(&id)
        )));
    }
    let json = render(&doc);
    if *cur.json == *json {
        return Ok(Vec::new());
    }
    Ok(vec![Event::DocumentEdited {
        category: c,
        slug: slug.to_string(),
        body: DocBody { id, name, json },
    }])
}

/// Why bytes from disk cannot be a document, or the document.
fn parse_file(bytes: &[u8]) -> Result<(Map<String, Value>, &str), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    if text.trim().is_empty() {
        return Err("the file is empty".into());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok((m, text)),
        Ok(other) => Err(format!(
            "not a JSON object (the file holds {})",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// A template file that differs from the version in use becomes the new version if the engine
/// can use it; otherwise the refusal is recorded (once per content) and the old one stays.
fn decide_workflow(lib: &Library, file: &str, content: &FileContent) -> Vec<Event> {
    let refused = |hash: u64, error: String| {
        if lib
            .workflow_failure
            .as_ref()
            .is_some_and(|f| f.hash == hash)
        {
            Vec::new()
        } else {
            vec![Event::WorkflowRefused {
                file: file.to_string(),
                hash,
                error,
            }]
        }
    };
    let bytes = match content {
        FileContent::Bytes(b) => b,
        FileContent::Missing => {
            return refused(
                0,
                "the workflow template file is missing; the last good version stays in use".into(),
            );
        }
        FileContent::Unreadable(e) => return refused(content_hash(e.as_bytes()), e.clone()),
    };
    if lib
        .workflow
        .as_ref()
        .is_some_and(|w| w.json.as_bytes() == bytes.as_slice())
    {
        // Unchanged; a failure recorded for another content is over.
        return match &lib.workflow_failure {
            Some(_) => vec![Event::WorkflowSynced {
                file: file.to_string(),
                json: String::from_utf8_lossy(bytes).into_owned(),
            }],
            None => Vec::new(),
        };
    }
    let hash = content_hash(bytes);
    let (doc, text) = match parse_file(bytes) {
        Ok(parsed) => parsed,
        Err(e) => return refused(hash, e),
    };
    match crate::engine::workflow::check_template(&Value::Object(doc)) {
        Ok(()) => vec![Event::WorkflowSynced {
            file: file.to_string(),
            json: text.to_string(),
        }],
        Err(problems) => refused(hash, problems.join("; ")),
    }
}

fn file_stem(file: &str) -> &str {
    file.strip_suffix(".json").unwrap_or(file)
}

fn decide_sync(
    lib: &Library,
    c: Category,
    observations: &[Observation],
    complete: bool,
) -> Vec<Event> {
    let d = c.desc();
    let shelf = lib.shelf(c);
    let mut events = Vec::new();
    // Slugs claimed earlier in this batch, so two new files cannot both take one slug.
    let mut claimed: HashMap<String, String> = HashMap::new();
    let seen: std::collections::HashSet<&str> =
        observations.iter().map(|o| o.file.as_str()).collect();
    // Files that are gone: unobserved ones in a complete scan, and ones observed missing.
    let gone_file = |f: &str| {
        (complete && !seen.contains(f))
            || observations
                .iter()
                .any(|o| o.file == f && matches!(o.content, FileContent::Missing))
    };
    if complete {
        let mut gone: Vec<(&String, &String)> = shelf
            .by_file
            .iter()
            .filter(|(f, _)| !seen.contains(f.as_str()))
            .collect();
        gone.sort();
        for (file, slug) in gone {
            events.push(Event::FileVanished {
                category: c,
                slug: slug.clone(),
                file: file.clone(),
            });
        }
        for file in shelf.failures.keys() {
            if !seen.contains(file.as_str()) {
                events.push(Event::SyncFailureCleared {
                    category: c,
                    file: file.clone(),
                });
            }
        }
    }
    let fail = |events: &mut Vec<Event>, file: &str, bytes: &[u8], error: String| {
        let hash = content_hash(bytes);
        let same = shelf
            .failures
            .get(file)
            .is_some_and(|f| f.hash == hash && f.error == error);
        if !same {
            events.push(Event::SyncFailed {
                category: c,
                file: file.to_string(),
                hash,
                error,
            });
        }
    };
    for obs in observations {
        let file = obs.file.as_str();
        let tracked = shelf.by_file.get(file).and_then(|s| shelf.docs.get(s));
        match &obs.content {
            FileContent::Missing => {
                if let Some(e) = tracked {
                    events.push(Event::FileVanished {
                        category: c,
                        slug: e.slug.clone(),
                        file: file.to_string(),
                    });
                }
                if shelf.failures.contains_key(file) {
                    events.push(Event::SyncFailureCleared {
                        category: c,
                        file: file.to_string(),
                    });
                }
            }
            FileContent::Unreadable(err) => {
                fail(
                    &mut events,
                    file,
                    err.as_bytes(),
                    format!("unreadable: {err}"),
                );
            }
            FileContent::Bytes(bytes) => {
                if let Some(e) = tracked
                    && e.json.as_bytes() == bytes.as_slice()
                {
                    claimed.insert(e.slug.clone(), file.to_string());
                    // Put back as it was: the failure of the broken version is over.
                    if shelf.failures.contains_key(file) {
                        events.push(Event::SyncFailureCleared {
                            category: c,
                            file: file.to_string(),
                        });
                    }
                    continue;
                }
                let (doc, text) = match parse_file(bytes) {
                    Ok(ok) => ok,
                    Err(err) => {
                        fail(&mut events, file, bytes, err);
                        continue;
                    }
                };
                let (id, name) = match identity(c, &doc) {
                    Some(ok) => ok,
                    None if c == Category::Checkpoints => {
                        fail(
                            &mut events,
                            file,
                            bytes,
                            format!("missing \"{}\" (a non-empty string)", d.id_field),
                        );
                        continue;
                    }
                    None => {
                        let id = file_stem(file).to_string();
                        let name = doc
                            .get(d.name_field)
                            .and_then(Value::as_str)
                            .unwrap_or(&id)
                            .to_string();
                        (id, name)
                    }
                };
                let slug = c.slug_of(&id);
                if slug.is_empty() {
                    fail(
                        &mut events,
                        file,
                        bytes,
                        format!("id '{id}' has no letters, digits or underscores for a slug"),
                    );
                    continue;
                }
                let owner_file = claimed.get(&slug).cloned().or_else(|| {
                    shelf
                        .docs
                        .get(&slug)
                        .map(|e| e.file.clone())
                        // An owner whose file this batch saw vanish no longer holds the slug.
                        .filter(|f| !gone_file(f))
                });
                if let Some(owner) = owner_file.filter(|f| f != file) {
                    fail(
                        &mut events,
                        file,
                        bytes,
                        format!("id '{id}' maps to slug '{slug}', which {owner} already uses"),
                    );
                    continue;
                }
                claimed.insert(slug.clone(), file.to_string());
                events.push(Event::DocumentSynced {
                    category: c,
                    slug,
                    file: file.to_string(),
                    body: DocBody {
                        id,
                        name,
                        json: text.to_string(),
                    },
                });
            }
        }
    }
    events
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;

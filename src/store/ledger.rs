//! The ledger: the append-only event log in redb. The only module that touches redb. One
//! writer appends whole commands in single write transactions; readers use MVCC snapshots and
//! are never blocked by the writer.

use crate::library::category::Category;
use crate::store::event::{self, Envelope, Origin, Stored};
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Projection snapshots by the seq they include: caches that make start-up and time travel
/// fast. They are derived data; losing one only means a longer replay.
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
/// How many of the newest snapshots to keep.
const KEEP_SNAPSHOTS: usize = 4;
/// Older snapshots are thinned to one per this many seqs, so time travel and restores to
/// any point fold at most about this many events.
const SPARSE_SNAPSHOTS_EVERY: u64 = 50_000;
/// Every event up to this seq has had its files written by the file projector.
const FILES_THROUGH: &str = "files_through";
/// Every event up to this seq is in the indexes below (written in the append's transaction;
/// ledgers made before the indexes existed are indexed once at open).
const INDEXED_THROUGH: &str = "indexed_through";

/// Events by kind, origin and category: `(tag, seq)`, see `Tag`.
const IDX_TAGS: TableDefinition<(u16, u64), ()> = TableDefinition::new("idx_tags");
/// Events by the library entries they change: `(category, slug, seq)` → what the event did
/// to the entry (`VersionSummary`), so an entry's history lists without decoding events.
const IDX_SUBJECTS: TableDefinition<SubjectKey, SubjectValue> =
    TableDefinition::new("idx_subjects");
/// (category, slug, seq).
type SubjectKey = (u8, &'static str, u64);
/// (kind, origin, flags, at, detail): see `VersionSummary`.
type SubjectValue = (u8, u8, u8, u64, &'static str);
/// Events by job: `(job, seq)`.
const IDX_JOBS: TableDefinition<(u128, u64), ()> = TableDefinition::new("idx_jobs");
/// Events indexed per write transaction when catching up an old ledger.
const INDEX_BATCH: u64 = 500_000;

/// `VersionSummary::flags`: the event gave the entry its text.
pub const VERSION_TEXT: u8 = 1;
/// `VersionSummary::flags`: the entry left the library.
pub const VERSION_REMOVED: u8 = 2;
/// `VersionSummary::flags`: the event set the entry's cover.
pub const VERSION_COVER: u8 = 4;

/// What one event did to one entry, as the entry index keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionSummary {
    pub seq: u64,
    pub kind: u8,
    pub origin: Origin,
    pub flags: u8,
    pub at: u64,
    /// The name the text gave the entry, or the cover's path.
    pub detail: String,
}

/// What `event` did to `category/slug`: flags and detail (see `VersionSummary`).
pub fn version_summary(
    event: &crate::store::event::Event,
    c: Category,
    slug: &str,
) -> (u8, String) {
    use crate::store::event::Event;
    match event {
        Event::DocumentSynced { body, .. }
        | Event::DocumentCreated { body, .. }
        | Event::DocumentEdited { body, .. } => (VERSION_TEXT, body.name.clone()),
        Event::Undeleted { entry, .. } => (VERSION_TEXT, entry.body.name.clone()),
        Event::Restored { put, .. } => match put.iter().find(|p| p.category == c && p.slug == slug)
        {
            Some(p) => (VERSION_TEXT, p.body.name.clone()),
            None => (VERSION_REMOVED, String::new()),
        },
        Event::DocumentDeleted { .. } | Event::FileVanished { .. } => {
            (VERSION_REMOVED, String::new())
        }
        Event::CoverSet { path, .. } => (VERSION_COVER, path.clone()),
        _ => (0, String::new()),
    }
}

/// The redb page cache cap; without it redb grows toward 1 GiB.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub enum LedgerError {
    /// Another process holds the ledger open.
    Locked(PathBuf),
    Storage(String),
    Codec {
        seq: u64,
        error: String,
    },
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::Locked(p) => write!(
                f,
                "the ledger {} is in use by another running gaze; stop it or pass another --ledger",
                p.display()
            ),
            LedgerError::Storage(e) => write!(f, "ledger storage error: {e}"),
            LedgerError::Codec { seq, error } => write!(f, "ledger event {seq}: {error}"),
        }
    }
}

impl std::error::Error for LedgerError {}

fn storage<E: std::fmt::Display>(e: E) -> LedgerError {
    LedgerError::Storage(e.to_string())
}

pub struct Ledger {
    db: Database,
    last: AtomicU64,
    path: PathBuf,
}

impl Ledger {
    /// Opens (or creates) the ledger file at `path`; its folder is created if missing.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(storage)?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => LedgerError::Locked(path.into()),
                other => storage(other),
            })?;
        // Make sure both tables exist so readers never meet a missing table.
        let tx = db.begin_write().map_err(storage)?;
        tx.open_table(EVENTS).map_err(storage)?;
        tx.open_table(META).map_err(storage)?;
        tx.open_table(SNAPSHOTS).map_err(storage)?;
        tx.open_table(IDX_TAGS).map_err(storage)?;
        tx.open_table(IDX_SUBJECTS).map_err(storage)?;
        tx.open_table(IDX_JOBS).map_err(storage)?;
        tx.commit().map_err(storage)?;
        let last = {
            let rx = db.begin_read().map_err(storage)?;
            let t = rx.open_table(EVENTS).map_err(storage)?;
            t.last().map_err(storage)?.map_or(0, |(k, _)| k.value())
        };
        let ledger = Ledger {
            db,
            last: AtomicU64::new(last),
            path: path.into(),
        };
        ledger.catch_up_indexes()?;
        Ok(ledger)
    }

    fn meta(&self, key: &str) -> Result<u64, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let m = rx.open_table(META).map_err(storage)?;
        Ok(m.get(key).map_err(storage)?.map_or(0, |v| v.value()))
    }

    /// Writes collected index entries, sorted, in one transaction, and records that every
    /// event through `through` is indexed.
    pub fn write_index_keys(&self, keys: IndexKeys, through: u64) -> Result<(), LedgerError> {
        let mut tx = self.db.begin_write().map_err(storage)?;
        tx.set_quick_repair(false);
        {
            keys.write(&mut Indexes::open(&tx)?)?;
            let mut m = tx.open_table(META).map_err(storage)?;
            m.insert(INDEXED_THROUGH, through).map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    /// Indexes the events a ledger from before the indexes (or an interrupted catch-up or
    /// import) left out, in large sorted batches.
    pub fn catch_up_indexes(&self) -> Result<(), LedgerError> {
        let last = self.last_seq();
        let mut done = self.meta(INDEXED_THROUGH)?;
        if done < last {
            tracing::info!("indexing ledger events {} to {last}", done + 1);
        }
        while done < last {
            let to = (done + INDEX_BATCH).min(last);
            let mut keys = IndexKeys::default();
            self.fold(done + 1, to, |s| {
                keys.add(s.seq, &s.envelope);
                true
            })?;
            self.write_index_keys(keys, to)?;
            done = to;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The seq of the newest committed event (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Appends `batch` in one durable write transaction, numbering the events densely after the
    /// last one, and records that every earlier event's files were written. Callers must be the
    /// single writer (the handle's writer lock).
    pub fn append(&self, batch: Vec<Envelope>) -> Result<Vec<Stored>, LedgerError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let before = self.last_seq();
        let mut encoded = Vec::with_capacity(batch.len());
        for env in &batch {
            encoded.push(event::encode(env).map_err(|e| LedgerError::Codec {
                seq: before + 1,
                error: e.0,
            })?);
        }
        let mut tx = self.db.begin_write().map_err(storage)?;
        // Saves the allocator state with each commit, so reopening after a crash does not walk
        // the whole file (seconds for a multi-GiB ledger).
        tx.set_quick_repair(false);
        {
            let mut t = tx.open_table(EVENTS).map_err(storage)?;
            for (i, bytes) in encoded.iter().enumerate() {
                t.insert(before + 1 + i as u64, bytes.as_slice())
                    .map_err(storage)?;
            }
            let mut keys = IndexKeys::default();
            for (i, env) in batch.iter().enumerate() {
                keys.add(before + 1 + i as u64, env);
            }
            keys.write(&mut Indexes::open(&tx)?)?;
            let mut m = tx.open_table(META).map_err(storage)?;
            m.insert(FILES_THROUGH, before).map_err(storage)?;
            m.insert(INDEXED_THROUGH, before + batch.len() as u64)
                .map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        let stored: Vec<Stored> = batch
            .into_iter()
            .enumerate()
            .map(|(i, envelope)| Stored {
                seq: before + 1 + i as u64,
                envelope,
            })
            .collect();
        self.last
            .store(before + stored.len() as u64, Ordering::Release);
        Ok(stored)
    }

    /// The seq through which the file projector is known to have written files.
    pub fn files_through(&self) -> Result<u64, LedgerError> {
        self.meta(FILES_THROUGH)
    }

    /// The seq through which the indexes hold every event.
    pub fn indexed_through(&self) -> Result<u64, LedgerError> {
        self.meta(INDEXED_THROUGH)
    }

    /// Stores a snapshot of the projection as of `seq`, keeping the newest few and, before
    /// them, the first one of every `SPARSE_SNAPSHOTS_EVERY` seqs.
    pub fn write_snapshot(&self, seq: u64, bytes: &[u8]) -> Result<(), LedgerError> {
        let mut tx = self.db.begin_write().map_err(storage)?;
        tx.set_quick_repair(false);
        {
            let mut t = tx.open_table(SNAPSHOTS).map_err(storage)?;
            t.insert(seq, bytes).map_err(storage)?;
            let keys: Vec<u64> = t
                .iter()
                .map_err(storage)?
                .filter_map(Result::ok)
                .map(|(k, _)| k.value())
                .collect();
            if keys.len() > KEEP_SNAPSHOTS {
                let mut bucket = None;
                for k in &keys[..keys.len() - KEEP_SNAPSHOTS] {
                    let b = k / SPARSE_SNAPSHOTS_EVERY;
                    if bucket == Some(b) {
                        t.remove(k).map_err(storage)?;
                    }
                    bucket = Some(b);
                }
            }
        }
        tx.commit().map_err(storage)
    }

    /// The newest snapshot that includes no event after `seq`.
    pub fn snapshot_at_or_before(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(SNAPSHOTS).map_err(storage)?;
        let found = t.range(..=seq).map_err(storage)?.next_back();
        match found {
            Some(row) => {
                let (k, v) = row.map_err(storage)?;
                Ok(Some((k.value(), v.value().to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Events with `seq > after`, at most `limit` of them, oldest first.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Stored>, LedgerError> {
        let mut out = Vec::new();
        self.fold(after + 1, u64::MAX, |s| {
            out.push(s);
            out.len() < limit
        })?;
        Ok(out)
    }

    /// The newest `limit` events, newest first.
    pub fn read_newest(&self, limit: usize) -> Result<Vec<Stored>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(EVENTS).map_err(storage)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(storage)?.rev().take(limit) {
            let (k, v) = row.map_err(storage)?;
            out.push(decode_row(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Visits events with `from <= seq <= to` in order, on one snapshot, until `f` says stop.
    pub fn fold(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(Stored) -> bool,
    ) -> Result<(), LedgerError> {
        if from > to {
            return Ok(());
        }
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(EVENTS).map_err(storage)?;
        for row in t.range(from..=to).map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            if !f(decode_row(k.value(), v.value())?) {
                break;
            }
        }
        Ok(())
    }
}

/// Which events a scan visits: all of them, or those an index names.
#[derive(Clone, Debug, PartialEq)]
pub enum Scan {
    All,
    Kind(u8),
    Origin(Origin),
    Category(Category),
    /// The events that change one library entry (see `Event::subjects`).
    Subject(Category, String),
    Job(u128),
}

/// An index tag: kinds from 0, origins from 0x100, categories from 0x200.
fn tag_kind(code: u8) -> u16 {
    u16::from(code)
}

fn tag_origin(o: Origin) -> u16 {
    0x100 + o as u16
}

fn tag_category(c: Category) -> u16 {
    0x200 + c.index() as u16
}

/// An entry-index row before it is written: ((category, slug, seq), (kind, origin, flags,
/// at, detail)).
type OwnedSubject = ((u8, String, u64), (u8, u8, u8, u64, String));

/// The index entries of some events, collected before they are written (sorted, so a bulk
/// load fills each table's pages in order).
#[derive(Default, Debug)]
pub struct IndexKeys {
    tags: Vec<(u16, u64)>,
    /// (category, slug, seq) → (kind, origin, flags, at, detail).
    subjects: Vec<OwnedSubject>,
    jobs: Vec<(u128, u64)>,
}

impl IndexKeys {
    /// Adds the entries of event `seq`.
    pub fn add(&mut self, seq: u64, env: &Envelope) {
        let e = &env.event;
        self.tags.push((tag_kind(e.kind_code()), seq));
        self.tags.push((tag_origin(env.origin), seq));
        let subjects = e.subjects();
        let mut cats: Vec<Category> = subjects.iter().map(|s| s.0).collect();
        cats.extend(e.category());
        cats.sort();
        cats.dedup();
        self.tags
            .extend(cats.into_iter().map(|c| (tag_category(c), seq)));
        for (c, slug) in subjects {
            let (flags, detail) = version_summary(e, c, slug);
            self.subjects.push((
                (c.index() as u8, slug.to_string(), seq),
                (e.kind_code(), env.origin as u8, flags, env.at, detail),
            ));
        }
        if let Some(job) = e.job() {
            self.jobs.push((job, seq));
        }
    }

    pub fn append(&mut self, mut other: IndexKeys) {
        self.tags.append(&mut other.tags);
        self.subjects.append(&mut other.subjects);
        self.jobs.append(&mut other.jobs);
    }

    fn write(mut self, ix: &mut Indexes<'_>) -> Result<(), LedgerError> {
        self.tags.sort_unstable();
        self.subjects.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.jobs.sort_unstable();
        for k in self.tags {
            ix.tags.insert(k, ()).map_err(storage)?;
        }
        for ((c, slug, seq), (kind, origin, flags, at, detail)) in &self.subjects {
            ix.subjects
                .insert(
                    (*c, slug.as_str(), *seq),
                    (*kind, *origin, *flags, *at, detail.as_str()),
                )
                .map_err(storage)?;
        }
        for k in self.jobs {
            ix.jobs.insert(k, ()).map_err(storage)?;
        }
        Ok(())
    }
}

/// The index tables of one write transaction.
struct Indexes<'t> {
    tags: Table<'t, (u16, u64), ()>,
    subjects: Table<'t, SubjectKey, SubjectValue>,
    jobs: Table<'t, (u128, u64), ()>,
}

impl<'t> Indexes<'t> {
    fn open(tx: &'t redb::WriteTransaction) -> Result<Indexes<'t>, LedgerError> {
        Ok(Indexes {
            tags: tx.open_table(IDX_TAGS).map_err(storage)?,
            subjects: tx.open_table(IDX_SUBJECTS).map_err(storage)?,
            jobs: tx.open_table(IDX_JOBS).map_err(storage)?,
        })
    }
}

impl Ledger {
    /// Visits the events `scan` names with `from <= seq <= to`, oldest first or newest first,
    /// on one snapshot, until `f` says stop.
    pub fn scan(
        &self,
        scan: &Scan,
        from: u64,
        to: u64,
        newest_first: bool,
        mut f: impl FnMut(Stored) -> bool,
    ) -> Result<(), LedgerError> {
        if from > to {
            return Ok(());
        }
        let rx = self.db.begin_read().map_err(storage)?;
        let events = rx.open_table(EVENTS).map_err(storage)?;
        let mut visit = |seq: u64| -> Result<bool, LedgerError> {
            match events.get(seq).map_err(storage)? {
                Some(v) => Ok(f(decode_row(seq, v.value())?)),
                None => Ok(true),
            }
        };
        macro_rules! walk {
            ($iter:expr, $seq:expr) => {{
                let iter = $iter;
                if newest_first {
                    for row in iter.rev() {
                        let (k, _) = row.map_err(storage)?;
                        if !visit($seq(k.value()))? {
                            break;
                        }
                    }
                } else {
                    for row in iter {
                        let (k, _) = row.map_err(storage)?;
                        if !visit($seq(k.value()))? {
                            break;
                        }
                    }
                }
            }};
        }
        match scan {
            Scan::All => {
                let iter = events.range(from..=to).map_err(storage)?;
                if newest_first {
                    for row in iter.rev() {
                        let (k, v) = row.map_err(storage)?;
                        if !f(decode_row(k.value(), v.value())?) {
                            break;
                        }
                    }
                } else {
                    for row in iter {
                        let (k, v) = row.map_err(storage)?;
                        if !f(decode_row(k.value(), v.value())?) {
                            break;
                        }
                    }
                }
            }
            Scan::Kind(_) | Scan::Origin(_) | Scan::Category(_) => {
                let tag = match scan {
                    Scan::Kind(k) => tag_kind(*k),
                    Scan::Origin(o) => tag_origin(*o),
                    Scan::Category(c) => tag_category(*c),
                    _ => 0,
                };
                let t = rx.open_table(IDX_TAGS).map_err(storage)?;
                walk!(
                    t.range((tag, from)..=(tag, to)).map_err(storage)?,
                    |k: (u16, u64)| k.1
                );
            }
            Scan::Subject(c, slug) => {
                let t = rx.open_table(IDX_SUBJECTS).map_err(storage)?;
                let c = c.index() as u8;
                walk!(
                    t.range((c, slug.as_str(), from)..=(c, slug.as_str(), to))
                        .map_err(storage)?,
                    |k: (u8, &str, u64)| k.2
                );
            }
            Scan::Job(job) => {
                let t = rx.open_table(IDX_JOBS).map_err(storage)?;
                walk!(
                    t.range((*job, from)..=(*job, to)).map_err(storage)?,
                    |k: (u128, u64)| k.1
                );
            }
        }
        Ok(())
    }

    /// The seqs of the events that change one entry, oldest first (no event is decoded).
    pub fn subject_seqs(&self, c: Category, slug: &str) -> Result<Vec<u64>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(IDX_SUBJECTS).map_err(storage)?;
        let c = c.index() as u8;
        let mut out = Vec::new();
        for row in t
            .range((c, slug, 0)..=(c, slug, u64::MAX))
            .map_err(storage)?
        {
            let (k, _) = row.map_err(storage)?;
            out.push(k.value().2);
        }
        Ok(out)
    }

    /// What the events with `from <= seq <= to` did to one entry, from the entry index alone,
    /// newest first or oldest first, at most `limit`.
    pub fn subject_versions(
        &self,
        c: Category,
        slug: &str,
        from: u64,
        to: u64,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<VersionSummary>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(IDX_SUBJECTS).map_err(storage)?;
        let ci = c.index() as u8;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let range = t
            .range((ci, slug, from)..=(ci, slug, to))
            .map_err(storage)?;
        let rows: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for row in rows.take(limit) {
            let (k, v) = row.map_err(storage)?;
            let (kind, origin, flags, at, detail) = v.value();
            out.push(VersionSummary {
                seq: k.value().2,
                kind,
                origin: Origin::ALL
                    .get(usize::from(origin))
                    .copied()
                    .unwrap_or(Origin::Web),
                flags,
                at,
                detail: detail.to_string(),
            });
        }
        Ok(out)
    }

    /// One event.
    pub fn get(&self, seq: u64) -> Result<Option<Stored>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(EVENTS).map_err(storage)?;
        match t.get(seq).map_err(storage)? {
            Some(v) => Ok(Some(decode_row(seq, v.value())?)),
            None => Ok(None),
        }
    }

    /// Several events by seq, on one snapshot (missing ones are skipped).
    pub fn get_many(&self, seqs: &[u64]) -> Result<Vec<Stored>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(EVENTS).map_err(storage)?;
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            if let Some(v) = t.get(seq).map_err(storage)? {
                out.push(decode_row(seq, v.value())?);
            }
        }
        Ok(out)
    }

    /// The newest seq whose event happened at or before `at_ms` (0 if none). Event times are
    /// taken as non-decreasing with seq (they are the writer's clock at each append).
    pub fn seq_at_time(&self, at_ms: u64) -> Result<u64, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(EVENTS).map_err(storage)?;
        let at_of = |seq: u64| -> Result<u64, LedgerError> {
            match t.get(seq).map_err(storage)? {
                Some(v) => Ok(decode_row(seq, v.value())?.envelope.at),
                None => Ok(u64::MAX),
            }
        };
        // Invariant: at(lo) <= at_ms (lo = 0 stands for "before everything"), at(hi + 1) > at_ms.
        let (mut lo, mut hi) = (0u64, self.last_seq());
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if at_of(mid)? <= at_ms {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// Visits the stored bytes of events with `from <= seq <= to`, in order, until `f` says
    /// stop (for lossless export).
    pub fn raw(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), LedgerError> {
        if from > to {
            return Ok(());
        }
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(EVENTS).map_err(storage)?;
        for row in t.range(from..=to).map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            if !f(k.value(), v.value()) {
                break;
            }
        }
        Ok(())
    }

    /// Appends already-encoded events (an import) in one durable transaction, byte for byte,
    /// without indexing them: the caller collects their `IndexKeys` (it decoded them to check
    /// them) and writes those once at the end (`write_index_keys`); an import cut short is
    /// indexed at the next open. The records must continue the ledger densely. An import
    /// writes no files, so the file projector's checkpoint moves with it: the first start
    /// compares `data/` with the imported library like any start-up sync.
    pub fn append_raw(&self, records: &[(u64, Vec<u8>)]) -> Result<(), LedgerError> {
        let Some(&(first, _)) = records.first() else {
            return Ok(());
        };
        let before = self.last_seq();
        for (i, (seq, _)) in records.iter().enumerate() {
            if *seq != before + 1 + i as u64 {
                return Err(LedgerError::Storage(format!(
                    "event {seq} does not follow {} (the ledger ends at {before}, the batch starts at {first})",
                    before + i as u64
                )));
            }
        }
        let mut tx = self.db.begin_write().map_err(storage)?;
        tx.set_quick_repair(false);
        let last = before + records.len() as u64;
        {
            let mut t = tx.open_table(EVENTS).map_err(storage)?;
            for (seq, bytes) in records {
                t.insert(*seq, bytes.as_slice()).map_err(storage)?;
            }
            let mut m = tx.open_table(META).map_err(storage)?;
            m.insert(FILES_THROUGH, last).map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        self.last.store(last, Ordering::Release);
        Ok(())
    }

    /// Empties the indexes, as a ledger from before them would be.
    #[cfg(test)]
    fn drop_indexes(&self) {
        let tx = self.db.begin_write().unwrap();
        tx.delete_table(IDX_TAGS).unwrap();
        tx.delete_table(IDX_SUBJECTS).unwrap();
        tx.delete_table(IDX_JOBS).unwrap();
        tx.open_table(IDX_TAGS).unwrap();
        tx.open_table(IDX_SUBJECTS).unwrap();
        tx.open_table(IDX_JOBS).unwrap();
        tx.open_table(META)
            .unwrap()
            .remove(INDEXED_THROUGH)
            .unwrap();
        tx.commit().unwrap();
    }

    /// Every stored snapshot, oldest first (for checks).
    pub fn snapshots(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(SNAPSHOTS).map_err(storage)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }
}

fn decode_row(seq: u64, bytes: &[u8]) -> Result<Stored, LedgerError> {
    let envelope = event::decode(bytes).map_err(|e| LedgerError::Codec { seq, error: e.0 })?;
    Ok(Stored { seq, envelope })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::category::Category;
    use crate::store::event::{Event, Origin};

    fn env(i: u64) -> Envelope {
        Envelope {
            id: u128::from(i),
            at: i,
            origin: Origin::Cli,
            event: Event::CoversCleared {
                category: Category::Scenes,
            },
        }
    }

    #[test]
    fn appends_are_dense_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l/gaze.redb");
        {
            let l = Ledger::open(&path).unwrap();
            assert_eq!(l.last_seq(), 0);
            let s = l.append(vec![env(1), env(2)]).unwrap();
            assert_eq!(s.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2]);
            l.append(vec![env(3)]).unwrap();
            assert_eq!(l.files_through().unwrap(), 2);
        }
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.last_seq(), 3);
        let all = l.read_after(0, 100).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].envelope, env(3));
        assert_eq!(l.read_after(1, 1).unwrap()[0].seq, 2);
        assert_eq!(l.read_newest(2).unwrap()[0].seq, 3);
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gaze.redb");
        let _first = Ledger::open(&path).unwrap();
        match Ledger::open(&path) {
            Err(e @ LedgerError::Locked(_)) => assert!(e.to_string().contains("in use")),
            other => panic!("expected Locked, got {:?}", other.err()),
        }
    }

    fn mixed(i: u64) -> Envelope {
        let c = Category::ALL[(i % 3) as usize];
        let event = match i % 4 {
            0 => Event::CoverSet {
                category: c,
                slug: format!("e{}", i % 5),
                path: format!("p{i}"),
            },
            1 => Event::JobCancelled {
                job: u128::from(i % 7),
            },
            2 => Event::CoversCleared { category: c },
            _ => Event::QueuePaused {
                paused: i.is_multiple_of(2),
            },
        };
        Envelope {
            id: u128::from(i),
            at: 1000 + i * 10,
            origin: if i.is_multiple_of(3) {
                Origin::Web
            } else {
                Origin::Reactor
            },
            event,
        }
    }

    fn seqs(l: &Ledger, scan: &Scan, from: u64, to: u64, newest_first: bool) -> Vec<u64> {
        let mut out = Vec::new();
        l.scan(scan, from, to, newest_first, |s| {
            out.push(s.seq);
            true
        })
        .unwrap();
        out
    }

    /// What a scan must return, by brute force over the events.
    fn expected(l: &Ledger, scan: &Scan, from: u64, to: u64) -> Vec<u64> {
        l.read_after(0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|s| s.seq >= from && s.seq <= to)
            .filter(|s| {
                let e = s.event();
                match scan {
                    Scan::All => true,
                    Scan::Kind(k) => e.kind_code() == *k,
                    Scan::Origin(o) => s.envelope.origin == *o,
                    Scan::Category(c) => {
                        e.category() == Some(*c) || e.subjects().iter().any(|x| x.0 == *c)
                    }
                    Scan::Subject(c, slug) => e.subjects().contains(&(*c, slug.as_str())),
                    Scan::Job(j) => e.job() == Some(*j),
                }
            })
            .map(|s| s.seq)
            .collect()
    }

    fn all_scans() -> Vec<Scan> {
        let mut scans = vec![
            Scan::All,
            Scan::Kind(7),
            Scan::Kind(18),
            Scan::Kind(0),
            Scan::Origin(Origin::Web),
            Scan::Origin(Origin::Assistant),
            Scan::Job(3),
            Scan::Job(99),
        ];
        for c in Category::ALL {
            scans.push(Scan::Category(c));
            scans.push(Scan::Subject(c, "e2".into()));
        }
        scans
    }

    #[test]
    fn every_index_scan_equals_a_filter_over_all_events_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("g.redb")).unwrap();
        l.append((1..=60).map(mixed).collect()).unwrap();
        l.append((61..=100).map(mixed).collect()).unwrap();
        for scan in all_scans() {
            for (from, to) in [(1, 100), (17, 64), (50, 50), (90, 200), (70, 10)] {
                let want = expected(&l, &scan, from, to);
                assert_eq!(
                    seqs(&l, &scan, from, to, false),
                    want,
                    "{scan:?} {from}..{to}"
                );
                let mut rev = want.clone();
                rev.reverse();
                assert_eq!(seqs(&l, &scan, from, to, true), rev, "{scan:?} desc");
            }
        }
        let mut first3 = Vec::new();
        l.scan(&Scan::Origin(Origin::Web), 1, 100, true, |s| {
            first3.push(s.seq);
            first3.len() < 3
        })
        .unwrap();
        assert_eq!(first3, [99, 96, 93], "a scan stops when told");
        assert_eq!(
            l.subject_seqs(Category::Characters, "e2").unwrap(),
            expected(
                &l,
                &Scan::Subject(Category::Characters, "e2".into()),
                1,
                100
            )
        );
    }

    #[test]
    fn an_old_ledger_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.redb");
        {
            let l = Ledger::open(&path).unwrap();
            l.append((1..=120).map(mixed).collect()).unwrap();
            l.drop_indexes();
            assert!(seqs(&l, &Scan::Kind(7), 1, 200, false).is_empty());
        }
        let l = Ledger::open(&path).unwrap();
        for scan in all_scans() {
            assert_eq!(
                seqs(&l, &scan, 1, 200, false),
                expected(&l, &scan, 1, 200),
                "{scan:?}"
            );
        }
    }

    #[test]
    fn time_finds_the_newest_event_at_or_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("g.redb")).unwrap();
        assert_eq!(l.seq_at_time(5000).unwrap(), 0);
        // Times 1010, 1020, … 1500 for seqs 1..=50.
        l.append((1..=50).map(mixed).collect()).unwrap();
        for (at, want) in [
            (0, 0),
            (1009, 0),
            (1010, 1),
            (1015, 1),
            (1020, 2),
            (1259, 25),
            (1500, 50),
            (99_999, 50),
        ] {
            assert_eq!(l.seq_at_time(at).unwrap(), want, "at {at}");
        }
    }

    #[test]
    fn raw_records_copy_a_ledger_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ledger::open(&dir.path().join("a.redb")).unwrap();
        a.append((1..=30).map(mixed).collect()).unwrap();
        let mut records = Vec::new();
        a.raw(1, u64::MAX, |seq, b| {
            records.push((seq, b.to_vec()));
            true
        })
        .unwrap();
        let b = Ledger::open(&dir.path().join("b.redb")).unwrap();
        b.append_raw(&records[..10]).unwrap();
        assert!(b.append_raw(&records[11..12]).is_err(), "a gap is refused");
        b.append_raw(&records[10..]).unwrap();
        assert!(
            seqs(&b, &Scan::Kind(7), 1, 99, false).is_empty(),
            "not indexed yet"
        );
        b.catch_up_indexes().unwrap();
        let mut copied = Vec::new();
        b.raw(1, u64::MAX, |seq, bytes| {
            copied.push((seq, bytes.to_vec()));
            true
        })
        .unwrap();
        assert_eq!(copied, records);
        assert_eq!(b.last_seq(), 30);
        assert_eq!(b.files_through().unwrap(), 30);
        for scan in all_scans() {
            assert_eq!(seqs(&b, &scan, 1, 99, false), seqs(&a, &scan, 1, 99, false));
        }
    }

    #[test]
    fn snapshots_keep_the_newest_and_one_per_sparse_interval() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("g.redb")).unwrap();
        for seq in (10_000..=350_000).step_by(10_000) {
            l.write_snapshot(seq, b"x").unwrap();
        }
        let kept: Vec<u64> = l.snapshots().unwrap().into_iter().map(|s| s.0).collect();
        assert_eq!(
            kept,
            [
                10_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 320_000, 330_000,
                340_000, 350_000
            ]
        );
        assert_eq!(
            l.snapshot_at_or_before(199_999).unwrap().unwrap().0,
            150_000
        );
    }

    #[test]
    fn an_old_snapshot_keeps_its_view_while_the_writer_appends() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("g.redb")).unwrap();
        l.append(vec![env(1)]).unwrap();
        let mut seen = Vec::new();
        l.fold(1, u64::MAX, |s| {
            seen.push(s.seq);
            true
        })
        .unwrap();
        l.append(vec![env(2)]).unwrap();
        assert_eq!(seen, [1]);
        assert_eq!(l.read_after(0, 10).unwrap().len(), 2);
    }
}

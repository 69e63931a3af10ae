//! The ledger: the append-only event log in redb. The only module that touches redb. One
//! writer appends whole commands in single write transactions; readers use MVCC snapshots and
//! are never blocked by the writer.

use crate::store::event::{self, Envelope, Stored};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Projection snapshots by the seq they include: caches that make start-up and time travel
/// fast. They are derived data; losing one only means a longer replay.
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
/// How many snapshots to keep.
const KEEP_SNAPSHOTS: usize = 4;
/// Every event up to this seq has had its files written by the file projector.
const FILES_THROUGH: &str = "files_through";

// ---- queue (issue 12) ----
/// Each job's events, `(job, seq)`, written in the append's transaction: how a finished job,
/// which the projection keeps as an id only, is read back.
const JOB_EVENTS: TableDefinition<(u128, u64), ()> = TableDefinition::new("job_events");
/// Every event up to this seq is in `JOB_EVENTS` (ledgers from before the table are indexed
/// once at open).
const JOB_EVENTS_THROUGH: &str = "job_events_through";
/// Events indexed per write transaction when catching up an old ledger.
const JOB_INDEX_BATCH: u64 = 50_000;

/// The redb page cache cap; without it redb grows toward 1 GiB.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
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
    /// Write transactions that appended events since open (group commit shows in it).
    commits: AtomicU64,
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
        tx.open_table(JOB_EVENTS).map_err(storage)?;
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
            commits: AtomicU64::new(0),
        };
        ledger.catch_up_job_index()?;
        Ok(ledger)
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
            let mut jobs = tx.open_table(JOB_EVENTS).map_err(storage)?;
            for (i, env) in batch.iter().enumerate() {
                if let Some(job) = env.event.job() {
                    jobs.insert((job, before + 1 + i as u64), ())
                        .map_err(storage)?;
                }
            }
            let mut m = tx.open_table(META).map_err(storage)?;
            m.insert(FILES_THROUGH, before).map_err(storage)?;
            m.insert(JOB_EVENTS_THROUGH, before + batch.len() as u64)
                .map_err(storage)?;
        }
        tx.commit().map_err(storage)?;
        self.commits.fetch_add(1, Ordering::Relaxed);
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
        let rx = self.db.begin_read().map_err(storage)?;
        let m = rx.open_table(META).map_err(storage)?;
        Ok(m.get(FILES_THROUGH)
            .map_err(storage)?
            .map_or(0, |v| v.value()))
    }

    /// Stores a snapshot of the projection as of `seq`, keeping only the newest few.
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
                for k in &keys[..keys.len() - KEEP_SNAPSHOTS] {
                    t.remove(k).map_err(storage)?;
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

// ---- queue (issue 12): the job index, single reads, maintenance ----
/// One table's use of the file: (table, entries, bytes stored, metadata bytes, fragmented bytes).
pub type TableUse = (&'static str, u64, u64, u64, u64);

impl Ledger {
    /// Write transactions that appended events since this ledger was opened.
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Indexes the job events a ledger from before `JOB_EVENTS` (or an interrupted catch-up)
    /// left out, in batches.
    fn catch_up_job_index(&self) -> Result<(), LedgerError> {
        let last = self.last_seq();
        let mut done = {
            let rx = self.db.begin_read().map_err(storage)?;
            let m = rx.open_table(META).map_err(storage)?;
            m.get(JOB_EVENTS_THROUGH)
                .map_err(storage)?
                .map_or(0, |v| v.value())
        };
        if done < last {
            tracing::info!(
                "indexing the job events among ledger events {} to {last}",
                done + 1
            );
        }
        while done < last {
            let to = (done + JOB_INDEX_BATCH).min(last);
            let mut rows = Vec::new();
            self.fold(done + 1, to, |s| {
                if let Some(job) = s.event().job() {
                    rows.push((job, s.seq));
                }
                true
            })?;
            let mut tx = self.db.begin_write().map_err(storage)?;
            tx.set_quick_repair(false);
            {
                let mut t = tx.open_table(JOB_EVENTS).map_err(storage)?;
                for row in rows {
                    t.insert(row, ()).map_err(storage)?;
                }
                let mut m = tx.open_table(META).map_err(storage)?;
                m.insert(JOB_EVENTS_THROUGH, to).map_err(storage)?;
            }
            tx.commit().map_err(storage)?;
            done = to;
        }
        Ok(())
    }

    /// The seqs of one job's events, oldest first (its request first).
    pub fn job_seqs(&self, job: u128) -> Result<Vec<u64>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(JOB_EVENTS).map_err(storage)?;
        let mut out = Vec::new();
        for row in t.range((job, 0)..=(job, u64::MAX)).map_err(storage)? {
            out.push(row.map_err(storage)?.0.value().1);
        }
        Ok(out)
    }

    /// The events of each of `jobs`, oldest first, all read on one snapshot.
    pub fn job_events(&self, jobs: &[u128]) -> Result<Vec<Vec<Stored>>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let index = rx.open_table(JOB_EVENTS).map_err(storage)?;
        let events = rx.open_table(EVENTS).map_err(storage)?;
        let mut out = Vec::with_capacity(jobs.len());
        for &job in jobs {
            let mut list = Vec::new();
            for row in index.range((job, 0)..=(job, u64::MAX)).map_err(storage)? {
                let seq = row.map_err(storage)?.0.value().1;
                if let Some(v) = events.get(seq).map_err(storage)? {
                    list.push(decode_row(seq, v.value())?);
                }
            }
            out.push(list);
        }
        Ok(out)
    }

    /// One event, if it exists.
    pub fn event_at(&self, seq: u64) -> Result<Option<Stored>, LedgerError> {
        let rx = self.db.begin_read().map_err(storage)?;
        let t = rx.open_table(EVENTS).map_err(storage)?;
        match t.get(seq).map_err(storage)? {
            Some(v) => Ok(Some(decode_row(seq, v.value())?)),
            None => Ok(None),
        }
    }

    /// Removes every projection snapshot (the next start replays the whole ledger).
    pub fn clear_snapshots(&self) -> Result<(), LedgerError> {
        let tx = self.db.begin_write().map_err(storage)?;
        {
            let mut t = tx.open_table(SNAPSHOTS).map_err(storage)?;
            t.retain(|_, _| false).map_err(storage)?;
        }
        tx.commit().map_err(storage)
    }

    /// How the ledger's space is used, table by table: (table, entries, bytes stored, bytes
    /// of B-tree metadata, bytes lost to fragmentation), for benchmarks and diagnostics.
    pub fn table_stats(&self) -> Result<Vec<TableUse>, LedgerError> {
        use redb::ReadableTableMetadata;
        let rx = self.db.begin_read().map_err(storage)?;
        let mut out = Vec::new();
        macro_rules! stats {
            ($name:expr, $def:expr) => {{
                let t = rx.open_table($def).map_err(storage)?;
                let s = t.stats().map_err(storage)?;
                out.push((
                    $name,
                    t.len().map_err(storage)?,
                    s.stored_bytes(),
                    s.metadata_bytes(),
                    s.fragmented_bytes(),
                ));
            }};
        }
        stats!("events", EVENTS);
        stats!("snapshots", SNAPSHOTS);
        stats!("job_events", JOB_EVENTS);
        Ok(out)
    }

    /// The ledger file's size in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Gives redb's free pages back to the file system (nothing written is changed). Needs
    /// the ledger to itself: call it before handing the ledger to a `Handle`.
    pub fn compact(&mut self) -> Result<bool, LedgerError> {
        let mut any = false;
        // Each pass can free the pages the one before moved out of the way.
        for _ in 0..8 {
            if !self.db.compact().map_err(storage)? {
                break;
            }
            any = true;
        }
        Ok(any)
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

    fn job_event(seq: u64, job: u128) -> Envelope {
        Envelope {
            id: u128::from(seq),
            at: seq,
            origin: Origin::Reactor,
            event: Event::JobCancelled { job },
        }
    }

    #[test]
    fn job_events_are_indexed_at_append_and_old_ledgers_are_indexed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gaze.redb");
        {
            let l = Ledger::open(&path).unwrap();
            l.append(vec![env(1), job_event(2, 7), job_event(3, 8)])
                .unwrap();
            l.append(vec![job_event(4, 7)]).unwrap();
            assert_eq!(l.job_seqs(7).unwrap(), [2, 4]);
            assert_eq!(l.job_seqs(8).unwrap(), [3]);
            assert!(l.job_seqs(9).unwrap().is_empty());
            let both = l.job_events(&[8, 7]).unwrap();
            assert_eq!(both[0].iter().map(|s| s.seq).collect::<Vec<_>>(), [3]);
            assert_eq!(both[1].iter().map(|s| s.seq).collect::<Vec<_>>(), [2, 4]);
            assert_eq!(l.event_at(4).unwrap().unwrap().envelope, job_event(4, 7));
            assert!(l.event_at(5).unwrap().is_none());
            // What a ledger written before the index looks like.
            let tx = l.db.begin_write().unwrap();
            tx.delete_table(JOB_EVENTS).unwrap();
            tx.open_table(META)
                .unwrap()
                .remove(JOB_EVENTS_THROUGH)
                .unwrap();
            tx.commit().unwrap();
        }
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.job_seqs(7).unwrap(), [2, 4]);
        assert_eq!(l.job_seqs(8).unwrap(), [3]);
    }

    #[test]
    fn snapshots_can_be_cleared_and_the_file_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gaze.redb");
        let mut l = Ledger::open(&path).unwrap();
        l.append((1..=200).map(env).collect()).unwrap();
        for seq in [50, 100, 150, 200] {
            l.write_snapshot(seq, &vec![7u8; 200_000]).unwrap();
        }
        l.clear_snapshots().unwrap();
        assert!(l.snapshot_at_or_before(u64::MAX).unwrap().is_none());
        let before = l.file_size();
        l.compact().unwrap();
        assert!(l.file_size() < before, "{} → {}", before, l.file_size());
        assert_eq!(l.read_after(0, 1000).unwrap().len(), 200);
    }
}

//! History: the ledger read back for people. The event log with filters and paging (`log`),
//! field-level differences (`diff`), one entry's versions (`entry`), restore planning and
//! previews (`restore`), deleted entries (`deleted`), audits, recipe diffs and runs again
//! (`audit`), stale covers (`stale`), lossless export and import (`archive`), checks
//! (`verify`), times (`time`), and the command-line tools over all of it (`tools`).
//!
//! Outside dependencies: reqwest, in `tools` only (the tools ask a running gaze's API when it
//! holds the ledger). It reads the ledger through `store::ledger` and the projections through
//! `library`. Must not: append events except through `Handle::execute` (restores, undeletes),
//! touch redb, serve HTTP, or write files in `data/` (except `gaze import --data`, which only
//! adds missing files).

pub mod archive;
pub mod audit;
pub mod deleted;
pub mod diff;
pub mod entry;
pub mod log;
pub mod restore;
pub mod stale;
pub mod time;
pub mod tools;
pub mod verify;

use crate::jobs::projection::{Job, fold_job};
use crate::jobs::spec;
use crate::library::projection::Library;
use crate::store::event::{JobSpec, Stored};
use crate::store::ledger::Ledger;

/// What history reads: the ledger and the current projection (a running app's, or one folded
/// by a command-line tool with the server stopped).
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub ledger: &'a Ledger,
    pub lib: &'a Library,
}

impl View<'_> {
    /// The projection right after `seq` (the current one from `seq` on).
    pub fn library_at(&self, seq: u64) -> Result<Library, String> {
        if seq >= self.lib.seq {
            return Ok(self.lib.clone());
        }
        crate::store::snapshot::load(self.ledger, seq)
            .map(|(lib, _)| lib)
            .map_err(|e| e.to_string())
    }

    /// The seq of a job's request: unfinished jobs' from the projection, finished ones' from
    /// the ledger's job index (the projection keeps finished jobs as ids).
    pub fn requested_seq(&self, job: u128) -> Result<u64, String> {
        let no_job = || format!("no job {}", ulid::Ulid::from(job));
        if let Some(seq) = self.lib.jobs.requested_seq(job) {
            return Ok(seq);
        }
        if self.lib.jobs.state_of(job).is_none() {
            return Err(no_job());
        }
        self.ledger
            .job_seqs(job)
            .map_err(|e| e.to_string())?
            .first()
            .copied()
            .ok_or_else(no_job)
    }

    /// Any job as the projection has it, or (finished) as its events in the ledger tell it.
    pub fn job(&self, job: u128) -> Result<Job, String> {
        if let Some(j) = self.lib.jobs.get(job) {
            return Ok(j.clone());
        }
        let no_job = || format!("no job {}", ulid::Ulid::from(job));
        if self.lib.jobs.state_of(job).is_none() {
            return Err(no_job());
        }
        let events = self.ledger.job_events(&[job]).map_err(|e| e.to_string())?;
        events.first().and_then(|e| fold_job(e)).ok_or_else(no_job)
    }

    /// A job's full spec, read from its request event (a compact recipe expanded to the exact
    /// text that was requested).
    pub fn job_spec(&self, job: u128) -> Result<JobSpec, String> {
        let seq = self.requested_seq(job)?;
        spec::spec_at(self.ledger, seq, job, &spec::BaseCache::default())
    }

    /// Events as the API shows them, compact requests with their recipe text put back.
    pub fn events_json(&self, events: &[Stored]) -> Vec<serde_json::Value> {
        let cache = spec::BaseCache::default();
        events
            .iter()
            .map(|s| spec::event_json(self.ledger, s, &cache))
            .collect()
    }
}

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

use crate::library::projection::Library;
use crate::store::event::{Event, JobSpec};
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

    /// A job's full spec, read from its request event.
    pub fn job_spec(&self, job: u128) -> Result<JobSpec, String> {
        let id = ulid::Ulid::from(job);
        let seq = self
            .lib
            .jobs
            .get(job)
            .map(|j| j.requested_seq)
            .ok_or_else(|| format!("no job {id}"))?;
        match self.ledger.get(seq).map_err(|e| e.to_string())? {
            Some(s) => match s.envelope.event {
                Event::JobRequested { job: j, spec } if j == job => Ok(spec),
                _ => Err(format!(
                    "the ledger has no request for job {id} at seq {seq}"
                )),
            },
            None => Err(format!("the ledger has no event {seq}")),
        }
    }
}

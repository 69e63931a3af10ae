//! History: the ledger read back for people. The event log with filters and paging (`log`),
//! field-level differences (`diff`), restore planning and previews (`restore`), stale covers
//! (`stale`), times (`time`).
//!
//! Outside dependencies: none of its own; it reads the ledger through `store::ledger` and the
//! projections through `library`. Must not: append events (restores and undeletes go through
//! `Handle::execute`), touch redb, speak HTTP, or write files in `data/`.

pub mod deleted;
pub mod diff;
pub mod log;
pub mod restore;
pub mod stale;
pub mod time;

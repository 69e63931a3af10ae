//! The event store: the event vocabulary and its frozen byte codec (`event`), the redb ledger
//! that appends and reads them (`ledger`), and projection snapshots (`snapshot`).
//!
//! Outside dependency: redb, touched by `ledger` only. Must not: decide anything (commands live
//! in `library::command`), do file IO outside the ledger file, or change a stored event shape.

pub mod event;
pub mod ledger;
pub mod snapshot;

//! Snapshot policy and projection loading: how often a snapshot of the projections is kept,
//! and how a projection as of any seq is rebuilt from the newest snapshot at or before it plus
//! the events after it (or from seq 1, for checks).

use crate::library::projection::Library;
use crate::store::event::Stored;
use crate::store::ledger::{Ledger, LedgerError};

/// Events between snapshots; more documents than this stretch the interval to their count, so
/// snapshot cost stays a small share of the work it saves.
pub const SNAPSHOT_EVERY: u64 = 10_000;

/// The projection up to and including `upto`, from the newest usable snapshot, and the seq of
/// that snapshot (0 if none).
pub fn load(ledger: &Ledger, upto: u64) -> Result<(Library, u64), LedgerError> {
    let (mut lib, from) = match ledger.snapshot_at_or_before(upto)? {
        Some((seq, bytes)) => match Library::from_snapshot(&bytes) {
            Some(lib) if lib.seq == seq => (lib, seq),
            _ => {
                tracing::warn!("ignoring an unreadable snapshot at seq {seq}");
                (Library::default(), 0)
            }
        },
        None => (Library::default(), 0),
    };
    // Reading and decoding run on a second thread while this one folds: on a long tail the
    // two halves take about the same time.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Stored>>(16);
    let read = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut chunk = Vec::with_capacity(1024);
            let r = ledger.fold(from + 1, upto, |s| {
                chunk.push(s);
                if chunk.len() == 1024 {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(1024));
                    if tx.send(full).is_err() {
                        return false;
                    }
                }
                true
            });
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            r
        });
        for chunk in rx {
            for s in &chunk {
                lib.apply(s);
            }
        }
        reader.join()
    });
    match read {
        Ok(r) => r?,
        Err(_) => return Err(LedgerError::Storage("the ledger reader panicked".into())),
    }
    Ok((lib, from))
}

/// Folds the whole ledger into a fresh projection, up to and including `upto`, ignoring
/// snapshots.
pub fn replay(ledger: &Ledger, upto: u64) -> Result<Library, LedgerError> {
    let mut lib = Library::default();
    ledger.fold(1, upto, |s| {
        lib.apply(&s);
        true
    })?;
    Ok(lib)
}

//! Deleted entries: the entries that left the library (a soft delete, a file removed outside
//! the app, or a restore) and are not back, newest first, and for each the event that took it
//! out, so it can be brought back as it was.

use crate::library::category::Category;
use crate::library::projection::Library;
use crate::store::event::{Event, KINDS, Stored};
use crate::store::ledger::{Ledger, Scan, VERSION_REMOVED, VERSION_TEXT};

/// How an entry left the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    Deleted,
    /// Its file was removed outside the app.
    Vanished,
    /// A restore took it out.
    Restored,
    /// A hard delete (its LoRA file is gone too): listed nowhere, never brought back.
    HardDeleted,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Deleted => "deleted",
            How::Vanished => "file removed outside the app",
            How::Restored => "removed by a restore",
            How::HardDeleted => "hard-deleted",
        }
    }
}

/// A deleted entry.
#[derive(Clone, Debug)]
pub struct Deleted {
    pub category: Category,
    pub slug: String,
    pub file: String,
    /// The event that took it out.
    pub seq: u64,
    pub at: u64,
    pub origin: &'static str,
    pub how: How,
    /// Its display name before it went.
    pub name: String,
}

/// How `event` took `category/slug` out of the library, if it did.
fn removal(event: &Event, c: Category, slug: &str) -> Option<(How, String)> {
    match event {
        Event::DocumentDeleted {
            category,
            slug: s,
            file,
            hard,
        } if *category == c && s == slug => Some((
            if *hard {
                How::HardDeleted
            } else {
                How::Deleted
            },
            file.clone(),
        )),
        Event::FileVanished {
            category,
            slug: s,
            file,
        } if *category == c && s == slug => Some((How::Vanished, file.clone())),
        Event::Restored { removed, put, .. } => {
            let back = put.iter().any(|p| p.category == c && p.slug == slug);
            removed
                .iter()
                .find(|r| !back && r.category == c && r.slug == slug)
                .map(|r| (How::Restored, r.file.clone()))
        }
        _ => None,
    }
}

/// The newest event that took `category/slug` out, with how and from which file (found in
/// the entry index; only that event is decoded).
pub fn last_removal(
    ledger: &Ledger,
    c: Category,
    slug: &str,
) -> Result<Option<(Stored, How, String)>, String> {
    let newest = ledger
        .subject_versions(c, slug, 0, u64::MAX, true, usize::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|v| v.flags & VERSION_REMOVED != 0);
    let Some(v) = newest else {
        return Ok(None);
    };
    let Some(s) = ledger.get(v.seq).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    Ok(removal(s.event(), c, slug).map(|(how, file)| (s, how, file)))
}

/// The display name the entry had before `seq` (from its newest text before it).
fn name_before(ledger: &Ledger, c: Category, slug: &str, seq: u64) -> Result<String, String> {
    Ok(ledger
        .subject_versions(c, slug, 0, seq.saturating_sub(1), true, usize::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|v| v.flags & VERSION_TEXT != 0)
        .map(|v| v.detail)
        .unwrap_or_default())
}

/// Entries that left the library and are not back (hard deletes excluded), newest first, at
/// most `limit`.
pub fn list(ledger: &Ledger, lib: &Library, limit: usize) -> Result<Vec<Deleted>, String> {
    let kinds = ["document_deleted", "file_vanished", "restored"];
    let mut candidates: Vec<(u64, Category, String)> = Vec::new();
    for kind in kinds {
        let code = KINDS.iter().position(|k| *k == kind).unwrap_or(0) as u8;
        let mut seen = 0;
        ledger
            .scan(&Scan::Kind(code), 1, u64::MAX, true, |s| {
                for (c, slug) in s.event().subjects() {
                    if lib.get(c, slug).is_none() {
                        candidates.push((s.seq, c, slug.to_string()));
                    }
                }
                seen += 1;
                // Enough to fill the page even if many are back or repeated.
                seen < limit * 4 + 100
            })
            .map_err(|e| e.to_string())?;
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut out: Vec<Deleted> = Vec::new();
    let mut done: std::collections::HashSet<(Category, String)> = Default::default();
    for (_, c, slug) in candidates {
        if out.len() >= limit || !done.insert((c, slug.clone())) {
            continue;
        }
        let Some((s, how, file)) = last_removal(ledger, c, &slug)? else {
            continue;
        };
        if how == How::HardDeleted {
            continue;
        }
        let name = name_before(ledger, c, &slug, s.seq)?;
        out.push(Deleted {
            category: c,
            slug,
            file,
            seq: s.seq,
            at: s.envelope.at,
            origin: s.envelope.origin.as_str(),
            how,
            name,
        });
    }
    Ok(out)
}

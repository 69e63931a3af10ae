//! One entry's history: its versions (every event that changed it, who made each and how),
//! its document text at any seq, field-level differences between any two versions, and the
//! jobs made from each version. Reads the ledger's entry index, which keeps what every event
//! did to the entry, so a long history lists without decoding its events.

use super::diff::{FieldDiff, diff_texts};
use crate::library::category::Category;
use crate::library::projection::Library;
use crate::store::event::{Event, KINDS, Stored};
use crate::store::ledger::{Ledger, VERSION_COVER, VERSION_REMOVED, VERSION_TEXT, VersionSummary};

/// What one event did to the entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub seq: u64,
    pub at: u64,
    pub origin: &'static str,
    pub kind: &'static str,
    /// The event gave the entry its document text (a content version).
    pub text_changed: bool,
    /// The display name that text has.
    pub name: Option<String>,
    /// The entry left the library here.
    pub removed: bool,
    /// A cover this event set.
    pub cover: Option<String>,
}

/// A page of versions, newest first, with the cursor to older ones.
#[derive(Debug)]
pub struct Versions {
    pub items: Vec<Version>,
    /// `before=` for the next older page.
    pub older: Option<u64>,
    /// How many events changed the entry in all.
    pub total: usize,
}

fn version_of(v: VersionSummary) -> Version {
    let text_changed = v.flags & VERSION_TEXT != 0;
    let cover = v.flags & VERSION_COVER != 0;
    Version {
        seq: v.seq,
        at: v.at,
        origin: v.origin.as_str(),
        kind: KINDS.get(usize::from(v.kind)).copied().unwrap_or("unknown"),
        text_changed,
        removed: v.flags & VERSION_REMOVED != 0,
        name: text_changed.then(|| v.detail.clone()),
        cover: cover.then_some(v.detail),
    }
}

/// The newest `limit` versions of `category/slug` before `before` (all when `None`), from
/// the entry index alone.
pub fn versions(
    ledger: &Ledger,
    c: Category,
    slug: &str,
    before: Option<u64>,
    limit: usize,
) -> Result<Versions, String> {
    let seqs = ledger.subject_seqs(c, slug).map_err(|e| e.to_string())?;
    let total = seqs.len();
    let end = match before {
        Some(b) => seqs.partition_point(|s| *s < b),
        None => seqs.len(),
    };
    let start = end.saturating_sub(limit.max(1));
    if start == end {
        return Ok(Versions {
            items: Vec::new(),
            older: None,
            total,
        });
    }
    let items = ledger
        .subject_versions(c, slug, seqs[start], seqs[end - 1], true, end - start)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(version_of)
        .collect();
    Ok(Versions {
        older: (start > 0).then(|| seqs[start]),
        items,
        total,
    })
}

/// The document text event `s` gave `category/slug`, if it gave one.
fn text_of(s: &Stored, c: Category, slug: &str) -> Option<String> {
    match s.event() {
        Event::DocumentSynced { body, .. }
        | Event::DocumentCreated { body, .. }
        | Event::DocumentEdited { body, .. } => Some(body.json.clone()),
        Event::Undeleted { entry, .. } => Some(entry.body.json.clone()),
        Event::Restored { put, .. } => put
            .iter()
            .find(|p| p.category == c && p.slug == slug)
            .map(|p| p.body.json.clone()),
        _ => None,
    }
}

/// The entry's document text right after `seq` (`None`: not in the library then).
pub fn text_at(
    ledger: &Ledger,
    c: Category,
    slug: &str,
    seq: u64,
) -> Result<Option<String>, String> {
    let last = ledger
        .subject_versions(c, slug, 0, seq, true, usize::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|v| v.flags & (VERSION_TEXT | VERSION_REMOVED) != 0);
    match last {
        Some(v) if v.flags & VERSION_TEXT != 0 => Ok(ledger
            .get(v.seq)
            .map_err(|e| e.to_string())?
            .and_then(|s| text_of(&s, c, slug))),
        _ => Ok(None),
    }
}

/// The fields that differ between the entry right after seq `a` and right after seq `b`.
pub fn diff_versions(
    ledger: &Ledger,
    c: Category,
    slug: &str,
    a: u64,
    b: u64,
) -> Result<Vec<FieldDiff>, String> {
    let x = text_at(ledger, c, slug, a)?;
    let y = text_at(ledger, c, slug, b)?;
    Ok(diff_texts(x.as_deref(), y.as_deref()))
}

/// The seq of the content version in effect at `seq` (the newest text-giving event at or
/// before it), given the entry's versions oldest first.
pub fn content_version_at(content_seqs: &[u64], seq: u64) -> Option<u64> {
    let i = content_seqs.partition_point(|s| *s <= seq);
    (i > 0).then(|| content_seqs[i - 1])
}

/// The jobs made for this entry (its page's generations), given as `(requested seq, job,
/// images)`, each with the content version of the entry in effect when it was requested.
pub fn jobs_by_version(
    ledger: &Ledger,
    c: Category,
    slug: &str,
    jobs: Vec<(u64, u128, Vec<String>)>,
) -> Result<Vec<(u64, u128, Vec<String>)>, String> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let content: Vec<u64> = ledger
        .subject_versions(c, slug, 0, u64::MAX, false, usize::MAX)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|v| v.flags & VERSION_TEXT != 0)
        .map(|v| v.seq)
        .collect();
    Ok(jobs
        .into_iter()
        .filter_map(|(requested, id, images)| {
            content_version_at(&content, requested).map(|v| (v, id, images))
        })
        .collect())
}

/// The jobs whose target is `category/slug`, as `jobs_by_version` takes them.
pub fn target_jobs(lib: &Library, c: Category, slug: &str) -> Vec<(u64, u128, Vec<String>)> {
    lib.jobs
        .jobs
        .values()
        .filter(|j| {
            j.info
                .target
                .as_ref()
                .is_some_and(|(tc, ts)| *tc == c && ts == slug)
        })
        .map(|j| (j.requested_seq, j.id, j.images.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{DocBody, EntryState, Envelope, Origin};

    fn body(text: &str) -> DocBody {
        DocBody {
            id: "tifa".into(),
            name: format!("Tifa {text}"),
            json: format!("{{\"hair\": \"{text}\"}}\n"),
        }
    }

    fn ledger(events: Vec<Event>) -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("g.redb")).unwrap();
        let batch = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Envelope {
                id: i as u128,
                at: 1000 + i as u64,
                origin: Origin::Web,
                event,
            })
            .collect();
        l.append(batch).unwrap();
        (dir, l)
    }

    fn history() -> Vec<Event> {
        let c = Category::Characters;
        vec![
            Event::DocumentSynced {
                category: c,
                slug: "tifa".into(),
                file: "tifa.json".into(),
                body: body("black hair, long hair"),
            },
            Event::CoverSet {
                category: c,
                slug: "tifa".into(),
                path: "uploads/characters/tifa/c.png".into(),
            },
            Event::DocumentSynced {
                category: c,
                slug: "other".into(),
                file: "other.json".into(),
                body: body("x"),
            },
            Event::DocumentEdited {
                category: c,
                slug: "tifa".into(),
                body: body("black hair, very long hair"),
            },
            Event::DocumentDeleted {
                category: c,
                slug: "tifa".into(),
                file: "tifa.json".into(),
                hard: false,
            },
            Event::Undeleted {
                deleted_seq: 5,
                entry: EntryState {
                    category: c,
                    slug: "tifa".into(),
                    file: "tifa.json".into(),
                    body: body("black hair, very long hair"),
                    cover: None,
                    default_fields: Vec::new(),
                    favourite: false,
                },
            },
            Event::Restored {
                to_seq: 1,
                removed: Vec::new(),
                put: vec![EntryState {
                    category: c,
                    slug: "tifa".into(),
                    file: "tifa.json".into(),
                    body: body("black hair, long hair"),
                    cover: Some("uploads/characters/tifa/c.png".into()),
                    default_fields: Vec::new(),
                    favourite: true,
                }],
                preferences: Vec::new(),
                settings: None,
                default_checkpoint: None,
            },
        ]
    }

    #[test]
    fn versions_list_every_change_newest_first_in_pages() {
        let (_d, l) = ledger(history());
        let c = Category::Characters;
        let all = versions(&l, c, "tifa", None, 100).unwrap();
        assert_eq!(all.total, 6);
        let seqs: Vec<u64> = all.items.iter().map(|v| v.seq).collect();
        assert_eq!(seqs, [7, 6, 5, 4, 2, 1]);
        let kinds: Vec<&str> = all.items.iter().map(|v| v.kind).collect();
        assert_eq!(
            kinds,
            [
                "restored",
                "undeleted",
                "document_deleted",
                "document_edited",
                "cover_set",
                "document_synced"
            ]
        );
        assert!(all.items[2].removed);
        assert_eq!(
            all.items[4].cover.as_deref(),
            Some("uploads/characters/tifa/c.png")
        );
        assert_eq!(all.older, None);
        let first = versions(&l, c, "tifa", None, 4).unwrap();
        assert_eq!(first.items.len(), 4);
        assert_eq!(first.older, Some(4));
        let rest = versions(&l, c, "tifa", first.older, 4).unwrap();
        let seqs: Vec<u64> = rest.items.iter().map(|v| v.seq).collect();
        assert_eq!(seqs, [2, 1]);
        assert_eq!(rest.older, None);
    }

    #[test]
    fn text_at_any_seq_and_diffs_between_versions() {
        let (_d, l) = ledger(history());
        let c = Category::Characters;
        let t = |seq| text_at(&l, c, "tifa", seq).unwrap();
        assert_eq!(t(0), None);
        assert!(t(1).unwrap().contains("black hair, long hair"));
        assert_eq!(t(2), t(1), "a cover is not a text change");
        assert_eq!(t(3), t(1));
        assert!(t(4).unwrap().contains("very long hair"));
        assert_eq!(t(5), None, "deleted");
        assert_eq!(t(6), t(4));
        assert_eq!(t(7), t(1));
        let d = diff_versions(&l, c, "tifa", 1, 4).unwrap();
        assert_eq!(d.len(), 1);
        let tags = d[0].tags.as_ref().unwrap();
        assert_eq!(tags.removed, ["long hair"]);
        assert_eq!(tags.added, ["very long hair"]);
        assert_eq!(tags.kept, ["black hair"]);
        assert!(diff_versions(&l, c, "tifa", 1, 7).unwrap().is_empty());
        let gone = diff_versions(&l, c, "tifa", 4, 5).unwrap();
        assert_eq!(gone[0].change, super::super::diff::Change::Removed);
    }

    #[test]
    fn content_versions_map_seqs_to_the_text_in_effect() {
        let content = [1, 4, 9];
        for (seq, want) in [
            (0, None),
            (1, Some(1)),
            (3, Some(1)),
            (4, Some(4)),
            (100, Some(9)),
        ] {
            assert_eq!(content_version_at(&content, seq), want, "{seq}");
        }
    }
}

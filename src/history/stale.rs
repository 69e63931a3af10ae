//! Stale covers: an entry whose document text changed after the job that made its cover was
//! requested. A cover's job is named by its file (`uploads/<category>/<slug>/<job>_<n>.png`);
//! covers uploaded by hand name no job and are never stale. Pure, over the projection.

use crate::library::category::Category;
use crate::library::projection::{Entry, Library};

/// The job a generated image belongs to, from its path or file name (`…/<job ulid>_<n>.<ext>`,
/// the ULID in either case). `None` for anything else, e.g. an uploaded cover.
pub fn job_of_image(path: &str) -> Option<u128> {
    let name = path.rsplit(['/', '\\']).next()?;
    let stem = name.split('.').next()?;
    let (id, n) = stem.rsplit_once('_')?;
    if id.len() != 26 || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ulid::Ulid::from_string(&id.to_ascii_uppercase())
        .ok()
        .map(u128::from)
}

/// The seq of the request of the job that made the entry's cover, if a known job made it.
pub fn cover_requested_seq(lib: &Library, entry: &Entry) -> Option<u64> {
    let job = job_of_image(entry.cover.as_deref()?)?;
    lib.jobs.get(job).map(|j| j.requested_seq)
}

/// Whether the entry's cover was made from an older version of its document: its text changed
/// after the cover's job was requested. (The job's recipe, resolved just before that request,
/// names the exact version; the audit shows it.)
pub fn entry_is_stale(lib: &Library, entry: &Entry) -> bool {
    cover_requested_seq(lib, entry).is_some_and(|r| entry.content_version > r)
}

/// Whether the entry `category/slug` has a stale cover (false for an unknown entry).
pub fn is_stale(lib: &Library, category: Category, slug: &str) -> bool {
    lib.get(category, slug)
        .is_some_and(|e| entry_is_stale(lib, e))
}

/// A category's entries with stale covers, by slug.
pub fn stale_entries(lib: &Library, category: Category) -> Vec<&Entry> {
    lib.shelf(category)
        .docs
        .values()
        .filter(|e| entry_is_stale(lib, e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{DocBody, Envelope, Event, JobSpec, Origin, Stored};

    const JOB: u128 = 0x0193_0000_0000_0000_0000_0000_0000_00ab;

    fn apply(lib: &mut Library, event: Event) {
        let seq = lib.seq + 1;
        lib.apply(&Stored {
            seq,
            envelope: Envelope {
                id: u128::from(seq),
                at: seq,
                origin: Origin::Web,
                event,
            },
        });
    }

    fn edit(lib: &mut Library, text: &str) {
        apply(
            lib,
            Event::DocumentEdited {
                category: Category::Characters,
                slug: "tifa".into(),
                body: DocBody {
                    id: "tifa".into(),
                    name: "Tifa".into(),
                    json: text.into(),
                },
            },
        );
    }

    #[test]
    fn image_names_give_their_job() {
        let id = ulid::Ulid::from(JOB).to_string();
        let lower = id.to_lowercase();
        for (path, want) in [
            (format!("uploads/characters/tifa/{lower}_0.png"), Some(JOB)),
            (format!("/static/uploads/generator/{id}_12.webp"), Some(JOB)),
            (format!("{lower}_3.png"), Some(JOB)),
            (format!("C:\\out\\{lower}_0.png"), Some(JOB)),
            ("uploads/characters/tifa/cover_1790000000.png".into(), None),
            (format!("uploads/x/{lower}.png"), None),
            (format!("uploads/x/{lower}_a.png"), None),
            ("uploads/x/uuuuuuuuuuuuuuuuuuuuuuuuuu_0.png".into(), None),
            (String::new(), None),
        ] {
            assert_eq!(job_of_image(&path), want, "{path}");
        }
    }

    #[test]
    fn a_cover_goes_stale_when_the_text_changes_after_its_job() {
        let mut lib = Library::default();
        let c = Category::Characters;
        apply(
            &mut lib,
            Event::DocumentSynced {
                category: c,
                slug: "tifa".into(),
                file: "tifa.json".into(),
                body: DocBody {
                    id: "tifa".into(),
                    name: "Tifa".into(),
                    json: "{}".into(),
                },
            },
        );
        assert!(!is_stale(&lib, c, "tifa"), "no cover");
        apply(
            &mut lib,
            Event::JobRequested {
                job: JOB,
                spec: JobSpec {
                    label: "characters/tifa".into(),
                    target: Some((c, "tifa".into())),
                    set_cover: true,
                    recipe: "{}".into(),
                    request: "{}".into(),
                    batch: None,
                    retry_of: None,
                    endless: None,
                },
            },
        );
        // Edited while the job waits: the recipe already holds the old text.
        edit(&mut lib, "{\"a\": 1}");
        let path = format!(
            "uploads/characters/tifa/{}_0.png",
            ulid::Ulid::from(JOB).to_string().to_lowercase()
        );
        apply(
            &mut lib,
            Event::CoverSet {
                category: c,
                slug: "tifa".into(),
                path,
            },
        );
        assert!(is_stale(&lib, c, "tifa"));
        assert_eq!(stale_entries(&lib, c).len(), 1);
        // Default fields and covers are not content.
        apply(
            &mut lib,
            Event::DefaultFieldsSaved {
                category: c,
                slug: "tifa".into(),
                fields: vec!["a::b".into()],
            },
        );
        assert!(is_stale(&lib, c, "tifa"));
        // A hand-made cover is never stale.
        apply(
            &mut lib,
            Event::CoverSet {
                category: c,
                slug: "tifa".into(),
                path: "uploads/characters/tifa/cover_1.png".into(),
            },
        );
        assert!(!is_stale(&lib, c, "tifa"));
        assert!(!is_stale(&lib, c, "nobody"));
    }

    #[test]
    fn a_cover_made_after_the_last_edit_is_fresh() {
        let mut lib = Library::default();
        let c = Category::Characters;
        apply(
            &mut lib,
            Event::DocumentSynced {
                category: c,
                slug: "tifa".into(),
                file: "tifa.json".into(),
                body: DocBody {
                    id: "tifa".into(),
                    name: "Tifa".into(),
                    json: "{}".into(),
                },
            },
        );
        edit(&mut lib, "{\"v\": 2}");
        apply(
            &mut lib,
            Event::JobRequested {
                job: JOB,
                spec: JobSpec {
                    label: String::new(),
                    target: None,
                    set_cover: true,
                    recipe: "{}".into(),
                    request: "{}".into(),
                    batch: None,
                    retry_of: None,
                    endless: None,
                },
            },
        );
        apply(
            &mut lib,
            Event::CoverSet {
                category: c,
                slug: "tifa".into(),
                path: format!("uploads/characters/tifa/{}_0.png", ulid::Ulid::from(JOB)),
            },
        );
        assert!(!is_stale(&lib, c, "tifa"));
        // An edit that writes the same text is no change.
        edit(&mut lib, "{\"v\": 2}");
        assert!(!is_stale(&lib, c, "tifa"));
        edit(&mut lib, "{\"v\": 3}");
        assert!(is_stale(&lib, c, "tifa"));
    }
}

//! `gaze verify`: every event decodes and the seqs are dense; folding them from seq 1 gives
//! every stored snapshot at its seq (and, with a server running, its live projection); the
//! files in `data/` are byte for byte the library's; the file projector's checkpoint and the
//! indexes are within the ledger. Reads only; says what is wrong.

use crate::library::category::Category;
use crate::library::projection::Library;
use crate::store::event;
use crate::store::ledger::Ledger;
use serde_json::{Value, json};
use std::path::Path;

/// What a check found. `problems` make `gaze verify` exit non-zero; `notes` are facts.
#[derive(Debug, Default)]
pub struct Report {
    pub events: u64,
    pub documents: usize,
    pub snapshots: usize,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "events": self.events,
            "documents": self.documents,
            "snapshots": self.snapshots,
            "problems": self.problems,
            "notes": self.notes,
        })
    }
}

/// The first difference between two projections, in words.
pub fn difference(a: &Library, b: &Library) -> String {
    if a.seq != b.seq {
        return format!("seq {} vs {}", a.seq, b.seq);
    }
    for c in Category::ALL {
        let (x, y) = (a.shelf(c), b.shelf(c));
        if x.docs != y.docs {
            let slug = x
                .docs
                .iter()
                .find(|(k, v)| y.docs.get(*k) != Some(*v))
                .or_else(|| y.docs.iter().find(|(k, _)| !x.docs.contains_key(*k)))
                .map_or("?", |(k, _)| k.as_str());
            return format!("{} '{slug}' differs", c.desc().singular);
        }
        if x != y {
            return format!("{} (files, failures or generation) differ", c.key());
        }
    }
    if a.preferences != b.preferences {
        return "preferences differ".into();
    }
    if a.settings != b.settings || a.default_checkpoint != b.default_checkpoint {
        return "settings differ".into();
    }
    if a.jobs != b.jobs {
        return "jobs differ".into();
    }
    if a != b {
        return "the workflow template differs".into();
    }
    "no difference".into()
}

fn check_data(lib: &Library, data: &Path, r: &mut Report) {
    for c in Category::ALL {
        let dir = data.join(c.desc().dir);
        let shelf = lib.shelf(c);
        for e in shelf.docs.values() {
            let shown = format!("data/{}/{}", c.desc().dir, e.file);
            match std::fs::read(dir.join(&e.file)) {
                Ok(bytes) if bytes == e.json.as_bytes() => {}
                Ok(_) if shelf.failures.contains_key(&e.file) => r.notes.push(format!(
                    "{shown} could not be read when last synced; the library keeps its last good version"
                )),
                Ok(_) => r.problems.push(format!(
                    "{shown} differs from the library's {} '{}' (seq {}): changed outside the app and not synced yet",
                    c.desc().singular,
                    e.slug,
                    e.version
                )),
                Err(err) => r.problems.push(format!(
                    "{shown} ({} '{}') cannot be read: {err}",
                    c.desc().singular,
                    e.slug
                )),
            }
        }
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = listing
            .flatten()
            .filter(|f| f.file_type().is_ok_and(|t| t.is_file()))
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            if shelf.by_file.contains_key(&name) {
                continue;
            }
            let shown = format!("data/{}/{name}", c.desc().dir);
            match shelf.failures.get(&name) {
                Some(f) => r
                    .notes
                    .push(format!("{shown} could not be read: {}", f.error)),
                None => r.problems.push(format!(
                    "{shown} is not in the library: added outside the app and not synced yet"
                )),
            }
        }
    }
}

/// Checks the ledger (and `data/`, and a running server's projection `live`).
pub fn verify(ledger: &Ledger, data: &Path, live: Option<&Library>) -> Report {
    let mut r = Report::default();
    let last = ledger.last_seq();
    let mut snapshots = match ledger.snapshots() {
        Ok(s) => s,
        Err(e) => {
            r.problems.push(format!("snapshots cannot be read: {e}"));
            Vec::new()
        }
    };
    snapshots.sort_by_key(|s| s.0);
    r.snapshots = snapshots.len();
    let mut pending = snapshots.into_iter().peekable();
    let mut lib = Library::default();
    let mut expected = 1u64;
    let mut bad = 0usize;
    let mut compare = |lib: &Library, r: &mut Report, upto: u64| {
        while let Some((seq, _)) = pending.peek() {
            if *seq > upto {
                break;
            }
            let (seq, bytes) = pending.next().unwrap_or_default();
            match Library::from_snapshot(&bytes) {
                None => r.problems.push(format!(
                    "the snapshot at seq {seq} does not decode (it is ignored at start-up; the next snapshot replaces it)"
                )),
                Some(s) if s.seq != seq => r.problems.push(format!(
                    "the snapshot stored at seq {seq} says it is at seq {}",
                    s.seq
                )),
                Some(_) if lib.seq != seq => r.problems.push(format!(
                    "the snapshot at seq {seq} is for an event the ledger does not have"
                )),
                Some(s) if s != *lib => r.problems.push(format!(
                    "the snapshot at seq {seq} differs from the events folded to seq {seq}: {}",
                    difference(&s, lib)
                )),
                Some(_) => {}
            }
        }
    };
    let scanned = ledger.raw(1, u64::MAX, |seq, bytes| {
        if seq != expected {
            r.problems
                .push(format!("events {expected} to {} are missing", seq - 1));
        }
        expected = seq + 1;
        compare(&lib, &mut r, seq - 1);
        match event::decode(bytes) {
            Ok(envelope) => lib.apply(&event::Stored { seq, envelope }),
            Err(e) => {
                bad += 1;
                if bad <= 20 {
                    r.problems.push(format!("event {seq} does not decode: {e}"));
                }
                // The projection cannot follow a lost event; keep its seq moving.
                lib.seq = seq;
            }
        }
        r.events += 1;
        true
    });
    if let Err(e) = scanned {
        r.problems.push(format!("the ledger cannot be read: {e}"));
    }
    if bad > 20 {
        r.problems
            .push(format!("{} more events do not decode", bad - 20));
    }
    compare(&lib, &mut r, u64::MAX);
    if r.events != last {
        r.problems.push(format!(
            "the ledger says it ends at seq {last} but holds {} events",
            r.events
        ));
    }
    r.documents = lib.document_count();
    match ledger.files_through() {
        Ok(f) if f > last => r.problems.push(format!(
            "the file projector's checkpoint ({f}) is beyond the ledger's end ({last})"
        )),
        Ok(f) if f < last => r.notes.push(format!(
            "{} event(s) after the file projector's checkpoint ({f}); their files are converged at the next start and were compared below",
            last - f
        )),
        Ok(_) => {}
        Err(e) => r
            .problems
            .push(format!("the file projector's checkpoint cannot be read: {e}")),
    }
    match ledger.indexed_through() {
        Ok(i) if i != last => r.problems.push(format!(
            "the indexes end at seq {i}, the ledger at {last} (they are caught up at the next start)"
        )),
        Ok(_) => {}
        Err(e) => r.problems.push(format!("the indexes cannot be read: {e}")),
    }
    if let Some(live) = live {
        if live.seq == lib.seq {
            if *live != lib {
                r.problems.push(format!(
                    "the running server's library differs from the events folded from seq 1: {}",
                    difference(live, &lib)
                ));
            }
        } else {
            r.notes.push(format!(
                "the server moved on (seq {}) while checking seq {}; its library was not compared",
                live.seq, lib.seq
            ));
        }
    }
    check_data(&lib, data, &mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{DocBody, Envelope, Event, Origin};

    fn setup() -> (tempfile::TempDir, Ledger, Library) {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("l/g.redb")).unwrap();
        let docs = ["a", "b", "c"];
        let batch: Vec<Envelope> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| Envelope {
                id: i as u128,
                at: 1,
                origin: Origin::Startup,
                event: Event::DocumentSynced {
                    category: Category::Scenes,
                    slug: d.to_string(),
                    file: format!("{d}.json"),
                    body: DocBody {
                        id: d.to_string(),
                        name: d.to_string(),
                        json: format!("{{\"scene_id\": \"{d}\"}}\n"),
                    },
                },
            })
            .collect();
        l.append(batch).unwrap();
        let lib = crate::store::snapshot::replay(&l, u64::MAX).unwrap();
        l.write_snapshot(
            2,
            &crate::store::snapshot::replay(&l, 2).unwrap().to_snapshot(),
        )
        .unwrap();
        l.append(vec![Envelope {
            id: 9,
            at: 2,
            origin: Origin::Web,
            event: Event::QueuePaused { paused: true },
        }])
        .unwrap();
        let scenes = dir.path().join("data/scenes");
        std::fs::create_dir_all(&scenes).unwrap();
        for d in docs {
            std::fs::write(
                scenes.join(format!("{d}.json")),
                format!("{{\"scene_id\": \"{d}\"}}\n"),
            )
            .unwrap();
        }
        (dir, l, lib)
    }

    #[test]
    fn a_consistent_ledger_and_folder_pass() {
        let (dir, l, _) = setup();
        let r = verify(&l, &dir.path().join("data"), None);
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!((r.events, r.documents, r.snapshots), (4, 3, 1));
    }

    #[test]
    fn files_changed_added_or_removed_behind_the_apps_back_are_named() {
        let (dir, l, _) = setup();
        let scenes = dir.path().join("data/scenes");
        std::fs::write(scenes.join("a.json"), "{\"scene_id\": \"a\", \"x\": 1}\n").unwrap();
        std::fs::remove_file(scenes.join("b.json")).unwrap();
        std::fs::write(scenes.join("new.json"), "{}").unwrap();
        let r = verify(&l, &dir.path().join("data"), None);
        assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
        assert!(r.problems[0].contains("data/scenes/a.json differs"));
        assert!(r.problems[1].contains("data/scenes/b.json"));
        assert!(r.problems[2].contains("data/scenes/new.json is not in the library"));
    }

    #[test]
    fn damaged_or_wrong_snapshots_are_found() {
        let (dir, l, lib) = setup();
        l.write_snapshot(3, b"\x05garbage").unwrap();
        let mut wrong = lib.clone();
        wrong.settings = "{\"x\":1}".into();
        // Claims seq 4 but holds seq 3's library with other settings.
        wrong.seq = 4;
        l.write_snapshot(4, &wrong.to_snapshot()).unwrap();
        let r = verify(&l, &dir.path().join("data"), None);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].contains("snapshot at seq 3 does not decode"));
        assert!(
            r.problems[1].contains("snapshot at seq 4 differs"),
            "{}",
            r.problems[1]
        );
    }

    #[test]
    fn a_live_projection_that_drifted_is_found() {
        let (dir, l, _) = setup();
        let mut live = crate::store::snapshot::replay(&l, u64::MAX).unwrap();
        assert!(verify(&l, &dir.path().join("data"), Some(&live)).ok());
        live.default_checkpoint = Some("x".into());
        let r = verify(&l, &dir.path().join("data"), Some(&live));
        assert!(r.problems[0].contains("running server's library differs"));
    }
}

//! Restore planning: the one `Restored` event that makes the library what it was right after
//! a seq (documents, covers, default fields, preferences, settings, default checkpoint), as
//! the difference between the current projection and the one at that seq, plus the preview
//! of that difference. Pure: the caller brings both projections.

use crate::library::category::Category;
use crate::library::projection::{Entry, Library};
use crate::store::event::{EntryRef, Event, PreferenceState};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Why a restore cannot be made.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// The seq is not in the ledger.
    Invalid(String),
    /// A file the restore would write or remove cannot be touched now.
    Conflict(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Invalid(m) | Refused::Conflict(m) => f.write_str(m),
        }
    }
}

fn same_entry(a: &Entry, b: &Entry) -> bool {
    a.file == b.file
        && a.json == b.json
        && a.id == b.id
        && a.name == b.name
        && a.cover == b.cover
        && a.default_fields == b.default_fields
        && a.favourite == b.favourite
}

/// The event that puts `current` back to `target` (the projection right after `to_seq`), or
/// `None` when they already agree. Files that could not be read (sync failures) are never
/// overwritten or removed, so a restore that would touch one is refused.
pub fn plan(current: &Library, target: &Library, to_seq: u64) -> Result<Option<Event>, Refused> {
    if to_seq > current.seq {
        return Err(Refused::Invalid(format!(
            "seq {to_seq} is not in the ledger (it ends at {})",
            current.seq
        )));
    }
    let mut removed = Vec::new();
    let mut put = Vec::new();
    for c in Category::ALL {
        let now = &current.shelf(c).docs;
        let then = &target.shelf(c).docs;
        for (slug, e) in now {
            if then.get(slug).is_none_or(|t| t.file != e.file) {
                removed.push(EntryRef {
                    category: c,
                    slug: slug.clone(),
                    file: e.file.clone(),
                });
            }
        }
        for (slug, t) in then {
            if now.get(slug).is_none_or(|e| !same_entry(e, t)) {
                put.push(t.state(c));
            }
        }
        let failures = &current.shelf(c).failures;
        let touched = removed
            .iter()
            .filter(|r| r.category == c)
            .map(|r| &r.file)
            .chain(put.iter().filter(|p| p.category == c).map(|p| &p.file));
        for file in touched {
            if let Some(f) = failures.get(file) {
                return Err(Refused::Conflict(format!(
                    "data/{}/{file} could not be read ({}); fix or remove it before restoring",
                    c.desc().dir,
                    f.error
                )));
            }
        }
    }
    let mut preferences = Vec::new();
    let scopes: BTreeSet<&String> = current
        .preferences
        .keys()
        .chain(target.preferences.keys())
        .collect();
    for scope in scopes {
        let now = current.preferences.get(scope);
        let then = target.preferences.get(scope);
        let keys: BTreeSet<&String> = now
            .into_iter()
            .flat_map(|m| m.keys())
            .chain(then.into_iter().flat_map(|m| m.keys()))
            .collect();
        for key in keys {
            let a = now.and_then(|m| m.get(key));
            let b = then.and_then(|m| m.get(key));
            if a != b {
                preferences.push(PreferenceState {
                    scope: scope.clone(),
                    key: key.clone(),
                    json: b.cloned(),
                });
            }
        }
    }
    let settings = (current.settings != target.settings).then(|| target.settings.clone());
    let default_checkpoint = (current.default_checkpoint != target.default_checkpoint)
        .then(|| target.default_checkpoint.clone());
    if removed.is_empty()
        && put.is_empty()
        && preferences.is_empty()
        && settings.is_none()
        && default_checkpoint.is_none()
    {
        return Ok(None);
    }
    Ok(Some(Event::Restored {
        to_seq,
        removed,
        put,
        preferences,
        settings,
        default_checkpoint,
    }))
}

fn entry_json(c: Category, slug: &str, name: &str, file: &str) -> Value {
    json!({"category": c.key(), "slug": slug, "name": name,
           "file": format!("data/{}/{file}", c.desc().dir)})
}

/// Changed documents listed with their field-level differences; past this many, a preview
/// lists them without (a restore of thousands stays quick to preview).
pub const MAX_FIELD_DIFFS: usize = 200;

/// What a `Restored` event changes, against the library before it: documents added, changed
/// (the first `MAX_FIELD_DIFFS` with their field-level differences) and removed, covers,
/// default fields, preferences, settings and the default checkpoint.
pub fn summary(before: &Library, event: &Event) -> Value {
    let Event::Restored {
        to_seq,
        removed,
        put,
        preferences,
        settings,
        default_checkpoint,
    } = event
    else {
        return Value::Null;
    };
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut gone = Vec::new();
    let mut covers = Vec::new();
    let mut defaults = Vec::new();
    let mut favourites = Vec::new();
    for p in put {
        let now = before.get(p.category, &p.slug);
        let mut item = entry_json(p.category, &p.slug, &p.body.name, &p.file);
        match now {
            None => added.push(item),
            Some(e) if *e.json != *p.body.json || e.file != p.file => {
                item["fields"] = if changed.len() < MAX_FIELD_DIFFS {
                    json!(super::diff::diff_texts(Some(&e.json), Some(&p.body.json)))
                } else {
                    Value::Null
                };
                if e.file != p.file {
                    item["was_file"] = format!("data/{}/{}", p.category.desc().dir, e.file).into();
                }
                changed.push(item);
            }
            Some(_) => {}
        }
        let now_cover = now.and_then(|e| e.cover.clone());
        if now_cover != p.cover && (now.is_some() || p.cover.is_some()) {
            covers.push(json!({"category": p.category.key(), "slug": p.slug,
                               "from": now_cover, "to": p.cover}));
        }
        let now_star = now.is_some_and(|e| e.favourite);
        if now_star != p.favourite && (now.is_some() || p.favourite) {
            favourites.push(json!({"category": p.category.key(), "slug": p.slug,
                                   "from": now_star, "to": p.favourite}));
        }
        let now_fields = now.map(|e| e.default_fields.clone()).unwrap_or_default();
        if now_fields != p.default_fields {
            defaults.push(json!({"category": p.category.key(), "slug": p.slug,
                                 "from": now_fields, "to": p.default_fields}));
        }
    }
    for r in removed {
        if put
            .iter()
            .any(|p| p.category == r.category && p.slug == r.slug)
        {
            continue;
        }
        let name = before
            .get(r.category, &r.slug)
            .map_or("", |e| e.name.as_str());
        gone.push(entry_json(r.category, &r.slug, name, &r.file));
    }
    let prefs: Vec<Value> = preferences
        .iter()
        .map(|p| {
            let from = before.preferences.get(&p.scope).and_then(|m| m.get(&p.key));
            let parse = |t: Option<&String>| {
                t.map_or(Value::Null, |t| serde_json::from_str(t).unwrap_or(Value::Null))
            };
            json!({"scope": p.scope, "key": p.key, "from": parse(from), "to": parse(p.json.as_ref())})
        })
        .collect();
    let parse_obj = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
    json!({
        "to_seq": to_seq,
        "documents": {"added": added, "changed": changed, "removed": gone},
        "covers": covers,
        "default_fields": defaults,
        "favourites": favourites,
        "preferences": prefs,
        "settings": settings.as_ref().map(|s| json!({"from": parse_obj(&before.settings), "to": parse_obj(s)})),
        "default_checkpoint": default_checkpoint.as_ref().map(|d| json!({"from": before.default_checkpoint, "to": d})),
    })
}

/// The preview of a restore that would change nothing.
pub fn empty_summary(to_seq: u64) -> Value {
    json!({
        "to_seq": to_seq,
        "documents": {"added": [], "changed": [], "removed": []},
        "covers": [], "default_fields": [], "favourites": [], "preferences": [],
        "settings": null, "default_checkpoint": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{DocBody, Envelope, Origin, Stored};

    struct Script {
        lib: Library,
        seq: u64,
        states: Vec<Library>,
    }

    impl Script {
        fn new() -> Script {
            Script {
                lib: Library::default(),
                seq: 0,
                states: vec![Library::default()],
            }
        }

        fn apply(&mut self, event: Event) {
            self.seq += 1;
            self.lib.apply(&Stored {
                seq: self.seq,
                envelope: Envelope {
                    id: u128::from(self.seq),
                    at: self.seq,
                    origin: Origin::Cli,
                    event,
                },
            });
            self.states.push(self.lib.clone());
        }
    }

    fn body(id: &str, text: &str) -> DocBody {
        DocBody {
            id: id.into(),
            name: id.to_uppercase(),
            json: format!("{{\"x\": \"{text}\"}}\n"),
        }
    }

    fn synced(c: Category, slug: &str, file: &str, text: &str) -> Event {
        Event::DocumentSynced {
            category: c,
            slug: slug.into(),
            file: file.into(),
            body: body(slug, text),
        }
    }

    /// A history touching every kind of state a restore puts back.
    fn history() -> Script {
        let c = Category::Characters;
        let mut s = Script::new();
        s.apply(synced(c, "a", "a.json", "a1"));
        s.apply(synced(c, "b", "b.json", "b1"));
        s.apply(Event::CoverSet {
            category: c,
            slug: "a".into(),
            path: "uploads/characters/a/cover_1.png".into(),
        });
        s.apply(Event::DefaultFieldsSaved {
            category: c,
            slug: "b".into(),
            fields: vec!["identity::hair".into()],
        });
        s.apply(Event::PreferenceSet {
            scope: "generator".into(),
            key: "extra_positive".into(),
            json: "\"sunset\"".into(),
        });
        s.apply(Event::SettingsChanged {
            json: "{\"llm_model\":\"m1\"}".into(),
            llm_key_changed: false,
        });
        s.apply(Event::DocumentEdited {
            category: c,
            slug: "a".into(),
            body: body("a", "a2"),
        });
        s.apply(synced(Category::Outfits, "maid", "maid.json", "m1"));
        s.apply(Event::DefaultCheckpointSet {
            path: Some("Illustrious/x.safetensors".into()),
        });
        s.apply(Event::DocumentDeleted {
            category: c,
            slug: "b".into(),
            file: "b.json".into(),
            hard: false,
        });
        s.apply(Event::CoversCleared { category: c });
        // "a" moves to another file (its id changed on disk, then back under a new file).
        s.apply(Event::FileVanished {
            category: c,
            slug: "a".into(),
            file: "a.json".into(),
        });
        s.apply(synced(c, "a", "a_renamed.json", "a3"));
        s.apply(Event::PreferenceSet {
            scope: "generator".into(),
            key: "fields".into(),
            json: "[]".into(),
        });
        s.apply(Event::SettingsChanged {
            json: "{\"llm_model\":\"m2\"}".into(),
            llm_key_changed: false,
        });
        s.apply(Event::DefaultCheckpointSet { path: None });
        s.apply(Event::JobCancelled { job: 5 });
        s
    }

    fn same_library_state(a: &Library, b: &Library) -> Result<(), String> {
        for c in Category::ALL {
            let x: Vec<_> = a
                .shelf(c)
                .docs
                .values()
                .map(|e| {
                    (
                        &e.slug,
                        &e.file,
                        &e.json,
                        &e.id,
                        &e.name,
                        &e.cover,
                        &e.default_fields,
                    )
                })
                .collect();
            let y: Vec<_> = b
                .shelf(c)
                .docs
                .values()
                .map(|e| {
                    (
                        &e.slug,
                        &e.file,
                        &e.json,
                        &e.id,
                        &e.name,
                        &e.cover,
                        &e.default_fields,
                    )
                })
                .collect();
            if x != y {
                return Err(format!("{c:?}: {x:?} != {y:?}"));
            }
            let mut fa: Vec<_> = a.shelf(c).by_file.iter().collect();
            let mut fb: Vec<_> = b.shelf(c).by_file.iter().collect();
            fa.sort();
            fb.sort();
            if fa != fb {
                return Err(format!("{c:?} files: {fa:?} != {fb:?}"));
            }
        }
        if a.preferences != b.preferences {
            return Err(format!("{:?} != {:?}", a.preferences, b.preferences));
        }
        if a.settings != b.settings || a.default_checkpoint != b.default_checkpoint {
            return Err("settings".into());
        }
        Ok(())
    }

    #[test]
    fn restoring_to_every_seq_gives_that_seqs_library_and_undo_comes_back() {
        let base = history();
        let last = base.seq;
        for n in 0..=last {
            let mut s = Script {
                lib: base.lib.clone(),
                seq: base.seq,
                states: base.states.clone(),
            };
            let target = s.states[n as usize].clone();
            let before = s.lib.clone();
            match plan(&s.lib, &target, n).unwrap() {
                None => {
                    same_library_state(&s.lib, &target).unwrap();
                    continue;
                }
                Some(e) => {
                    let sum = summary(&s.lib, &e);
                    assert_eq!(sum["to_seq"], n);
                    s.apply(e);
                }
            }
            same_library_state(&s.lib, &target).unwrap_or_else(|e| panic!("to {n}: {e}"));
            assert_eq!(s.lib.jobs, before.jobs, "jobs are not rewound");
            // Undo: restore to the seq just before the restore.
            let undo_to = s.seq - 1;
            let undo_target = s.states[undo_to as usize].clone();
            if let Some(e) = plan(&s.lib, &undo_target, undo_to).unwrap() {
                s.apply(e);
            }
            same_library_state(&s.lib, &before).unwrap_or_else(|e| panic!("undo {n}: {e}"));
            assert!(
                plan(&s.lib, &before, last).unwrap().is_none(),
                "nothing left to restore after the undo"
            );
        }
    }

    #[test]
    fn content_versions_move_only_for_changed_text() {
        let s = history();
        let a = s.lib.get(Category::Characters, "a").unwrap();
        assert_eq!(
            a.content_version, 13,
            "re-synced under a new file with new text"
        );
        let mut s2 = Script {
            lib: s.lib.clone(),
            seq: s.seq,
            states: s.states.clone(),
        };
        // Back to seq 3: "a" has text a1 (changed) and a cover; "b" comes back.
        let e = plan(&s2.lib, &s2.states[3].clone(), 3).unwrap().unwrap();
        s2.apply(e);
        let a = s2.lib.get(Category::Characters, "a").unwrap();
        assert_eq!((a.version, a.content_version), (18, 18));
        assert_eq!(a.cover.as_deref(), Some("uploads/characters/a/cover_1.png"));
        // Back to seq 17 again: "a" text a3; only the cover and file differ from 3's a... text
        // differs too, so its content version moves; an entry whose text matches keeps it.
        let mut only_cover = s.lib.clone();
        let seq = only_cover.seq + 1;
        only_cover.apply(&Stored {
            seq,
            envelope: Envelope {
                id: 0,
                at: 0,
                origin: Origin::Cli,
                event: Event::CoverSet {
                    category: Category::Characters,
                    slug: "a".into(),
                    path: "p.png".into(),
                },
            },
        });
        let e = plan(&only_cover, &s.lib, s.seq).unwrap().unwrap();
        let Event::Restored { put, removed, .. } = &e else {
            unreachable!()
        };
        assert_eq!(put.len(), 1);
        assert!(removed.is_empty());
        let sum = summary(&only_cover, &e);
        assert_eq!(sum["covers"][0]["from"], "p.png");
        assert_eq!(sum["documents"]["changed"], json!([]));
        only_cover.apply(&Stored {
            seq: seq + 1,
            envelope: Envelope {
                id: 0,
                at: 0,
                origin: Origin::Cli,
                event: e,
            },
        });
        let a = only_cover.get(Category::Characters, "a").unwrap();
        assert_eq!(a.content_version, 13, "same text: content version kept");
        assert_eq!(a.version, seq + 1);
    }

    #[test]
    fn the_preview_says_what_changes() {
        let s = history();
        let target = &s.states[9];
        let e = plan(&s.lib, target, 9).unwrap().unwrap();
        let sum = summary(&s.lib, &e);
        let names = |k: &str| -> Vec<String> {
            sum["documents"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    format!(
                        "{}/{}",
                        d["category"].as_str().unwrap(),
                        d["slug"].as_str().unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(names("added"), ["characters/b"]);
        assert_eq!(names("changed"), ["characters/a"]);
        assert_eq!(names("removed"), Vec::<String>::new());
        let changed = &sum["documents"]["changed"][0];
        assert_eq!(changed["was_file"], "data/characters/a_renamed.json");
        assert_eq!(changed["fields"][0]["path"], "x");
        assert_eq!(changed["fields"][0]["before"], "a3");
        assert_eq!(changed["fields"][0]["after"], "a2");
        assert_eq!(sum["covers"][0]["to"], "uploads/characters/a/cover_1.png");
        assert_eq!(sum["default_fields"][0]["to"], json!(["identity::hair"]));
        assert_eq!(sum["preferences"][0]["key"], "fields");
        assert_eq!(sum["preferences"][0]["to"], Value::Null);
        assert_eq!(sum["settings"]["to"]["llm_model"], "m1");
        assert_eq!(sum["default_checkpoint"]["to"], "Illustrious/x.safetensors");
        let e0 = plan(&s.lib, &s.states[0], 0).unwrap().unwrap();
        let sum0 = summary(&s.lib, &e0);
        assert_eq!(sum0["documents"]["removed"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_restore_never_touches_a_file_that_could_not_be_read() {
        let mut s = history();
        s.apply(Event::SyncFailed {
            category: Category::Characters,
            file: "a_renamed.json".into(),
            hash: 1,
            error: "invalid JSON".into(),
        });
        let target = s.states[2].clone();
        let err = plan(&s.lib, &target, 2).unwrap_err();
        assert!(matches!(err, Refused::Conflict(_)));
        assert!(err.to_string().contains("a_renamed.json"), "{err}");
        assert!(matches!(
            plan(&s.lib, &target, 999),
            Err(Refused::Invalid(_))
        ));
    }
}

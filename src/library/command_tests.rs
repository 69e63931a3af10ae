//! Given/when/then tests of the command rules: given events, when a command, then events.

use super::*;
use crate::store::event::{Envelope, Origin, Stored};
use serde_json::json;

const C: Category = Category::Characters;

/// Folds the events a command decides into the library, as the handle does.
fn then_apply(lib: &mut Library, events: &[Event]) {
    for e in events {
        let seq = lib.seq + 1;
        lib.apply(&Stored {
            seq,
            envelope: Envelope {
                id: 0,
                at: 0,
                origin: Origin::Cli,
                event: e.clone(),
            },
        });
    }
}

fn sync_apply(lib: &mut Library, observations: Vec<Observation>, complete: bool) {
    let ev = sync(lib, observations, complete);
    then_apply(lib, &ev);
}

fn obs(file: &str, bytes: &[u8]) -> Observation {
    Observation {
        file: file.into(),
        content: FileContent::Bytes(bytes.to_vec()),
    }
}

fn sync(lib: &Library, observations: Vec<Observation>, complete: bool) -> Vec<Event> {
    decide(
        lib,
        &Command::Sync {
            category: C,
            observations,
            complete,
        },
    )
    .unwrap()
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

const TIFA: &[u8] = br#"{"character_id": "tifa_lockhart", "character_name": "Tifa"}"#;

#[test]
fn a_new_file_is_synced_with_its_exact_text_and_an_unchanged_one_is_not() {
    let lib = Library::default();
    let ev = sync(&lib, vec![obs("tifa.json", TIFA)], true);
    match &ev[..] {
        [
            Event::DocumentSynced {
                slug, file, body, ..
            },
        ] => {
            assert_eq!(slug, "tifa_lockhart");
            assert_eq!(file, "tifa.json");
            assert_eq!(body.json.as_bytes(), TIFA);
            assert_eq!(body.name, "Tifa");
        }
        other => panic!("{other:?}"),
    }
    let mut lib = lib;
    then_apply(&mut lib, &ev);
    assert!(sync(&lib, vec![obs("tifa.json", TIFA)], true).is_empty());
    let changed = br#"{"character_id": "tifa_lockhart", "character_name": "Tifa L"}"#;
    assert_eq!(
        kinds(&sync(&lib, vec![obs("tifa.json", changed)], true)),
        ["document_synced"]
    );
}

#[test]
fn unreadable_files_are_failures_that_keep_the_last_good_version() {
    let mut lib = Library::default();
    sync_apply(&mut lib, vec![obs("tifa.json", TIFA)], true);
    let cases: [(&[u8], &str); 6] = [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"{\"character_id\": ", "invalid JSON"),
        (b"[1, 2]", "not a JSON object (the file holds an array)"),
        (b"\"text\"", "a string"),
        (b"{\"a\": \"\xff\xfe\"}", "not UTF-8"),
    ];
    for (bytes, why) in cases {
        let ev = sync(&lib, vec![obs("tifa.json", bytes)], true);
        match &ev[..] {
            [Event::SyncFailed { file, error, .. }] => {
                assert_eq!(file, "tifa.json");
                assert!(error.contains(why), "{error} should say {why}");
            }
            other => panic!("{why}: {other:?}"),
        }
        let mut after = lib.clone();
        then_apply(&mut after, &ev);
        assert_eq!(after.get(C, "tifa_lockhart").unwrap().json.as_bytes(), TIFA);
        // The same bad bytes are not recorded twice.
        assert!(sync(&after, vec![obs("tifa.json", bytes)], true).is_empty());
    }
}

#[test]
fn a_failed_file_that_is_fixed_or_removed_clears_its_failure() {
    let mut lib = Library::default();
    sync_apply(&mut lib, vec![obs("x.json", b"{")], true);
    assert_eq!(lib.shelf(C).failures.len(), 1);
    let mut fixed = lib.clone();
    let ev = sync(&lib, vec![obs("x.json", TIFA)], true);
    then_apply(&mut fixed, &ev);
    assert!(fixed.shelf(C).failures.is_empty());
    assert!(fixed.get(C, "tifa_lockhart").is_some());
    let ev = sync(&lib, vec![], true);
    assert_eq!(kinds(&ev), ["sync_failure_cleared"]);
}

#[test]
fn two_ids_with_one_slug_are_a_recorded_failure_never_an_overwrite() {
    let lib = Library::default();
    let a = br#"{"character_id": "yuna_(ff10)"}"#;
    let b = br#"{"character_id": "yuna_ff10"}"#;
    let ev = sync(&lib, vec![obs("a.json", a), obs("b.json", b)], true);
    assert_eq!(kinds(&ev), ["document_synced", "sync_failed"]);
    match &ev[1] {
        Event::SyncFailed { file, error, .. } => {
            assert_eq!(file, "b.json");
            assert!(
                error.contains("yuna_ff10") && error.contains("a.json"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut lib = lib;
    then_apply(&mut lib, &ev);
    assert_eq!(lib.get(C, "yuna_ff10").unwrap().file, "a.json");
    // Once a.json is gone, b.json can take the slug.
    let ev = sync(&lib, vec![obs("b.json", b)], true);
    assert_eq!(kinds(&ev), ["file_vanished", "document_synced"]);
    then_apply(&mut lib, &ev);
    assert_eq!(lib.get(C, "yuna_ff10").unwrap().file, "b.json");
    assert!(lib.shelf(C).failures.is_empty());
}

#[test]
fn ids_fall_back_to_the_file_name_but_checkpoints_need_their_path() {
    let lib = Library::default();
    let ev = sync(
        &lib,
        vec![obs("no-id.json", b"{\"character_name\": \"N\"}")],
        true,
    );
    match &ev[..] {
        [Event::DocumentSynced { slug, body, .. }] => {
            assert_eq!(slug, "noid");
            assert_eq!(body.id, "no-id");
        }
        other => panic!("{other:?}"),
    }
    let ev = decide(
        &lib,
        &Command::Sync {
            category: Category::Checkpoints,
            observations: vec![obs("c.json", b"{\"steps\": 20}")],
            complete: true,
        },
    )
    .unwrap();
    assert_eq!(kinds(&ev), ["sync_failed"]);
    let ev = sync(
        &lib,
        vec![obs("p.json", b"{\"character_id\": \"()\"}")],
        true,
    );
    assert_eq!(kinds(&ev), ["sync_failed"]);
}

#[test]
fn a_full_scan_notices_vanished_files_and_a_partial_one_does_not() {
    let mut lib = Library::default();
    sync_apply(&mut lib, vec![obs("tifa.json", TIFA)], true);
    assert!(sync(&lib, vec![], false).is_empty());
    assert_eq!(kinds(&sync(&lib, vec![], true)), ["file_vanished"]);
    let gone = Observation {
        file: "tifa.json".into(),
        content: FileContent::Missing,
    };
    let ev = sync(&lib, vec![gone], false);
    assert_eq!(kinds(&ev), ["file_vanished"]);
    then_apply(&mut lib, &ev);
    assert_eq!(lib.count(C), 0);
}

#[test]
fn a_file_whose_id_changes_moves_to_the_new_slug() {
    let mut lib = Library::default();
    sync_apply(&mut lib, vec![obs("t.json", TIFA)], true);
    let renamed = br#"{"character_id": "tifa_ac"}"#;
    sync_apply(&mut lib, vec![obs("t.json", renamed)], true);
    assert!(lib.get(C, "tifa_lockhart").is_none());
    assert_eq!(lib.get(C, "tifa_ac").unwrap().file, "t.json");
    assert_eq!(lib.count(C), 1);
}

#[test]
fn create_derives_ids_refuses_clashes_and_renders_stably() {
    let lib = Library::default();
    let create = |lib: &Library, doc: Value| {
        decide(
            lib,
            &Command::Create {
                category: C,
                doc: obj(doc),
                source: Source::Manual,
            },
        )
    };
    let ev = create(
        &lib,
        json!({"character_name": "Aerith G.", "zz": 1, "aa": 2}),
    )
    .unwrap();
    let Event::DocumentCreated {
        slug, file, body, ..
    } = &ev[0]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(slug, "aerith_g");
    assert_eq!(file, "aerith_g.json");
    assert_eq!(
        body.json,
        "{\n  \"character_id\": \"aerith_g\",\n  \"character_name\": \"Aerith G.\",\n  \"zz\": 1,\n  \"aa\": 2\n}\n"
    );
    let mut lib = lib;
    then_apply(&mut lib, &ev);
    assert!(matches!(
        create(&lib, json!({"character_id": "aerith_g"})),
        Err(Refusal::Conflict(_))
    ));
    for bad in [
        json!({}),
        json!({"character_id": 5}),
        json!({"character_id": "!!!"}),
    ] {
        assert!(matches!(create(&lib, bad), Err(Refusal::Invalid(_))));
    }
    assert!(matches!(
        decide(
            &lib,
            &Command::Create {
                category: Category::Checkpoints,
                doc: obj(json!({"checkpoint_name": "x"})),
                source: Source::Manual
            }
        ),
        Err(Refusal::Invalid(_))
    ));
}

#[test]
fn edits_keep_the_slug_and_unknown_keys_and_skip_no_ops() {
    let mut lib = Library::default();
    sync_apply(&mut lib, vec![obs("t.json", TIFA)], true);
    let edit = |lib: &Library, doc: Value| {
        decide(
            lib,
            &Command::Edit {
                category: C,
                slug: "tifa_lockhart".into(),
                doc: obj(doc),
            },
        )
    };
    let ev = edit(
        &lib,
        json!({"character_name": "Tifa", "custom": {"x": [1]}}),
    )
    .unwrap();
    let Event::DocumentEdited { body, .. } = &ev[0] else {
        panic!()
    };
    assert!(
        body.json
            .starts_with("{\n  \"character_id\": \"tifa_lockhart\"")
    );
    assert!(body.json.contains("\"custom\""));
    then_apply(&mut lib, &ev);
    assert!(
        edit(
            &lib,
            json!({"character_name": "Tifa", "custom": {"x": [1]}})
        )
        .unwrap()
        .is_empty()
    );
    assert!(matches!(
        edit(&lib, json!({"character_id": "other"})),
        Err(Refusal::Invalid(_))
    ));
    assert!(matches!(
        decide(
            &lib,
            &Command::Edit {
                category: C,
                slug: "nobody".into(),
                doc: Map::new()
            }
        ),
        Err(Refusal::NotFound(_))
    ));
}

#[test]
fn clones_get_unique_ids_and_checkpoints_cannot_be_cloned() {
    let mut lib = Library::default();
    sync_apply(&mut lib, vec![obs("t.json", TIFA)], true);
    let clone = |lib: &Library| {
        decide(
            lib,
            &Command::Clone {
                category: C,
                slug: "tifa_lockhart".into(),
                new_id: None,
                new_name: None,
            },
        )
        .unwrap()
    };
    let ev = clone(&lib);
    then_apply(&mut lib, &ev);
    let ev2 = clone(&lib);
    then_apply(&mut lib, &ev2);
    assert_eq!(
        lib.get(C, "tifa_lockhart_copy").unwrap().name,
        "Tifa (Copy)"
    );
    assert!(lib.get(C, "tifa_lockhart_copy_2").is_some());
    assert!(matches!(
        decide(
            &lib,
            &Command::Clone {
                category: Category::Checkpoints,
                slug: "x".into(),
                new_id: None,
                new_name: None
            }
        ),
        Err(Refusal::Invalid(_))
    ));
}

#[test]
fn preferences_and_default_fields_are_checked() {
    let mut lib = Library::default();
    sync_apply(&mut lib, vec![obs("t.json", TIFA)], true);
    let prefs = |scope: &str, values: Vec<(&str, Value)>| {
        decide(
            &lib,
            &Command::SetPreferences {
                scope: scope.into(),
                values: values.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            },
        )
    };
    let ok = prefs(
        "characters/tifa_lockhart",
        vec![
            ("fields", json!(["identity::hair"])),
            ("extra_positive", json!("x")),
        ],
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
    assert!(prefs("generator", vec![("preview", Value::Null)]).is_ok());
    assert!(matches!(
        prefs("characters/nobody", vec![]),
        Err(Refusal::NotFound(_))
    ));
    assert!(matches!(
        prefs("elsewhere", vec![]),
        Err(Refusal::NotFound(_))
    ));
    for (k, v) in [
        ("colour", json!("x")),
        ("fields", json!("identity::hair")),
        ("fields", json!(["hair"])),
        ("extra_positive", Value::Null),
    ] {
        assert!(
            matches!(prefs("generator", vec![(k, v)]), Err(Refusal::Invalid(_))),
            "{k}"
        );
    }
    assert!(check_fields(&["a::b".into()]).is_ok());
    for bad in ["a", "::b", "a::", "a::b::c"] {
        assert!(check_fields(&[bad.into()]).is_err(), "{bad}");
    }
}

#[test]
fn the_default_checkpoint_must_exist() {
    let lib = Library::default();
    assert!(matches!(
        decide(
            &lib,
            &Command::SetDefaultCheckpoint {
                path: Some("nope.safetensors".into())
            }
        ),
        Err(Refusal::NotFound(_))
    ));
    assert!(
        decide(&lib, &Command::SetDefaultCheckpoint { path: None })
            .unwrap()
            .is_empty()
    );
}

// ---- assistant (issue 11) ----

fn made(batch: Option<u128>, lora: Option<&str>, document: Value) -> Box<Draft> {
    Box::new(Draft {
        category: Category::Outfits,
        model: "test/m".into(),
        request: "a maid".into(),
        tool_calls: "[]".into(),
        document: document.to_string(),
        batch,
        lora: lora.map(String::from),
    })
}

fn run(lib: &mut Library, cmd: Command) -> Result<Vec<Event>, Refusal> {
    let events = decide(lib, &cmd)?;
    then_apply(lib, &events);
    Ok(events)
}

#[test]
fn a_draft_is_recorded_alone_and_accepted_once_into_its_own_category() {
    let mut lib = Library::default();
    let doc = json!({"outfit_id": "maid", "outfit_name": "Maid"});
    let ev = run(
        &mut lib,
        Command::RecordDraft {
            draft: 9,
            made: made(None, None, doc.clone()),
            create: false,
        },
    )
    .unwrap();
    assert_eq!(kinds(&ev), ["draft_made"]);
    assert_eq!(lib.count(Category::Outfits), 0, "a draft creates nothing");
    let again = decide(
        &lib,
        &Command::RecordDraft {
            draft: 9,
            made: made(None, None, doc.clone()),
            create: false,
        },
    );
    assert!(matches!(again, Err(Refusal::Conflict(_))));

    let draft_id = ulid::Ulid::from(9u128).to_string();
    let accept = |c: Category| Command::Create {
        category: c,
        doc: obj(doc.clone()),
        source: Source::Assistant {
            draft_id: draft_id.clone(),
        },
    };
    assert!(matches!(
        decide(&lib, &accept(Category::Scenes)),
        Err(Refusal::Invalid(_))
    ));
    let ev = run(&mut lib, accept(Category::Outfits)).unwrap();
    assert_eq!(kinds(&ev), ["document_created"]);
    assert_eq!(lib.assistant.drafts[&9].entry.as_deref(), Some("maid"));
    let twice = decide(&lib, &accept(Category::Outfits)).unwrap_err();
    assert!(twice.to_string().contains("already accepted"), "{twice}");
    let unknown = Command::Create {
        category: Category::Outfits,
        doc: obj(doc),
        source: Source::Assistant {
            draft_id: ulid::Ulid::from(10u128).to_string(),
        },
    };
    assert!(matches!(decide(&lib, &unknown), Err(Refusal::NotFound(_))));
}

#[test]
fn a_bulk_item_commits_its_draft_with_its_entry_and_only_once() {
    let mut lib = Library::default();
    let loras = vec![
        "L/a.safetensors".to_string(),
        "L/b.safetensors".to_string(),
        "L/c.safetensors".to_string(),
    ];
    let ev = run(
        &mut lib,
        Command::StartBulk {
            batch: 5,
            category: Category::Outfits,
            loras,
        },
    )
    .unwrap();
    assert_eq!(kinds(&ev), ["bulk_started"]);
    assert!(
        run(
            &mut lib,
            Command::StartBulk {
                batch: 6,
                category: Category::Outfits,
                loras: vec![]
            }
        )
        .unwrap()
        .is_empty()
    );
    // An entry already uses the id the model picked: the new one gets a free id.
    run(
        &mut lib,
        Command::Create {
            category: Category::Outfits,
            doc: obj(json!({"outfit_id": "maid"})),
            source: Source::Manual,
        },
    )
    .unwrap();
    let item = |draft: u128, lora: &str, doc: Value| Command::RecordDraft {
        draft,
        made: made(Some(5), Some(lora), doc),
        create: true,
    };
    let ev = run(
        &mut lib,
        item(
            7,
            "L/a.safetensors",
            json!({"outfit_id": "maid", "outfit_name": "Maid"}),
        ),
    )
    .unwrap();
    assert_eq!(kinds(&ev), ["draft_made", "document_created"]);
    assert!(lib.get(Category::Outfits, "maid_2").is_some());
    // The same file again (a restart that redrafted it) is refused: nothing twice.
    let dup = decide(
        &lib,
        &item(8, "L/a.safetensors", json!({"outfit_id": "other"})),
    );
    assert!(matches!(dup, Err(Refusal::Conflict(_))));
    // A draft that cannot become an entry is kept, and the file is recorded as failed.
    let ev = run(
        &mut lib,
        item(8, "L/b.safetensors", json!({"outfit_id": "!!!"})),
    )
    .unwrap();
    assert_eq!(kinds(&ev), ["draft_made", "bulk_item_failed"]);
    assert_eq!(
        lib.assistant.batches[&5].pending().collect::<Vec<_>>(),
        ["L/c.safetensors"]
    );
    // Failing a file twice, or one not in the run, records nothing.
    let fail = |lora: &str| Command::FailBulkItem {
        batch: 5,
        lora: lora.into(),
        error: "x".into(),
    };
    assert!(run(&mut lib, fail("L/b.safetensors")).unwrap().is_empty());
    assert!(run(&mut lib, fail("L/zzz.safetensors")).unwrap().is_empty());
    let ev = run(&mut lib, Command::CancelBulk { batch: 5 }).unwrap();
    assert_eq!(kinds(&ev), ["bulk_cancelled"]);
    assert!(matches!(
        decide(&lib, &Command::CancelBulk { batch: 5 }),
        Err(Refusal::Conflict(_))
    ));
    assert!(matches!(
        decide(&lib, &Command::CancelBulk { batch: 99 }),
        Err(Refusal::NotFound(_))
    ));
    // A cancelled run takes no more drafts.
    assert!(matches!(
        decide(&lib, &item(9, "L/c.safetensors", json!({"outfit_id": "c"}))),
        Err(Refusal::Conflict(_))
    ));
}

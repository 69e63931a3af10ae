//! Projections are pure folds: dropping them and replaying the ledger gives the same state.

use crate::support::app::sample_data;
use gaze::handle::{Handle, Paths, Request};
use gaze::library::category::Category;
use gaze::library::command::Command;
use gaze::store::event::{Origin, Source};
use gaze::store::snapshot::replay;
use serde_json::json;

fn obj(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn replaying_the_ledger_from_seq_one_rebuilds_an_identical_library() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    crate::support::app::copy_dir(&sample_data(), &data);
    let paths = Paths {
        data: data.clone(),
        uploads: tmp.path().join("up"),
        loras: None,
        checkpoints: None,
        workflow: None,
    };
    let ledger = tmp.path().join("ledger/gaze.redb");
    let h = Handle::open(&ledger, paths.clone()).unwrap();
    let run = |r: Request| h.execute(Origin::Cli, r).unwrap();
    run(Request::Rescan(Category::ALL.to_vec()));
    for i in 0..20 {
        run(Request::Command(Command::Create {
            category: Category::Scenes,
            doc: obj(json!({"scene_id": format!("s{i}"), "scene": {"background": "sky"}})),
            source: Source::Manual,
        }));
        run(Request::Command(Command::Edit {
            category: Category::Scenes,
            slug: format!("s{i}"),
            doc: obj(json!({"scene_name": format!("Scene {i}")})),
        }));
        if i % 3 == 0 {
            run(Request::Command(Command::Delete {
                category: Category::Scenes,
                slug: format!("s{i}"),
                hard: false,
            }));
        }
        run(Request::Command(Command::SetPreferences {
            scope: "generator".into(),
            values: vec![("extra_positive".into(), json!(format!("p{i}")))],
        }));
    }
    run(Request::Command(Command::SaveDefaultFields {
        category: Category::Characters,
        slug: "tifa_lockhart".into(),
        fields: vec!["identity::hair".into()],
    }));
    run(Request::Command(Command::SetCover {
        category: Category::Characters,
        slug: "tifa_lockhart".into(),
        path: "uploads/characters/tifa_lockhart/c.png".into(),
    }));
    // A snapshot in the middle: what follows is replayed on top of it.
    h.snapshot_now();
    let mid = h.library().seq;
    run(Request::Command(Command::Edit {
        category: Category::Scenes,
        slug: "s1".into(),
        doc: obj(json!({"scene_name": "After the snapshot"})),
    }));
    std::fs::write(data.join("styles/broken.json"), "{").unwrap();
    run(Request::Rescan(vec![Category::Styles]));
    let live = h.library().clone();
    assert!(live.seq > 60);
    let replayed = replay(h.ledger(), u64::MAX).unwrap();
    assert_eq!(
        replayed, live,
        "a fresh fold of every event equals the live projection"
    );
    // And a reopened handle (a restart) agrees too.
    drop(h);
    let h = Handle::open(&ledger, paths).unwrap();
    assert_eq!(*h.library(), live);
    // Time travel never changes anything, from before or after the snapshot.
    let early = h.library_at(10).unwrap();
    assert_eq!(early, replay(h.ledger(), 10).unwrap());
    assert_eq!(early.seq, 10);
    let later = h.library_at(mid + 1).unwrap();
    assert_eq!(later, replay(h.ledger(), mid + 1).unwrap());
    assert_eq!(
        later.get(Category::Scenes, "s1").unwrap().name,
        "After the snapshot"
    );
    assert_eq!(*h.library(), live);
}

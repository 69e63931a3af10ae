//! Files edited outside the app: the watcher, the periodic rescan, hostile files, and the
//! app's own writes not coming back as edits.

use crate::support::app::{Gaze, eventually, sample_data};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

async fn name_of(g: &Gaze, path: &str) -> Option<String> {
    let (status, v) = g.get(path).await;
    (status == 200).then(|| v["name"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn outside_edits_creations_and_deletions_show_up_within_a_second() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let dir = g.data().join("scenes");
    std::fs::write(
        dir.join("rooftop.json"),
        r#"{"scene_id": "rooftop", "scene_name": "Rooftop", "scene": {"background": "rooftop, night sky"}}"#,
    )
    .unwrap();
    assert!(
        eventually(SECOND * 2, || async {
            name_of(&g, "/api/library/scenes/rooftop").await.as_deref() == Some("Rooftop")
        })
        .await,
        "creation seen; log:\n{}",
        g.log()
    );
    std::fs::write(
        dir.join("rooftop.json"),
        r#"{"scene_id": "rooftop", "scene_name": "Rooftop at Dawn"}"#,
    )
    .unwrap();
    assert!(
        eventually(SECOND * 2, || async {
            name_of(&g, "/api/library/scenes/rooftop").await.as_deref() == Some("Rooftop at Dawn")
        })
        .await
    );
    std::fs::remove_file(dir.join("rooftop.json")).unwrap();
    assert!(
        eventually(SECOND * 2, || async {
            name_of(&g, "/api/library/scenes/rooftop").await.is_none()
        })
        .await
    );
    let (_, ev) = g.get("/api/events?after=0&limit=1000").await;
    let last = ev["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "file_vanished");
    assert_eq!(last["origin"], "watcher");
}

#[tokio::test]
async fn a_broken_file_is_a_recorded_failure_and_is_never_touched() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let path = g.data().join("characters/tifa_lockhart.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let broken = b"{\"character_id\": \"tifa_lockhart\", \"character_name\": \"Ti\xff";
    std::fs::write(&path, broken).unwrap();
    assert!(
        eventually(SECOND * 2, || async {
            let (_, f) = g.get("/api/failures").await;
            f["failures"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await
    );
    let (_, f) = g.get("/api/failures").await;
    assert_eq!(
        f["failures"][0]["file"],
        "data/characters/tifa_lockhart.json"
    );
    assert!(
        f["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );
    // The last good version stays in the library, and the file is left as the user wrote it.
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    let good_json: serde_json::Value = serde_json::from_str(&good).unwrap();
    assert_eq!(tifa["data"], good_json);
    assert_eq!(std::fs::read(&path).unwrap(), broken);
    // An edit through the API of an entry whose file is broken still works; the fix wins.
    std::fs::write(&path, &good).unwrap();
    assert!(
        eventually(SECOND * 2, || async {
            let (_, f) = g.get("/api/failures").await;
            f["failures"].as_array().is_some_and(Vec::is_empty)
        })
        .await
    );
}

#[tokio::test]
async fn hostile_files_are_refused_with_reasons() {
    let g = Gaze::start(None, &[]);
    let dir = g.data().join("actions");
    std::fs::create_dir_all(&dir).unwrap();
    let files: [(&str, &[u8], &str); 5] = [
        ("empty.json", b"", "empty"),
        ("array.json", b"[]", "not a JSON object"),
        ("latin1.json", b"{\"action_id\": \"caf\xe9\"}", "UTF-8"),
        ("junk.json", b"\x00\x01\x02", "invalid JSON"),
        ("dots.json", b"{\"action_id\": \"...\"}", "slug"),
    ];
    for (name, bytes, _) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(dir.join("a.json"), r#"{"action_id": "wave-hand"}"#).unwrap();
    std::fs::write(dir.join("b.json"), r#"{"action_id": "wavehand"}"#).unwrap();
    let (status, v) = g.post("/api/library/actions/rescan", "").await;
    assert_eq!(status, 200);
    let failures = v["failures"].as_array().unwrap();
    for (name, _, why) in &files {
        let f = failures
            .iter()
            .find(|f| f["file"] == format!("data/actions/{name}"))
            .unwrap_or_else(|| panic!("{name} not reported: {v}"));
        assert!(f["error"].as_str().unwrap().contains(why), "{name}: {f}");
        assert!(dir.join(name).exists(), "{name} is left on disk");
    }
    let clash = failures
        .iter()
        .find(|f| f["file"] == "data/actions/b.json")
        .expect("the second id mapping to slug wavehand is a failure");
    assert!(clash["error"].as_str().unwrap().contains("a.json"));
    let (_, list) = g.get("/api/library/actions").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["file"], "a.json");
    // Rescanning the same broken files records nothing new.
    let seq = g.seq().await;
    let (_, v) = g.post("/api/rescan", "").await;
    assert_eq!(v["events"], 0);
    assert_eq!(g.seq().await, seq);
}

#[tokio::test]
async fn the_apps_own_writes_are_not_ingested_again() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let before = g.seq().await;
    for i in 0..5 {
        let (status, _) = g
            .put(
                "/api/library/styles/watercolor",
                &format!(r#"{{"style_name": "Watercolor {i}"}}"#),
            )
            .await;
        assert_eq!(status, 200);
    }
    tokio::time::sleep(SECOND).await;
    let (_, v) = g.post("/api/rescan", "").await;
    assert_eq!(v["events"], 0, "disk already agrees with the ledger");
    assert_eq!(
        g.seq().await,
        before + 5,
        "only the five edits were recorded"
    );
}

#[tokio::test]
async fn the_periodic_rescan_catches_what_no_watcher_reported() {
    let g = Gaze::start(Some(&sample_data()), &["--no-watch", "--rescan-secs", "1"]);
    std::fs::write(
        g.data().join("looks/new_look.json"),
        r#"{"look_id": "new_look", "look_name": "New Look"}"#,
    )
    .unwrap();
    assert!(
        eventually(SECOND * 4, || async {
            name_of(&g, "/api/library/looks/new_look").await.is_some()
        })
        .await
    );
}

#[tokio::test]
async fn a_second_gaze_on_the_same_ledger_exits_with_a_clear_message() {
    let g = Gaze::start(None, &[]);
    let (status, stderr) = g.run_to_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("in use by another running gaze"),
        "{stderr}"
    );
    // The first one is unaffected.
    assert_eq!(g.get("/api/health").await.0, 200);
}

#[tokio::test]
async fn start_up_sync_records_only_what_changed_while_stopped() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    g.stop();
    let seq_files = g.data().join("actions");
    std::fs::write(
        seq_files.join("sitting.json"),
        r#"{"action_id": "sitting", "action_name": "Sitting (edited offline)"}"#,
    )
    .unwrap();
    std::fs::remove_file(g.data().join("styles/watercolor.json")).unwrap();
    g.spawn();
    let (_, ev) = g.get("/api/events?after=0&limit=1000").await;
    let startup: Vec<(String, String)> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["slug"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        startup.contains(&("document_synced".into(), "sitting".into())),
        "{startup:?}"
    );
    assert!(
        startup.contains(&("file_vanished".into(), "watercolor".into())),
        "{startup:?}"
    );
    assert_eq!(
        name_of(&g, "/api/library/actions/sitting").await.as_deref(),
        Some("Sitting (edited offline)")
    );
}

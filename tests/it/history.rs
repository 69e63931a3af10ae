//! History against the real binary: restore and undo with the files on disk, time travel at
//! every seq, export and import byte for byte, audits equal to what ComfyUI received (with
//! and without the Impact Pack), running a job again through ComfyUI's cache, stale covers,
//! verify, the pages, and the command-line tools with the server stopped and running.

use crate::jobs::{comfy, gaze_with, generate, wait_status};
use crate::support::app::{Gaze, eventually};
use crate::support::comfy_standin::{self, StandInConfig};
use crate::support::sample::{sample_data, sample_models};
use gaze::store::ledger::Ledger;
use scraper::{Html, Selector};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

/// Every file under `data/`, relative path → bytes.
fn files(data: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for dir in std::fs::read_dir(data).unwrap().flatten() {
        if !dir.file_type().unwrap().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if f.file_type().unwrap().is_file() && name.ends_with(".json") {
                let key = format!("{}/{name}", dir.file_name().to_string_lossy());
                out.insert(key, std::fs::read(f.path()).unwrap());
            }
        }
    }
    out
}

/// Runs the gaze binary with `args` (and `stdin`), returning exit success, stdout, stderr.
fn cli(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gaze"))
        .args(args)
        .env_remove("GAZE_URL")
        .env_remove("GAZE_LEDGER")
        .env_remove("GAZE_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn raw_events(ledger: &Path) -> Vec<(u64, Vec<u8>)> {
    let l = Ledger::open(&ledger.join("gaze.redb")).unwrap();
    let mut v = Vec::new();
    l.raw(1, u64::MAX, |seq, b| {
        v.push((seq, b.to_vec()));
        true
    })
    .unwrap();
    v
}

fn doc(g: &Gaze, rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(g.data().join(rel)).unwrap()).unwrap()
}

fn select<'a>(html: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    html.select(&Selector::parse(css).unwrap()).collect()
}

async fn page(g: &Gaze, path: &str) -> (u16, Html) {
    let resp = g.http.get(format!("{}{path}", g.url)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, Html::parse_document(&resp.text().await.unwrap()))
}

/// Posts an HTML form (urlencoded), not following redirects; returns status and Location.
async fn form(g: &Gaze, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The form's CSRF token, as the page gives it.
    let (_, html) = page(g, "/history/deleted").await;
    let token = select(&html, "meta[name=csrf-token]")[0]
        .value()
        .attr("content")
        .unwrap()
        .to_string();
    let body: String = fields
        .iter()
        .chain([&("csrf", token.as_str())])
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let resp = client
        .post(format!("{}{path}", g.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let loc = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), loc)
}

/// Whether characters/link shows as starred in its gallery.
async fn link_starred(g: &Gaze) -> bool {
    let (_, html) = page(g, "/characters").await;
    !select(&html, "#card-link .fav-btn.on").is_empty()
}

/// A day's worth of typical changes; returns the seq before them.
async fn make_changes(g: &Gaze) -> u64 {
    let before = g.seq().await;
    let mut tifa = doc(g, "characters/tifa_lockhart.json");
    tifa["identity"]["hair"] = json!("black hair, very long hair, ponytail");
    let (st, v) = g
        .put("/api/library/characters/tifa_lockhart", &tifa.to_string())
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = g.delete("/api/library/scenes/beach").await;
    assert_eq!(st, 200);
    let (st, v) = g
        .post(
            "/api/library/styles",
            r#"{"style_name": "Ink Wash", "style": {"artist_name": "", "artistic_style": "ink wash painting, monochrome"}}"#,
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, _) = g
        .put(
            "/api/library/characters/tifa_lockhart/default_fields",
            r#"{"fields": ["identity::hair"]}"#,
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = g
        .put(
            "/api/preferences/generator",
            r#"{"extra_positive": "sunset"}"#,
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = g.put("/api/settings", r#"{"llm_model": "m2"}"#).await;
    assert_eq!(st, 200);
    before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_and_undo_round_trip_with_the_files_on_disk() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    let at_start = files(&g.data());
    let seq0 = make_changes(&g).await;
    // A favourite too (the gallery's star).
    let (st, _) = form(&g, "/character/link/favourite", &[("on", "1")]).await;
    assert_eq!(st, 303);
    assert!(link_starred(&g).await);
    let changed = files(&g.data());
    assert_ne!(changed, at_start);
    let (_, lib_changed) = g.get("/api/library/styles").await;

    // The preview says what will change, and changes nothing.
    let (st, p) = g.get(&format!("/api/restore/preview?to_seq={seq0}")).await;
    assert_eq!(st, 200, "{p}");
    let names = |k: &str| -> Vec<String> {
        p["changes"]["documents"][k]
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
    assert_eq!(names("added"), ["scenes/beach"]);
    assert_eq!(names("changed"), ["characters/tifa_lockhart"]);
    assert_eq!(names("removed"), ["styles/ink_wash"]);
    let hair = p["changes"]["documents"]["changed"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "identity::hair")
        .unwrap();
    assert_eq!(
        hair["tags"]["removed"],
        json!(["very long hair", "ponytail"])
    );
    assert_eq!(hair["tags"]["kept"], json!(["black hair"]));
    assert!(
        hair["tags"]["added"]
            .as_array()
            .unwrap()
            .contains(&json!("long hair"))
    );
    assert_eq!(p["changes"]["default_fields"][0]["to"], json!([]));
    assert_eq!(p["changes"]["preferences"][0]["key"], "extra_positive");
    assert_eq!(
        p["changes"]["favourites"],
        json!([{"category": "characters", "slug": "link", "from": true, "to": false}])
    );
    assert_eq!(p["changes"]["settings"]["to"], json!({}));
    assert_eq!(files(&g.data()), changed, "a preview writes nothing");

    // Restore: one event; the files are what they were.
    let last = g.seq().await;
    let (st, r) = g
        .post("/api/restore", &json!({"to_seq": seq0}).to_string())
        .await;
    assert_eq!(st, 200, "{r}");
    let rseq = r["seq"].as_u64().unwrap();
    assert_eq!(rseq, last + 1, "a restore is one event");
    assert_eq!(r["undo"]["to_seq"], rseq - 1);
    assert_eq!(files(&g.data()), at_start, "data/ is as it was");
    assert!(!link_starred(&g).await, "the favourite is undone too");
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(tifa["default_fields"], json!([]));
    let (_, prefs) = g.get("/api/preferences/generator").await;
    assert_eq!(prefs, json!({}));
    let (_, settings) = g.get("/api/settings").await;
    assert!(settings.get("llm_model").is_none(), "{settings}");
    let (_, ev) = g.get(&format!("/api/events?after={last}")).await;
    assert_eq!(ev["events"].as_array().unwrap().len(), 1);
    assert_eq!(ev["events"][0]["type"], "restored");
    assert_eq!(ev["events"][0]["to_seq"], seq0);
    // The watcher sees the app's own writes and records nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(g.seq().await, rseq);

    // Undo: restore to the seq just before the restore.
    let (st, u) = g
        .post("/api/restore", &json!({"to_seq": rseq - 1}).to_string())
        .await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(files(&g.data()), changed, "undo brings the changes back");
    assert!(link_starred(&g).await);
    let (_, styles) = g.get("/api/library/styles").await;
    let slugs = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["slug"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(slugs(&styles), slugs(&lib_changed));
    // Restoring to where it already is changes nothing.
    let (st, same) = g
        .post("/api/restore", &json!({"to_seq": rseq - 1}).to_string())
        .await;
    assert_eq!(st, 200);
    assert_eq!(same["seq"], Value::Null);

    // Bad input: clear errors, nothing written.
    let end = g.seq().await;
    for (body, status) in [
        ("{}", 400),
        (r#"{"to_seq": -1}"#, 400),
        (r#"{"to_seq": "x"}"#, 400),
        (r#"{"to_seq": 99999999}"#, 400),
        ("not json", 400),
    ] {
        let (st, v) = g.post("/api/restore", body).await;
        assert_eq!(st, status, "{body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    assert_eq!(g.seq().await, end);

    // A crash between a restore's commit and its file writes is finished at the next start.
    let (_, r2) = g
        .post("/api/restore", &json!({"to_seq": seq0}).to_string())
        .await;
    assert!(r2["seq"].is_u64());
    g.kill9();
    std::fs::write(
        g.data().join("characters/tifa_lockhart.json"),
        &changed["characters/tifa_lockhart.json"],
    )
    .unwrap();
    std::fs::remove_file(g.data().join("scenes/beach.json")).unwrap();
    g.spawn();
    assert_eq!(
        files(&g.data()),
        at_start,
        "the restore's files are written at start-up"
    );
    let (_, ev) = g
        .get(&format!(
            "/api/events?after={}",
            r2["seq"].as_u64().unwrap()
        ))
        .await;
    assert_eq!(
        ev["events"].as_array().unwrap().len(),
        0,
        "the old files were not taken for outside edits: {ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_entries_are_listed_and_come_back_with_their_cover_and_defaults() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let text = std::fs::read(g.data().join("clothing/victorian_maid.json")).unwrap();
    let outfit: Value = serde_json::from_slice(&text).unwrap();
    let slug =
        gaze::library::category::Category::Outfits.slug_of(outfit["outfit_id"].as_str().unwrap());
    let (_, before) = g.get(&format!("/api/library/outfits/{slug}")).await;
    let file = g
        .data()
        .join("clothing")
        .join(before["file"].as_str().unwrap());
    let (st, _) = g
        .put(
            &format!("/api/library/outfits/{slug}/default_fields"),
            r#"{"fields": ["wardrobe::top"]}"#,
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = g.delete(&format!("/api/library/outfits/{slug}")).await;
    assert_eq!(st, 200);
    assert!(!file.exists());
    let (_, d) = g.get("/api/deleted").await;
    let listed = d["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["slug"] == slug.as_str())
        .unwrap_or_else(|| panic!("{d}"));
    assert_eq!(listed["how"], "deleted");
    assert_eq!(listed["name"], before["name"]);
    // The page lists it with an undelete form.
    let (st, html) = page(&g, "/history/deleted").await;
    assert_eq!(st, 200);
    let action = format!("/history/deleted/outfits/{slug}/undelete");
    assert!(
        select(&html, "form[method=post]")
            .iter()
            .any(|f| f.value().attr("action") == Some(&action)),
        "undelete form"
    );
    let (st, loc) = form(&g, &action, &[]).await;
    assert_eq!(st, 303, "{loc}");
    assert_eq!(loc, format!("/outfit/{slug}/history"));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        text,
        "the file is back byte for byte"
    );
    let (_, after) = g.get(&format!("/api/library/outfits/{slug}")).await;
    assert_eq!(after["default_fields"], json!(["wardrobe::top"]));
    assert_eq!(after["data"], before["data"]);
    // Not deleted any more: nothing to undelete.
    let (st, v) = g
        .post(&format!("/api/deleted/outfits/{slug}/undelete"), "")
        .await;
    assert_eq!(st, 409, "{v}");
    let (st, _) = g.post("/api/deleted/outfits/never_was/undelete", "").await;
    assert_eq!(st, 404);
    let (_, d) = g.get("/api/deleted").await;
    assert!(
        !d["deleted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["slug"] == slug.as_str())
    );
}

type State = (u64, u64, Value, Value, Value, Value);

/// (seq, time of its event, characters list, tifa, generator preferences, settings) now.
async fn record(g: &Gaze) -> State {
    let seq = g.seq().await;
    let (_, ev) = g.get(&format!("/api/events?after={}", seq - 1)).await;
    let at = ev["events"][0]["at"].as_u64().unwrap();
    let (_, list) = g.get("/api/library/characters").await;
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    let (_, prefs) = g.get("/api/preferences/generator").await;
    let (_, settings) = g.get("/api/settings").await;
    (seq, at, list, tifa, prefs, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_at_every_seq_equals_the_state_recorded_then() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let mut states: Vec<State> = Vec::new();
    states.push(record(&g).await);
    let mut tifa = doc(&g, "characters/tifa_lockhart.json");
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(3)).await;
        match i % 3 {
            0 => {
                tifa["identity"]["hair"] = json!(format!("black hair, style {i}"));
                let (st, _) = g
                    .put("/api/library/characters/tifa_lockhart", &tifa.to_string())
                    .await;
                assert_eq!(st, 200);
            }
            1 => {
                let (st, _) = g
                    .put(
                        "/api/preferences/generator",
                        &json!({"extra_positive": format!("p{i}")}).to_string(),
                    )
                    .await;
                assert_eq!(st, 200);
            }
            _ => {
                let (st, _) = g
                    .put(
                        "/api/settings",
                        &json!({"llm_model": format!("m{i}")}).to_string(),
                    )
                    .await;
                assert_eq!(st, 200);
            }
        }
        states.push(record(&g).await);
    }
    let (st, _) = g.delete("/api/library/characters/link").await;
    assert_eq!(st, 200);
    states.push(record(&g).await);
    for (seq, at, list, tifa, prefs, settings) in &states {
        let (_, l) = g.get(&format!("/api/library/characters?at={seq}")).await;
        assert_eq!(&l, list, "list at {seq}");
        let (_, t) = g
            .get(&format!("/api/library/characters/tifa_lockhart?at={seq}"))
            .await;
        assert_eq!(&t, tifa, "tifa at {seq}");
        let (_, p) = g.get(&format!("/api/preferences/generator?at={seq}")).await;
        assert_eq!(&p, prefs, "preferences at {seq}");
        let (_, s) = g.get(&format!("/api/settings?at={seq}")).await;
        assert_eq!(&s, settings, "settings at {seq}");
        // By time: the event's own time, as unix ms and as RFC 3339.
        let (_, l) = g
            .get(&format!("/api/library/characters?at_time={at}"))
            .await;
        assert_eq!(&l, list, "list at time {at}");
        let rfc = gaze::history::time::format(*at);
        let (st, t) = g
            .get(&format!(
                "/api/library/characters/tifa_lockhart?at_time={}",
                rfc.replace(':', "%3A")
            ))
            .await;
        assert_eq!(st, 200, "{t}");
        assert_eq!(&t, tifa, "tifa at {rfc}");
    }
    // Before the first event there is no library.
    let (_, l) = g.get("/api/library/characters?at_time=1").await;
    assert_eq!(l["items"], json!([]));
    let (st, v) = g.get("/api/library/characters?at_time=yesterday").await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("at_time"));
    let (st, _) = g.get("/api/library/characters?at=1&at_time=1").await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_gives_the_same_events_byte_for_byte_and_the_same_library() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    make_changes(&g).await;
    let ledger = g.ledger_dir();
    let export_running = g.root().join("running.jsonl");
    // With the server running, the tools go through its API (found by server.json).
    let (ok, _, err) = cli(
        &[
            "export",
            "--ledger",
            &s(&ledger),
            "--out",
            &s(&export_running),
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(err.contains("running gaze"), "{err}");
    g.stop();
    assert!(!ledger.join("server.json").exists(), "removed at shutdown");
    let export = g.root().join("export.jsonl");
    let (ok, _, err) = cli(
        &["export", "--ledger", &s(&ledger), "--out", &s(&export)],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(&export).unwrap(),
        std::fs::read(&export_running).unwrap(),
        "the same export either way"
    );
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&export)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for k in ["seq", "id", "at", "origin", "type", "record"] {
        assert!(first.get(k).is_some(), "{k} in {first}");
    }
    let copy = g.root().join("copy");
    let data2 = g.root().join("data2");
    let (ok, out, err) = cli(
        &[
            "import",
            &s(&export),
            "--ledger",
            &s(&copy),
            "--data",
            &s(&data2),
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("imported"), "{out}");
    assert_eq!(raw_events(&ledger), raw_events(&copy), "byte for byte");
    let a =
        gaze::store::snapshot::replay(&Ledger::open(&ledger.join("gaze.redb")).unwrap(), u64::MAX)
            .unwrap();
    let b =
        gaze::store::snapshot::replay(&Ledger::open(&copy.join("gaze.redb")).unwrap(), u64::MAX)
            .unwrap();
    assert_eq!(a, b, "the same projections");
    assert_eq!(
        files(&data2),
        files(&g.data()),
        "--data wrote the library's files"
    );
    // A used ledger is refused and left alone.
    let (ok, _, err) = cli(&["import", &s(&export), "--ledger", &s(&copy)], "");
    assert!(!ok);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(raw_events(&ledger), raw_events(&copy));
    // A damaged export fails cleanly and leaves no half-built ledger behind.
    let broken = g.root().join("broken.jsonl");
    let mut text = std::fs::read_to_string(&export).unwrap();
    text.push_str("{\"seq\": 999999, \"record\": \"AAAA\"}\n");
    std::fs::write(&broken, text).unwrap();
    let fresh = g.root().join("fresh");
    let (ok, _, err) = cli(&["import", &s(&broken), "--ledger", &s(&fresh)], "");
    assert!(!ok);
    assert!(err.contains("import failed"), "{err}");
    assert!(!fresh.join("gaze.redb").exists());
    // The imported ledger serves the same library.
    let mut g2 = Gaze::start(None, &[]);
    g2.stop();
    std::fs::remove_dir_all(g2.ledger_dir()).unwrap();
    std::fs::remove_dir_all(g2.data()).unwrap();
    crate::support::app::copy_dir(&copy, &g2.ledger_dir());
    crate::support::app::copy_dir(&data2, &g2.data());
    g2.spawn();
    g.spawn();
    for c in ["characters", "styles", "scenes"] {
        assert_eq!(
            g2.get(&format!("/api/library/{c}")).await,
            g.get(&format!("/api/library/{c}")).await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_graphs_equal_what_comfyui_received_with_and_without_the_impact_pack() {
    let a = comfy(30).await;
    let (checkpoints, loras, vaes) = sample_models();
    let b = comfy_standin::start(StandInConfig {
        checkpoints,
        loras,
        vaes,
        exec_time: Duration::from_millis(30),
        impact_pack: false,
    })
    .await;
    let g = gaze_with(&[&a, &b], &[]);
    let mut ids = Vec::new();
    for seed in 0..8u64 {
        ids.push(
            generate(
                &g,
                json!({"category": "characters", "slug": "tifa_lockhart", "seed": seed}),
            )
            .await,
        );
    }
    let mut kinds = std::collections::BTreeSet::new();
    for id in &ids {
        let j = wait_status(&g, id, "done", SECOND * 30).await;
        let (st, audit) = g.get(&format!("/api/audit/jobs/{id}")).await;
        assert_eq!(st, 200, "{audit}");
        let pid = j["prompt_id"].as_str().unwrap();
        let backend = if j["backend"] == a.url().as_str() {
            &a
        } else {
            &b
        };
        let vanilla = j["vanilla"].as_bool().unwrap();
        kinds.insert(vanilla);
        assert_eq!(
            Some(&audit["sent_graph"]),
            backend.received(pid).as_ref(),
            "the audit's graph is exactly what ComfyUI received (vanilla: {vanilla})"
        );
        assert_eq!(audit["submissions"][0]["vanilla"], vanilla);
        assert_eq!(
            vanilla,
            !audit["sent_graph"].to_string().contains("FaceDetailer")
        );
        // The rest of the audit.
        assert_eq!(audit["seed"], audit["recipe"]["seed"]);
        assert!(audit["checkpoint"].is_string());
        assert!(!audit["loras"].as_array().unwrap().is_empty(), "{audit}");
        let main = audit["provenance"]["explanation"]["main"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", audit["provenance_error"]));
        assert!(main.iter().any(|t| {
            t["source"]
                .as_str()
                .unwrap()
                .contains("characters/tifa_lockhart")
        }));
        let v = audit["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["slug"] == "tifa_lockhart")
            .unwrap();
        assert_eq!(
            v["link"],
            format!("/character/tifa_lockhart/history?at={}", v["version"])
        );
        assert_eq!(v["changed_since"], false);
        // From the image too.
        let image = j["images"][0].as_str().unwrap();
        let (st, by_image) = g.get(&format!("/api/audit/image?path={image}")).await;
        assert_eq!(st, 200, "{by_image}");
        assert_eq!(by_image["job_id"], id.as_str());
    }
    assert_eq!(kinds.len(), 2, "both kinds of backend ran jobs");
    // Two images' recipes differ in their seeds (and the workflow's seed input).
    let (st, d) = g
        .get(&format!("/api/audit/diff?a={}&b={}", ids[0], ids[1]))
        .await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(d["identical"], false);
    assert_eq!(d["settings"][0]["path"], "seed");
    assert!(
        d["workflow"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "3::inputs::seed")
    );
    let (_, same) = g
        .get(&format!("/api/audit/diff?a={}&b={}", ids[0], ids[0]))
        .await;
    assert_eq!(same["identical"], true);
    // The audit page shows the same.
    let (st, html) = page(&g, &format!("/audit/{}", ids[0])).await;
    assert_eq!(st, 200);
    assert!(!select(&html, "form[action$='/again']").is_empty());
    assert!(select(&html, "a[href^='/character/tifa_lockhart/history?at=']").len() == 1);
    // Bad input.
    for path in [
        "/api/audit/jobs/nope",
        "/api/audit/jobs/01J00000000000000000000000",
        "/api/audit/image?path=uploads/characters/x/cover_1.png",
    ] {
        let (st, v) = g.get(path).await;
        assert_eq!(st, 404, "{path}: {v}");
        assert!(v["error"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_again_exactly_yields_an_image_even_when_comfyui_serves_the_graph_from_cache() {
    let c = comfy(30).await;
    c.set_cache_reports_outputs(false);
    let g = gaze_with(&[&c], &[]);
    let first = generate(
        &g,
        json!({"category": "characters", "slug": "tifa_lockhart", "seed": 42, "character": null}),
    )
    .await;
    let j1 = wait_status(&g, &first, "done", SECOND * 20).await;
    let written = c.images_written();
    // The stand-in really hides cached outputs: the very same graph again gives nothing.
    let sent = c.received(j1["prompt_id"].as_str().unwrap()).unwrap();
    let http = reqwest::Client::new();
    let pid = "11111111-2222-4333-8444-555555555555";
    let r = http
        .post(format!("{}/prompt", c.url()))
        .json(&json!({"prompt": sent, "prompt_id": pid}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(c.wait_idle(SECOND * 10).await);
    assert_eq!(c.history_entry(pid).unwrap()["outputs"], json!({}));
    assert_eq!(c.images_written(), written);

    let (st, v) = g
        .post(
            &format!("/api/jobs/{first}/run_again"),
            r#"{"mode": "exact"}"#,
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let again = v["job_id"].as_str().unwrap().to_string();
    let j2 = wait_status(&g, &again, "done", SECOND * 20).await;
    assert_eq!(j2["images"].as_array().unwrap().len(), 1, "{j2}");
    assert_ne!(j2["images"], j1["images"]);
    assert_eq!(
        c.images_written(),
        written + 1,
        "only the save node ran again"
    );
    assert_eq!(j2["retry_of"], first.as_str());
    let (_, r1) = g.get(&format!("/api/jobs/{first}/recipe")).await;
    let (_, r2) = g.get(&format!("/api/jobs/{again}/recipe")).await;
    assert_eq!(
        r1["recipe"], r2["recipe"],
        "the same recipe: same graph and seed"
    );
    let (_, a2) = g.get(&format!("/api/audit/jobs/{again}")).await;
    assert_eq!(a2["again_of"], json!({"job": first, "exact": true}));
    let (_, a1) = g.get(&format!("/api/audit/jobs/{first}")).await;
    assert_eq!(a1["run_again"], json!([again]));
    assert_eq!(
        a2["provenance"]["from_job"],
        first.as_str(),
        "provenance of an exact run comes from the original request"
    );

    // With today's library: the same seed, the edited character.
    let mut tifa = doc(&g, "characters/tifa_lockhart.json");
    tifa["identity"]["hair"] = json!("silver hair, bob cut");
    let (st, _) = g
        .put("/api/library/characters/tifa_lockhart", &tifa.to_string())
        .await;
    assert_eq!(st, 200);
    let (st, v) = g
        .post(
            &format!("/api/jobs/{first}/run_again"),
            r#"{"mode": "today"}"#,
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let today = v["job_id"].as_str().unwrap().to_string();
    let j3 = wait_status(&g, &today, "done", SECOND * 20).await;
    assert_eq!(j3["retry_of"], first.as_str());
    let (_, r3) = g.get(&format!("/api/jobs/{today}/recipe")).await;
    assert_eq!(r3["recipe"]["seed"], 42);
    assert!(
        r3["recipe"]["prompts"]["main"]
            .as_str()
            .unwrap()
            .contains("silver hair")
    );
    assert_ne!(
        r3["recipe"]["versions"]["characters/tifa_lockhart"],
        r1["recipe"]["versions"]["characters/tifa_lockhart"]
    );
    let (_, a3) = g.get(&format!("/api/audit/jobs/{today}")).await;
    assert_eq!(a3["again_of"]["exact"], false);
    // The audit of the first job now says the character was edited since.
    let (_, a1) = g.get(&format!("/api/audit/jobs/{first}")).await;
    let v = a1["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["slug"] == "tifa_lockhart")
        .unwrap();
    assert_eq!(v["changed_since"], true);
    let (st, v) = g
        .post(
            &format!("/api/jobs/{first}/run_again"),
            r#"{"mode": "sideways"}"#,
        )
        .await;
    assert_eq!(st, 400, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_cover_is_marked_and_regenerated() {
    let c = comfy(30).await;
    let g = gaze_with(&[&c], &[]);
    let id = generate(
        &g,
        json!({"category": "characters", "slug": "tifa_lockhart", "action": "replace", "seed": 7}),
    )
    .await;
    wait_status(&g, &id, "done", SECOND * 20).await;
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert!(tifa["cover"].is_string());
    assert_eq!(tifa["stale"], false);
    // Default fields are not content: still fresh.
    g.put(
        "/api/library/characters/tifa_lockhart/default_fields",
        r#"{"fields": ["identity::hair"]}"#,
    )
    .await;
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(tifa["stale"], false);
    let mut d = doc(&g, "characters/tifa_lockhart.json");
    d["identity"]["eyes"] = json!("green eyes");
    let (st, _) = g
        .put("/api/library/characters/tifa_lockhart", &d.to_string())
        .await;
    assert_eq!(st, 200);
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(tifa["stale"], true);
    let (_, list) = g.get("/api/library/characters").await;
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["slug"] == "tifa_lockhart")
        .unwrap();
    assert_eq!(item["stale"], true, "the list shows it too");
    let (_, st_list) = g.get("/api/stale?category=characters").await;
    assert_eq!(st_list["stale"][0]["slug"], "tifa_lockhart");
    assert_eq!(st_list["stale"][0]["cover_job"], id.as_str());
    // Marked on its card, its page, its history page and the stale page (with a button).
    let (_, html) = page(&g, "/characters").await;
    assert_eq!(select(&html, "#card-tifa_lockhart .stale-badge").len(), 1);
    assert_eq!(select(&html, "#card-link .stale-badge").len(), 0);
    let (_, html) = page(&g, "/character/tifa_lockhart").await;
    assert_eq!(select(&html, "h1 .stale-badge").len(), 1);
    let (_, html) = page(&g, "/character/tifa_lockhart/history").await;
    assert!(
        select(&html, ".badge.text-bg-warning")
            .iter()
            .any(|b| b.text().collect::<String>().contains("stale"))
    );
    let (_, html) = page(&g, "/history/stale").await;
    assert_eq!(
        select(&html, "form[action='/history/stale/characters/regenerate']").len(),
        1
    );
    let (st, loc) = form(&g, "/history/stale/characters/regenerate", &[]).await;
    assert_eq!((st, loc.as_str()), (303, "/history/stale?queued=1"));
    assert!(
        eventually(SECOND * 20, || async {
            let (_, t) = g.get("/api/library/characters/tifa_lockhart").await;
            t["stale"] == false && t["cover"] != tifa["cover"]
        })
        .await,
        "the cover was regenerated from today's text"
    );
    let (_, st_list) = g.get("/api/stale").await;
    assert_eq!(st_list["stale"], json!([]));
    let (st, _) = g.post("/api/stale/hats/regenerate", "").await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_file_changed_behind_the_apps_back_and_a_corrupted_snapshot() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    make_changes(&g).await;
    let ledger = s(&g.ledger_dir());
    let data = s(&g.data());
    // Running: through the server.
    let (ok, out, err) = cli(&["verify", "--ledger", &ledger, "--data", &data], "");
    assert!(ok, "{out}{err}");
    assert!(out.contains("ok"), "{out}");
    g.stop();
    let (ok, out, err) = cli(&["verify", "--ledger", &ledger, "--data", &data], "");
    assert!(ok, "{out}{err}");
    // A file changed while nobody watched.
    let file = g.data().join("characters/link.json");
    let original = std::fs::read(&file).unwrap();
    std::fs::write(&file, b"{\"character_id\": \"link\", \"tampered\": true}\n").unwrap();
    let (ok, out, err) = cli(&["verify", "--ledger", &ledger, "--data", &data], "");
    assert!(!ok);
    assert!(out.contains("data/characters/link.json differs"), "{out}");
    assert!(err.contains("1 problem"), "{err}");
    std::fs::write(&file, original).unwrap();
    // A corrupted snapshot.
    {
        let l = Ledger::open(&g.ledger_dir().join("gaze.redb")).unwrap();
        let last = l.last_seq();
        let (seq, mut bytes) = l.snapshot_at_or_before(last).unwrap().unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0x5a;
        bytes.truncate(n - 3);
        l.write_snapshot(seq, &bytes).unwrap();
    }
    let (ok, out, _) = cli(
        &["verify", "--ledger", &ledger, "--data", &data, "--json"],
        "",
    );
    assert!(!ok);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], false);
    assert!(
        report["problems"][0].as_str().unwrap().contains("snapshot"),
        "{report}"
    );
    // The app still starts (an unreadable snapshot is ignored) and verify through it agrees.
    g.spawn();
    let (_, v) = g.get("/api/verify").await;
    assert!(
        v["problems"][0].as_str().unwrap().contains("snapshot"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_shows_every_field_filters_and_pages() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    make_changes(&g).await;
    let (_, all) = g.get("/api/events?limit=1000").await;
    let events = all["events"].as_array().unwrap();
    let edited = events
        .iter()
        .find(|e| e["type"] == "document_edited")
        .unwrap();
    assert!(
        edited["body"]["json"]
            .as_str()
            .unwrap()
            .contains("ponytail"),
        "{edited}"
    );
    let settings = events
        .iter()
        .find(|e| e["type"] == "settings_changed")
        .unwrap();
    assert_eq!(settings["json"], "{\"llm_model\":\"m2\"}");
    // Filters.
    let (_, f) = g
        .get("/api/events?type=document_edited,document_deleted&origin=web&limit=1000")
        .await;
    let kinds: Vec<&str> = f["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["document_edited", "document_deleted"]);
    let (_, f) = g
        .get("/api/events?category=characters&slug=tifa_lockhart&limit=1000")
        .await;
    assert!(
        f["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["slug"] == "tifa_lockhart")
    );
    assert_eq!(f["events"].as_array().unwrap().len(), 3, "{f}");
    // Paging back from the newest.
    let (_, newest) = g.get("/api/events?order=desc&limit=2").await;
    let last = g.seq().await;
    let seqs: Vec<u64> = newest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [last - 1, last]);
    assert_eq!(newest["older"]["before"], last - 1);
    assert_eq!(newest["newer"], Value::Null);
    let (_, older) = g
        .get(&format!("/api/events?before={}&limit=2", last - 1))
        .await;
    assert_eq!(older["events"][1]["seq"], last - 2);
    assert_eq!(older["newer"]["after"], last - 2);
    for bad in [
        "/api/events?type=nope",
        "/api/events?origin=mars",
        "/api/events?since=yesterday",
        "/api/events?slug=tifa_lockhart",
        "/api/events?limit=0",
        "/api/events?after=-1",
    ] {
        let (st, v) = g.get(bad).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
    // The page: filters, expandable events, restore links, paging.
    let (st, html) = page(&g, "/history?type=document_edited").await;
    assert_eq!(st, 200);
    let rows = select(&html, "table.events tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().collect::<String>().contains("tifa_lockhart"));
    assert_eq!(select(&html, "table.events details pre").len(), 1);
    assert!(
        select(&html, "select[name=type] option[selected]")
            .iter()
            .any(|o| o.value().attr("value") == Some("document_edited"))
    );
    let (_, html) = page(&g, "/history?limit=3").await;
    assert_eq!(select(&html, "table.events tbody tr").len(), 3);
    let older = select(&html, "nav.pager a");
    assert!(older[0].value().attr("href").unwrap().contains("before="));
    assert!(!select(&html, "a[href^='/history/restore?to_seq=']").is_empty());
    let (st, _) = page(&g, "/history?type=nope").await;
    assert_eq!(st, 400);
    // The restore preview page and its form.
    let (st, html) = page(&g, "/history/restore?to_seq=1").await;
    assert_eq!(st, 200);
    assert_eq!(
        select(&html, "form[action='/history/restore'] input[name=to_seq]")[0]
            .value()
            .attr("value"),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_history_lists_versions_diffs_them_and_restores_one() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let base = g.seq().await;
    make_changes(&g).await;
    let (_, h) = g.get("/api/history/characters/tifa_lockhart").await;
    let items = h["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["default_fields_saved", "document_edited", "document_synced"]
    );
    assert_eq!(items[1]["origin"], "web");
    assert_eq!(items[2]["origin"], "startup");
    let synced = items[2]["seq"].as_u64().unwrap();
    let edited = items[1]["seq"].as_u64().unwrap();
    assert!(synced <= base);
    let (_, d) = g
        .get(&format!(
            "/api/history/characters/tifa_lockhart/diff?a={synced}&b={edited}"
        ))
        .await;
    let hair = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "identity::hair")
        .unwrap();
    assert_eq!(hair["tags"]["kept"], json!(["black hair"]));
    // The page: versions with who made them, side by side diff, restore this version.
    let (st, html) = page(
        &g,
        &format!("/character/tifa_lockhart/history?a={synced}&b={edited}&at={synced}"),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(select(&html, "table.versions tbody tr").len(), 3);
    let origins: Vec<String> = select(&html, "table.versions tbody tr td:nth-child(5)")
        .iter()
        .map(|t| t.text().collect())
        .collect();
    assert_eq!(origins, ["web", "web", "startup"]);
    assert!(
        select(&html, "table.diff del.badge")
            .iter()
            .any(|t| t.text().collect::<String>() == "ponytail"
                || t.text().collect::<String>() == "very long hair")
            || select(&html, "table.diff ins.badge")
                .iter()
                .any(|t| t.text().collect::<String>() == "ponytail")
    );
    let restore = select(
        &html,
        "form[action='/character/tifa_lockhart/history/restore']",
    );
    assert_eq!(restore.len(), 1);
    let original = std::fs::read(g.data().join("characters/tifa_lockhart.json")).unwrap();
    let (st, loc) = form(
        &g,
        "/character/tifa_lockhart/history/restore",
        &[("seq", &synced.to_string())],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (303, "/character/tifa_lockhart/history")
    );
    let (_, now) = g.get("/api/library/characters/tifa_lockhart").await;
    let (_, then) = g
        .get(&format!(
            "/api/library/characters/tifa_lockhart?at={synced}"
        ))
        .await;
    assert_eq!(
        now["data"], then["data"],
        "the old version is back, as an edit"
    );
    assert_ne!(
        std::fs::read(g.data().join("characters/tifa_lockhart.json")).unwrap(),
        original
    );
    let (_, h) = g.get("/api/history/characters/tifa_lockhart?limit=1").await;
    assert_eq!(h["items"][0]["type"], "document_edited");
    assert_eq!(h["older"]["before"], h["items"][0]["seq"]);
    let (st, _) = page(&g, "/character/nobody_here/history").await;
    assert_eq!(st, 404);
    let (st, _) = page(&g, "/hat/tifa_lockhart/history").await;
    assert_eq!(st, 404);
    let (st, _) = g.get("/api/history/characters/nobody_here").await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_tools_work_with_the_server_stopped_and_running() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    let seq0 = make_changes(&g).await;
    let ledger = s(&g.ledger_dir());
    let data = s(&g.data());
    for running in [true, false] {
        let (ok, out, err) = cli(
            &[
                "events",
                "--ledger",
                &ledger,
                "--type",
                "document_edited",
                "--json",
            ],
            "",
        );
        assert!(ok, "{err}");
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "running {running}: {out}");
        assert_eq!(lines[0]["slug"], "tifa_lockhart");
        let (ok, out, err) = cli(
            &["events", "--ledger", &ledger, "--newest", "--limit", "2"],
            "",
        );
        assert!(ok, "{err}");
        assert_eq!(out.lines().count(), 2);
        assert!(err.contains("--before"), "{err}");
        let (ok, out, err) = cli(
            &[
                "history",
                "--ledger",
                &ledger,
                "characters",
                "tifa_lockhart",
            ],
            "",
        );
        assert!(ok, "{err}");
        assert!(
            out.contains("document_edited") && out.contains("document_synced"),
            "{out}"
        );
        let hist = |extra: &[&str]| {
            let mut args = vec![
                "history",
                "--ledger",
                &ledger,
                "characters",
                "tifa_lockhart",
            ];
            args.extend_from_slice(extra);
            cli(&args, "")
        };
        let (ok, out, err) = hist(&["--json"]);
        assert!(ok, "{err}");
        let versions: Value = serde_json::from_str(&out).unwrap();
        let items = versions["items"].as_array().unwrap();
        let first = items.last().unwrap()["seq"].as_u64().unwrap();
        let (ok, out, err) = hist(&["--at", &first.to_string()]);
        assert!(ok, "{err}");
        assert!(out.contains("\"character_id\": \"tifa_lockhart\""), "{out}");
        assert!(!out.contains("ponytail"), "the text as it was then: {out}");
        let (ok, _, err) = hist(&["--at", &(first - 1).to_string()]);
        assert!(!ok && err.contains("not in the library"), "{err}");
        let edited = items[1]["seq"].as_u64().unwrap();
        let (ok, out, err) = hist(&["--diff", &format!("{first},{edited}")]);
        assert!(ok, "{err}");
        assert!(
            out.contains("identity::hair") && out.contains("+ [very long hair, ponytail]"),
            "{out}"
        );
        let (ok, _, err) = cli(&["history", "--ledger", &ledger, "hats", "x"], "");
        assert!(!ok && err.contains("unknown category"), "{err}");
        if running {
            g.stop();
        }
    }
    // Restore from the command line with the server stopped: it shows, asks, and does.
    let before = files(&g.data());
    let (ok, out, _) = cli(
        &[
            "restore",
            "--ledger",
            &ledger,
            "--data",
            &data,
            "--to",
            &seq0.to_string(),
        ],
        "n\n",
    );
    assert!(ok);
    assert!(
        out.contains("characters/tifa_lockhart") && out.contains("Not restored"),
        "{out}"
    );
    assert_eq!(files(&g.data()), before, "declined: nothing changed");
    let (ok, out, err) = cli(
        &[
            "restore",
            "--ledger",
            &ledger,
            "--data",
            &data,
            "--to",
            &seq0.to_string(),
            "--yes",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("Undo with: gaze restore --to"), "{out}");
    let undo_to: u64 = out.rsplit("--to ").next().unwrap().trim().parse().unwrap();
    assert_ne!(files(&g.data()), before);
    // … and with the server running, through its API.
    g.spawn();
    let (ok, out, err) = cli(
        &[
            "restore",
            "--ledger",
            &ledger,
            "--to",
            &undo_to.to_string(),
            "--yes",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("Restored"), "{out}");
    assert_eq!(files(&g.data()), before, "undone");
    // Audit of a job id that does not exist.
    let (ok, _, err) = cli(
        &["audit", "--ledger", &ledger, "01J00000000000000000000000"],
        "",
    );
    assert!(!ok && err.contains("no job"), "{err}");
    // No ledger at all.
    let (ok, _, err) = cli(&["events", "--ledger", "/nonexistent/ledger"], "");
    assert!(!ok && err.contains("no ledger"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_from_the_command_line_by_job_and_by_image_file() {
    let c = comfy(30).await;
    let mut g = gaze_with(&[&c], &[]);
    let id = generate(
        &g,
        json!({"category": "characters", "slug": "link", "seed": 5}),
    )
    .await;
    let j = wait_status(&g, &id, "done", SECOND * 20).await;
    let ledger = s(&g.ledger_dir());
    let image = g.uploads().join(
        j["images"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("/static/uploads/"),
    );
    assert!(image.exists(), "{}", image.display());
    let (ok, out, err) = cli(&["audit", "--ledger", &ledger, &id], "");
    assert!(ok, "{err}");
    let running: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(running["job_id"], id.as_str());
    assert_eq!(
        Some(&running["sent_graph"]),
        c.received(j["prompt_id"].as_str().unwrap()).as_ref()
    );
    g.stop();
    let (ok, out, err) = cli(&["audit", "--ledger", &ledger, &s(&image)], "");
    assert!(ok, "{err}");
    let stopped: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stopped["job_id"], id.as_str());
    assert_eq!(stopped["sent_graph"], running["sent_graph"]);
    assert_eq!(stopped["provenance"], running["provenance"]);
}

//! The workflow template is the user's file: written when missing, versioned in the ledger,
//! edits picked up by the watcher and used by the next job, broken files refused with the reason
//! while the last good version stays in use, and an unusable template refused at start-up.

use crate::jobs::{comfy, gaze_with, generate, wait_status};
use crate::support::app::{Gaze, eventually, sample_data};
use serde_json::{Value, json};
use std::time::Duration;

const BODY: &str = r#"{"category": "characters", "slug": "tifa_lockhart", "seed": 7}"#;

fn template_path(g: &Gaze) -> std::path::PathBuf {
    g.root().join("comfy_workflow.json")
}

async fn version(g: &Gaze) -> u64 {
    g.get("/api/workflow").await.1["version"].as_u64().unwrap()
}

/// A job's recipe and the graph the ComfyUI stand-in received for it.
async fn run_job(g: &Gaze, si: &crate::support::comfy_standin::StandIn) -> (Value, Value) {
    let id = generate(g, serde_json::from_str(BODY).unwrap()).await;
    let done = wait_status(g, &id, "done", Duration::from_secs(20)).await;
    let (_, recipe) = g.get(&format!("/api/jobs/{id}/recipe")).await;
    let sent = si
        .received(done["prompt_id"].as_str().unwrap())
        .expect("the stand-in got the job");
    (recipe, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_template_changes_the_next_job_and_a_broken_one_changes_nothing() {
    let si = comfy(0).await;
    let g = gaze_with(&[&si], &[]);
    // Written from the built-in copy on first start, and recorded as version 1 of the template.
    let path = template_path(&g);
    let shipped = std::fs::read_to_string(&path).unwrap();
    assert_eq!(shipped, gaze::engine::workflow::TEMPLATE_JSON);
    let v1 = version(&g).await;
    let (recipe, sent) = run_job(&g, &si).await;
    assert_eq!(recipe["recipe"]["template_version"], v1, "{recipe}");
    assert_eq!(sent["11"]["inputs"]["guide_size"], json!(512));

    // The user tunes the face detailer: the watcher picks the edit up.
    let mut t: Value = serde_json::from_str(&shipped).unwrap();
    t["11"]["inputs"]["guide_size"] = json!(768);
    t["11"]["inputs"]["denoise"] = json!(0.35);
    std::fs::write(&path, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async { version(&g).await > v1 }).await,
        "the edit was not picked up:\n{}",
        g.log()
    );
    let v2 = version(&g).await;
    let (recipe, sent) = run_job(&g, &si).await;
    assert_eq!(recipe["recipe"]["template_version"], v2);
    assert_eq!(sent["11"]["inputs"]["guide_size"], json!(768));
    assert_eq!(sent["11"]["inputs"]["denoise"], json!(0.35));
    assert_eq!(
        recipe["recipe"]["workflow"]["11"]["inputs"]["guide_size"],
        json!(768)
    );

    // A broken file (a LoRA slot removed) is refused with the reason; version 2 stays in use.
    let mut broken = t.clone();
    broken.as_object_mut().unwrap().remove("19");
    std::fs::write(&path, serde_json::to_string_pretty(&broken).unwrap()).unwrap();
    let refused = eventually(Duration::from_secs(5), || async {
        g.get("/api/failures").await.1["workflow"].is_object()
    })
    .await;
    assert!(refused, "no failure recorded:\n{}", g.log());
    let (_, f) = g.get("/api/failures").await;
    let error = f["workflow"]["error"].as_str().unwrap();
    assert!(error.contains("node 19 (LoraLoader) is missing"), "{error}");
    assert_eq!(version(&g).await, v2);
    let (_, sent) = run_job(&g, &si).await;
    assert_eq!(sent["11"]["inputs"]["guide_size"], json!(768));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        serde_json::to_string_pretty(&broken).unwrap(),
        "the broken file is left as the user wrote it"
    );

    // Not JSON at all: refused too, once.
    std::fs::write(&path, "{ not json").unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            g.get("/api/failures").await.1["workflow"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("invalid JSON"))
        })
        .await
    );
    let (_, ev) = g.get("/api/events?limit=1000").await;
    let refusals = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "workflow_refused")
        .count();
    assert_eq!(refusals, 2);

    // Fixed again: a new version, and the failure is gone.
    std::fs::write(&path, serde_json::to_string_pretty(&t).unwrap()).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            g.get("/api/failures").await.1["workflow"].is_null()
        })
        .await
    );
    assert!(version(&g).await > v2);
    si.shutdown().await;
}

#[test]
fn a_template_missing_node_19_is_refused_at_start_up_naming_it() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    g.stop();
    // A fresh ledger and a template without node 19.
    std::fs::remove_dir_all(g.ledger_dir()).unwrap();
    let mut t: Value = serde_json::from_str(gaze::engine::workflow::TEMPLATE_JSON).unwrap();
    t.as_object_mut().unwrap().remove("19");
    std::fs::write(template_path(&g), t.to_string()).unwrap();
    let (status, stderr) = g.run_to_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("node 19 (LoraLoader) is missing"),
        "{stderr}"
    );
    assert!(stderr.contains("comfy_workflow.json"), "{stderr}");
}

#[tokio::test]
async fn a_template_broken_while_stopped_leaves_the_last_good_version_in_use() {
    let mut g = Gaze::start(Some(&sample_data()), &["--no-watch"]);
    let v1 = version(&g).await;
    g.stop();
    std::fs::write(template_path(&g), "[]").unwrap();
    g.spawn();
    assert_eq!(version(&g).await, v1);
    let (_, f) = g.get("/api/failures").await;
    assert!(
        f["workflow"]["error"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"),
        "{f}"
    );
    let (status, preview) = g.post("/api/preview", BODY).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["template_version"], v1);
    // A rescan after the fix takes the file in again.
    std::fs::write(template_path(&g), gaze::engine::workflow::TEMPLATE_JSON).unwrap();
    let (status, _) = g.post("/api/rescan", "").await;
    assert_eq!(status, 200);
    assert!(version(&g).await > v1);
    assert!(g.get("/api/failures").await.1["workflow"].is_null());
}

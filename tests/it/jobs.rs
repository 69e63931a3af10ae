//! Generation through the job reactor against the ComfyUI stand-in: results saved with their
//! metadata, covers, and the faults every peer tool loses work to.

use crate::support::app::{Gaze, eventually};
use crate::support::comfy_standin::{self, Mode, StandIn, StandInConfig};
use crate::support::sample::{sample_data, sample_models};
use serde_json::{Value, json};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

pub async fn comfy(exec_ms: u64) -> StandIn {
    let (checkpoints, loras, vaes) = sample_models();
    comfy_standin::start(StandInConfig {
        checkpoints,
        loras,
        vaes,
        exec_time: Duration::from_millis(exec_ms),
        impact_pack: true,
    })
    .await
}

pub fn gaze_with(comfys: &[&StandIn], extra: &[&str]) -> Gaze {
    let mut args: Vec<String> = Vec::new();
    for c in comfys {
        args.push("--comfy".into());
        args.push(c.url());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Gaze::start(Some(&sample_data()), &refs)
}

pub async fn generate(g: &Gaze, body: Value) -> String {
    let (status, v) = g.post("/api/generate", &body.to_string()).await;
    assert_eq!(status, 202, "{v}");
    v["job_id"].as_str().unwrap().to_string()
}

pub async fn job(g: &Gaze, id: &str) -> Value {
    g.get(&format!("/api/jobs/{id}")).await.1
}

pub async fn wait_status(g: &Gaze, id: &str, want: &str, timeout: Duration) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let last = job(g, id).await;
        if last["status"] == want {
            return last;
        }
        if std::time::Instant::now() > deadline {
            panic!("job {id} did not become {want}: {last}\nlog:\n{}", g.log());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn endless_done(g: &Gaze, endless: &str) -> usize {
    let (_, jobs) = g.get("/api/jobs?limit=1000&status=done").await;
    jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["endless"] == endless)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_generated_image_is_saved_with_its_metadata_and_can_replace_the_cover() {
    let c = comfy(50).await;
    let g = gaze_with(&[&c], &[]);
    let id = generate(
        &g,
        json!({"category": "characters", "slug": "tifa_lockhart", "seed": 123}),
    )
    .await;
    let done = wait_status(&g, &id, "done", SECOND * 10).await;
    let image = done["images"][0].as_str().unwrap().to_string();
    assert!(
        image.starts_with(&format!(
            "/static/uploads/characters/tifa_lockhart/{}_0.",
            id.to_lowercase()
        )),
        "{image}"
    );
    let prompt_id = done["prompt_id"].as_str().unwrap();
    assert_eq!(c.executions(prompt_id), 1);
    let bytes = g
        .http
        .get(format!("{}{image}", g.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let texts = gaze::jobs::png::read_text(&bytes).unwrap();
    let keys: Vec<&str> = texts.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"prompt"),
        "ComfyUI's own chunk is kept: {keys:?}"
    );
    let gaze_meta: Value =
        serde_json::from_str(&texts.iter().find(|(k, _)| k == "gaze").unwrap().1).unwrap();
    assert_eq!(gaze_meta["job"], id.as_str());
    assert_eq!(gaze_meta["seed"], 123);
    let params = &texts.iter().find(|(k, _)| k == "parameters").unwrap().1;
    assert!(
        params.contains("Negative prompt: ") && params.contains("Seed: 123"),
        "{params}"
    );
    // What ComfyUI received is the recipe's workflow as sent for this submission (its save
    // node named after the prompt id).
    let (_, r) = g.get(&format!("/api/jobs/{id}/recipe")).await;
    assert_eq!(
        Some(gaze::engine::workflow::sent_graph(
            &r["recipe"]["workflow"],
            false,
            prompt_id
        )),
        c.received(prompt_id)
    );
    let (_, st) = g.get(&format!("/api/queue/{id}/status")).await;
    assert_eq!(st["status"], "done");
    assert_eq!(st["result"]["images"][0], image.as_str());
    // A preview leaves the cover alone; "replace" makes the image the cover.
    let (_, entry) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(entry["cover"], Value::Null);
    let id2 = generate(
        &g,
        json!({"category": "characters", "slug": "tifa_lockhart", "action": "replace"}),
    )
    .await;
    let done2 = wait_status(&g, &id2, "done", SECOND * 10).await;
    let (_, entry) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(entry["cover"], done2["images"][0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_with_fifty_jobs_queued_runs_every_job_exactly_once() {
    let c = comfy(40).await;
    let mut g = gaze_with(&[&c], &[]);
    let (_, chars) = g.get("/api/library/characters").await;
    let slugs: Vec<String> = chars["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["slug"].as_str().unwrap().to_string())
        .collect();
    let mut ids = Vec::new();
    for i in 0..50 {
        let slug = &slugs[i % slugs.len()];
        ids.push(
            generate(
                &g,
                json!({"category": "characters", "slug": slug, "seed": i}),
            )
            .await,
        );
    }
    // Kill while some are done, some running and most still queued.
    assert!(
        eventually(SECOND * 10, || async { c.total_executions() >= 3 }).await,
        "work started"
    );
    g.kill9();
    let before = c.total_executions();
    assert!(before < 50, "killed mid-work ({before} done)");
    g.spawn();
    for id in &ids {
        let j = wait_status(&g, id, "done", SECOND * 60).await;
        let pid = j["prompt_id"].as_str().unwrap();
        assert_eq!(c.executions(pid), 1, "job {id} ran exactly once");
        let image = j["images"][0].as_str().unwrap();
        let path = g
            .uploads()
            .join(image.trim_start_matches("/static/uploads/"));
        assert!(path.exists(), "{}", path.display());
    }
    assert_eq!(c.total_executions(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comfyui_down_then_up_loses_nothing_and_says_why_jobs_wait() {
    let c = comfy(30).await;
    let g = gaze_with(&[&c], &[]);
    c.go_down().await;
    let mut ids = Vec::new();
    for seed in 0..5 {
        ids.push(
            generate(
                &g,
                json!({"category": "scenes", "slug": "beach", "seed": seed}),
            )
            .await,
        );
    }
    assert!(
        eventually(SECOND * 5, || async {
            let j = job(&g, &ids[0]).await;
            j["status"] == "pending" && j["waiting"].is_string()
        })
        .await,
        "the wait reason is visible: {}",
        job(&g, &ids[0]).await
    );
    let (_, st) = g.get("/api/status/comfyui").await;
    assert_eq!(st["online"], false);
    tokio::time::sleep(SECOND).await;
    for id in &ids {
        assert_eq!(
            job(&g, id).await["status"],
            "pending",
            "nothing failed while down"
        );
    }
    c.come_up().await;
    for id in &ids {
        let j = wait_status(&g, id, "done", SECOND * 20).await;
        assert_eq!(c.executions(j["prompt_id"].as_str().unwrap()), 1);
    }
    let (_, st) = g.get("/api/status/comfyui").await;
    assert_eq!(st["online"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_comfyui_restart_that_forgets_the_job_is_resubmitted_with_the_same_id() {
    let c = comfy(2500).await;
    let g = gaze_with(&[&c], &[]);
    let id = generate(
        &g,
        json!({"category": "styles", "slug": "watercolor", "seed": 5}),
    )
    .await;
    assert!(
        eventually(SECOND * 10, || async { c.running().is_some() }).await,
        "running"
    );
    let pid = c.running().unwrap();
    c.restart_forget();
    let j = wait_status(&g, &id, "done", SECOND * 20).await;
    assert_eq!(
        j["prompt_id"],
        pid.as_str(),
        "same prompt id after the restart"
    );
    assert_eq!(
        c.executions(&pid),
        1,
        "the forgotten run is not counted; the new one is"
    );
    assert!(j["attempts"].as_u64().unwrap() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_retry_pause_and_set_aside() {
    // Long runs, so the cancel surely lands while the job is running, even on a loaded machine.
    let c = comfy(3000).await;
    let g = gaze_with(&[&c], &["--paused"]);
    let (_, q) = g.get("/api/queue").await;
    assert_eq!(q["paused"], true, "--paused starts the queue paused");
    let a = generate(
        &g,
        json!({"category": "actions", "slug": "sitting", "seed": 1}),
    )
    .await;
    let b = generate(
        &g,
        json!({"category": "actions", "slug": "waving", "seed": 2}),
    )
    .await;
    tokio::time::sleep(SECOND).await;
    assert_eq!(c.posts(), 0, "nothing is sent while paused");
    assert_eq!(job(&g, &a).await["waiting"], "the queue is paused");
    // Cancel a pending job: it never reaches ComfyUI.
    let (status, v) = g.post(&format!("/api/jobs/{b}/cancel"), "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    g.post("/api/queue/resume", "").await;
    // Cancel a running job: interrupted by prompt id.
    assert!(eventually(SECOND * 10, || async { c.running().is_some() }).await);
    let (status, _) = g.post(&format!("/api/jobs/{a}/cancel"), "").await;
    assert_eq!(status, 200);
    assert!(
        eventually(SECOND * 5, || async {
            c.running().is_none() && c.queue_len() == 0
        })
        .await,
        "interrupted at ComfyUI"
    );
    assert_eq!(job(&g, &a).await["status"], "cancelled");
    assert_eq!(c.total_executions(), 1, "only the interrupted run");
    c.set_exec_time(Duration::from_millis(50));
    let (status, _) = g.post(&format!("/api/jobs/{a}/cancel"), "").await;
    assert_eq!(status, 409, "a finished job cannot be cancelled");
    // Retry makes a new job linked to the old one, with the same recipe.
    let (status, r) = g.post(&format!("/api/jobs/{a}/retry"), "").await;
    assert_eq!(status, 200, "{r}");
    let retried = r["job_id"].as_str().unwrap().to_string();
    let j = wait_status(&g, &retried, "done", SECOND * 10).await;
    assert_eq!(j["retry_of"], a.as_str());
    let (_, ra) = g.get(&format!("/api/jobs/{a}/recipe")).await;
    let (_, rb) = g.get(&format!("/api/jobs/{retried}/recipe")).await;
    assert_eq!(ra["recipe"], rb["recipe"]);

    // The same execution error three times: set aside, not retried forever.
    c.set_exec_time(Duration::from_millis(20));
    c.fail_next(10, "CUDA out of memory");
    let bad = generate(
        &g,
        json!({"category": "actions", "slug": "reading", "seed": 3}),
    )
    .await;
    let j = wait_status(&g, &bad, "failed", SECOND * 20).await;
    assert_eq!(j["state"], "SetAside", "{j}");
    assert_eq!(j["failures"].as_array().unwrap().len(), 3);
    assert!(j["error"].as_str().unwrap().contains("CUDA out of memory"));
    let (_, st) = g.get(&format!("/api/queue/{bad}/status")).await;
    assert_eq!(st["set_aside"], true);
}

/// A sample outfit whose document names a LoRA, and that LoRA.
async fn outfit_with_lora(g: &Gaze) -> (String, String) {
    let (_, outfits) = g.get("/api/library/outfits").await;
    for item in outfits["items"].as_array().unwrap() {
        let slug = item["slug"].as_str().unwrap();
        let (_, d) = g.get(&format!("/api/library/outfits/{slug}")).await;
        if let Some(l) = d["data"]["lora"]["lora_name"]
            .as_str()
            .filter(|l| !l.is_empty())
        {
            return (slug.to_string(), l.to_string());
        }
    }
    panic!("no sample outfit with a LoRA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lora_the_backend_lacks_fails_before_sending_with_the_node_named() {
    let c = comfy(20).await;
    c.set_loras(vec!["Illustrious/Looks/other.safetensors".into()]);
    let g = gaze_with(&[&c], &[]);
    let (slug, lora) = outfit_with_lora(&g).await;
    let id = generate(&g, json!({"category": "outfits", "slug": slug})).await;
    let j = wait_status(&g, &id, "failed", SECOND * 10).await;
    assert_eq!(j["state"], "Failed");
    assert_eq!(j["error_node"], "17", "{j}");
    let err = j["error"].as_str().unwrap();
    assert!(
        err.starts_with("not sent: value_not_in_list at node 17"),
        "{err}"
    );
    assert!(err.contains("lora_name") && err.contains(&lora), "{err}");
    assert_eq!(c.posts(), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workflow_comfyui_refuses_fails_with_its_message_per_node() {
    let c = comfy(20).await;
    let g = gaze_with(&[&c], &[]);
    let (slug, lora) = outfit_with_lora(&g).await;
    // GAZE has read the backend's lists (with the LoRA) once the backend is healthy...
    assert!(
        eventually(SECOND * 5, || async {
            g.get("/api/status/comfyui").await.1["online"] == true
        })
        .await
    );
    // ...and the LoRA disappears from ComfyUI after that: only ComfyUI can say so now.
    let others: Vec<String> = comfy_standin::StandInConfig::default()
        .loras
        .into_iter()
        .filter(|l| *l != lora)
        .collect();
    c.set_loras(others);
    let id = generate(&g, json!({"category": "outfits", "slug": slug})).await;
    let j = wait_status(&g, &id, "failed", SECOND * 10).await;
    assert_eq!(j["error_node"], "17", "{j}");
    let err = j["error"].as_str().unwrap();
    assert!(
        err.starts_with("ComfyUI refused the workflow: node 17 (LoraLoader) lora_name"),
        "{err}"
    );
    assert!(err.contains("not in"), "{err}");
    assert_eq!(j["state"], "Failed", "a refused workflow is not retried");
    assert_eq!(c.posts(), 0, "ComfyUI accepted nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_backends_share_the_load_and_vanilla_ones_get_vanilla_workflows() {
    let a = comfy(150).await;
    let b = comfy(150).await;
    b.set_impact_pack(false);
    let g = gaze_with(&[&a, &b], &[]);
    let mut ids = Vec::new();
    for seed in 0..12 {
        ids.push(
            generate(
                &g,
                json!({"category": "characters", "slug": "link", "seed": seed}),
            )
            .await,
        );
    }
    let mut on_b = 0;
    for id in &ids {
        let j = wait_status(&g, id, "done", SECOND * 30).await;
        if j["backend"] == b.url().as_str() {
            on_b += 1;
            assert_eq!(j["vanilla"], true);
            let sent = b.received(j["prompt_id"].as_str().unwrap()).unwrap();
            assert!(
                !sent.to_string().contains("FaceDetailer"),
                "no Impact Pack nodes go to a vanilla backend"
            );
        } else {
            assert_eq!(j["vanilla"], false);
        }
    }
    assert!(
        (3..=9).contains(&on_b),
        "both backends worked: {on_b} of 12 on b"
    );
    assert_eq!(a.total_executions() + b.total_executions(), 12);
    let (_, st) = g.get("/api/status/comfyui").await;
    assert_eq!(st["backends"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_sweeps_and_endless_generation() {
    let c = comfy(20).await;
    let mut g = gaze_with(&[&c], &[]);
    // Missing covers: one job per scene, each result becomes the cover.
    let (status, v) = g
        .post("/api/generate_missing", r#"{"category": "scenes"}"#)
        .await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<String> = v["job_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().into())
        .collect();
    let (_, scenes) = g.get("/api/library/scenes").await;
    assert_eq!(ids.len(), scenes["items"].as_array().unwrap().len());
    for id in &ids {
        wait_status(&g, id, "done", SECOND * 20).await;
    }
    let (_, scenes) = g.get("/api/library/scenes").await;
    assert!(
        scenes["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["cover"].is_string())
    );
    let (_, v) = g
        .post("/api/generate_missing", r#"{"category": "scenes"}"#)
        .await;
    assert_eq!(v["job_ids"], json!([]), "nothing is missing any more");

    // A strengths sweep of the character's LoRA.
    let (status, v) = g
        .post(
            "/api/strengths",
            r#"{"category": "characters", "slug": "tifa_lockhart", "seed": 9, "min": 0.2, "max": 1.0, "step": 0.4}"#,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let sweep: Vec<String> = v["job_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().into())
        .collect();
    assert_eq!(sweep.len(), 3);
    let mut weights = Vec::new();
    for id in &sweep {
        let j = wait_status(&g, id, "done", SECOND * 20).await;
        let sent = c.received(j["prompt_id"].as_str().unwrap()).unwrap();
        weights.push(sent["16"]["inputs"]["strength_model"].as_f64().unwrap());
        assert_eq!(sent["3"]["inputs"]["seed"], 9);
    }
    assert_eq!(weights, [0.2, 0.6, 1.0]);

    // Endless generation keeps going, survives a restart, and stops when told.
    let (status, v) = g
        .post(
            "/api/endless",
            r#"{"category": "styles", "slug": "pixel_art"}"#,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let endless = v["endless_id"].as_str().unwrap().to_string();
    assert!(
        eventually(SECOND * 10, || async {
            endless_done(&g, &endless).await >= 3
        })
        .await
    );
    g.restart();
    let after_restart = endless_done(&g, &endless).await;
    assert!(
        eventually(SECOND * 10, || async {
            endless_done(&g, &endless).await >= after_restart + 2
        })
        .await,
        "endless generation goes on after a restart"
    );
    let (status, _) = g.delete(&format!("/api/endless/{endless}")).await;
    assert_eq!(status, 200);
    tokio::time::sleep(SECOND).await;
    let settled = endless_done(&g, &endless).await;
    tokio::time::sleep(SECOND).await;
    assert!(endless_done(&g, &endless).await <= settled + 1, "stopped");
    let (_, list) = g.get("/api/endless").await;
    assert_eq!(list["endless"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_generation_requests_are_refused() {
    let c = comfy(20).await;
    let g = gaze_with(&[&c], &[]);
    for (path, body, want) in [
        ("/api/generate", "{", 400),
        (
            "/api/generate",
            r#"{"category": "characters", "slug": "nobody"}"#,
            404,
        ),
        ("/api/generate_missing", r#"{"category": "weapons"}"#, 404),
        (
            "/api/strengths",
            r#"{"category": "checkpoints", "slug": "x"}"#,
            404,
        ),
        (
            "/api/strengths",
            r#"{"category": "characters", "slug": "link", "min": "a"}"#,
            400,
        ),
        ("/api/jobs/not-a-job/cancel", "", 404),
        ("/api/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry", "", 404),
    ] {
        let (status, v) = g.post(path, body).await;
        assert_eq!(status, want, "{path} {body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    assert_eq!(c.posts(), 0);
    let _ = Mode::Normal;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comfyui_answering_500_or_garbage_makes_jobs_wait_not_fail() {
    let c = comfy(20).await;
    let g = gaze_with(&[&c], &[]);
    for mode in [Mode::Error500, Mode::Garbage] {
        c.set_mode(mode);
        let id = generate(
            &g,
            json!({"category": "detailers", "slug": "detailed_eyes"}),
        )
        .await;
        assert!(
            eventually(SECOND * 5, || async {
                job(&g, &id).await["waiting"].is_string()
            })
            .await,
            "the reason is shown: {}",
            job(&g, &id).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(job(&g, &id).await["status"], "pending");
        c.set_mode(Mode::Normal);
        let j = wait_status(&g, &id, "done", SECOND * 20).await;
        assert_eq!(c.executions(j["prompt_id"].as_str().unwrap()), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_waiting_in_comfyuis_queue_is_deleted_there_when_cancelled() {
    // The first job runs long enough that the second is surely still waiting when cancelled,
    // even on a loaded machine.
    let c = comfy(4000).await;
    let g = gaze_with(&[&c], &[]);
    let first = generate(
        &g,
        json!({"category": "scenes", "slug": "shrine", "seed": 1}),
    )
    .await;
    let second = generate(
        &g,
        json!({"category": "scenes", "slug": "shrine", "seed": 2}),
    )
    .await;
    assert!(
        eventually(SECOND * 5, || async { c.queue_len() == 2 }).await,
        "both are at ComfyUI, one running and one pending"
    );
    let (status, _) = g.post(&format!("/api/jobs/{second}/cancel"), "").await;
    assert_eq!(status, 200);
    assert!(
        eventually(SECOND * 5, || async { c.queue_len() == 1 }).await,
        "deleted from ComfyUI's queue"
    );
    let j = wait_status(&g, &first, "done", SECOND * 20).await;
    assert_eq!(c.executions(j["prompt_id"].as_str().unwrap()), 1);
    let cancelled = job(&g, &second).await;
    assert_eq!(cancelled["status"], "cancelled");
    // Its prompt id may not have been recorded if the cancel overtook the submission record.
    let pid =
        gaze::jobs::comfy::prompt_id_for(u128::from(ulid::Ulid::from_string(&second).unwrap()));
    assert_eq!(c.executions(&pid), 0, "it never ran");
    assert!(
        c.history_entry(&pid).is_none(),
        "not even interrupted: it was deleted"
    );
    assert_eq!(c.total_executions(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_can_generate_through_the_originals_route() {
    let c = comfy(10).await;
    let g = gaze_with(&[&c], &[]);
    for (singular, category) in gaze::library::category::DESCRIPTORS
        .iter()
        .map(|d| (d.singular, d.key))
    {
        let (_, list) = g.get(&format!("/api/library/{category}")).await;
        let slug = list["items"][0]["slug"].as_str().unwrap().to_string();
        let body = if category == "characters" || category == "looks" || category == "presets" {
            json!({})
        } else {
            json!({"character": "__random__"})
        };
        let (status, v) = g
            .post(&format!("/{singular}/{slug}/generate"), &body.to_string())
            .await;
        assert_eq!(status, 200, "{singular}: {v}");
        let id = v["job_id"].as_str().unwrap().to_string();
        let j = wait_status(&g, &id, "done", SECOND * 20).await;
        assert_eq!(j["target"], format!("{category}/{slug}"));
        assert!(
            j["images"][0]
                .as_str()
                .unwrap()
                .starts_with(&format!("/static/uploads/{category}/{slug}/"))
        );
    }
    let (status, _) = g.post("/weapon/sword/generate", "{}").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_stream_job_changes_and_progress() {
    let c = comfy(400).await;
    let g = gaze_with(&[&c], &[]);
    let mut resp = g
        .http
        .get(format!("{}/api/stream", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let id = generate(
        &g,
        json!({"category": "characters", "slug": "link", "seed": 4}),
    )
    .await;
    let mut text = String::new();
    let deadline = std::time::Instant::now() + SECOND * 15;
    while !text.contains("\"status\":\"done\"") && std::time::Instant::now() < deadline {
        match tokio::time::timeout(SECOND, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    assert!(text.contains("event: job"), "{text}");
    assert!(text.contains(&format!("\"job_id\":\"{id}\"")), "{text}");
    assert!(text.contains("\"status\":\"running\""), "{text}");
    assert!(text.contains("\"status\":\"done\""), "{text}");
    assert!(
        text.contains("event: progress"),
        "step x of y is relayed: {text}"
    );
}

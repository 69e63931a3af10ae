//! The queue under load: group commit with many clients and a SIGKILL in the middle, refusals
//! next to accepted requests in the same commit, and compact recipes read back exactly.

use crate::jobs::{comfy, gaze_with, generate, wait_status};
use crate::support::app::{Gaze, sample_data};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every event of a kind, paging through `/api/events`.
async fn events_of(g: &Gaze, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (status, v) = g
            .get(&format!("/api/events?after={after}&limit=1000"))
            .await;
        assert_eq!(status, 200, "{v}");
        let list = v["events"].as_array().unwrap();
        if list.is_empty() {
            return out;
        }
        after = list.last().unwrap()["seq"].as_u64().unwrap();
        out.extend(list.iter().filter(|e| e["type"] == kind).cloned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_many_clients_loses_no_acknowledged_request_and_doubles_none() {
    let mut g = Gaze::start(Some(&sample_data()), &["--paused"]);
    // Job id → the seed its request asked for, for every 202.
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let clients = 24u64;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, url, acked) = (g.http.clone(), g.url.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let seed = c * 1_000_000 + i;
                let body = json!({"category": "characters", "slug": "tifa_lockhart", "seed": seed});
                let sent = http
                    .post(format!("{url}/api/generate"))
                    .json(&body)
                    .send()
                    .await;
                let Ok(r) = sent else { return };
                if r.status() != 202 {
                    return;
                }
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                let id = v["job_id"].as_str().unwrap().to_string();
                acked.lock().unwrap().insert(id, seed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    g.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the clients made progress before the kill ({} requests)",
        acked.len()
    );

    g.spawn();
    let requested: Vec<String> = events_of(&g, "job_requested")
        .await
        .iter()
        .map(|e| e["job"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = requested.iter().collect();
    assert_eq!(unique.len(), requested.len(), "no job is requested twice");
    // Requests in flight at the kill may have committed without their answer: one per client.
    assert!(
        requested.len() >= acked.len() && requested.len() <= acked.len() + clients as usize,
        "{} requests recorded, {} acknowledged",
        requested.len(),
        acked.len()
    );
    let (_, q) = g.get("/api/jobs?limit=1").await;
    assert_eq!(q["pending"], requested.len(), "all of them are queued");
    // Each acknowledged id is there, with the request that id was given for.
    let mut checked = 0;
    for (id, seed) in &acked {
        assert!(unique.contains(id), "acknowledged job {id} is missing");
        if checked < 200 {
            let (status, r) = g.get(&format!("/api/jobs/{id}/recipe")).await;
            assert_eq!(status, 200, "{r}");
            assert_eq!(r["recipe"]["seed"], *seed, "job {id}");
            assert_eq!(r["request"]["seed"], *seed, "job {id}");
            checked += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_next_to_accepted_requests_write_nothing_of_their_own() {
    let g = Gaze::start(Some(&sample_data()), &["--paused"]);
    let mut ids = Vec::new();
    for seed in 0..20 {
        ids.push(
            generate(
                &g,
                json!({"category": "characters", "slug": "link", "seed": seed}),
            )
            .await,
        );
    }
    // At once: two cancels of each even job (exactly one of each pair can win), a retry of
    // each odd one (refused: still pending), cancels of an unknown job, and new requests.
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut paths = vec!["/api/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel".to_string()];
        if i % 2 == 0 {
            paths.push(format!("/api/jobs/{id}/cancel"));
            paths.push(format!("/api/jobs/{id}/cancel"));
        } else {
            paths.push(format!("/api/jobs/{id}/retry"));
        }
        for path in paths {
            let (http, url) = (g.http.clone(), g.url.clone());
            tasks.push(tokio::spawn(async move {
                let r = http.post(format!("{url}{path}")).send().await.unwrap();
                (path, r.status().as_u16())
            }));
        }
        let (http, url) = (g.http.clone(), g.url.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"category": "characters", "slug": "link", "seed": 1000 + i});
            let r = http
                .post(format!("{url}/api/generate"))
                .json(&body)
                .send()
                .await
                .unwrap();
            ("generate".to_string(), r.status().as_u16())
        }));
    }
    let mut counts: HashMap<(String, u16), usize> = HashMap::new();
    for t in tasks {
        let (path, status) = t.await.unwrap();
        let kind = path.rsplit('/').next().unwrap().to_string();
        let kind = if path.contains("01ARZ3") {
            "unknown".into()
        } else {
            kind
        };
        *counts.entry((kind, status)).or_default() += 1;
    }
    let n = ids.len();
    let half = n / 2;
    assert_eq!(
        counts.get(&("cancel".into(), 200)),
        Some(&half),
        "{counts:?}"
    );
    assert_eq!(
        counts.get(&("cancel".into(), 409)),
        Some(&half),
        "{counts:?}"
    );
    assert_eq!(
        counts.get(&("retry".into(), 409)),
        Some(&half),
        "{counts:?}"
    );
    assert_eq!(counts.get(&("unknown".into(), 404)), Some(&n), "{counts:?}");
    assert_eq!(
        counts.get(&("generate".into(), 202)),
        Some(&n),
        "{counts:?}"
    );
    assert_eq!(counts.len(), 5, "{counts:?}");
    let cancelled: Vec<Value> = events_of(&g, "job_cancelled").await;
    let once: HashSet<&str> = cancelled
        .iter()
        .map(|e| e["job"].as_str().unwrap())
        .collect();
    assert_eq!(cancelled.len(), half, "one cancellation per job");
    assert_eq!(once.len(), half);
    assert_eq!(
        events_of(&g, "job_requested").await.len(),
        2 * n,
        "no retry was recorded"
    );
    let (_, done) = g.get("/api/jobs?status=cancelled&limit=1000").await;
    assert_eq!(done["jobs"].as_array().unwrap().len(), half);
    assert_eq!(done["pending"], 2 * n - half);
}

async fn recipes(g: &Gaze, jobs: &[(String, String)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (id, _) in jobs {
        let (status, r) = g.get(&format!("/api/jobs/{id}/recipe")).await;
        assert_eq!(status, 200, "{r}");
        out.push(r["recipe"].clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compact_recipes_read_back_as_sent_before_and_after_a_restart() {
    let c = comfy(0).await;
    let mut g = gaze_with(&[&c], &[]);
    let mut jobs = Vec::new();
    for (slug, seed) in [("tifa_lockhart", 1), ("tifa_lockhart", 2), ("link", 3)] {
        let id = generate(
            &g,
            json!({"category": "characters", "slug": slug, "seed": seed}),
        )
        .await;
        let done = wait_status(&g, &id, "done", Duration::from_secs(20)).await;
        jobs.push((id, done["prompt_id"].as_str().unwrap().to_string()));
    }
    let before = recipes(&g, &jobs).await;
    for ((id, prompt_id), recipe) in jobs.iter().zip(&before) {
        // What ComfyUI received is the recipe's graph as sent (the audit derives it).
        let (_, audit) = g.get(&format!("/api/audit/jobs/{id}")).await;
        assert_eq!(&audit["recipe"], recipe);
        assert_eq!(Some(&audit["sent_graph"]), c.received(prompt_id).as_ref());
    }
    let requested = events_of(&g, "job_requested").await;
    let compact = requested
        .iter()
        .filter(|e| e["spec"]["recipe_patch"].is_object())
        .count();
    assert_eq!(
        compact, 2,
        "the second Tifa and Link are patches: {requested:?}"
    );
    // Every request, compact or not, shows its recipe's exact text in the event log.
    for (e, recipe) in requested.iter().zip(&before) {
        let text = e["spec"]["recipe"].as_str().unwrap();
        assert_eq!(&serde_json::from_str::<Value>(text).unwrap(), recipe);
    }
    g.restart();
    assert_eq!(recipes(&g, &jobs).await, before);
    let (_, list) = g.get("/api/jobs?status=done&limit=10").await;
    let listed: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = jobs.iter().rev().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        listed, want,
        "finished jobs, newest first, read back after a restart"
    );
    assert!(
        list["jobs"][0]["images"][0]
            .as_str()
            .unwrap()
            .starts_with("/static/uploads/characters/link/")
    );
}

/// An HTML page's text.
async fn page(g: &Gaze, path: &str) -> String {
    let r = g.http.get(format!("{}{path}", g.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// Posts a form as the page scripts do, with the page's CSRF token; (status, JSON).
async fn ajax(g: &Gaze, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let home = page(g, "/library").await;
    let token = home
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_string();
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let mut body = format!("csrf={}", enc(&token));
    for (k, v) in pairs {
        body.push_str(&format!("&{}={}", enc(k), enc(v)));
    }
    let r = g
        .http
        .post(format!("{}{path}", g.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-requested-with", "XMLHttpRequest")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_show_finished_jobs_read_back_from_the_ledger() {
    let c = comfy(0).await;
    let mut g = gaze_with(&[&c], &[]);
    let mut done = Vec::new();
    for (slug, seed) in [("tifa_lockhart", 1), ("tifa_lockhart", 2), ("link", 3)] {
        let id = generate(
            &g,
            json!({"category": "characters", "slug": slug, "seed": seed}),
        )
        .await;
        let j = wait_status(&g, &id, "done", Duration::from_secs(20)).await;
        let image = j["images"][0].as_str().unwrap().to_string();
        done.push((id, image));
    }
    let (first, older) = &done[0];
    let newer = &done[1].1;
    let links = &done[2].1;
    for restarted in [false, true] {
        if restarted {
            g.restart();
        }
        // The entry's latest preview is its newest job's image.
        let tifa = page(&g, "/character/tifa_lockhart").await;
        assert!(
            tifa.contains(&format!("data-full=\"{newer}\"")),
            "{restarted}"
        );
        assert!(!tifa.contains(older.as_str()));
        // A finished job's panel shows its outcome and images.
        let with_job = page(&g, &format!("/character/tifa_lockhart?job={first}")).await;
        assert!(with_job.contains(&format!("data-job=\"{first}\"")));
        assert!(with_job.contains("Done"));
        assert!(with_job.contains(&format!("data-full=\"{older}\"")));
        // Sorted by when they last got an image: Link, then Tifa.
        let gallery = page(&g, "/?sort=generated").await;
        let at = |slug: &str| gallery.find(&format!("id=\"card-{slug}\"")).unwrap();
        assert!(at("link") < at("tifa_lockhart"), "{restarted}");
    }
    // Any image a job of the page made can become its cover, also an older one; another
    // page's cannot.
    let (status, v) = ajax(
        &g,
        "/character/tifa_lockhart/replace_cover_from_preview",
        &[("image", older)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, e) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(e["cover"].as_str(), Some(older.as_str()));
    let (status, v) = ajax(
        &g,
        "/character/tifa_lockhart/replace_cover_from_preview",
        &[("image", links)],
    )
    .await;
    assert_eq!(status, 400, "{v}");
}

/// History over jobs whose recipes are stored compactly and that have finished (kept as ids
/// by the jobs projection): audits, recipe diffs, runs again, an entry's images per version,
/// stale covers, verify, and an export imported into a new ledger that reads every recipe back
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_reads_finished_jobs_with_compact_recipes() {
    let c = comfy(0).await;
    let mut g = gaze_with(&[&c], &[]);
    let mut jobs = Vec::new();
    for seed in [11, 12, 13] {
        let id = generate(
            &g,
            json!({"category": "characters", "slug": "tifa_lockhart", "seed": seed, "action": "replace"}),
        )
        .await;
        wait_status(&g, &id, "done", Duration::from_secs(20)).await;
        jobs.push(id);
    }
    let requested = events_of(&g, "job_requested").await;
    assert!(
        requested
            .iter()
            .filter(|e| e["spec"]["recipe_patch"].is_object())
            .count()
            >= 2,
        "{requested:?}"
    );
    let recipes: Vec<Value> = recipes(
        &g,
        &jobs
            .iter()
            .map(|j| (j.clone(), String::new()))
            .collect::<Vec<_>>(),
    )
    .await;
    for (id, recipe) in jobs.iter().zip(&recipes) {
        let (st, audit) = g.get(&format!("/api/audit/jobs/{id}")).await;
        assert_eq!(st, 200, "{audit}");
        assert_eq!(audit["status"], "done");
        assert_eq!(&audit["recipe"], recipe);
        assert!(audit["provenance_error"].is_null(), "{audit}");
        assert_eq!(audit["images"].as_array().unwrap().len(), 1);
        // Its events, the compact request among them, with the recipe text put back.
        let text = audit["events"][0]["spec"]["recipe"].as_str().unwrap();
        assert_eq!(&serde_json::from_str::<Value>(text).unwrap(), recipe);
    }
    let (st, d) = g
        .get(&format!("/api/audit/diff?a={}&b={}", jobs[0], jobs[2]))
        .await;
    assert_eq!(st, 200, "{d}");
    assert!(d.to_string().contains("seed"), "{d}");
    // Run the newest again exactly: the new recipe equals the old one, and the audit of the
    // finished original lists the run.
    let (st, again) = g
        .post(&format!("/api/jobs/{}/run_again", jobs[2]), "{}")
        .await;
    assert!(st == 200 || st == 202, "{again}");
    let new_job = again["job_id"].as_str().unwrap().to_string();
    wait_status(&g, &new_job, "done", Duration::from_secs(20)).await;
    let (_, r) = g.get(&format!("/api/jobs/{new_job}/recipe")).await;
    assert_eq!(r["recipe"], recipes[2]);
    let (_, audit) = g.get(&format!("/api/audit/jobs/{}", jobs[2])).await;
    assert_eq!(audit["run_again"], json!([new_job]));
    // The entry's history lists every finished job with its image.
    let (st, h) = g.get("/api/history/characters/tifa_lockhart").await;
    assert_eq!(st, 200, "{h}");
    let listed: HashSet<&str> = h["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["images"].as_array().is_some_and(|i| i.len() == 1))
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    for id in jobs.iter().chain([&new_job]) {
        assert!(listed.contains(id.as_str()), "{id} in {h}");
    }
    // The cover a finished job made goes stale when the text changes.
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(tifa["stale"], false);
    let path = g.data().join("characters/tifa_lockhart.json");
    let mut d: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    d["identity"]["eyes"] = json!("green eyes");
    let (st, _) = g
        .put("/api/library/characters/tifa_lockhart", &d.to_string())
        .await;
    assert_eq!(st, 200);
    let (_, stale) = g.get("/api/stale?category=characters").await;
    assert_eq!(stale["stale"][0]["slug"], "tifa_lockhart", "{stale}");
    assert_eq!(stale["stale"][0]["cover_job"], new_job.as_str());
    let (_, v) = g.get("/api/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    // Export, import into a new ledger: the same records, and every recipe reads back the same.
    g.stop();
    let ledger = gaze::store::ledger::Ledger::open(&g.ledger_dir().join("gaze.redb")).unwrap();
    let mut export = Vec::new();
    gaze::history::archive::export(&ledger, 0, true, &mut export).unwrap();
    let text = String::from_utf8(export.clone()).unwrap();
    let shown = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["event"]["spec"]["recipe_patch"].is_object())
        .count();
    assert!(shown >= 2, "compact requests with --fields");
    assert!(!text.contains("\"recipe\":null"), "their recipes rebuilt");
    let copy = g.root().join("copy");
    let imported = gaze::store::ledger::Ledger::open(&copy.join("gaze.redb")).unwrap();
    gaze::history::archive::import(&imported, Box::new(std::io::Cursor::new(export))).unwrap();
    drop(imported);
    drop(ledger);
    let mut g2 = Gaze::start(None, &[]);
    g2.stop();
    std::fs::remove_dir_all(g2.ledger_dir()).unwrap();
    std::fs::remove_dir_all(g2.data()).unwrap();
    crate::support::app::copy_dir(&copy, &g2.ledger_dir());
    crate::support::app::copy_dir(&g.data(), &g2.data());
    g2.spawn();
    for (id, recipe) in jobs.iter().zip(&recipes) {
        let (st, r) = g2.get(&format!("/api/jobs/{id}/recipe")).await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(&r["recipe"], recipe);
        let (st, audit) = g2.get(&format!("/api/audit/jobs/{id}")).await;
        assert_eq!(st, 200, "{audit}");
        assert_eq!(&audit["recipe"], recipe);
    }
}

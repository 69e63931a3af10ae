//! Benchmarks for the job queue (issue 12: a queue faster than ComfyUI's own, and a ledger that
//! stays small). Prints figures; asserts nothing. Run with `cargo bench --bench jobs [names]`,
//! names among `ack clients latency bytes throughput million`. Uses the release binary and the
//! ComfyUI stand-in from `tests/support`, answering at once. `GAZE_BENCH_JOBS` sets the size of
//! the finished-jobs ledger (default 1,000,000).

#[path = "../support/comfy_standin.rs"]
mod comfy_standin;
#[path = "common.rs"]
mod common;
#[path = "../support/sample.rs"]
mod sample;

use comfy_standin::{StandIn, StandInConfig};
use gaze::handle::{Handle, Paths, Request};
use gaze::library::category::Category;
use gaze::library::command::Command;
use gaze::store::event::{Event, JobSpec, Origin};
use gaze::store::ledger::Ledger;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut lat: Vec<Duration>) -> String {
    lat.sort();
    format!(
        "p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.9)),
        ms(pct(&lat, 0.99))
    )
}

async fn standin() -> StandIn {
    let (checkpoints, loras, vaes) = sample::sample_models();
    let s = comfy_standin::start(StandInConfig {
        checkpoints,
        loras,
        vaes,
        exec_time: Duration::ZERO,
        impact_pack: true,
    })
    .await;
    s.set_caching(false);
    s
}

struct Gaze {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Gaze {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gaze {
    fn ledger_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ledger/gaze.redb")
    }
}

fn start_gaze(comfy: &str, paused: bool) -> Gaze {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--comfy", comfy];
    if paused {
        args.push("--paused");
    }
    let (child, url, _) = common::spawn_gaze(dir.path(), &sample::sample_data(), &args);
    Gaze { child, url, dir }
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn body(slug: &str, seed: u64) -> Value {
    json!({"category": "characters", "slug": slug, "seed": seed})
}

/// One durable generation request; its status code.
async fn generate(http: &reqwest::Client, url: &str, body: &Value) -> u16 {
    http.post(format!("{url}/api/generate"))
        .json(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn generate_id(http: &reqwest::Client, url: &str, body: &Value) -> String {
    let v: Value = http
        .post(format!("{url}/api/generate"))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["job_id"].as_str().unwrap_or_default().to_string()
}

async fn get_timed(http: &reqwest::Client, url: &str) -> Duration {
    let t = Instant::now();
    let r = http.get(url).send().await.unwrap();
    let _ = r.bytes().await.unwrap();
    t.elapsed()
}

/// Acknowledged durably, one keep-alive client, requests one after the other.
async fn bench_ack(http: &reqwest::Client) {
    let comfy = standin().await;
    let g = start_gaze(&comfy.url(), true);
    for i in 0..300 {
        generate(http, &g.url, &body("tifa_lockhart", i)).await;
    }
    let mut gen_lat = Vec::new();
    let mut health = Vec::new();
    let mut preview = Vec::new();
    for i in 0..2000u64 {
        let b = body("tifa_lockhart", 1000 + i);
        let t = Instant::now();
        let status = generate(http, &g.url, &b).await;
        gen_lat.push(t.elapsed());
        assert_eq!(status, 202);
        health.push(get_timed(http, &format!("{}/api/health", g.url)).await);
        if i % 4 == 0 {
            let t = Instant::now();
            let r = http
                .post(format!("{}/api/preview", g.url))
                .json(&b)
                .send()
                .await
                .unwrap();
            let _ = r.bytes().await.unwrap();
            preview.push(t.elapsed());
        }
    }
    println!(
        "generate acknowledged durably, one keep-alive client (2,000 requests): {}",
        summary(gen_lat)
    );
    println!("  for scale, GET /api/health: {}", summary(health));
    println!(
        "  and POST /api/preview (resolve and build, no commit): {}",
        summary(preview)
    );
}

/// `clients` keep-alive clients sending generate requests for `secs`; requests per second.
async fn run_clients(url: &str, clients: u64, secs: f64, health: bool) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        // One client (connection pool) per caller: each keeps its own connection alive.
        let http = reqwest::Client::new();
        let url = url.to_string();
        let (done, failed) = (done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < stop {
                let ok = if health {
                    http.get(format!("{url}/api/health"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                } else {
                    generate(&http, &url, &body("tifa_lockhart", c * 10_000_000 + i)).await == 202
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    let t = Instant::now();
    for task in tasks {
        let _ = task.await;
    }
    (
        done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed),
    )
}

async fn bench_clients(http: &reqwest::Client) {
    let comfy = standin().await;
    let g = start_gaze(&comfy.url(), true);
    for i in 0..300 {
        generate(http, &g.url, &body("tifa_lockhart", i)).await;
    }
    for clients in [1, 4, 16, 64] {
        let before = events_total(http, &g.url).await;
        let (rate, failed) = run_clients(&g.url, clients, 3.0, false).await;
        let after = events_total(http, &g.url).await;
        println!(
            "generate acknowledged durably, {clients} concurrent keep-alive clients: {rate:.0} requests/s ({} events, {failed} failed)",
            after - before
        );
    }
    let (rate, _) = run_clients(&g.url, 16, 2.0, true).await;
    println!("  for scale, GET /api/health with 16 clients: {rate:.0} requests/s");
}

async fn events_total(http: &reqwest::Client, url: &str) -> u64 {
    let v: Value = http
        .get(format!("{url}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["seq"].as_u64().unwrap_or(0)
}

/// From sending a generation request to its POST reaching ComfyUI.
async fn bench_latency(http: &reqwest::Client) {
    let comfy = standin().await;
    let g = start_gaze(&comfy.url(), false);
    // Warm up: the reactor has seen the backend healthy and the recipe base is in place.
    for i in 0..20 {
        let id = generate_id(http, &g.url, &body("tifa_lockhart", i)).await;
        wait_done(http, &g.url, &id).await;
    }
    let mut lat = Vec::new();
    for i in 1..=300u64 {
        let before = comfy.posts();
        let t = Instant::now();
        let id = generate_id(http, &g.url, &body("tifa_lockhart", 100 + i)).await;
        if !comfy.wait_posts(before + 1, Duration::from_secs(5)).await {
            println!("request to POST: a POST never came");
            return;
        }
        let at = comfy.last_post_at().unwrap();
        lat.push(at.saturating_duration_since(t));
        wait_done(http, &g.url, &id).await;
    }
    println!(
        "generate request to its POST reaching ComfyUI (300 requests): {}",
        summary(lat)
    );
}

async fn wait_done(http: &reqwest::Client, url: &str, id: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        let v: Value = http
            .get(format!("{url}/api/queue/{id}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"] == "done" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Generates `n` images end to end (requests one after the other, the reactor keeping up).
async fn run_images(http: &reqwest::Client, g: &Gaze, n: u64, slugs: &[&str], from: u64) {
    let mut ids = Vec::new();
    for i in 0..n {
        let slug = slugs[(i as usize) % slugs.len()];
        ids.push(generate_id(http, &g.url, &body(slug, from + i)).await);
        if ids.len() >= 200 {
            for id in ids.drain(..) {
                wait_done(http, &g.url, &id).await;
            }
        }
    }
    for id in ids {
        wait_done(http, &g.url, &id).await;
    }
}

/// What the ledger holds: its file size and, per table, bytes stored, B-tree metadata and
/// fragmentation.
fn ledger_use(file: &Path) -> (u64, Vec<gaze::store::ledger::TableUse>) {
    let ledger = Ledger::open(file).unwrap();
    (ledger.file_size(), ledger.table_stats().unwrap())
}

/// Bytes the ledger spends per generated image: the encoded events by kind, what redb stores
/// for them (events, the job index), and how much the file grew.
async fn bench_bytes(http: &reqwest::Client) {
    for (label, slugs) in [
        ("one character, new seeds", vec!["tifa_lockhart"]),
        (
            "eight characters in turn",
            vec![
                "tifa_lockhart",
                "aerith_gainsborough",
                "link",
                "hatsune_miku",
                "princess_zelda",
                "hakurei_reimu",
                "kirisame_marisa",
                "frieren_and_fern",
            ],
        ),
    ] {
        let comfy = standin().await;
        let mut g = start_gaze(&comfy.url(), false);
        run_images(http, &g, 100, &slugs, 0).await;
        let seq_before = events_total(http, &g.url).await;
        let _ = g.child.kill();
        let _ = g.child.wait();
        let (size_before, tables_before) = ledger_use(&g.ledger_file());
        let args = ["--comfy", &comfy.url()];
        let data = sample::sample_data();
        let (child, url, _) = common::spawn_gaze(g.dir.path(), &data, &args);
        g.child = child;
        g.url = url;
        let n = 3000;
        run_images(http, &g, n, &slugs, 1000).await;
        let _ = g.child.kill();
        let _ = g.child.wait();
        let (size_after, tables_after) = ledger_use(&g.ledger_file());
        let ledger = Ledger::open(&g.ledger_file()).unwrap();
        let mut by_kind: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
        ledger
            .fold(seq_before + 1, u64::MAX, |s| {
                let len = gaze::store::event::encode(&s.envelope).unwrap().len() as u64;
                let kind = match s.event() {
                    Event::JobRequestedCompact { .. } => "job_requested (compact)",
                    e => e.kind(),
                };
                let e = by_kind.entry(kind).or_default();
                e.0 += 1;
                e.1 += len;
                true
            })
            .unwrap();
        let total: u64 = by_kind.values().map(|v| v.1).sum();
        let per = |x: u64| x as f64 / n as f64;
        let stored = |t: &[gaze::store::ledger::TableUse], name: &str| {
            t.iter()
                .find(|r| r.0 == name)
                .map_or(0, |r| r.2 + r.3 + r.4)
        };
        let events = stored(&tables_after, "events") - stored(&tables_before, "events");
        let grew = |name: &str| stored(&tables_after, name) - stored(&tables_before, name);
        let (tags, subjects, jobs) = (grew("idx_tags"), grew("idx_subjects"), grew("idx_jobs"));
        let index = tags + subjects + jobs;
        println!(
            "ledger bytes per generated image, {label} ({n} images): {:.0} bytes of events; redb holds {:.0} (events {:.0} + indexes {:.0}: kind/origin/category {:.0}, entry {:.0}, job {:.0}; with B-tree overhead); the file grew {:.0}",
            per(total),
            per(events + index),
            per(events),
            per(index),
            per(tags),
            per(subjects),
            per(jobs),
            per(size_after.saturating_sub(size_before))
        );
        for (kind, (count, bytes)) in by_kind {
            println!(
                "  {kind}: {count} events, {:.0} bytes each",
                bytes as f64 / count as f64
            );
        }
    }
}

async fn bench_throughput(http: &reqwest::Client) {
    let comfy = standin().await;
    let g = start_gaze(&comfy.url(), true);
    let n = 1000;
    for i in 0..n {
        generate(http, &g.url, &body("tifa_lockhart", i)).await;
    }
    let t = Instant::now();
    http.post(format!("{}/api/queue/resume", g.url))
        .send()
        .await
        .unwrap();
    loop {
        let q: Value = http
            .get(format!("{}/api/queue", g.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let open = q["pending"].as_array().map_or(0, Vec::len)
            + q["running"].as_array().map_or(0, Vec::len);
        if open == 0 {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            println!("reactor throughput: gave up after 120 s with {open} open");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = t.elapsed();
    println!(
        "reactor end to end with a backend that answers at once: {n} jobs in {:.2} s = {:.0} jobs/s (ComfyUI ran {} prompts, {} images saved)",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64(),
        comfy.total_executions(),
        comfy.images_written()
    );
}

/// Recipes of the sample characters, with a seed that is easy to replace.
fn recipe_templates() -> Vec<(String, String)> {
    const MARK: u64 = 4_242_424_242_424;
    let lib = gaze::library::sync::library_from_disk(&sample::sample_data());
    [
        "tifa_lockhart",
        "aerith_gainsborough",
        "link",
        "hatsune_miku",
        "princess_zelda",
        "hakurei_reimu",
        "kirisame_marisa",
        "frieren_and_fern",
    ]
    .iter()
    .map(|slug| {
        let req = gaze::jobs::request::GenRequest {
            target: Some((Category::Characters, slug.to_string())),
            seed: Some(MARK),
            ..Default::default()
        };
        let text = gaze::jobs::request::resolve(&lib, &req, 0, &Default::default())
            .unwrap()
            .recipe_text();
        (slug.to_string(), text.replace(&MARK.to_string(), "{SEED}"))
    })
    .collect()
}

/// Writes a ledger of `n` finished jobs through the real write path (requests, submissions,
/// outcomes: 98.5% done, 1% failed, 0.5% cancelled), with the sample library synced.
fn build_finished_jobs(root: &Path, n: u64) -> (Vec<u128>, Duration) {
    let data = root.join("data");
    copy_dir(&sample::sample_data(), &data);
    let h = Handle::open(
        &root.join("ledger/gaze.redb"),
        Paths {
            data,
            uploads: root.join("uploads"),
            loras: None,
            checkpoints: None,
            workflow: None,
        },
    )
    .unwrap();
    h.execute(Origin::Startup, Request::Rescan(Category::ALL.to_vec()))
        .unwrap();
    let templates = recipe_templates();
    let t = Instant::now();
    let mut ids = Vec::with_capacity(n as usize);
    let mut ulids = ulid::Generator::new();
    let chunk = 1000;
    let mut made = 0;
    while made < n {
        let size = chunk.min(n - made);
        let mut jobs = Vec::with_capacity(size as usize);
        for i in 0..size {
            let k = made + i;
            let id = u128::from(ulids.generate().unwrap());
            let (slug, text) = &templates[(k % templates.len() as u64) as usize];
            let seed = 1 + k * 7919;
            jobs.push((
                id,
                JobSpec {
                    label: format!("characters/{slug}"),
                    target: Some((Category::Characters, slug.clone())),
                    set_cover: false,
                    recipe: text.replace("{SEED}", &seed.to_string()),
                    request: body(slug, seed).to_string(),
                    batch: None,
                    retry_of: None,
                    endless: None,
                },
            ));
        }
        let mut outcomes = Vec::with_capacity(2 * size as usize);
        let mut cancels = Vec::new();
        for (i, (id, spec)) in jobs.iter().enumerate() {
            let k = made + i as u64;
            if k % 200 == 7 {
                cancels.push(*id);
                continue;
            }
            outcomes.push(Event::JobSubmitted {
                job: *id,
                backend: "http://127.0.0.1:8188".into(),
                prompt_id: gaze::jobs::comfy::prompt_id_for(*id),
                attempt: 1,
                vanilla: false,
            });
            outcomes.push(if k % 100 == 3 {
                Event::JobFailed {
                    job: *id,
                    error: "node 3: CUDA out of memory".into(),
                    node: Some("3".into()),
                    retryable: false,
                }
            } else {
                Event::JobSucceeded {
                    job: *id,
                    images: vec![format!(
                        "uploads/{}/{}_0.png",
                        spec.label,
                        ulid::Ulid::from(*id).to_string().to_lowercase()
                    )],
                }
            });
        }
        ids.extend(jobs.iter().map(|j| j.0));
        h.execute(Origin::Web, Request::Command(Command::Enqueue { jobs }))
            .unwrap();
        h.execute(
            Origin::Reactor,
            Request::Command(Command::Record { events: outcomes }),
        )
        .unwrap();
        for job in cancels {
            h.execute(Origin::Web, Request::Command(Command::CancelJob { job }))
                .unwrap();
        }
        made += size;
    }
    let took = t.elapsed();
    h.snapshot_now();
    (ids, took)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

async fn bench_million(http: &reqwest::Client) {
    let n: u64 = std::env::var("GAZE_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap();
    // GAZE_BENCH_KEEP=DIR keeps the ledger there and reuses it on the next run.
    let keep = std::env::var_os("GAZE_BENCH_KEEP").map(std::path::PathBuf::from);
    let root = keep.as_deref().unwrap_or(tmp.path());
    let file = root.join("ledger/gaze.redb");
    let ids = if file.exists() {
        let mut ids = Vec::new();
        Ledger::open(&file)
            .unwrap()
            .fold(1, u64::MAX, |s| {
                if let Event::JobRequested { job, .. } | Event::JobRequestedCompact { job, .. } =
                    s.event()
                {
                    ids.push(*job);
                }
                true
            })
            .unwrap();
        println!(
            "reusing the ledger of {} jobs in {}",
            ids.len(),
            root.display()
        );
        ids
    } else {
        let (ids, took) = build_finished_jobs(root, n);
        let size = std::fs::metadata(&file).unwrap().len();
        println!(
            "a ledger of {n} finished jobs written through the write path in {:.1} s: {:.0} MB, {:.0} bytes per job",
            took.as_secs_f64(),
            size as f64 / 1e6,
            size as f64 / n as f64
        );
        ids
    };
    let n = ids.len() as u64;
    {
        let ledger = Ledger::open(&file).unwrap();
        let t = Instant::now();
        let mut by_kind: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
        ledger
            .fold(1, u64::MAX, |s| {
                let len = gaze::store::event::encode(&s.envelope).unwrap().len() as u64;
                let kind = match s.event() {
                    Event::JobRequestedCompact { .. } => "job_requested (compact)",
                    e => e.kind(),
                };
                let e = by_kind.entry(kind).or_default();
                e.0 += 1;
                e.1 += len;
                true
            })
            .unwrap();
        let read = t.elapsed();
        let events: u64 = by_kind.values().map(|v| v.0).sum();
        let bytes: u64 = by_kind.values().map(|v| v.1).sum();
        println!(
            "  {events} events, {:.0} bytes of events per job; reading and decoding them all: {:.2} s",
            bytes as f64 / n as f64,
            read.as_secs_f64()
        );
        for (kind, (count, bytes)) in by_kind.iter().filter(|(_, v)| v.0 > 100) {
            println!(
                "    {kind}: {count} events, {:.0} bytes each",
                *bytes as f64 / *count as f64
            );
        }
        for (table, entries, stored, meta, frag) in ledger.table_stats().unwrap() {
            println!(
                "    table {table}: {entries} entries, {:.0} bytes stored + {:.0} metadata + {:.0} fragmented per job",
                stored as f64 / n as f64,
                meta as f64 / n as f64,
                frag as f64 / n as f64
            );
        }
        let t = Instant::now();
        let lib = gaze::store::snapshot::replay(&ledger, u64::MAX).unwrap();
        println!(
            "  replaying every event on one thread: {:.2} s ({} finished jobs)",
            t.elapsed().as_secs_f64(),
            lib.jobs.finished_count()
        );
    }
    let run = |label: &str| {
        let (child, url, start) = common::spawn_gaze(root, &root.join("data"), &["--paused"]);
        println!("  start-up {label}: {:.0} ms", ms(start));
        (child, url)
    };
    let (mut child, url) = run("with a snapshot");
    let (rss, _) = rss_kib(child.id());
    let mut list = Vec::new();
    let mut failed = Vec::new();
    let mut recipe = Vec::new();
    let mut status = Vec::new();
    let mut queue = Vec::new();
    for i in 0..200usize {
        list.push(get_timed(http, &format!("{url}/api/jobs?limit=50")).await);
        failed.push(get_timed(http, &format!("{url}/api/jobs?limit=50&status=failed")).await);
        let id = ulid::Ulid::from(ids[(i * 4999) % ids.len()]).to_string();
        recipe.push(get_timed(http, &format!("{url}/api/jobs/{id}/recipe")).await);
        status.push(get_timed(http, &format!("{url}/api/queue/{id}/status")).await);
        queue.push(get_timed(http, &format!("{url}/api/queue")).await);
    }
    let (rss_after, hwm) = rss_kib(child.id());
    println!("  GET /api/jobs?limit=50: {}", summary(list));
    println!(
        "  GET /api/jobs?limit=50&status=failed: {}",
        summary(failed)
    );
    println!(
        "  GET /api/jobs/{{id}}/recipe of a finished job: {}",
        summary(recipe)
    );
    println!(
        "  GET /api/queue/{{id}}/status of a finished job: {}",
        summary(status)
    );
    println!("  GET /api/queue: {}", summary(queue));
    println!(
        "  RSS after start-up {:.0} MB, after the requests {:.0} MB, peak {:.0} MB",
        rss as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
    Ledger::open(&file).unwrap().clear_snapshots().unwrap();
    let (mut child, url) = run("without a snapshot (every event replayed)");
    let (_, hwm) = rss_kib(child.id());
    println!(
        "  RSS peak replaying without a snapshot {:.0} MB",
        hwm as f64 / 1024.0
    );
    let v: Value = http
        .get(format!("{url}/api/jobs?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "  (the replayed projection lists {} pending jobs)",
        v["pending"]
    );
    let _ = child.kill();
    let _ = child.wait();
    let mut ledger = Ledger::open(&file).unwrap();
    let t = Instant::now();
    let _ = ledger.compact();
    println!(
        "  after `gaze compact` ({:.1} s): {:.0} MB, {:.0} bytes per job",
        t.elapsed().as_secs_f64(),
        ledger.file_size() as f64 / 1e6,
        ledger.file_size() as f64 / n as f64
    );
}

/// The floor under an acknowledged request on this machine: a bare durable redb commit of one
/// small event, and the same through the handle's writer thread (in process, no HTTP).
fn bench_floor() {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&tmp.path().join("raw/gaze.redb")).unwrap();
    let mut raw = Vec::new();
    for i in 0..1000u64 {
        let t = Instant::now();
        ledger
            .append(vec![gaze::store::event::Envelope {
                id: u128::from(i),
                at: i,
                origin: Origin::Cli,
                event: Event::QueuePaused { paused: i % 2 == 0 },
            }])
            .unwrap();
        raw.push(t.elapsed());
    }
    let mut indexed = Vec::new();
    for i in 0..1000u64 {
        let t = Instant::now();
        ledger
            .append(vec![gaze::store::event::Envelope {
                id: u128::from(i),
                at: i,
                origin: Origin::Cli,
                event: Event::JobCancelled {
                    job: u128::from(ulid::Ulid::generate()),
                },
            }])
            .unwrap();
        indexed.push(t.elapsed());
    }
    drop(ledger);
    let h = Handle::open(
        &tmp.path().join("h/gaze.redb"),
        Paths {
            data: tmp.path().join("data"),
            uploads: tmp.path().join("uploads"),
            loras: None,
            checkpoints: None,
            workflow: None,
        },
    )
    .unwrap();
    let mut via = Vec::new();
    for i in 0..1000u64 {
        let t = Instant::now();
        h.execute(
            Origin::Cli,
            Request::Command(Command::PauseQueue { paused: i % 2 == 0 }),
        )
        .unwrap();
        via.push(t.elapsed());
    }
    println!(
        "a bare durable redb commit of one small event: {}",
        summary(raw)
    );
    println!("  of one job event (also indexed): {}", summary(indexed));
    println!("  the same through the writer thread: {}", summary(via));
}

/// What the request path spends on one recipe, in process: resolving and building it, writing
/// its text, and storing it compactly (parse, shape, diff, the byte-for-byte check).
fn bench_recipe() {
    let lib = gaze::library::sync::library_from_disk(&sample::sample_data());
    let req = |seed: u64| gaze::jobs::request::GenRequest {
        target: Some((Category::Characters, "tifa_lockhart".into())),
        seed: Some(seed),
        ..Default::default()
    };
    let base_text = gaze::jobs::request::resolve(&lib, &req(1), 0, &Default::default())
        .unwrap()
        .recipe_text();
    let base: Value = serde_json::from_str(&base_text).unwrap();
    let n = 2000u64;
    let time = |label: &str, f: &mut dyn FnMut(u64)| {
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        println!(
            "  {label}: {:.1} µs",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    };
    println!(
        "one recipe on the request path (tifa_lockhart, {} byte recipe):",
        base_text.len()
    );
    time(
        "resolve and build (prompts, workflow, validation)",
        &mut |i| {
            std::hint::black_box(
                gaze::jobs::request::resolve(&lib, &req(i), 0, &Default::default()).unwrap(),
            );
        },
    );
    let resolved = gaze::jobs::request::resolve(&lib, &req(2), 0, &Default::default()).unwrap();
    time("write the recipe text", &mut |_| {
        std::hint::black_box(resolved.recipe_text());
    });
    time("build the recipe as a JSON value", &mut |_| {
        std::hint::black_box(resolved.recipe());
    });
    let v = resolved.recipe();
    time("write the value's text", &mut |_| {
        std::hint::black_box(v.to_string());
    });
    let text = resolved.recipe_text();
    assert_eq!(v.to_string(), text);
    time("parse it back", &mut |_| {
        std::hint::black_box(serde_json::from_str::<Value>(&text).unwrap());
    });
    let value: Value = serde_json::from_str(&text).unwrap();
    time("shape", &mut |_| {
        std::hint::black_box(gaze::jobs::recipe::shape(&value));
    });
    time("diff against the base", &mut |_| {
        std::hint::black_box(gaze::jobs::recipe::diff(&base, &value, 1));
    });
    let patch = gaze::jobs::recipe::diff(&base, &value, 1);
    time(
        "expand (the byte-for-byte check, and every read)",
        &mut |_| {
            std::hint::black_box(gaze::jobs::recipe::expand(&base, &patch).unwrap());
        },
    );
    let size = bincode::serde::encode_to_vec(&patch, bincode::config::standard())
        .unwrap()
        .len();
    println!("  the patch takes {size} bytes");
    // What replay pays per stored event of each kind of a generated image.
    let envelope = |event: Event| gaze::store::event::Envelope {
        id: u128::from(ulid::Ulid::generate()),
        at: 1_790_000_000_000,
        origin: Origin::Web,
        event,
    };
    let job = u128::from(ulid::Ulid::generate());
    let other: Value = serde_json::from_str(
        &gaze::jobs::request::resolve(
            &lib,
            &gaze::jobs::request::GenRequest {
                target: Some((Category::Characters, "link".into())),
                seed: Some(3),
                ..Default::default()
            },
            0,
            &Default::default(),
        )
        .unwrap()
        .recipe_text(),
    )
    .unwrap();
    let kinds = [
        (
            "job_requested (compact, same character)",
            envelope(Event::JobRequestedCompact {
                job,
                spec: gaze::store::event::CompactSpec {
                    label: "characters/tifa_lockhart".into(),
                    target: Some((Category::Characters, "tifa_lockhart".into())),
                    set_cover: false,
                    recipe: patch.clone(),
                    request: body("tifa_lockhart", 2).to_string(),
                    batch: None,
                    retry_of: None,
                    endless: None,
                },
            }),
        ),
        (
            "job_requested (compact, another character)",
            envelope(Event::JobRequestedCompact {
                job,
                spec: gaze::store::event::CompactSpec {
                    label: "characters/link".into(),
                    target: Some((Category::Characters, "link".into())),
                    set_cover: false,
                    recipe: gaze::jobs::recipe::diff(&base, &other, 1),
                    request: body("link", 3).to_string(),
                    batch: None,
                    retry_of: None,
                    endless: None,
                },
            }),
        ),
        (
            "job_submitted",
            envelope(Event::JobSubmitted {
                job,
                backend: "http://127.0.0.1:8188".into(),
                prompt_id: gaze::jobs::comfy::prompt_id_for(job),
                attempt: 1,
                vanilla: false,
            }),
        ),
        (
            "job_succeeded",
            envelope(Event::JobSucceeded {
                job,
                images: vec![format!(
                    "uploads/characters/tifa_lockhart/{}_0.png",
                    ulid::Ulid::from(job).to_string().to_lowercase()
                )],
            }),
        ),
    ];
    for (label, env) in kinds {
        let bytes = gaze::store::event::encode(&env).unwrap();
        time(
            &format!("decode a {label} ({} bytes)", bytes.len()),
            &mut |_| {
                std::hint::black_box(gaze::store::event::decode(&bytes).unwrap());
            },
        );
    }
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| name.contains(w.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        if want("floor") {
            bench_floor();
        }
        if want("recipe") {
            bench_recipe();
        }
        if want("ack") {
            bench_ack(&http).await;
        }
        if want("clients") {
            bench_clients(&http).await;
        }
        if want("latency") {
            bench_latency(&http).await;
        }
        if want("bytes") {
            bench_bytes(&http).await;
        }
        if want("throughput") {
            bench_throughput(&http).await;
        }
        if want("million") {
            bench_million(&http).await;
        }
    });
}

//! Benchmarks for the job ledger and reactor (issue: the job ledger and reactor). Prints
//! figures; asserts nothing. Run with `cargo bench --bench jobs`. Uses the release binary and
//! the ComfyUI stand-in from `tests/support`, answering at once.

#[path = "../support/comfy_standin.rs"]
mod comfy_standin;
#[path = "common.rs"]
mod common;
#[path = "../support/sample.rs"]
mod sample;

use comfy_standin::{StandIn, StandInConfig};
use serde_json::{Value, json};
use std::process::Child;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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
    _dir: tempfile::TempDir,
}

impl Drop for Gaze {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gaze(comfy: &str, paused: bool) -> Gaze {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--comfy", comfy];
    if paused {
        args.push("--paused");
    }
    let (child, url, _) = common::spawn_gaze(dir.path(), &sample::sample_data(), &args);
    Gaze {
        child,
        url,
        _dir: dir,
    }
}

/// GETs a JSON body.
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn generate(http: &reqwest::Client, url: &str, seed: u64) -> String {
    let body = json!({"category": "characters", "slug": "tifa_lockhart", "seed": seed});
    let v: Value = http
        .post(format!("{url}/api/generate"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["job_id"].as_str().unwrap_or_default().to_string()
}

async fn enqueue_many(http: &reqwest::Client, url: &str, n: u64, from: u64) -> Duration {
    let t = Instant::now();
    for i in 0..n {
        generate(http, url, from + i).await;
    }
    t.elapsed()
}

/// `clients` concurrent callers, `n` requests in all.
async fn enqueue_concurrent(http: &reqwest::Client, url: &str, n: u64, clients: u64) -> Duration {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let http = http.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / clients {
                generate(&http, &url, 100_000 + c * 10_000 + i).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    t.elapsed()
}

async fn bench_enqueue(http: &reqwest::Client) {
    let comfy = standin().await;
    let g = start_gaze(&comfy.url(), true);
    let first = enqueue_many(http, &g.url, 1000, 0).await;
    println!(
        "enqueue 1,000 generation requests durably, one client (HTTP, resolve, commit): {:.0} ms total, {:.2} ms each",
        ms(first),
        ms(first) / 1000.0
    );
    let four = enqueue_concurrent(http, &g.url, 1000, 4).await;
    println!(
        "enqueue 1,000 generation requests durably, four clients: {:.0} ms total",
        ms(four)
    );
    enqueue_many(http, &g.url, 9000, 1000).await;
    let deep = enqueue_many(http, &g.url, 1000, 10_000).await;
    println!(
        "enqueue 1,000 more with 10,000 already queued: {:.0} ms total, {:.2} ms each",
        ms(deep),
        ms(deep) / 1000.0
    );
}

async fn bench_throughput(http: &reqwest::Client) {
    let comfy = standin().await;
    let g = start_gaze(&comfy.url(), true);
    let n = 1000;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(generate(http, &g.url, i).await);
    }
    let t = Instant::now();
    http.post(format!("{}/api/queue/resume", g.url))
        .send()
        .await
        .unwrap();
    loop {
        let v = get_json(http, format!("{}/api/jobs?limit=1&status=done", g.url)).await;
        let q = get_json(http, format!("{}/api/queue", g.url)).await;
        let open = q["pending"].as_array().map_or(0, Vec::len)
            + q["running"].as_array().map_or(0, Vec::len);
        if open == 0 && v["jobs"].as_array().is_some_and(|a| !a.is_empty()) {
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

async fn bench_latency(http: &reqwest::Client) {
    let comfy = standin().await;
    let g = start_gaze(&comfy.url(), false);
    // Warm up: the reactor has seen the backend healthy.
    generate(http, &g.url, 0).await;
    comfy.wait_idle(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lat = Vec::new();
    for i in 1..=200u64 {
        let before = comfy.posts();
        let t = Instant::now();
        generate(http, &g.url, i).await;
        while comfy.posts() == before {
            if t.elapsed() > Duration::from_secs(5) {
                break;
            }
            tokio::task::yield_now().await;
        }
        lat.push(t.elapsed());
        comfy.wait_idle(Duration::from_secs(5)).await;
    }
    lat.sort();
    println!(
        "generate request to its POST reaching ComfyUI: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.9)),
        ms(pct(&lat, 0.99))
    );
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
        if want("enqueue") {
            bench_enqueue(&http).await;
        }
        if want("latency") {
            bench_latency(&http).await;
        }
        if want("throughput") {
            bench_throughput(&http).await;
        }
    });
}

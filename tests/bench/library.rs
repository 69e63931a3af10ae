//! Benchmarks for the ledger and the library (issue: the ledger and the library). Prints
//! figures; asserts nothing. Run with `cargo bench --bench library`.
//! Set GAZE_BENCH_EVENTS to change the size of the start-up ledger (default 1,000,000).

#[path = "common.rs"]
mod common;

use gaze::handle::{Handle, Paths, Request};
use gaze::library::category::Category;
use gaze::library::command::{Command, render};
use gaze::store::event::{DocBody, Envelope, Event, Origin};
use gaze::store::ledger::Ledger;
use std::path::Path;
use std::process::Command as Proc;
use std::time::{Duration, Instant};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn paths(root: &Path) -> Paths {
    Paths {
        data: root.join("data"),
        uploads: root.join("uploads"),
        loras: None,
        checkpoints: None,
        workflow: None,
    }
}

/// Writes `n` synthetic characters into `data/characters`.
fn write_characters(data: &Path, n: usize) {
    let dir = data.join("characters");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let doc = gaze::synth::document("characters", i, 7);
        let text = render(doc.as_object().unwrap());
        std::fs::write(dir.join(gaze::synth::file_name("characters", i, 7)), text).unwrap();
    }
}

fn bench_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Handle::open(&tmp.path().join("l/gaze.redb"), paths(tmp.path())).unwrap();
    let n = 2000;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        h.execute(
            Origin::Cli,
            Request::Command(Command::SetPreferences {
                scope: "generator".into(),
                values: vec![("extra_positive".into(), serde_json::json!(format!("v{i}")))],
            }),
        )
        .unwrap();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    println!(
        "durable single-event commits: {n} in {:.2} s = {:.0}/s; p50 {:.3} ms, p99 {:.3} ms",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99))
    );
}

fn bench_rescan() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = gaze::synth::SynthSpec {
        per_category: 1112,
        seed: 3,
    };
    let files = gaze::synth::write_library(&tmp.path().join("data"), &spec).unwrap();
    let h = Handle::open(&tmp.path().join("l/gaze.redb"), paths(tmp.path())).unwrap();
    let t = Instant::now();
    let o = h
        .execute(Origin::Startup, Request::Rescan(Category::ALL.to_vec()))
        .unwrap();
    let d = t.elapsed();
    println!(
        "batched rescan of {files} new files: {} events in {:.0} ms = {:.0} events/s",
        o.events.len(),
        ms(d),
        o.events.len() as f64 / d.as_secs_f64()
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let o = h
            .execute(Origin::Startup, Request::Rescan(Category::ALL.to_vec()))
            .unwrap();
        assert!(o.events.is_empty());
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "rescan of {files} unchanged files: median {:.0} ms (best {:.0} ms)",
        ms(times[2]),
        ms(times[0])
    );
}

fn bench_loras() {
    let tmp = tempfile::tempdir().unwrap();
    let n = gaze::synth::write_lora_tree(tmp.path(), 70_000).unwrap();
    let mut times = Vec::new();
    let mut listed = 0;
    for _ in 0..3 {
        let t = Instant::now();
        listed = Category::ALL
            .iter()
            .map(|c| gaze::library::models::list_loras(tmp.path(), *c).len())
            .sum::<usize>();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "listing {n} LoRA files (all categories): {listed} entries, median {:.0} ms",
        ms(times[1])
    );
}

/// Starts the release binary and returns (time to the listening line, peak RSS in KiB, url).
fn start_binary(root: &Path) -> (Duration, u64, std::process::Child, String) {
    let (child, url, took) = common::spawn_gaze(root, &root.join("data"), &[]);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (took, rss, child, url)
}

fn bench_startup() {
    let total: u64 = std::env::var("GAZE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let docs = 10_000u64;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let dir = data.join("characters");
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = Ledger::open(&root.join("ledger/gaze.redb")).unwrap();
    let t = Instant::now();
    let mut seq = 0u64;
    let mut batch = Vec::with_capacity(10_000);
    let mut last_text = vec![String::new(); docs as usize];
    while seq < total {
        let i = (seq % docs) as usize;
        let round = seq / docs;
        let mut doc = gaze::synth::document("characters", i, 7);
        doc["character_name"] = format!("Character {i} rev {round}").into();
        let id = doc["character_id"].as_str().unwrap().to_string();
        let text = render(doc.as_object().unwrap());
        let slug = Category::Characters.slug_of(&id);
        let body = DocBody {
            id,
            name: format!("Character {i} rev {round}"),
            json: text.clone(),
        };
        let event = if round == 0 {
            Event::DocumentSynced {
                category: Category::Characters,
                slug,
                file: gaze::synth::file_name("characters", i, 7),
                body,
            }
        } else {
            Event::DocumentEdited {
                category: Category::Characters,
                slug,
                body,
            }
        };
        last_text[i] = text;
        batch.push(Envelope {
            id: u128::from(seq),
            at: 1_790_000_000_000 + seq,
            origin: Origin::Cli,
            event,
        });
        seq += 1;
        if batch.len() == 10_000 || seq == total {
            ledger.append(std::mem::take(&mut batch)).unwrap();
        }
    }
    let built = t.elapsed();
    let bytes = std::fs::metadata(root.join("ledger/gaze.redb"))
        .unwrap()
        .len();
    drop(ledger);
    for (i, text) in last_text.iter().enumerate().take(docs.min(total) as usize) {
        std::fs::write(dir.join(gaze::synth::file_name("characters", i, 7)), text).unwrap();
    }
    println!(
        "built a ledger of {total} events over {docs} documents in {:.1} s ({:.0} events/s batched, {} MiB)",
        built.as_secs_f64(),
        total as f64 / built.as_secs_f64(),
        bytes / (1024 * 1024)
    );
    // Each start ends with a clean shutdown (SIGTERM: snapshot, close), as a user's would.
    let start = |label: &str| {
        let (took, rss, mut child, _) = start_binary(root);
        let _ = Proc::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
        println!(
            "start-up to serving, {label}: {:.2} s, peak RSS {} MiB",
            took.as_secs_f64(),
            rss / 1024
        );
    };
    start(&format!(
        "{total} events / {docs} documents, no snapshot yet (full replay)"
    ));
    start(&format!(
        "{total} events / {docs} documents, from the snapshot the first start wrote"
    ));
    start("again");
    // After a crash: SIGKILL, so redb must check the file on the next open.
    {
        let (_, _, mut child, _) = start_binary(root);
        let _ = child.kill();
        let _ = child.wait();
    }
    start("after a SIGKILL (redb recovers the file)");
    // The worst case after a crash: a full interval of events since the last snapshot.
    let tail = gaze::store::snapshot::SNAPSHOT_EVERY.max(docs) - 1;
    let ledger = Ledger::open(&root.join("ledger/gaze.redb")).unwrap();
    let mut batch = Vec::new();
    for k in 0..tail {
        let i = (k % docs) as usize;
        let mut doc = gaze::synth::document("characters", i, 7);
        doc["character_name"] = format!("tail {k}").into();
        let text = render(doc.as_object().unwrap());
        last_text[i] = text.clone();
        batch.push(Envelope {
            id: u128::from(total + k),
            at: 1_800_000_000_000 + k,
            origin: Origin::Cli,
            event: Event::DocumentEdited {
                category: Category::Characters,
                slug: Category::Characters.slug_of(doc["character_id"].as_str().unwrap()),
                body: DocBody {
                    id: doc["character_id"].as_str().unwrap().to_string(),
                    name: format!("tail {k}"),
                    json: text,
                },
            },
        });
    }
    ledger.append(batch).unwrap();
    drop(ledger);
    for (i, text) in last_text.iter().enumerate().take(docs.min(total) as usize) {
        std::fs::write(dir.join(gaze::synth::file_name("characters", i, 7)), text).unwrap();
    }
    start(&format!(
        "{} events with {tail} after the last snapshot",
        total + tail
    ));
}

fn bench_list() {
    let tmp = tempfile::tempdir().unwrap();
    write_characters(&tmp.path().join("data"), 10_000);
    let (_, _, mut child, url) = start_binary(tmp.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut lat = Vec::new();
    let mut size = 0;
    rt.block_on(async {
        let http = reqwest::Client::new();
        for i in 0..220 {
            let t = Instant::now();
            let body = http
                .get(format!("{url}/api/library/characters"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            if i >= 20 {
                lat.push(t.elapsed());
            }
            size = body.len();
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    lat.sort();
    println!(
        "GET /api/library/characters with 10,000 characters ({} KiB): p50 {:.2} ms, p99 {:.2} ms",
        size / 1024,
        ms(pct(&lat, 0.5)),
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
    if want("commits") {
        bench_commits();
    }
    if want("rescan") {
        bench_rescan();
    }
    if want("loras") {
        bench_loras();
    }
    if want("list") {
        bench_list();
    }
    if want("startup") {
        bench_startup();
    }
}

//! Benchmarks for history (issue 10). Prints figures; asserts nothing. Run with
//! `cargo build --release && cargo bench --bench history`. On a ledger of 1,000,000 events
//! (`GAZE_BENCH_EVENTS` changes it) over 10,000 characters, one of them edited 10,000 times:
//! export and import rates, verify, the /history page, one entry's history with 10,000
//! versions, and restores to points across the ledger (through the running release binary).

#[path = "common.rs"]
mod common;

use gaze::library::category::Category;
use gaze::library::command::render;
use gaze::library::projection::Library;
use gaze::store::event::{DocBody, Envelope, Event, Origin};
use gaze::store::ledger::Ledger;
use std::path::Path;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

const DOCS: u64 = 10_000;
const HOT: &str = "hot_character";

/// Builds the ledger and `data/`: every 100th event edits the hot character, the others cycle
/// through the 10,000 characters (synced first, then edited). Snapshots are written where a
/// server that lived through these events would have kept them: one per 50,000 events (the
/// sparse ones) and the newest.
fn build(root: &Path, total: u64) {
    let data = root.join("data/characters");
    std::fs::create_dir_all(&data).unwrap();
    let ledger = Ledger::open(&root.join("ledger/gaze.redb")).unwrap();
    let mut lib = Library::default();
    let t = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    let mut last_text: Vec<Option<(String, String)>> = vec![None; DOCS as usize + 1];
    let mut seq = 0u64;
    let mut round = vec![0u64; DOCS as usize + 1];
    while seq < total {
        let hot = seq % 100 == 50;
        let i = if hot {
            DOCS as usize
        } else {
            (seq % DOCS) as usize
        };
        let mut doc = gaze::synth::document("characters", i % DOCS as usize, 7);
        let id = if hot {
            HOT.to_string()
        } else {
            doc["character_id"].as_str().unwrap().to_string()
        };
        doc["character_id"] = id.clone().into();
        doc["character_name"] = format!("Character {i} rev {}", round[i]).into();
        doc["identity"]["hair"] = format!("black hair, style {}, long hair", round[i]).into();
        let text = render(doc.as_object().unwrap());
        let slug = Category::Characters.slug_of(&id);
        let file = format!("{slug}.json");
        let body = DocBody {
            id,
            name: format!("Character {i} rev {}", round[i]),
            json: text.clone(),
        };
        let event = if round[i] == 0 {
            Event::DocumentSynced {
                category: Category::Characters,
                slug,
                file: file.clone(),
                body,
            }
        } else {
            Event::DocumentEdited {
                category: Category::Characters,
                slug,
                body,
            }
        };
        round[i] += 1;
        last_text[i] = Some((file, text));
        batch.push(Envelope {
            id: u128::from(seq) << 16,
            at: 1_790_000_000_000 + seq,
            origin: if seq.is_multiple_of(3) {
                Origin::Watcher
            } else {
                Origin::Web
            },
            event,
        });
        seq += 1;
        if batch.len() == 10_000 || seq == total {
            let stored = ledger.append(std::mem::take(&mut batch)).unwrap();
            for s in &stored {
                lib.apply(s);
            }
            if seq.is_multiple_of(50_000) || seq == total {
                ledger.write_snapshot(seq, &lib.to_snapshot()).unwrap();
            }
        }
    }
    let took = t.elapsed();
    for (file, text) in last_text.iter().flatten() {
        std::fs::write(data.join(file), text).unwrap();
    }
    let bytes = std::fs::metadata(root.join("ledger/gaze.redb"))
        .unwrap()
        .len();
    println!(
        "built {total} events over {} documents in {:.1} s ({:.0} events/s with the indexes, {} MiB)",
        lib.document_count(),
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        bytes / (1024 * 1024)
    );
}

fn bench_offline(root: &Path, total: u64) {
    let ledger = Ledger::open(&root.join("ledger/gaze.redb")).unwrap();
    // Verify.
    let t = Instant::now();
    let report = gaze::history::verify::verify(&ledger, &root.join("data"), None);
    println!(
        "verify of {} events, {} documents, {} snapshots: {:.2} s ({} problems)",
        report.events,
        report.documents,
        report.snapshots,
        t.elapsed().as_secs_f64(),
        report.problems.len()
    );
    for p in report.problems.iter().take(3) {
        println!("  problem: {p}");
    }
    // Export.
    let file = root.join("export.jsonl");
    let t = Instant::now();
    {
        let mut out =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file).unwrap());
        let n = gaze::history::archive::export(&ledger, 0, false, &mut out).unwrap();
        assert_eq!(n, total);
    }
    let took = t.elapsed();
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "export: {total} events in {:.2} s = {:.0} events/s ({} MiB of JSON lines)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        size / (1024 * 1024)
    );
    // Import into a new ledger.
    let copy = Ledger::open(&root.join("copy/gaze.redb")).unwrap();
    let t = Instant::now();
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&file).unwrap());
    let n = gaze::history::archive::import(&copy, Box::new(input)).unwrap();
    let took = t.elapsed();
    println!(
        "import: {n} events in {:.2} s = {:.0} events/s (indexes included)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    drop(copy);
    let _ = std::fs::remove_dir_all(root.join("copy"));
    let _ = std::fs::remove_file(&file);
    // Time travel (the restore's first step), from the library's own code.
    for to in [total / 2, 1_000, total - 10] {
        let t = Instant::now();
        let lib = gaze::store::snapshot::load(&ledger, to).unwrap().0;
        println!(
            "library as of seq {to}: {:.0} ms ({} documents)",
            ms(t.elapsed()),
            lib.document_count()
        );
    }
    // The entry index: 10,000 versions of one entry.
    let t = Instant::now();
    let v =
        gaze::history::entry::versions(&ledger, Category::Characters, HOT, None, 10_000).unwrap();
    println!(
        "all {} versions of one entry, decoded (in process): {:.1} ms",
        v.total,
        ms(t.elapsed())
    );
}

async fn timed_get(http: &reqwest::Client, url: &str, n: usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for i in 0..n + 3 {
        let t = Instant::now();
        let r = http.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        size = r.bytes().await.unwrap().len();
        if i >= 3 {
            times.push(t.elapsed());
        }
    }
    (median(times), size)
}

fn bench_server(root: &Path, total: u64) {
    let t = Instant::now();
    let (mut child, url, _) = common::spawn_gaze(root, &root.join("data"), &["--paused"]);
    println!(
        "release server up on the ledger in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        for (label, path) in [
            ("/history (newest 50 events)", "/history".to_string()),
            (
                "/history?type=document_synced (a filter)",
                "/history?type=document_synced".to_string(),
            ),
            (
                "/history?origin=watcher&category=characters",
                "/history?origin=watcher&category=characters".to_string(),
            ),
            (
                "/history?before=500000 (paging into the middle)",
                "/history?before=500000".to_string(),
            ),
            (
                "/character/hot_character/history (10,000 versions, newest 100 shown)",
                format!("/character/{HOT}/history"),
            ),
            (
                "GET /api/history/characters/hot_character?limit=10000 (all 10,000 versions)",
                format!("/api/history/characters/{HOT}?limit=10000"),
            ),
            (
                "GET /api/events?order=desc&limit=100",
                "/api/events?order=desc&limit=100".to_string(),
            ),
        ] {
            let (d, size) = timed_get(&http, &format!("{url}{path}"), 20).await;
            println!("{label}: median {:.1} ms ({} KiB)", ms(d), size / 1024);
        }
        // Restores across the ledger, each undone again.
        for to in [total / 2, 1_000, total - 10, 250_000.min(total - 1)] {
            let t = Instant::now();
            let r = http
                .post(format!("{url}/api/restore"))
                .json(&serde_json::json!({"to_seq": to}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: serde_json::Value = r.json().await.unwrap();
            let took = t.elapsed();
            assert!(status.is_success(), "{v}");
            let changed = v["changes"]["documents"]["changed"]
                .as_array()
                .map_or(0, Vec::len);
            let removed = v["changes"]["documents"]["removed"]
                .as_array()
                .map_or(0, Vec::len);
            println!(
                "restore to seq {to}: {:.2} s ({changed} documents changed, {removed} taken out, files written)",
                took.as_secs_f64()
            );
            let undo = v["undo"]["to_seq"].as_u64().unwrap();
            let t = Instant::now();
            let r = http
                .post(format!("{url}/api/restore"))
                .json(&serde_json::json!({"to_seq": undo}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            println!("  undo: {:.2} s", t.elapsed().as_secs_f64());
        }
    });
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// A restore's parts, in process: the library then and the plan (no writes), and the whole
/// command (the same again, then the append, the fold and the files).
fn bench_restore_parts(root: &Path, total: u64) {
    use gaze::handle::{Handle, Paths, Request};
    let h = Handle::open(
        &root.join("ledger/gaze.redb"),
        Paths {
            data: root.join("data"),
            uploads: root.join("uploads"),
            loras: None,
            checkpoints: None,
            workflow: None,
        },
    )
    .unwrap();
    for to in [total / 2 + 25_000, total - 20_000] {
        let t = Instant::now();
        let (e, _) = h.restore_plan(to).unwrap();
        let plan = t.elapsed();
        let files = match &e {
            Some(Event::Restored { put, removed, .. }) => put.len() + removed.len(),
            _ => 0,
        };
        let t = Instant::now();
        h.execute(Origin::Cli, Request::Restore { to_seq: to })
            .unwrap();
        let all = t.elapsed();
        println!(
            "restore to seq {to} in process: library then + plan {:.0} ms; whole command {:.0} ms, of which about {:.0} ms writing {files} files",
            ms(plan),
            ms(all),
            ms(all.saturating_sub(plan))
        );
    }
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let total: u64 = std::env::var("GAZE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        .max(20_000);
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path(), total);
    bench_offline(tmp.path(), total);
    bench_server(tmp.path(), total);
    bench_restore_parts(tmp.path(), total);
}

//! Page speed with 10,000 characters (synthetic, `gaze::synth`), against the release binary:
//! a gallery page of 60 cards (first page, a deep page, a search, "recently edited"), an entry
//! page, the edit form and /library, as p50 / p99 over loopback HTTP, the size of each page's
//! HTML, and the first gallery render after a change (the search index is rebuilt once per
//! change of the shelf). Budgets: gallery and entry p50 ≤ 10 ms, HTML ≤ 150 KB.
//!
//! `cargo build --release && cargo bench --bench pages`

#[path = "common.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

fn write_characters(data: &Path, n: usize) {
    let dir = data.join("characters");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let doc = gaze::synth::document("characters", i, 7);
        let text = gaze::library::command::render(doc.as_object().unwrap());
        std::fs::write(dir.join(gaze::synth::file_name("characters", i, 7)), text).unwrap();
    }
}

/// The sample library's other categories (checkpoints for the selectors, looks, …).
fn copy_samples(data: &Path) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    for d in [
        "looks",
        "clothing",
        "actions",
        "styles",
        "scenes",
        "detailers",
        "checkpoints",
        "presets",
    ] {
        let to = data.join(d);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(sample.join(d)).unwrap().flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure(http: &reqwest::Client, url: &str, n: usize) -> (Duration, Duration, usize, u16) {
    let mut lat = Vec::with_capacity(n);
    let mut size = 0;
    let mut status = 0;
    for i in 0..n + 10 {
        let t = Instant::now();
        let r = http.get(url).send().await.unwrap();
        status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        if i >= 10 {
            lat.push(t.elapsed());
        }
        size = body.len();
    }
    lat.sort();
    (pct(&lat, 0.5), pct(&lat, 0.99), size, status)
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_characters(&data, 10_000);
    copy_samples(&data);
    let (mut child, url, took) =
        common::spawn_gaze(tmp.path(), &data, &["--comfy", "http://127.0.0.1:9"]);
    println!(
        "pages with 10,000 characters (binary {}; start-up {:.1} s)",
        common::gaze_exe().display(),
        took.as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut over = Vec::new();
    rt.block_on(async {
        let http = reqwest::Client::new();
        // The search indexes are built in the background at start-up; a gallery request that
        // comes at once waits for that.
        let t = Instant::now();
        http.get(format!("{url}/"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        println!(
            "  first gallery page, right after start-up (index still building): {:.1} ms",
            ms(t.elapsed())
        );
        let slug = "synth_character_004242";
        let pages: [(&str, String, bool); 8] = [
            ("gallery, page 1 of 167 (60 cards)", format!("{url}/"), true),
            ("gallery, page 100", format!("{url}/?page=100"), true),
            (
                "gallery, search 'character 12'",
                format!("{url}/?q=character+12"),
                true,
            ),
            (
                "gallery, recently edited",
                format!("{url}/?sort=edited&page=7"),
                true,
            ),
            ("gallery, 120 per page", format!("{url}/?per=120"), false),
            ("entry page", format!("{url}/character/{slug}"), true),
            ("edit form", format!("{url}/character/{slug}/edit"), false),
            ("/library", format!("{url}/library"), false),
        ];
        for (label, u, budgeted) in &pages {
            let (p50, p99, size, status) = measure(&http, u, 200).await;
            assert_eq!(status, 200, "{label}");
            println!(
                "  {label:<36} p50 {:>6.2} ms  p99 {:>6.2} ms  HTML {:>4} KB",
                ms(p50),
                ms(p99),
                size / 1024
            );
            if *budgeted && ms(p50) > 10.0 {
                over.push(format!("{label}: p50 {:.2} ms > 10 ms", ms(p50)));
            }
            if size > 150 * 1024 {
                over.push(format!("{label}: {} KB > 150 KB", size / 1024));
            }
        }
        // A change to the shelf (a star) makes the next gallery request rebuild the index.
        let token = {
            let page = http
                .get(format!("{url}/library"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let i = page.find("name=\"csrf-token\" content=\"").unwrap() + 27;
            page[i..i + 64].to_string()
        };
        let mut rebuild = Vec::new();
        for i in 0..20 {
            http.post(format!("{url}/character/{slug}/favourite"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-requested-with", "XMLHttpRequest")
                .body(format!("csrf={token}&on={}", i % 2))
                .send()
                .await
                .unwrap();
            let t = Instant::now();
            http.get(format!("{url}/"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            rebuild.push(t.elapsed());
        }
        rebuild.sort();
        println!(
            "  gallery right after a change (index rebuilt): p50 {:.2} ms, p99 {:.2} ms",
            ms(pct(&rebuild, 0.5)),
            ms(pct(&rebuild, 0.99))
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    if over.is_empty() {
        println!("  within budget (gallery and entry p50 ≤ 10 ms, every page ≤ 150 KB)");
    } else {
        println!("  OVER BUDGET: {}", over.join("; "));
    }
}

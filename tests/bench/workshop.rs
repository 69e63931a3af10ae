//! Workshop speed, with figures printed (budgets from issue 9):
//!
//! 1. The image index at 1,000,000 images, in process: folding a ledger of 1,000,000 job
//!    requests and 1,000,000 results (the cold start-up build), writing and reading its cache
//!    file (the warm start-up), and queries (a page of 60: first, deep, filtered).
//! 2. The image gallery over HTTP against the release binary at 1,000,000 images: start-up
//!    (index from the ledger, then from its cache), the first page, and p50/p99 of pages of 60
//!    (first, deep, by category, by entry, favourites, a date range, oldest first). Budget: a
//!    page of 60 at most 10 ms p50. (This ledger holds only the results: on this branch the
//!    jobs projection keeps every finished job in memory, which issue 12 bounds.)
//! 3. Search over 10,000 entries and 100,000 images (with prompts) over HTTP, and its parts in
//!    process. Budget: 10 ms p50.
//! 4. The generator's prompt preview over HTTP on the sample library. Budget: 5 ms p50.
//!
//! `cargo build --release && cargo bench --bench workshop` (`GAZE_BENCH_IMAGES` changes the
//! size of parts 1 and 2).

#[path = "common.rs"]
mod common;

use gaze::gallery::index::{Filter, Index};
use gaze::library::category::Category;
use gaze::store::event::{Envelope, Event, JobSpec, Origin};
use gaze::store::ledger::Ledger;
use std::path::Path;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WORDS: [&str; 60] = [
    "silver",
    "hair",
    "long",
    "short",
    "blue",
    "eyes",
    "red",
    "green",
    "smile",
    "closed",
    "mouth",
    "maid",
    "dress",
    "apron",
    "kimono",
    "school",
    "uniform",
    "armor",
    "cape",
    "hat",
    "forest",
    "beach",
    "city",
    "night",
    "sunset",
    "rain",
    "snow",
    "library",
    "shrine",
    "cafe",
    "sitting",
    "standing",
    "running",
    "waving",
    "reading",
    "jumping",
    "watercolor",
    "sketch",
    "anime",
    "pixel",
    "soft",
    "lighting",
    "rim",
    "light",
    "detailed",
    "sparkle",
    "ribbon",
    "boots",
    "gloves",
    "scarf",
    "twintails",
    "ponytail",
    "braid",
    "freckles",
    "glasses",
    "umbrella",
    "lantern",
    "flowers",
    "stars",
    "clouds",
];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A prompt of 18 words from the pool, the same for the same `n`.
fn prompt(n: u64) -> String {
    let mut words: Vec<String> = (0..18)
        .map(|i| WORDS[(splitmix(n * 31 + i) % WORDS.len() as u64) as usize].to_string())
        .collect();
    words.push(format!("theme{}", n % 997));
    words.join(", ")
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn character_slugs(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let doc = gaze::synth::document("characters", i, 7);
            Category::Characters.slug_of(doc["character_id"].as_str().unwrap())
        })
        .collect()
}

fn write_category(data: &Path, category: &str, n: usize) {
    let dir = data.join(gaze::synth::folder(category).unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let doc = gaze::synth::document(category, i, 7);
        let text = gaze::library::command::render(doc.as_object().unwrap());
        std::fs::write(dir.join(gaze::synth::file_name(category, i, 7)), text).unwrap();
    }
}

fn copy_checkpoints(data: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/checkpoints");
    let to = data.join("checkpoints");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Writes `n` images into a ledger: with `requests`, each job's request (a small recipe with a
/// prompt from a pool of `prompts`) before its result. One image every 30 s, newest now.
fn write_images(
    ledger: &Path,
    n: usize,
    slugs: &[String],
    requests: bool,
    prompts: u64,
) -> Duration {
    let l = Ledger::open(ledger).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let start_ms = now - n as u64 * 30_000;
    let t = Instant::now();
    let mut batch = Vec::with_capacity(20_000);
    let mut id = 1u128 << 100;
    for i in 0..n {
        let at = start_ms + i as u64 * 30_000;
        let job = (u128::from(at) << 80) | i as u128;
        let slug = &slugs[i % slugs.len()];
        // Every fifth image is the generator's.
        let (target, dir) = if i % 5 == 4 {
            (None, "uploads/generator".to_string())
        } else {
            (
                Some((Category::Characters, slug.clone())),
                format!("uploads/characters/{slug}"),
            )
        };
        let path = format!(
            "{dir}/{}_0.png",
            ulid::Ulid::from(job).to_string().to_lowercase()
        );
        let mut push = |event: Event| {
            id += 1;
            batch.push(Envelope {
                id,
                at,
                origin: Origin::Reactor,
                event,
            });
        };
        if requests {
            let p = prompt(i as u64 % prompts);
            push(Event::JobRequested {
                job,
                spec: JobSpec {
                    label: "characters/x".into(),
                    target,
                    set_cover: false,
                    recipe: format!(
                        "{{\"prompts\":{{\"main\":\"{p}\",\"negative\":\"lowres\"}},\"seed\":{i}}}"
                    ),
                    request: "{}".into(),
                    batch: None,
                    retry_of: None,
                    endless: None,
                },
            });
        }
        push(Event::JobSucceeded {
            job,
            images: vec![path],
        });
        if batch.len() >= 20_000 {
            l.append(std::mem::take(&mut batch)).unwrap();
        }
    }
    if !batch.is_empty() {
        l.append(batch).unwrap();
    }
    t.elapsed()
}

fn measure_index(n: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let ledger = tmp.path().join("gaze.redb");
    let slugs = character_slugs(1000);
    let wrote = write_images(&ledger, n, &slugs, true, 50_000);
    println!(
        "1. image index, in process, {n} images (a ledger of {} events written in {:.1} s)",
        2 * n,
        wrote.as_secs_f64()
    );
    let l = Ledger::open(&ledger).unwrap();
    let t = Instant::now();
    let mut ix = Index::default();
    l.fold(1, u64::MAX, |s| {
        if Index::concerns(s.event()) {
            ix.apply(&s);
        }
        true
    })
    .unwrap();
    let cold = t.elapsed();
    println!(
        "  cold build (fold every event of the ledger): {:.2} s for {} rows",
        cold.as_secs_f64(),
        ix.total_rows()
    );
    let t = Instant::now();
    let bytes = gaze::gallery::cache::encode(&ix, 1);
    let enc = t.elapsed();
    let file = tmp.path().join("images.cache");
    std::fs::write(&file, &bytes).unwrap();
    let t = Instant::now();
    let (back, _) = gaze::gallery::cache::read(&file).unwrap();
    let warm = t.elapsed();
    assert_eq!(back.total_rows(), ix.total_rows());
    println!(
        "  cache: {:.1} MB, written (encode) in {:.0} ms, read back in {:.0} ms (the warm start-up)",
        bytes.len() as f64 / 1e6,
        ms(enc),
        ms(warm)
    );
    let nsfw = vec![false; ix.dirs.len()];
    let tifa = ix.dirs.iter().find_map(|d| d.entry.clone()).unwrap();
    let cases: Vec<(&str, Filter, usize)> = vec![
        ("page 1", Filter::default(), 0),
        ("page 8,000", Filter::default(), 60 * 7_999),
        (
            "category, page 100",
            Filter {
                category: Some(Some(Category::Characters)),
                ..Filter::default()
            },
            60 * 99,
        ),
        (
            "one entry",
            Filter {
                entry: Some(tifa),
                ..Filter::default()
            },
            0,
        ),
        (
            "date range (30 days)",
            Filter {
                from: Some(
                    (std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        - 60 * 86_400) as u32,
                ),
                until: Some(
                    (std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        - 30 * 86_400) as u32,
                ),
                category: Some(Some(Category::Characters)),
                ..Filter::default()
            },
            0,
        ),
        (
            "oldest first, hide NSFW",
            Filter {
                oldest_first: true,
                hide_nsfw: true,
                ..Filter::default()
            },
            0,
        ),
    ];
    for (label, f, offset) in cases {
        let mut lat = Vec::new();
        let mut total = 0;
        for _ in 0..30 {
            let t = Instant::now();
            let (ids, n) = ix.page(&f, &nsfw, offset, 60);
            std::hint::black_box(ids);
            total = n;
            lat.push(t.elapsed());
        }
        println!(
            "  query {label:<26} {:>7.3} ms p50 ({total} match)",
            ms(pct(&mut lat, 0.5))
        );
    }
}

async fn get_p(http: &reqwest::Client, url: &str, n: usize) -> (Duration, Duration, usize, u16) {
    let mut lat = Vec::with_capacity(n);
    let mut size = 0;
    let mut status = 0;
    for i in 0..n + 5 {
        let t = Instant::now();
        let r = http.get(url).send().await.unwrap();
        status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        if i >= 5 {
            lat.push(t.elapsed());
        }
        size = body.len();
    }
    (pct(&mut lat, 0.5), pct(&mut lat, 0.99), size, status)
}

fn gallery_over_http(n: usize, rt: &tokio::runtime::Runtime) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_category(&data, "characters", 1000);
    copy_checkpoints(&data);
    let slugs = character_slugs(1000);
    let wrote = write_images(&tmp.path().join("ledger/gaze.redb"), n, &slugs, false, 1);
    println!(
        "2. image gallery over HTTP, {n} images (results only; written in {:.1} s)",
        wrote.as_secs_f64()
    );
    let mut over = Vec::new();
    for round in ["from the ledger", "from its cache"] {
        let (mut child, url, took) =
            common::spawn_gaze(tmp.path(), &data, &["--comfy", "http://127.0.0.1:9"]);
        rt.block_on(async {
            let http = reqwest::Client::new();
            let t = Instant::now();
            let r = http.get(format!("{url}/gallery")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
            println!(
                "  start-up ({round}): listening after {:.2} s, first gallery page after {:.2} s more",
                took.as_secs_f64(),
                t.elapsed().as_secs_f64()
            );
            if round == "from its cache" {
                return;
            }
            let slug = &slugs[42];
            let pages = [
                ("page 1 (60)", "/gallery".to_string()),
                ("page 8,000", "/gallery?page=8000".to_string()),
                ("characters, page 100", "/gallery?category=characters&page=100".to_string()),
                ("one entry", format!("/gallery?entry=characters%2F{slug}")),
                ("favourites", "/gallery?fav=1".to_string()),
                ("a month, oldest first", {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let day = |s: u64| {
                        let d = (s / 86_400) as i64;
                        // civil date of day d
                        let z = d + 719_468;
                        let era = z.div_euclid(146_097);
                        let doe = z - era * 146_097;
                        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
                        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
                        let mp = (5 * doy + 2) / 153;
                        let dd = doy - (153 * mp + 2) / 5 + 1;
                        let m = if mp < 10 { mp + 3 } else { mp - 9 };
                        let y = yoe + era * 400 + i64::from(m <= 2);
                        format!("{y:04}-{m:02}-{dd:02}")
                    };
                    format!(
                        "/gallery?from={}&to={}&sort=oldest",
                        day(now - 90 * 86_400),
                        day(now - 60 * 86_400)
                    )
                }),
                ("per page 240", "/gallery?per=240&page=3".to_string()),
            ];
            for (label, path) in pages {
                let (p50, p99, size, status) = get_p(&http, &format!("{url}{path}"), 40).await;
                assert_eq!(status, 200, "{path}");
                println!(
                    "  {label:<24} p50 {:>6.2} ms  p99 {:>6.2} ms  {:>4} KB",
                    ms(p50),
                    ms(p99),
                    size / 1024
                );
                if ms(p50) > 10.0 && !label.contains("240") {
                    over.push(format!("gallery {label}: {:.2} ms p50", ms(p50)));
                }
            }
            let (p50, _, _, _) = get_p(
                &http,
                &format!("{url}/gallery/image?path=uploads%2Fcharacters%2F{slug}%2Fx.png"),
                10,
            )
            .await;
            println!("  image view (not found)   p50 {:>6.2} ms", ms(p50));
        });
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    let cache = tmp.path().join("ledger/images.cache");
    println!(
        "  cache file: {:.1} MB",
        std::fs::metadata(&cache).map_or(0, |m| m.len()) as f64 / 1e6
    );
    over
}

fn search(rt: &tokio::runtime::Runtime) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let per = 1_112;
    for c in [
        "characters",
        "looks",
        "outfits",
        "actions",
        "styles",
        "scenes",
        "detailers",
        "presets",
    ] {
        write_category(&data, c, per);
    }
    copy_checkpoints(&data);
    let images = 100_000;
    let slugs = character_slugs(per);
    write_images(
        &tmp.path().join("ledger/gaze.redb"),
        images,
        &slugs,
        true,
        20_000,
    );
    // In process: the entry word indexes and the prompt words.
    let lib = gaze::library::sync::library_from_disk(&data);
    let t = Instant::now();
    let indexes: Vec<_> = Category::ALL
        .iter()
        .map(|c| gaze::library::search::EntryIndex::build(&lib, *c))
        .collect();
    let build = t.elapsed();
    let entries: usize = Category::ALL.iter().map(|c| lib.count(*c)).sum();
    let mut words = gaze::gallery::words::Words::default();
    for i in 0..20_000 {
        words.add(&prompt(i));
    }
    words.finish();
    println!(
        "3. search, {entries} entries and {images} images ({} distinct prompts)",
        words.prompt_count()
    );
    println!(
        "  in process: entry word indexes built in {:.0} ms (once per change of a category)",
        ms(build)
    );
    for q in ["synth", "character 12", "hair", "sil"] {
        let mut lat = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            for ix in &indexes {
                std::hint::black_box(ix.search(q, 24));
            }
            std::hint::black_box(words.matching(q));
            lat.push(t.elapsed());
        }
        println!(
            "  in process: '{q}' over every category and the prompt words: {:.3} ms p50",
            ms(pct(&mut lat, 0.5))
        );
    }
    let (mut child, url, took) =
        common::spawn_gaze(tmp.path(), &data, &["--comfy", "http://127.0.0.1:9"]);
    let mut over = Vec::new();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let t = Instant::now();
        // The prompt words are read in the background after start-up.
        loop {
            let text = http
                .get(format!("{url}/gallery?q=zzz"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if !text.contains("still being indexed") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "prompts not indexed"
            );
        }
        println!(
            "  start-up {:.1} s; every image's prompt words read {:.1} s later",
            took.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
        for (label, q) in [
            ("an entry name", "character+1234"),
            ("a tag", "synthetic"),
            ("a prompt word (images)", "twintails"),
            ("two prompt words", "silver+lantern"),
            ("a rare prompt word", "theme42"),
            ("nothing", "qqqqqq"),
            ("the navbar's short list", "hair&partial=1"),
        ] {
            let (p50, p99, size, status) = get_p(&http, &format!("{url}/search?q={q}"), 40).await;
            assert_eq!(status, 200);
            println!(
                "  /search {label:<24} p50 {:>6.2} ms  p99 {:>6.2} ms  {:>4} KB",
                ms(p50),
                ms(p99),
                size / 1024
            );
            if ms(p50) > 10.0 {
                over.push(format!("search {label}: {:.2} ms p50", ms(p50)));
            }
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    over
}

fn generator_preview(rt: &tokio::runtime::Runtime) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let (mut child, url, _) =
        common::spawn_gaze(tmp.path(), &data, &["--comfy", "http://127.0.0.1:9"]);
    let mut over = Vec::new();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let body = serde_json::json!({
            "character": "tifa_lockhart",
            "extras": ["outfits/victorian_maid", "actions/waving", "styles/watercolor", "scenes/night_city"],
            "fields": ["identity::hair", "identity::eyes", "wardrobe::top"],
            "extra_positive": "lanterns", "width": 832, "height": 1216
        })
        .to_string();
        let mut lat = Vec::new();
        let mut size = 0;
        for i in 0..110 {
            let t = Instant::now();
            let r = http
                .post(format!("{url}/generator/preview_prompt"))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            size = r.bytes().await.unwrap().len();
            if i >= 10 {
                lat.push(t.elapsed());
            }
        }
        let p50 = pct(&mut lat, 0.5);
        let p99 = pct(&mut lat, 0.99);
        println!(
            "4. generator preview over HTTP (character + 4 mixed-in entries): p50 {:.2} ms  p99 {:.2} ms  {} KB",
            ms(p50),
            ms(p99),
            size / 1024
        );
        if ms(p50) > 5.0 {
            over.push(format!("generator preview: {:.2} ms p50", ms(p50)));
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    over
}

fn main() {
    let n: usize = std::env::var("GAZE_BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "workshop benchmark (binary {})",
        common::gaze_exe().display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    measure_index(n);
    let mut over = gallery_over_http(n, &rt);
    over.extend(search(&rt));
    over.extend(generator_preview(&rt));
    if over.is_empty() {
        println!("every budget met");
    } else {
        println!("over budget: {}", over.join("; "));
    }
}

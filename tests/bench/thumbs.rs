//! Thumbnail benchmark (issue: the library in the browser, item 4). Prints figures; asserts
//! nothing. `cargo bench --bench thumbs` (`GAZE_BENCH_COVERS`, default 1,000): how fast one
//! thread makes thumbnails of 832×1216 covers in-process, then, through the release binary, how
//! fast the background worker makes them for covers uploaded to a library, while a page and the
//! list API keep being timed.

#[path = "common.rs"]
mod common;

use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A distinct render-like cover (smooth bands; every seed differs).
fn cover(seed: u32) -> Vec<u8> {
    let (w, h) = (832u32, 1216u32);
    let s = f64::from(seed);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let fx = f64::from(x) / f64::from(w);
        let fy = f64::from(y) / f64::from(h);
        let band = ((fx * (5.0 + s % 7.0) + fy * 9.0 + s).sin() * 0.5 + 0.5) * 90.0;
        image::Rgb([
            (fx * 150.0 + band) as u8,
            (fy * 140.0 + (s * 13.0) % 60.0) as u8,
            (band * 1.5) as u8,
        ])
    });
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    );
    img.write_with_encoder(enc).unwrap();
    out
}

fn main() {
    let n: u32 = std::env::var("GAZE_BENCH_COVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let covers: Vec<Vec<u8>> = (0..n).map(cover).collect();
    let avg = covers.iter().map(Vec::len).sum::<usize>() / covers.len().max(1);
    println!(
        "thumbs: {n} distinct 832×1216 PNG covers (avg {} KiB) made in {:.1} s",
        avg / 1024,
        t.elapsed().as_secs_f64()
    );

    // Where the time goes, for one cover.
    let t = Instant::now();
    for c in covers.iter().take(20) {
        std::hint::black_box(image::load_from_memory(c).unwrap());
    }
    let decode = t.elapsed() / 20;
    let t = Instant::now();
    for c in covers.iter().take(20) {
        std::hint::black_box(gaze::library::thumbs::make(c, 512).unwrap());
    }
    let whole = t.elapsed() / 20;
    println!(
        "thumbs: one 512-px thumbnail: {:.1} ms, of which decoding the PNG {:.1} ms",
        ms(whole),
        ms(decode)
    );

    // In-process, one thread, two widths per cover.
    let uploads = dir.path().join("inproc");
    std::fs::create_dir_all(uploads.join("characters/x")).unwrap();
    for (i, c) in covers.iter().enumerate().take(200) {
        std::fs::write(uploads.join(format!("characters/x/c{i}.png")), c).unwrap();
    }
    let thumbs = gaze::library::thumbs::Thumbs::open(&uploads);
    let t = Instant::now();
    let mut sizes = Vec::new();
    for i in 0..200.min(n) {
        for p in thumbs
            .get_many(&format!("characters/x/c{i}.png"), &[240, 512])
            .unwrap()
        {
            sizes.push(std::fs::metadata(p).unwrap().len());
        }
    }
    let took = t.elapsed();
    sizes.sort_unstable();
    println!(
        "thumbs: in-process, one thread, one decode per cover: {} thumbnails in {:.2} s = {:.0}/s; size p50 {:.1} KiB, max {:.1} KiB (limit 40 KiB)",
        sizes.len(),
        took.as_secs_f64(),
        sizes.len() as f64 / took.as_secs_f64(),
        sizes[sizes.len() / 2] as f64 / 1024.0,
        sizes.last().copied().unwrap_or(0) as f64 / 1024.0
    );
    let t = Instant::now();
    for i in 0..200.min(n) {
        thumbs.get(&format!("characters/x/c{i}.png"), 240).unwrap();
    }
    println!(
        "thumbs: cached look-up: {:.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(200.min(n))
    );

    // Through the binary: a library of n characters, each given a cover.
    let data = dir.path().join("data");
    let status = std::process::Command::new(common::gaze_exe())
        .args(["synth", "--count", &n.to_string(), "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(status.status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (mut child, url, _) = common::spawn_gaze(dir.path(), &data, &[]);
        let http = reqwest::Client::new();
        let list: serde_json::Value = http
            .get(format!("{url}/api/library/characters"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let slugs: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["slug"].as_str().unwrap().to_string())
            .collect();
        let time_reads = |http: reqwest::Client, url: String| async move {
            let mut v = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                let r = http.get(format!("{url}/library")).send().await.unwrap();
                let _ = r.bytes().await.unwrap();
                v.push(t.elapsed());
            }
            p50(v)
        };
        let idle = time_reads(http.clone(), url.clone()).await;
        let t = Instant::now();
        for (slug, c) in slugs.iter().zip(&covers) {
            let r = http
                .post(format!("{url}/api/library/characters/{slug}/cover"))
                .header("content-type", "image/png")
                .body(c.clone())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
        let uploaded = t.elapsed();
        let busy = time_reads(http.clone(), url.clone()).await;
        let thumbs_dir = dir.path().join("uploads/.thumbs");
        let want = 2 * slugs.len();
        let count = || {
            std::fs::read_dir(&thumbs_dir)
                .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".jpg")).count())
                .unwrap_or(0)
        };
        while count() < want && t.elapsed() < Duration::from_secs(1800) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let all = t.elapsed();
        println!(
            "thumbs: background worker: {} covers uploaded in {:.1} s; {} thumbnails (240 and 512 px) done {:.1} s after the first upload = {:.0} thumbnails/s",
            slugs.len(),
            uploaded.as_secs_f64(),
            count(),
            all.as_secs_f64(),
            count() as f64 / all.as_secs_f64()
        );
        println!(
            "thumbs: GET /library p50 {:.2} ms idle, {:.2} ms while thumbnails were being made",
            ms(idle),
            ms(busy)
        );
        let _ = child.kill();
        let _ = child.wait();
    });
}

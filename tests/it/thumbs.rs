//! Thumbnails through the real binary: a cover gets small JPEG copies made in the background,
//! served immutable; the route refuses path tricks and odd widths.

use crate::support::app::{Gaze, eventually, sample_data};
use std::time::Duration;

fn render_like_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let fx = f64::from(x) / f64::from(w);
        let fy = f64::from(y) / f64::from(h);
        let band = ((fx * 11.0 + fy * 7.0).sin() * 0.5 + 0.5) * 80.0;
        image::Rgb([
            (fx * 170.0 + band) as u8,
            (fy * 150.0) as u8,
            (band * 2.0) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn covers_get_small_immutable_thumbnails() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let png = render_like_png(832, 1216);
    let r = g
        .http
        .post(format!(
            "{}/api/library/characters/tifa_lockhart/cover",
            g.url
        ))
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, entry) = g.get("/api/library/characters/tifa_lockhart").await;
    let cover = entry["cover"]
        .as_str()
        .unwrap()
        .trim_start_matches("/static/")
        .to_string();

    // The background worker makes the gallery and entry-page sizes without being asked.
    let thumbs = g.uploads().join(".thumbs");
    let made = eventually(Duration::from_secs(10), || async {
        std::fs::read_dir(&thumbs)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".jpg"))
                    .count()
            })
            .unwrap_or(0)
            >= 2
    })
    .await;
    assert!(made, "no background thumbnails:\n{}", g.log());

    for width in [240u32, 512] {
        let r = g
            .http
            .get(format!("{}/thumb/{width}/{cover}", g.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{cover}");
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let bytes = r.bytes().await.unwrap();
        assert!(bytes.len() <= 40 * 1024, "{width}: {} bytes", bytes.len());
        assert!(
            bytes.len() * 10 < png.len(),
            "a thumbnail is far smaller than the cover"
        );
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!(img.width(), width);
    }

    for (path, status) in [
        (format!("/thumb/241/{cover}"), 400),
        (
            "/thumb/240/uploads/characters/..%2F..%2F..%2Fledger%2Fgaze.redb".to_string(),
            400,
        ),
        ("/thumb/240/uploads/.thumbs/index.tsv".to_string(), 400),
        ("/thumb/x/uploads/a.png".to_string(), 400),
        (
            "/thumb/240/uploads/characters/tifa_lockhart/none.png".to_string(),
            404,
        ),
    ] {
        let r = g.http.get(format!("{}{path}", g.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
    // A file that is not an image is a clear error, not a crash.
    std::fs::write(
        g.uploads().join("characters/tifa_lockhart/broken.png"),
        b"nope",
    )
    .unwrap();
    let r = g
        .http
        .get(format!(
            "{}/thumb/240/uploads/characters/tifa_lockhart/broken.png",
            g.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("cannot be decoded"));
}

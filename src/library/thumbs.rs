//! Thumbnails of covers and generated images: resized JPEG copies made once, kept on disk by
//! the source's content hash and the width (`<uploads>/.thumbs/<hash>_<width>.jpg`), so pages
//! never send full-size images. An index (`.thumbs/index.tsv`: path, modification time, length,
//! content hash) lets a thumbnail be found without reading its source again after a restart.
//!
//! Outside dependency: the `image` crate (decoding PNG, JPEG, WebP and GIF; encoding JPEG), and
//! the file system under the uploads folder. Must not: write anywhere else, or block an async
//! thread (callers run it on blocking threads).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The widths thumbnails are made at (a fixed set, so the cache cannot be grown without bound).
pub const WIDTHS: [u32; 4] = [160, 240, 512, 768];
/// The most a thumbnail may weigh; quality is lowered until it fits.
pub const MAX_BYTES: usize = 40 * 1024;
/// Sources larger than this are not decoded (a cover is at most 20 MiB).
const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;
/// Tall images are cropped from the top to this height-to-width ratio.
const MAX_RATIO: f64 = 2.0;

/// The source file's identity as the file system reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified_ns: u128,
    len: u64,
}

/// The thumbnail cache of one uploads folder.
#[derive(Debug)]
pub struct Thumbs {
    uploads: PathBuf,
    dir: PathBuf,
    /// Uploads-relative source path → its stamp and content hash.
    index: Mutex<HashMap<String, (Stamp, u64)>>,
}

/// Why no thumbnail could be made.
#[derive(Debug, PartialEq, Eq)]
pub enum ThumbError {
    /// The width is not one of `WIDTHS`, or the path is not a plain path inside the uploads.
    Invalid(String),
    /// No such source image.
    NotFound,
    /// The source could not be read or decoded.
    Broken(String),
}

impl std::fmt::Display for ThumbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThumbError::Invalid(m) | ThumbError::Broken(m) => f.write_str(m),
            ThumbError::NotFound => f.write_str("no such image"),
        }
    }
}

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Stamp {
        modified_ns,
        len: meta.len(),
    }
}

impl Thumbs {
    /// Opens the cache under `uploads/.thumbs`, reading its index if there is one.
    pub fn open(uploads: &Path) -> Thumbs {
        let dir = uploads.join(".thumbs");
        let mut index = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(dir.join("index.tsv")) {
            for line in text.lines() {
                let mut f = line.split('\t');
                let (Some(path), Some(m), Some(l), Some(h)) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    continue;
                };
                if let (Ok(modified_ns), Ok(len), Ok(hash)) =
                    (m.parse(), l.parse(), u64::from_str_radix(h, 16))
                {
                    index.insert(path.to_string(), (Stamp { modified_ns, len }, hash));
                }
            }
        }
        Thumbs {
            uploads: uploads.to_path_buf(),
            dir,
            index: Mutex::new(index),
        }
    }

    /// The source file for an uploads-relative path (`characters/tifa/cover_x.png`), refusing
    /// anything that could leave the uploads folder.
    fn source(&self, rel: &str) -> Result<PathBuf, ThumbError> {
        let plain = !rel.is_empty()
            && rel.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && !seg.starts_with('.')
                    && !seg.contains('\\')
            });
        if !plain {
            return Err(ThumbError::Invalid(format!(
                "'{rel}' is not an image path inside the uploads folder"
            )));
        }
        crate::library::files::resolve_inside(&self.uploads, rel).map_err(ThumbError::Invalid)
    }

    fn thumb_path(&self, hash: u64, width: u32) -> PathBuf {
        self.dir.join(format!("{hash:016x}_{width}.jpg"))
    }

    /// The thumbnail of `rel` at `width`, made now if it is not on disk yet. Blocking.
    pub fn get(&self, rel: &str, width: u32) -> Result<PathBuf, ThumbError> {
        let mut made = self.get_many(rel, &[width])?;
        made.pop().ok_or(ThumbError::NotFound)
    }

    /// The thumbnails of `rel` at each of `widths` (in that order), decoding the source at most
    /// once for all of them. Blocking.
    pub fn get_many(&self, rel: &str, widths: &[u32]) -> Result<Vec<PathBuf>, ThumbError> {
        if let Some(w) = widths.iter().find(|w| !WIDTHS.contains(w)) {
            return Err(ThumbError::Invalid(format!(
                "thumbnails come in widths {WIDTHS:?}, not {w}"
            )));
        }
        let src = self.source(rel)?;
        let meta = match std::fs::metadata(&src) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Err(ThumbError::NotFound),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ThumbError::NotFound);
            }
            Err(e) => return Err(ThumbError::Broken(e.to_string())),
        };
        if meta.len() > MAX_SOURCE_BYTES {
            return Err(ThumbError::Broken(format!(
                "{rel} is larger than {MAX_SOURCE_BYTES} bytes"
            )));
        }
        let now = stamp(&meta);
        let known = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(rel)
            .copied();
        let hash = match known {
            Some((s, hash)) if s == now => hash,
            _ => {
                let bytes = std::fs::read(&src).map_err(|e| ThumbError::Broken(e.to_string()))?;
                let hash = crate::store::event::content_hash(&bytes);
                self.remember(rel, now, hash);
                hash
            }
        };
        let outs: Vec<PathBuf> = widths.iter().map(|w| self.thumb_path(hash, *w)).collect();
        let missing: Vec<(u32, &PathBuf)> = widths
            .iter()
            .copied()
            .zip(&outs)
            .filter(|(_, p)| !p.is_file())
            .collect();
        if missing.is_empty() {
            return Ok(outs);
        }
        let bytes = std::fs::read(&src).map_err(|e| ThumbError::Broken(e.to_string()))?;
        let mut img = decode(&bytes)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| ThumbError::Broken(e.to_string()))?;
        let mut missing = missing;
        // Widest first: each smaller one is made from the previous, not from the full image.
        missing.sort_by_key(|(w, _)| std::cmp::Reverse(*w));
        for (w, out) in missing {
            if img.width() > w.saturating_mul(2) {
                let h = (f64::from(img.height()) * f64::from(w) * 1.5 / f64::from(img.width()))
                    .round() as u32;
                img = img.thumbnail_exact(w.saturating_mul(3) / 2, h.max(1));
            }
            let jpeg = shrink(&img, w)?;
            crate::library::files::write_atomic(out, &jpeg)
                .map_err(|e| ThumbError::Broken(e.to_string()))?;
        }
        Ok(outs)
    }

    fn remember(&self, rel: &str, s: Stamp, hash: u64) {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if index.get(rel) == Some(&(s, hash)) {
            return;
        }
        index.insert(rel.to_string(), (s, hash));
        drop(index);
        // The index is a cache: a line that cannot be written only costs a re-read later.
        let _ = std::fs::create_dir_all(&self.dir);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("index.tsv"))
        {
            let _ = writeln!(f, "{rel}\t{}\t{}\t{hash:016x}", s.modified_ns, s.len);
        }
    }

    /// Whether `rel` has a thumbnail at `width` on disk already (without reading the source).
    pub fn is_cached(&self, rel: &str, width: u32) -> bool {
        let Ok(src) = self.source(rel) else {
            return false;
        };
        let Ok(meta) = std::fs::metadata(src) else {
            return false;
        };
        let known = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(rel)
            .copied();
        known.is_some_and(|(s, h)| s == stamp(&meta) && self.thumb_path(h, width).is_file())
    }
}

/// Decodes an image and makes a JPEG `width` pixels wide (never wider than the source), at most
/// `MAX_BYTES`, transparent parts on a dark background.
pub fn make(bytes: &[u8], width: u32) -> Result<Vec<u8>, ThumbError> {
    shrink(&decode(bytes)?, width)
}

fn decode(bytes: &[u8]) -> Result<image::DynamicImage, ThumbError> {
    image::load_from_memory(bytes)
        .map_err(|e| ThumbError::Broken(format!("the image cannot be decoded: {e}")))
}

fn shrink(img: &image::DynamicImage, width: u32) -> Result<Vec<u8>, ThumbError> {
    let (w, h) = (img.width().max(1), img.height().max(1));
    let cropped;
    let img = if f64::from(h) / f64::from(w) > MAX_RATIO {
        cropped = img.crop_imm(0, 0, w, (f64::from(w) * MAX_RATIO) as u32);
        &cropped
    } else {
        img
    };
    let target_w = width.min(img.width()).max(1);
    let target_h =
        ((f64::from(img.height()) * f64::from(target_w) / f64::from(img.width())).round() as u32)
            .max(1);
    let mut size = (target_w, target_h);
    loop {
        let jpeg = encode(img, size)?;
        // Quality alone could not bring it under the limit (an image of pure noise): shrink.
        if jpeg.len() <= MAX_BYTES || size.0 <= 32 {
            return Ok(jpeg);
        }
        size = ((size.0 * 3 / 4).max(1), (size.1 * 3 / 4).max(1));
    }
}

/// The smallest-loss JPEG of `img` at `size` that fits `MAX_BYTES`, or the last one tried.
fn encode(img: &image::DynamicImage, (w, h): (u32, u32)) -> Result<Vec<u8>, ThumbError> {
    // `thumbnail` samples by area averages: much faster than a filtered resize, and as good
    // when shrinking several times.
    let small = if (w, h) == (img.width(), img.height()) {
        img.clone()
    } else {
        img.thumbnail_exact(w, h)
    };
    let rgb = if small.color().has_alpha() {
        let rgba = small.to_rgba8();
        let mut rgb = image::RgbImage::new(w, h);
        for (x, y, p) in rgba.enumerate_pixels() {
            let a = u16::from(p[3]);
            let blend = |c: u8, bg: u16| ((u16::from(c) * a + bg * (255 - a)) / 255) as u8;
            rgb.put_pixel(
                x,
                y,
                image::Rgb([blend(p[0], 24), blend(p[1], 25), blend(p[2], 30)]),
            );
        }
        rgb
    } else {
        small.into_rgb8()
    };
    let mut last = Vec::new();
    for quality in [82u8, 70, 58, 45] {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(&rgb)
            .map_err(|e| ThumbError::Broken(format!("encoding the thumbnail failed: {e}")))?;
        if out.len() <= MAX_BYTES {
            return Ok(out);
        }
        last = out;
    }
    Ok(last)
}

/// The uploads-relative path of an image path as events store it (`uploads/characters/…`).
pub fn uploads_relative(static_path: &str) -> &str {
    static_path.strip_prefix("uploads/").unwrap_or(static_path)
}

/// Makes thumbnails in the background, one at a time so pages keep their share of the CPU:
/// first for every cover the library has (gallery and entry-page widths), then for each cover
/// set and image generated from now on. Returns at once.
pub fn start_background(handle: crate::handle::Handle, thumbs: std::sync::Arc<Thumbs>) {
    use crate::store::event::Event;
    let (tx, rx) = std::sync::mpsc::channel::<(String, Vec<u32>)>();
    let covers: Vec<String> = {
        let lib = handle.library();
        crate::library::category::Category::ALL
            .iter()
            .flat_map(|c| lib.shelf(*c).docs.values().filter_map(|e| e.cover.clone()))
            .collect()
    };
    for c in covers {
        let _ = tx.send((c, vec![240, 512]));
    }
    let worker = thumbs.clone();
    let spawned = std::thread::Builder::new()
        .name("thumbnails".into())
        .spawn(move || {
            let mut made = 0usize;
            let started = std::time::Instant::now();
            while let Ok((path, widths)) = rx.recv() {
                let rel = uploads_relative(&path);
                let todo: Vec<u32> = widths
                    .into_iter()
                    .filter(|w| !worker.is_cached(rel, *w))
                    .collect();
                if todo.is_empty() {
                    continue;
                }
                match worker.get_many(rel, &todo) {
                    Ok(_) => made += todo.len(),
                    Err(ThumbError::NotFound) => {}
                    Err(e) => tracing::debug!("thumbnails of {path}: {e}"),
                }
                if made > 0 && made.is_multiple_of(500) {
                    tracing::info!(
                        "made {made} thumbnails in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no background thumbnails ({e}); they are made when first shown");
        return;
    }
    let mut events = handle.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(batch) => {
                    for s in batch.iter() {
                        let todo: Vec<(String, Vec<u32>)> = match s.event() {
                            Event::CoverSet { path, .. } => vec![(path.clone(), vec![240, 512])],
                            Event::JobSucceeded { images, .. } => {
                                images.iter().map(|i| (i.clone(), vec![240, 512])).collect()
                            }
                            _ => Vec::new(),
                        };
                        for t in todo {
                            if tx.send(t).is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture-like image: smooth gradients with soft bands, as renders mostly are.
    fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, y| {
            let fx = f64::from(x) / f64::from(w);
            let fy = f64::from(y) / f64::from(h);
            let band = ((fx * 9.0 + fy * 5.0 + f64::from(seed)).sin() * 0.5 + 0.5) * 90.0;
            image::Rgba([
                (fx * 160.0 + band) as u8,
                (fy * 140.0 + band * 0.5) as u8,
                ((1.0 - fx) * 120.0 + f64::from(seed % 50)) as u8,
                255,
            ])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn thumbnails_are_small_jpegs_of_the_asked_width() {
        let src = png(832, 1216, 7);
        for w in WIDTHS {
            let t = make(&src, w).unwrap();
            assert!(t.len() <= MAX_BYTES, "{w}: {} bytes", t.len());
            let img = image::load_from_memory(&t).unwrap();
            assert_eq!(img.width(), w);
            assert_eq!(img.height(), (1216.0 * f64::from(w) / 832.0).round() as u32);
            assert_eq!(image::guess_format(&t).unwrap(), image::ImageFormat::Jpeg);
        }
        // Never wider than the source; very tall images are cropped.
        let tiny = make(&png(100, 100, 1), 512).unwrap();
        assert_eq!(image::load_from_memory(&tiny).unwrap().width(), 100);
        let tall = make(&png(100, 1000, 1), 160).unwrap();
        let img = image::load_from_memory(&tall).unwrap();
        assert_eq!((img.width(), img.height()), (100, 200));
        assert!(matches!(
            make(b"not an image", 240),
            Err(ThumbError::Broken(_))
        ));
    }

    #[test]
    fn even_pure_noise_stays_under_the_limit() {
        let noise = image::RgbaImage::from_fn(832, 1216, |x, y| {
            let v = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
            image::Rgba([
                (v & 255) as u8,
                ((v >> 8) & 255) as u8,
                ((v >> 16) & 255) as u8,
                255,
            ])
        });
        let mut src = std::io::Cursor::new(Vec::new());
        noise.write_to(&mut src, image::ImageFormat::Png).unwrap();
        let t = make(src.get_ref(), 768).unwrap();
        assert!(t.len() <= MAX_BYTES, "{} bytes", t.len());
        assert!(image::load_from_memory(&t).unwrap().width() <= 768);
    }

    #[test]
    fn the_cache_is_made_once_found_after_a_restart_and_refuses_path_tricks() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = dir.path().join("uploads");
        std::fs::create_dir_all(uploads.join("characters/tifa")).unwrap();
        std::fs::write(
            uploads.join("characters/tifa/cover_a.png"),
            png(300, 400, 2),
        )
        .unwrap();
        std::fs::write(uploads.join("characters/tifa/copy.png"), png(300, 400, 2)).unwrap();
        std::fs::write(dir.path().join("secret.png"), png(10, 10, 3)).unwrap();
        let t = Thumbs::open(&uploads);
        assert!(!t.is_cached("characters/tifa/cover_a.png", 240));
        let a = t.get("characters/tifa/cover_a.png", 240).unwrap();
        assert!(t.is_cached("characters/tifa/cover_a.png", 240));
        let made = std::fs::metadata(&a).unwrap().modified().unwrap();
        // The same content elsewhere shares the thumbnail.
        assert_eq!(t.get("characters/tifa/copy.png", 240).unwrap(), a);
        // A restart finds it through the index, without making it again.
        let t2 = Thumbs::open(&uploads);
        assert!(t2.is_cached("characters/tifa/cover_a.png", 240));
        assert_eq!(t2.get("characters/tifa/cover_a.png", 240).unwrap(), a);
        assert_eq!(std::fs::metadata(&a).unwrap().modified().unwrap(), made);
        // A changed source gets a new thumbnail.
        std::fs::write(
            uploads.join("characters/tifa/cover_a.png"),
            png(300, 400, 9),
        )
        .unwrap();
        assert_ne!(t2.get("characters/tifa/cover_a.png", 240).unwrap(), a);
        for bad in [
            "../secret.png",
            "characters/../../secret.png",
            "/etc/passwd",
            ".thumbs/index.tsv",
            "",
            "characters//tifa/cover_a.png",
        ] {
            assert!(
                matches!(t.get(bad, 240), Err(ThumbError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(
            t.get("characters/tifa/none.png", 240),
            Err(ThumbError::NotFound)
        );
        assert!(matches!(
            t.get("characters/tifa/cover_a.png", 241),
            Err(ThumbError::Invalid(_))
        ));
    }
}

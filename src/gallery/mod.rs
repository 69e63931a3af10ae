//! The image gallery's index: every image GAZE holds — generated images, uploaded covers, and
//! files under the uploads folder that no event names — as compact rows, so a gallery of a
//! million images pages, filters and searches in milliseconds. A read model of the ledger's
//! image events (`JobSucceeded`, `CoverSet`, `ImageFavouriteSet`, `ImageDeleted`), kept current
//! by folding the ledger's tail before each read and after each commit, saved as a cache file
//! beside the ledger (so a start-up folds only what came after it), plus the untracked files a
//! scan finds at start-up and on rescan (never per request). The words of each job's prompt,
//! for search, come from its recipe (`Handle::job_spec`), read in the background.
//!
//! Outside dependencies: the uploads folder (walked by the scan; an image file removed after its
//! `ImageDeleted` commits) and the cache file. Must not: append events (pages send commands to
//! the handle), talk to ComfyUI, or touch axum and maud.

pub mod cache;
pub mod index;
pub mod words;

use crate::handle::Handle;
use index::Index;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// Jobs whose prompt words are read at once when they arrive; more wait for the background.
const INLINE_PROMPTS: usize = 64;
/// Image file extensions the scan takes.
const IMAGE_EXTS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "gif"];

/// The index and what keeps it current.
pub struct Images {
    handle: Handle,
    uploads: PathBuf,
    cache: Option<PathBuf>,
    index: RwLock<Index>,
    /// One catch-up at a time.
    catching: Mutex<()>,
    /// Whether the cache file has been tried.
    loaded: AtomicBool,
    /// Bumped by every change (events folded, scans, prompts read), to know when to save.
    changes: AtomicU64,
    saved_at_change: AtomicU64,
    scanning: AtomicBool,
    /// How the index was built at start-up, for the settings page and the benchmark.
    pub built: Mutex<Option<Built>>,
    /// One flag per directory that readers derive from elsewhere (the pages: "belongs to an
    /// NSFW entry"), kept until the key they were made for changes.
    dir_flags: Mutex<Option<DirFlags>>,
}

/// Directory flags and the (key, directory count) they were made for.
type DirFlags = (u64, usize, Arc<Vec<bool>>);

/// How the index came to be at start-up.
#[derive(Clone, Debug)]
pub struct Built {
    pub from_cache: bool,
    pub took: Duration,
    pub rows: usize,
}

/// What a scan of the uploads folder found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scan {
    pub files: usize,
    pub untracked_added: usize,
    pub missing: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The main prompt of a recipe (JSON text).
fn main_prompt(recipe: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Prompts {
        main: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Recipe {
        prompts: Option<Prompts>,
    }
    serde_json::from_str::<Recipe>(recipe)
        .ok()?
        .prompts?
        .main
        .filter(|m| !m.trim().is_empty())
}

impl Images {
    /// An index for `handle`'s ledger; nothing is read until it is first used or started.
    /// `cache` is the cache file (`None`: no cache, for tools and tests).
    pub fn new(handle: Handle, uploads: PathBuf, cache: Option<PathBuf>) -> Images {
        Images {
            handle,
            uploads,
            cache,
            index: RwLock::new(Index::default()),
            catching: Mutex::new(()),
            loaded: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            saved_at_change: AtomicU64::new(0),
            scanning: AtomicBool::new(false),
            built: Mutex::new(None),
            dir_flags: Mutex::new(None),
        }
    }

    /// A flag per directory of the index, made by `make` and kept while `key` and the number of
    /// directories stay the same.
    pub fn dir_flags(
        &self,
        key: u64,
        dirs: usize,
        make: impl FnOnce() -> Vec<bool>,
    ) -> Arc<Vec<bool>> {
        let mut cache = lock(&self.dir_flags);
        if let Some((k, n, flags)) = cache.as_ref()
            && *k == key
            && *n == dirs
        {
            return flags.clone();
        }
        let flags = Arc::new(make());
        *cache = Some((key, dirs, flags.clone()));
        flags
    }

    /// The cache file's place for a ledger file.
    pub fn cache_path(ledger_file: &Path) -> PathBuf {
        ledger_file
            .parent()
            .unwrap_or(Path::new("."))
            .join("images.cache")
    }

    pub fn uploads(&self) -> &Path {
        &self.uploads
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The index, caught up with every committed event. Blocking (it may read the ledger).
    pub fn current(&self) -> RwLockReadGuard<'_, Index> {
        if let Err(e) = self.catch_up() {
            tracing::warn!("the image index could not catch up: {e}");
        }
        self.read()
    }

    /// Folds the events committed since the index last looked. Blocking.
    pub fn catch_up(&self) -> Result<(), String> {
        let last = self.handle.ledger().last_seq();
        if self.loaded.load(Ordering::Acquire) && self.read().seq >= last {
            return Ok(());
        }
        let _one = lock(&self.catching);
        let started = Instant::now();
        let first = !self.loaded.swap(true, Ordering::AcqRel);
        let mut from_cache = false;
        if first && let Some(path) = &self.cache {
            from_cache = self.load_cache(path);
        }
        let from = self.read().seq + 1;
        let last = self.handle.ledger().last_seq();
        if from <= last {
            // Applied in chunks, so a long tail (a first build) never sits in memory whole.
            let mut chunk: Vec<crate::store::event::Stored> = Vec::new();
            let mut folded = 0usize;
            let apply = |chunk: &mut Vec<crate::store::event::Stored>| {
                let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
                for s in chunk.drain(..) {
                    ix.apply(&s);
                }
            };
            self.handle
                .ledger()
                .fold(from, last, |s| {
                    if Index::concerns(s.event()) {
                        chunk.push(s);
                        folded += 1;
                        if chunk.len() == 4096 {
                            apply(&mut chunk);
                        }
                    }
                    true
                })
                .map_err(|e| e.to_string())?;
            apply(&mut chunk);
            {
                let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
                ix.seq = ix.seq.max(last);
            }
            if folded > 0 {
                self.changes.fetch_add(1, Ordering::AcqRel);
            }
            if folded <= INLINE_PROMPTS {
                self.read_prompts(INLINE_PROMPTS);
            }
        }
        if first {
            let rows = self.read().total_rows();
            *lock(&self.built) = Some(Built {
                from_cache,
                took: started.elapsed(),
                rows,
            });
            tracing::info!(
                "image index: {rows} images in {:.0} ms ({})",
                started.elapsed().as_secs_f64() * 1000.0,
                if from_cache {
                    "from its cache and the ledger's tail"
                } else {
                    "folded from the ledger"
                }
            );
        }
        Ok(())
    }

    /// Takes the cache file if it matches the ledger. Returns whether it did.
    fn load_cache(&self, path: &Path) -> bool {
        let Some((ix, anchor)) = cache::read(path) else {
            return false;
        };
        let ledger = self.handle.ledger();
        let matches = ix.seq >= 1
            && ix.seq <= ledger.last_seq()
            && ledger
                .read_after(ix.seq - 1, 1)
                .ok()
                .and_then(|v| v.first().map(|s| s.envelope.id))
                == Some(anchor);
        if !matches {
            tracing::info!("the image index cache does not match this ledger; rebuilding");
            return false;
        }
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = ix;
        self.saved_at_change
            .store(self.changes.load(Ordering::Acquire), Ordering::Release);
        true
    }

    /// Writes the cache file if anything changed since the last write. Blocking.
    pub fn save(&self) {
        let Some(path) = &self.cache else { return };
        let change = self.changes.load(Ordering::Acquire);
        if change == self.saved_at_change.load(Ordering::Acquire) && path.exists() {
            return;
        }
        let (bytes, seq) = {
            let ix = self.read();
            if ix.seq == 0 {
                return;
            }
            let anchor = match self.handle.ledger().read_after(ix.seq - 1, 1) {
                Ok(v) => match v.first() {
                    Some(s) if s.seq == ix.seq => s.envelope.id,
                    _ => return,
                },
                Err(e) => {
                    tracing::warn!("image index cache not written: {e}");
                    return;
                }
            };
            (cache::encode(&ix, anchor), ix.seq)
        };
        match crate::library::files::write_atomic(path, &bytes) {
            Ok(()) => {
                self.saved_at_change.store(change, Ordering::Release);
                tracing::debug!("image index cache written at seq {seq}");
            }
            Err(e) => tracing::warn!("could not write {}: {e}", path.display()),
        }
    }

    /// Reads the prompt words of up to `max_jobs` jobs whose images lack them. Returns how
    /// many jobs were read. Blocking.
    pub fn read_prompts(&self, max_jobs: usize) -> usize {
        let todo = self.read().pending_prompts(max_jobs);
        if todo.is_empty() {
            return 0;
        }
        let texts: Vec<(u128, Vec<u32>, Option<String>)> = todo
            .into_iter()
            .map(|(job, rows)| {
                let text = self
                    .handle
                    .job_spec(job)
                    .ok()
                    .and_then(|s| main_prompt(&s.recipe));
                (job, rows, text)
            })
            .collect();
        let n = texts.len();
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
        for (job, rows, text) in texts {
            let prompt = match text {
                Some(t) => ix.words.add(&t),
                None => index::PROMPT_NONE,
            };
            ix.set_prompt(job, &rows, prompt);
        }
        ix.words.finish();
        drop(ix);
        self.changes.fetch_add(1, Ordering::AcqRel);
        n
    }

    /// Walks the uploads folder: files no event names join the index, known ones whose file
    /// is gone are marked missing. Blocking.
    pub fn scan(&self) -> Result<Scan, String> {
        if self.scanning.swap(true, Ordering::AcqRel) {
            return Err("a scan of the uploads folder is already running".into());
        }
        let result = self.scan_now();
        self.scanning.store(false, Ordering::Release);
        result
    }

    fn scan_now(&self) -> Result<Scan, String> {
        self.catch_up()?;
        let mut found = Vec::new();
        walk(&self.uploads, "uploads", &mut found);
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
        let before = ix.total_rows();
        ix.scanned(&found);
        let added = ix.total_rows() - before;
        let missing = ix.rows.iter().filter(|r| r.has(index::MISSING)).count();
        drop(ix);
        self.changes.fetch_add(1, Ordering::AcqRel);
        Ok(Scan {
            files: found.len(),
            untracked_added: added,
            missing,
        })
    }

    /// Removes an image file after its `ImageDeleted` committed. A file already gone is fine.
    pub fn remove_file(&self, path: &str) -> Result<(), String> {
        let rel = crate::library::thumbs::uploads_relative(path);
        let file = crate::library::files::resolve_inside(&self.uploads, rel)?;
        match std::fs::remove_file(&file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("could not remove {}: {e}", file.display())),
        }
    }

    pub fn is_scanning(&self) -> bool {
        self.scanning.load(Ordering::Acquire)
    }

    /// Builds the index (cache, tail), scans the uploads folder, reads every missing prompt,
    /// and from then on follows the ledger and saves the cache now and then. Returns at once.
    pub fn start(self: Arc<Self>) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("image-index".into())
            .spawn(move || {
                if let Err(e) = me.catch_up() {
                    tracing::warn!("the image index could not be built: {e}");
                }
                match me.scan() {
                    Ok(s) => tracing::info!(
                        "uploads scanned: {} image files, {} untracked added, {} missing",
                        s.files,
                        s.untracked_added,
                        s.missing
                    ),
                    Err(e) => tracing::warn!("uploads not scanned: {e}"),
                }
                let mut last_save = Instant::now();
                loop {
                    let n = me.read_prompts(256);
                    if last_save.elapsed() > Duration::from_secs(60) {
                        me.save();
                        last_save = Instant::now();
                    }
                    if n == 0 {
                        me.save();
                        std::thread::sleep(Duration::from_secs(2));
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no background image indexing ({e}); pages catch the index up");
        }
        let mut events = self.handle.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(batch) if !batch.iter().any(|s| Index::concerns(s.event())) => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
                let me = self.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(e) = me.catch_up() {
                        tracing::warn!("the image index could not catch up: {e}");
                    }
                })
                .await;
            }
        });
    }
}

/// Image files under `dir` (shown as `rel`), skipping hidden folders (the thumbnail cache).
fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, u32)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.contains('\\') {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        let path = format!("{rel}/{name}");
        if ft.is_dir() {
            walk(&e.path(), &path, out);
        } else if ft.is_file()
            && name
                .rsplit_once('.')
                .is_some_and(|(_, x)| IMAGE_EXTS.contains(&x.to_ascii_lowercase().as_str()))
        {
            let mtime = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
            out.push((path, mtime));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_prompt_is_read_from_a_recipe() {
        assert_eq!(
            main_prompt(
                r#"{"prompts": {"main": "1girl, smile", "face": "x"}, "workflow": {"3": {}}}"#
            ),
            Some("1girl, smile".into())
        );
        assert_eq!(main_prompt(r#"{"prompts": {"main": "  "}}"#), None);
        assert_eq!(main_prompt("{}"), None);
        assert_eq!(main_prompt("not json"), None);
    }

    #[test]
    fn the_walk_finds_images_and_skips_hidden_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("characters/tifa")).unwrap();
        std::fs::create_dir_all(root.join(".thumbs")).unwrap();
        std::fs::write(root.join("characters/tifa/a.PNG"), b"x").unwrap();
        std::fs::write(root.join("characters/tifa/notes.txt"), b"x").unwrap();
        std::fs::write(root.join(".thumbs/0_240.jpg"), b"x").unwrap();
        std::fs::write(root.join("loose.webp"), b"x").unwrap();
        let mut found = Vec::new();
        walk(root, "uploads", &mut found);
        found.sort();
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["uploads/characters/tifa/a.PNG", "uploads/loose.webp"]
        );
        assert!(found.iter().all(|(_, t)| *t > 0));
    }
}

//! The file projector: writes library documents back to `data/` after their events commit
//! (temp file, fsync, rename, fsync of the folder) and removes the files of deleted entries.
//! It converges a file to what the projection says, so running it twice is harmless.

use crate::library::category::Category;
use crate::library::projection::Library;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per call: two threads writing the same file must not share a temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Where a category's documents live.
pub fn category_dir(data: &Path, c: Category) -> PathBuf {
    data.join(c.desc().dir)
}

/// Makes `data/<dir>/<file>` agree with the library for the entry `slug` that owns or owned
/// `file`: writes its text if it differs, or removes the file if no entry owns it any more.
/// Returns whether the disk changed.
pub fn converge(
    lib: &Library,
    data: &Path,
    c: Category,
    slug: &str,
    file: &str,
) -> std::io::Result<bool> {
    let dir = category_dir(data, c);
    match lib.get(c, slug) {
        Some(e) => {
            let path = dir.join(&e.file);
            let same = std::fs::read(&path).is_ok_and(|b| b == e.json.as_bytes());
            if same {
                return Ok(false);
            }
            write_atomic(&path, e.json.as_bytes())?;
            Ok(true)
        }
        None => {
            if lib.shelf(c).by_file.contains_key(file) {
                return Ok(false);
            }
            match std::fs::remove_file(dir.join(file)) {
                Ok(()) => {
                    sync_dir(&dir)?;
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// What converging one entry's file needs.
enum Step {
    Write(PathBuf, std::sync::Arc<str>),
    Remove(PathBuf),
}

fn step(lib: &Library, data: &Path, c: Category, slug: &str, file: &str) -> Option<Step> {
    let dir = category_dir(data, c);
    match lib.get(c, slug) {
        Some(e) => {
            let path = dir.join(&e.file);
            let same = std::fs::read(&path).is_ok_and(|b| b == e.json.as_bytes());
            (!same).then(|| Step::Write(path, e.json.clone()))
        }
        None if lib.shelf(c).by_file.contains_key(file) || file.is_empty() => None,
        None => Some(Step::Remove(dir.join(file))),
    }
}

/// Runs `f` on every item from several threads. File systems commit the journal entries of
/// concurrent creates, syncs and renames together, so thousands of files cost about as much
/// as a few dozen done one after another.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = (items.len() / 8).clamp(1, 64);
    let per = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| s.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// `converge` for many entries at once (a restore): each new text is written to a temporary
/// file and synced, then all are renamed into place and each folder is synced once, with the
/// work spread over threads. Each file ends up old or new after a crash, as with
/// `write_atomic`. Returns the entries that failed.
pub fn converge_many(
    lib: &Library,
    data: &Path,
    items: &[(Category, String, String)],
) -> Vec<((Category, String, String), std::io::Error)> {
    let mut failed = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut writes: Vec<(usize, PathBuf, std::sync::Arc<str>)> = Vec::new();
    let mut removes: Vec<(usize, PathBuf)> = Vec::new();
    for (i, (c, slug, file)) in items.iter().enumerate() {
        match step(lib, data, *c, slug, file) {
            None => {}
            Some(Step::Remove(path)) if seen.insert(path.clone()) => removes.push((i, path)),
            Some(Step::Write(path, text)) if seen.insert(path.clone()) => {
                writes.push((i, path, text));
            }
            Some(_) => {}
        }
    }
    let mut dirs = std::collections::BTreeSet::new();
    for p in removes
        .iter()
        .map(|(_, p)| p)
        .chain(writes.iter().map(|(_, p, _)| p))
    {
        if let Some(d) = p.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in &dirs {
        if let Err(e) = std::fs::create_dir_all(d) {
            tracing::warn!("could not create {}: {e}", d.display());
        }
    }
    let tmp_of = |path: &Path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
    };
    let written = in_parallel(&writes, |(_, path, text)| {
        let tmp = tmp_of(path);
        let r = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    });
    let mut ready = Vec::new();
    for ((i, path, _), r) in writes.iter().zip(written) {
        match r {
            Ok(()) => ready.push((*i, path.clone())),
            Err(e) => failed.push((items[*i].clone(), e)),
        }
    }
    let renamed = in_parallel(&ready, |(_, path)| {
        let tmp = tmp_of(path);
        let r = std::fs::rename(&tmp, path);
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    });
    for ((i, _), r) in ready.iter().zip(renamed) {
        if let Err(e) = r {
            failed.push((items[*i].clone(), e));
        }
    }
    let removed = in_parallel(&removes, |(_, path)| match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    });
    for ((i, _), r) in removes.iter().zip(removed) {
        if let Err(e) = r {
            failed.push((items[*i].clone(), e));
        }
    }
    for d in dirs {
        if let Err(e) = sync_dir(&d) {
            tracing::warn!("could not sync the folder {}: {e}", d.display());
        }
    }
    failed
}

/// Whether `name` is a plain file name: no separators, no `..`, not hidden.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

/// Resolves `relative` (e.g. a LoRA's `Illustrious/Looks/x.safetensors`) under `root`, refusing
/// absolute paths, `..`, and anything that resolves (through links) outside the root.
pub fn resolve_inside(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let rel = Path::new(relative);
    if relative.is_empty()
        || rel.is_absolute()
        || relative.contains('\\')
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!("'{relative}' is not a plain path inside the root"));
    }
    let candidate = root.join(rel);
    let root = root
        .canonicalize()
        .map_err(|e| format!("root {}: {e}", root.display()))?;
    match candidate.canonicalize() {
        Ok(real) if real.starts_with(&root) => Ok(real),
        Ok(real) => Err(format!(
            "'{relative}' resolves to {} outside the root",
            real.display()
        )),
        // Not there: nothing to follow, and the lexical check above already holds.
        Err(_) => Ok(candidate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["b.json"]);
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("loras");
        std::fs::create_dir_all(root.join("Illustrious")).unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        assert!(resolve_inside(&root, "Illustrious/x.safetensors").is_ok());
        for bad in [
            "../secret",
            "/etc/passwd",
            "a/../../secret",
            "",
            "a\\..\\b",
            "./x",
        ] {
            assert!(resolve_inside(&root, bad).is_err(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
            assert!(resolve_inside(&root, "link").is_err());
        }
    }

    #[test]
    fn many_files_converge_at_once_like_one_by_one() {
        use crate::store::event::{DocBody, Envelope, Event, Origin, Stored};
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let mut lib = Library::default();
        let c = Category::Scenes;
        let mut items = Vec::new();
        for i in 0..40u64 {
            lib.apply(&Stored {
                seq: i + 1,
                envelope: Envelope {
                    id: 0,
                    at: 0,
                    origin: Origin::Cli,
                    event: Event::DocumentSynced {
                        category: c,
                        slug: format!("s{i}"),
                        file: format!("s{i}.json"),
                        body: DocBody {
                            id: format!("s{i}"),
                            name: String::new(),
                            json: format!("{{\"n\": {i}}}\n"),
                        },
                    },
                },
            });
            items.push((c, format!("s{i}"), format!("s{i}.json")));
        }
        let scenes = category_dir(data, c);
        std::fs::create_dir_all(&scenes).unwrap();
        std::fs::write(scenes.join("s3.json"), "{\"n\": 3}\n").unwrap();
        std::fs::write(scenes.join("s4.json"), "old").unwrap();
        std::fs::write(scenes.join("gone.json"), "x").unwrap();
        items.push((c, String::new(), "gone.json".into()));
        items.push((c, "s5".into(), "s5.json".into()));
        let failed = converge_many(&lib, data, &items);
        assert!(failed.is_empty());
        for i in 0..40 {
            assert_eq!(
                std::fs::read_to_string(scenes.join(format!("s{i}.json"))).unwrap(),
                format!("{{\"n\": {i}}}\n")
            );
        }
        assert!(!scenes.join("gone.json").exists());
        let mut names: Vec<_> = std::fs::read_dir(&scenes)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 40, "no temporary files left: {names:?}");
    }

    #[test]
    fn plain_file_names() {
        assert!(is_plain_file_name("yuna_(ff10).json"));
        for bad in ["", "../x.json", "a/b.json", ".hidden.json", "a\\b"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn concurrent_writers_of_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("same.jpg");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let path = &path;
                s.spawn(move || write_atomic(path, &[i; 4096]).unwrap());
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.iter().all(|b| *b == bytes[0]),
            "one writer's bytes, whole"
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left");
    }
}

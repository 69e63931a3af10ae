//! Sync between `data/` and the ledger: reading category folders into observations (the
//! decision is `command::decide`), the debounced notify watcher for outside edits, and the
//! periodic rescan that backs it up. The app's own writes match the projection byte for byte,
//! so they are never ingested again.

use crate::category::Category;
use crate::command::{FileContent, Observation};
use crate::event::Origin;
use crate::files;
use crate::handle::{Handle, Request};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Files larger than this are refused rather than read (a library document is a few KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;

fn is_document_name(name: &str) -> bool {
    files::is_plain_file_name(name) && name.ends_with(".json")
}

fn read(path: &Path) -> FileContent {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileContent::Missing,
        Err(e) => return FileContent::Unreadable(e.to_string()),
        Ok(m) if !m.is_file() => return FileContent::Unreadable("not a regular file".into()),
        Ok(m) if m.len() > MAX_DOCUMENT_BYTES => {
            return FileContent::Unreadable(format!(
                "{} bytes is more than the {MAX_DOCUMENT_BYTES}-byte limit",
                m.len()
            ));
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(b) => FileContent::Bytes(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileContent::Missing,
        Err(e) => FileContent::Unreadable(e.to_string()),
    }
}

/// Every `*.json` file directly in the category's folder, sorted by name, except `skip`.
pub fn observe_category(data: &Path, c: Category, skip: &[String]) -> Vec<Observation> {
    let dir = files::category_dir(data, c);
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_document_name(n) && !skip.contains(n))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
        .into_iter()
        .map(|file| Observation {
            content: read(&dir.join(&file)),
            file,
        })
        .collect()
}

/// The named files of one category (names that are not plain `*.json` names are ignored).
pub fn observe_files(data: &Path, c: Category, names: &[String]) -> Vec<Observation> {
    let dir = files::category_dir(data, c);
    let mut names: Vec<&String> = names.iter().filter(|n| is_document_name(n)).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|file| Observation {
            content: read(&dir.join(file)),
            file: file.clone(),
        })
        .collect()
}

/// A library read straight from `data/`, with no ledger (for read-only tools such as
/// `gaze preview`, which must work while a server holds the ledger).
pub fn library_from_disk(data: &Path) -> crate::library::Library {
    let mut lib = crate::library::Library::default();
    for c in Category::ALL {
        let cmd = crate::command::Command::Sync {
            category: c,
            observations: observe_category(data, c, &[]),
            complete: true,
        };
        let events = crate::command::decide(&lib, &cmd).unwrap_or_default();
        for event in events {
            let seq = lib.seq + 1;
            lib.apply(&crate::event::Stored {
                seq,
                envelope: crate::event::Envelope {
                    id: u128::from(seq),
                    at: 0,
                    origin: Origin::Cli,
                    event,
                },
            });
        }
    }
    lib
}

/// Maps a changed path to the category file it is, if it is one.
pub fn classify(data: &Path, path: &Path) -> Option<(Category, String)> {
    let rel = path.strip_prefix(data).ok()?;
    let mut parts = rel.components();
    let dir = parts.next()?.as_os_str().to_str()?;
    let name = parts.next()?.as_os_str().to_str()?;
    if parts.next().is_some() || !is_document_name(name) {
        return None;
    }
    Some((Category::from_dir(dir)?, name.to_string()))
}

/// Starts the notify watcher on `data/` and a task that turns its batches into syncs. The
/// returned guard keeps the watcher alive.
pub fn start_watcher(handle: Handle, debounce: Duration) -> Option<Box<dyn std::any::Any + Send>> {
    let data = handle.paths().data.clone();
    let canonical = data.canonicalize().unwrap_or_else(|_| data.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<std::path::PathBuf>>();
    let debouncer = notify_debouncer_full::new_debouncer(
        debounce,
        None,
        move |res: notify_debouncer_full::DebounceEventResult| match res {
            Ok(events) => {
                let paths: Vec<_> = events.into_iter().flat_map(|e| e.event.paths).collect();
                let _ = tx.send(paths);
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!("file watcher: {e}");
                }
            }
        },
    );
    let mut debouncer = match debouncer {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("file watcher unavailable ({e}); relying on periodic rescans");
            return None;
        }
    };
    if let Err(e) = debouncer.watch(&data, notify::RecursiveMode::Recursive) {
        tracing::warn!(
            "cannot watch {} ({e}); relying on periodic rescans",
            data.display()
        );
        return None;
    }
    tokio::spawn(async move {
        while let Some(paths) = rx.recv().await {
            let mut by_cat: BTreeMap<Category, BTreeSet<String>> = BTreeMap::new();
            let mut rescan: BTreeSet<Category> = BTreeSet::new();
            for p in paths {
                let p = p.canonicalize().unwrap_or(p);
                if let Some((c, name)) = classify(&canonical, &p).or_else(|| classify(&data, &p)) {
                    by_cat.entry(c).or_default().insert(name);
                } else if let Some(c) = p
                    .strip_prefix(&canonical)
                    .ok()
                    .and_then(|r| r.to_str())
                    .and_then(Category::from_dir)
                {
                    // The folder itself changed (created, removed, renamed): look at all of it.
                    rescan.insert(c);
                }
            }
            if !rescan.is_empty() {
                let _ = handle
                    .run(
                        Origin::Watcher,
                        Request::Rescan(rescan.into_iter().collect()),
                    )
                    .await;
            }
            for (c, names) in by_cat {
                match handle
                    .run(
                        Origin::Watcher,
                        Request::SyncFiles(c, names.into_iter().collect()),
                    )
                    .await
                {
                    Ok(o) if !o.events.is_empty() => {
                        tracing::info!(
                            "watcher: {} event(s) from data/{}",
                            o.events.len(),
                            c.desc().dir
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("watcher sync of {c}: {e}"),
                }
            }
        }
    });
    Some(Box::new(debouncer))
}

/// Rescans everything every `every`, in case the watcher missed something.
pub fn start_periodic_rescan(handle: Handle, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match handle
                .run(Origin::Watcher, Request::Rescan(Category::ALL.to_vec()))
                .await
            {
                Ok(o) if !o.events.is_empty() => {
                    tracing::info!("periodic rescan recorded {} event(s)", o.events.len());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("periodic rescan: {e}"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_accepts_only_category_documents() {
        let data = Path::new("/d");
        assert_eq!(
            classify(data, Path::new("/d/clothing/maid.json")),
            Some((Category::Outfits, "maid.json".into()))
        );
        for p in [
            "/d/clothing/.maid.json.1.tmp",
            "/d/clothing/a/b.json",
            "/d/unknown/x.json",
            "/d/characters/x.txt",
            "/e/characters/x.json",
        ] {
            assert_eq!(classify(data, Path::new(p)), None, "{p}");
        }
    }
}

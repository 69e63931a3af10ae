//! The outside-edit pipeline: the debounced notify watcher on `data/` and the periodic rescan
//! that backs it up. Both turn what they see into sync requests on the handle; the app's own
//! writes match the projection byte for byte, so they are never ingested again.

use crate::handle::{Handle, Request};
use crate::library::category::Category;
use crate::library::sync::classify;
use crate::store::event::Origin;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

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
    // The workflow template lives outside data/: watch its folder, not recursively.
    let template = handle.paths().workflow.clone().map(|p| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let canonical_dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        if let Err(e) = debouncer.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(
                "cannot watch {} for template edits ({e}); relying on periodic rescans",
                dir.display()
            );
        }
        (canonical_dir, p.file_name().map(|n| n.to_os_string()))
    });
    tokio::spawn(async move {
        while let Some(paths) = rx.recv().await {
            let mut by_cat: BTreeMap<Category, BTreeSet<String>> = BTreeMap::new();
            let mut rescan: BTreeSet<Category> = BTreeSet::new();
            let mut template_changed = false;
            for p in paths {
                if let Some((dir, Some(name))) = &template
                    && p.file_name() == Some(name.as_os_str())
                    && p.parent()
                        .map(|d| d.canonicalize().unwrap_or_else(|_| d.to_path_buf()))
                        .as_deref()
                        == Some(dir.as_path())
                {
                    template_changed = true;
                    continue;
                }
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
            if template_changed {
                match handle.run(Origin::Watcher, Request::SyncWorkflow).await {
                    Ok(o) => {
                        for e in &o.events {
                            tracing::info!("watcher: workflow template: {}", e.event().kind());
                        }
                    }
                    Err(e) => tracing::warn!("watcher sync of the workflow template: {e}"),
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
            for request in [
                Request::Rescan(Category::ALL.to_vec()),
                Request::SyncWorkflow,
            ] {
                match handle.run(Origin::Watcher, request).await {
                    Ok(o) if !o.events.is_empty() => {
                        tracing::info!("periodic rescan recorded {} event(s)", o.events.len());
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("periodic rescan: {e}"),
                }
            }
        }
    });
}

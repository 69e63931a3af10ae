//! The composition root: opens the ledger, brings the projections and `data/` into agreement,
//! starts the watcher and periodic rescans, and serves HTTP until shut down.

use crate::cli::Config;
use crate::handle::{Handle, Paths, Request};
use crate::library::category::Category;
use crate::store::event::Origin;

use crate::web;

/// Opens the ledger and syncs the library with disk. Blocking.
pub fn open(config: &Config) -> Result<Handle, String> {
    let paths = Paths {
        data: config.data.clone(),
        uploads: config.uploads.clone(),
        loras: config.loras.clone(),
        checkpoints: config.checkpoints.clone(),
        workflow: Some(config.workflow.clone()),
    };
    ensure_workflow_file(&config.workflow)?;
    let handle = Handle::open(&config.ledger, paths).map_err(|e| e.to_string())?;
    let o = handle
        .execute(Origin::Startup, Request::Rescan(Category::ALL.to_vec()))
        .map_err(|e| format!("start-up sync failed: {e}"))?;
    if !o.events.is_empty() {
        tracing::info!("start-up sync recorded {} event(s)", o.events.len());
    }
    let o = handle
        .execute(Origin::Startup, Request::DiscoverCheckpoints)
        .map_err(|e| format!("checkpoint discovery failed: {e}"))?;
    if !o.events.is_empty() {
        tracing::info!(
            "gave {} new checkpoint file(s) default settings",
            o.events.len()
        );
    }
    handle
        .execute(Origin::Startup, Request::SyncWorkflow)
        .map_err(|e| format!("reading the workflow template failed: {e}"))?;
    {
        let lib = handle.library();
        match (&lib.workflow, &lib.workflow_failure) {
            (None, failure) => {
                return Err(format!(
                    "the workflow template {} cannot be used: {}",
                    config.workflow.display(),
                    failure
                        .as_ref()
                        .map_or("it was not read", |f| f.error.as_str())
                ));
            }
            (Some(w), Some(f)) => tracing::warn!(
                "the workflow template {} cannot be used ({}); version {} stays in use",
                config.workflow.display(),
                f.error,
                w.version
            ),
            (Some(w), None) => tracing::info!("workflow template version {}", w.version),
        }
    }
    Ok(handle)
}

/// Writes the built-in workflow template where the user's is expected, if there is none, so
/// the user has a file to tune.
fn ensure_workflow_file(path: &std::path::Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    crate::library::files::write_atomic(path, crate::engine::workflow::TEMPLATE_JSON.as_bytes())
        .map_err(|e| {
            format!(
                "cannot write the built-in workflow template to {}: {e}",
                path.display()
            )
        })?;
    tracing::info!("wrote the built-in workflow template to {}", path.display());
    Ok(())
}

/// Runs the server on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let cfg = config.clone();
    let handle = tokio::task::spawn_blocking(move || open(&cfg))
        .await
        .map_err(|e| e.to_string())??;
    let _watcher = if config.watch {
        crate::library::watcher::start_watcher(handle.clone(), config.watch_debounce)
    } else {
        None
    };
    crate::library::watcher::start_periodic_rescan(handle.clone(), config.rescan_every);
    if config.paused {
        handle
            .run(
                Origin::Startup,
                Request::Command(crate::library::command::Command::PauseQueue { paused: true }),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let live = crate::jobs::reactor::start(
        handle.clone(),
        crate::jobs::reactor::ReactorOptions {
            backends: config.comfy.clone(),
            uploads: config.uploads.clone(),
            ..Default::default()
        },
    )?;
    let assistant = crate::assistant::Service::start(
        &handle,
        &config.data,
        &config.ledger,
        config.loras.clone(),
    )
    .await?;
    let url_file = server_url_file(&config.ledger);
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let state = web::AppState::new(handle.clone(), config, Some(live), Some(addr))
        .with_assistant(assistant);
    crate::library::thumbs::start_background(handle.clone(), state.thumbs.clone());
    state.images.clone().start();
    let images = state.images.clone();
    // `gaze mcp library` and the history tools find a server that holds the ledger through this file.
    if let Err(e) = std::fs::write(&url_file, format!("{}\n", client_url(addr))) {
        tracing::warn!("could not write {}: {e}", url_file.display());
    }
    // Tests and scripts read this line to find the port.
    println!("gaze listening on http://{addr}");
    let served = web::serve(listener, state, shutdown).await;
    let _ = std::fs::remove_file(&url_file);
    tokio::task::spawn_blocking(move || {
        handle.snapshot_now();
        images.save();
    })
    .await
    .map_err(|e| e.to_string())?;
    served
}

/// The URL a local client uses to reach `addr` (an unspecified address means loopback).
fn client_url(addr: std::net::SocketAddr) -> String {
    match addr {
        std::net::SocketAddr::V4(a) if a.ip().is_unspecified() => {
            format!("http://127.0.0.1:{}", a.port())
        }
        std::net::SocketAddr::V6(a) if a.ip().is_unspecified() => {
            format!("http://[::1]:{}", a.port())
        }
        other => format!("http://{other}"),
    }
}

/// Where a running server notes its URL: beside the ledger file (`ledger/gaze.url`).
pub fn server_url_file(ledger_file: &std::path::Path) -> std::path::PathBuf {
    ledger_file.with_extension("url")
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

//! The `gaze` binary: parses the command line (clap) and hands each sub-command to the library.

use clap::Parser;
use gaze::cli::{Cli, Cmd, McpCmd, McpLibraryArgs, McpTagsArgs, PreviewArgs, ServeArgs, SynthArgs};
use gaze::history::tools;

/// mimalloc: prompt and workflow building allocate many small strings and maps; it roughly
/// halves their cost against glibc's allocator (see `cargo bench --bench engine`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // clap prints help, version and usage errors itself (usage errors exit with 2).
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Cmd::Serve(args)) => serve(args),
        Some(Cmd::Preview(args)) => preview(&args),
        Some(Cmd::Synth(args)) => synth(&args),
        Some(Cmd::Mcp(McpCmd::Tags(args))) => mcp_tags(&args),
        Some(Cmd::Mcp(McpCmd::Library(args))) => mcp_library(&args),
        Some(Cmd::Events(args)) => tools::events(&args),
        Some(Cmd::Audit(args)) => tools::audit(&args),
        Some(Cmd::History(args)) => tools::history(&args),
        Some(Cmd::Restore(args)) => tools::restore(&args),
        Some(Cmd::Export(args)) => tools::export(&args),
        Some(Cmd::Import(args)) => tools::import(&args),
        Some(Cmd::Verify(args)) => tools::verify(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gaze: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = args.into_config();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gaze=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
        gaze::app::serve(config, listener, gaze::app::shutdown_signal()).await
    })
}

/// Logs to stderr only: stdout carries the MCP protocol.
fn stderr_logs(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn mcp_tags(args: &McpTagsArgs) -> Result<(), String> {
    stderr_logs("gaze=warn");
    let index = std::sync::Arc::new(gaze::assistant::tags::TagIndex::load(&args.tags)?);
    runtime()?.block_on(gaze::assistant::tag_server::serve_stdio(index))
}

fn mcp_library(args: &McpLibraryArgs) -> Result<(), String> {
    stderr_logs("gaze=warn");
    let ledger = args.ledger_file();
    let rt = runtime()?;
    if let Some(url) = &args.url {
        return rt.block_on(gaze::assistant::library_server::bridge_stdio(&mcp_url(url)));
    }
    let config = args.config().map_err(|e| e.to_string())?;
    match gaze::app::open(&config) {
        Ok(handle) => {
            let served = rt.block_on(gaze::assistant::library_server::serve_stdio(handle.clone()));
            handle.snapshot_now();
            served
        }
        // A running server holds the ledger: relay to it.
        Err(e) if e.contains("already open") || e.contains("in use") => {
            let file = gaze::app::server_url_file(&ledger);
            let url = std::fs::read_to_string(&file).map_err(|_| {
                format!(
                    "{e}; and {} does not say where that server listens (pass --url)",
                    file.display()
                )
            })?;
            rt.block_on(gaze::assistant::library_server::bridge_stdio(&mcp_url(
                url.trim(),
            )))
        }
        Err(e) => Err(e),
    }
}

/// A server's base URL (or its /mcp/library URL) as the library endpoint.
fn mcp_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/mcp/library") {
        url.to_string()
    } else {
        format!("{url}/mcp/library")
    }
}

fn synth(args: &SynthArgs) -> Result<(), String> {
    let spec = gaze::synth::SynthSpec {
        per_category: args.count,
        seed: args.seed,
    };
    let out = &args.out;
    let n = gaze::synth::write_library(out, &spec).map_err(|e| e.to_string())?;
    println!("wrote {n} documents under {}", out.display());
    if args.loras > 0 {
        let n = gaze::synth::write_lora_tree(&out.join("loras"), args.loras)
            .map_err(|e| e.to_string())?;
        println!("wrote {n} LoRA files under {}", out.join("loras").display());
    }
    Ok(())
}

fn preview(args: &PreviewArgs) -> Result<(), String> {
    let req = gaze::jobs::request::GenRequest::from_json(&args.request_body())?;
    let mut lib = gaze::library::sync::library_from_disk(&args.data);
    // The user's template when there is a usable one (version 0: read from the file, not from a
    // ledger), else the built-in copy.
    if let Ok(text) = std::fs::read_to_string(&args.workflow) {
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: invalid JSON: {e}", args.workflow.display()))?;
        gaze::engine::workflow::check_template(&value).map_err(|p| {
            format!(
                "{} cannot be used: {}",
                args.workflow.display(),
                p.join("; ")
            )
        })?;
        lib.workflow = Some(gaze::library::projection::Template::new(0, &text));
    }
    let backend = gaze::jobs::request::Backend {
        vanilla: args.vanilla,
        ..Default::default()
    };
    let seed = gaze::handle::random_seed();
    let resolved =
        gaze::jobs::request::resolve(&lib, &req, seed, &backend).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&resolved.preview()).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

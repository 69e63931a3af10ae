//! The `gaze` binary: parses the command line (clap) and hands each sub-command to the library.

use clap::Parser;
use gaze::cli::{Cli, Cmd, PreviewArgs, ServeArgs, SynthArgs};
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

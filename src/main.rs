//! The `gaze` binary: parses the sub-command and hands over to the library.

use gaze::cli::{Config, SERVE_HELP};

/// mimalloc: prompt and workflow building allocate many small strings and maps; it roughly
/// halves their cost against glibc's allocator (see `cargo bench --bench engine`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HELP: &str = "\
gaze — prompt-asset library and ComfyUI generation

usage:
  gaze [serve] [options]     serve the app (default: the bundled library at http://127.0.0.1:5000)
  gaze preview --category C --slug S [--character SLUG|__random__] [--seed N] [--fields a::b,c::d]
               [--checkpoint PATH] [--width W] [--height H] [--extra-positive T] [--extra-negative T]
               [--vanilla] [--data DIR]
                             print the prompts, the workflow and where every tag came from, as JSON
  gaze synth --out DIR [--count N] [--seed S] [--loras N]
                             write a synthetic library (N documents per category) for benchmarks
  gaze help

serve options:
";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.first().map(String::as_str) {
        Some("serve") => ("serve", &args[1..]),
        Some("synth") => ("synth", &args[1..]),
        Some("preview") => ("preview", &args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{HELP}{SERVE_HELP}");
            return std::process::ExitCode::SUCCESS;
        }
        _ => ("serve", &args[..]),
    };
    let result = match cmd {
        "synth" => synth(rest),
        "preview" => preview(rest),
        _ => serve(rest),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gaze: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn serve(args: &[String]) -> Result<(), String> {
    let config = Config::parse(args, |k| std::env::var(k).ok())?;
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

fn synth(args: &[String]) -> Result<(), String> {
    let mut out = None;
    let mut count = 100usize;
    let mut seed = 1u64;
    let mut loras = 0usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(std::path::PathBuf::from(v()?)),
            "--count" => count = v()?.parse().map_err(|_| "--count: not a number")?,
            "--seed" => seed = v()?.parse().map_err(|_| "--seed: not a number")?,
            "--loras" => loras = v()?.parse().map_err(|_| "--loras: not a number")?,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let out = out.ok_or("synth needs --out DIR")?;
    let spec = gaze::synth::SynthSpec {
        per_category: count,
        seed,
    };
    let n = gaze::synth::write_library(&out, &spec).map_err(|e| e.to_string())?;
    println!("wrote {n} documents under {}", out.display());
    if loras > 0 {
        let n =
            gaze::synth::write_lora_tree(&out.join("loras"), loras).map_err(|e| e.to_string())?;
        println!("wrote {n} LoRA files under {}", out.join("loras").display());
    }
    Ok(())
}

fn preview(args: &[String]) -> Result<(), String> {
    let mut body = serde_json::Map::new();
    let mut data = std::path::PathBuf::from("data");
    let mut vanilla = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--vanilla" {
            vanilla = true;
            continue;
        }
        let v = it.next().cloned().ok_or(format!("{a} needs a value"))?;
        let key = match a.as_str() {
            "--data" => {
                data = v.into();
                continue;
            }
            "--category" | "--slug" | "--character" | "--checkpoint" => &a[2..],
            "--extra-positive" => "extra_positive",
            "--extra-negative" => "extra_negative",
            "--seed" | "--width" | "--height" => {
                let n: u64 = v.parse().map_err(|_| format!("{a}: not a whole number"))?;
                body.insert(a[2..].to_string(), n.into());
                continue;
            }
            "--fields" => {
                let list: Vec<serde_json::Value> = v
                    .split(',')
                    .map(|f| serde_json::Value::String(f.trim().to_string()))
                    .collect();
                body.insert("fields".into(), list.into());
                continue;
            }
            other => return Err(format!("unknown option '{other}'")),
        };
        body.insert(key.to_string(), v.into());
    }
    let req = gaze::jobs::request::GenRequest::from_json(&body)?;
    let lib = gaze::library::sync::library_from_disk(&data);
    let backend = gaze::jobs::request::Backend {
        vanilla,
        ..Default::default()
    };
    let seed = gaze::handle::random_seed();
    let resolved =
        gaze::jobs::request::resolve(&lib, &req, seed, &backend).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&resolved.preview()).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

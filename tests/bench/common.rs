//! What the benchmarks share: starting the release `gaze` binary and finding its port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release binary when built, else the one cargo built for this bench.
pub fn gaze_exe() -> PathBuf {
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/gaze");
    if release.exists() {
        release
    } else {
        env!("CARGO_BIN_EXE_gaze").into()
    }
}

/// Starts `gaze serve` on a free port with folders under `root` (data from `data`) plus
/// `args`, and returns it with its URL and the time to its "listening" line.
pub fn spawn_gaze(root: &Path, data: &Path, args: &[&str]) -> (Child, String, Duration) {
    let t = Instant::now();
    let mut child = Command::new(gaze_exe())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-watch",
            "--rescan-secs",
            "3600",
        ])
        .arg("--data")
        .arg(data)
        .arg("--ledger")
        .arg(root.join("ledger"))
        .arg("--uploads")
        .arg(root.join("uploads"))
        .arg("--workflow")
        .arg(root.join("comfy_workflow.json"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let took = t.elapsed();
    let url = line
        .trim()
        .trim_start_matches("gaze listening on ")
        .to_string();
    (child, url, took)
}

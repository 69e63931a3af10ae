//! The command line as a user meets it: help for every sub-command, the version, clap's errors
//! for a mistyped flag, and every environment variable `gaze serve` reads, through the binary.

use crate::support::app::{copy_dir, sample_data};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn gaze() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gaze"));
    for var in [
        "GAZE_BIND",
        "GAZE_DATA",
        "GAZE_LEDGER",
        "GAZE_UPLOADS",
        "GAZE_WORKFLOW",
        "COMFYUI_URL",
        "GAZE_CHECKPOINTS",
        "GAZE_LORAS",
        "GAZE_ALLOW_HOSTS",
    ] {
        c.env_remove(var);
    }
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = gaze().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_sub_command_explains_itself() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for s in ["serve", "preview", "synth"] {
        assert!(out.contains(s), "top-level help lists {s}:\n{out}");
    }
    let expectations: [(&str, &[&str]); 3] = [
        (
            "serve",
            &[
                "--bind <ADDR>",
                "[env: GAZE_BIND=]",
                "[default: 127.0.0.1:5000]",
                "--data <DIR>",
                "--ledger <DIR|FILE>",
                "--uploads <DIR>",
                "--workflow <FILE>",
                "[env: GAZE_WORKFLOW=]",
                "--comfy <URL>",
                "[env: COMFYUI_URL=]",
                "--checkpoints <DIR>",
                "--loras <DIR>",
                "--allow-host <NAME>",
                "[env: GAZE_ALLOW_HOSTS=]",
                "--rescan-secs <N>",
                "--no-watch",
                "--paused",
            ],
        ),
        (
            "preview",
            &[
                "--category <CATEGORY>",
                "--slug <SLUG>",
                "--character",
                "--vanilla",
                "--fields",
            ],
        ),
        (
            "synth",
            &["--out <DIR>", "--count", "[default: 100]", "--loras"],
        ),
    ];
    for (sub, needles) in expectations {
        let (code, out, _) = run(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub} --help");
        for n in needles {
            assert!(out.contains(n), "`gaze {sub} --help` lacks {n}:\n{out}");
        }
    }
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("gaze {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn mistakes_get_claps_errors_and_exit_code_2() {
    let (code, _, err) = run(&["serve", "--no-wach"]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--no-wach'"), "{err}");
    assert!(
        err.contains("a similar argument exists: '--no-watch'"),
        "{err}"
    );
    let (code, _, err) = run(&["serve", "--bind", "somewhere"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value 'somewhere' for '--bind <ADDR>'"),
        "{err}"
    );
    let (code, _, err) = run(&["previwe"]);
    assert_eq!(code, 2);
    assert!(err.contains("preview"), "{err}");
    let (code, _, err) = run(&["synth"]);
    assert_eq!(code, 2);
    assert!(err.contains("--out <DIR>"), "{err}");
}

#[tokio::test]
async fn every_environment_variable_is_read() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    copy_dir(&sample_data(), &r.join("lib"));
    for d in ["models/Illustrious", "loras/Illustrious/Clothing"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("models/Illustrious/envmodel.safetensors"), b"x").unwrap();
    std::fs::write(
        r.join("loras/Illustrious/Clothing/envlora.safetensors"),
        b"x",
    )
    .unwrap();
    let mut child = gaze()
        .arg("serve")
        .arg("--no-watch")
        .env("GAZE_BIND", "127.0.0.1:0")
        .env("GAZE_DATA", r.join("lib"))
        .env("GAZE_LEDGER", r.join("led"))
        .env("GAZE_UPLOADS", r.join("up"))
        .env("GAZE_WORKFLOW", r.join("wf/my_workflow.json"))
        .env("COMFYUI_URL", "http://127.0.0.1:9, http://127.0.0.1:10")
        .env("GAZE_CHECKPOINTS", r.join("models"))
        .env("GAZE_LORAS", r.join("loras"))
        .env("GAZE_ALLOW_HOSTS", "gaze.lan,other.lan")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("gaze listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("gaze started");
    assert!(url.starts_with("http://127.0.0.1:"), "GAZE_BIND: {url}");
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let req = http.get(format!("{url}{path}"));
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // GAZE_DATA: the sample library is served.
    let chars = get("/api/library/characters").await;
    assert!(chars["items"].as_array().unwrap().len() >= 8, "{chars}");
    // GAZE_LEDGER: the ledger lives there.
    assert!(r.join("led/gaze.redb").exists());
    // GAZE_WORKFLOW: the built-in template was written there and is version 1 of it.
    assert!(r.join("wf/my_workflow.json").exists());
    assert!(
        get("/api/workflow").await["file"]
            .as_str()
            .unwrap()
            .ends_with("my_workflow.json")
    );
    // COMFYUI_URL: both backends, comma-separated.
    let status = get("/api/status/comfyui").await;
    let urls: Vec<&str> = status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        ["http://127.0.0.1:9", "http://127.0.0.1:10"],
        "{status}"
    );
    // GAZE_CHECKPOINTS and GAZE_LORAS: the model roots.
    let ck = get("/api/models/checkpoints").await;
    assert_eq!(
        ck["checkpoints"],
        serde_json::json!(["Illustrious/envmodel.safetensors"])
    );
    let lo = get("/api/loras/outfits").await;
    assert_eq!(
        lo["loras"],
        serde_json::json!(["Illustrious/Clothing/envlora.safetensors"])
    );
    // GAZE_UPLOADS: a cover lands there.
    let png = std::fs::read(sample_png()).unwrap();
    let up = http
        .post(format!("{url}/api/library/scenes/beach/cover"))
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    assert!(r.join("up/scenes/beach").read_dir().unwrap().count() == 1);
    // GAZE_ALLOW_HOSTS: each listed name is accepted.
    for host in ["gaze.lan", "other.lan:5000"] {
        let r = http
            .get(format!("{url}/api/health"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A 1×1 PNG written to a temporary file.
fn sample_png() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("gaze-cli-test-{}.png", std::process::id()));
    const PNG_1X1: [u8; 67] = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    std::fs::write(&path, PNG_1X1).unwrap();
    path
}

#[test]
fn preview_reads_gaze_data_and_flags_win_over_it() {
    let root = tempfile::tempdir().unwrap();
    copy_dir(&sample_data(), &root.path().join("lib"));
    let out = gaze()
        .args([
            "preview",
            "--category",
            "characters",
            "--slug",
            "tifa_lockhart",
            "--seed",
            "5",
        ])
        .env("GAZE_DATA", root.path().join("lib"))
        .env("GAZE_WORKFLOW", root.path().join("none.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seed"], 5);
    // The flag wins over the variable.
    let out = gaze()
        .args([
            "preview",
            "--category",
            "characters",
            "--slug",
            "tifa_lockhart",
        ])
        .arg("--data")
        .arg(root.path().join("nowhere"))
        .env("GAZE_DATA", root.path().join("lib"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tifa_lockhart"));
}

//! `POST /api/preview` and `gaze preview`: requests resolved against the library, with every
//! decision visible.

use crate::support::app::{Gaze, sample_data};
use serde_json::{Value, json};

fn tags(prompt: &Value) -> Vec<String> {
    prompt
        .as_str()
        .unwrap()
        .split(", ")
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_preview_shows_prompts_workflow_sources_and_versions() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let body = json!({"category": "outfits", "slug": "victorian_maid",
                      "character": "tifa_lockhart", "seed": 42, "extra_positive": "rain"});
    let (status, p) = g.post("/api/preview", &body.to_string()).await;
    assert_eq!(status, 200, "{p}");
    let main = tags(&p["prompts"]["main"]);
    assert!(main.contains(&"rain".to_string()));
    assert!(
        main.iter().any(|t| t == "maid"),
        "the outfit's wardrobe: {main:?}"
    );
    assert_eq!(p["seed"], 42);
    assert_eq!(p["workflow"]["3"]["inputs"]["seed"], 42);
    assert_eq!(p["workflow"]["6"]["inputs"]["text"], p["prompts"]["main"]);
    // Every tag of the main prompt says where it came from.
    let sources = p["explanation"]["main"].as_array().unwrap();
    assert_eq!(sources.len(), main.len());
    assert!(
        sources
            .iter()
            .any(|s| s["tag"] == "rain" && s["source"] == "extra_positive")
    );
    assert!(sources.iter().any(|s| {
        s["source"]
            .as_str()
            .unwrap()
            .starts_with("outfits/victorian_maid")
    }));
    let v = p["versions"].as_object().unwrap();
    assert!(v.contains_key("characters/tifa_lockhart") && v.contains_key("outfits/victorian_maid"));
    // Same request, same seed: the same result.
    let (_, again) = g.post("/api/preview", &body.to_string()).await;
    assert_eq!(again["workflow"], p["workflow"]);

    // An edit shows up in the next preview with a new version.
    let (_, outfit) = g.get("/api/library/outfits/victorian_maid").await;
    let mut data = outfit["data"].clone();
    data["tags"] = json!(["parasol"]);
    let (status, _) = g
        .put("/api/library/outfits/victorian_maid", &data.to_string())
        .await;
    assert_eq!(status, 200);
    let (_, after) = g.post("/api/preview", &body.to_string()).await;
    assert!(tags(&after["prompts"]["main"]).contains(&"parasol".to_string()));
    assert!(
        after["versions"]["outfits/victorian_maid"].as_u64()
            > p["versions"]["outfits/victorian_maid"].as_u64()
    );
}

#[tokio::test]
async fn random_characters_presets_and_looks_resolve() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let pick = |seed: u64| {
        json!({"category": "scenes", "slug": "beach", "character": "__random__", "seed": seed})
            .to_string()
    };
    let (_, a) = g.post("/api/preview", &pick(1)).await;
    let (_, b) = g.post("/api/preview", &pick(1)).await;
    assert_eq!(
        a["character"], b["character"],
        "a seeded random pick is stable"
    );
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let (status, p) = g.post("/api/preview", &pick(seed)).await;
        assert_eq!(status, 200);
        seen.insert(p["character"].as_str().unwrap().to_string());
    }
    assert!(seen.len() >= 4, "random picks vary with the seed: {seen:?}");

    let (status, p) = g
        .post(
            "/api/preview",
            r#"{"category": "presets", "slug": "tifa_beach_day"}"#,
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["character"], "tifa_lockhart");
    let versions = p["versions"].as_object().unwrap();
    assert!(versions.contains_key("scenes/beach") && versions.contains_key("actions/sitting"));
    assert!(tags(&p["prompts"]["main"]).contains(&"sunlight".to_string()));

    let (_, looks) = g.get("/api/library/looks").await;
    let look = looks["items"][0]["slug"].as_str().unwrap().to_string();
    let (_, l) = g.get(&format!("/api/library/looks/{look}")).await;
    let owner = l["data"]["character_id"].as_str().unwrap().to_string();
    let (status, p) = g
        .post(
            "/api/preview",
            &json!({"category": "looks", "slug": look, "seed": 3}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p["character"].as_str().unwrap(),
        gaze::library::category::Category::Characters.slug_of(&owner),
        "a look brings its own character"
    );
    assert!(
        p["workflow"]["16"]["inputs"]["lora_name"].is_string(),
        "the look's LoRA sits in node 16"
    );
}

#[tokio::test]
async fn bad_preview_requests_are_explained() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    for (body, want) in [
        ("nope", 400),
        ("{}", 400),
        (r#"{"category": "characters"}"#, 400),
        (r#"{"category": "characters", "slug": "nobody"}"#, 404),
        (r#"{"category": "weapons", "slug": "x"}"#, 400),
        (
            r#"{"category": "characters", "slug": "link", "seed": -1}"#,
            400,
        ),
        (
            r#"{"category": "characters", "slug": "link", "width": 100}"#,
            400,
        ),
        (
            r#"{"category": "characters", "slug": "link", "fields": ["hair"]}"#,
            400,
        ),
        (
            r#"{"category": "characters", "slug": "link", "checkpoint": "Noob/none.safetensors"}"#,
            404,
        ),
        (
            r#"{"category": "characters", "slug": "link", "colour": "red"}"#,
            400,
        ),
        (
            r#"{"category": "characters", "slug": "link", "action": "explode"}"#,
            400,
        ),
    ] {
        let (status, v) = g.post("/api/preview", body).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {v}"
        );
    }
}

#[test]
fn the_cli_previews_from_the_files_on_disk() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gaze"))
        .args([
            "preview",
            "--category",
            "characters",
            "--slug",
            "yuna_ff10",
            "--seed",
            "9",
        ])
        .arg("--data")
        .arg(sample_data())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seed"], 9);
    assert!(v["prompts"]["main"].as_str().unwrap().contains("yuna"));
    assert!(v["explanation"]["main"].as_array().unwrap().len() > 3);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_gaze"))
        .args(["preview", "--category", "characters", "--slug", "nobody"])
        .arg("--data")
        .arg(sample_data())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nobody"));
}

//! The library through the JSON API: the sample library, create/edit/clone/delete, covers,
//! preferences, settings, models, time travel, and bad input that must change nothing.

use crate::support::app::{Gaze, sample_data};
use serde_json::{Value, json};

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn the_sample_library_is_served_whole_and_a_restart_records_nothing() {
    let mut g = Gaze::start(Some(&sample_data()), &[]);
    let categories = [
        ("characters", "characters", 8),
        ("looks", "looks", 4),
        ("outfits", "clothing", 4),
        ("actions", "actions", 4),
        ("styles", "styles", 4),
        ("scenes", "scenes", 4),
        ("detailers", "detailers", 4),
        ("checkpoints", "checkpoints", 4),
        ("presets", "presets", 4),
    ];
    for (cat, dir, min) in categories {
        let (status, v) = g.get(&format!("/api/library/{cat}")).await;
        assert_eq!(status, 200);
        let items = v["items"].as_array().unwrap();
        assert_eq!(items.len(), count_files(&g.data().join(dir)), "{cat}");
        assert!(items.len() >= min, "{cat} has {} entries", items.len());
    }
    let (_, f) = g.get("/api/failures").await;
    assert_eq!(
        f["failures"],
        json!([]),
        "the sample library parses cleanly"
    );
    // The parenthesised id follows the regex: yuna_(ff10) -> yuna_ff10.
    let (status, yuna) = g.get("/api/library/characters/yuna_ff10").await;
    assert_eq!(status, 200);
    assert_eq!(yuna["id"], "yuna_(ff10)");
    assert_eq!(yuna["file"], "yuna_(ff10).json");
    let seq = g.seq().await;
    g.restart();
    assert_eq!(
        g.seq().await,
        seq,
        "a restart with no changes appends no events"
    );
    let (status, page) = g.call(reqwest::Method::GET, "/library", None).await;
    assert_eq!(status, 200);
    let html = page.as_str().unwrap();
    assert!(html.contains("Characters") && html.contains("document_synced"));
}

#[tokio::test]
async fn create_edit_clone_and_delete_write_files_and_keep_history() {
    let g = Gaze::start(None, &[]);
    let (status, v) = g
        .post(
            "/api/library/outfits",
            r#"{"outfit_name": "Red Dress", "wardrobe": {"full_body": "red dress"}, "x_custom": [1, 2]}"#,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["slug"], "red_dress");
    let file = g.data().join("clothing/red_dress.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        "{\n  \"outfit_id\": \"red_dress\",\n  \"outfit_name\": \"Red Dress\",\n  \"wardrobe\": {\n    \"full_body\": \"red dress\"\n  },\n  \"x_custom\": [\n    1,\n    2\n  ]\n}\n"
    );
    let created_at = v["version"].as_u64().unwrap();

    let (status, v) = g
        .put(
            "/api/library/outfits/red_dress",
            r#"{"outfit_name": "Crimson Dress", "wardrobe": {"full_body": "red dress"}, "x_custom": [1, 2]}"#,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "Crimson Dress");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("Crimson Dress")
    );
    // Time travel: the entry as it was right after it was created.
    let (_, old) = g
        .get(&format!("/api/library/outfits/red_dress?at={created_at}"))
        .await;
    assert_eq!(old["name"], "Red Dress");
    assert_eq!(old["data"]["x_custom"], json!([1, 2]));
    let (_, before) = g.get("/api/library/outfits?at=0").await;
    assert_eq!(before["items"], json!([]));

    let (status, c) = g.post("/api/library/outfits/red_dress/clone", "").await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["slug"], "red_dress_copy");
    assert_eq!(c["name"], "Crimson Dress (Copy)");
    assert!(g.data().join("clothing/red_dress_copy.json").exists());

    let (status, _) = g
        .post("/api/library/outfits", r#"{"outfit_id": "red_dress"}"#)
        .await;
    assert_eq!(status, 409, "a second entry with the same slug is refused");

    let (status, _) = g.delete("/api/library/outfits/red_dress").await;
    assert_eq!(status, 200);
    assert!(!file.exists(), "soft delete removes the JSON file");
    let (status, _) = g.get("/api/library/outfits/red_dress").await;
    assert_eq!(status, 404);
    let (_, ev) = g.get("/api/events?limit=1000").await;
    let kinds: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "workflow_synced",
            "document_created",
            "document_edited",
            "document_created",
            "document_deleted"
        ]
    );
    assert_eq!(ev["events"][0]["origin"], "startup");
    assert_eq!(ev["events"][1]["origin"], "web");
    assert_eq!(ev["events"][1]["slug"], "red_dress");
}

#[tokio::test]
async fn hard_delete_removes_the_lora_only_inside_the_lora_root() {
    let tmp = tempfile::tempdir().unwrap();
    let loras = tmp.path().join("loras");
    std::fs::create_dir_all(loras.join("Illustrious/Clothing")).unwrap();
    let lora = loras.join("Illustrious/Clothing/maid.safetensors");
    std::fs::write(&lora, b"weights").unwrap();
    let outside = tmp.path().join("precious.safetensors");
    std::fs::write(&outside, b"keep me").unwrap();
    let g = Gaze::start(None, &["--loras", loras.to_str().unwrap()]);
    let (_, v) = g.get("/api/loras/outfits").await;
    assert_eq!(v["loras"], json!(["Illustrious/Clothing/maid.safetensors"]));

    g.post(
        "/api/library/outfits",
        r#"{"outfit_id": "maid", "lora": {"lora_name": "Illustrious/Clothing/maid.safetensors"}}"#,
    )
    .await;
    g.post(
        "/api/library/outfits",
        r#"{"outfit_id": "sneaky", "lora": {"lora_name": "../../precious.safetensors"}}"#,
    )
    .await;
    let seq = g.seq().await;
    let (status, v) = g.delete("/api/library/outfits/sneaky?hard=true").await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("refusing"));
    assert!(outside.exists());
    assert!(g.data().join("clothing/sneaky.json").exists());
    assert_eq!(g.seq().await, seq, "a refused delete writes nothing");

    let (status, _) = g.delete("/api/library/outfits/maid?hard=true").await;
    assert_eq!(status, 200);
    assert!(!lora.exists(), "hard delete removed the LoRA");
    assert!(!g.data().join("clothing/maid.json").exists());
    let (status, _) = g.delete("/api/library/outfits/maid?hard=maybe").await;
    assert_eq!(status, 400);
}

const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

#[tokio::test]
async fn covers_are_validated_saved_served_and_cleared() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let url = format!("{}/api/library/scenes/beach/cover", g.url);
    let r = g
        .http
        .post(&url)
        .header("content-type", "image/svg+xml")
        .body(b"<svg/>".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // An oversized upload is refused from its declared length, before any of it is read.
    let addr = g.url.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    sock.write_all(
        format!(
            "POST /api/library/scenes/beach/cover HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
            21 * 1024 * 1024
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 512];
    let n = sock.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("larger than"), "{head}");
    let r = g
        .http
        .post(format!("{}/api/library/scenes/nowhere/cover", g.url))
        .header("content-type", "image/png")
        .body(PNG_1X1.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Multipart, as the HTML form sends it; the client's file name is ignored.
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(PNG_1X1.to_vec()).file_name("../../evil.png"),
    );
    let r = g.http.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let cover = v["cover"].as_str().unwrap().to_string();
    assert!(
        cover.starts_with("/static/uploads/scenes/beach/cover_"),
        "{cover}"
    );
    let img = g
        .http
        .get(format!("{}{cover}", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(img.status(), 200);
    assert_eq!(img.bytes().await.unwrap().as_ref(), PNG_1X1);
    assert!(!g.root().join("evil.png").exists());

    let (status, _) = g.post("/api/library/scenes/clear_covers", "").await;
    assert_eq!(status, 200);
    let (_, v) = g.get("/api/library/scenes/beach").await;
    assert_eq!(v["cover"], Value::Null);
}

#[tokio::test]
async fn preferences_default_fields_settings_and_default_checkpoint() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let (status, v) = g
        .put(
            "/api/library/characters/tifa_lockhart/preferences",
            r#"{"fields": ["identity::hair"], "extra_positive": "rain", "character": null}"#,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["extra_positive"], "rain");
    let (status, _) = g
        .put(
            "/api/library/characters/tifa_lockhart/preferences",
            r#"{"colour": "red"}"#,
        )
        .await;
    assert_eq!(status, 400);
    let (status, v) = g
        .put("/api/preferences/generator", r#"{"preview": "x.png"}"#)
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = g.get("/api/preferences/elsewhere").await;
    assert_eq!(status, 404);

    let (status, v) = g
        .put(
            "/api/library/characters/tifa_lockhart/default_fields",
            r#"{"fields": ["identity::hair", "wardrobe::top"]}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v["default_fields"],
        json!(["identity::hair", "wardrobe::top"])
    );
    let (status, _) = g
        .put(
            "/api/library/characters/tifa_lockhart/default_fields",
            r#"{"fields": ["hair"]}"#,
        )
        .await;
    assert_eq!(status, 400);

    let secret = "sk-test-do-not-store-0123456789";
    let (status, v) = g
        .put(
            "/api/settings",
            &format!(
                r#"{{"llm_provider": "ollama", "llm_model": "qwen3", "llm_key": "{secret}"}}"#
            ),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["llm_key_set"], true);
    assert!(v.get("llm_key").is_none(), "the key is write-only");
    let (status, _) = g
        .put("/api/settings", r#"{"llm_provider": "skynet"}"#)
        .await;
    assert_eq!(status, 400);
    let ledger = std::fs::read(g.ledger_dir().join("gaze.redb")).unwrap();
    assert!(
        !ledger.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the LLM key never enters the ledger"
    );
    let (_, ev) = g.get("/api/events?limit=1000").await;
    let changed = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "settings_changed")
        .unwrap();
    assert_eq!(changed["llm_key_changed"], true);

    let (_, ckpts) = g.get("/api/library/checkpoints").await;
    let path = ckpts["items"][0]["id"].as_str().unwrap().to_string();
    let (status, v) = g
        .post(
            "/api/default_checkpoint",
            &json!({"checkpoint_path": path}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["default_checkpoint"], path.as_str());
    let (status, _) = g
        .post(
            "/api/default_checkpoint",
            r#"{"checkpoint_path": "Noob/missing.safetensors"}"#,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn checkpoint_files_without_json_get_default_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ckpt");
    for f in [
        "Illustrious/newModel_v1.safetensors",
        "Noob/other.safetensors",
        "SD15/ignored.safetensors",
    ] {
        std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
        std::fs::write(root.join(f), b"").unwrap();
    }
    let mut g = Gaze::start(None, &["--checkpoints", root.to_str().unwrap()]);
    let (_, v) = g.get("/api/library/checkpoints").await;
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "Illustrious/newModel_v1.safetensors",
            "Noob/other.safetensors"
        ]
    );
    let (_, d) = g
        .get("/api/library/checkpoints/Illustrious_newModel_v1_safetensors")
        .await;
    assert_eq!(d["data"]["steps"], 25);
    assert!(
        g.data()
            .join("checkpoints/Illustrious_newModel_v1_safetensors.json")
            .exists()
    );
    let seq = g.seq().await;
    g.restart();
    assert_eq!(g.seq().await, seq, "discovery is not repeated");
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let seq = g.seq().await;
    let listing = std::fs::read_dir(g.data().join("characters"))
        .unwrap()
        .count();
    let cases: Vec<(reqwest::Method, &str, Option<&str>, u16)> = vec![
        (
            reqwest::Method::POST,
            "/api/library/characters",
            Some("{not json"),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/library/characters",
            Some("[1,2]"),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/library/characters",
            Some(""),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/library/characters",
            Some("{}"),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/library/characters",
            Some(r#"{"character_id": 7}"#),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/library/characters",
            Some(r#"{"character_id": "../../etc/passwd"}"#),
            201,
        ),
        (
            reqwest::Method::POST,
            "/api/library/weapons",
            Some("{}"),
            404,
        ),
        (
            reqwest::Method::GET,
            "/api/library/characters/nobody",
            None,
            404,
        ),
        (
            reqwest::Method::GET,
            "/api/library/characters/..%2F..%2Fetc",
            None,
            404,
        ),
        (
            reqwest::Method::PUT,
            "/api/library/characters/nobody",
            Some("{}"),
            404,
        ),
        (
            reqwest::Method::PUT,
            "/api/library/characters/tifa_lockhart",
            Some(r#"{"character_id": "someone_else"}"#),
            400,
        ),
        (
            reqwest::Method::DELETE,
            "/api/library/characters/nobody",
            None,
            404,
        ),
        (
            reqwest::Method::GET,
            "/api/library/characters?at=yesterday",
            None,
            400,
        ),
        (reqwest::Method::GET, "/api/events?after=-1", None, 400),
        (reqwest::Method::GET, "/api/nothing/here", None, 404),
        (
            reqwest::Method::PUT,
            "/api/settings",
            Some(r#"{"llm_url": 5}"#),
            400,
        ),
    ];
    for (method, path, body, want) in cases {
        let (status, v) = g.call(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path} {body:?}: {v}");
        if want >= 400 {
            assert!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{method} {path}: errors are JSON with a message, got {v}"
            );
        }
    }
    // Only the one valid create above wrote anything, and its file name is a plain slug.
    assert_eq!(g.seq().await, seq + 1);
    assert!(g.data().join("characters/etcpasswd.json").exists());
    assert_eq!(
        std::fs::read_dir(g.data().join("characters"))
            .unwrap()
            .count(),
        listing + 1
    );
}

//! The assistant end to end: drafting against an OpenAI-compatible stand-in that calls the
//! real MCP tag tools, reviewing and accepting drafts, every way the LLM can fail, bulk runs
//! over a LoRA folder interrupted by SIGKILL, the MCP servers over stdio and HTTP (rmcp and
//! the official Python SDK as clients), and tag autocomplete.

use crate::support::app::{Gaze, eventually, sample_data};
use crate::support::llm_standin::LlmStandIn;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::time::Duration;

const KEY: &str = "sk-test-SECRET-4711-never-in-the-ledger";

async fn configure(g: &Gaze, llm: &LlmStandIn, extra: Value) {
    let mut body = json!({"llm_provider": "openai", "llm_url": llm.url, "llm_model": "standin-1",
                          "llm_key": KEY});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (st, v) = g.put("/api/settings", &body.to_string()).await;
    assert_eq!(st, 200, "{v}");
}

async fn events(g: &Gaze) -> Vec<Value> {
    let (_, v) = g.get("/api/events?limit=1000").await;
    v["events"].as_array().unwrap().clone()
}

fn of_type<'a>(evs: &'a [Value], t: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["type"] == t).collect()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draft_uses_the_tag_tools_and_becomes_an_entry_only_when_accepted() {
    let llm = LlmStandIn::start().await;
    let g = Gaze::start(Some(&sample_data()), &[]);
    configure(&g, &llm, json!({})).await;
    let before = g.seq().await;

    let body = json!({"category": "outfits", "request": "winter maid outfit with fur trim"});
    let (st, d) = g.post("/api/assistant/draft", &body.to_string()).await;
    assert_eq!(st, 200, "{d}");
    let id = d["draft_id"].as_str().unwrap().to_string();
    assert_eq!(d["document"]["outfit_id"], "winter_maid_outfit_with");
    assert_eq!(d["model"], "openai/standin-1");
    // The model saw real tool results: the alias was corrected, so it used the canonical tag.
    assert_eq!(d["document"]["wardrobe"]["headwear"], "long hair");
    let calls = d["tool_calls"].as_array().unwrap();
    let validate = calls.iter().find(|c| c["tool"] == "validate_tags").unwrap();
    assert_eq!(validate["server"], "gaze-tags");
    assert_eq!(validate["result"]["valid"], json!(["long hair"]));
    assert_eq!(validate["result"]["corrections"]["longhair"], "long_hair");
    assert!(
        validate["result"]["invalid"]
            .as_array()
            .unwrap()
            .contains(&json!("blak hair"))
    );
    let search = calls.iter().find(|c| c["tool"] == "search_tags").unwrap();
    assert_eq!(search["result"]["tags"][0]["name"], "hair_ornament");

    // What the provider was sent: the model, the key, the three tools, the category's prompt.
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "one tool turn, then the answer");
    assert_eq!(llm.answered(), ["winter maid outfit with"]);
    assert_eq!(reqs[0]["model"], "standin-1");
    let mut tools: Vec<&str> = reqs[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    tools.sort_unstable();
    assert_eq!(tools, ["search_tags", "suggest_tags", "validate_tags"]);
    assert!(
        reqs[0]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You write OUTFIT entries")
    );
    assert!(
        llm.auth()
            .iter()
            .all(|a| a.as_deref() == Some(&*format!("Bearer {KEY}")))
    );

    // Nothing is created until the draft is accepted; the draft itself is recorded.
    let (st, _) = g.get("/api/library/outfits/winter_maid_outfit_with").await;
    assert_eq!(st, 404);
    let evs = events(&g).await;
    let made = of_type(&evs, "draft_made");
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["origin"], "assistant");
    assert_eq!(made[0]["draft"], id.as_str());
    assert_eq!(
        made[0]["made"]["request"],
        "winter maid outfit with fur trim"
    );
    assert_eq!(made[0]["made"]["model"], "openai/standin-1");
    assert_eq!(
        made[0]["made"]["tool_calls"].as_array().unwrap().len(),
        calls.len()
    );
    assert!(of_type(&evs, "document_created").is_empty());
    assert_eq!(g.seq().await, before + 1);
    let (st, read) = g.get(&format!("/api/assistant/drafts/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(read["document"], d["document"]);
    assert_eq!(read["entry"], Value::Null);
    let (st, page) = g.get(&format!("/assistant/drafts/{id}")).await;
    assert_eq!(st, 200);
    assert!(page.as_str().unwrap().contains("data-tag-autocomplete"));

    // Accept with an edit: the entry is created, its file written, its origin recorded.
    let mut doc = d["document"].clone();
    doc["outfit_name"] = "Winter Maid".into();
    let (st, e) = g
        .post(
            &format!("/api/assistant/drafts/{id}/accept"),
            &json!({"document": doc}).to_string(),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    assert_eq!(
        (e["slug"].as_str(), e["edited"].as_bool()),
        (Some("winter_maid_outfit_with"), Some(true))
    );
    let file = g.data().join("clothing/winter_maid_outfit_with.json");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(on_disk["outfit_name"], "Winter Maid");
    let evs = events(&g).await;
    let created = of_type(&evs, "document_created");
    assert_eq!(created[0]["source"], json!({"Assistant": {"draft_id": id}}));
    assert_eq!(created[0]["origin"], "web");
    let (_, read) = g.get(&format!("/api/assistant/drafts/{id}")).await;
    assert_eq!(read["entry"], "winter_maid_outfit_with");
    // The draft stays as it was made, so later edits can be diffed against it.
    assert_eq!(read["document"]["outfit_name"], "winter maid outfit with");

    // Twice, unknown, malformed: refused, nothing written.
    let seq = g.seq().await;
    let accept = format!("/api/assistant/drafts/{id}/accept");
    let (st, e) = g.post(&accept, "").await;
    assert_eq!(st, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("already accepted"));
    let (st, _) = g
        .post(
            "/api/assistant/drafts/01J00000000000000000000000/accept",
            "",
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = g.post("/api/assistant/drafts/nope/accept", "").await;
    assert_eq!(st, 404);
    let (st, _) = g.post(&accept, "[1]").await;
    assert_eq!(st, 400);
    assert_eq!(g.seq().await, seq);

    // The key is in its file, never in the ledger.
    let ledger = std::fs::read(g.ledger_dir().join("gaze.redb")).unwrap();
    assert!(
        !ledger.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "the key leaked into the ledger"
    );
    assert_eq!(
        std::fs::read_to_string(g.ledger_dir().join("llm_key.secret"))
            .unwrap()
            .trim(),
        KEY
    );
    let (_, s) = g.get("/api/settings").await;
    assert_eq!(s["llm_key_set"], true);
    assert!(!s.to_string().contains(KEY));

    // The create page exists for every category.
    for singular in ["character", "outfit", "look", "preset", "checkpoint"] {
        let (st, _) = g.get(&format!("/{singular}/create/assistant")).await;
        assert_eq!(st, 200, "{singular}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_llm_failure_is_a_clear_error_and_writes_nothing() {
    let llm = LlmStandIn::start().await;
    let g = Gaze::start(Some(&sample_data()), &[]);
    let draft = |req: &str| json!({"category": "scenes", "request": req}).to_string();

    // Not set up yet.
    let (st, e) = g.post("/api/assistant/draft", &draft("a beach")).await;
    assert_eq!(
        (st, e["kind"].as_str()),
        (400, Some("not_configured")),
        "{e}"
    );

    configure(&g, &llm, json!({"llm_timeout_secs": 2})).await;
    let seq = g.seq().await;
    let cases = [
        ("#refuse", "refused", "I can't help with that request"),
        ("#garbage", "garbage", "not JSON"),
        ("#truncated", "garbage", "not JSON"),
        ("#always-bad", "invalid_answer", "after 3 retries"),
        ("#slow", "timeout", "within 2 s"),
        ("#status500", "provider_error", "upstream overloaded"),
        ("#loop", "too_many_turns", "10 turns"),
    ];
    for (marker, kind, words) in cases {
        let (st, e) = g
            .post("/api/assistant/draft", &draft(&format!("a beach {marker}")))
            .await;
        assert_eq!(st, 424, "{marker}: {e}");
        assert_eq!(e["kind"], kind, "{marker}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains(words),
            "{marker}: {e}"
        );
    }
    assert_eq!(g.seq().await, seq, "failed drafts record nothing");
    let finals = llm
        .requests()
        .iter()
        .filter(|r| {
            r["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("#always-bad")
        })
        .count();
    assert_eq!(
        finals,
        1 + 1 + 3,
        "one tool turn, the answer and three retries"
    );
    let all = llm.requests();
    let loops = all
        .iter()
        .filter(|r| {
            r["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("#loop")
        })
        .collect::<Vec<_>>();
    assert_eq!(
        loops.len(),
        11,
        "ten tool turns, then one request without tools"
    );
    assert!(loops[10].get("tools").is_none());

    // One bad answer is fixed by a retry.
    let (st, d) = g
        .post("/api/assistant/draft", &draft("a sunny beach #bad-once"))
        .await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(d["retries"], 1);
    assert_eq!(d["document"]["scene_name"], "a sunny beach");

    // A provider that is not there.
    let (st, _) = g
        .put(
            "/api/settings",
            &json!({"llm_url": "http://127.0.0.1:1/v1"}).to_string(),
        )
        .await;
    assert_eq!(st, 200);
    let (st, e) = g.post("/api/assistant/draft", &draft("a beach")).await;
    assert_eq!((st, e["kind"].as_str()), (424, Some("unreachable")), "{e}");

    // Bad requests.
    for (body, status) in [
        (json!({"request": "x"}), 400),
        (json!({"category": "nope", "request": "x"}), 404),
        (json!({"category": "scenes", "request": "  "}), 400),
        (
            json!({"category": "scenes", "request": "x".repeat(9000)}),
            400,
        ),
    ] {
        let (st, e) = g.post("/api/assistant/draft", &body.to_string()).await;
        assert_eq!(st, status, "{body}: {e}");
        assert!(e["error"].is_string());
    }
    let (st, _) = g.post("/api/assistant/draft", "not json").await;
    assert_eq!(st, 400);
}

/// A safetensors file holding only a header with `__metadata__`.
fn write_safetensors(path: &Path, meta: Value) {
    let header = json!({"__metadata__": meta}).to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_run_survives_sigkill_and_drafts_every_lora_once() {
    let llm = LlmStandIn::start().await;
    let loras = tempfile::tempdir().unwrap();
    let dir = loras.path().join("Illustrious/Clothing");
    let files = [
        "alpha_dress",
        "beta_coat",
        "gamma_kimono",
        "delta_armor",
        "epsilon_suit",
    ];
    for (i, f) in files.iter().enumerate() {
        write_safetensors(
            &dir.join(format!("{f}.safetensors")),
            json!({"ss_output_name": f, "ss_tag_frequency": format!("{{\"1_x\": {{\"tag{i}\": 5}}}}")}),
        );
    }
    std::fs::write(dir.join("beta_coat.civitai.info"),
        r#"{"model": {"name": "Beta Coat"}, "trainedWords": ["btcoat"], "description": "<p>A long coat.</p>"}"#).unwrap();
    std::fs::write(
        dir.join("gamma_kimono.json"),
        r#"{"activation text": "gkimono"}"#,
    )
    .unwrap();
    // A file an entry already uses is left alone.
    let used = crate::support::sample::sample_models()
        .1
        .into_iter()
        .find(|l| l.starts_with("Illustrious/Clothing/"))
        .unwrap();
    std::fs::create_dir_all(loras.path().join(&used).parent().unwrap()).unwrap();
    std::fs::write(loras.path().join(&used), b"").unwrap();

    let root = loras.path().to_str().unwrap().to_string();
    let mut g = Gaze::start(Some(&sample_data()), &["--loras", &root]);
    configure(&g, &llm, json!({})).await;
    llm.set_delay(Duration::from_millis(400));

    let (st, run) = g
        .post(
            "/api/assistant/bulk_create",
            &json!({"category": "outfits"}).to_string(),
        )
        .await;
    assert_eq!(st, 202, "{run}");
    let batch = run["batch"].as_str().unwrap().to_string();
    assert_eq!(run["total"], 5);
    assert!(
        run["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["lora"] != used.as_str())
    );
    let status = format!("/api/assistant/bulk/{batch}");

    // Live progress arrives on the stream.
    let mut sse = g
        .http
        .get(format!("{}/api/assistant/stream", g.url))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(seen.contains("event: progress") && seen.contains("event: bulk"))
        && tokio::time::Instant::now() < deadline
    {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(5), sse.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(
        seen.contains("event: progress") && seen.contains("event: bulk"),
        "{seen}"
    );
    drop(sse);

    assert!(
        eventually(Duration::from_secs(30), || async {
            g.get(&status).await.1["created"].as_u64().unwrap_or(0) >= 2
        })
        .await,
        "two entries before the kill: {}",
        g.get(&status).await.1
    );
    g.kill9();
    g.spawn();
    assert!(
        eventually(Duration::from_secs(60), || async {
            g.get(&status).await.1["status"] == "done"
        })
        .await,
        "the run finishes after the restart: {}",
        g.get(&status).await.1
    );

    let (_, run) = g.get(&status).await;
    assert_eq!(
        (run["created"].as_u64(), run["failed"].as_u64()),
        (Some(5), Some(0)),
        "{run}"
    );
    let evs = events(&g).await;
    let made: Vec<&Value> = of_type(&evs, "draft_made")
        .into_iter()
        .filter(|e| e["made"]["batch"] == batch.as_str())
        .collect();
    let mut drafted: Vec<&str> = made
        .iter()
        .map(|e| e["made"]["lora"].as_str().unwrap())
        .collect();
    drafted.sort_unstable();
    let mut want: Vec<String> = files
        .iter()
        .map(|f| format!("Illustrious/Clothing/{f}.safetensors"))
        .collect();
    want.sort_unstable();
    assert_eq!(drafted, want, "every file drafted exactly once");
    let created = of_type(&evs, "document_created");
    assert_eq!(created.len(), 5);
    assert!(
        created
            .iter()
            .chain(made.iter())
            .all(|e| e["origin"] == "assistant")
    );
    for item in run["items"].as_array().unwrap() {
        let slug = item["slug"].as_str().unwrap();
        let (_, e) = g.get(&format!("/api/library/outfits/{slug}")).await;
        assert_eq!(e["data"]["lora"]["lora_name"], item["lora"], "{e}");
    }
    // Sidecars reached the model, and their trigger words the entries.
    let (_, beta) = g.get("/api/library/outfits/beta_coat").await;
    assert_eq!(beta["data"]["lora"]["lora_triggers"], "btcoat");
    let (_, gamma) = g.get("/api/library/outfits/gamma_kimono").await;
    assert_eq!(gamma["data"]["lora"]["lora_triggers"], "gkimono");
    let asked: Vec<String> = llm
        .requests()
        .iter()
        .map(|r| r["messages"][1]["content"].as_str().unwrap().to_string())
        .collect();
    assert!(asked.iter().any(|m| m.contains("beta_coat")
        && m.contains("Model name: Beta Coat")
        && m.contains("A long coat.")));
    assert!(asked.iter().any(|m| m.contains("training captions: tag0")));

    // Nothing left to do: both routes say so.
    let (st, e) = g
        .post(
            "/api/assistant/bulk_create",
            &json!({"category": "outfits"}).to_string(),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("already has an entry")
    );
    let r = g
        .http
        .post(format!("{}/outfits/bulk_create", g.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (st, _) = g
        .post(
            "/api/assistant/bulk_create",
            &json!({"category": "presets"}).to_string(),
        )
        .await;
    assert_eq!(st, 400);
    let (st, page) = g.get(&format!("/assistant/bulk/{batch}")).await;
    assert_eq!(st, 200);
    assert!(page.as_str().unwrap().contains("beta_coat"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_run_can_be_cancelled_and_its_page_started_from_a_form() {
    let llm = LlmStandIn::start().await;
    let loras = tempfile::tempdir().unwrap();
    for f in ["one", "two", "three"] {
        write_safetensors(
            &loras
                .path()
                .join(format!("Illustrious/Styles/{f}.safetensors")),
            json!({}),
        );
    }
    let root = loras.path().to_str().unwrap().to_string();
    let g = Gaze::start(Some(&sample_data()), &["--loras", &root]);
    configure(&g, &llm, json!({})).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = |path: &str, fields: &[(&str, &str)]| {
        client.post(format!("{}{path}", g.url)).form(fields).send()
    };
    let (_, page) = g.get("/outfit/create/assistant").await;
    let page = page.as_str().unwrap().to_string();
    let token = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();

    // Without JavaScript: the description form drafts and opens the review page...
    let r = form(
        "/outfit/create/assistant",
        &[
            ("csrf", &token),
            ("category", "outfits"),
            ("request", "a form maid"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let review = r.headers()["location"].to_str().unwrap().to_string();
    assert!(review.starts_with("/assistant/drafts/"), "{review}");
    let (st, html) = g.get(&review).await;
    assert_eq!(st, 200);
    assert!(html.as_str().unwrap().contains(r#"name="s/wardrobe/top""#));
    // ...whose form saves the edited fields.
    let r = form(
        &format!("{review}/accept"),
        &[
            ("csrf", &token),
            ("s/outfit_name", "Form Maid"),
            ("l/tags", "a, b"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/outfit/a_form_maid");
    let (_, e) = g.get("/api/library/outfits/a_form_maid").await;
    assert_eq!(
        (e["name"].as_str(), e["data"]["tags"].clone()),
        (Some("Form Maid"), json!(["a", "b"]))
    );
    // Forms without the token are refused by the guard.
    let r = form(
        "/outfit/create/assistant",
        &[("category", "outfits"), ("request", "x")],
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    llm.set_delay(Duration::from_millis(1500));
    // The original's form route answers with a redirect to the run's page.
    let r = form("/styles/bulk_create", &[("csrf", &token)])
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let page = r.headers()["location"].to_str().unwrap().to_string();
    let batch = page.rsplit('/').next().unwrap().to_string();
    let (st, v) = g
        .post(&format!("/api/assistant/bulk/{batch}/cancel"), "")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "cancelled");
    let (st, _) = g
        .post(&format!("/api/assistant/bulk/{batch}/cancel"), "")
        .await;
    assert_eq!(st, 409);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, v) = g.get(&format!("/api/assistant/bulk/{batch}")).await;
    assert_eq!(
        v["created"], 0,
        "a draft finished after the cancel is not recorded: {v}"
    );
    let (st, _) = g
        .get("/api/assistant/bulk/01J00000000000000000000000")
        .await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tag_autocomplete_ranks_by_use_and_filters() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let (st, v) = g.get("/api/tags/autocomplete?q=long%20ha&limit=3").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["tags"][0]["name"], "long_hair");
    assert_eq!(v["tags"][0]["category"], "general");
    let (_, v) = g
        .get("/api/tags/autocomplete?q=hatsu&category=character")
        .await;
    assert_eq!(v["tags"][0]["name"], "hatsune_miku");
    assert!(
        v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["category"] == "character")
    );
    let (_, v) = g.get("/api/tags/autocomplete?q=").await;
    assert_eq!(v["tags"], json!([]));
    let (st, e) = g.get("/api/tags/autocomplete?q=a&category=colour").await;
    assert_eq!(st, 400, "{e}");
    let (st, _) = g.get("/api/tags/autocomplete?q=a&limit=many").await;
    assert_eq!(st, 400);
    // The tag list in data/ is not a library document.
    let (_, h) = g.get("/api/health").await;
    assert_eq!(h["sync_failures"], 0);
    let js = g
        .http
        .get(format!("{}/static/js/tag-autocomplete.js", g.url))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status().as_u16(), 200);
}

async fn rmcp_call(peer: &rmcp::service::Peer<rmcp::RoleClient>, tool: &str, args: Value) -> Value {
    let r = peer
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(obj(args)))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{tool}: {r:?}");
    r.structured_content.unwrap_or(Value::Null)
}

fn gaze_cmd() -> tokio::process::Command {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_gaze"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tag_tools_answer_rmcp_clients_over_stdio_and_http() {
    let csv = sample_data().join("danbooru-tags.csv");
    let child = TokioChildProcess::new(gaze_cmd().configure(|c| {
        c.arg("mcp").arg("tags").arg("--tags").arg(&csv);
    }))
    .unwrap();
    let svc = ().serve(child).await.unwrap();
    let mut names: Vec<String> = svc
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["search_tags", "suggest_tags", "validate_tags"]);
    let v = rmcp_call(
        svc.peer(),
        "search_tags",
        json!({"query": "long", "limit": 3}),
    )
    .await;
    assert_eq!(v["tags"][0]["name"], "long_hair");
    assert_eq!(v["tags"].as_array().unwrap().len(), 3);
    let v = rmcp_call(
        svc.peer(),
        "validate_tags",
        json!({"tags": ["red eyes", "ff7", "zzz nope"]}),
    )
    .await;
    assert_eq!(
        v,
        json!({"valid": ["red eyes"], "invalid": ["ff7", "zzz nope"], "corrections": {"ff7": "final_fantasy_vii"}})
    );
    let v = rmcp_call(
        svc.peer(),
        "suggest_tags",
        json!({"partial": "tifa", "category": "character", "limit": 2}),
    )
    .await;
    assert_eq!(v["tags"][0]["name"], "tifa_lockhart");
    let r = svc
        .peer()
        .call_tool(
            CallToolRequestParams::new("search_tags")
                .with_arguments(obj(json!({"query": "x", "category": "nope"}))),
        )
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    svc.cancel().await.unwrap();

    let g = Gaze::start(Some(&sample_data()), &[]);
    let http = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{}/mcp/tags",
            g.url
        )))
        .await
        .unwrap();
    let v = rmcp_call(
        http.peer(),
        "search_tags",
        json!({"query": "hair ornament", "limit": 5}),
    )
    .await;
    assert_eq!(v["tags"][0]["name"], "hair_ornament");
    http.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_library_server_reads_previews_queues_and_records_changes_as_mcp() {
    let mut g = Gaze::start(Some(&sample_data()), &["--paused"]);
    let http = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{}/mcp/library",
            g.url
        )))
        .await
        .unwrap();
    let p = http.peer();
    assert_eq!(http.list_all_tools().await.unwrap().len(), 8);
    let v = rmcp_call(p, "list_entries", json!({"category": "outfits"})).await;
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["slug"] == "victorian_maid")
    );
    let v = rmcp_call(p, "search_entries", json!({"query": "maid"})).await;
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["slug"] == "victorian_maid")
    );
    let v = rmcp_call(
        p,
        "get_entry",
        json!({"category": "outfits", "slug": "victorian_maid"}),
    )
    .await;
    assert_eq!(v["data"]["outfit_id"], "victorian_maid");
    let old_version = v["version"].as_u64().unwrap();

    // Edit, then read the entry as it was before.
    let mut doc = v["data"].clone();
    doc["outfit_name"] = "Maid (edited by an agent)".into();
    let v = rmcp_call(
        p,
        "edit_entry",
        json!({"category": "outfits", "slug": "victorian_maid", "document": doc}),
    )
    .await;
    assert_eq!(v["name"], "Maid (edited by an agent)");
    let v = rmcp_call(
        p,
        "get_entry",
        json!({"category": "outfits", "slug": "victorian_maid", "at_seq": old_version}),
    )
    .await;
    assert_ne!(v["name"], "Maid (edited by an agent)");
    assert_eq!(v["at_seq"], old_version);
    let v = rmcp_call(
        p,
        "create_entry",
        json!({"category": "scenes", "document": {"scene_name": "Rooftop Garden"}}),
    )
    .await;
    assert_eq!(v["slug"], "rooftop_garden");

    let req = json!({"category": "outfits", "slug": "victorian_maid", "character": "tifa_lockhart", "seed": 7});
    let v = rmcp_call(p, "preview_prompt", json!({"request": req})).await;
    assert_eq!(v["seed"], 7);
    assert!(v["prompts"]["main"].as_str().unwrap().contains("maid"));
    assert!(v.get("workflow").is_none());
    let v = rmcp_call(p, "queue_generation", json!({"request": req})).await;
    let job = v["job_id"].as_str().unwrap().to_string();
    let v = rmcp_call(p, "get_job", json!({"job_id": job})).await;
    assert_eq!(v["status"], "pending");
    assert_eq!(v["recipe"]["seed"], 7);
    let bad = p
        .call_tool(
            CallToolRequestParams::new("get_entry")
                .with_arguments(obj(json!({"category": "outfits", "slug": "../etc"}))),
        )
        .await
        .unwrap();
    assert_eq!(bad.is_error, Some(true));
    http.cancel().await.unwrap();

    let evs = events(&g).await;
    for t in ["document_edited", "document_created", "job_requested"] {
        assert_eq!(of_type(&evs, t).last().unwrap()["origin"], "mcp", "{t}");
    }

    // Over stdio while the server holds the ledger: relayed to the running app.
    let ledger = g.ledger_dir();
    let stdio = |ledger: &Path, data: &Path| {
        let (l, d) = (ledger.to_path_buf(), data.to_path_buf());
        TokioChildProcess::new(gaze_cmd().configure(move |c| {
            c.arg("mcp")
                .arg("library")
                .arg("--ledger")
                .arg(&l)
                .arg("--data")
                .arg(&d);
        }))
        .unwrap()
    };
    let svc = ().serve(stdio(&ledger, &g.data())).await.unwrap();
    let v = rmcp_call(
        svc.peer(),
        "create_entry",
        json!({"category": "scenes", "document": {"scene_name": "Via Stdio"}}),
    )
    .await;
    assert_eq!(v["slug"], "via_stdio");
    svc.cancel().await.unwrap();
    let (st, _) = g.get("/api/library/scenes/via_stdio").await;
    assert_eq!(st, 200);

    // With no server running it opens the ledger itself.
    g.stop();
    let svc = ().serve(stdio(&ledger, &g.data())).await.unwrap();
    let v = rmcp_call(
        svc.peer(),
        "create_entry",
        json!({"category": "scenes", "document": {"scene_name": "Offline"}}),
    )
    .await;
    assert_eq!(v["slug"], "offline");
    svc.cancel().await.unwrap();
    g.spawn();
    let (st, _) = g.get("/api/library/scenes/offline").await;
    assert_eq!(st, 200);
    let evs = events(&g).await;
    assert_eq!(
        of_type(&evs, "document_created").last().unwrap()["origin"],
        "mcp"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_official_python_sdk_talks_to_both_servers() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import mcp"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs the MCP Python SDK: pip install mcp ({probe:?})"
    );
    let g = Gaze::start(Some(&sample_data()), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mcp_sdk_client.py");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_gaze"))
        .arg(sample_data().join("danbooru-tags.csv"))
        .arg(format!("{}/mcp/library", g.url))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        v["tag_tools"],
        json!(["search_tags", "suggest_tags", "validate_tags"])
    );
    assert_eq!(v["search"]["tags"][0]["name"], "long_hair");
    assert_eq!(v["validate"]["corrections"]["longhair"], "long_hair");
    assert!(
        v["library_tools"]
            .as_array()
            .unwrap()
            .contains(&json!("queue_generation"))
    );
    assert!(
        v["outfits"]
            .as_array()
            .unwrap()
            .contains(&json!("victorian_maid"))
    );
    assert_eq!(v["created"], "python_made");
    let evs = events(&g).await;
    let created = of_type(&evs, "document_created");
    assert_eq!(created.last().unwrap()["slug"], "python_made");
    assert_eq!(created.last().unwrap()["origin"], "mcp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn configured_mcp_servers_add_their_tools_by_command_and_by_url() {
    let llm = LlmStandIn::start().await;
    let g = Gaze::start(Some(&sample_data()), &[]);
    let csv = sample_data().join("danbooru-tags.csv");
    let servers = json!([
        {"name": "local", "command": env!("CARGO_BIN_EXE_gaze"),
         "args": ["mcp", "tags", "--tags", csv.to_str().unwrap()]},
        {"name": "lib", "url": format!("{}/mcp/library", g.url)},
        {"name": "gone", "url": "http://127.0.0.1:1/mcp"}
    ]);
    configure(&g, &llm, json!({"mcp_servers": servers})).await;
    let (st, d) = g
        .post(
            "/api/assistant/draft",
            &json!({"category": "actions", "request": "jumping for joy"}).to_string(),
        )
        .await;
    assert_eq!(st, 200, "{d}");
    let offered: Vec<String> = llm.requests()[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect();
    for name in [
        "search_tags",
        "local__search_tags",
        "local__validate_tags",
        "list_entries",
        "queue_generation",
    ] {
        assert!(
            offered.iter().any(|o| o == name),
            "{name} not in {offered:?}"
        );
    }
    assert_eq!(offered.len(), 3 + 3 + 8, "{offered:?}");
    let warnings = d["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("'gone' is unavailable")
    );
    // A bad server list is refused and changes nothing.
    let (st, e) = g
        .put(
            "/api/settings",
            &json!({"mcp_servers": [{"name": "x y", "url": "http://h"}]}).to_string(),
        )
        .await;
    assert_eq!(st, 400, "{e}");
}

#[test]
fn the_autocomplete_script_completes_the_tag_under_the_cursor() {
    let Ok(node) = which_node() else {
        eprintln!("node is not installed; the script's token rules are not checked here");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("static/js/tag-autocomplete.js");
    let check = format!(
        r#"global.window = {{}};
global.document = {{ readyState: "complete", querySelectorAll: () => [] }};
eval(require("fs").readFileSync({path:?}, "utf8"));
const a = window.gazeTagAutocomplete;
const cases = [
  ["long hair, red ey, smile", 16, "red eyes", "long hair, red eyes, smile", 20, "red e"],
  ["long hair, bl", 13, "blue eyes", "long hair, blue eyes, ", 22, "bl"],
  ["tw", 2, "twintails", "twintails, ", 11, "tw"],
  ["a,  hats", 8, "hatsune miku", "a,  hatsune miku, ", 18, "hats"],
];
for (const [text, caret, tag, want, wantCaret, prefix] of cases) {{
  const t = a.tokenAt(text, caret);
  if (t.prefix !== prefix) throw new Error("prefix " + JSON.stringify(t) + " for " + text);
  const out = a.replaceToken(text, t, tag);
  if (out.text !== want || out.caret !== wantCaret) throw new Error(JSON.stringify(out) + " for " + text);
}}
console.log("ok");"#,
        path = script.to_str().unwrap()
    );
    let out = std::process::Command::new(node)
        .arg("-e")
        .arg(check)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

fn which_node() -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("node"))
        .find(|p| p.is_file())
        .ok_or(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mcp_endpoints_answer_the_hosts_the_guard_allows_and_no_others() {
    let g = Gaze::start(Some(&sample_data()), &["--allow-host", "gaze.lan"]);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "host-check", "version": "1"}}});
    for (host, want) in [("gaze.lan", 200), ("localhost", 200), ("evil.example", 403)] {
        for path in ["/mcp/tags", "/mcp/library"] {
            let r = g
                .http
                .post(format!("{}{path}", g.url))
                .header("host", host)
                .header("accept", "application/json, text/event-stream")
                .json(&init)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), want, "{host} {path}");
        }
    }
    // A cross-site write is refused before it reaches the MCP server.
    let r = g
        .http
        .post(format!("{}/mcp/library", g.url))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_browser_a_description_becomes_a_reviewed_entry_with_tag_autocomplete() {
    use crate::support::browser::{Browser, Locator};
    let Some(b) = Browser::start().await else {
        return;
    };
    let llm = LlmStandIn::start().await;
    let g = Gaze::start(Some(&sample_data()), &[]);
    configure(&g, &llm, json!({})).await;
    let wait = Duration::from_secs(20);

    b.goto(&format!("{}/outfit/create/assistant", g.url)).await;
    assert_eq!(
        b.axe().await,
        Vec::<Value>::new(),
        "accessibility of the create page"
    );
    b.fill("#assistant-request", "a rainy day coat").await;
    b.click("[data-assistant-form] button[type=submit]").await;
    b.until(
        "the review page",
        "location.pathname.startsWith('/assistant/drafts/')",
        wait,
    )
    .await;
    assert_eq!(
        b.axe().await,
        Vec::<Value>::new(),
        "accessibility of the review page"
    );

    // Autocomplete on a tag field: type, see the listbox, pick with the keyboard.
    let field = r#"input[name="s/wardrobe/bottom"]"#;
    b.fill(field, "white shirt, long sl").await;
    b.until(
        "suggestions",
        "document.querySelector('[role=listbox]:not([hidden]) [role=option]')",
        wait,
    )
    .await;
    let expanded = b
        .js(&format!(
            "return document.querySelector('{}').getAttribute('aria-expanded')",
            field.replace('\'', "\\'")
        ))
        .await;
    assert_eq!(expanded, "true");
    let input = b.client.find(Locator::Css(field)).await.unwrap();
    input.send_keys("\u{E015}").await.unwrap(); // ArrowDown
    input.send_keys("\u{E007}").await.unwrap(); // Enter
    let value = b
        .js(&format!(
            "return document.querySelector('{}').value",
            field.replace('\'', "\\'")
        ))
        .await;
    assert_eq!(value, "white shirt, long sleeves, ");
    b.screenshots("assistant-review").await;

    b.click("[data-draft-fields] button[type=submit]").await;
    b.until(
        "the entry page",
        "location.pathname === '/outfit/a_rainy_day_coat'",
        wait,
    )
    .await;
    let (_, e) = g.get("/api/library/outfits/a_rainy_day_coat").await;
    assert_eq!(e["data"]["wardrobe"]["bottom"], "white shirt, long sleeves");
    b.close().await;
}

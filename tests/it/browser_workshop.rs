//! The workshop pages in headless Chromium against the real binary and the ComfyUI stand-in:
//! the generator (a character and an outfit, the outfit's tags in the live prompt, Generate,
//! the image in the strip), the image gallery (filter, open, the recipe, make it the cover,
//! the arrow keys and Escape), a 3-step strengths sweep landing in weight order, the transfer
//! of a wardrobe outfit into an outfit file, the queue (cancel a job waiting in ComfyUI's queue,
//! pause and resume), settings (the key never shown back; a backend added at run time gets
//! jobs) and search (an entry by a tag, an image by its prompt, `/` to focus). Every page stays
//! on its origin, passes axe-core, and is photographed at desktop and phone widths.

use crate::jobs::comfy;
use crate::support::app::{Gaze, eventually, sample_data};
use crate::support::browser::Browser;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn check_page(b: &Browser, g: &Gaze, name: &str) {
    let foreign = b.foreign_requests(&g.url).await;
    assert!(
        foreign.is_empty(),
        "{name} loaded from elsewhere: {foreign:?}"
    );
    let v = b.axe().await;
    assert!(
        v.is_empty(),
        "{name}: accessibility violations: {}",
        Value::from(v)
    );
    b.screenshots(&format!("workshop-{name}")).await;
}

async fn wait_done(g: &Gaze, id: &str) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let last = g.get(&format!("/api/jobs/{id}")).await.1;
        if last["status"] == "done" {
            return last;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} did not finish: {last}\n{}",
            g.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn generate(g: &Gaze, body: Value) -> String {
    let (status, v) = g.post("/api/generate", &body.to_string()).await;
    assert_eq!(status, 202, "{v}");
    v["job_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn generator_gallery_search_and_strengths_in_the_browser() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let standin = comfy(150).await;
    let g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let base = g.url.clone();

    // The generator: Tifa in the Victorian maid outfit; the prompt preview shows the outfit's
    // tags; Generate; the image lands in the strip.
    b.goto(&format!("{base}/generator")).await;
    b.js("const s = document.getElementById('gen-character'); s.value = 'tifa_lockhart'; s.dispatchEvent(new Event('change', {bubbles: true}));").await;
    b.until(
        "Tifa's fields",
        "document.querySelector('#gen-character-fields input[value=\"identity::hair\"]')",
        WAIT,
    )
    .await;
    b.click("button[data-bs-target='#mix-outfits']").await;
    b.until(
        "the outfits list",
        "document.getElementById('mix-outfits').classList.contains('show')",
        WAIT,
    )
    .await;
    b.fill("#filter-outfits", "maid").await;
    b.until(
        "the filtered list",
        "document.querySelectorAll('[data-mix-options=outfits] input').length === 1",
        WAIT,
    )
    .await;
    b.click("#x-outfits-victorian_maid").await;
    b.fill("#extra-positive", "zebrapattern parasol").await;
    b.until(
        "the outfit's tags in the prompt",
        "[...document.querySelectorAll('#gen-prompt [data-kind=main] .tag')].some(t => t.dataset.source.includes('outfits/victorian_maid') && t.textContent.startsWith('maid headdress'))",
        WAIT,
    )
    .await;
    let badge = b
        .js("return document.querySelector('[data-mix-count=outfits]').textContent")
        .await;
    assert_eq!(badge, "1");
    check_page(&b, &g, "generator").await;
    b.click("button[data-gen-generate]").await;
    b.until(
        "the image in the strip",
        "document.querySelector('#gen-recent figure[data-status=done] img')",
        WAIT,
    )
    .await;
    // The state was kept: a reload shows the same choices.
    b.goto(&format!("{base}/generator")).await;
    assert_eq!(
        b.js("return document.getElementById('x-outfits-victorian_maid').checked")
            .await,
        true
    );
    assert_eq!(
        b.js("return document.getElementById('gen-character').value")
            .await,
        "tifa_lockhart"
    );

    // Two images of Tifa's own page, for the gallery.
    let first = generate(
        &g,
        json!({"category": "characters", "slug": "tifa_lockhart", "seed": 11}),
    )
    .await;
    wait_done(&g, &first).await;
    let first_lower = first.to_lowercase();
    let second = generate(
        &g,
        json!({"category": "characters", "slug": "tifa_lockhart", "seed": 12}),
    )
    .await;
    let done = wait_done(&g, &second).await;
    let newest = done["images"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("/static/")
        .to_string();

    // The gallery: filter by category, open the newest, see its recipe, make it the cover.
    b.goto(&format!("{base}/gallery")).await;
    let all = b
        .js("return document.querySelectorAll('.image-tile').length")
        .await;
    assert_eq!(all, 3, "the generator's image and Tifa's two");
    b.js("const s = document.getElementById('g-category'); s.value = 'characters'; s.dispatchEvent(new Event('change', {bubbles: true}));").await;
    b.until(
        "filtered",
        "location.search.includes('category=characters')",
        WAIT,
    )
    .await;
    let tiles = b
        .js("return [...document.querySelectorAll('.image-tile')].map(t => t.dataset.path)")
        .await;
    assert_eq!(tiles.as_array().unwrap().len(), 2, "{tiles}");
    assert_eq!(tiles[0], newest.as_str(), "newest first");
    check_page(&b, &g, "gallery").await;
    // A star in place: no reload.
    b.click(".image-tile .fav-btn").await;
    b.until(
        "starred",
        "document.querySelector('.image-tile .fav-btn').getAttribute('aria-pressed') === 'true'",
        WAIT,
    )
    .await;
    b.click(".image-tile a[data-image-link]").await;
    b.until(
        "the image view",
        "document.querySelector('[data-image-view]')",
        WAIT,
    )
    .await;
    let seed = b
        .js("return document.querySelector('[data-recipe=seed]').textContent")
        .await;
    assert_eq!(seed, "12");
    let lora = b
        .js("return document.querySelector('[data-lora]').dataset.lora")
        .await;
    assert_eq!(lora, "Illustrious/Looks/tifa_lockhart_ill_v2.safetensors");
    let chunks = b
        .js("return [...document.querySelectorAll('[data-chunk]')].map(d => d.dataset.chunk)")
        .await;
    assert!(
        chunks.as_array().unwrap().iter().any(|c| c == "parameters"),
        "{chunks}"
    );
    check_page(&b, &g, "image").await;
    b.click("form[data-make-cover] button").await;
    b.until(
        "the cover badge",
        "[...document.querySelectorAll('.badge')].some(x => x.textContent.includes('cover of'))",
        WAIT,
    )
    .await;
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(tifa["cover"], format!("/static/{newest}"));
    // The keys: → to the older image, ← back, Escape to the gallery with its filter.
    b.js("document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}))")
        .await;
    b.until(
        "the older image",
        &format!("location.search.includes('{first_lower}')"),
        WAIT,
    )
    .await;
    b.js("document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowLeft', bubbles: true}))")
        .await;
    b.until(
        "the newer again",
        &format!("location.search.includes('{}')", second.to_lowercase()),
        WAIT,
    )
    .await;
    b.js(
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}))",
    )
    .await;
    b.until(
        "the gallery",
        "location.pathname === '/gallery' && location.search.includes('category=characters')",
        WAIT,
    )
    .await;

    // Search: `/` focuses the box; an entry by a tag, an image by a word of its prompt.
    b.goto(&format!("{base}/outfits")).await;
    b.js("document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '/', bubbles: true}))")
        .await;
    assert_eq!(
        b.js("return document.activeElement.id").await,
        "nav-q",
        "/ focuses the search box"
    );
    b.fill("#nav-q", "multi-outfit").await;
    b.until(
        "Tifa by her tag",
        "document.querySelector('#nav-results a[href=\"/character/tifa_lockhart\"]')",
        WAIT,
    )
    .await;
    b.fill("#nav-q", "zebrapattern").await;
    b.until(
        "the image by its prompt",
        "document.querySelectorAll('#nav-results .search-image').length === 1",
        WAIT,
    )
    .await;
    b.goto(&format!("{base}/search?q=zebrapattern")).await;
    assert_eq!(
        b.js("return document.querySelectorAll('.search-image').length")
            .await,
        1
    );
    check_page(&b, &g, "search").await;

    // A 3-step strengths sweep of the maid outfit's LoRA: the cells fill in weight order.
    b.goto(&format!("{base}/strengths")).await;
    b.js("const s = document.getElementById('sw-target'); s.value = 'outfits/victorian_maid';")
        .await;
    b.js("const s = document.getElementById('sw-character'); s.value = 'tifa_lockhart';")
        .await;
    b.fill("#sw-min", "0.2").await;
    b.fill("#sw-max", "0.6").await;
    b.fill("#sw-step", "0.2").await;
    check_page(&b, &g, "strengths").await;
    b.click("form[data-strengths-form] button[type=submit]")
        .await;
    b.until(
        "the sweep",
        "location.pathname.startsWith('/strengths/')",
        WAIT,
    )
    .await;
    b.until(
        "three images",
        "document.querySelectorAll('.sweep-cell img').length === 3",
        Duration::from_secs(40),
    )
    .await;
    let cells = b
        .js("return [...document.querySelectorAll('.sweep-cell')].map(c => [Number(c.dataset.x), c.dataset.job])")
        .await;
    let cells = cells.as_array().unwrap();
    let xs: Vec<f64> = cells.iter().map(|c| c[0].as_f64().unwrap()).collect();
    assert_eq!(xs, vec![0.2, 0.4, 0.6], "weight order");
    for c in cells {
        let (_, r) = g
            .get(&format!("/api/jobs/{}/recipe", c[1].as_str().unwrap()))
            .await;
        let w = r["recipe"]["loras"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["source"] == "outfits/victorian_maid")
            .unwrap()["weight"]
            .as_f64()
            .unwrap();
        assert!((w - c[0].as_f64().unwrap()).abs() < 1e-9, "{r}");
        assert_eq!(r["recipe"]["seed"], r["request"]["seed"], "one fixed seed");
    }
    let progress = b
        .js("return document.getElementById('sweep-progress').textContent")
        .await;
    assert_eq!(progress, "3 of 3 done");
    check_page(&b, &g, "strengths-sweep").await;
    // Kept: the list offers it again after a restart.
    let path = b.js("return location.pathname").await;
    b.close().await;
    let mut g = g;
    g.restart();
    let (status, _) = g.get(path.as_str().unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn transfer_queue_and_settings_in_the_browser() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let standin = comfy(100).await;
    let g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let base = g.url.clone();

    // Transfer: Tifa's Nibelheim outfit becomes an outfit entry, whose file is on disk.
    b.goto(&format!("{base}/transfer")).await;
    b.js("const s = document.getElementById('t-kind'); s.value = 'wardrobe'; s.dispatchEvent(new Event('change', {bubbles: true}));").await;
    b.until(
        "the character picker",
        "document.getElementById('t-from')",
        WAIT,
    )
    .await;
    b.js("document.getElementById('t-from').value = 'tifa_lockhart'; document.querySelector('[data-transfer-pick]').submit();").await;
    b.until(
        "the outfit picker",
        "document.getElementById('t-part')",
        WAIT,
    )
    .await;
    b.js("document.getElementById('t-part').value = 'nibelheim'; document.getElementById('t-to').value = 'outfits'; document.querySelector('[data-transfer-pick]').submit();").await;
    b.until(
        "the preview",
        "document.querySelector('form[data-transfer]')",
        WAIT,
    )
    .await;
    let id = b.js("return document.getElementById('t-id').value").await;
    assert_eq!(id, "tifa_lockhart_nibelheim");
    check_page(&b, &g, "transfer").await;
    b.click("form[data-transfer] button[type=submit]").await;
    b.until(
        "the new outfit's editor",
        "location.pathname === '/outfit/tifa_lockhart_nibelheim/edit'",
        WAIT,
    )
    .await;
    let file = g.data().join("clothing/tifa_lockhart_nibelheim.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["wardrobe"]["headwear"], "cowboy hat, brown hat");
    assert_eq!(doc["outfit_name"], "Tifa Lockhart (nibelheim)");
    let (_, events) = g.get("/api/events?limit=1000").await;
    let transferred = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "entry_transferred")
        .cloned()
        .unwrap();
    assert_eq!(transferred["from"], "characters/tifa_lockhart");
    assert_eq!(transferred["from_part"], "nibelheim");

    // The queue: a job waiting in ComfyUI's queue is cancelled there; pause and resume.
    standin.set_exec_time(Duration::from_secs(4));
    let running = generate(
        &g,
        json!({"category": "characters", "slug": "link", "seed": 1}),
    )
    .await;
    let waiting = generate(
        &g,
        json!({"category": "characters", "slug": "link", "seed": 2}),
    )
    .await;
    let held = eventually(WAIT, || async {
        standin.queue_len() >= 1 && standin.running().is_some()
    })
    .await;
    assert!(held, "one runs, one waits in ComfyUI's queue");
    b.goto(&format!("{base}/queue")).await;
    b.until(
        "both rows",
        &format!("document.querySelector('[data-job=\"{running}\"]') && document.querySelector('[data-job=\"{waiting}\"]')"),
        WAIT,
    )
    .await;
    check_page(&b, &g, "queue").await;
    b.click(&format!(
        "[data-job=\"{waiting}\"] form[action$='/cancel'] button"
    ))
    .await;
    b.until(
        "cancelled",
        &format!(
            "document.querySelector('[data-job=\"{waiting}\"]').dataset.status === 'cancelled'"
        ),
        WAIT,
    )
    .await;
    let gone = eventually(WAIT, || async { standin.queue_len() == 0 }).await;
    assert!(gone, "deleted from ComfyUI's queue");
    let (_, j) = g.get(&format!("/api/jobs/{waiting}")).await;
    let pid = j["prompt_id"].as_str().unwrap_or_default().to_string();
    standin.set_exec_time(Duration::from_millis(100));
    wait_done(&g, &running).await;
    assert_eq!(standin.executions(&pid), 0, "the cancelled job never ran");
    b.click("[data-queue-pause] button").await;
    b.until(
        "paused",
        "!document.getElementById('queue-paused').hidden",
        WAIT,
    )
    .await;
    let later = generate(
        &g,
        json!({"category": "characters", "slug": "link", "seed": 3}),
    )
    .await;
    b.until(
        "the waiting reason",
        &format!("(document.querySelector('[data-job=\"{later}\"] .queue-waiting') || {{}}).textContent === 'the queue is paused'"),
        WAIT,
    )
    .await;
    assert_eq!(
        g.get(&format!("/api/jobs/{later}")).await.1["status"],
        "pending"
    );
    b.click("[data-queue-pause] button").await;
    b.until(
        "done after resuming",
        &format!(
            "document.querySelector('#queue-finished [data-job=\"{later}\"][data-status=done] img')"
        ),
        WAIT,
    )
    .await;
    // Finished jobs hidden from view; nothing deleted.
    b.click("form[data-hide-finished] button").await;
    b.until("hidden", "document.getElementById('finished-hidden')", WAIT)
        .await;
    assert_eq!(
        g.get(&format!("/api/jobs/{later}")).await.1["status"],
        "done"
    );
    b.click("form[data-hide-finished] button").await;
    b.until("shown", "document.getElementById('queue-finished')", WAIT)
        .await;

    // Settings: the key is written, never shown back, never in the ledger.
    b.goto(&format!("{base}/settings")).await;
    check_page(&b, &g, "settings").await;
    b.fill("#s-llm_model", "qwen3:8b").await;
    b.fill("#s-key", "sk-never-shown-4242").await;
    b.click("form[data-settings-form] button[type=submit]")
        .await;
    b.until(
        "saved",
        "document.getElementById('key-state').dataset.keySet === 'true'",
        WAIT,
    )
    .await;
    let html = b.js("return document.documentElement.outerHTML").await;
    assert!(!html.as_str().unwrap().contains("sk-never-shown-4242"));
    assert_eq!(
        b.js("return document.getElementById('s-key').value").await,
        ""
    );
    let (_, settings) = g.get("/api/settings").await;
    assert_eq!(settings["llm_key_set"], true);
    assert_eq!(settings["llm_model"], "qwen3:8b");
    assert!(!settings.to_string().contains("sk-never-shown-4242"));
    let ledger = std::fs::read(g.ledger_dir().join("gaze.redb")).unwrap();
    assert!(
        !ledger
            .windows(b"sk-never-shown-4242".len())
            .any(|w| w == b"sk-never-shown-4242"),
        "the key never enters the ledger"
    );

    // A backend added at run time receives jobs (the first one is down).
    let second = comfy(50).await;
    b.fill("#s-backend", &second.url()).await;
    b.click("form[data-backend-form] button[data-test-backend]")
        .await;
    b.until(
        "the test's answer",
        "document.getElementById('test-result').textContent.includes('answers')",
        WAIT,
    )
    .await;
    b.click("form[data-backend-form] button[value=add]").await;
    b.until(
        "listed",
        &format!(
            "document.querySelector('[data-backend=\"{}\"]')",
            second.url()
        ),
        WAIT,
    )
    .await;
    standin.go_down().await;
    let job = generate(
        &g,
        json!({"category": "characters", "slug": "link", "seed": 4}),
    )
    .await;
    let done = wait_done(&g, &job).await;
    assert_eq!(done["backend"], second.url());
    assert!(second.total_executions() >= 1);
    b.goto(&format!("{base}/settings")).await;
    b.until(
        "the new backend healthy",
        &format!(
            "document.querySelector('[data-backend=\"{}\"] .status-dot.ok')",
            second.url()
        ),
        WAIT,
    )
    .await;
    b.screenshots("workshop-settings-backends").await;
    // Removed: it takes no new jobs.
    b.click(&format!(
        "[data-backend=\"{}\"] button[value=remove]",
        second.url()
    ))
    .await;
    b.until(
        "removed",
        &format!(
            "!document.querySelector('[data-backend=\"{}\"]')",
            second.url()
        ),
        WAIT,
    )
    .await;
    let after = generate(
        &g,
        json!({"category": "characters", "slug": "link", "seed": 5}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, j) = g.get(&format!("/api/jobs/{after}")).await;
    assert_eq!(j["status"], "pending", "no backend left to take it: {j}");
    assert!(
        j["waiting"]
            .as_str()
            .unwrap_or_default()
            .contains("waiting"),
        "{j}"
    );
    b.close().await;
}

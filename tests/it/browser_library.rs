//! The library pages in headless Chromium against the real binary and the ComfyUI stand-in:
//! create, edit, select fields, generate with live progress, replace the cover and find it in
//! the gallery; the raw JSON editor refusing broken JSON; the wardrobe; an outfit page with a
//! random character; soft and hard delete through the dialog; a 2,000-entry gallery paging,
//! searching and filtering. Every page stays on its origin, every page kind is photographed
//! at desktop and phone widths, and axe-core finds no serious or critical violation.

use crate::jobs::comfy;
use crate::support::app::{Gaze, sample_data};
use crate::support::browser::{Browser, Locator};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn check_page(b: &Browser, g: &Gaze, name: &str, axe: bool) {
    let foreign = b.foreign_requests(&g.url).await;
    assert!(
        foreign.is_empty(),
        "{name} loaded from elsewhere: {foreign:?}"
    );
    if axe {
        let v = b.axe().await;
        assert!(
            v.is_empty(),
            "{name}: accessibility violations: {}",
            Value::from(v)
        );
    }
    b.screenshots(name).await;
}

fn read(g: &Gaze, rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(g.data().join(rel)).unwrap()).unwrap()
}

#[tokio::test]
async fn a_person_manages_and_generates_in_the_browser() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let standin = comfy(1500).await;
    let loras = tempfile::tempdir().unwrap();
    let lora_dir = loras.path().join("Illustrious/Clothing");
    std::fs::create_dir_all(&lora_dir).unwrap();
    std::fs::write(lora_dir.join("victorian_maid_ill.safetensors"), b"x").unwrap();
    let g = Gaze::start(
        Some(&sample_data()),
        &[
            "--comfy",
            &standin.url(),
            "--loras",
            loras.path().to_str().unwrap(),
        ],
    );
    let base = g.url.clone();

    // Create a character from the form and see its file.
    b.goto(&format!("{base}/create")).await;
    check_page(&b, &g, "create", true).await;
    b.fill("#f-name", "Browser Hero").await;
    b.fill("#f-identity-hair", "silver hair, long hair").await;
    b.fill("#f-identity-eyes", "blue eyes").await;
    b.fill("#w-default-top", "white shirt").await;
    b.click("form[action='/create'] button[type=submit]").await;
    b.until(
        "the new page",
        "location.pathname === '/character/browser_hero'",
        WAIT,
    )
    .await;
    let doc = read(&g, "characters/browser_hero.json");
    assert_eq!(doc["identity"]["hair"], "silver hair, long hair");

    // Edit a field.
    b.goto(&format!("{base}/character/browser_hero/edit")).await;
    check_page(&b, &g, "edit", true).await;
    b.fill("#f-identity-eyes", "green eyes").await;
    b.click("form[data-edit-form] button[type=submit]").await;
    b.until(
        "saved",
        "location.pathname === '/character/browser_hero'",
        WAIT,
    )
    .await;
    assert_eq!(
        read(&g, "characters/browser_hero.json")["identity"]["eyes"],
        "green eyes"
    );

    // The raw JSON editor refuses broken JSON and saves nothing.
    let before = std::fs::read(g.data().join("characters/browser_hero.json")).unwrap();
    b.goto(&format!("{base}/character/browser_hero/edit#raw"))
        .await;
    b.fill("#raw-json", "{\"character_id\": \"browser_hero\",")
        .await;
    b.click("form[data-json-editor] button[type=submit]").await;
    let err = b
        .until(
            "the parse error",
            "document.getElementById('raw-error').textContent",
            WAIT,
        )
        .await;
    assert!(err.as_str().unwrap().contains("JSON"), "{err}");
    b.fill(
        "#raw-json",
        "{\"character_id\": \"browser_hero\", \"tags\": 7}",
    )
    .await;
    b.js("document.querySelector('form[data-json-editor]').dispatchEvent(new Event('submit', {cancelable: true}))").await;
    b.until(
        "the schema error",
        "document.getElementById('raw-error').textContent.includes('tags')",
        WAIT,
    )
    .await;
    assert_eq!(
        std::fs::read(g.data().join("characters/browser_hero.json")).unwrap(),
        before
    );

    // On its page: select fields (the composed prompt follows), generate, watch the progress
    // bar move, see the image, replace the cover.
    b.goto(&format!("{base}/character/browser_hero")).await;
    check_page(&b, &g, "entry", true).await;
    b.until("the eyes tag", "[...document.querySelectorAll('#prompt-body .tag')].some(t => t.textContent.startsWith('green eyes'))", WAIT).await;
    b.click("#fld-identity-eyes").await;
    b.until("the prompt without eyes", "![...document.querySelectorAll('#prompt-body .tag')].some(t => t.textContent.startsWith('green eyes'))", WAIT).await;
    let source = b
        .js("return document.querySelector('#prompt-body .tag').dataset.source")
        .await;
    assert!(source.as_str().unwrap().contains('/') || !source.as_str().unwrap().is_empty());
    b.click("button[data-generate][value=preview]").await;
    b.until("a job", "document.getElementById('job').dataset.job", WAIT)
        .await;
    b.until(
        "progress",
        "Number(document.getElementById('job-progress').getAttribute('aria-valuenow')) > 0",
        WAIT,
    )
    .await;
    b.until(
        "the image",
        "document.querySelector('#job-result img')",
        WAIT,
    )
    .await;
    let status = b
        .js("return document.getElementById('job-status').textContent")
        .await;
    assert_eq!(status, "done");
    b.until(
        "replace enabled",
        "!document.querySelector('form[data-replace-cover] button').disabled",
        WAIT,
    )
    .await;
    b.click("form[data-replace-cover] button").await;
    b.until("the cover", "document.querySelector('#cover-img') && document.querySelector('#cover-img').tagName === 'IMG'", WAIT).await;
    let (_, e) = g.get("/api/library/characters/browser_hero").await;
    let cover = e["cover"]
        .as_str()
        .unwrap()
        .trim_start_matches("/static/")
        .to_string();
    assert!(
        cover.starts_with("uploads/characters/browser_hero/"),
        "{cover}"
    );
    b.goto(&format!("{base}/?q=browser")).await;
    let src = b
        .js("return document.querySelector('#card-browser_hero img').getAttribute('src')")
        .await;
    assert_eq!(src, format!("/thumb/240/{cover}"));
    check_page(&b, &g, "gallery", true).await;

    // Wardrobe: add, switch, rename, delete.
    b.goto(&format!("{base}/character/browser_hero")).await;
    b.fill("#new-outfit", "winter").await;
    b.click("form[action$='/outfit/add'] button").await;
    b.until(
        "the outfit",
        "document.querySelector('[data-outfit=winter]')",
        WAIT,
    )
    .await;
    b.click("[data-outfit=winter] form[action$='/outfit/switch'] button")
        .await;
    b.until(
        "switched",
        "document.querySelector('[data-outfit=winter]').textContent.includes('active')",
        WAIT,
    )
    .await;
    b.fill("#rename-winter", "snow").await;
    b.click("[data-outfit=winter] form[action$='/outfit/rename'] button")
        .await;
    b.until(
        "renamed",
        "document.querySelector('[data-outfit=snow]')",
        WAIT,
    )
    .await;
    b.click("[data-outfit=snow] form[action$='/outfit/delete'] button")
        .await;
    b.until("deleted", "!document.querySelector('[data-outfit=snow]') && document.querySelector('[data-outfit=default]')", WAIT).await;
    let w = read(&g, "characters/browser_hero.json")["wardrobe"].clone();
    assert_eq!(w.as_object().unwrap().len(), 1, "{w}");

    // An outfit page with "Random character" generates.
    b.goto(&format!("{base}/outfit/victorian_maid")).await;
    let picked = b
        .js("return document.getElementById('gen-character').value")
        .await;
    assert_eq!(picked, "__random__");
    b.click("button[data-generate][value=preview]").await;
    b.until(
        "the outfit's image",
        "document.querySelector('#job-result img')",
        WAIT,
    )
    .await;
    check_page(&b, &g, "entry-outfit", true).await;

    // Soft and hard delete through the dialog.
    b.click("a[data-bs-target='#delete-modal']").await;
    b.until(
        "the dialog",
        "document.getElementById('delete-modal').classList.contains('show')",
        WAIT,
    )
    .await;
    b.screenshots("delete-dialog").await;
    b.click("#del-hard-victorian_maid").await;
    b.click("#delete-modal button.btn-danger").await;
    b.until("the gallery", "location.pathname === '/outfits'", WAIT)
        .await;
    assert!(!g.data().join("clothing/victorian_maid.json").exists());
    assert!(!lora_dir.join("victorian_maid_ill.safetensors").exists());
    b.goto(&format!("{base}/character/browser_hero")).await;
    b.click("a[data-bs-target='#delete-modal']").await;
    b.until(
        "the dialog",
        "document.getElementById('delete-modal').classList.contains('show')",
        WAIT,
    )
    .await;
    b.click("#delete-modal button.btn-danger").await;
    b.until("the gallery", "location.pathname === '/characters'", WAIT)
        .await;
    assert!(!g.data().join("characters/browser_hero.json").exists());

    // "Generate missing covers" with a live row per job, and the new covers in the cards.
    standin.set_exec_time(Duration::from_millis(200));
    b.goto(&format!("{base}/styles")).await;
    let n = b
        .js("return document.querySelectorAll('.gallery-card .no-cover').length")
        .await;
    assert!(n.as_u64().unwrap() > 0);
    b.click("form[data-generate-missing] button").await;
    b.until(
        "the rows",
        "document.querySelectorAll('#missing-progress li').length > 0",
        WAIT,
    )
    .await;
    let rows = b
        .js("return document.querySelectorAll('#missing-progress li').length")
        .await;
    assert_eq!(rows, n);
    b.until(
        "every row done",
        "[...document.querySelectorAll('#missing-progress .state')].every(s => s.textContent === 'done')",
        Duration::from_secs(60),
    )
    .await;
    let left = b
        .js("return document.querySelectorAll('.gallery-card .no-cover').length")
        .await;
    assert_eq!(left, 0, "each card shows its new cover without a reload");
    check_page(&b, &g, "gallery-missing-covers", false).await;

    // The other page kinds, photographed and checked.
    for (path, name) in [
        ("/library", "library"),
        ("/look/tifa_remake", "entry-look"),
        ("/preset/tifa_beach_day", "entry-preset"),
        ("/checkpoints", "gallery-checkpoints"),
        ("/resource/characters/tifa_lockhart/delete", "delete-page"),
        ("/nowhere", "not-found"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        check_page(&b, &g, name, name == "library").await;
    }
    // The light theme, chosen from the navbar, passes the same checks.
    b.goto(&format!("{base}/")).await;
    b.js("const s = document.getElementById('pref-theme'); s.value = 'light'; s.dispatchEvent(new Event('change', {bubbles: true}));").await;
    b.until(
        "the light theme",
        "document.documentElement.getAttribute('data-bs-theme') === 'light'",
        WAIT,
    )
    .await;
    for (path, name) in [
        ("/", "gallery-light"),
        ("/character/tifa_lockhart", "entry-light"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        assert_eq!(
            b.js("return document.documentElement.getAttribute('data-bs-theme')")
                .await,
            "light"
        );
        check_page(&b, &g, name, true).await;
    }
    let ck = g.get("/api/library/checkpoints").await.1["items"][0]["slug"]
        .as_str()
        .unwrap()
        .to_string();
    b.goto(&format!("{base}/checkpoint/{ck}/edit")).await;
    check_page(&b, &g, "edit-checkpoint", false).await;
    b.close().await;
}

#[tokio::test]
async fn a_gallery_of_two_thousand_entries_pages_searches_and_filters() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gaze"))
        .args(["synth", "--out"])
        .arg(dir.path())
        .args(["--count", "2000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only the characters matter here; the other folders would only slow the start-up.
    for d in [
        "looks",
        "clothing",
        "actions",
        "styles",
        "scenes",
        "detailers",
        "presets",
    ] {
        std::fs::remove_dir_all(dir.path().join(d)).unwrap();
    }
    let g = Gaze::start(Some(dir.path()), &["--comfy", "http://127.0.0.1:9"]);
    let base = g.url.clone();
    b.goto(&format!("{base}/")).await;
    let cards = b
        .js("return document.querySelectorAll('.gallery-card').length")
        .await;
    assert_eq!(cards, 60);
    let count = b
        .js("return document.getElementById('result-count').textContent")
        .await;
    assert!(count.as_str().unwrap().contains("2000 of 2000"), "{count}");
    check_page(&b, &g, "gallery-2000", true).await;
    // Page 3 by its link.
    b.click(".pagination a[href$='page=3']").await;
    b.until("page 3", "location.search.includes('page=3')", WAIT)
        .await;
    let first = b
        .js("return document.querySelector('.gallery-card h2').textContent")
        .await;
    assert!(
        first.as_str().unwrap().starts_with("Synth Character"),
        "{first}"
    );
    // Search.
    b.fill("#f-q", "Character 1234").await;
    b.client
        .find(Locator::Css("form[data-filters] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until("the search", "location.search.includes('q=')", WAIT)
        .await;
    let names = b
        .js("return [...document.querySelectorAll('.gallery-card h2')].map(e => e.textContent)")
        .await;
    assert_eq!(names, serde_json::json!(["Synth Character 1234"]));
    // Filter: favourites only (a checkbox that applies at once).
    b.goto(&format!("{base}/?sort=name&page=2")).await;
    let slug = b
        .js("return document.querySelector('.gallery-card').dataset.slug")
        .await;
    let slug = slug.as_str().unwrap().to_string();
    b.click(&format!("#card-{slug} .fav-btn")).await;
    b.until("starred", &format!("document.querySelector('#card-{slug} .fav-btn').getAttribute('aria-pressed') === 'true'"), WAIT).await;
    assert!(
        b.js("return location.search")
            .await
            .as_str()
            .unwrap()
            .contains("page=2"),
        "no reload"
    );
    let y = b.js("return window.scrollY").await;
    b.click("#f-fav").await;
    b.until("filtered", "location.search.includes('fav=1')", WAIT)
        .await;
    let cards = b
        .js("return [...document.querySelectorAll('.gallery-card')].map(e => e.dataset.slug)")
        .await;
    assert_eq!(cards, serde_json::json!([slug]), "(scroll was {y})");
    b.close().await;
}

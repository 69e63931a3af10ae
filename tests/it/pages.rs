//! The library pages through the real binary: every route answers with the right status and
//! content (found with HTML selectors, not snapshots), forms post and redirect with a flash
//! message (the no-JavaScript path), scripts get JSON, and bad input changes nothing.

use crate::support::app::{Gaze, sample_data};
use crate::support::forms::{FormClient as Browser, Page};
use gaze::library::category::Category;
use scraper::{Html, Selector};
use serde_json::Value;

const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

fn file(g: &Gaze, c: Category, name: &str) -> Value {
    let text = std::fs::read_to_string(g.data().join(c.desc().dir).join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn count(g: &Gaze, c: Category) -> usize {
    g.get(&format!("/api/library/{}", c.key())).await.1["items"]
        .as_array()
        .unwrap()
        .len()
}

async fn first_slug(g: &Gaze, c: Category) -> (String, String) {
    let (_, v) = g.get(&format!("/api/library/{}", c.key())).await;
    let item = &v["items"][0];
    (
        item["slug"].as_str().unwrap().to_string(),
        item["name"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn every_page_route_answers_with_its_content() {
    let g = Gaze::start(Some(&sample_data()), &["--comfy", "http://127.0.0.1:9"]);
    let b = Browser::new(&g).await;
    // `/` is the characters gallery; every category's gallery at its plural, with and
    // without a trailing slash.
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert_eq!(
        home.count(".gallery-card"),
        count(&g, Category::Characters).await
    );
    assert!(home.text_of("h1").contains("Characters"));
    for c in Category::ALL {
        let d = c.desc();
        let n = count(&g, c).await;
        for path in [format!("/{}", d.key), format!("/{}/", d.key)] {
            let p = b.get(&path).await;
            assert_eq!(p.status, 200, "{path}");
            assert_eq!(p.count(".gallery-card"), n, "{path}");
            assert_eq!(
                p.count("a.nav-link.active"),
                1,
                "{path}: the navbar marks the section"
            );
            assert_eq!(p.count(&format!("form[action='/{}/rescan']", d.key)), 1);
        }
        let (slug, name) = first_slug(&g, c).await;
        let entry = b.get(&format!("/{}/{slug}", d.singular)).await;
        assert_eq!(entry.status, 200, "{} {slug}", d.singular);
        assert!(
            entry.text_of("h1").contains(&name),
            "{}",
            entry.text_of("h1")
        );
        assert_eq!(
            entry.attr("form#gen-form", "action").unwrap(),
            format!("/{}/{slug}/generate", d.singular)
        );
        assert!(
            entry.count("#prompt-body .tag") > 0,
            "{}: the composed prompt is shown: {}",
            d.singular,
            entry.text_of("#prompt-body")
        );
        assert_eq!(
            entry.count(&format!("a[href='/{}/{slug}/history']", d.singular)),
            1
        );
        assert_eq!(entry.count("#delete-modal form input[name=mode]"), 2);
        assert_eq!(
            entry.count("select#gen-character, input#gen-character"),
            usize::from(d.character_selector),
            "{}",
            d.singular
        );
        // The guide's plural form redirects to the singular page.
        let r = b.get(&format!("/{}/{slug}", d.key)).await;
        assert_eq!(r.status, 308);
        let edit = b.get(&format!("/{}/{slug}/edit", d.singular)).await;
        assert_eq!(edit.status, 200);
        assert_eq!(edit.attr("#f-name", "value").unwrap(), name);
        assert!(edit.count("form[data-edit-form] input[name=csrf]") == 1);
        assert!(edit.text_of("#raw-json").contains(d.id_field));
        let create = b.get(&format!("/{}/create", d.singular)).await;
        assert_eq!(create.status, 200);
        assert_eq!(
            create.count(&format!("a[href='/{}/create/assistant']", d.singular)),
            1
        );
        let missing = g.get(&format!("/get_missing_{}", d.key)).await;
        assert_eq!(missing.0, 200);
        let names: Vec<String> = missing.1["missing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_lowercase())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "sorted by display name");
        assert_eq!(names.len(), n, "nothing has a cover yet");
        let del = b.get(&format!("/resource/{}/{slug}/delete", d.key)).await;
        assert_eq!(del.status, 200);
        assert!(del.text.contains(&format!("data/{}/", d.dir)));
    }
    let create = b.get("/create").await;
    assert_eq!(create.status, 200);
    assert!(create.count("[data-tag-autocomplete]") > 10);
    assert_eq!(create.count("a[href='/character/create/assistant']"), 1);
    let library = b.get("/library").await;
    assert_eq!(library.status, 200);
    assert_eq!(library.count(".count-card"), 9);
    // Unknown things are 404 pages.
    assert_eq!(b.get("/character/nobody").await.status, 404);
    assert_eq!(b.get("/character/nobody/edit").await.status, 404);
    assert_eq!(b.get("/widgets").await.status, 404);
    assert_eq!(b.get("/resource/widgets/x/delete").await.status, 404);

    // Pages follow the CSP: no inline script, no style attributes, no on* handlers, nothing
    // from another origin.
    for path in [
        "/",
        "/character/tifa_lockhart",
        "/character/tifa_lockhart/edit",
        "/create",
        "/library",
        "/outfits",
    ] {
        let p = b.get(path).await;
        for s in p.all("script") {
            let v = s.value();
            assert!(
                v.attr("src").is_some() || v.attr("type") == Some("application/json"),
                "{path}: inline script"
            );
            if let Some(src) = v.attr("src") {
                assert!(src.starts_with("/static/"), "{path}: {src}");
            }
        }
        for e in p.all("*") {
            for (k, v) in e.value().attrs() {
                assert!(
                    k != "style",
                    "{path}: style attribute on {}",
                    e.value().name()
                );
                assert!(!k.starts_with("on"), "{path}: {k} handler");
                if k == "href" || k == "src" {
                    assert!(!v.starts_with("http"), "{path}: {k}={v} leaves the origin");
                }
            }
        }
        // Every form that posts carries the token.
        for f in p.all("form[method=post]") {
            let has = f
                .select(&Selector::parse("input[name=csrf]").unwrap())
                .next()
                .is_some();
            assert!(
                has,
                "{path}: a form without its token: {:?}",
                f.value().attr("action")
            );
        }
        // Every control has a label.
        for input in p.all("input:not([type=hidden]), select, textarea") {
            let v = input.value();
            let labelled = v.attr("aria-label").is_some()
                || v.attr("id")
                    .is_some_and(|id| p.count(&format!("label[for='{id}']")) > 0);
            assert!(labelled, "{path}: unlabelled {:?}", v);
        }
    }
}

#[tokio::test]
async fn galleries_search_filter_sort_and_page_on_the_server() {
    // No watcher: the rescans below must be the ones that find the new files.
    let g = Gaze::start(Some(&sample_data()), &["--no-watch"]);
    let b = Browser::new(&g).await;
    let total = count(&g, Category::Characters).await;
    let slugs = |p: &Page| -> Vec<String> {
        p.all(".gallery-card")
            .iter()
            .map(|e| e.value().attr("data-slug").unwrap().to_string())
            .collect()
    };
    // Search by name, id and tag.
    assert_eq!(slugs(&b.get("/?q=tifa").await), ["tifa_lockhart"]);
    assert_eq!(slugs(&b.get("/?q=yuna_(ff10)").await), ["yuna_ff10"]);
    let ff = slugs(&b.get("/?q=final+fantasy").await);
    assert!(
        ff.contains(&"tifa_lockhart".to_string()) && ff.len() < total,
        "{ff:?}"
    );
    assert!(b.get("/?q=zzzz").await.text.contains("Nothing matches"));
    // Paging.
    let p1 = b.get("/?per=30&sort=name").await;
    assert_eq!(slugs(&p1).len(), total.min(30));
    // Favourites: a form post (no JS) redirects back to the card, and sorts first.
    let (status, loc) = b
        .form(
            "/character/yuna_ff10/favourite",
            &[("on", "1"), ("back", "/?sort=fav")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(
        loc.starts_with("/?sort=fav&flash=") && loc.ends_with("#card-yuna_ff10"),
        "{loc}"
    );
    let first = slugs(&b.get("/").await);
    assert_eq!(first[0], "yuna_ff10", "favourites first");
    let only = b.get("/?fav=1").await;
    assert_eq!(slugs(&only), ["yuna_ff10"]);
    assert_eq!(
        only.attr("#card-yuna_ff10 .fav-btn", "aria-pressed")
            .unwrap(),
        "true"
    );
    // The same through a script: JSON, no redirect.
    let (status, v) = b
        .ajax("/character/yuna_ff10/favourite", &[("on", "0")])
        .await;
    assert_eq!((status, v["on"].clone()), (200, Value::Bool(false)));
    assert!(slugs(&b.get("/?fav=1").await).is_empty());
    // NSFW: an ordinary edit of the tags; blurred by default, hidden on request.
    let (status, _) = b.form("/character/link/nsfw", &[("on", "1")]).await;
    assert_eq!(status, 303);
    let tags = file(&g, Category::Characters, "link.json")["tags"].clone();
    assert!(
        tags.as_array().unwrap().contains(&Value::from("nsfw")),
        "{tags}"
    );
    let blurred = b.get("/").await;
    assert_eq!(blurred.count("#card-link .nsfw-blur"), 1);
    assert!(!slugs(&b.get("/?nsfw=hide").await).contains(&"link".to_string()));
    assert_eq!(b.get("/?nsfw=show").await.count("#card-link .nsfw-blur"), 0);
    // The global preference changes the default.
    let (status, _) = b
        .form("/preferences/global", &[("nsfw", "hide"), ("back", "/")])
        .await;
    assert_eq!(status, 303);
    assert!(!slugs(&b.get("/").await).contains(&"link".to_string()));
    let (status, _) = b.form("/preferences/global", &[("theme", "light")]).await;
    assert_eq!(status, 303);
    assert_eq!(
        b.get("/").await.attr("html", "data-bs-theme").unwrap(),
        "light"
    );
    let (status, _) = b.form("/preferences/global", &[("theme", "pink")]).await;
    assert_eq!(status, 303, "refused with a flash, not an error page");
    assert_eq!(
        b.get("/").await.attr("html", "data-bs-theme").unwrap(),
        "light"
    );
    // Sync failures are listed on the gallery and on /library, with file name and reason.
    std::fs::write(g.data().join("characters/broken.json"), "{ not json").unwrap();
    let (status, loc) = b.form("/characters/rescan", &[]).await;
    assert_eq!(status, 303);
    assert!(loc.contains("flash="), "{loc}");
    assert!(
        loc.contains("1%20new%20failure"),
        "the result says what it found: {loc}"
    );
    std::fs::write(
        g.data().join("scenes/new_place.json"),
        r#"{"scene_id": "new_place", "scene_name": "New Place"}"#,
    )
    .unwrap();
    let (status, loc) = b.ajax("/rescan", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(loc["added"], 1, "{loc}");
    let gallery = b.get("/").await;
    let failures = gallery.text_of(".sync-failures");
    assert!(
        failures.contains("data/characters/broken.json"),
        "{failures}"
    );
    assert!(failures.contains("invalid JSON"), "{failures}");
    assert!(
        b.get("/library")
            .await
            .text_of(".sync-failures")
            .contains("broken.json")
    );
    // Clearing covers needs the confirmation box.
    let (status, loc) = b.form("/clear_all_covers", &[]).await;
    assert_eq!(status, 303);
    assert!(loc.contains("flash_err="), "{loc}");
    let (status, loc) = b
        .form("/clear_all_outfit_covers", &[("confirm", "yes")])
        .await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/outfits?flash="), "{loc}");
}

#[tokio::test]
async fn forms_create_edit_clone_and_delete_files() {
    let g = Gaze::start(Some(&sample_data()), &[]);
    let b = Browser::new(&g).await;
    // Create from the character form.
    let (status, loc) = b
        .form(
            "/create",
            &[
                ("schema", "1"),
                ("f:character_name", "Test Hero"),
                ("f:character_id", ""),
                ("f:identity:hair", "red hair, short hair"),
                ("w:default:top", "armor"),
                ("f:tags", "hero, test"),
                ("f:participants:solo_focus", "on"),
                ("f:lora:lora_name", ""),
                ("f:lora:lora_weight", "0.8"),
                ("f:lora:lora_triggers", ""),
            ],
        )
        .await;
    assert_eq!(status, 303, "{loc}");
    assert!(loc.starts_with("/character/test_hero?flash="), "{loc}");
    let doc = file(&g, Category::Characters, "test_hero.json");
    assert_eq!(doc["identity"]["hair"], "red hair, short hair");
    assert_eq!(doc["wardrobe"]["default"]["top"], "armor");
    assert_eq!(doc["tags"], serde_json::json!(["hero", "test"]));
    assert_eq!(doc["participants"]["solo_focus"], "true");
    assert_eq!(doc["lora"]["lora_weight"], 0.8);
    // A bad form shows its errors in place and writes nothing.
    let before = count(&g, Category::Checkpoints).await;
    let r = b
        .send_form(
            "/checkpoint/create",
            &[
                ("schema", "1"),
                ("f:checkpoint_name", "X"),
                ("f:checkpoint_path", "a/b.safetensors"),
                ("f:steps", "lots"),
            ],
            false,
        )
        .await;
    assert_eq!(r.status().as_u16(), 422);
    let html = Html::parse_document(&r.text().await.unwrap());
    let fb: Vec<String> = html
        .select(&Selector::parse(".invalid-feedback").unwrap())
        .map(|e| e.text().collect())
        .collect();
    assert!(
        fb.iter().any(|t| t.contains("not a whole number")),
        "{fb:?}"
    );
    assert_eq!(count(&g, Category::Checkpoints).await, before);
    // Edit a field through the form: unknown keys survive.
    let mut doc = file(&g, Category::Characters, "test_hero.json");
    doc["my_notes"] = serde_json::json!({"kept": true});
    std::fs::write(
        g.data().join("characters/test_hero.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
    b.form("/characters/rescan", &[]).await;
    let edit = b.get("/character/test_hero/edit").await;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for e in edit.all(
        "form[data-edit-form] input, form[data-edit-form] textarea, form[data-edit-form] select",
    ) {
        let v = e.value();
        let Some(name) = v.attr("name") else { continue };
        if name == "csrf" {
            continue;
        }
        let value = match v.name() {
            "textarea" => e.text().collect::<String>(),
            "select" => e
                .select(&Selector::parse("option[selected]").unwrap())
                .next()
                .and_then(|o| o.value().attr("value").map(String::from))
                .unwrap_or_default(),
            _ if v.attr("type") == Some("checkbox") => {
                if v.attr("checked").is_none() {
                    continue;
                }
                v.attr("value").unwrap_or("on").to_string()
            }
            _ => v.attr("value").unwrap_or_default().to_string(),
        };
        let value = if name == "f:identity:eyes" {
            "green eyes".to_string()
        } else {
            value
        };
        pairs.push((name.to_string(), value));
    }
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (status, loc) = b.form("/character/test_hero/edit", &refs).await;
    assert_eq!(status, 303, "{loc}");
    let doc = file(&g, Category::Characters, "test_hero.json");
    assert_eq!(doc["identity"]["eyes"], "green eyes");
    assert_eq!(doc["identity"]["hair"], "red hair, short hair");
    assert_eq!(doc["my_notes"], serde_json::json!({"kept": true}));
    // The raw JSON editor refuses broken JSON and schema errors in place, saving nothing.
    let text = std::fs::read(g.data().join("characters/test_hero.json")).unwrap();
    let seq = g.seq().await;
    let r = b
        .send_form(
            "/character/test_hero/save_json",
            &[("json", "{\"character_id\": \"test_hero\",")],
            false,
        )
        .await;
    assert_eq!(r.status().as_u16(), 422);
    let page = Html::parse_document(&r.text().await.unwrap());
    let err: String = page
        .select(&Selector::parse("#raw-error").unwrap())
        .next()
        .unwrap()
        .text()
        .collect();
    assert!(err.contains("line 1"), "{err}");
    let (status, v) = b
        .ajax(
            "/character/test_hero/save_json",
            &[("json", "{\"character_id\": \"test_hero\", \"tags\": 5}")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("\"tags\" must be a list"),
        "{v}"
    );
    assert_eq!(
        std::fs::read(g.data().join("characters/test_hero.json")).unwrap(),
        text
    );
    assert_eq!(g.seq().await, seq, "nothing was recorded");
    let (status, v) = b
        .ajax(
            "/character/test_hero/save_json",
            &[(
                "json",
                "{\"character_id\": \"test_hero\", \"character_name\": \"Raw Hero\", \"x\": [1]}",
            )],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        file(&g, Category::Characters, "test_hero.json")["x"],
        serde_json::json!([1])
    );
    // Clone.
    let (status, loc) = b.form("/character/test_hero/clone", &[]).await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/character/test_hero_copy?"), "{loc}");
    assert!(g.data().join("characters/test_hero_copy.json").exists());
    // Delete: soft removes the JSON; hard is refused without --loras when a LoRA is named.
    let (status, loc) = b
        .form(
            "/resource/characters/test_hero_copy/delete",
            &[("mode", "soft")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(loc.starts_with("/characters?flash="), "{loc}");
    assert!(!g.data().join("characters/test_hero_copy.json").exists());
    let dialog = b.get("/resource/outfits/victorian_maid/delete").await;
    assert_eq!(
        dialog.count("input[value=hard][disabled]"),
        1,
        "no LoRA root: hard is off"
    );
    assert!(dialog.text.contains("--loras"));
    let (status, loc) = b
        .form(
            "/resource/outfits/victorian_maid/delete",
            &[("mode", "hard")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(loc.contains("flash_err="), "{loc}");
    assert!(g.data().join("clothing/victorian_maid.json").exists());
}

#[tokio::test]
async fn hard_delete_removes_the_named_lora_inside_the_lora_root() {
    let loras = tempfile::tempdir().unwrap();
    let dir = loras.path().join("Illustrious/Clothing");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("victorian_maid_ill.safetensors"), b"x").unwrap();
    let g = Gaze::start(
        Some(&sample_data()),
        &["--loras", loras.path().to_str().unwrap()],
    );
    let b = Browser::new(&g).await;
    let dialog = b.get("/outfit/victorian_maid").await;
    let text = dialog.text_of("#delete-modal");
    assert!(text.contains("data/clothing/victorian_maid.json"), "{text}");
    assert!(text.contains("victorian_maid_ill.safetensors"), "{text}");
    assert_eq!(dialog.count("#delete-modal input[value=hard][disabled]"), 0);
    let edit = b.get("/outfit/victorian_maid/edit").await;
    assert!(
        edit.count("datalist option[value='Illustrious/Clothing/victorian_maid_ill.safetensors']")
            == 1
    );
    let (status, _) = b
        .form(
            "/resource/outfits/victorian_maid/delete",
            &[("mode", "hard")],
        )
        .await;
    assert_eq!(status, 303);
    assert!(!g.data().join("clothing/victorian_maid.json").exists());
    assert!(!dir.join("victorian_maid_ill.safetensors").exists());
}

#[tokio::test]
async fn entry_page_actions_wardrobe_presets_covers_and_generation_without_javascript() {
    let g = Gaze::start(Some(&sample_data()), &["--comfy", "http://127.0.0.1:9"]);
    let b = Browser::new(&g).await;
    // Wardrobe: add, switch, rename, delete.
    let (s, _) = b
        .form(
            "/character/tifa_lockhart/outfit/add",
            &[("outfit", "swimsuit")],
        )
        .await;
    assert_eq!(s, 303);
    assert!(
        file(&g, Category::Characters, "tifa_lockhart.json")["wardrobe"]["swimsuit"].is_object()
    );
    let (s, _) = b
        .form(
            "/character/tifa_lockhart/outfit/switch",
            &[("outfit", "swimsuit")],
        )
        .await;
    assert_eq!(s, 303);
    let page = b.get("/character/tifa_lockhart").await;
    assert!(page.text_of("[data-outfit=swimsuit]").contains("active"));
    let (s, _) = b
        .form(
            "/character/tifa_lockhart/outfit/rename",
            &[("outfit", "swimsuit"), ("new_name", "beach")],
        )
        .await;
    assert_eq!(s, 303);
    let w = file(&g, Category::Characters, "tifa_lockhart.json")["wardrobe"].clone();
    assert!(
        w.get("beach").is_some() && w.get("swimsuit").is_none(),
        "{w}"
    );
    assert!(
        b.get("/character/tifa_lockhart")
            .await
            .text_of("[data-outfit=beach]")
            .contains("active")
    );
    let (s, loc) = b
        .form(
            "/character/tifa_lockhart/outfit/add",
            &[("outfit", "beach")],
        )
        .await;
    assert_eq!(s, 303);
    assert!(
        loc.contains("flash_err="),
        "a second 'beach' is refused: {loc}"
    );
    let (s, _) = b
        .form(
            "/character/tifa_lockhart/outfit/delete",
            &[("outfit", "beach")],
        )
        .await;
    assert_eq!(s, 303);
    assert!(
        file(&g, Category::Characters, "tifa_lockhart.json")["wardrobe"]
            .get("beach")
            .is_none()
    );
    // Page state is kept per page, and the composed prompt follows it.
    let (s, _) = b
        .form(
            "/outfit/victorian_maid/preview",
            &[
                ("fields_present", "1"),
                ("fields", "wardrobe::top"),
                ("character", "tifa_lockhart"),
                ("extra_positive", "moonlight"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    let outfit = b.get("/outfit/victorian_maid").await;
    assert_eq!(
        outfit
            .attr("#gen-character option[selected]", "value")
            .unwrap(),
        "tifa_lockhart"
    );
    assert_eq!(outfit.text_of("#extra-positive"), "moonlight");
    let prompt = outfit.text_of("#prompt-body");
    assert!(
        prompt.contains("moonlight") && prompt.contains("white apron"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("black pantyhose"),
        "an unticked wardrobe field stays out: {prompt}"
    );
    assert!(
        prompt.contains("tifa lockhart"),
        "the character's fields are kept: {prompt}"
    );
    let (_, prefs) = g
        .get("/api/library/outfits/victorian_maid/preferences")
        .await;
    assert_eq!(prefs["extra_positive"], "moonlight");
    // The partial scripts swap in.
    let r = b
        .send_form(
            "/character/tifa_lockhart/preview",
            &[
                ("partial", "1"),
                ("fields_present", "1"),
                ("fields", "identity::hair"),
            ],
            true,
        )
        .await;
    let partial = Html::parse_fragment(&r.text().await.unwrap());
    let tags: Vec<String> = partial
        .select(&Selector::parse(".tag").unwrap())
        .map(|t| t.value().attr("data-source").unwrap().to_string())
        .collect();
    assert!(
        tags.iter()
            .any(|s| s == "characters/tifa_lockhart identity::hair"),
        "{tags:?}"
    );
    // Generate without JavaScript: a job, then the page shows it and reloads itself.
    let (s, loc) = b
        .form(
            "/character/tifa_lockhart/generate",
            &[("action", "preview")],
        )
        .await;
    assert_eq!(s, 303);
    let job = loc
        .split("job=")
        .nth(1)
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        g.get(&format!("/api/queue/{job}/status")).await.1["status"],
        "pending"
    );
    let with_job = b.get(&format!("/character/tifa_lockhart?job={job}")).await;
    assert_eq!(with_job.attr("#job", "data-job").unwrap(), job);
    assert!(
        with_job.text_of("#job-line").contains("queue"),
        "{}",
        with_job.text_of("#job-line")
    );
    assert_eq!(with_job.count("meta[http-equiv=refresh]"), 1);
    // And the JSON route of the original still answers with a job id.
    let (s, v) = g
        .post(
            "/outfit/victorian_maid/generate",
            r#"{"character": "__random__"}"#,
        )
        .await;
    assert_eq!(s, 200);
    assert!(v["job_id"].is_string());
    let (s, v) = b
        .ajax("/outfit/victorian_maid/generate", &[("width", "33")])
        .await;
    assert_eq!(s, 400, "{v}");
    // Endless from the page, then stop.
    let (s, v) = b
        .ajax(
            "/scene/beach/endless",
            &[("op", "start"), ("character", "__random__")],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["endless_id"].as_str().unwrap().to_string();
    assert_eq!(
        b.get("/scene/beach").await.count("form[data-endless-stop]"),
        1
    );
    let (s, _) = b
        .ajax("/scene/beach/endless", &[("op", "stop"), ("id", &id)])
        .await;
    assert_eq!(s, 200);
    // Save these selections as a preset.
    let (s, loc) = b
        .form(
            "/scene/beach/save_preset",
            &[
                ("preset_name", "Beach Tifa"),
                ("character", "tifa_lockhart"),
            ],
        )
        .await;
    assert_eq!(s, 303);
    assert!(loc.starts_with("/preset/beach_tifa"), "{loc}");
    let preset = file(&g, Category::Presets, "beach_tifa.json");
    assert_eq!(preset["scene"], "beach");
    assert_eq!(preset["character"], "tifa_lockhart");
    let pp = b.get("/preset/beach_tifa").await;
    assert!(pp.text_of("#slots-title").contains("slot"));
    assert!(
        pp.all("table a")
            .iter()
            .any(|a| a.value().attr("href") == Some("/scene/beach"))
    );
    // Save defaults.
    let (s, _) = b
        .form(
            "/character/tifa_lockhart/save_defaults",
            &[("fields", "identity::hair"), ("fields", "identity::eyes")],
        )
        .await;
    assert_eq!(s, 303);
    let (_, e) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(
        e["default_fields"],
        serde_json::json!(["identity::hair", "identity::eyes"])
    );
    // Covers: upload through the form; replace from preview refuses what is not a preview.
    let form = reqwest::multipart::Form::new()
        .text("csrf", b.token.clone())
        .part(
            "image",
            reqwest::multipart::Part::bytes(PNG_1X1.to_vec()).file_name("c.png"),
        );
    let r = b
        .http
        .post(format!("{}/character/link/upload", g.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let (_, e) = g.get("/api/library/characters/link").await;
    let cover = e["cover"].as_str().unwrap().to_string();
    let gallery = b.get("/?q=link").await;
    let src = gallery.attr("#card-link img.thumb", "src").unwrap();
    assert_eq!(
        src,
        format!("/thumb/240/{}", cover.trim_start_matches("/static/"))
    );
    let (s, v) = b
        .ajax("/character/link/replace_cover_from_preview", &[])
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = b
        .ajax(
            "/character/link/replace_cover_from_preview",
            &[("image", "uploads/../../etc/passwd")],
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // Looks and characters link both ways.
    let look = b.get("/look/tifa_remake").await;
    assert!(
        look.all("a")
            .iter()
            .any(|a| a.value().attr("href") == Some("/character/tifa_lockhart"))
    );
    let ch = b.get("/character/tifa_lockhart").await;
    assert!(
        ch.all("a")
            .iter()
            .any(|a| a.value().attr("href") == Some("/look/tifa_remake"))
    );
    // The checkpoint editor offers samplers even with no ComfyUI (the known lists).
    let ck = first_slug(&g, Category::Checkpoints).await.0;
    let edit = b.get(&format!("/checkpoint/{ck}/edit")).await;
    assert!(edit.count("select[name='f:sampler_name'] option") > 10);
    assert!(edit.count("select[name='f:scheduler'] option[value=karras]") == 1);
    // Default checkpoint from the navbar form.
    let (_, v) = g.get("/api/library/checkpoints").await;
    let path = v["items"][1]["id"].as_str().unwrap().to_string();
    let (s, _) = b
        .form(
            "/set_default_checkpoint",
            &[("checkpoint_path", &path), ("back", "/")],
        )
        .await;
    assert_eq!(s, 303);
    assert_eq!(
        b.get("/")
            .await
            .attr("#default-checkpoint option[selected]", "value")
            .unwrap(),
        path
    );
    // Generate missing covers (a script's call gets the jobs with names).
    let (s, v) = b.ajax("/generate_missing", &[("category", "styles")]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["jobs"].as_array().unwrap().len(),
        count(&g, Category::Styles).await
    );
    // Without the token, nothing.
    let r = b
        .http
        .post(format!("{}/character/link/nsfw", g.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("on=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn the_checkpoint_editor_offers_the_samplers_comfyui_has() {
    let standin = crate::jobs::comfy(50).await;
    let g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let b = Browser::new(&g).await;
    let ck = first_slug(&g, Category::Checkpoints).await.0;
    // `res_multistep` is in ComfyUI 0.3.64's list but not in the fallback one.
    let ok = crate::support::app::eventually(std::time::Duration::from_secs(15), || async {
        b.get(&format!("/checkpoint/{ck}/edit"))
            .await
            .count("select[name='f:sampler_name'] option[value=res_multistep]")
            == 1
    })
    .await;
    assert!(ok, "the backend's sampler list reaches the form");
    let page = b.get("/").await;
    assert_eq!(
        page.count("#backend-dots .status-dot.ok"),
        1,
        "the backend dot is green"
    );
}

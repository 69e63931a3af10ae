//! The workshop pages through the real binary, without a browser: every route answers with
//! its content (found with selectors), forms post and redirect with a message (the path without
//! JavaScript), scripts get JSON, bad input is refused with a reason and changes nothing, and
//! the image index survives restarts and SIGKILL (its cache, or the ledger when the cache is
//! gone or stale).

use crate::jobs::comfy;
use crate::support::app::{Gaze, eventually, sample_data};
use crate::support::forms::{FormClient as Client, Page, enc, flash};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn generate(g: &Gaze, body: Value) -> String {
    let (status, v) = g.post("/api/generate", &body.to_string()).await;
    assert_eq!(status, 202, "{v}");
    v["job_id"].as_str().unwrap().to_string()
}

async fn done(g: &Gaze, id: &str) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let j = g.get(&format!("/api/jobs/{id}")).await.1;
        if j["status"] == "done" {
            return j;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}: {j}\n{}",
            g.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn image_of(job: &Value) -> String {
    job["images"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("/static/")
        .to_string()
}

async fn events_of(g: &Gaze, kind: &str) -> Vec<Value> {
    let (_, v) = g.get("/api/events?limit=1000").await;
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_workshop_page_answers_and_the_navbar_links_them() {
    let g = Gaze::start(Some(&sample_data()), &["--comfy", "http://127.0.0.1:9"]);
    let c = Client::new(&g).await;
    for (path, h1) in [
        ("/generator", "Generator"),
        ("/gallery", "Image gallery"),
        ("/strengths", "Strengths"),
        ("/transfer", "Transfer"),
        ("/queue", "Queue"),
        ("/settings", "Settings"),
        ("/search?q=tifa", "Search"),
    ] {
        let p = c.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(p.text_of("h1").contains(h1), "{path}: {}", p.text_of("h1"));
        // Every page has the search box, the queue link and the workshop menu.
        assert_eq!(
            p.count("form[action='/search'] input[name=q]#nav-q"),
            1,
            "{path}"
        );
        assert_eq!(
            p.attr("a.queue-link", "href").as_deref(),
            Some("/queue"),
            "{path}"
        );
        for href in [
            "/generator",
            "/gallery",
            "/strengths",
            "/transfer",
            "/queue",
            "/settings",
        ] {
            assert_eq!(
                p.count(&format!("nav ul.dropdown-menu a[href='{href}']")),
                1,
                "{path} links {href}"
            );
        }
        assert!(!p.text.contains(" style=\""), "{path}: no inline style");
        assert!(!p.text.contains("onclick"), "{path}");
    }
    // The generator: one accordion section per mixed-in category, the character selector
    // with "Random character", seed modes, batch count.
    let p = c.get("/generator").await;
    assert_eq!(
        p.attrs("[data-mix]", "data-mix"),
        [
            "looks",
            "outfits",
            "actions",
            "styles",
            "scenes",
            "detailers"
        ]
    );
    assert!(p.count("#gen-character option[value=__random__]") == 1);
    assert_eq!(p.count("input[name=seed_mode]"), 2);
    assert_eq!(p.attr("#gen-batch", "max").as_deref(), Some("16"));
    // Bad routes.
    assert_eq!(c.get("/strengths/nope").await.status, 404);
    assert_eq!(
        c.get("/strengths/01ARZ3NDEKTSV4RRFFQ69G5FAV").await.status,
        404
    );
    assert_eq!(
        c.get("/gallery/image?path=uploads/nothing.png")
            .await
            .status,
        404
    );
    assert_eq!(
        c.get("/gallery/image?path=../../etc/passwd").await.status,
        404
    );
    assert_eq!(c.get("/gallery/image").await.status, 404);
    assert_eq!(
        c.get("/generator/options?category=characters").await.status,
        404
    );
    assert_eq!(c.get("/queue/row/nope").await.status, 404);
    // Odd gallery queries fall back to defaults instead of failing.
    let p = c
        .get("/gallery?category=robots&from=yesterday&per=7&page=-1&sort=random&kind=x")
        .await;
    assert_eq!(p.status, 200);
}

#[tokio::test]
async fn the_generator_without_javascript_keeps_its_state_generates_and_saves_a_preset() {
    let standin = comfy(50).await;
    let g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let c = Client::new(&g).await;
    let (status, to) = c
        .form(
            "/generator",
            &[
                ("op", "preview"),
                ("character", "tifa_lockhart"),
                ("extra", "outfits/victorian_maid"),
                ("extra", "styles/watercolor"),
                ("extra", "outfits/winter_coat"),
                ("seed_mode", "fixed"),
                ("seed", "7"),
                ("batch", "2"),
                ("extra_positive", "lanterns"),
                ("f_outfits", "maid"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        to, "/generator?f_outfits=maid",
        "the filter is kept in the address"
    );
    let p = c.get(&to).await;
    assert!(p.count("#x-outfits-victorian_maid[checked]") == 1);
    assert!(
        p.count("#x-outfits-winter_coat[checked]") == 1,
        "chosen ones stay listed"
    );
    assert_eq!(
        p.count("[data-mix-options=outfits] input"),
        2,
        "the filter narrows the rest"
    );
    assert_eq!(p.attr("#gen-seed", "value").as_deref(), Some("7"));
    assert_eq!(p.count("#seed-fixed[checked]"), 1);
    let sources = p.attrs("#gen-prompt [data-kind=main] .tag", "data-source");
    assert!(
        sources.iter().any(|s| s.contains("outfits/victorian_maid")),
        "{sources:?}"
    );
    assert!(p.text_of("#gen-prompt").contains("lanterns"));
    // The preferences API has the same state.
    let (_, prefs) = g.get("/api/preferences/generator").await;
    assert_eq!(prefs["character"], "tifa_lockhart");
    assert_eq!(prefs["batch"], 2);
    // The live preview: each tag with its source; refusals are explained.
    let (status, v) = g
        .post(
            "/generator/preview_prompt",
            &json!({"character": "tifa_lockhart", "extras": ["outfits/victorian_maid"]})
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let main = v["tags"]["main"].as_array().unwrap();
    assert!(
        main.iter().any(|t| t["tag"] == "maid headdress"
            && t["source"]
                .as_str()
                .unwrap()
                .contains("outfits/victorian_maid")),
        "{v}"
    );
    for (body, want) in [
        ("{", 400),
        ("[]", 400),
        (r#"{"nope": 1}"#, 400),
        (r#"{"extras": ["characters/tifa_lockhart"]}"#, 400),
        (r#"{"character": ""}"#, 422),
        (r#"{"extras": ["outfits/no_such_outfit"]}"#, 422),
    ] {
        let (status, v) = g.post("/generator/preview_prompt", body).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {v}"
        );
    }
    // Generate: two images, seeds 7 and 8.
    let (status, to) = c
        .form(
            "/generator",
            &[
                ("op", "generate"),
                ("character", "tifa_lockhart"),
                ("extra", "outfits/victorian_maid"),
                ("seed_mode", "fixed"),
                ("seed", "7"),
                ("batch", "2"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(flash(&to).1.contains("Queued 2"), "{to}");
    let (_, jobs) = g.get("/api/jobs?limit=10").await;
    let mut seeds = Vec::new();
    for j in jobs["jobs"].as_array().unwrap() {
        let id = j["job_id"].as_str().unwrap();
        assert_eq!(j["target"], Value::Null, "generator jobs have no entry");
        let (_, r) = g.get(&format!("/api/jobs/{id}/recipe")).await;
        seeds.push(r["recipe"]["seed"].as_u64().unwrap());
        done(&g, id).await;
    }
    seeds.sort();
    assert_eq!(seeds, [7, 8]);
    // The strip shows them (from the image index).
    let p = c.get("/generator").await;
    assert_eq!(p.count("#gen-recent figure[data-status=done] img"), 2);
    // Generate over JSON (the script's way).
    let (status, v) = g
        .post(
            "/generator/generate",
            &json!({"character": "__random__", "extras": ["styles/watercolor"], "batch": 1})
                .to_string(),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["job_ids"].as_array().unwrap().len(), 1);
    // Save as a preset: one entry per kind; the rest is named in the message.
    let (status, to) = c
        .form(
            "/generator",
            &[
                ("op", "save_preset"),
                ("preset_name", "Tifa Maid Mix"),
                ("character", "tifa_lockhart"),
                ("extra", "outfits/victorian_maid"),
                ("extra", "outfits/winter_coat"),
                ("extra", "styles/watercolor"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(to.starts_with("/preset/tifa_maid_mix"), "{to}");
    assert!(flash(&to).1.contains("Winter Coat"), "{to}");
    let preset: Value = serde_json::from_str(
        &std::fs::read_to_string(g.data().join("presets/tifa_maid_mix.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(preset["outfit"], "victorian_maid");
    assert_eq!(preset["style"], "watercolor");
    assert_eq!(preset["character"], "tifa_lockhart");
    // A nameless preset is refused; nothing is written.
    let (_, to) = c
        .form("/generator", &[("op", "save_preset"), ("preset_name", " ")])
        .await;
    assert!(!flash(&to).0);
    // Numbers that are not numbers are refused.
    let (_, to) = c
        .form("/generator", &[("op", "preview"), ("width", "wide")])
        .await;
    assert!(!flash(&to).0 && flash(&to).1.contains("width"), "{to}");
}

#[tokio::test]
async fn the_image_gallery_filters_acts_and_survives_restarts_and_sigkill() {
    let standin = comfy(30).await;
    let mut g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let c = Client::new(&g).await;
    let a = done(
        &g,
        &generate(
            &g,
            json!({"category": "characters", "slug": "tifa_lockhart", "seed": 1}),
        )
        .await,
    )
    .await;
    let b = done(
        &g,
        &generate(
            &g,
            json!({"category": "characters", "slug": "tifa_lockhart", "seed": 2}),
        )
        .await,
    )
    .await;
    let made = done(
        &g,
        &generate(
            &g,
            json!({"character": "link", "extra_positive": "thunderstorm"}),
        )
        .await,
    )
    .await;
    let (a_img, b_img, gen_img) = (image_of(&a), image_of(&b), image_of(&made));
    // A file no event names, found by a rescan.
    let png = std::fs::read(g.uploads().join(a_img.trim_start_matches("uploads/"))).unwrap();
    std::fs::create_dir_all(g.uploads().join("loose")).unwrap();
    std::fs::write(g.uploads().join("loose/mine.png"), &png).unwrap();
    let (status, to) = c.form("/gallery/rescan", &[]).await;
    assert_eq!(status, 303);
    assert!(flash(&to).1.contains("1 found that no event names"), "{to}");
    let count = |p: &Page| p.count(".image-tile");
    let p = c.get("/gallery").await;
    assert_eq!(count(&p), 4);
    assert_eq!(
        p.attrs(".image-tile", "data-path")[0],
        "uploads/loose/mine.png",
        "newest first (its file is newest)"
    );
    for (query, want) in [
        ("category=characters", 2),
        ("category=none", 2),
        ("kind=untracked", 1),
        ("kind=generated", 3),
        ("entry=characters%2Ftifa_lockhart", 2),
        ("q=thunderstorm", 1),
        ("q=thunder+link", 1),
        ("q=nothingatall", 0),
        ("from=2100-01-01", 0),
        ("to=1999-01-01", 0),
        ("per=30&page=2", 0),
    ] {
        let p = c.get(&format!("/gallery?{query}")).await;
        assert_eq!(count(&p), want, "{query}");
    }
    let p = c.get("/gallery?sort=oldest").await;
    assert_eq!(
        p.attrs(".image-tile", "data-path")[0],
        a_img,
        "oldest first"
    );
    // Star (as the script does: JSON back), then the favourites filter.
    let (status, v) = c
        .ajax(
            &format!("/gallery/favourite?path={}&on=1", enc(&b_img)),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["on"], true);
    assert_eq!(count(&c.get("/gallery?fav=1").await), 1);
    let (status, _) = c
        .ajax("/gallery/favourite?path=uploads/nope.png&on=1", &[])
        .await;
    assert_eq!(status, 404);
    // The image view: full size, recipe, PNG metadata, neighbours in the filter's order.
    let p = c
        .get(&format!(
            "/gallery/image?path={}&category=characters",
            enc(&b_img)
        ))
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.attr("#full-img", "src"), Some(format!("/static/{b_img}")));
    assert_eq!(p.text_of("[data-recipe=seed]"), "2");
    assert!(p.count("[data-version='characters/tifa_lockhart']") == 1);
    assert!(p.count("[data-chunk=gaze]") == 1 && p.count("[data-chunk=parameters]") == 1);
    assert_eq!(
        p.attr("[data-image-view]", "data-next"),
        Some(format!(
            "/gallery/image?path={}&category=characters",
            enc(&a_img)
        ))
    );
    assert_eq!(p.attr("[data-image-view]", "data-prev"), None);
    assert_eq!(
        p.attr("a[download]", "href"),
        Some(format!("/static/{b_img}"))
    );
    // Make it the cover; a generator image cannot be one.
    let (_, to) = c.form("/gallery/cover", &[("path", &b_img)]).await;
    assert!(flash(&to).0, "{to}");
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(tifa["cover"], format!("/static/{b_img}"));
    let (_, to) = c.form("/gallery/cover", &[("path", &gen_img)]).await;
    assert!(!flash(&to).0 && flash(&to).1.contains("no entry"), "{to}");
    // Delete: only with the box ticked; never an entry's cover; the file goes, the recipe stays.
    let (_, to) = c.form("/gallery/delete", &[("path", &a_img)]).await;
    assert!(!flash(&to).0);
    assert!(
        g.uploads()
            .join(a_img.trim_start_matches("uploads/"))
            .exists()
    );
    let (_, to) = c
        .form("/gallery/delete", &[("path", &b_img), ("confirm", "yes")])
        .await;
    assert!(!flash(&to).0 && flash(&to).1.contains("cover"), "{to}");
    assert!(
        g.uploads()
            .join(b_img.trim_start_matches("uploads/"))
            .exists()
    );
    let (_, to) = c
        .form(
            "/gallery/delete",
            &[("path", &a_img), ("confirm", "yes"), ("back", "/gallery")],
        )
        .await;
    assert!(flash(&to).0, "{to}");
    assert!(
        !g.uploads()
            .join(a_img.trim_start_matches("uploads/"))
            .exists()
    );
    let deleted = events_of(&g, "image_deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["path"], a_img.as_str());
    assert_eq!(deleted[0]["job"], a["job_id"]);
    let (status, _) = g
        .get(&format!(
            "/api/jobs/{}/recipe",
            a["job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "the recipe stays");
    assert_eq!(count(&c.get("/gallery").await), 3);
    assert_eq!(
        c.get(&format!("/gallery/image?path={}", enc(&a_img)))
            .await
            .status,
        404
    );
    // A clean restart reads the cache; SIGKILL and a lost cache rebuild from the ledger. The
    // stars, deletions and the untracked file are the same every time.
    let expect = |p: &Page| {
        (
            count(p),
            p.attrs(".image-tile .fav-btn.on", "aria-pressed").len(),
        )
    };
    g.restart();
    let cache = g.ledger_dir().join("images.cache");
    assert!(cache.exists(), "written at shutdown");
    let c = Client::new(&g).await;
    assert_eq!(expect(&c.get("/gallery").await), (3, 1));
    assert!(g.log().contains("from its cache"), "{}", g.log());
    // More happens, then a SIGKILL with an older cache: the ledger's tail is folded on top.
    let old_cache = std::fs::read(&cache).unwrap();
    let (status, _) = c
        .ajax(
            &format!("/gallery/favourite?path={}&on=1", enc(&gen_img)),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    g.kill9();
    std::fs::write(&cache, &old_cache).unwrap();
    g.spawn();
    let c = Client::new(&g).await;
    assert_eq!(expect(&c.get("/gallery").await), (3, 2));
    g.stop();
    std::fs::remove_file(&cache).unwrap();
    g.spawn();
    let c = Client::new(&g).await;
    assert_eq!(expect(&c.get("/gallery").await), (3, 2));
    assert!(
        c.get("/gallery")
            .await
            .attrs(".image-tile", "data-path")
            .contains(&"uploads/loose/mine.png".to_string()),
        "the scan at start-up finds the untracked file again"
    );
    // A damaged cache is ignored, not trusted.
    g.stop();
    std::fs::write(&cache, b"GAZEIMG\0garbage").unwrap();
    g.spawn();
    let c = Client::new(&g).await;
    assert_eq!(expect(&c.get("/gallery").await), (3, 2));
}

#[tokio::test]
async fn search_finds_entries_by_every_field_and_images_by_prompt_words() {
    let standin = comfy(30).await;
    let g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let c = Client::new(&g).await;
    let p = c.get("/search?q=final+fantasy").await;
    let hits = p.attrs("[data-kind=characters] a.search-hit", "href");
    assert!(
        hits.contains(&"/character/tifa_lockhart".to_string()),
        "{hits:?}"
    );
    assert!(
        hits.contains(&"/character/aerith_gainsborough".to_string()),
        "{hits:?}"
    );
    // A word only in a field's text: a weaker hit that says where it matched.
    let p = c.get("/search?q=suspenders").await;
    assert!(
        p.attrs("a.search-hit", "href")
            .contains(&"/character/tifa_lockhart".to_string()),
        "{}",
        p.text
    );
    assert!(p.text.contains("wardrobe.default.top"), "shows the field");
    // Every category is searched.
    let p = c.get("/search?q=watercolor").await;
    assert!(p.count("[data-kind=styles] a.search-hit") >= 1);
    let p = c.get("/search?q=maid").await;
    assert!(p.count("[data-kind=outfits] a.search-hit") >= 1);
    // Nothing and empty.
    let p = c.get("/search?q=qwertyuiop").await;
    assert_eq!(p.count(".search-empty"), 1);
    assert_eq!(c.get("/search").await.status, 200);
    // Images by a word of their prompt, once made.
    let j = done(&g, &generate(&g, json!({"category": "characters", "slug": "link", "extra_positive": "glowing mushrooms"})).await).await;
    let p = c.get("/search?q=mushroom").await;
    assert_eq!(p.attrs(".search-image", "href").len(), 1);
    assert!(p.attrs(".search-image", "href")[0].contains(&enc(&image_of(&j))));
    // The navbar's short list.
    let p = c.get("/search?partial=1&q=tifa").await;
    assert!(p.count("a.search-hit") >= 1 && p.count("a.search-hit") <= 4 * 9);
    assert!(!p.text.contains("<nav"), "a fragment, not a page");
    assert_eq!(
        p.attr("a.search-all", "href").as_deref(),
        Some("/search?q=tifa")
    );
}

#[tokio::test]
async fn strengths_sweep_two_axes_are_kept_and_bad_sweeps_are_refused() {
    let standin = comfy(20).await;
    let g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let c = Client::new(&g).await;
    let body = json!({"category": "outfits", "slug": "victorian_maid", "character": "tifa_lockhart",
                      "min": 0.2, "max": 0.4, "step": 0.2,
                      "y": {"slot": "character", "min": 0.5, "max": 1.0, "step": 0.5}});
    let (status, v) = g.post("/api/strengths", &body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    let cells = v["cells"].as_array().unwrap();
    let pairs: Vec<(f64, f64)> = cells
        .iter()
        .map(|c| (c["x"].as_f64().unwrap(), c["y"].as_f64().unwrap()))
        .collect();
    assert_eq!(pairs, [(0.2, 0.5), (0.4, 0.5), (0.2, 1.0), (0.4, 1.0)]);
    let mut seed = None;
    for cell in cells {
        let id = cell["job_id"].as_str().unwrap();
        let (_, r) = g.get(&format!("/api/jobs/{id}/recipe")).await;
        let weight = |src: &str| {
            r["recipe"]["loras"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["source"] == src)
                .unwrap()["weight"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(
            weight("outfits/victorian_maid"),
            cell["x"].as_f64().unwrap()
        );
        assert_eq!(
            weight("characters/tifa_lockhart"),
            cell["y"].as_f64().unwrap()
        );
        let s = r["recipe"]["seed"].as_u64().unwrap();
        assert_eq!(*seed.get_or_insert(s), s, "one seed");
        let (_, j) = g.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(j["batch"], v["sweep"]);
        assert_eq!(j["set_cover"], false);
    }
    let swept = events_of(&g, "strengths_swept").await;
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0]["sweep"], v["sweep"]);
    assert_eq!(swept[0]["axes"]["y"]["slot"], "character");
    assert_eq!(swept[0]["cells"].as_array().unwrap().len(), 4);
    // The page: the grid in weight order (rows y, columns x), and the list of sweeps.
    let sweep = v["sweep"].as_str().unwrap();
    let p = c.get(&format!("/strengths/{sweep}")).await;
    assert_eq!(p.attrs("thead th[data-x]", "data-x"), ["0.2", "0.4"]);
    assert_eq!(
        p.attrs(".sweep-cell", "data-job"),
        cells
            .iter()
            .map(|c| c["job_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    let list = c.get("/strengths").await;
    assert_eq!(
        list.attrs(".sweep-list a", "href"),
        [format!("/strengths/{sweep}")]
    );
    // Again: the same seed and weights, a new sweep.
    let (status, to) = c.form(&format!("/strengths/{sweep}/again"), &[]).await;
    assert_eq!(status, 303);
    let again = to
        .split('?')
        .next()
        .unwrap()
        .trim_start_matches("/strengths/")
        .to_string();
    assert_ne!(again, sweep);
    let swept = events_of(&g, "strengths_swept").await;
    assert_eq!(swept.len(), 2);
    assert_eq!(swept[1]["request"]["seed"], swept[0]["request"]["seed"]);
    // The form without JavaScript.
    let (status, to) = c
        .form(
            "/strengths",
            &[
                ("target", "styles/watercolor"),
                ("character", ""),
                ("min", "0.5"),
                ("max", "1"),
                ("step", "0.25"),
                ("seed", "99"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(to.starts_with("/strengths/") && flash(&to).0, "{to}");
    // Refusals, each with a reason; nothing is queued.
    let before = g.get("/api/jobs?limit=1000").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    for (body, word) in [
        (
            json!({"category": "outfits", "slug": "victorian_maid", "y": {"slot": "outfit"}}),
            "both axes",
        ),
        (
            json!({"category": "outfits", "slug": "business_suit"}),
            "holds no LoRA",
        ),
        (
            json!({"category": "outfits", "slug": "victorian_maid", "min": 0, "max": 5, "step": 0.01}),
            "limit",
        ),
        (
            json!({"category": "outfits", "slug": "victorian_maid", "y": {"slot": "hat"}}),
            "y.slot",
        ),
        (
            json!({"category": "outfits", "slug": "victorian_maid", "min": "a"}),
            "min",
        ),
        (json!({"character": "tifa_lockhart"}), "target"),
        (
            json!({"category": "outfits", "slug": "victorian_maid", "step": 0}),
            "step",
        ),
    ] {
        let (status, v) = g.post("/api/strengths", &body.to_string()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(word), "{body}: {v}");
    }
    let after = g.get("/api/jobs?limit=1000").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    let (_, to) = c
        .form("/strengths", &[("target", "outfits/business_suit")])
        .await;
    assert!(!flash(&to).0 && flash(&to).1.contains("no LoRA"), "{to}");
}

#[tokio::test]
async fn transfers_map_fields_report_the_rest_and_record_their_source() {
    let g = Gaze::start(Some(&sample_data()), &["--comfy", "http://127.0.0.1:9"]);
    let c = Client::new(&g).await;
    // The preview lists the fields that do not map.
    let p = c
        .get("/transfer?from_kind=characters&from_slug=tifa_lockhart&to=looks")
        .await;
    assert_eq!(p.status, 200);
    let lost = p.attrs("[data-unmapped]", "data-unmapped");
    assert!(
        lost.contains(&"defaults.expression".to_string()),
        "{lost:?}"
    );
    assert!(lost.contains(&"wardrobe".to_string()), "{lost:?}");
    assert_eq!(p.attr("#t-id", "value").as_deref(), Some("tifa_lockhart"));
    // Character → look.
    let (status, to) = c
        .form(
            "/transfer",
            &[
                ("from_kind", "characters"),
                ("from_slug", "tifa_lockhart"),
                ("to", "looks"),
                ("id", "tifa_classic_look"),
                ("name", "Tifa (classic)"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(to.starts_with("/look/tifa_classic_look/edit"), "{to}");
    assert!(
        flash(&to).1.contains("defaults.expression"),
        "the message names what stayed behind: {to}"
    );
    let look: Value = serde_json::from_str(
        &std::fs::read_to_string(g.data().join("looks/tifa_classic_look.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(look["character_id"], "tifa_lockhart");
    assert!(look["positive"].as_str().unwrap().contains("black hair"));
    assert_eq!(
        look["lora"]["lora_name"],
        "Illustrious/Looks/tifa_lockhart_ill_v2.safetensors"
    );
    let created = events_of(&g, "document_created").await;
    let made = created
        .iter()
        .find(|e| e["slug"] == "tifa_classic_look")
        .unwrap();
    let (_, tifa) = g.get("/api/library/characters/tifa_lockhart").await;
    assert_eq!(
        made["source"]["Transfer"],
        json!({"category": "Characters", "slug": "tifa_lockhart", "version": tifa["version"], "part": null})
    );
    let t = events_of(&g, "entry_transferred").await;
    assert_eq!(t[0]["to"], "looks/tifa_classic_look");
    assert_eq!(t[0]["from_version"], tifa["version"]);
    // Outfit → a character's wardrobe, with the unmapped text kept in the catch-all field.
    let (status, to) = c
        .form(
            "/transfer",
            &[
                ("from_kind", "outfits"),
                ("from_slug", "victorian_maid"),
                ("to", "wardrobe"),
                ("into", "link"),
                ("part", "maid"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(to.starts_with("/character/link/edit"), "{to}");
    let link: Value = serde_json::from_str(
        &std::fs::read_to_string(g.data().join("characters/link.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(link["wardrobe"]["maid"]["headwear"], "maid headdress");
    assert!(flash(&to).1.contains("lora"), "{to}");
    // Refusals: the same outfit name again, a bad name, an unknown entry, an impossible pair.
    let before = std::fs::read(g.data().join("characters/link.json")).unwrap();
    for (pairs, word) in [
        (
            vec![
                ("from_kind", "outfits"),
                ("from_slug", "victorian_maid"),
                ("to", "wardrobe"),
                ("into", "link"),
                ("part", "maid"),
            ],
            "already",
        ),
        (
            vec![
                ("from_kind", "outfits"),
                ("from_slug", "victorian_maid"),
                ("to", "wardrobe"),
                ("into", "link"),
                ("part", "a.b"),
            ],
            "cannot name",
        ),
        (
            vec![
                ("from_kind", "outfits"),
                ("from_slug", "nope"),
                ("to", "wardrobe"),
                ("into", "link"),
            ],
            "no outfit",
        ),
        (
            vec![
                ("from_kind", "actions"),
                ("from_slug", "waving"),
                ("to", "scenes"),
            ],
            "cannot be turned",
        ),
        (
            vec![
                ("from_kind", "characters"),
                ("from_slug", "tifa_lockhart"),
                ("to", "looks"),
                ("id", "tifa_classic_look"),
            ],
            "already",
        ),
    ] {
        let (_, to) = c.form("/transfer", &pairs).await;
        let (ok, msg) = flash(&to);
        assert!(!ok && msg.contains(word), "{pairs:?}: {to}");
    }
    assert_eq!(
        std::fs::read(g.data().join("characters/link.json")).unwrap(),
        before
    );
}

#[tokio::test]
async fn the_queue_and_settings_pages_work_without_javascript() {
    let standin = comfy(20).await;
    let g = Gaze::start(Some(&sample_data()), &["--comfy", &standin.url()]);
    let c = Client::new(&g).await;
    let (status, to) = c.form("/queue/pause", &[]).await;
    assert_eq!((status, flash(&to).0), (303, true));
    let id = generate(&g, json!({"category": "characters", "slug": "link"})).await;
    let p = c.get("/queue").await;
    assert!(
        p.attr("#queue-paused", "hidden").is_none(),
        "the paused badge shows"
    );
    assert_eq!(
        p.attrs("#queue-waiting .queue-row", "data-job"),
        std::slice::from_ref(&id)
    );
    let waiting = eventually(WAIT, || async {
        c.get("/queue")
            .await
            .text_of(&format!("[data-job='{id}'] .queue-waiting"))
            == "the queue is paused"
    })
    .await;
    assert!(waiting);
    let (status, v) = c.ajax(&format!("/queue/{id}/cancel"), &[]).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = c.ajax(&format!("/queue/{id}/cancel"), &[]).await;
    assert_eq!(status, 409, "already cancelled: {v}");
    let (status, v) = c.ajax(&format!("/queue/{id}/retry"), &[]).await;
    assert_eq!(status, 200, "{v}");
    let retry = v["job_id"].as_str().unwrap().to_string();
    c.form("/queue/resume", &[]).await;
    done(&g, &retry).await;
    let p = c.get("/queue").await;
    assert!(
        p.count(&format!(
            "#queue-finished [data-job='{retry}'] .queue-images img"
        )) == 1
    );
    assert!(
        p.count(&format!(
            "#queue-finished [data-job='{id}'][data-status=cancelled]"
        )) == 1
    );
    let row = c.get(&format!("/queue/row/{retry}")).await;
    assert_eq!(row.attr("li", "data-section").as_deref(), Some("finished"));
    // Hiding finished jobs is a view preference: nothing is deleted.
    c.form("/queue/hide_finished", &[("on", "1")]).await;
    let p = c.get("/queue").await;
    assert_eq!(p.count("#queue-finished"), 0);
    assert_eq!(p.count("#finished-hidden"), 1);
    assert_eq!(
        g.get(&format!("/api/jobs/{retry}")).await.1["status"],
        "done"
    );
    c.form("/queue/hide_finished", &[("on", "0")]).await;
    assert_eq!(c.get("/queue").await.count("#queue-finished"), 1);
    // Settings: the key is write-only.
    let (status, to) = c
        .form(
            "/settings",
            &[
                ("llm_provider", "ollama"),
                ("llm_url", "http://127.0.0.1:11434/v1"),
                ("llm_model", "qwen3"),
                ("llm_key", "sk-page-secret-77"),
            ],
        )
        .await;
    assert_eq!((status, flash(&to).0), (303, true), "{to}");
    let p = c.get("/settings").await;
    assert!(!p.text.contains("sk-page-secret-77"));
    assert_eq!(p.attr("#s-key", "value").as_deref(), Some(""));
    assert_eq!(
        p.attr("#key-state", "data-key-set").as_deref(),
        Some("true")
    );
    assert_eq!(p.attr("#s-llm_model", "value").as_deref(), Some("qwen3"));
    let secret = g.ledger_dir().join("llm_key.secret");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "sk-page-secret-77"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // An empty key field keeps the key; "forget" removes it.
    c.form("/settings", &[("llm_model", "qwen3b"), ("llm_key", "")])
        .await;
    assert!(secret.exists());
    c.form("/settings", &[("forget_key", "1")]).await;
    assert!(!secret.exists());
    let (_, to) = c.form("/settings", &[("llm_url", "ftp://x")]).await;
    assert!(!flash(&to).0 && flash(&to).1.contains("http"), "{to}");
    // Backends: bad URLs, the command line's and duplicates are refused.
    for (pairs, word) in [
        (vec![("op", "add"), ("url", "not a url")], "URL"),
        (
            vec![("op", "add"), ("url", &standin.url() as &str)],
            "already",
        ),
        (
            vec![("op", "remove"), ("url", &standin.url() as &str)],
            "cannot be removed",
        ),
        (
            vec![("op", "remove"), ("url", "http://127.0.0.1:1")],
            "not in the settings",
        ),
        (
            vec![("op", "explode"), ("url", "http://127.0.0.1:1")],
            "no such",
        ),
    ] {
        let (_, to) = c.form("/settings/backends", &pairs).await;
        let (ok, msg) = flash(&to);
        assert!(!ok && msg.contains(word), "{pairs:?}: {to}");
    }
    let (_, to) = c
        .form(
            "/settings/backends",
            &[("op", "test"), ("url", "http://127.0.0.1:9")],
        )
        .await;
    assert!(
        !flash(&to).0 && flash(&to).1.contains("does not answer"),
        "{to}"
    );
    let (status, v) = g
        .post(
            "/api/settings/comfy/test",
            &json!({"url": standin.url()}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["ok"], true);
    assert_eq!(v["impact_pack"], true);
    let (status, _) = g
        .put(
            "/api/settings",
            &json!({"comfy_backends": ["gopher://x"]}).to_string(),
        )
        .await;
    assert_eq!(status, 400);
    // Gallery preferences.
    c.form(
        "/settings/gallery",
        &[("nsfw", "hide"), ("density", "compact")],
    )
    .await;
    let (_, prefs) = g.get("/api/preferences/global").await;
    assert_eq!(
        (prefs["nsfw"].as_str(), prefs["density"].as_str()),
        (Some("hide"), Some("compact"))
    );
    assert_eq!(
        c.get("/gallery").await.count(".image-grid.density-compact"),
        1
    );
    let (_, to) = c.form("/settings/gallery", &[("density", "huge")]).await;
    assert!(!flash(&to).0, "{to}");
    // The ledger's facts.
    let p = c.get("/settings").await;
    let events: u64 = p.text_of("#ledger-events").trim().parse().unwrap();
    assert_eq!(events, g.seq().await);
    assert!(p.text_of("#ledger-path").ends_with("gaze.redb"));
    // Endless sessions are listed with a stop button.
    let (_, e) = g
        .post(
            "/api/endless",
            &json!({"category": "characters", "slug": "link"}).to_string(),
        )
        .await;
    let endless = e["endless_id"].as_str().unwrap().to_string();
    let p = c.get("/queue").await;
    assert_eq!(
        p.attrs("[data-endless]", "data-endless"),
        std::slice::from_ref(&endless)
    );
    c.form(&format!("/queue/endless/{endless}/stop"), &[]).await;
    assert_eq!(c.get("/queue").await.count("[data-endless]"), 0);
}

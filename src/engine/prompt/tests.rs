//! Table tests for every prompt rule in `prompt`.
use super::*;
use serde_json::json;

const TEMPLATE_NEG: &str = "lowres, blurry";

fn d<'a>(category: &'a str, slug: &'a str, data: &'a Value) -> Option<Doc<'a>> {
    Some(Doc {
        category,
        slug,
        data,
    })
}

fn build(c: &Composition<'_>) -> BuiltPrompts {
    build_prompts(c, TEMPLATE_NEG)
}

fn tifa() -> Value {
    json!({
        "character_id": "tifa_lockhart",
        "character_name": "Tifa Lockhart",
        "identity": {"base_specs": "1girl, slim", "hair": "black hair, long hair", "eyes": "red eyes",
                     "hands": "bare hands", "arms": "", "torso": "large breasts", "pelvis": null,
                     "legs": "", "feet": "", "extra": ""},
        "defaults": {"expression": "smile", "pose": "standing", "scene": "bar"},
        "wardrobe": {
            "default": {"top": "white tank top", "bottom": "black skirt", "gloves": "black gloves",
                        "hands": "fingerless"},
            "casual": {"top": "hoodie", "hands": "bracelet"}
        },
        "styles": {"aesthetic": "anime", "primary_color": "black", "secondary_color": "",
                   "tertiary_color": ""},
        "lora": {"lora_name": "Illustrious/Looks/tifa.safetensors", "lora_weight": 0.8,
                 "lora_triggers": "tifa"},
        "tags": ["final fantasy"],
    })
}

fn fields(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn orientation_codes() {
    let ok: &[(&str, &[&str])] = &[
        ("1F", &["1girl"]),
        ("1f", &["1girl"]),
        ("1M", &["1boy"]),
        ("2F", &["2girls", "multiple_girls", "yuri"]),
        ("2M", &["2boys", "multiple_boys", "yaoi"]),
        ("3F", &["3girls", "multiple_girls", "yuri"]),
        ("1M1F", &["1boy", "1girl", "hetero"]),
        ("1F1M", &["1girl", "1boy", "hetero"]),
        ("2F1M", &["2girls", "1boy", "multiple_girls", "hetero"]),
        ("1f 2m", &["1girl", "2boys", "multiple_boys", "hetero"]),
        (
            "2F2M",
            &[
                "2girls",
                "2boys",
                "multiple_girls",
                "multiple_boys",
                "hetero",
            ],
        ),
        ("5F", &["5girls", "multiple_girls", "yuri"]),
        ("6F", &["6+girls", "multiple_girls", "yuri"]),
        ("9M", &["6+boys", "multiple_boys", "yaoi"]),
        ("1F1F", &["2girls", "multiple_girls", "yuri"]),
        ("1F+1M", &["1girl", "1boy", "hetero"]),
        ("0M1F", &["1girl"]),
        (" 1F ", &["1girl"]),
    ];
    for (code, want) in ok {
        assert_eq!(parse_orientation(code).as_deref(), Ok(*want), "{code:?}");
    }
    for bad in [
        "",
        "F",
        "1X",
        "1",
        "girls",
        "1F2",
        "0F",
        "1F?",
        "99999999999999999999F",
    ] {
        assert!(parse_orientation(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn participants_rules() {
    let base = tifa();
    let with = |p: Value| {
        let mut c = base.clone();
        c["participants"] = p;
        c
    };
    let cases: &[(Value, &str, usize)] = &[
        (
            json!({"orientation": "1F", "solo_focus": "true"}),
            "1girl, solo_focus",
            0,
        ),
        (
            json!({"orientation": "1M1F", "solo_focus": true}),
            "1boy, 1girl, hetero, solo_focus",
            0,
        ),
        (
            json!({"orientation": "2F", "solo_focus": "false"}),
            "2girls, multiple_girls, yuri",
            0,
        ),
        (json!({"orientation": "bogus"}), "", 1),
        (json!({"orientation": null}), "", 0),
        (json!({}), "", 0),
    ];
    let sel = fields(&["wardrobe::top"]);
    for (p, want, warnings) in cases {
        let c = with(p.clone());
        let comp = Composition {
            character: d("characters", "tifa", &c),
            selected_fields: &sel,
            ..Default::default()
        };
        let out = build(&comp);
        let main = out
            .prompts
            .main
            .trim_end_matches("white tank top")
            .trim_end_matches(", ");
        assert_eq!(main, *want, "{p}");
        assert_eq!(
            out.explanation.warnings.len(),
            *warnings,
            "{p}: {:?}",
            out.explanation.warnings
        );
    }
    // Absent (or not an object): (solo:1.2).
    for c in [base.clone(), with(json!("1F"))] {
        let comp = Composition {
            character: d("characters", "tifa", &c),
            selected_fields: &sel,
            ..Default::default()
        };
        assert_eq!(build(&comp).prompts.main, "(solo:1.2), white tank top");
    }
    // No character: no participant tags at all.
    assert_eq!(build(&Composition::default()).prompts.main, "");
    // An action's participants win over the character's.
    let act = json!({"participants": {"orientation": "1F1M"}, "action": {"full_body": "hug"}});
    let c = with(json!({"orientation": "1F"}));
    let comp = Composition {
        character: d("characters", "tifa", &c),
        action: d("actions", "hug", &act),
        selected_fields: &sel,
        ..Default::default()
    };
    let out = build(&comp);
    assert_eq!(out.prompts.main, "1girl, 1boy, hetero, white tank top, hug");
    assert_eq!(
        out.explanation.main[0].source,
        "actions/hug participants::orientation"
    );
}

#[test]
fn field_selection_priority() {
    let c = tifa();
    let selected = fields(&["identity::hair"]);
    let defaults = fields(&["identity::eyes", "defaults::expression"]);
    let cases: &[(&[String], &[String], FieldSelection, &str)] = &[
        (
            &selected,
            &defaults,
            FieldSelection::Selected,
            "(solo:1.2), black hair, long hair",
        ),
        (
            &[],
            &defaults,
            FieldSelection::Defaults,
            "(solo:1.2), red eyes, smile",
        ),
        (
            &[],
            &[],
            FieldSelection::All,
            "(solo:1.2), Tifa Lockhart, 1girl, slim, black hair, long hair, red eyes, bare hands, \
             large breasts, smile, standing, bar, white tank top, black skirt, fingerless, black gloves, \
             anime, black, final fantasy, tifa",
        ),
    ];
    for (sel, def, kind, want) in cases {
        let comp = Composition {
            character: d("characters", "tifa", &c),
            selected_fields: sel,
            default_fields: def,
            ..Default::default()
        };
        let out = build(&comp);
        assert_eq!(out.explanation.field_selection, *kind);
        assert_eq!(out.prompts.main, *want);
    }
    // Malformed entries select nothing; they do not panic.
    let junk = fields(&[
        "identity",
        "::",
        "identity::",
        "nope::hair",
        " identity::eyes ",
    ]);
    let comp = Composition {
        character: d("characters", "tifa", &c),
        selected_fields: &junk,
        ..Default::default()
    };
    assert_eq!(build(&comp).prompts.main, "(solo:1.2), red eyes");
}

#[test]
fn wardrobe_nested_flat_active_and_outfit_replacement() {
    let nested = tifa();
    let mut flat = tifa();
    flat["wardrobe"] = json!({"top": "sweater", "bottom": "jeans"});
    let outfit = json!({"wardrobe": {"top": "maid dress", "headwear": "maid headdress"}, "tags": ["maid"],
                        "lora": {"lora_triggers": "maidtrigger"}});
    let sel = fields(&["wardrobe::top", "wardrobe::headwear", "wardrobe::bottom"]);
    let cases: &[(&Value, Option<&str>, bool, &str, usize)] = &[
        (
            &nested,
            None,
            false,
            "(solo:1.2), white tank top, black skirt",
            0,
        ),
        (&nested, Some("casual"), false, "(solo:1.2), hoodie", 0),
        (
            &nested,
            Some("missing"),
            false,
            "(solo:1.2), white tank top, black skirt",
            1,
        ),
        (
            &flat,
            Some("casual"),
            false,
            "(solo:1.2), sweater, jeans",
            0,
        ),
        (
            &nested,
            Some("casual"),
            true,
            "(solo:1.2), maid headdress, maid dress, maid, maidtrigger",
            0,
        ),
    ];
    for (c, active, with_outfit, want, warnings) in cases {
        let comp = Composition {
            character: d("characters", "tifa", c),
            outfit: if *with_outfit {
                d("outfits", "maid", &outfit)
            } else {
                None
            },
            selected_fields: &sel,
            active_outfit: *active,
            ..Default::default()
        };
        let out = build(&comp);
        assert_eq!(out.prompts.main, *want, "{active:?}");
        assert_eq!(
            out.explanation.warnings.len(),
            *warnings,
            "{:?}",
            out.explanation.warnings
        );
    }
    let comp = Composition {
        character: d("characters", "tifa", &nested),
        selected_fields: &sel,
        active_outfit: Some("casual"),
        ..Default::default()
    };
    let src = &build(&comp).explanation.main[1];
    assert_eq!(src.source, "characters/tifa wardrobe::top (outfit casual)");
}

#[test]
fn face_and_hand_prompts() {
    let c = tifa();
    let mut no_gloves = tifa();
    no_gloves["wardrobe"]["default"]["gloves"] = json!("");
    let mut bare = tifa();
    bare["wardrobe"] = json!({"default": {"top": "shirt"}});
    let action = json!({"action": {"full_body": "fighting stance", "head": "looking at viewer", "eyes": "wink",
                                   "arms": "raised arms", "hands": "clenched hands"}});
    let all: &[String] = &[];
    let only_identity = fields(&["identity::hands", "wardrobe::gloves"]);
    let cases: &[(&Value, &[String], bool, &str, &str)] = &[
        (&c, all, false, "Tifa Lockhart, smile", "black gloves"),
        (&no_gloves, all, false, "Tifa Lockhart, smile", "fingerless"),
        (&bare, all, false, "Tifa Lockhart, smile", "bare hands"),
        // gloves deselected → the next selected source with text
        (&c, &only_identity, false, "", "black gloves"),
        (&no_gloves, &only_identity, false, "", "bare hands"),
        (
            &c,
            all,
            true,
            "Tifa Lockhart, smile, looking at viewer, wink",
            "black gloves, raised arms, clenched hands",
        ),
    ];
    for (ch, sel, with_action, face, hand) in cases {
        let comp = Composition {
            character: d("characters", "tifa", ch),
            action: if *with_action {
                d("actions", "fight", &action)
            } else {
                None
            },
            selected_fields: sel,
            ..Default::default()
        };
        let out = build(&comp);
        assert_eq!(out.prompts.face, *face);
        assert_eq!(out.prompts.hand, *hand);
    }
}

#[test]
fn detailer_prompt_list_string_and_focus() {
    let cases: &[(Value, &str, &str, &str)] = &[
        (
            json!({"prompt": ["detailed skin", "pores"], "focus": {"face": true, "hands": true}}),
            "detailed skin, pores",
            "detailed skin, pores",
            "detailed skin, pores",
        ),
        (
            json!({"prompt": "sharp eyes, eyelashes", "focus": {"face": "true", "hands": false}}),
            "sharp eyes, eyelashes",
            "sharp eyes, eyelashes",
            "",
        ),
        (
            json!({"prompt": ["a, b", ["c"]], "focus": {"hands": true}}),
            "a, b, c",
            "",
            "a, b, c",
        ),
        (json!({"prompt": ["x"]}), "x", "", ""),
        (json!({"prompt": null, "focus": null}), "", "", ""),
    ];
    for (det, main, face, hand) in cases {
        let comp = Composition {
            detailer: d("detailers", "det", det),
            ..Default::default()
        };
        let out = build(&comp).prompts;
        assert_eq!(
            (out.main.as_str(), out.face.as_str(), out.hand.as_str()),
            (*main, *face, *hand),
            "{det}"
        );
    }
}

#[test]
fn style_artist_prefix() {
    let cases: &[(Value, &str)] = &[
        (
            json!({"style": {"artist_name": "wlop", "artistic_style": "painterly, soft lighting"}}),
            "by wlop, painterly, soft lighting",
        ),
        (json!({"style": {"artist_name": "by wlop"}}), "by wlop"),
        (json!({"style": {"artist_name": "By Wlop"}}), "By Wlop"),
        (
            json!({"style": {"artist_name": "  ", "artistic_style": "sketch"}}),
            "sketch",
        ),
        (json!({"style": {"artist_name": "byakuya"}}), "by byakuya"),
        (
            json!({"style": {"artist_name": "wlop, By sakimichan", "artistic_style": ["ink", "sketch"]}}),
            "by wlop, By sakimichan, ink, sketch",
        ),
        (json!({"style": null}), ""),
        (json!({"style": {"artist_name": 42}}), "by 42"),
    ];
    for (style, want) in cases {
        let comp = Composition {
            style: d("styles", "s", style),
            ..Default::default()
        };
        assert_eq!(build(&comp).prompts.main, *want, "{style}");
    }
}

#[test]
fn look_checkpoint_and_extra_prompts() {
    let c = tifa();
    let look = json!({"positive": "casual clothes, jeans", "negative": "revealing, nsfw", "tags": ["look tag"],
                      "lora": {"lora_name": "Illustrious/Looks/tifa_casual.safetensors", "lora_triggers": "tifacasual"}});
    let ck = json!({"base_positive": "masterpiece, best quality", "base_negative": "text, logo"});
    let sel = fields(&["identity::hair", "lora::lora_triggers"]);
    let comp = Composition {
        character: d("characters", "tifa", &c),
        look: d("looks", "tifa_casual", &look),
        checkpoint: d("checkpoints", "ill", &ck),
        selected_fields: &sel,
        extra_positive: "rain, night",
        extra_negative: "bad feet",
        ..Default::default()
    };
    let out = build(&comp);
    assert_eq!(
        out.prompts.main,
        "masterpiece, best quality, (solo:1.2), black hair, long hair, casual clothes, jeans, look tag, \
         tifacasual, rain, night",
        "the look's LoRA displaces the character's, so the trigger 'tifa' is dropped"
    );
    assert_eq!(
        out.prompts.negative,
        "revealing, nsfw, lowres, blurry, text, logo, bad feet"
    );
    let src: Vec<&str> = out
        .explanation
        .negative
        .iter()
        .map(|t| t.source.as_str())
        .collect();
    assert_eq!(
        src,
        vec![
            "looks/tifa_casual negative",
            "looks/tifa_casual negative",
            "template",
            "template",
            "checkpoints/ill base_negative",
            "checkpoints/ill base_negative",
            "extra_negative",
        ]
    );
    // A look without a LoRA keeps the character's trigger.
    let plain_look = json!({"positive": "casual clothes"});
    let comp = Composition {
        character: d("characters", "tifa", &c),
        look: d("looks", "plain", &plain_look),
        selected_fields: &sel,
        ..Default::default()
    };
    assert_eq!(
        build(&comp).prompts.main,
        "(solo:1.2), black hair, long hair, tifa, casual clothes"
    );
}

#[test]
fn composed_documents_replace_character_defaults() {
    let c = tifa();
    let scene = json!({"scene": {"background": "beach", "lighting": "sunset"}});
    let action = json!({"action": {"full_body": "sitting"}});
    let sel = fields(&["defaults::expression", "defaults::pose", "defaults::scene"]);
    let cases: &[(bool, bool, &str)] = &[
        (false, false, "(solo:1.2), smile, standing, bar"),
        (true, false, "(solo:1.2), smile, bar, sitting"),
        (false, true, "(solo:1.2), smile, standing, beach, sunset"),
        (true, true, "(solo:1.2), smile, sitting, beach, sunset"),
    ];
    for (with_action, with_scene, want) in cases {
        let comp = Composition {
            character: d("characters", "tifa", &c),
            action: if *with_action {
                d("actions", "sit", &action)
            } else {
                None
            },
            scene: if *with_scene {
                d("scenes", "beach", &scene)
            } else {
                None
            },
            selected_fields: &sel,
            ..Default::default()
        };
        assert_eq!(build(&comp).prompts.main, *want);
    }
}

#[test]
fn background_rule() {
    let c = tifa();
    let mut no_colour = tifa();
    no_colour["styles"] = json!(null);
    let scene = json!({"scene": {"background": "forest"}});
    let sel = fields(&["identity::eyes"]);
    let cases: &[(Option<&Value>, bool, bool, bool, &str)] = &[
        (
            Some(&c),
            true,
            false,
            false,
            "(solo:1.2), red eyes, black simple background",
        ),
        (Some(&c), false, false, false, "(solo:1.2), red eyes"),
        (Some(&c), true, true, false, "(solo:1.2), red eyes, forest"),
        (Some(&c), true, false, true, "(solo:1.2), red eyes, forest"),
        (
            Some(&no_colour),
            true,
            false,
            false,
            "(solo:1.2), red eyes, simple background",
        ),
        (None, true, false, false, "simple background"),
    ];
    for (ch, bg, scene_slot, scene_extra, want) in cases {
        let comp = Composition {
            character: ch.and_then(|c| d("characters", "tifa", c)),
            scene: if *scene_slot {
                d("scenes", "forest", &scene)
            } else {
                None
            },
            extras: if *scene_extra {
                d("scenes", "forest", &scene).into_iter().collect()
            } else {
                vec![]
            },
            selected_fields: &sel,
            append_background: *bg,
            ..Default::default()
        };
        assert_eq!(build(&comp).prompts.main, *want);
    }
}

#[test]
fn dedup_in_context() {
    let c = json!({"identity": {"base_specs": "1girl, Red_Eyes", "eyes": "red eyes, (blurry:1.2)"},
                   "participants": {"orientation": "1F"}});
    let comp = Composition {
        character: d("characters", "x", &c),
        extra_positive: "(red eyes:1.3), lowres",
        extra_negative: "1girl",
        ..Default::default()
    };
    let out = build(&comp);
    // 1girl: 2× positive vs 1× negative → one survives in main (the later one, from base_specs).
    // blurry: 1 vs 1 → cancelled both sides. lowres: 1 vs 1 → cancelled. red eyes: within-dedup,
    // the weighted form takes the first position.
    assert_eq!(out.prompts.main, "1girl, (red eyes:1.3)");
    assert_eq!(out.prompts.negative, "");
    assert_eq!(
        out.explanation.main[0].source,
        "characters/x identity::base_specs"
    );
    assert_eq!(out.explanation.main[1].source, "extra_positive");
    let reasons: Vec<(PromptKind, &str, RemovalKind)> = out
        .explanation
        .removed
        .iter()
        .map(|r| (r.prompt, r.tag.as_str(), r.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (PromptKind::Main, "1girl", RemovalKind::CrossCancelled),
            (
                PromptKind::Main,
                "(blurry:1.2)",
                RemovalKind::CrossCancelled
            ),
            (PromptKind::Main, "lowres", RemovalKind::CrossCancelled),
            (PromptKind::Negative, "lowres", RemovalKind::CrossCancelled),
            (PromptKind::Negative, "blurry", RemovalKind::CrossCancelled),
            (PromptKind::Negative, "1girl", RemovalKind::CrossCancelled),
            (PromptKind::Main, "red eyes", RemovalKind::Duplicate),
            (PromptKind::Main, "Red_Eyes", RemovalKind::Outranked),
        ]
    );
    let first = &out.explanation.removed[0];
    assert_eq!(first.source, "characters/x participants::orientation");
    assert!(
        first
            .detail
            .contains("2× in the positive and 1× in the negative"),
        "{}",
        first.detail
    );
    assert!(out.explanation.removed[6].detail.contains("(red eyes:1.3)"));
}

#[test]
fn extras_mix_categories() {
    let outfit = json!({"wardrobe": {"top": "bikini"}, "tags": ["summer"]});
    let action = json!({"action": {"full_body": "running", "hands": "waving"}});
    let look = json!({"positive": "tan", "negative": "pale"});
    let ch = tifa();
    let comp = Composition {
        extras: vec![
            Doc {
                category: "outfits",
                slug: "bikini",
                data: &outfit,
            },
            Doc {
                category: "actions",
                slug: "run",
                data: &action,
            },
            Doc {
                category: "looks",
                slug: "tan",
                data: &look,
            },
            Doc {
                category: "characters",
                slug: "tifa",
                data: &ch,
            },
            Doc {
                category: "checkpoints",
                slug: "ck",
                data: &ch,
            },
            Doc {
                category: "gizmos",
                slug: "g",
                data: &ch,
            },
        ],
        ..Default::default()
    };
    let out = build(&comp);
    assert_eq!(out.prompts.main, "bikini, summer, running, waving, tan");
    assert_eq!(out.prompts.hand, "waving");
    assert_eq!(out.prompts.negative, "pale, lowres, blurry");
    assert_eq!(
        out.explanation.warnings.len(),
        3,
        "{:?}",
        out.explanation.warnings
    );
}

#[test]
fn odd_documents_do_not_panic() {
    let weird = [
        json!(null),
        json!([1, 2]),
        json!("text"),
        json!({"identity": null, "wardrobe": null, "styles": 5, "tags": "a, b", "lora": "x",
               "participants": null, "defaults": [], "character_name": 12}),
        json!({"identity": {"hair": {"nested": true}}, "wardrobe": {"default": "oops"},
               "participants": {"orientation": 2, "solo_focus": {}}, "action": {"head": [1, {"x": 1}]},
               "scene": "beach", "style": {"artist_name": null}, "prompt": {"a": 1}, "focus": "face",
               "positive": ["a", null], "negative": 3, "base_positive": true, "base_negative": [[["deep"]]]}),
    ];
    for w in &weird {
        let comp = Composition {
            character: d("characters", "w", w),
            look: d("looks", "w", w),
            outfit: d("outfits", "w", w),
            action: d("actions", "w", w),
            style: d("styles", "w", w),
            scene: d("scenes", "w", w),
            detailer: d("detailers", "w", w),
            checkpoint: d("checkpoints", "w", w),
            extras: vec![Doc {
                category: "scenes",
                slug: "w",
                data: w,
            }],
            append_background: true,
            ..Default::default()
        };
        let _ = build(&comp);
    }
    let w = &weird[4];
    let comp = Composition {
        character: d("characters", "w", w),
        ..Default::default()
    };
    let out = build(&comp);
    assert!(
        out.explanation
            .warnings
            .iter()
            .any(|m| m.contains("identity::hair") && m.contains("object"))
    );
    assert!(
        out.explanation
            .warnings
            .iter()
            .any(|m| m.contains("orientation \"2\""))
    );
}

#[test]
fn explanation_names_every_tag_source() {
    let c = tifa();
    let style = json!({"style": {"artist_name": "wlop"}, "lora": {"lora_triggers": "wlopstyle"}});
    let comp = Composition {
        character: d("characters", "tifa_lockhart", &c),
        style: d("styles", "wlop", &style),
        extra_positive: "rain",
        ..Default::default()
    };
    let out = build(&comp);
    let find = |tag: &str| {
        out.explanation
            .main
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.source.as_str())
    };
    assert_eq!(
        find("black hair"),
        Some("characters/tifa_lockhart identity::hair")
    );
    assert_eq!(
        find("(solo:1.2)"),
        Some("characters/tifa_lockhart participants (absent)")
    );
    assert_eq!(
        find("Tifa Lockhart"),
        Some("characters/tifa_lockhart special::name")
    );
    assert_eq!(
        find("white tank top"),
        Some("characters/tifa_lockhart wardrobe::top (outfit default)")
    );
    assert_eq!(
        find("final fantasy"),
        Some("characters/tifa_lockhart special::tags")
    );
    assert_eq!(
        find("tifa"),
        Some("characters/tifa_lockhart lora::lora_triggers")
    );
    assert_eq!(find("by wlop"), Some("styles/wlop style::artist_name"));
    assert_eq!(find("wlopstyle"), Some("styles/wlop lora::lora_triggers"));
    assert_eq!(find("rain"), Some("extra_positive"));
    assert_eq!(
        out.explanation.main.len(),
        tags::split_tags(&out.prompts.main).count()
    );
    assert_eq!(
        out.explanation.face.len(),
        tags::split_tags(&out.prompts.face).count()
    );
    assert_eq!(out.explanation.negative[0].source, "template");
}

#[test]
fn ensure_character_fields_adds_populated_identity_and_wardrobe() {
    let c = tifa();
    let mut sel = fields(&["defaults::pose", "identity::hair"]);
    ensure_character_fields(&mut sel, Some(&c), None, Some("casual"));
    assert_eq!(
        sel,
        fields(&[
            "defaults::pose",
            "identity::hair",
            "identity::base_specs",
            "identity::eyes",
            "identity::hands",
            "identity::torso",
            "wardrobe::top",
            "wardrobe::hands",
        ])
    );
    let outfit = json!({"wardrobe": {"full_body": "maid dress", "top": ""}});
    let mut sel = Vec::new();
    ensure_character_fields(&mut sel, None, Some(&outfit), None);
    assert_eq!(sel, fields(&["wardrobe::full_body"]));
    let mut sel = Vec::new();
    ensure_character_fields(&mut sel, Some(&json!(null)), None, None);
    assert!(sel.is_empty());
}

#[test]
fn set_slot_places_documents() {
    let v = json!({});
    let mut c = Composition::default();
    for cat in Category::ALL {
        let placed = c.set_slot(
            cat,
            Doc {
                category: cat.as_str(),
                slug: "x",
                data: &v,
            },
        );
        assert_eq!(placed, cat != Category::Presets);
    }
    assert!(c.character.is_some() && c.look.is_some() && c.outfit.is_some() && c.action.is_some());
    assert!(
        c.style.is_some() && c.scene.is_some() && c.detailer.is_some() && c.checkpoint.is_some()
    );
}

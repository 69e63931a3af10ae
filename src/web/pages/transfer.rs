//! Transfer (`/transfer`): turn one kind of entry into another with the mapping table of
//! `library::transfer` — a character's wardrobe outfit into an outfit entry and an outfit into
//! a character's wardrobe, a character into a look and back, and between actions, scenes,
//! styles and detailers. The page previews which fields map where and lists the fields that
//! have no place in the new kind (they can be kept in one catch-all field); the new entry opens
//! in its editor and records where it came from (`Source::Transfer` and an `entry_transferred`
//! event). Works without JavaScript (a GET form to preview, a POST to transfer).

use super::ui::entry_picker;
use super::{FormPairs, Page, enc, field, flash_of, page, run, with_flash};
use crate::library::category::{Category, is_slug};
use crate::library::command::Command;
use crate::library::projection::Library;
use crate::library::transfer::{self, Kind, RULES, Transferred};
use crate::web::AppState;
use crate::web::guard::csrf_field;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/transfer", get(show).post(post))
}

/// The kinds a transfer can start from, in the page's order.
fn sources() -> Vec<Kind> {
    let mut out: Vec<Kind> = Vec::new();
    for r in RULES {
        if !out.contains(&r.from) {
            out.push(r.from);
        }
    }
    out
}

fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Wardrobe => "A character's wardrobe outfit",
        Kind::Entry(c) => c.desc().title,
    }
}

/// A name a wardrobe outfit can have: letters, digits, spaces, `_` and `-`.
pub fn outfit_name_ok(n: &str) -> bool {
    let n = n.trim();
    !n.is_empty()
        && n.chars().count() <= 60
        && n.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == ' ')
}

/// What the page's controls say.
#[derive(Clone, Debug, Default)]
struct Choice {
    from: Option<Kind>,
    /// The source entry's slug.
    entry: Option<String>,
    /// The wardrobe outfit (from a character), or the outfit's name in the receiving wardrobe.
    part: Option<String>,
    to: Option<Kind>,
    id: Option<String>,
    name: Option<String>,
    /// The character receiving an outfit.
    into: Option<String>,
    keep: bool,
}

impl Choice {
    /// From the page's fields (`from_kind`, `from_slug`, …) or a link's `from=category/slug`.
    fn read(get: impl Fn(&str) -> Option<String>) -> Choice {
        let text = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let (from, entry) = match (
            text("from_kind").and_then(|k| Kind::parse(&k)),
            text("from"),
        ) {
            (Some(k), _) => (Some(k), text("from_slug")),
            (None, Some(f)) => match f.split_once('/') {
                Some((c, slug)) => (Kind::parse(c), Some(slug.to_string())),
                None => (Kind::parse(&f), None),
            },
            (None, None) => (None, None),
        };
        Choice {
            from,
            entry: entry.filter(|s| is_slug(s)),
            part: text("part"),
            to: text("to").and_then(|k| Kind::parse(&k)),
            id: text("id"),
            name: text("name"),
            into: text("into").filter(|s| is_slug(s)),
            keep: get("keep").is_some_and(|v| v == "1"),
        }
    }
}

/// The id a new entry would take if it were free; otherwise with the kind appended.
fn free_id(lib: &Library, c: Category, wanted: &str) -> String {
    let mut id = wanted.to_string();
    let mut n = 1;
    while lib.get(c, &c.slug_of(&id)).is_some() {
        n += 1;
        id = if n == 2 {
            format!("{wanted}_{}", c.desc().singular)
        } else {
            format!("{wanted}_{}_{n}", c.desc().singular)
        };
    }
    id
}

/// The wardrobe outfits of a character document.
fn outfits(v: &Value) -> Vec<String> {
    match v.get("wardrobe").and_then(Value::as_object) {
        Some(w) if w.values().any(Value::is_object) => w.keys().cloned().collect(),
        Some(w) if !w.is_empty() => vec!["default".to_string()],
        _ => Vec::new(),
    }
}

/// Runs the mapping for a complete choice: the result, the new entry's id and name, and the
/// receiving character for a wardrobe. `Err` says what is missing or wrong.
fn plan(lib: &Library, ch: &Choice) -> Result<(Transferred, String, String), String> {
    let from = ch.from.ok_or("choose what to transfer")?;
    let to = ch.to.ok_or("choose what it becomes")?;
    let c = from.category();
    let slug = ch.entry.as_deref().ok_or("choose the entry")?;
    let src = lib
        .get(c, slug)
        .ok_or_else(|| format!("there is no {} '{slug}'", c.desc().singular))?;
    let doc = src.data().ok_or("the entry is not a JSON object")?;
    let (id, name) = match (from, to) {
        (Kind::Wardrobe, Kind::Entry(tc)) => {
            let outfit = ch.part.as_deref().ok_or("choose the wardrobe outfit")?;
            (
                ch.id
                    .clone()
                    .unwrap_or_else(|| free_id(lib, tc, &format!("{}_{outfit}", src.id))),
                ch.name
                    .clone()
                    .unwrap_or_else(|| format!("{} ({outfit})", src.name)),
            )
        }
        (_, Kind::Entry(tc)) => (
            ch.id.clone().unwrap_or_else(|| free_id(lib, tc, &src.id)),
            ch.name.clone().unwrap_or_else(|| src.name.clone()),
        ),
        (_, Kind::Wardrobe) => (String::new(), String::new()),
    };
    let into_doc = match to {
        Kind::Wardrobe => {
            let into = ch
                .into
                .as_deref()
                .ok_or("choose the character whose wardrobe receives the outfit")?;
            Some(
                lib.get(Category::Characters, into)
                    .and_then(|e| e.data())
                    .ok_or_else(|| format!("there is no character '{into}'"))?,
            )
        }
        Kind::Entry(_) => None,
    };
    let part = match (from, to) {
        (Kind::Wardrobe, _) => ch.part.clone(),
        (_, Kind::Wardrobe) => {
            let n = ch.part.clone().unwrap_or_else(|| src.id.clone());
            if !outfit_name_ok(&n) {
                return Err(format!(
                    "'{n}' cannot name an outfit (letters, digits, spaces, _ and -)"
                ));
            }
            Some(n.trim().to_string())
        }
        _ => None,
    };
    let mut t = transfer::transfer(
        from,
        &doc,
        part.as_deref(),
        to,
        (&id, &name),
        into_doc.as_ref(),
    )?;
    if ch.keep {
        transfer::keep_unmapped(&mut t, to, part.as_deref());
    }
    Ok((t, id, name))
}

async fn show(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let ch = Choice::read(|k| q.get(k).cloned());
    let body = {
        let lib = s.handle.library();
        body(&s, &lib, &ch)
    };
    page(
        &s,
        &Page {
            title: "Transfer",
            section: Some("transfer"),
            scripts: &[],
            flash: flash_of(&q),
            refresh: None,
        },
        body,
    )
    .into_response()
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

fn at<'v>(doc: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn body(s: &AppState, lib: &Library, ch: &Choice) -> Markup {
    let from = ch.from;
    let targets = from.map(transfer::targets).unwrap_or_default();
    let to = ch.to.filter(|t| targets.contains(t));
    let src = from.and_then(|k| ch.entry.as_ref().and_then(|e| lib.get(k.category(), e)));
    let outfit_list = match (from, src) {
        (Some(Kind::Wardrobe), Some(e)) => outfits(&e.value()),
        _ => Vec::new(),
    };
    let ready = from.is_some() && to.is_some() && src.is_some();
    let planned = ready.then(|| plan(lib, &Choice { to, ..ch.clone() }));
    let rule = match (from, to) {
        (Some(f), Some(t)) => transfer::rule(f, t),
        _ => None,
    };
    html! {
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto { "Transfer" }
            span.small.text-body-secondary { "Turn one kind of entry into another; nothing is lost on the way" }
        }
        form.card.mb-3 method="get" action="/transfer" data-transfer-pick {
            div.card-body.row.g-2.align-items-end {
                div.col-12.col-md-3 {
                    label.form-label.small for="t-kind" { "Transfer" }
                    select.form-select #t-kind name="from_kind" data-autosubmit {
                        option value="" selected[from.is_none()] { "— choose —" }
                        @for k in sources() {
                            option value=(k.key()) selected[from == Some(k)] { (kind_label(k)) }
                        }
                    }
                }
                @if let Some(k) = from {
                    div.col-12.col-md-3 {
                        label.form-label.small for="t-from" { (if k == Kind::Wardrobe { "Character".to_string() } else { format!("{} entry", k.category().desc().singular) }) }
                        (entry_picker(lib, k.category(), "from_slug", "t-from", ch.entry.as_deref(), &[("", "— choose —")], true))
                    }
                    @if k == Kind::Wardrobe && !outfit_list.is_empty() {
                        div.col-6.col-md-2 {
                            label.form-label.small for="t-part" { "Outfit" }
                            select.form-select #t-part name="part" {
                                @for o in &outfit_list {
                                    option value=(o) selected[ch.part.as_deref() == Some(o.as_str())] { (o) }
                                }
                            }
                        }
                    }
                    div.col-6.col-md-2 {
                        label.form-label.small for="t-to" { "Into" }
                        select.form-select #t-to name="to" {
                            @for t in &targets {
                                option value=(t.key()) selected[to == Some(*t)] { (kind_label(*t)) }
                            }
                        }
                    }
                }
                div.col-12.col-md-2 {
                    button.btn.btn-secondary type="submit" { "Preview" }
                }
            }
        }
        @if let Some(r) = rule {
            p.small.text-body-secondary { (capitalised(r.note)) "." }
        }
        @match planned {
            None => {
                p.text-body-secondary.small { "Choose an entry and what it becomes to see how its fields map." }
            }
            Some(Err(e)) => {
                div.alert.alert-warning.small role="status" { (e) }
            }
            Some(Ok((t, id, name))) => {
                @let to = to.unwrap_or(Kind::Wardrobe);
                form.card method="post" action="/transfer" data-transfer {
                    (csrf_field(s))
                    input type="hidden" name="from_kind" value=(from.map_or("", |k| k.key()));
                    input type="hidden" name="from_slug" value=[ch.entry.as_deref()];
                    input type="hidden" name="to" value=(to.key());
                    @if from == Some(Kind::Wardrobe) {
                        input type="hidden" name="part" value=[ch.part.as_deref()];
                    }
                    div.card-header { h2.h6.mb-0 { "What it becomes" } }
                    div.card-body {
                        @if to == Kind::Wardrobe {
                            div.row.g-2.mb-3 {
                                div.col-12.col-md-6 {
                                    label.form-label.small for="t-into" { "Character receiving the outfit" }
                                    (entry_picker(lib, Category::Characters, "into", "t-into", ch.into.as_deref(), &[("", "— choose —")], true))
                                }
                                div.col-12.col-md-6 {
                                    label.form-label.small for="t-outfit" { "Outfit name in the wardrobe" }
                                    input.form-control.form-control-sm #t-outfit name="part"
                                        value=(ch.part.clone().or_else(|| ch.entry.clone()).unwrap_or_default()) required;
                                }
                            }
                        } @else {
                            div.row.g-2.mb-3 {
                                div.col-12.col-md-6 {
                                    label.form-label.small for="t-id" { "New " (to.title()) " id" }
                                    input.form-control.form-control-sm #t-id name="id" value=(id) required;
                                }
                                div.col-12.col-md-6 {
                                    label.form-label.small for="t-name" { "Name" }
                                    input.form-control.form-control-sm #t-name name="name" value=(name) required;
                                }
                            }
                        }
                        h3.h6 { "Fields that carry over" }
                        @if t.mapped.is_empty() {
                            p.small.text-body-secondary { "None of the source's fields have content that maps." }
                        } @else {
                            table.table.table-sm.small.transfer-map {
                                thead { tr { th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Text" } } }
                                tbody {
                                    @for (f, tt) in &t.mapped {
                                        @let shown = if to == Kind::Wardrobe {
                                            format!("wardrobe.{}.{}", ch.part.clone().unwrap_or_default(), tt.trim_start_matches("wardrobe."))
                                        } else { tt.clone() };
                                        tr data-mapped=(f) {
                                            td { code { (f) } }
                                            td { code { (shown) } }
                                            td.text-break { (text_of(at(&t.doc, &shown).or(at(&t.doc, tt)))) }
                                        }
                                    }
                                }
                            }
                        }
                        h3.h6 { "Fields with no place in " (with_article(to.title())) }
                        @if t.unmapped.is_empty() {
                            p.small.text-body-secondary #unmapped-none { "None: everything with content carries over." }
                        } @else {
                            ul.small.unmapped #unmapped {
                                @for (f, v) in &t.unmapped {
                                    li data-unmapped=(f) { code { (f) } " — " span.text-break { (v) } }
                                }
                            }
                            @if let Some(ca) = transfer::catch_all(to) {
                                div.form-check.small.mb-2 {
                                    input.form-check-input #t-keep type="checkbox" name="keep" value="1" checked[ch.keep];
                                    label.form-check-label for="t-keep" { "Put their text into " code { (ca) } " (LoRA and tags stay out)" }
                                }
                            }
                            p.small.text-body-secondary { "They stay in the source entry either way; the new entry is opened in its editor." }
                        }
                        button.btn.btn-primary type="submit" { "Transfer" }
                    }
                }
            }
        }
        section.mt-4 {
            h2.h6 { "The mapping" }
            table.table.table-sm.small.mapping-table {
                thead { tr { th scope="col" { "From" } th scope="col" { "Into" } th scope="col" { "Fields" } } }
                tbody {
                    @for r in RULES {
                        tr {
                            td { (kind_label(r.from)) }
                            td { (kind_label(r.to)) }
                            td {
                                @for (i, (f, t)) in r.fields.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    code { (f) } " → " code { (t) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /transfer`: makes the new entry (or grows the character's wardrobe) and opens its
/// editor.
async fn post(State(s): State<AppState>, axum::Form(f): FormPairs) -> Response {
    let ch = Choice::read(|k| field(&f, k).map(String::from));
    let back = format!(
        "/transfer?from_kind={}&from_slug={}&to={}{}",
        ch.from.map_or("", |k| k.key()),
        enc(ch.entry.as_deref().unwrap_or_default()),
        ch.to.map_or("", |k| k.key()),
        ch.part
            .as_deref()
            .map(|p| format!("&part={}", enc(p)))
            .unwrap_or_default()
    );
    let planned = {
        let lib = s.handle.library();
        plan(&lib, &ch)
    };
    let (t, _, _) = match planned {
        Ok(p) => p,
        Err(e) => return Redirect::to(&with_flash(&back, false, &e)).into_response(),
    };
    let (from, to) = match (ch.from, ch.to) {
        (Some(a), Some(b)) => (a, b),
        _ => return Redirect::to(&with_flash(&back, false, "choose both kinds")).into_response(),
    };
    let unmapped: Vec<String> = t.unmapped.iter().map(|(f, _)| f.clone()).collect();
    let into_wardrobe = match to {
        Kind::Wardrobe => Some((
            ch.into.clone().unwrap_or_default(),
            ch.part.clone().unwrap_or_default().trim().to_string(),
        )),
        Kind::Entry(_) => None,
    };
    let r = run(
        &s,
        Command::Transfer {
            from: from.category(),
            from_slug: ch.entry.clone().unwrap_or_default(),
            from_part: if from == Kind::Wardrobe {
                ch.part.clone()
            } else {
                None
            },
            to: to.category(),
            doc: t.doc,
            into_wardrobe,
            unmapped: unmapped.clone(),
        },
    )
    .await;
    match r {
        Ok(o) => {
            let slug = o
                .events
                .iter()
                .find_map(|e| match e.event() {
                    crate::store::event::Event::EntryTransferred { to_slug, .. } => {
                        Some(to_slug.clone())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            let d = to.category().desc();
            let mut msg = match to {
                Kind::Wardrobe => format!("The outfit joined the wardrobe of {slug}"),
                Kind::Entry(_) => format!("Made the {} '{slug}'", d.singular),
            };
            if !unmapped.is_empty() {
                msg.push_str(&format!(
                    "; not carried over (still in the source): {}",
                    unmapped.join(", ")
                ));
            }
            Redirect::to(&with_flash(
                &format!("/{}/{slug}/edit", d.singular),
                true,
                &msg,
            ))
            .into_response()
        }
        Err((_, e)) => Redirect::to(&with_flash(&back, false, &e)).into_response(),
    }
}

/// A sentence's first letter in capitals.
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// "a look", "an outfit", "an action".
fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_and_kinds_read_as_sentences() {
        assert_eq!(
            capitalised("a style becomes a scene's theme"),
            "A style becomes a scene's theme"
        );
        assert_eq!(capitalised(""), "");
        for (noun, want) in [
            ("outfit", "an outfit"),
            ("action", "an action"),
            ("look", "a look"),
            (
                "character's wardrobe outfit",
                "a character's wardrobe outfit",
            ),
        ] {
            assert_eq!(with_article(noun), want);
        }
    }

    use super::*;

    #[test]
    fn outfit_names_are_plain() {
        for ok in ["maid", "Summer 2", "battle-ready", "ünïcode"] {
            assert!(outfit_name_ok(ok), "{ok}");
        }
        for bad in ["", "  ", "a.b", "a/b", &"x".repeat(61)] {
            assert!(!outfit_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn every_rule_starts_from_an_offered_kind() {
        let s = sources();
        assert!(RULES.iter().all(|r| s.contains(&r.from)));
        assert_eq!(s[0], Kind::Wardrobe);
    }
}

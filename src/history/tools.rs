//! The history command-line tools: `gaze events`, `audit`, `history`, `restore`, `export`,
//! `import` and `verify`. With the server stopped they open the ledger themselves; while a
//! gaze holds it (redb lets one process open it), they ask that gaze's HTTP API instead, found
//! by `--url` / `GAZE_URL`, else by the `gaze.url` it writes beside its ledger, else at
//! http://127.0.0.1:5000. Both ways print the same thing.

use super::{View, archive, audit, entry, log, verify};
use crate::cli::{
    AuditArgs, EventsArgs, ExportArgs, HistoryArgs, ImportArgs, LedgerArgs, RestoreArgs,
    VerifyArgs, ledger_file,
};
use crate::handle::{Handle, Paths, Request};
use crate::library::category::{Category, is_slug};
use crate::library::projection::Library;
use crate::store::event::{Origin, Stored};
use crate::store::ledger::{Ledger, LedgerError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// A running gaze's API.
pub struct Remote {
    url: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Remote {
    fn new(url: &str) -> Result<Remote, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Remote {
            url: url.trim_end_matches('/').to_string(),
            rt,
            http,
        })
    }

    fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        self.rt.block_on(async {
            let resp = req
                .send()
                .await
                .map_err(|e| format!("cannot reach the running gaze at {}: {e}", self.url))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if status.is_success() {
                Ok(v)
            } else {
                Err(v["error"].as_str().map_or_else(
                    || format!("the server answered {status}: {v}"),
                    String::from,
                ))
            }
        })
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        self.send(self.http.get(format!("{}{path}", self.url)))
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body))
    }

    /// Copies a response body to `out` as it arrives.
    fn stream(&self, path: &str, out: &mut dyn Write) -> Result<(), String> {
        self.rt.block_on(async {
            let mut resp = self
                .http
                .get(format!("{}{path}", self.url))
                .send()
                .await
                .map_err(|e| format!("cannot reach the running gaze at {}: {e}", self.url))?;
            if !resp.status().is_success() {
                return Err(format!("the server answered {}", resp.status()));
            }
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                out.write_all(&chunk).map_err(|e| e.to_string())?;
            }
            out.flush().map_err(|e| e.to_string())
        })
    }
}

/// How a tool reaches the ledger.
pub enum Access {
    Local(Ledger),
    Remote(Remote),
}

/// The URL a running gaze noted beside the ledger it holds (`gaze.url`).
fn url_of_server(ledger: &Path) -> String {
    std::fs::read_to_string(crate::app::server_url_file(ledger))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:5000".to_string())
}

/// Opens the ledger, or finds the server that holds it.
pub fn access(args: &LedgerArgs) -> Result<Access, String> {
    if let Some(url) = &args.url {
        return Remote::new(url).map(Access::Remote);
    }
    let file = args.file();
    if !file.exists() {
        return Err(format!(
            "no ledger at {} (pass --ledger, or --url for a running gaze)",
            file.display()
        ));
    }
    match Ledger::open(&file) {
        Ok(l) => Ok(Access::Local(l)),
        Err(LedgerError::Locked(_)) => Remote::new(&url_of_server(&file)).map(Access::Remote),
        Err(e) => Err(e.to_string()),
    }
}

fn library(ledger: &Ledger) -> Result<Library, String> {
    crate::store::snapshot::load(ledger, u64::MAX)
        .map(|(lib, _)| lib)
        .map_err(|e| e.to_string())
}

/// Writes a line to standard output; a closed pipe (`| head`) ends the tool quietly.
fn out(line: &str) -> Result<(), String> {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{line}").map_err(|_| "standard output closed".to_string())
}

fn pretty(v: &Value) -> Result<(), String> {
    out(&serde_json::to_string_pretty(v).unwrap_or_default())
}

fn query_string(q: &[(&str, String)]) -> String {
    let enc = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    q.iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---- events ----------------------------------------------------------------------------

fn events_query(a: &EventsArgs) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    let mut put = |k: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    };
    put("type", &a.kinds);
    put("origin", &a.origin);
    put("category", &a.category);
    put("slug", &a.slug);
    put("job", &a.job);
    put("since", &a.since);
    put("until", &a.until);
    if let Some(x) = a.after {
        q.push(("after", x.to_string()));
    }
    if let Some(x) = a.before {
        q.push(("before", x.to_string()));
    }
    q.push(("limit", a.limit.to_string()));
    if a.newest {
        q.push(("order", "desc".into()));
    }
    q
}

/// One summary line for an event as the API gives it.
pub fn event_line(e: &Value) -> String {
    let about = match (
        e["category"].as_str(),
        e["slug"].as_str(),
        e["job"].as_str(),
    ) {
        (Some(c), Some(s), _) => format!("{c}/{s}"),
        (_, _, Some(j)) => format!("job {j}"),
        (Some(c), None, _) => c.to_string(),
        _ => match e["type"].as_str() {
            Some("restored") => format!("to seq {}", text(&e["to_seq"])),
            Some("undeleted") => format!(
                "{}/{}",
                text(&e["entry"]["category"]),
                text(&e["entry"]["slug"])
            ),
            _ => String::new(),
        },
    };
    let detail = e["error"]
        .as_str()
        .or(e["reason"].as_str())
        .map(|d| format!("  {d}"))
        .unwrap_or_default();
    format!(
        "{:>8}  {}  {:<9} {:<22} {about}{detail}",
        text(&e["seq"]),
        super::time::format(e["at"].as_u64().unwrap_or(0)),
        text(&e["origin"]),
        text(&e["type"]),
    )
}

pub fn events(a: &EventsArgs) -> Result<(), String> {
    let q = events_query(a);
    let page = match access(&a.at)? {
        Access::Local(ledger) => {
            let map: HashMap<String, String> =
                q.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            let (filter, paging) = log::Filter::from_query(&map)?;
            let page = log::query(&ledger, &filter, &paging)?;
            json!({
                "events": page.events.iter().map(Stored::to_json).collect::<Vec<_>>(),
                "newer": page.newer.map(|x| json!({"after": x})),
                "older": page.older.map(|x| json!({"before": x})),
            })
        }
        Access::Remote(r) => r.get(&format!("/api/events?{}", query_string(&q)))?,
    };
    for e in page["events"].as_array().into_iter().flatten() {
        if a.json {
            out(&e.to_string())?;
        } else {
            out(&event_line(e))?;
        }
    }
    if let Some(n) = page["newer"]["after"].as_u64() {
        eprintln!("newer events: --after {n}");
    }
    if let Some(n) = page["older"]["before"].as_u64() {
        eprintln!("older events: --before {n}");
    }
    Ok(())
}

// ---- audit -----------------------------------------------------------------------------

/// The job a target names: a job id, a PNG file GAZE saved (its `gaze` text chunk), or an
/// image path (`…/<job>_<n>.png`).
fn job_of(target: &str, lib: Option<&Library>) -> Result<u128, String> {
    if let Ok(id) = log::parse_job(target) {
        return Ok(id);
    }
    let p = Path::new(target);
    if p.is_file()
        && let Ok(bytes) = std::fs::read(p)
        && let Ok(chunks) = crate::jobs::png::read_text(&bytes)
        && let Some((_, meta)) = chunks.iter().find(|(k, _)| k == "gaze")
        && let Some(job) = serde_json::from_str::<Value>(meta)
            .ok()
            .and_then(|v| v["job"].as_str().map(String::from))
    {
        return log::parse_job(&job);
    }
    match lib {
        Some(lib) => audit::job_of_image(lib, target),
        None => super::stale::job_of_image(target)
            .ok_or_else(|| format!("'{target}' is not a job id or an image a job made")),
    }
}

pub fn audit(a: &AuditArgs) -> Result<(), String> {
    match access(&a.at)? {
        Access::Local(ledger) => {
            let lib = library(&ledger)?;
            let v = View {
                ledger: &ledger,
                lib: &lib,
            };
            let job = job_of(&a.target, Some(&lib))?;
            match &a.diff {
                Some(other) => {
                    let other = job_of(other, Some(&lib))?;
                    let ra: Value =
                        serde_json::from_str(&v.job_spec(job)?.recipe).unwrap_or(Value::Null);
                    let rb: Value =
                        serde_json::from_str(&v.job_spec(other)?.recipe).unwrap_or(Value::Null);
                    pretty(&audit::diff_recipes(&ra, &rb))
                }
                None => pretty(&audit::audit(&v, job)?),
            }
        }
        Access::Remote(r) => {
            let id = |t: &str| job_of(t, None).map(crate::store::event::ulid_text);
            match &a.diff {
                Some(other) => pretty(&r.get(&format!(
                    "/api/audit/diff?{}",
                    query_string(&[("a", id(&a.target)?), ("b", id(other)?)])
                ))?),
                None => pretty(&r.get(&format!("/api/audit/jobs/{}", id(&a.target)?))?),
            }
        }
    }
}

// ---- one entry's history ---------------------------------------------------------------

pub fn history(a: &HistoryArgs) -> Result<(), String> {
    let c = Category::parse(&a.category).ok_or_else(|| {
        let keys: Vec<&str> = Category::ALL.iter().map(|c| c.key()).collect();
        format!(
            "unknown category '{}' (known: {})",
            a.category,
            keys.join(" ")
        )
    })?;
    if !is_slug(&a.slug) {
        return Err(format!("'{}' is not a slug", a.slug));
    }
    let slug = &a.slug;
    let access = access(&a.at)?;
    if let Some(seq) = a.at_seq {
        let t = match &access {
            Access::Local(l) => entry::text_at(l, c, slug, seq)?,
            Access::Remote(r) => {
                r.get(&format!("/api/history/{}/{slug}?at={seq}", c.key()))?["text"]
                    .as_str()
                    .map(String::from)
            }
        };
        return match t {
            Some(t) => out(t.trim_end()),
            None => Err(format!(
                "{} '{slug}' was not in the library right after seq {seq}",
                c.desc().singular
            )),
        };
    }
    if let Some(d) = &a.diff {
        let [x, y] = d[..] else {
            return Err("--diff takes two seqs: A,B".into());
        };
        let fields = match &access {
            Access::Local(l) => json!(entry::diff_versions(l, c, slug, x, y)?),
            Access::Remote(r) => r
                .get(&format!("/api/history/{}/{slug}/diff?a={x}&b={y}", c.key()))?["fields"]
                .clone(),
        };
        if a.json {
            return pretty(&fields);
        }
        for f in fields.as_array().into_iter().flatten() {
            let path = text(&f["path"]);
            match f["tags"].as_object() {
                Some(t) => {
                    let list = |k: &str| {
                        t.get(k)
                            .and_then(Value::as_array)
                            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default()
                    };
                    out(&format!(
                        "{path}: - [{}]  + [{}]  (kept [{}])",
                        list("removed"),
                        list("added"),
                        list("kept")
                    ))?;
                }
                None => out(&format!(
                    "{path}: {} → {}",
                    text(&f["before"]),
                    text(&f["after"])
                ))?,
            }
        }
        return Ok(());
    }
    let page = match &access {
        Access::Local(l) => {
            let v = entry::versions(l, c, slug, a.before, a.limit as usize)?;
            json!({
                "total": v.total,
                "items": v.items.iter().map(|x| json!({
                    "seq": x.seq, "at": x.at, "origin": x.origin, "type": x.kind,
                    "name": x.name, "text_changed": x.text_changed, "removed": x.removed,
                    "cover": x.cover,
                })).collect::<Vec<_>>(),
                "older": v.older.map(|b| json!({"before": b})),
            })
        }
        Access::Remote(r) => {
            let mut q = vec![("limit", a.limit.to_string())];
            if let Some(b) = a.before {
                q.push(("before", b.to_string()));
            }
            r.get(&format!(
                "/api/history/{}/{slug}?{}",
                c.key(),
                query_string(&q)
            ))?
        }
    };
    if a.json {
        return pretty(&page);
    }
    if page["total"].as_u64() == Some(0) {
        return Err(format!("no {} '{slug}' in the ledger", c.desc().singular));
    }
    for x in page["items"].as_array().into_iter().flatten() {
        let what = if x["removed"] == true {
            "removed"
        } else if x["text_changed"] == true {
            "text"
        } else {
            ""
        };
        out(&format!(
            "{:>8}  {}  {:<9} {:<22} {:<7} {}",
            text(&x["seq"]),
            super::time::format(x["at"].as_u64().unwrap_or(0)),
            text(&x["origin"]),
            text(&x["type"]),
            what,
            text(&x["name"])
        ))?;
    }
    if let Some(b) = page["older"]["before"].as_u64() {
        eprintln!("older versions: --before {b}");
    }
    Ok(())
}

// ---- restore ---------------------------------------------------------------------------

/// The preview of a restore in words.
pub fn describe_changes(changes: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let docs = |k: &str| {
        changes["documents"][k]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    for (k, label) in [
        ("added", "put back"),
        ("changed", "changed"),
        ("removed", "taken out"),
    ] {
        for d in docs(k) {
            let fields: Vec<String> = d["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| text(&f["path"]))
                .collect();
            let fields = if fields.is_empty() {
                String::new()
            } else {
                format!(" (fields: {})", fields.join(", "))
            };
            lines.push(format!(
                "  {label:<9} {}/{} {}{fields}",
                text(&d["category"]),
                text(&d["slug"]),
                text(&d["file"])
            ));
        }
    }
    for c in changes["covers"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  cover     {}/{}: {} → {}",
            text(&c["category"]),
            text(&c["slug"]),
            text(&c["from"]),
            text(&c["to"])
        ));
    }
    for d in changes["default_fields"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  defaults  {}/{}: {} → {}",
            text(&d["category"]),
            text(&d["slug"]),
            d["from"],
            d["to"]
        ));
    }
    for p in changes["preferences"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  preference {} {}: {} → {}",
            text(&p["scope"]),
            text(&p["key"]),
            p["from"],
            p["to"]
        ));
    }
    if !changes["settings"].is_null() {
        lines.push(format!(
            "  settings: {} → {}",
            changes["settings"]["from"], changes["settings"]["to"]
        ));
    }
    if !changes["default_checkpoint"].is_null() {
        lines.push(format!(
            "  default checkpoint: {} → {}",
            changes["default_checkpoint"]["from"], changes["default_checkpoint"]["to"]
        ));
    }
    lines
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(n) if n > 0 => matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"),
        _ => false,
    }
}

pub fn restore(a: &RestoreArgs) -> Result<(), String> {
    let to = a.to;
    match access(&a.at)? {
        Access::Remote(r) => {
            let preview = r.get(&format!("/api/restore/preview?to_seq={to}"))?;
            if preview["empty"] == true {
                out(&format!(
                    "The library already is as it was right after seq {to}; nothing to restore."
                ))?;
                return Ok(());
            }
            out(&format!("Restoring to seq {to} changes:"))?;
            for l in describe_changes(&preview["changes"]) {
                out(&l)?;
            }
            if !a.yes && !confirm("Restore?") {
                out("Not restored.")?;
                return Ok(());
            }
            let done = r.post("/api/restore", &json!({"to_seq": to}))?;
            report_restore(&done)
        }
        Access::Local(ledger) => {
            drop(ledger);
            if !a.data.is_dir() {
                return Err(format!(
                    "no library folder at {} (pass --data)",
                    a.data.display()
                ));
            }
            let h = Handle::open(
                &a.at.file(),
                Paths {
                    data: a.data.clone(),
                    uploads: PathBuf::from("static/uploads"),
                    loras: None,
                    checkpoints: None,
                    workflow: None,
                },
            )
            .map_err(|e| e.to_string())?;
            // Edits made on disk since the server stopped go into the ledger first, so the
            // restore never overwrites them unseen.
            h.execute(Origin::Cli, Request::Rescan(Category::ALL.to_vec()))
                .map_err(|e| e.to_string())?;
            let (event, before) = h.restore_plan(to).map_err(|e| e.to_string())?;
            let Some(event) = event else {
                out(&format!(
                    "The library already is as it was right after seq {to}; nothing to restore."
                ))?;
                return Ok(());
            };
            out(&format!("Restoring to seq {to} changes:"))?;
            for l in describe_changes(&super::restore::summary(&before, &event)) {
                out(&l)?;
            }
            if !a.yes && !confirm("Restore?") {
                out("Not restored.")?;
                return Ok(());
            }
            let o = h
                .execute(Origin::Cli, Request::Restore { to_seq: to })
                .map_err(|e| e.to_string())?;
            h.snapshot_now();
            let seq = o.last_seq();
            report_restore(&json!({"seq": seq, "to_seq": to,
                                   "undo": seq.map(|s| json!({"to_seq": s - 1})),
                                   "warnings": o.warnings}))
        }
    }
}

fn report_restore(done: &Value) -> Result<(), String> {
    for w in done["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", text(w));
    }
    match done["seq"].as_u64() {
        Some(seq) => out(&format!(
            "Restored to seq {} (event {seq}). Undo with: gaze restore --to {}",
            text(&done["to_seq"]),
            seq - 1
        )),
        None => out("Nothing changed."),
    }
}

// ---- export, import, verify ------------------------------------------------------------

pub fn export(a: &ExportArgs) -> Result<(), String> {
    let mut sink: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        )),
    };
    match access(&a.at)? {
        Access::Local(ledger) => {
            let n = archive::export(&ledger, a.after, a.fields, &mut sink)?;
            eprintln!("exported {n} events");
        }
        Access::Remote(r) => {
            let q = format!("/api/export?after={}&fields={}", a.after, a.fields);
            r.stream(&q, &mut sink)?;
            eprintln!("exported from the running gaze");
        }
    }
    sink.flush().map_err(|e| e.to_string())
}

pub fn import(a: &ImportArgs) -> Result<(), String> {
    let file = ledger_file(a.ledger.clone());
    let existed = file.exists();
    let ledger = Ledger::open(&file).map_err(|e| e.to_string())?;
    let input: Box<dyn BufRead + Send> = if a.file.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&a.file).map_err(|e| format!("{}: {e}", a.file.display()))?,
        ))
    };
    let n = match archive::import(&ledger, input) {
        Ok(n) => n,
        Err(e) => {
            drop(ledger);
            if !existed {
                let _ = std::fs::remove_file(&file);
            }
            return Err(format!("import failed: {e}"));
        }
    };
    let lib = library(&ledger)?;
    if let Err(e) = ledger.write_snapshot(lib.seq, &lib.to_snapshot()) {
        eprintln!("warning: no snapshot written ({e}); the first start replays every event");
    }
    out(&format!(
        "imported {n} events into {} ({} documents)",
        file.display(),
        lib.document_count()
    ))?;
    if let Some(data) = &a.data {
        let (mut written, mut differ) = (0, 0);
        for c in Category::ALL {
            for e in lib.shelf(c).docs.values() {
                let path = crate::library::files::category_dir(data, c).join(&e.file);
                match std::fs::read(&path) {
                    Ok(b) if b == e.json.as_bytes() => {}
                    Ok(_) => {
                        differ += 1;
                        eprintln!(
                            "kept {} (it differs from the ledger's; the next start syncs it)",
                            path.display()
                        );
                    }
                    Err(_) => {
                        crate::library::files::write_atomic(&path, e.json.as_bytes())
                            .map_err(|err| format!("{}: {err}", path.display()))?;
                        written += 1;
                    }
                }
            }
        }
        out(&format!(
            "wrote {written} files into {}; {differ} already there differ",
            data.display()
        ))?;
    }
    Ok(())
}

pub fn verify(a: &VerifyArgs) -> Result<(), String> {
    let report = match access(&a.at)? {
        Access::Local(ledger) => verify::verify(&ledger, &a.data, None).to_json(),
        Access::Remote(r) => r.get("/api/verify")?,
    };
    if a.json {
        pretty(&report)?;
    } else {
        out(&format!(
            "{} events, {} documents, {} snapshots",
            text(&report["events"]),
            text(&report["documents"]),
            text(&report["snapshots"])
        ))?;
        for n in report["notes"].as_array().into_iter().flatten() {
            out(&format!("note: {}", text(n)))?;
        }
        for p in report["problems"].as_array().into_iter().flatten() {
            out(&format!("PROBLEM: {}", text(p)))?;
        }
    }
    let problems = report["problems"].as_array().map_or(0, Vec::len);
    if problems == 0 {
        if !a.json {
            out("ok")?;
        }
        Ok(())
    } else {
        Err(format!("verify found {problems} problem(s)"))
    }
}

//! What a LoRA file says about itself, for bulk runs: its name, the `.json` sidecar (A1111 /
//! Civitai-helper style), the `.civitai.info` sidecar (Civitai's model-version JSON), and the
//! safetensors header's `__metadata__` (kohya's `ss_*` keys, `modelspec.*`). Everything is
//! optional and size-limited; unreadable parts are skipped.

use crate::library::category::Category;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;

/// The largest sidecar or safetensors header read.
const MAX_META_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoraInfo {
    /// The file relative to the LoRA root (the `lora_name` entries use).
    pub file: String,
    /// The file name without folder and extension.
    pub stem: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub triggers: Vec<String>,
    pub base_model: Option<String>,
    /// The most frequent tags of the training captions.
    pub training_tags: Vec<String>,
    /// Which sidecars were read.
    pub sources: Vec<&'static str>,
}

fn read_limited(path: &Path) -> Option<Vec<u8>> {
    let f = std::fs::File::open(path).ok()?;
    if f.metadata().ok()?.len() > MAX_META_BYTES {
        return None;
    }
    let mut buf = Vec::new();
    f.take(MAX_META_BYTES).read_to_end(&mut buf).ok()?;
    Some(buf)
}

fn read_json(path: &Path) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&read_limited(path)?) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// The `__metadata__` map of a safetensors file (all values are strings there).
pub fn safetensors_metadata(path: &Path) -> Option<Map<String, Value>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n == 0 || n > MAX_META_BYTES {
        return None;
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).ok()?;
    match serde_json::from_slice::<Value>(&header).ok()? {
        Value::Object(mut m) => match m.remove("__metadata__") {
            Some(Value::Object(meta)) => Some(meta),
            _ => None,
        },
        _ => None,
    }
}

/// Text without HTML tags and with runs of whitespace collapsed, at most `max` characters.
fn plain(html: &str, max: usize) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let text = words.join(" ").replace("&amp;", "&").replace("&nbsp;", " ");
    if text.chars().count() > max {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn push_triggers(into: &mut Vec<String>, s: &str) {
    for t in s.split(',') {
        let t = t.trim();
        if !t.is_empty() && !into.iter().any(|x| x == t) {
            into.push(t.to_string());
        }
    }
}

/// Reads what is known about `root/rel`.
pub fn read(root: &Path, rel: &str) -> LoraInfo {
    let path = root.join(rel);
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s).to_string();
    let mut info = LoraInfo {
        file: rel.to_string(),
        stem: stem.clone(),
        ..LoraInfo::default()
    };
    let sibling = |ext: &str| path.with_file_name(format!("{stem}{ext}"));
    if let Some(m) = read_json(&sibling(".civitai.info")) {
        info.sources.push("civitai.info");
        let model = m.get("model").and_then(Value::as_object);
        info.title = model
            .and_then(|mm| text(mm, "name"))
            .or_else(|| text(&m, "name"));
        if let Some(words) = m.get("trainedWords").and_then(Value::as_array) {
            for w in words.iter().filter_map(Value::as_str) {
                push_triggers(&mut info.triggers, w);
            }
        }
        info.base_model = text(&m, "baseModel");
        info.description = text(&m, "description")
            .or_else(|| model.and_then(|mm| text(mm, "description")))
            .map(|d| plain(&d, 600));
    }
    if let Some(m) = read_json(&sibling(".json")) {
        info.sources.push("json");
        if let Some(t) = text(&m, "activation text") {
            push_triggers(&mut info.triggers, &t);
        }
        if info.description.is_none() {
            info.description = text(&m, "description").map(|d| plain(&d, 600));
        }
        if info.base_model.is_none() {
            info.base_model = text(&m, "sd version");
        }
    }
    if let Some(m) = safetensors_metadata(&path) {
        info.sources.push("safetensors");
        if info.title.is_none() {
            info.title = text(&m, "modelspec.title").or_else(|| text(&m, "ss_output_name"));
        }
        if let Some(t) = text(&m, "modelspec.trigger_phrase") {
            push_triggers(&mut info.triggers, &t);
        }
        if info.description.is_none() {
            info.description = text(&m, "modelspec.description").map(|d| plain(&d, 600));
        }
        if info.base_model.is_none() {
            info.base_model = text(&m, "ss_base_model_version");
        }
        if let Some(freq) = text(&m, "ss_tag_frequency")
            .and_then(|f| serde_json::from_str::<Map<String, Value>>(&f).ok())
        {
            let mut counts: std::collections::HashMap<String, u64> = Default::default();
            for set in freq.values().filter_map(Value::as_object) {
                for (tag, n) in set {
                    *counts.entry(tag.trim().to_string()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
            let mut list: Vec<(String, u64)> =
                counts.into_iter().filter(|(t, _)| !t.is_empty()).collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            info.training_tags = list.into_iter().take(20).map(|(t, _)| t).collect();
        }
    }
    info
}

/// The request a bulk run sends the model for one LoRA file.
pub fn request_text(c: Category, info: &LoraInfo) -> String {
    let singular = c.desc().singular;
    let article = if singular.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    let mut s = format!(
        "Create {article} {singular} entry for the LoRA file \"{}\". Set lora.lora_name to exactly \"{}\".\n\
         File name: {}\n",
        info.file, info.file, info.stem
    );
    if let Some(t) = &info.title {
        s.push_str(&format!("Model name: {t}\n"));
    }
    if !info.triggers.is_empty() {
        s.push_str(&format!(
            "Trigger words (use them as lora.lora_triggers): {}\n",
            info.triggers.join(", ")
        ));
    }
    if let Some(b) = &info.base_model {
        s.push_str(&format!("Base model: {b}\n"));
    }
    if let Some(d) = &info.description {
        s.push_str(&format!("Description: {d}\n"));
    }
    if !info.training_tags.is_empty() {
        s.push_str(&format!(
            "Most frequent tags in its training captions: {}\n",
            info.training_tags.join(", ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file with only a header (enough for metadata).
    pub fn write_safetensors(path: &Path, meta: &Value) {
        let header = serde_json::json!({"__metadata__": meta}).to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn all_three_sidecars_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("Illustrious/Clothing");
        std::fs::create_dir_all(&folder).unwrap();
        write_safetensors(
            &folder.join("maid_v2.safetensors"),
            &serde_json::json!({
                "ss_output_name": "maid_v2",
                "ss_base_model_version": "sdxl_base_v1-0",
                "ss_tag_frequency": "{\"10_maid\": {\"maid\": 40, \"apron\": 35, \" frills\": 12}, \"5_x\": {\"apron\": 10}}"
            }),
        );
        std::fs::write(
            folder.join("maid_v2.civitai.info"),
            r#"{"name": "v2", "model": {"name": "Victorian Maid"}, "trainedWords": ["vmaid, maid apron", "vmaid"],
                "baseModel": "Illustrious", "description": "<p>A <b>classic</b> maid&nbsp;dress.</p>"}"#,
        )
        .unwrap();
        std::fs::write(
            folder.join("maid_v2.json"),
            r#"{"activation text": "frilled maid", "sd version": "SDXL"}"#,
        )
        .unwrap();
        let info = read(dir.path(), "Illustrious/Clothing/maid_v2.safetensors");
        assert_eq!(info.stem, "maid_v2");
        assert_eq!(info.title.as_deref(), Some("Victorian Maid"));
        assert_eq!(info.triggers, ["vmaid", "maid apron", "frilled maid"]);
        assert_eq!(info.base_model.as_deref(), Some("Illustrious"));
        assert_eq!(info.description.as_deref(), Some("A classic maid dress."));
        assert_eq!(info.training_tags, ["apron", "maid", "frills"]);
        assert_eq!(info.sources, ["civitai.info", "json", "safetensors"]);
        let req = request_text(Category::Outfits, &info);
        assert!(req.starts_with(
            "Create an outfit entry for the LoRA file \"Illustrious/Clothing/maid_v2.safetensors\""
        ));
        assert!(req.contains(
            "Trigger words (use them as lora.lora_triggers): vmaid, maid apron, frilled maid"
        ));
        assert!(req.contains("training captions: apron, maid, frills"));
    }

    #[test]
    fn a_bare_or_broken_file_gives_just_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.safetensors"),
            b"\xff\xff\xff\xff\xff\xff\xff\xffjunk",
        )
        .unwrap();
        std::fs::write(dir.path().join("x.civitai.info"), b"not json").unwrap();
        let info = read(dir.path(), "x.safetensors");
        assert_eq!(info.stem, "x");
        assert!(info.sources.is_empty() && info.triggers.is_empty());
        assert!(read(dir.path(), "missing.safetensors").sources.is_empty());
    }
}

//! Model files on disk: checkpoints under the checkpoint root (`Illustrious/`, `Noob/`), which
//! get default documents when no JSON describes them, and LoRA files listed per category folder.

use crate::library::category::Category;
use crate::library::command::Command;
use crate::library::projection::{Entry, Library};
use crate::store::event::Source;
use serde_json::{Map, Value, json};
use std::path::Path;

/// The checkpoint families the original scans.
pub const CHECKPOINT_FAMILIES: [&str; 2] = ["Illustrious", "Noob"];
const MODEL_EXTENSIONS: [&str; 3] = ["safetensors", "ckpt", "pt"];

fn is_model(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| MODEL_EXTENSIONS.contains(&ext))
}

/// Model files under `root/<sub>`, as `/`-separated paths relative to `root`, sorted.
fn list_under(root: &Path, sub: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(sub)];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let Ok(ft) = e.file_type() else { continue };
            let path = e.path();
            if ft.is_dir() {
                stack.push(path);
            } else if e.file_name().to_str().is_some_and(is_model)
                && let Ok(rel) = path.strip_prefix(root)
            {
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort_unstable();
    out
}

/// LoRA files for a category (seed: LoRA File Paths), relative to the LoRA root.
pub fn list_loras(root: &Path, c: Category) -> Vec<String> {
    c.desc()
        .lora_dir
        .map(|dir| list_under(root, dir))
        .unwrap_or_default()
}

/// Checkpoint files, relative to the checkpoint root.
pub fn list_checkpoints(root: &Path) -> Vec<String> {
    let mut all: Vec<String> = CHECKPOINT_FAMILIES
        .iter()
        .flat_map(|f| list_under(root, f))
        .collect();
    all.sort_unstable();
    all
}

/// The original's `_default_checkpoint_data()`: settings for a model with no JSON.
pub fn default_checkpoint_doc(path: &str) -> Map<String, Value> {
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .rsplit_once('.')
        .map_or(path, |(s, _)| s);
    let v = json!({
        "checkpoint_path": path,
        "checkpoint_name": stem,
        "base_positive": "anime",
        "base_negative": "text, logo",
        "steps": 25,
        "cfg": 5,
        "sampler_name": "euler_ancestral",
        "scheduler": "normal",
        "vae": "integrated"
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Create commands for checkpoint files that no document describes yet.
pub fn discover_checkpoints(lib: &Library, root: &Path) -> Vec<Command> {
    let known: std::collections::HashSet<&str> = lib
        .shelf(Category::Checkpoints)
        .docs
        .values()
        .map(|e| e.id.as_str())
        .collect();
    list_checkpoints(root)
        .into_iter()
        .filter(|p| !known.contains(p.as_str()))
        .filter(|p| {
            lib.get(Category::Checkpoints, &Category::Checkpoints.slug_of(p))
                .is_none()
        })
        .map(|p| Command::Create {
            category: Category::Checkpoints,
            doc: default_checkpoint_doc(&p),
            source: Source::Discovered,
        })
        .collect()
}

/// The LoRA file a document names, if any.
pub fn lora_name(e: &Entry) -> Option<String> {
    let data = e.data()?;
    let name = data.get("lora")?.get("lora_name")?.as_str()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loras_are_listed_per_category_folder_recursively() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in [
            "Illustrious/Looks/a.safetensors",
            "Illustrious/Looks/sub/b.safetensors",
            "Illustrious/Looks/readme.txt",
            "Illustrious/Clothing/c.safetensors",
        ] {
            std::fs::create_dir_all(r.join(f).parent().unwrap()).unwrap();
            std::fs::write(r.join(f), b"").unwrap();
        }
        assert_eq!(
            list_loras(r, Category::Characters),
            [
                "Illustrious/Looks/a.safetensors",
                "Illustrious/Looks/sub/b.safetensors"
            ]
        );
        assert_eq!(
            list_loras(r, Category::Outfits),
            ["Illustrious/Clothing/c.safetensors"]
        );
        assert!(list_loras(r, Category::Presets).is_empty());
        assert!(list_loras(r, Category::Scenes).is_empty());
    }

    #[test]
    fn default_checkpoint_settings_name_the_file() {
        let d = default_checkpoint_doc("Noob/model-v1.safetensors");
        assert_eq!(d["checkpoint_path"], "Noob/model-v1.safetensors");
        assert_eq!(d["checkpoint_name"], "model-v1");
        assert_eq!(d["steps"], 25);
        assert_eq!(d["vae"], "integrated");
    }
}

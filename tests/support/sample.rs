//! The bundled sample library as tests and benchmarks see it: its folder, and the model names
//! its documents use (so a ComfyUI stand-in can list exactly those).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The repository's `data/` folder.
pub fn sample_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Checkpoint paths, LoRA names and named VAEs used by the sample documents, sorted.
pub fn sample_models() -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut ckpts, mut loras, mut vaes) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for c in gaze::library::category::Category::ALL {
        let dir = sample_data().join(c.desc().dir);
        for f in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(doc) = serde_json::from_slice::<serde_json::Value>(
                &std::fs::read(f.path()).unwrap_or_default(),
            ) else {
                continue;
            };
            if let Some(x) = doc["checkpoint_path"].as_str() {
                ckpts.insert(x.to_string());
            }
            if let Some(x) = doc["lora"]["lora_name"].as_str().filter(|x| !x.is_empty()) {
                loras.insert(x.to_string());
            }
            if let Some(x) = doc["vae"]
                .as_str()
                .filter(|x| !x.is_empty() && *x != "integrated")
            {
                vaes.insert(x.to_string());
            }
        }
    }
    (
        ckpts.into_iter().collect(),
        loras.into_iter().collect(),
        vaes.into_iter().collect(),
    )
}

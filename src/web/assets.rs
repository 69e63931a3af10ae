//! Versioned URLs for the static assets (CSS, scripts, fonts, vendored libraries): each URL
//! carries a hash of the file's content (`/static/style.css?v=…`), so browsers may keep it
//! for a year (the guard marks versioned URLs immutable) and still see every change.

use std::collections::HashMap;
use std::path::Path;

/// Content hashes of the files under the static folder, taken at start-up (uploads excluded).
#[derive(Debug, Default)]
pub struct Assets {
    versions: HashMap<String, String>,
}

impl Assets {
    /// Hashes every file under `dir` except `uploads/`.
    pub fn scan(dir: &Path) -> Assets {
        let mut versions = HashMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(rel) = p.strip_prefix(dir) else {
                    continue;
                };
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel == "uploads" || rel.starts_with("uploads/") {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    let h = crate::store::event::content_hash(&bytes);
                    versions.insert(rel, format!("{:012x}", h & 0xffff_ffff_ffff));
                }
            }
        }
        Assets { versions }
    }

    /// `/static/<path>?v=<hash>` (without `?v=` for a file that was not there at start-up).
    pub fn url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match self.versions.get(path) {
            Some(v) => format!("/static/{path}?v={v}"),
            None => format!("/static/{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_change_with_content_and_skip_uploads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("js")).unwrap();
        std::fs::create_dir_all(dir.path().join("uploads/characters")).unwrap();
        std::fs::write(dir.path().join("style.css"), "a{}").unwrap();
        std::fs::write(dir.path().join("js/app.js"), "1").unwrap();
        std::fs::write(dir.path().join("uploads/characters/x.png"), "p").unwrap();
        let a = Assets::scan(dir.path());
        let css = a.url("style.css");
        assert!(css.starts_with("/static/style.css?v="), "{css}");
        assert!(a.url("/js/app.js").starts_with("/static/js/app.js?v="));
        assert_eq!(
            a.url("uploads/characters/x.png"),
            "/static/uploads/characters/x.png"
        );
        assert_eq!(a.url("missing.js"), "/static/missing.js");
        std::fs::write(dir.path().join("style.css"), "b{}").unwrap();
        assert_ne!(Assets::scan(dir.path()).url("style.css"), css);
    }
}

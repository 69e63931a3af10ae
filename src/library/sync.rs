//! Reading `data/` for sync: category folders and single files become observations (the
//! decision is `command::decide`), and changed paths are classified into category files. It
//! does only file IO and knows nothing of the handle; `watcher` drives it.

use crate::library::category::Category;
use crate::library::command::{FileContent, Observation};
use crate::library::files;
use crate::store::event::Origin;
use std::path::Path;

/// Files larger than this are refused rather than read (a library document is a few KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;

fn is_document_name(name: &str) -> bool {
    files::is_plain_file_name(name) && name.ends_with(".json")
}

/// Reads one file for a sync, refusing what is not a regular file or is too big.
pub fn read_file(path: &Path) -> FileContent {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileContent::Missing,
        Err(e) => return FileContent::Unreadable(e.to_string()),
        Ok(m) if !m.is_file() => return FileContent::Unreadable("not a regular file".into()),
        Ok(m) if m.len() > MAX_DOCUMENT_BYTES => {
            return FileContent::Unreadable(format!(
                "{} bytes is more than the {MAX_DOCUMENT_BYTES}-byte limit",
                m.len()
            ));
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(b) => FileContent::Bytes(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileContent::Missing,
        Err(e) => FileContent::Unreadable(e.to_string()),
    }
}

/// Every `*.json` file directly in the category's folder, sorted by name, except `skip`.
pub fn observe_category(data: &Path, c: Category, skip: &[String]) -> Vec<Observation> {
    let dir = files::category_dir(data, c);
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_document_name(n) && !skip.contains(n))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
        .into_iter()
        .map(|file| Observation {
            content: read_file(&dir.join(&file)),
            file,
        })
        .collect()
}

/// The named files of one category (names that are not plain `*.json` names are ignored).
pub fn observe_files(data: &Path, c: Category, names: &[String]) -> Vec<Observation> {
    let dir = files::category_dir(data, c);
    let mut names: Vec<&String> = names.iter().filter(|n| is_document_name(n)).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|file| Observation {
            content: read_file(&dir.join(file)),
            file: file.clone(),
        })
        .collect()
}

/// A library read straight from `data/`, with no ledger (for read-only tools such as
/// `gaze preview`, which must work while a server holds the ledger).
pub fn library_from_disk(data: &Path) -> crate::library::projection::Library {
    let mut lib = crate::library::projection::Library::default();
    for c in Category::ALL {
        let cmd = crate::library::command::Command::Sync {
            category: c,
            observations: observe_category(data, c, &[]),
            complete: true,
        };
        let events = crate::library::command::decide(&lib, &cmd).unwrap_or_default();
        for event in events {
            let seq = lib.seq + 1;
            lib.apply(&crate::store::event::Stored {
                seq,
                envelope: crate::store::event::Envelope {
                    id: u128::from(seq),
                    at: 0,
                    origin: Origin::Cli,
                    event,
                },
            });
        }
    }
    lib
}

/// Maps a changed path to the category file it is, if it is one.
pub fn classify(data: &Path, path: &Path) -> Option<(Category, String)> {
    let rel = path.strip_prefix(data).ok()?;
    let mut parts = rel.components();
    let dir = parts.next()?.as_os_str().to_str()?;
    let name = parts.next()?.as_os_str().to_str()?;
    if parts.next().is_some() || !is_document_name(name) {
        return None;
    }
    Some((Category::from_dir(dir)?, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_accepts_only_category_documents() {
        let data = Path::new("/d");
        assert_eq!(
            classify(data, Path::new("/d/clothing/maid.json")),
            Some((Category::Outfits, "maid.json".into()))
        );
        for p in [
            "/d/clothing/.maid.json.1.tmp",
            "/d/clothing/a/b.json",
            "/d/unknown/x.json",
            "/d/characters/x.txt",
            "/e/characters/x.json",
        ] {
            assert_eq!(classify(data, Path::new(p)), None, "{p}");
        }
    }
}

//! Uploaded and generated images under the uploads root: recognising real images by their
//! bytes, the size limit, and the `<category>/<slug>/` layout with names the app chooses.

use crate::library::category::{Category, is_slug};
use std::path::{Path, PathBuf};

/// The largest cover image accepted.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// The image type of `bytes` by signature, as a file extension.
pub fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("jpg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("gif")
    } else {
        None
    }
}

/// Checks an upload and returns its extension.
pub fn check_image(bytes: &[u8]) -> Result<&'static str, String> {
    if bytes.is_empty() {
        return Err("the upload is empty".into());
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!(
            "the image is {} bytes; the limit is {MAX_IMAGE_BYTES}",
            bytes.len()
        ));
    }
    image_kind(bytes).ok_or_else(|| "the upload is not a PNG, JPEG, WebP or GIF image".into())
}

/// The folder for an entry's images. The slug must already be a well-formed slug.
pub fn entry_dir(uploads: &Path, c: Category, slug: &str) -> Option<PathBuf> {
    is_slug(slug).then(|| uploads.join(c.key()).join(slug))
}

/// Saves a cover and returns its path relative to the static root (`uploads/…`).
pub fn save_cover(uploads: &Path, c: Category, slug: &str, bytes: &[u8]) -> Result<String, String> {
    let ext = check_image(bytes)?;
    let dir = entry_dir(uploads, c, slug).ok_or("bad slug")?;
    let name = format!(
        "cover_{}.{ext}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    crate::library::files::write_atomic(&dir.join(&name), bytes)
        .map_err(|e| format!("could not save the image: {e}"))?;
    Ok(format!("uploads/{}/{slug}/{name}", c.key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(image_kind(b"\x89PNG\r\n\x1a\nrest"), Some("png"));
        assert_eq!(image_kind(&[0xff, 0xd8, 0xff, 0xe0]), Some("jpg"));
        assert_eq!(image_kind(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(image_kind(b"GIF89a.."), Some("gif"));
        assert_eq!(image_kind(b"<svg onload=alert(1)>"), None);
        assert!(check_image(b"").is_err());
        assert!(check_image(&vec![0u8; MAX_IMAGE_BYTES + 1]).is_err());
    }

    #[test]
    fn covers_land_under_category_and_slug() {
        let dir = tempfile::tempdir().unwrap();
        let rel = save_cover(dir.path(), Category::Scenes, "beach", b"GIF89a..").unwrap();
        assert!(rel.starts_with("uploads/scenes/beach/cover_") && rel.ends_with(".gif"));
        assert!(entry_dir(dir.path(), Category::Scenes, "../x").is_none());
    }
}

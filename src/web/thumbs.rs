//! Thumbnail URLs and the route that serves them: `GET /thumb/{width}/{*path}` answers with a
//! resized JPEG of an image under the uploads folder (made once, then read from the cache) and
//! marks it immutable, since image file names are never reused.

use super::{ApiError, AppState};
use crate::library::thumbs::{ThumbError, uploads_relative};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/thumb/{width}/{*path}", get(thumb))
}

/// The URL of `path`'s thumbnail (`path` as events store it: `uploads/characters/…`, or with a
/// leading `/static/`), `width` pixels wide (one of `library::thumbs::WIDTHS`).
pub fn url(path: &str, width: u32) -> String {
    let path = path.trim_start_matches("/static/").trim_start_matches('/');
    let mut out = format!("/thumb/{width}/");
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn thumb(State(s): State<AppState>, Path((width, path)): Path<(String, String)>) -> Response {
    let Ok(width) = width.parse::<u32>() else {
        return ApiError::bad(format!("'{width}' is not a width")).into_response();
    };
    let _permit = s.thumb_permits.acquire().await;
    let thumbs = s.thumbs.clone();
    let made = tokio::task::spawn_blocking(move || {
        let rel = uploads_relative(&path).to_string();
        thumbs
            .get(&rel, width)
            .and_then(|p| std::fs::read(&p).map_err(|e| ThumbError::Broken(e.to_string())))
    })
    .await;
    match made {
        Ok(Ok(bytes)) => {
            let mut res = bytes.into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            res
        }
        Ok(Err(ThumbError::NotFound)) => ApiError::not_found("no such image").into_response(),
        Ok(Err(ThumbError::Invalid(m))) => ApiError::bad(m).into_response(),
        Ok(Err(ThumbError::Broken(m))) => ApiError {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            message: m,
        }
        .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn urls_keep_plain_paths_and_escape_the_rest() {
        assert_eq!(
            url("uploads/characters/tifa/cover_01.png", 240),
            "/thumb/240/uploads/characters/tifa/cover_01.png"
        );
        assert_eq!(
            url("/static/uploads/scenes/x/a b.png", 512),
            "/thumb/512/uploads/scenes/x/a%20b.png"
        );
    }
}

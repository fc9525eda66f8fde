//! The console's files, embedded in the binary: the stylesheet and htmx (pinned, see
//! `assets/NOTICE`). Each URL carries the first 16 hex digits of the file's SHA-256, so a file
//! is cached for a year (`immutable`) and a new build's file has a new URL.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &[u8] = include_bytes!("assets/console.css");
/// htmx 2.0.11's `dist/htmx.min.js`, unchanged (sha256 d6fdc75f…f717; 0BSD).
const HTMX: &[u8] = include_bytes!("assets/htmx-2.0.11.min.js");

fn hashed(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    format!("{stem}-{}.{ext}", &digest[..16])
}

static CSS_NAME: LazyLock<String> = LazyLock::new(|| hashed("console", "css", CSS));
static HTMX_NAME: LazyLock<String> = LazyLock::new(|| hashed("htmx-2.0.11", "min.js", HTMX));

/// The stylesheet's URL.
pub fn css_url() -> String {
    format!("/assets/{}", *CSS_NAME)
}

/// htmx's URL.
pub fn htmx_url() -> String {
    format!("/assets/{}", *HTMX_NAME)
}

pub async fn serve(Path(name): Path<String>) -> Response {
    let (kind, bytes) = if name == *CSS_NAME {
        ("text/css; charset=utf-8", CSS)
    } else if name == *HTMX_NAME {
        ("text/javascript; charset=utf-8", HTMX)
    } else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_htmx_is_the_pinned_file() {
        assert_eq!(
            hex::encode(Sha256::digest(HTMX)),
            "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
        );
    }

    #[test]
    fn urls_carry_the_content_hash() {
        assert!(css_url().starts_with("/assets/console-"), "{}", css_url());
        assert!(htmx_url().ends_with(".min.js"), "{}", htmx_url());
        assert_ne!(*CSS_NAME, hashed("console", "css", b"other"));
    }
}

//! A drawn image for every product without one of its seller's: an SVG made from its category
//! (colour and emblem) and its name (initials), at `/products/{id}/image.svg`. Deterministic, so
//! browsers and proxies cache it (`ETag` is the product's version).

use crate::products::store::product_in_path;
use crate::{error::ApiError, extract::Path, state::AppState};
use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

/// `GET /products/{id}/image.svg`: the product's drawn image.
#[utoipa::path(get, path = "/products/{id}/image.svg", tag = "catalog",
    params(("id" = i64, Path, description = "Product id", minimum = 1)),
    responses(
        (status = 200, description = "An SVG image", body = String, content_type = "image/svg+xml"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        crate::error::responses::NoSuchProduct,
    ))]
pub(crate) async fn drawn(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = product_in_path(&id)?;
    let (name, category, version): (String, String, i64) =
        sqlx::query_as("SELECT name, category, version FROM products WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found("product"))?;
    let etag = format!("\"{}-{version}\"", id.get());
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((
        cache,
        [
            (header::CONTENT_TYPE, "image/svg+xml".to_owned()),
            // An image, never a document: nothing in it runs even if opened on its own.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'".to_owned(),
            ),
        ],
        svg(&name, &category),
    )
        .into_response())
}

fn hash(text: &str) -> u32 {
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Up to two initials of the name's words that start with a letter or digit.
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next().filter(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

/// The drawing: a background in the category's hue, a circle in the name's, the initials, and
/// the category's name.
pub fn svg(name: &str, category: &str) -> String {
    let hue = hash(category) % 360;
    let accent = (hue + 40 + hash(name) % 80) % 360;
    let (initials, category) = (escape(&initials(name)), escape(category));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 240" width="320" height="240" role="img"><rect width="320" height="240" fill="hsl({hue},55%,88%)"/><circle cx="160" cy="108" r="70" fill="hsl({accent},50%,55%)"/><text x="160" y="130" font-family="sans-serif" font-size="60" font-weight="700" text-anchor="middle" fill="#fff">{initials}</text><text x="160" y="222" font-family="sans-serif" font-size="18" text-anchor="middle" fill="hsl({hue},40%,30%)">{category}</text></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawings_are_stable_escaped_and_differ_by_category() {
        let kettle = svg("Cast Iron Kettle", "home");
        assert_eq!(kettle, svg("Cast Iron Kettle", "home"));
        assert!(kettle.contains(">CI<") && kettle.contains(">home<"));
        assert_ne!(svg("Cast Iron Kettle", "garden"), kettle);
        let hostile = svg("<script>x</script> & \"q\"", "home");
        assert!(!hostile.contains("<script") && !hostile.contains("&amp;"));
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn initials_take_the_first_two_words_that_start_with_a_letter() {
        assert_eq!(initials("classic kettle #3"), "CK");
        assert_eq!(initials("#3 ünique"), "Ü");
        assert_eq!(initials(""), "");
    }
}

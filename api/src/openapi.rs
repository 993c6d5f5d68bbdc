//! The OpenAPI 3.1 document, generated from the handlers' annotations and served at
//! `/openapi.json`, and the interactive docs page at `/docs`, whose assets this process serves.

use crate::{cart, checkout, error, health, orders, products, sellers, sign_in, storefront, users};
use axum::{
    response::{Html, IntoResponse},
    routing::get,
    Json, Router,
};
use std::sync::LazyLock;
use utoipa::{
    openapi::{
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        OpenApi as Document,
    },
    Modify, OpenApi,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "shop API",
        description = "Passwordless accounts, a catalog, carts, and a queue-serialized checkout. \
            Every error answers `{\"error\":{\"code\",\"message\"}}` with a 4xx or 5xx status.",
    ),
    paths(
        health::healthz, health::readyz, health::metrics,
        users::register, users::me, users::claim_phone, users::verify_phone,
        sign_in::request_code, sign_in::verify_code, sign_in::manage::list_sessions,
        sign_in::manage::end_all_sessions, sign_in::manage::end_session, sign_in::manage::sign_out,
        products::list, products::create, products::show, products::update,
        products::categories, products::image::drawn, products::restock::restock,
        cart::show, cart::add, cart::update, cart::remove,
        checkout::checkout,
        orders::list, orders::show, orders::events::events, orders::cancel::cancel,
        sellers::products, sellers::orders,
        storefront::index, storefront::app_js, storefront::core_js, storefront::drops_js, storefront::style_css, storefront::config,
        openapi_json, docs,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "users", description = "Registration by a mailed code, proven phone numbers, and passwordless sessions"),
        (name = "catalog", description = "Products, cached in Redis and in each process"),
        (name = "cart", description = "The signed-in user's cart, kept in PostgreSQL"),
        (name = "orders", description = "Checkout and the user's orders"),
        (name = "sellers", description = "A seller's own products, stock, sales and order lines"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "storefront", description = "The demo storefront page"),
    ),
)]
pub struct ApiDoc;

/// What every operation shares: the session scheme, and the error shape of any other 4xx
/// (400 malformed, 408 timeout, 413 too large, 415 wrong type, 429 rate limited) and of 5xx
/// (503 when PostgreSQL or Redis is out of reach).
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The `session_token` from `POST /sessions/verify` (a sign-in or registration code)",
            ))
            .build();
        if let Some(components) = doc.components.as_mut() {
            components.add_security_scheme("session", SecurityScheme::Http(bearer));
        }
        let error = utoipa::openapi::ResponseBuilder::new()
            .description("An error: `{\"error\":{\"code\",\"message\"}}`")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for range in ["4XX", "5XX"] {
                    operation
                        .responses
                        .responses
                        .entry(range.to_owned())
                        .or_insert_with(|| error.clone().into());
                }
            }
        }
    }
}

static DOCUMENT: LazyLock<Document> = LazyLock::new(ApiDoc::openapi);

/// The document, built once.
pub fn document() -> &'static Document {
    &DOCUMENT
}

/// This OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    Json(document())
}

/// Interactive documentation (Swagger UI, served by this process; no CDN).
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "The docs page", body = String, content_type = "text/html")))]
pub(crate) async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

const DOCS_PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>shop API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.onload = () => {
      window.ui = SwaggerUIBundle({
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        persistAuthorization: true,
        tryItOutEnabled: true,
      });
    };
  </script>
</body>
</html>
"##;

/// `/openapi.json`, `/docs`, and the docs page's assets under `/docs/assets/`.
pub fn router() -> Router {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .merge(swagger_ui_dist::generate_routes(
            swagger_ui_dist::ApiDefinition {
                uri_prefix: "/docs/assets",
                api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
                title: Some("shop API"),
            },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{collections::BTreeSet, fs, path::Path};

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    /// Every `(method, path)` that a `.route("…", …)` call in this crate's source registers.
    fn routes_in(dir: &Path, found: &mut BTreeSet<(String, String)>) {
        for entry in fs::read_dir(dir).expect("readable source folder") {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                routes_in(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = fs::read_to_string(&path).expect("readable source file");
                for (start, _) in source.match_indices(".route(") {
                    let call = &source[start + ".route(".len()..];
                    let Some(path_literal) = call.trim_start().strip_prefix("\"/") else {
                        continue;
                    };
                    let route = format!(
                        "/{}",
                        &path_literal[..path_literal.find('"').expect("closed literal")]
                    );
                    // The handler expression runs to the parenthesis that closes `.route(`.
                    let mut depth = 1;
                    let end = call
                        .char_indices()
                        .find(|&(_, c)| {
                            depth += match c {
                                '(' => 1,
                                ')' => -1,
                                _ => 0,
                            };
                            depth == 0
                        })
                        .map_or(call.len(), |(i, _)| i);
                    let handlers = &call[..end];
                    for method in METHODS {
                        let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                            i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                        });
                        if called {
                            found.insert((method.to_owned(), route.clone()));
                        }
                    }
                }
            }
        }
    }

    fn documented() -> BTreeSet<(String, String)> {
        let json = serde_json::to_value(document()).expect("serialisable document");
        let paths = json["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                METHODS
                    .into_iter()
                    .filter(|m| item.get(*m).is_some())
                    .map(move |m| (m.to_owned(), path.clone()))
            })
            .collect()
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let mut routed = BTreeSet::new();
        routes_in(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut routed,
        );
        assert!(
            routed.len() > 20,
            "the scan found too few routes: {routed:?}"
        );
        let documented = documented();
        let missing: Vec<_> = routed.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes missing from the OpenAPI document: {missing:?}"
        );
        let stale: Vec<_> = documented.difference(&routed).collect();
        assert!(
            stale.is_empty(),
            "documented routes that no router serves: {stale:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_session_scheme_and_error_shapes() {
        let json = serde_json::to_value(document()).expect("serialisable document");
        assert!(json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")));
        assert_eq!(
            json["components"]["securitySchemes"]["session"]["scheme"],
            "bearer"
        );
        let checkout = &json["paths"]["/orders/checkout"]["post"];
        let headers: Vec<_> = checkout["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| (p["in"].as_str(), p["name"].as_str()))
            .collect();
        assert_eq!(headers, [(Some("header"), Some("Idempotency-Key"))]);
        for status in ["202", "409", "4XX", "5XX"] {
            assert!(checkout["responses"].get(status).is_some(), "{status}");
        }
        assert!(json["components"]["schemas"]["ErrorBody"].is_object());
    }

    /// Registration says nothing about who has an account: one answer, no conflict.
    #[test]
    fn registration_answers_202_and_never_a_conflict() {
        let json = serde_json::to_value(document()).expect("serialisable document");
        let responses = &json["paths"]["/users/register"]["post"]["responses"];
        assert!(responses.get("202").is_some(), "{responses}");
        for status in ["201", "409"] {
            assert!(responses.get(status).is_none(), "{status}: {responses}");
        }
        let user = &json["components"]["schemas"]["User"]["properties"];
        for field in ["email_verified", "phone_verified"] {
            assert!(user.get(field).is_some(), "{field}");
        }
    }
}

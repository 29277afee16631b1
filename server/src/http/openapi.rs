//! The OpenAPI description of the JSON API: the document's header here, every path from
//! the handlers' own declarations (see [`super::api::routes`]), schemas collected from them.
//! [`complete`] then adds what every route answers alike, so that each declaration lists only
//! its own statuses and the document still names every status a route can answer.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr};
use utoipa::{Modify, OpenApi};

use crate::auth::SESSION_COOKIE;
use crate::config::Config;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Hangar API", description = "Spaces, templates, quotas and sharing. Authenticate with the session cookie from /auth/login (state-changing requests then need an Origin of Hangar's own) or `Authorization: Bearer <api token>`. Errors are `{\"error\": {\"code\", \"message\", ...}}`. Lists answer a page at a time: `limit` (1 to 500, default 100) items after the item whose id is `after`; a page shorter than `limit` is the last."),
    components(schemas(app::error::ErrorCode, app::api::files::FileFormat)),
    modifiers(&Security),
    security(("api_token" = []), ("session_cookie" = [])),
)]
pub struct ApiDoc;

/// Adds to every operation the error answers its kind of route can give, unless it declares
/// them itself (with a more precise description), and writes the server's own limits into the
/// schemas that depend on its configuration.
pub fn complete(document: &mut utoipa::openapi::OpenApi, config: &Config) {
    for (path, item) in document.paths.paths.iter_mut() {
        let has_path_params = path.contains('{');
        for (method, operation) in operations(item) {
            add_common_answers(method, has_path_params, operation);
        }
    }
    limit_token_lifetime(document, config.token_max_days);
    state_file_paths(document);
}

/// The `path` of the files routes, as `clean_path` takes it; `PUT` and `DELETE` name
/// something below `/` (the root is no file, and cannot be deleted).
fn state_file_paths(document: &mut utoipa::openapi::OpenApi) {
    use crate::services::files::{NAMED_PATH_PATTERN, PATH_PATTERN};
    let Some(item) = document.paths.paths.get_mut("/api/v1/spaces/{id}/files") else {
        return;
    };
    for (method, operation) in operations(item) {
        let pattern = match method {
            "put" | "delete" => NAMED_PATH_PATTERN,
            _ => PATH_PATTERN,
        };
        for parameter in operation.parameters.iter_mut().flatten() {
            if parameter.name == "path" {
                if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
                    schema.pattern = Some(pattern.to_owned());
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("head", item.head.as_mut()),
        ("options", item.options.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|o| (method, o)))
    .collect()
}

fn add_common_answers(method: &str, has_path_params: bool, operation: &mut Operation) {
    // An empty requirement among the operation's own means "anyone" (sign-in itself).
    let anyone = operation.security.as_ref().is_some_and(|requirements| {
        requirements
            .iter()
            .any(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
    });
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let takes_input = operation.request_body.is_some() || !parameters.is_empty();
    let pages = parameters.iter().any(|p| p.name == "after");
    let changes = !matches!(method, "get" | "head" | "options");
    let mut add = |status: &str, description: &str| {
        if !operation.responses.responses.contains_key(status) {
            operation.responses.responses.insert(
                status.to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                    "ErrorBody",
                                ))))
                                .build(),
                        )
                        .build(),
                ),
            );
        }
    };
    if takes_input {
        add(
            "400",
            "invalid input: the message names the field and says what to fix",
        );
    }
    if !anyone {
        add("401", "not signed in: no valid session or API token");
    }
    if changes {
        add(
            "403",
            "refused: a cookie-carrying request from another origin (or hiding its origin), \
             or an API token without the `write` scope",
        );
    }
    if has_path_params || pages {
        add(
            "404",
            "not found, or not visible to the caller (or `after` names no item of the list)",
        );
    }
}

/// `CreateToken.expires_in_days` may not exceed `--token-max-days`.
fn limit_token_lifetime(document: &mut utoipa::openapi::OpenApi, max_days: i64) {
    let Some(components) = document.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::Object(create))) = components.schemas.get_mut("CreateToken") else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(days))) = create.properties.get_mut("expires_in_days") {
        days.maximum = Some(max_days.into());
    }
}

#[cfg(test)]
mod tests {
    use utoipa_axum::router::OpenApiRouter;

    use super::*;

    fn document(args: &[&str]) -> serde_json::Value {
        let mut all = vec!["hangar"];
        all.extend_from_slice(args);
        let config = Config::from_args(all);
        let (_, mut document) =
            OpenApiRouter::<crate::http::AppState>::with_openapi(ApiDoc::openapi())
                .merge(crate::http::api::routes())
                .split_for_parts();
        complete(&mut document, &config);
        serde_json::to_value(&document).unwrap()
    }

    #[test]
    fn every_operation_names_its_common_errors() {
        let doc = document(&[]);
        let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
        let login = responses("/api/v1/auth/login", "post");
        assert!(login["401"].is_object() && login["400"].is_object() && login["403"].is_object());
        let me = responses("/api/v1/me", "get");
        assert!(me["401"].is_object() && me["403"].is_null() && me["404"].is_null());
        let space = responses("/api/v1/spaces/{id}", "get");
        assert!(space["404"].is_object());
        assert_eq!(
            space["404"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        let users = responses("/api/v1/users", "get");
        assert!(users["404"].is_object() && users["400"].is_object());
    }

    #[test]
    fn the_token_lifetime_limit_is_the_servers() {
        let doc = document(&["--token-max-days", "30"]);
        assert_eq!(
            doc["components"]["schemas"]["CreateToken"]["properties"]["expires_in_days"]["maximum"],
            30
        );
    }
}

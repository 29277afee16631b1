//! The OpenAPI description of the JSON API: the document's header here, every path from
//! the handlers' own declarations (see [`super::api::routes`]), schemas collected from them.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Hangar API", description = "Spaces, templates, quotas and sharing. Authenticate with the session cookie from /auth/login or `Authorization: Bearer <api token>`. Errors are `{\"error\": {\"code\", \"message\", ...}}`."),
    components(schemas(app::error::ErrorCode)),
    modifiers(&Security),
    security(("api_token" = [])),
)]
pub struct ApiDoc;

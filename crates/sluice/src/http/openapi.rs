//! `GET /openapi.json`: the HTTP API described from its handlers (`#[utoipa::path]` on each, registered with
//! `utoipa_axum`'s `routes!`, so a route and its description are the same line): every operation with the API key
//! scope it needs (security `api_key`) and the shape of its errors ([`ErrorBody`]).

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer of the API (`ApiError`).
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// A stable machine-readable code: `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `overloaded`…
    error: String,
    /// What was wrong, for people.
    message: String,
    /// The field that was wrong (`title`, `[3].severity`), on a 400.
    field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice",
        description = "Operations gateway between your systems and Slack. Authenticate with `Authorization: Bearer <api key>`; each operation names the scope its key needs (`admin` has them all)."
    ),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

/// The bearer scheme, and the error answers every operation shares.
pub(super) struct Errors;

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

impl Modify for Errors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for item in openapi.paths.paths.values_mut() {
            let ops: [&mut Option<Operation>; 4] = [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
            ];
            for op in ops.into_iter().flatten() {
                let keyed = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut add = |code: &str, what: &str| {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| error(what));
                };
                add("400", "the request is invalid: `field` names what, `message` says why; nothing was accepted");
                if keyed {
                    add("401", "no API key, or an unknown one");
                    add("403", "the key lacks the scope this operation needs");
                }
                add("413", "the body is larger than server.max_body_bytes");
                add(
                    "503",
                    "overloaded or storage unavailable; retry after Retry-After",
                );
            }
        }
    }
}

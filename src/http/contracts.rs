//! The published contracts over HTTP: the JSON Schemas of the Socket.IO payloads
//! (`/api/schemas`), the OpenAPI and AsyncAPI documents, and the interactive API page
//! (`/api/docs`, Swagger UI with its assets inside the binary). Each is built once, on first use.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::extract::{Path, Request};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::Value;

use switchboard_handlers::contract::{asyncapi as socketio_asyncapi, schemas};
use switchboard_handlers::core::error::AppError;

use super::ApiError;

/// Where the interactive page is served.
pub const DOCS_PATH: &str = "/api/docs";

struct Published {
    index: Value,
    schemas: BTreeMap<String, Value>,
    openapi: Value,
    asyncapi: Value,
}

fn build() -> Result<Published, String> {
    let set = schemas::socketio()?;
    Ok(Published {
        index: set.index("/api/schemas"),
        schemas: set.schemas,
        openapi: super::openapi::document()?,
        asyncapi: socketio_asyncapi::document()?,
    })
}

static PUBLISHED: LazyLock<Result<Published, String>> = LazyLock::new(build);

fn published() -> Result<&'static Published, ApiError> {
    PUBLISHED
        .as_ref()
        .map_err(|e| ApiError(AppError::internal(e)))
}

pub async fn schema_index() -> Result<Json<Value>, ApiError> {
    Ok(Json(published()?.index.clone()))
}

/// `/api/schemas/<name>.json`.
pub async fn schema(Path(file): Path<String>) -> Result<Json<Value>, ApiError> {
    let name = file.strip_suffix(".json").unwrap_or(&file);
    published()?
        .schemas
        .get(name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError(AppError::not_found("schema", name)))
}

pub async fn openapi() -> Result<Json<Value>, ApiError> {
    Ok(Json(published()?.openapi.clone()))
}

pub async fn asyncapi() -> Result<Json<Value>, ApiError> {
    Ok(Json(published()?.asyncapi.clone()))
}

/// Swagger UI over `/api/openapi.json`.
pub fn docs_router() -> Router {
    swagger_ui_dist::generate_routes(swagger_ui_dist::ApiDefinition {
        uri_prefix: DOCS_PATH,
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/api/openapi.json"),
        title: Some("Switchboard REST API"),
    })
    .layer(axum::middleware::from_fn(without_query))
}

/// The page's index writes its own URI into the HTML: only the path reaches it, so nothing a
/// link's query string carries can end up in the page.
async fn without_query(mut req: Request, next: Next) -> Response {
    if req.uri().query().is_some() {
        let path = req.uri().path().to_owned();
        match path.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return ApiError(AppError::invalid("bad path")).into_response(),
        }
    }
    next.run(req).await
}

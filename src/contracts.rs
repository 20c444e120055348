//! The generated contracts committed under `clients/` (docs/contracts.md): `switchboard
//! contracts` writes them, and the `contracts` test fails when the committed files differ from
//! what the code generates.

use std::path::Path;

use switchboard_handlers::contract::{asyncapi, schemas, typescript};

/// One generated file: its path from the repository root and its content.
pub struct Artifact {
    pub path: &'static str,
    pub content: String,
}

/// The Socket.IO schemas bundled for the TypeScript package's optional runtime validation.
pub const SCHEMAS_PATH: &str = "clients/typescript/src/generated/schemas.json";
pub const ASYNCAPI_PATH: &str = "clients/asyncapi.json";
pub const OPENAPI_PATH: &str = "clients/openapi.json";

fn pretty(v: &serde_json::Value) -> Result<String, String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// Every generated file. Errs when the types cannot be described unambiguously (two types
/// with one name).
pub fn artifacts() -> Result<Vec<Artifact>, String> {
    let set = schemas::socketio()?;
    let bundle = serde_json::json!({
        "index": set.index("/api/schemas"),
        "schemas": set.schemas,
    });
    Ok(vec![
        Artifact {
            path: typescript::PATH,
            content: typescript::render()?,
        },
        Artifact {
            path: SCHEMAS_PATH,
            content: pretty(&bundle)?,
        },
        Artifact {
            path: ASYNCAPI_PATH,
            content: pretty(&asyncapi::document()?)?,
        },
        Artifact {
            path: OPENAPI_PATH,
            content: pretty(&crate::http::openapi::document()?)?,
        },
    ])
}

/// Writes every artifact under `root` (the repository root); answers the paths written.
pub fn write_all(root: &Path) -> anyhow::Result<Vec<&'static str>> {
    let mut written = Vec::new();
    for a in artifacts().map_err(anyhow::Error::msg)? {
        let path = root.join(a.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, a.content)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        written.push(a.path);
    }
    Ok(written)
}

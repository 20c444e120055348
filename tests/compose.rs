//! docker-compose.yml, deploy/nginx.conf and the Dockerfile stay in step with the server: the
//! nodes set only variables the server reads (`switchboard::config::ENV_VARS`), MongoDB runs as a
//! replica set, and the balancer is sticky and passes WebSocket upgrades. Needs no services.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

const NODES: [&str; 2] = ["switchboard-1", "switchboard-2"];

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The parsed docker-compose.yml with its merge keys (`<<: *anchor`) applied.
fn compose() -> Value {
    let mut doc: Value =
        serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("docker-compose.yml parses");
    doc.apply_merge()
        .expect("docker-compose.yml merge keys apply");
    doc
}

fn service<'a>(doc: &'a Value, name: &str) -> &'a Mapping {
    doc.get("services")
        .and_then(Value::as_mapping)
        .expect("docker-compose.yml has a services map")
        .get(name)
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
}

fn image<'a>(svc: &'a Mapping, name: &str) -> &'a str {
    svc.get("image")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("service {name} has no image"))
}

/// A service's environment as name → value, from either the map or the `KEY=value` list form.
fn environment(svc: &Mapping, name: &str) -> Vec<(String, String)> {
    let env = svc
        .get("environment")
        .unwrap_or_else(|| panic!("service {name} has no environment"));
    let mut vars: Vec<(String, String)> = match env {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| {
                let key = k
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: environment key {k:?} is not a string"));
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Null => String::new(),
                    other => panic!("{name}: {key} has a non-scalar value {other:?}"),
                };
                (key.to_owned(), value)
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let entry = item.as_str().unwrap_or_else(|| {
                    panic!("{name}: environment entry {item:?} is not a string")
                });
                let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                (key.to_owned(), value.to_owned())
            })
            .collect(),
        other => panic!("{name}: environment is neither a map nor a list: {other:?}"),
    };
    vars.sort();
    vars
}

#[test]
fn every_service_is_defined() {
    let doc = compose();
    for name in ["mongo", "redis", "switchboard-1", "switchboard-2", "lb"] {
        service(&doc, name);
    }
}

#[test]
fn infrastructure_uses_official_images() {
    let doc = compose();

    let mongo = service(&doc, "mongo");
    assert!(
        image(mongo, "mongo").starts_with("mongo:"),
        "mongo must use the official mongo image"
    );
    let replset = match mongo.get("command").expect("mongo has a command") {
        Value::String(s) => s.contains("--replSet"),
        Value::Sequence(args) => args
            .iter()
            .any(|a| a.as_str().is_some_and(|s| s.contains("--replSet"))),
        other => panic!("mongo command is neither a string nor a list: {other:?}"),
    };
    assert!(
        replset,
        "mongo must run as a replica set (--replSet) so change streams work"
    );

    assert!(
        image(service(&doc, "redis"), "redis").starts_with("redis:"),
        "redis must use the official redis image"
    );
    assert!(
        image(service(&doc, "lb"), "lb").starts_with("nginx:"),
        "lb must use the official nginx image"
    );
}

#[test]
fn nodes_set_only_known_variables() {
    let doc = compose();
    let known = switchboard::config::ENV_VARS;
    let mut envs = Vec::new();
    for name in NODES {
        let svc = service(&doc, name);
        assert!(
            svc.contains_key("build"),
            "{name} must be built from the Dockerfile"
        );
        let env = environment(svc, name);
        for (key, _) in &env {
            assert!(
                known.contains(&key.as_str()),
                "{name} sets {key}, which the server does not read (src/config.rs ENV_VARS)"
            );
        }
        for required in ["MONGODB_URI", "REDIS_URL", "JWT_SECRET", "HOST"] {
            assert!(
                env.iter().any(|(k, _)| k == required),
                "{name} must set {required}"
            );
        }
        let redis_url = env
            .iter()
            .find(|(k, _)| k == "REDIS_URL")
            .map(|(_, v)| v.as_str())
            .expect("REDIS_URL is set");
        assert!(
            redis_url.contains("protocol=resp3"),
            "{name}: REDIS_URL must ask for RESP3, got {redis_url}"
        );
        envs.push(env);
    }
    assert_eq!(
        envs[0], envs[1],
        "both nodes must run with the same environment"
    );
}

#[test]
fn balancer_is_sticky_and_passes_websocket_upgrades() {
    let conf = read("deploy/nginx.conf");
    assert!(
        conf.contains("ip_hash"),
        "deploy/nginx.conf must use ip_hash sticky sessions for long-polling"
    );
    assert!(
        conf.contains("Upgrade"),
        "deploy/nginx.conf must forward the WebSocket Upgrade header"
    );

    let doc = compose();
    let mounted = service(&doc, "lb")
        .get("volumes")
        .and_then(Value::as_sequence)
        .expect("lb has volumes")
        .iter()
        .filter_map(Value::as_str)
        .any(|v| v.contains("deploy/nginx.conf"));
    assert!(mounted, "lb must mount deploy/nginx.conf");
}

#[test]
fn runtime_image_ships_the_seeds() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .expect("Dockerfile has a FROM line");
    let copies_seeds = lines[last_from..]
        .iter()
        .any(|l| l.to_ascii_uppercase().starts_with("COPY ") && l.contains("seeds"));
    assert!(
        copies_seeds,
        "the Dockerfile's final stage must COPY the seeds folder"
    );
}

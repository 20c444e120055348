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

/// A node's environment with compose's `${VAR:?message}` replaced by `required` and
/// `${VAR:-default}` by its default.
fn resolved_node_env(required: &str) -> Vec<(String, String)> {
    let doc = compose();
    environment(service(&doc, NODES[0]), NODES[0])
        .into_iter()
        .map(|(k, v)| {
            let v = match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                Some(inner) => match (inner.split_once(":?"), inner.split_once(":-")) {
                    (Some(_), _) => required.to_owned(),
                    (None, Some((_, default))) => default.to_owned(),
                    (None, None) => panic!("{k}: unsupported interpolation {v}"),
                },
                None => v,
            };
            (k, v)
        })
        .collect()
}

#[test]
fn env_vars_list_every_setting() {
    use clap::CommandFactory;
    let mut served: Vec<String> = switchboard::cli::Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    served.push("RUST_LOG".to_owned());
    served.sort();
    let mut listed: Vec<String> = switchboard::config::ENV_VARS
        .iter()
        .map(|s| s.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed, served,
        "ENV_VARS must list exactly the variables the server reads"
    );
    let docs = read("docs/config.md");
    for name in &listed {
        let cell = format!("| `{name}` |");
        assert!(
            docs.contains(&cell),
            "docs/config.md does not document {name}"
        );
    }
}

#[test]
fn compose_nodes_run_a_valid_configuration_with_explicit_secret_and_seeding() {
    let env = resolved_node_env("f3a91c07d2b84e65a0c9d1e27b3f4a58");
    let raw = environment(service(&compose(), NODES[0]), NODES[0]);
    let jwt = raw
        .iter()
        .find(|(k, _)| k == "JWT_SECRET")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    assert!(
        jwt.starts_with("${JWT_SECRET:?"),
        "JWT_SECRET must come from the operator's environment and stop compose when unset: {jwt}"
    );
    assert!(
        raw.iter().any(|(k, _)| k == "SEED_DEMO"),
        "a public deployment does not seed by default: the compose file must say SEED_DEMO"
    );

    // The same environment, given to the server's own parser and validation.
    let mut args = vec!["switchboard".to_owned()];
    for (k, v) in &env {
        if k == "RUST_LOG" {
            continue;
        }
        args.push(format!("--{}", k.to_ascii_lowercase().replace('_', "-")));
        args.push(v.clone());
    }
    use clap::Parser;
    let cli = switchboard::cli::Cli::try_parse_from(&args)
        .unwrap_or_else(|e| panic!("the nodes' environment does not parse: {e}"));
    cli.config
        .validate()
        .unwrap_or_else(|e| panic!("the nodes' environment is refused: {e}"));
    // And with the placeholder an operator might leave in, it must be refused.
    let weak = switchboard::cli::Cli::try_parse_from(args.iter().map(|a| {
        if a.starts_with("f3a91c07") {
            "change-me"
        } else {
            a.as_str()
        }
    }))
    .expect("parses");
    assert!(weak.config.validate().is_err());

    // The healthcheck asks /ready on the port the node listens on.
    let port = env
        .iter()
        .find(|(k, _)| k == "PORT")
        .map(|(_, v)| v.clone())
        .expect("PORT is set");
    let doc = compose();
    let check = format!(
        "{:?}",
        service(&doc, NODES[0])
            .get("healthcheck")
            .expect("nodes have a healthcheck")
    );
    assert!(
        check.contains(&format!("/dev/tcp/127.0.0.1/{port}")) && check.contains("GET /ready"),
        "the healthcheck must ask /ready on port {port}: {check}"
    );
}

#[test]
fn balancer_does_not_publish_metrics() {
    let conf = read("deploy/nginx.conf");
    let start = conf
        .find("location = /metrics")
        .expect("deploy/nginx.conf must have an exact `location = /metrics` block");
    let block = &conf[start..];
    let block = &block[..block.find('}').expect("block closes")];
    assert!(
        block.contains("deny all") || block.contains("return 404") || block.contains("return 403"),
        "the balancer must not pass /metrics through: {block}"
    );
    assert!(!block.contains("proxy_pass"), "{block}");
}

// ---- Dockerfile replay ---------------------------------------------------------------------
//
// No Docker daemon here, so the builder stage is replayed in a temporary folder: exactly the
// files its COPY lines bring, its shell steps as written, and each `cargo build` as
// `cargo metadata` with the same `--locked`, offline. Metadata loads every workspace member's
// manifest and every `[patch]` path and resolves against Cargo.lock, which is where a layout
// that forgets a member or the vendored crate fails; a full release build would take minutes
// and catch the same class. What metadata does not read is checked by hand: the source files
// of the targets the build compiles, and the binary the next step installs.

/// The builder stage's instructions, continuation lines joined.
fn builder_instructions() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(t);
            joined.push(std::mem::take(&mut current));
        }
    }
    let mut stage = Vec::new();
    let mut froms = 0;
    for ins in joined {
        let (op, rest) = ins.split_once(' ').unwrap_or((ins.as_str(), ""));
        let op = op.to_ascii_uppercase();
        if op == "FROM" {
            froms += 1;
            continue;
        }
        if froms == 1 {
            stage.push((op, rest.trim().to_owned()));
        }
    }
    stage
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            let name = entry.file_name();
            // .dockerignore keeps these out of the build context.
            if name == "target" || name == "node_modules" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(name));
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("COPY {}: {e}", from.display()));
    }
}

/// The packages `cargo build` compiles (its `-p`s and their path dependencies) and the source
/// files their library and binary targets need, from `cargo metadata`.
fn check_build(dir: &Path, args: &[&str], built_bins: &mut Vec<String>) {
    // This machine's platform only: offline, the crates of other platforms' dependencies are
    // not in the local cache (the resolution still covers every platform).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc reports its host");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(dir)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .env_remove("CARGO_TARGET_DIR");
    if args.contains(&"--locked") {
        cmd.arg("--locked");
    }
    let out = cmd.output().expect("run cargo metadata");
    assert!(
        out.status.success(),
        "the Dockerfile's `cargo build {}` would fail in its build context:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let packages = meta["packages"].as_array().expect("packages");
    let mut wanted: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "-p" || w[0] == "--package")
        .map(|w| w[1].to_owned())
        .collect();
    assert!(!wanted.is_empty(), "cargo build without -p is not replayed");
    let mut seen = Vec::new();
    while let Some(name) = wanted.pop() {
        if seen.contains(&name) {
            continue;
        }
        let pkg = packages
            .iter()
            .find(|p| p["name"] == name.as_str() && p["source"].is_null())
            .unwrap_or_else(|| panic!("cargo build -p {name}: no such local package"));
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            if dep["path"].is_string() && dep["kind"].is_null() {
                wanted.push(dep["name"].as_str().expect("dep name").to_owned());
            }
        }
        for target in pkg["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .collect();
            if !kinds
                .iter()
                .any(|k| matches!(*k, "lib" | "bin" | "proc-macro" | "custom-build"))
            {
                continue;
            }
            let src = Path::new(target["src_path"].as_str().expect("src_path"));
            assert!(
                src.exists(),
                "`cargo build {}` needs {}, which the Dockerfile does not provide at that step",
                args.join(" "),
                src.display()
            );
            if kinds.contains(&"bin") && seen.is_empty() {
                built_bins.push(target["name"].as_str().expect("name").to_owned());
            }
        }
        seen.push(name);
    }
}

#[test]
fn dockerfile_builder_stage_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dockerfile-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut workdir = base.clone();
    std::fs::create_dir_all(&workdir).expect("mkdir");
    let mut built_bins: Vec<String> = Vec::new();
    let mut builds = 0;
    for (op, rest) in builder_instructions() {
        match op.as_str() {
            "WORKDIR" => {
                workdir = base.join(rest.trim_start_matches('/'));
                std::fs::create_dir_all(&workdir).expect("mkdir");
            }
            "COPY" => {
                assert!(
                    !rest.starts_with("--"),
                    "COPY flags are not replayed: {rest}"
                );
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let (dest, sources) = parts.split_last().expect("COPY has a destination");
                let into_dir = dest.ends_with('/') || sources.len() > 1;
                let dest = if dest.starts_with('/') {
                    base.join(dest.trim_start_matches('/'))
                } else {
                    workdir.join(dest)
                };
                for src in sources {
                    assert!(!src.contains('*'), "COPY globs are not replayed: {src}");
                    let from = root.join(src);
                    assert!(from.exists(), "COPY {src}: not in the repository");
                    let to = if into_dir && from.is_file() {
                        dest.join(from.file_name().expect("file name"))
                    } else {
                        dest.clone()
                    };
                    copy_tree(&from, &to);
                }
            }
            "RUN" => {
                for step in rest.split("&&").map(str::trim) {
                    let words: Vec<&str> = step.split_whitespace().collect();
                    if words.starts_with(&["cargo", "build"]) {
                        check_build(&workdir, &words[2..], &mut built_bins);
                        builds += 1;
                    } else if words.first() == Some(&"install") {
                        let artefact = words
                            .iter()
                            .find(|w| w.starts_with("target/"))
                            .unwrap_or_else(|| panic!("unexpected install step: {step}"));
                        let bin = artefact.rsplit('/').next().unwrap_or_default();
                        assert!(
                            built_bins.iter().any(|b| b == bin),
                            "`{step}` installs {artefact}, which no cargo build before it makes"
                        );
                    } else {
                        assert!(
                            !step.contains(" /") && !step.contains(".."),
                            "only steps inside the build folder are replayed: {step}"
                        );
                        let status = std::process::Command::new("sh")
                            .arg("-c")
                            .arg(step)
                            .current_dir(&workdir)
                            .status()
                            .expect("sh");
                        assert!(status.success(), "RUN step failed: {step}");
                    }
                }
            }
            "ENV" | "ARG" | "LABEL" => {}
            other => panic!("builder-stage instruction {other} is not replayed"),
        }
    }
    assert!(
        builds >= 2,
        "expected the dependency layer and the real build"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// The bench and test scripts run the binaries cargo built, wherever CARGO_TARGET_DIR put them.
#[test]
fn scripts_find_builds_in_cargo_target_dir() {
    for script in ["benches/run.sh", "benches/ab.sh", "scripts/test"] {
        let text = read(script);
        for (n, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or_default();
            assert!(
                !code.contains("/target/debug/") && !code.contains("/target/release/"),
                "{script}:{}: a fixed target/ path ignores CARGO_TARGET_DIR: {line}",
                n + 1
            );
        }
    }
    let root = env!("CARGO_MANIFEST_DIR");
    for (set, want) in [
        (Some("/elsewhere/t"), "/elsewhere/t".to_owned()),
        (Some("build"), format!("{root}/build")),
        (None, format!("{root}/target")),
    ] {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c")
            .arg(r#"ROOT=$1; source "$ROOT/benches/lib.sh"; target_dir"#)
            .arg("bash")
            .arg(root)
            .env_remove("CARGO_TARGET_DIR");
        if let Some(v) = set {
            cmd.env("CARGO_TARGET_DIR", v);
        }
        let out = cmd.output().expect("bash");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "{set:?}");
    }
}

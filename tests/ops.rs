//! The shipped operations files: the systemd unit stays hardened; the container
//! file and the compose example say what they must (building the image needs a
//! container engine: `ops/container-test.sh`, run by `ops/test.sh`).

mod common;

use std::process::Command;

use serde_json::Value;

/// `systemd-analyze security` rates the unit 1.2 (OK); a change that loosens it
/// past 1.5 fails here.
#[test]
fn the_systemd_unit_exposure_stays_low() {
    let unit = common::repo_root().join("ops/systemd/picloud.service");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=15", "--no-pager"])
        .arg(&unit)
        .current_dir(dir.path())
        .output();
    let Ok(out) = out else {
        if common::missing("systemd-analyze") {
            return;
        }
        unreachable!();
    };
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure above 1.5:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("Overall exposure level"), "{report}");
}

fn ops_file(name: &str) -> String {
    std::fs::read_to_string(common::repo_root().join("ops").join(name))
        .unwrap_or_else(|e| panic!("ops/{name}: {e}"))
}

/// The instructions of a Containerfile (continuation lines joined), per stage.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

#[test]
fn the_container_file_builds_in_two_stages_and_runs_unprivileged() {
    let steps = instructions(&ops_file("Containerfile"));
    let from: Vec<&String> = steps.iter().filter(|s| s.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "multi-stage: {from:?}");
    assert!(from[0].contains(" AS build"), "{from:?}");
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("RUN ") && s.contains("cargo build --release --locked")),
        "a release build"
    );
    // The final stage: the binary from the build stage, nothing else of it.
    let last = steps
        .iter()
        .rposition(|s| s.starts_with("FROM "))
        .expect("final stage");
    let runtime = &steps[last..];
    let copies: Vec<&String> = runtime.iter().filter(|s| s.starts_with("COPY ")).collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].starts_with("COPY --from=build "), "{copies:?}");
    let find = |word: &str| {
        runtime
            .iter()
            .find(|s| s.starts_with(word))
            .unwrap_or_else(|| panic!("no {word} in the final stage"))
            .clone()
    };
    let user = find("USER ");
    let uid = user["USER ".len()..].split(':').next().unwrap_or_default();
    assert!(!["0", "root", ""].contains(&uid), "{user}");
    assert!(find("VOLUME ").contains("/var/lib/picloud"));
    assert!(find("ENV ").contains("PICLOUD_DATA_DIR=/var/lib/picloud"));
    let health = find("HEALTHCHECK ");
    assert!(
        health.contains("/readyz") && health.contains(" 200 "),
        "{health}"
    );
    assert!(find("ENTRYPOINT ").contains("picloud"));
    assert!(
        common::repo_root().join(".dockerignore").exists(),
        "the build context leaves out target/"
    );
}

#[test]
fn the_compose_example_runs_three_nodes_on_one_postgresql_behind_caddy() {
    let compose: Value = serde_yaml_ng::from_str(&ops_file("compose.yml")).expect("valid YAML");
    let services = compose["services"].as_object().expect("services");
    let env =
        |service: &Value, name: &str| service["environment"][name].as_str().map(str::to_owned);

    let postgres = &services["postgres"];
    assert!(
        postgres["image"]
            .as_str()
            .is_some_and(|i| i.contains("postgres")),
        "{postgres}"
    );
    assert!(postgres["healthcheck"].is_object());

    let nodes: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| env(s, "DATABASE_URL").is_some())
        .collect();
    assert_eq!(nodes.len(), 3, "three nodes");
    let one = |name: &str| {
        let values: std::collections::BTreeSet<Option<String>> =
            nodes.iter().map(|(_, s)| env(s, name)).collect();
        assert_eq!(values.len(), 1, "{name} differs between nodes: {values:?}");
        values.into_iter().next().flatten().unwrap_or_default()
    };
    assert!(one("DATABASE_URL").contains("@postgres:"));
    assert!(!one("PICLOUD_MASTER_KEY").is_empty());
    let advertised: std::collections::BTreeSet<Option<String>> = nodes
        .iter()
        .map(|(_, s)| env(s, "PICLOUD_ADVERTISE"))
        .collect();
    assert_eq!(advertised.len(), 3, "each node its own address");
    for (name, node) in &nodes {
        let depends = &node["depends_on"]["postgres"]["condition"];
        assert_eq!(depends, "service_healthy", "{name} waits for PostgreSQL");
        let volumes = node["volumes"].as_array().expect("a data volume");
        assert!(
            volumes
                .iter()
                .any(|v| v.as_str().is_some_and(|v| v.ends_with(":/var/lib/picloud"))),
            "{name}: {volumes:?}"
        );
    }
    let built = nodes
        .iter()
        .find_map(|(_, s)| s["build"]["dockerfile"].as_str())
        .expect("one node builds the image");
    assert_eq!(built, "ops/Containerfile");

    let caddy = &services["caddy"];
    let upstreams = env(caddy, "PICLOUD_UPSTREAMS").expect("PICLOUD_UPSTREAMS");
    for (name, _) in &nodes {
        assert!(upstreams.contains(&format!("{name}:8080")), "{upstreams}");
    }
    let mounts: Vec<&str> = caddy["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let caddyfile = mounts
        .iter()
        .find(|m| m.contains(":/etc/caddy/Caddyfile"))
        .expect("the Caddyfile is mounted");
    let source = caddyfile.split(':').next().unwrap_or_default();
    assert_eq!(source, "./Caddyfile.cluster");
    // Relative to the compose file: files that exist in the repository.
    let ops = common::repo_root().join("ops");
    assert!(ops.join(source).is_file());
    assert!(
        mounts.iter().any(|m| m.starts_with("./caddy:")) && ops.join("caddy/proxy.caddy").is_file(),
        "the imported proxy settings are mounted: {mounts:?}"
    );
    let published: Vec<&str> = services
        .iter()
        .filter(|(_, s)| s.get("ports").is_some())
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(published, ["caddy"], "only Caddy publishes ports");
}

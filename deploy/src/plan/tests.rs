//! The plan as a pure function: given the server's state and a folder, the
//! changes and their order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::project::{DesiredRoute, DesiredScript, DesiredTrigger, Project, TriggerSpec};

fn script(name: &str, kind: &str, source: &str) -> DesiredScript {
    DesiredScript {
        name: name.into(),
        file: PathBuf::from(format!("scripts/{name}.rhai")),
        kind: kind.into(),
        source: source.into(),
        sandbox: json!({}),
        permissions: None,
    }
}

fn project(scripts: &[DesiredScript], routes: &[(&str, &str, &str)]) -> Project {
    Project {
        slug: "shop".into(),
        name: None,
        domains: Vec::new(),
        scripts: scripts
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect::<BTreeMap<_, _>>(),
        routes: routes
            .iter()
            .map(|(m, p, s)| DesiredRoute {
                method: (*m).into(),
                path: (*p).into(),
                script: (*s).into(),
            })
            .collect(),
        triggers: Vec::new(),
    }
}

fn server(scripts: &[(&str, &str, &str)], routes: &[(&str, &str, &str)]) -> ServerState {
    ServerState {
        app_id: "app-1".into(),
        name: "shop".into(),
        domains: Vec::new(),
        scripts: scripts
            .iter()
            .map(|(id, name, source)| ServerScript {
                id: (*id).into(),
                name: (*name).into(),
                kind: "endpoint".into(),
                source: (*source).into(),
                sandbox: json!({}),
                permissions: None,
            })
            .collect(),
        routes: routes
            .iter()
            .enumerate()
            .map(|(i, (m, p, s))| ServerRoute {
                id: format!("r{i}"),
                method: (*m).into(),
                path: (*p).into(),
                script_id: (*s).into(),
            })
            .collect(),
        triggers: Vec::new(),
    }
}

fn lines(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(Change::line).collect()
}

fn cron(label: &str, schedule: &str) -> DesiredTrigger {
    DesiredTrigger {
        label: label.into(),
        script: "api".into(),
        spec: TriggerSpec::Cron {
            schedule: schedule.into(),
            timezone: "UTC".into(),
        },
        max_attempts: 5,
        enabled: true,
        secret: None,
    }
}

#[test]
fn a_new_app_makes_modules_then_endpoints_then_routes() {
    let p = project(
        &[script("api", "endpoint", "1"), script("lib", "module", "2")],
        &[("GET", "/a", "api")],
    );
    let plan = plan(&p, None, false).expect("plan");
    assert_eq!(
        lines(&plan),
        [
            "+ app shop",
            "+ script lib (module)",
            "+ script api",
            "+ route GET /a"
        ]
    );
}

#[test]
fn the_same_state_plans_no_changes() {
    let p = project(&[script("api", "endpoint", "x")], &[("GET", "/a", "api")]);
    let s = server(&[("s1", "api", "x")], &[("GET", "/a", "s1")]);
    assert!(plan(&p, Some(&s), true).expect("plan").is_empty());
}

#[test]
fn removals_need_prune_and_routes_go_before_their_scripts() {
    let p = project(&[script("api", "endpoint", "x")], &[]);
    let s = server(
        &[("s1", "api", "x"), ("s2", "old", "y")],
        &[("GET", "/old", "s2")],
    );
    let kept = plan(&p, Some(&s), false).expect("plan");
    assert!(kept.is_empty());
    assert_eq!(kept.kept, ["script old", "route GET /old"]);
    let pruned = plan(&p, Some(&s), true).expect("plan");
    assert_eq!(lines(&pruned), ["- route GET /old", "- script old"]);
}

#[test]
fn a_route_to_another_script_is_one_change() {
    let p = project(
        &[script("a", "endpoint", "1"), script("b", "endpoint", "2")],
        &[("GET", "/x", "b")],
    );
    let s = server(
        &[("s1", "a", "1"), ("s2", "b", "2")],
        &[("GET", "/x", "s1")],
    );
    let plan = plan(&p, Some(&s), false).expect("plan");
    assert_eq!(lines(&plan), ["~ route GET /x: script a → b"]);
}

#[test]
fn a_changed_source_counts_lines_and_carries_a_diff() {
    let p = project(&[script("api", "endpoint", "a\nB\nc\n")], &[]);
    let s = server(&[("s1", "api", "a\nb\nc\n")], &[]);
    let plan = plan(&p, Some(&s), false).expect("plan");
    assert_eq!(lines(&plan), ["~ script api (1 line changed)"]);
    assert_eq!(
        plan.changes[0].diff.as_deref(),
        Some("@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
    );
}

#[test]
fn a_kind_change_is_refused() {
    let p = project(&[script("api", "module", "x")], &[]);
    let s = server(&[("s1", "api", "x")], &[]);
    let err = plan(&p, Some(&s), false).expect_err("refused");
    assert!(err.0.contains("scripts/api.rhai"), "{err}");
}

#[test]
fn a_moved_cron_is_paired_with_the_old_one_and_a_disabled_one_switched() {
    let mut p = project(&[script("api", "endpoint", "x")], &[]);
    p.triggers = vec![cron("nightly", "0 30 3 * * *"), {
        let mut t = cron("hourly", "0 0 * * * *");
        t.enabled = false;
        t
    }];
    let mut s = server(&[("s1", "api", "x")], &[]);
    s.triggers = vec![
        ServerTrigger {
            id: "t1".into(),
            script_id: "s1".into(),
            spec: TriggerSpec::Cron {
                schedule: "0 0 3 * * *".into(),
                timezone: "UTC".into(),
            },
            max_attempts: 5,
            enabled: true,
        },
        ServerTrigger {
            id: "t2".into(),
            script_id: "s1".into(),
            spec: TriggerSpec::Cron {
                schedule: "0 0 * * * *".into(),
                timezone: "UTC".into(),
            },
            max_attempts: 5,
            enabled: true,
        },
    ];
    let plan = plan(&p, Some(&s), false).expect("plan");
    assert_eq!(
        lines(&plan),
        [
            "~ cron hourly: enabled true → false",
            r#"~ cron nightly: schedule "0 0 3 * * *" → "0 30 3 * * *""#,
        ]
    );
    assert!(plan.kept.is_empty());
}

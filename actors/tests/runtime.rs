//! The runtime against a real SQLite store: commands through app actors, the
//! catalog following the log, and the same state whether it is built live, by a
//! full replay, or from a snapshot plus catch-up.

use std::sync::Arc;

use picloud_actors::catalog::Catalog;
use picloud_actors::projector::{catch_up_catalog, restore_catalog, save_catalog_snapshot};
use picloud_actors::{AppCommand, CommandError, Runtime, RuntimeConfig};
use picloud_events::Metadata;
use picloud_events::domain::ScriptKind;
use picloud_sandbox::Overrides;

async fn runtime() -> (Arc<Runtime>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = picloud_events::open(&picloud_events::store::sqlite_url(dir.path()))
        .await
        .expect("store");
    let runtime = Runtime::start(store, RuntimeConfig::default())
        .await
        .expect("runtime");
    (runtime, dir)
}

fn meta() -> Metadata {
    Metadata {
        actor: Some("test".into()),
        ..Metadata::default()
    }
}

/// A small deterministic pseudo-random generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn fingerprint(catalog: &Catalog) -> Vec<String> {
    let mut out: Vec<String> = catalog
        .apps()
        .iter()
        .map(|e| format!("{:?}", e.app))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_random_history_gives_the_same_catalog_live_replayed_and_from_a_snapshot() {
    let (rt, _dir) = runtime().await;
    let mut rng = Lcg(42);
    let mut apps: Vec<String> = Vec::new();
    let mut scripts: Vec<(String, String)> = Vec::new();
    let mut accepted = 0;
    let mut snapshot_taken = false;
    for step in 0..300 {
        let choice = if apps.is_empty() { 0 } else { rng.next(7) };
        let app = apps
            .get(rng.next(apps.len().max(1) as u64) as usize)
            .cloned();
        let (target, command) = match (choice, app) {
            (0, _) | (_, None) => {
                let id = uuid::Uuid::now_v7().to_string();
                let slug = format!("app{}", rng.next(40));
                (id, AppCommand::Create { slug, name: None })
            }
            (1, Some(app)) => (
                app,
                AppCommand::Rename {
                    name: format!("name {step}"),
                },
            ),
            (2, Some(app)) => {
                let script_id = uuid::Uuid::now_v7().to_string();
                let cmd = AppCommand::CreateScript {
                    script_id: script_id.clone(),
                    name: format!("s{}", rng.next(5)),
                    kind: ScriptKind::Endpoint,
                    source: format!("\"{step}\""),
                    sandbox: Overrides::default(),
                    permissions: None,
                };
                scripts.push((app.clone(), script_id));
                (app, cmd)
            }
            (3, Some(app)) => {
                let script = scripts
                    .iter()
                    .filter(|(a, _)| *a == app)
                    .map(|(_, s)| s.clone())
                    .next();
                let cmd = match script {
                    Some(script_id) => AppCommand::UpdateScript {
                        script_id,
                        source: Some(format!("\"v{step}\"")),
                        sandbox: None,
                        permissions: None,
                    },
                    None => AppCommand::AddDomain {
                        domain: format!("d{}.example.com", rng.next(20)),
                    },
                };
                (app, cmd)
            }
            (4, Some(app)) => {
                let script = scripts
                    .iter()
                    .filter(|(a, _)| *a == app)
                    .map(|(_, s)| s.clone())
                    .next();
                let cmd = AppCommand::AddRoute {
                    route_id: uuid::Uuid::now_v7().to_string(),
                    method: ["GET", "POST", "*"][rng.next(3) as usize].into(),
                    path: format!("/p{}/:id", rng.next(4)),
                    script_id: script.unwrap_or_default(),
                };
                (app, cmd)
            }
            (5, Some(app)) => (
                app,
                AppCommand::AddDomain {
                    domain: format!("d{}.example.com", rng.next(20)),
                },
            ),
            (_, Some(app)) => {
                if rng.next(4) == 0 {
                    (app, AppCommand::Delete)
                } else {
                    (
                        app,
                        AppCommand::Rename {
                            name: format!("again {step}"),
                        },
                    )
                }
            }
        };
        let created = matches!(command, AppCommand::Create { .. });
        match rt.command(&target, command, meta()).await {
            Ok(_) => {
                accepted += 1;
                if created {
                    apps.push(target);
                }
            }
            // Refusals are part of a random history; the store must not change.
            Err(
                CommandError::Conflict { .. }
                | CommandError::Invalid { .. }
                | CommandError::NotFound(_),
            ) => {}
            Err(e) => panic!("unexpected error at step {step}: {e}"),
        }
        if step == 150 {
            save_catalog_snapshot(rt.store.as_ref(), &rt.catalog)
                .await
                .expect("snapshot");
            snapshot_taken = true;
        }
    }
    assert!(snapshot_taken);
    assert!(accepted > 100, "the history did something ({accepted})");
    let live = fingerprint(&rt.catalog);
    assert!(!live.is_empty());

    let replayed = Catalog::new();
    catch_up_catalog(rt.store.as_ref(), &replayed)
        .await
        .expect("replay");
    assert_eq!(fingerprint(&replayed), live, "full replay equals live");

    let restored = Catalog::new();
    restore_catalog(rt.store.as_ref(), &restored)
        .await
        .expect("restore");
    assert!(restored.position() > 0, "the snapshot was used");
    catch_up_catalog(rt.store.as_ref(), &restored)
        .await
        .expect("catch up");
    assert_eq!(
        fingerprint(&restored),
        live,
        "snapshot + catch-up equals live"
    );
    rt.shutdown().await;
}

#[tokio::test]
async fn concurrent_creates_of_one_slug_have_exactly_one_winner() {
    let (rt, _dir) = runtime().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let id = uuid::Uuid::now_v7().to_string();
            rt.command(
                &id,
                AppCommand::Create {
                    slug: "race".into(),
                    name: None,
                },
                meta(),
            )
            .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => wins += 1,
            Err(CommandError::Conflict { code, .. }) => assert_eq!(code, "slug_taken"),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(rt.catalog.apps().len(), 1);
    rt.shutdown().await;
}

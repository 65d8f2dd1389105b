//! `picloud replay [PROJECTION]`: rebuild read models from the whole event log,
//! directly on a store. On a running node use
//! `POST /api/v1/admin/projections/{name}/rebuild` instead: the catalog lives in
//! each node's memory, so this command rebuilds only its snapshot (which the next
//! start loads), the stored `invocations` documents and the `outbox` rows (their
//! leases are cleared: whatever was in flight is claimable again).

use picloud_actors::Catalog;
use picloud_actors::projector::{catch_up_catalog, save_catalog_snapshot};
use picloud_events::domain::{InvocationsProjection, OutboxProjection};
use picloud_events::projection;

use crate::cli::ReplayArgs;

pub async fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let store = crate::open_store(&args.store).await?;
    let all = ["catalog", "invocations", "outbox"];
    let names: Vec<&str> = match args.projection.as_deref() {
        Some(name) => vec![name],
        None => all.to_vec(),
    };
    for name in names {
        let started = std::time::Instant::now();
        let position = match name {
            "catalog" => {
                let catalog = Catalog::new();
                let position = catch_up_catalog(store.as_ref(), &catalog).await?;
                save_catalog_snapshot(store.as_ref(), &catalog).await?;
                let (_, snapshot) = catalog.snapshot();
                println!(
                    "catalog: {} apps, {} users",
                    snapshot.apps.len(),
                    snapshot.users.len()
                );
                position
            }
            "invocations" => projection::rebuild(store.as_ref(), &InvocationsProjection).await?,
            "outbox" => projection::rebuild(store.as_ref(), &OutboxProjection).await?,
            other => anyhow::bail!("unknown projection {other} (catalog, invocations or outbox)"),
        };
        println!(
            "{name}: rebuilt to position {position} in {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    store.close().await;
    Ok(())
}

//! `picloud export --out FILE` and `picloud import FILE`: move a whole event log
//! between stores of either backend. The file format is documented in
//! `picloud_events::transfer`.

use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::Context;
use picloud_events::transfer;

use crate::cli::{ExportArgs, ImportArgs};

pub async fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let store = crate::open_store(&args.store).await?;
    let result = if args.out == Path::new("-") {
        let mut out = BufWriter::new(std::io::stdout());
        transfer::export(store.as_ref(), &mut out)
            .await
            .map_err(anyhow::Error::from)
    } else {
        export_to_file(store.as_ref(), &args.out).await
    };
    store.close().await;
    let summary = result?;
    eprintln!(
        "exported {} events (last position {}) and {} kv keys from {}",
        summary.events,
        summary.last_position,
        summary.kv,
        args.store.describe()
    );
    Ok(())
}

/// Write next to the target, then rename: a failed export never leaves a file
/// that looks complete, and never clobbers an earlier export.
async fn export_to_file(
    store: &dyn picloud_events::Store,
    path: &Path,
) -> anyhow::Result<transfer::ExportSummary> {
    let name = path
        .file_name()
        .with_context(|| format!("--out {} is not a file name", path.display()))?;
    let mut partial_name = name.to_owned();
    partial_name.push(".partial");
    let partial = path.with_file_name(partial_name);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut out = BufWriter::new(file);
    let written = transfer::export(store, &mut out).await;
    let finished = written.map_err(anyhow::Error::from).and_then(|summary| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(summary)
    });
    match finished {
        Ok(summary) => {
            std::fs::rename(&partial, path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e.context(format!("exporting to {}", path.display())))
        }
    }
}

pub async fn import(args: &ImportArgs) -> anyhow::Result<()> {
    // Verify the whole file before the store is even opened.
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let export = transfer::read_export(BufReader::new(file)).with_context(|| {
        format!(
            "{} is not a complete export; nothing was written",
            args.file.display()
        )
    })?;
    let store = crate::open_store(&args.store).await?;
    let result = transfer::import(store.as_ref(), &export).await;
    store.close().await;
    result.with_context(|| format!("importing into {}", args.store.describe()))?;
    eprintln!(
        "imported {} events and {} kv keys into {}; read models are rebuilt when a node \
         starts on it",
        export.events.len(),
        export.kv.len(),
        args.store.describe()
    );
    Ok(())
}

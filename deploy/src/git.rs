//! A folder of a git repository at a branch's commit, written out for
//! [`Project::load`](crate::Project::load): `picloud deploy --git`, and later git
//! sync. Pure Rust (gix), no `git` process.
//!
//! For now only repositories on this machine (`file://` URLs or plain paths):
//! fetching over https needs gix's network transport, which comes with git sync.

use std::path::Path;

/// Why a repository could not be read; the message names the repository.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub String);

/// The commit a folder was taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// Full hex id.
    pub commit: String,
    /// The first line of its message.
    pub summary: String,
}

/// Write the folder `path` (the root when `None`) of `url` at `branch` (HEAD when
/// `None`) into the empty directory `dest`. Regular and executable files and
/// directories are written; symbolic links and submodules are skipped.
pub fn export(
    url: &str,
    branch: Option<&str>,
    path: Option<&str>,
    dest: &Path,
) -> Result<Checkout, GitError> {
    let local = match url.strip_prefix("file://") {
        Some(p) => p,
        None if url.contains("://") || url.starts_with("git@") => {
            return Err(GitError(format!(
                "{url}: only file:// repositories can be deployed for now (fetching over the network comes with git sync)"
            )));
        }
        None => url,
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| GitError(format!("{url}: {what}: {e}"));
    let repo = gix::open_opts(local, gix::open::Options::isolated())
        .map_err(|e| fail("not a git repository", &e))?;
    let commit = match branch {
        Some(b) => {
            let mut reference = repo
                .find_reference(format!("refs/heads/{b}").as_str())
                .map_err(|e| fail(&format!("no branch {b:?}"), &e))?;
            reference
                .peel_to_commit()
                .map_err(|e| fail(&format!("branch {b:?}"), &e))?
        }
        None => repo.head_commit().map_err(|e| fail("HEAD", &e))?,
    };
    let summary = commit
        .decode()
        .map(|c| {
            String::from_utf8_lossy(c.message)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    let mut tree = commit.tree().map_err(|e| fail("the commit's tree", &e))?;
    if let Some(p) = path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        let entry = tree
            .lookup_entry_by_path(p)
            .map_err(|e| fail(&format!("path {p:?}"), &e))?
            .ok_or_else(|| GitError(format!("{url}: no folder {p:?} in the commit")))?;
        if !entry.mode().is_tree() {
            return Err(GitError(format!("{url}: {p:?} is not a folder")));
        }
        tree = entry
            .object()
            .and_then(|o| o.try_into_tree())
            .map_err(|e| fail(&format!("path {p:?}"), &e))?;
    }
    write_tree(&tree, dest).map_err(|e| GitError(format!("{url}: {}", e.0)))?;
    Ok(Checkout {
        commit: commit.id.to_string(),
        summary,
    })
}

fn write_tree(tree: &gix::Tree<'_>, dest: &Path) -> Result<(), GitError> {
    for entry in tree.iter() {
        let entry = entry.map_err(|e| GitError(format!("reading a tree: {e}")))?;
        let name = entry.filename().to_string();
        // A tree entry is one path component; refuse anything that would leave `dest`.
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
            return Err(GitError(format!("refusing the file name {name:?}")));
        }
        let target = dest.join(&name);
        let mode = entry.mode();
        if mode.is_tree() {
            std::fs::create_dir(&target)
                .map_err(|e| GitError(format!("cannot create {}: {e}", target.display())))?;
            let sub = entry
                .object()
                .and_then(|o| o.try_into_tree())
                .map_err(|e| GitError(format!("{name}: {e}")))?;
            write_tree(&sub, &target)?;
        } else if mode.is_blob() {
            let object = entry
                .object()
                .map_err(|e| GitError(format!("{name}: {e}")))?;
            std::fs::write(&target, &object.data)
                .map_err(|e| GitError(format!("cannot write {}: {e}", target.display())))?;
        }
    }
    Ok(())
}

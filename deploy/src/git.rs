//! A folder of a git repository at a branch's commit, written out for
//! [`Project::load`](crate::Project::load): `picloud deploy --git` and git sync.
//! Pure Rust (gix), no `git` process.
//!
//! Repositories on this machine (`file://` URLs or plain paths) are opened in
//! place; `https://` and `http://` remotes are fetched (the branch tip only,
//! depth 1) into a temporary bare repository over the smart HTTP protocol
//! ([`http`]: gix's transport over the workspace's reqwest). Nothing else
//! (ssh, `git://`) is accepted.

mod fetch;
pub mod http;

use std::path::Path;

pub use http::{Credentials, GitHttp};

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

/// Where a repository is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A path on this machine (`file://` stripped).
    Local(String),
    /// An http(s) URL without credentials in it, and the credentials that were.
    Http {
        url: String,
        user_info: Option<String>,
    },
}

/// Which kind of repository `url` names: `https://` and `http://` URLs,
/// `file://` URLs and paths. Anything else (ssh, `git://`, `git@host:path`) is
/// refused with a message saying what is accepted.
pub fn locate(url: &str) -> Result<Location, GitError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        let mut parsed = reqwest::Url::parse(url)
            .map_err(|e| GitError(format!("{}: not a valid URL: {e}", redact(url))))?;
        let user_info = (!parsed.username().is_empty() || parsed.password().is_some()).then(|| {
            let user = percent_decode(parsed.username());
            match parsed.password() {
                Some(password) => format!("{user}:{}", percent_decode(password)),
                None => user,
            }
        });
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        return Ok(Location::Http {
            url: parsed.to_string(),
            user_info,
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Location::Local(path.to_owned()));
    }
    if url.contains("://") || url.starts_with("git@") {
        return Err(GitError(format!(
            "{}: only https://, http:// and file:// repositories (or a path) can be deployed",
            redact(url)
        )));
    }
    Ok(Location::Local(url.to_owned()))
}

/// `url` with any user and password in it replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Write the folder `path` (the root when `None`) of `url` at `branch` (HEAD when
/// `None`) into the empty directory `dest`. Regular and executable files and
/// directories are written; symbolic links and submodules are skipped. An
/// http(s) remote needs `http` (how to reach it); its commit is fetched into a
/// temporary directory beside `dest`, removed afterwards.
pub fn export(
    url: &str,
    branch: Option<&str>,
    path: Option<&str>,
    dest: &Path,
    http: Option<&GitHttp>,
) -> Result<Checkout, GitError> {
    let shown = redact(url);
    match locate(url)? {
        Location::Local(local) => {
            let repo = gix::open_opts(&local, gix::open::Options::isolated())
                .map_err(|e| GitError(format!("{shown}: not a git repository: {e}")))?;
            let commit = match branch {
                Some(b) => {
                    let mut reference = repo
                        .find_reference(format!("refs/heads/{b}").as_str())
                        .map_err(|e| GitError(format!("{shown}: no branch {b:?}: {e}")))?;
                    reference
                        .peel_to_commit()
                        .map_err(|e| GitError(format!("{shown}: branch {b:?}: {e}")))?
                }
                None => repo
                    .head_commit()
                    .map_err(|e| GitError(format!("{shown}: HEAD: {e}")))?,
            };
            export_commit(&shown, &commit, path, dest)
        }
        Location::Http { url, user_info } => {
            let http = http.ok_or_else(|| {
                GitError(format!(
                    "{shown}: http(s) remotes cannot be reached from here"
                ))
            })?;
            let http = match user_info {
                Some(info) => http.with_credentials(Some(Credentials::parse(&info))),
                None => http.clone(),
            };
            let scratch = dest.with_extension("fetch");
            std::fs::create_dir(&scratch)
                .map_err(|e| GitError(format!("cannot create {}: {e}", scratch.display())))?;
            let result = fetch::tip(&url, branch, &http, &scratch)
                .map_err(|e| GitError(format!("{shown}: {}", e.0)))
                .and_then(|(repo, id)| {
                    let commit = repo
                        .find_commit(id)
                        .map_err(|e| GitError(format!("{shown}: the fetched commit: {e}")))?;
                    export_commit(&shown, &commit, path, dest)
                });
            let _ = std::fs::remove_dir_all(&scratch);
            result
        }
    }
}

/// Why a folder of a repository could not be loaded as a project; `commit` when
/// the repository itself was read.
#[derive(Debug)]
pub struct LoadError {
    pub commit: Option<String>,
    pub message: String,
}

/// The project in the folder `path` of `url` at `branch`, read from a temporary
/// copy (removed afterwards). Messages name files as `shown` + their path in the
/// folder, not the temporary copy. Blocking: call it off the async reactor.
pub fn load_project(
    url: &str,
    branch: Option<&str>,
    path: Option<&str>,
    http: Option<&GitHttp>,
    env: &dyn Fn(&str) -> Option<String>,
    shown: &str,
) -> Result<(crate::Project, Checkout), LoadError> {
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp =
        std::env::temp_dir().join(format!("picloud-git-{}-{nanos}-{copy}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(|e| LoadError {
        commit: None,
        message: format!("cannot create {}: {e}", tmp.display()),
    })?;
    let result = export(url, branch, path, &tmp, http)
        .map_err(|e| LoadError {
            commit: None,
            message: e.0,
        })
        .and_then(|checkout| match crate::Project::load(&tmp, env) {
            Ok(project) => Ok((project, checkout)),
            Err(e) => Err(LoadError {
                message: e.0.replace(&tmp.display().to_string(), shown),
                commit: Some(checkout.commit),
            }),
        });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Write `path` of `commit`'s tree into `dest`.
fn export_commit(
    shown: &str,
    commit: &gix::Commit<'_>,
    path: Option<&str>,
    dest: &Path,
) -> Result<Checkout, GitError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| GitError(format!("{shown}: {what}: {e}"));
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
            .ok_or_else(|| GitError(format!("{shown}: no folder {p:?} in the commit")))?;
        if !entry.mode().is_tree() {
            return Err(GitError(format!("{shown}: {p:?} is not a folder")));
        }
        tree = entry
            .object()
            .and_then(|o| o.try_into_tree())
            .map_err(|e| fail(&format!("path {p:?}"), &e))?;
    }
    write_tree(&tree, dest).map_err(|e| GitError(format!("{shown}: {}", e.0)))?;
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

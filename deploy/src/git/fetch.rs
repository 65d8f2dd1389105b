//! Fetching one branch tip of an http(s) remote into a new bare repository, the
//! way `git fetch --depth 1 URL BRANCH` would: no tags, no other refs, and no
//! configuration from the machine (`open::Options::isolated()`, credentials only
//! from [`GitHttp`], never a credential helper or a prompt).

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::PoisonError;
use std::sync::atomic::AtomicBool;

use gix::remote::Direction;
use gix::remote::fetch::{Shallow, Tags};
use gix::utils::progress::Discard;
use gix_transport::Protocol;
use gix_transport::client::blocking_io::http::Transport;

use super::GitError;
use super::http::{GitHttp, Session};

/// Fetch `branch` (the remote's HEAD when `None`) of `url` into a bare repository
/// made in the empty directory `scratch`; the repository and the tip's id.
pub fn tip(
    url: &str,
    branch: Option<&str>,
    http: &GitHttp,
    scratch: &Path,
) -> Result<(gix::Repository, gix::ObjectId), GitError> {
    let repo = gix::ThreadSafeRepository::init_opts(
        scratch,
        gix::create::Kind::Bare,
        gix::create::Options::default(),
        gix::open::Options::isolated(),
    )
    .map_err(|e| GitError(format!("cannot create a repository to fetch into: {e}")))?
    .to_thread_local();
    let spec = match branch {
        Some(b) => format!("+refs/heads/{b}:refs/remotes/origin/{b}"),
        None => "+HEAD:refs/remotes/origin/HEAD".to_owned(),
    };
    let git_url = gix::url::parse(gix::bstr::BStr::new(url))
        .map_err(|e| GitError(format!("not a URL: {e}")))?;
    let remote = repo
        .remote_at_without_url_rewrite(git_url.clone())
        .and_then(|r| r.with_refspecs(Some(spec.as_str()), Direction::Fetch))
        .map_err(|e| GitError(format!("{e}")))?
        .with_fetch_tags(Tags::None);

    let session = Session::new(http.clone());
    let failure = session.failure();
    let transport = Transport::new_http(session, git_url, Protocol::V2, false);
    // Why the fetch failed: our own line when a request failed, else gix's.
    let explain = |e: &dyn std::fmt::Display| {
        let why = failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        GitError(why.unwrap_or_else(|| e.to_string()))
    };
    let outcome = remote
        .to_connection_with_transport(transport)
        // No credential helper, no prompt: what `http` carries or nothing.
        .with_credentials(|_| Ok(None))
        .prepare_fetch(Discard, gix::remote::ref_map::Options::default())
        .map_err(|e| explain(&e))?
        .with_shallow(Shallow::DepthAtRemote(NonZeroU32::MIN))
        .receive(Discard, &AtomicBool::new(false))
        .map_err(|e| explain(&e))?;
    let id = outcome
        .ref_map
        .mappings
        .iter()
        .find_map(|m| m.remote.as_id())
        .map(ToOwned::to_owned)
        .ok_or_else(|| match branch {
            Some(b) => GitError(format!("no branch {b:?}")),
            None => GitError("the repository has no HEAD".into()),
        })?;
    Ok((repo, id))
}

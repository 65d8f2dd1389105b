//! How the CLI reaches a server: the URL and token (flags, then `PICLOUD_URL` /
//! `PICLOUD_TOKEN`, then the per-user config file that `picloud login` writes),
//! and an HTTP client over the admin API whose errors are one readable line.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deploy::{AdminApi, ApiCallError};

/// The server a command talks to.
#[derive(Args, Clone, Debug, Default)]
pub struct RemoteArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8080 [default: the config file's]
    #[arg(long, env = "PICLOUD_URL", global = true)]
    pub url: Option<String>,
    /// An API token [default: the config file's]
    #[arg(long, env = "PICLOUD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

/// The per-user config file: `$XDG_CONFIG_HOME/picloud/config.toml`, else
/// `~/.config/picloud/config.toml`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct UserConfig {
    pub url: Option<String>,
    pub token: Option<String>,
}

pub fn config_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("picloud/config.toml"));
    }
    let home = std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            anyhow!("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the config")
        })?;
    Ok(PathBuf::from(home).join(".config/picloud/config.toml"))
}

impl UserConfig {
    /// The config file's contents; empty when there is none.
    pub fn load() -> anyhow::Result<UserConfig> {
        let path = config_path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| anyhow!("{}: {}", path.display(), e.message().trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UserConfig::default()),
            Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Write the file, readable by its owner only (it holds a token).
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        use std::io::Write;
        let path = config_path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = toml::to_string(self).context("cannot encode the config")?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        // An existing file keeps its mode on open: set it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", path.display()))?;
        }
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// How long one admin API call may take (not the live log stream, not `invoke`).
const ADMIN_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A server and a token to call it with.
#[derive(Clone)]
pub struct Remote {
    pub url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Remote {
    /// Flags and environment first, then the config file.
    pub fn resolve(args: &RemoteArgs) -> anyhow::Result<Remote> {
        let remote = Remote::resolve_anonymous(args)?;
        if remote.token.is_none() {
            return Err(anyhow!(
                "no token: pass --token, set PICLOUD_TOKEN, or run `picloud login`"
            ));
        }
        Ok(remote)
    }

    /// Like [`Remote::resolve`], but without a token if none is given (public calls).
    pub fn resolve_anonymous(args: &RemoteArgs) -> anyhow::Result<Remote> {
        let file = if args.url.is_none() || args.token.is_none() {
            UserConfig::load()?
        } else {
            UserConfig::default()
        };
        let url = args.url.clone().or(file.url).ok_or_else(|| {
            anyhow!("no server: pass --url, set PICLOUD_URL, or run `picloud login`")
        })?;
        let token = args.token.clone().or(file.token);
        Remote::new(&url, token.as_deref())
    }

    pub fn new(url: &str, token: Option<&str>) -> anyhow::Result<Remote> {
        let url = url.trim_end_matches('/').to_owned();
        let parsed =
            reqwest::Url::parse(&url).map_err(|e| anyhow!("invalid server URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(anyhow!(
                "invalid server URL {url:?}: use http:// or https://"
            ));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("picloud-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Remote {
            url,
            token: token.map(str::to_owned),
            http,
        })
    }

    /// The same server without the token: the invocation edge hands every
    /// header to the script, and a token is not the script's business.
    pub fn without_token(&self) -> Remote {
        Remote {
            token: None,
            ..self.clone()
        }
    }

    /// A request to `path` on the server (a full path, e.g. `/demo/hello`).
    pub fn request(&self, method: &str, path: &str) -> anyhow::Result<reqwest::RequestBuilder> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| anyhow!("invalid HTTP method {method:?}"))?;
        let req = self.http.request(method, format!("{}{path}", self.url));
        Ok(match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        })
    }

    /// Send a request; a failure to connect is one line naming the server.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiCallError> {
        req.send().await.map_err(|e| ApiCallError {
            status: None,
            message: unreachable_message(&self.url, &e),
        })
    }

    /// An admin API call (`path` under `/api/v1/admin`) as an `anyhow` result.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        Ok(self.call(method, path, body).await?)
    }
}

fn unreachable_message(url: &str, e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if e.is_timeout() {
        format!("the server at {url} did not answer in time")
    } else {
        format!("cannot reach the server at {url}: {cause}")
    }
}

/// A non-2xx answer as one line: the API's own message, and what the status means.
pub fn error_message(status: u16, body: &[u8]) -> String {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let message = json
        .as_ref()
        .and_then(|j| j["error"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect()
        });
    let mut extra = String::new();
    if let Some(j) = &json {
        if let Some(field) = j["field"].as_str() {
            extra.push_str(&format!(" [field {field}]"));
        }
        if let Some(line) = j["line"].as_u64() {
            extra.push_str(&format!(" [line {line}]"));
        }
    }
    match status {
        401 => format!("the server refused the token (401): {message}"),
        403 => format!("not allowed (403): {message}"),
        _ => format!("{message}{extra} ({status})"),
    }
}

impl AdminApi for Remote {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiCallError> {
        let req = self
            .request(method, &format!("/api/v1/admin{path}"))
            .map_err(|e| ApiCallError {
                status: None,
                message: e.to_string(),
            })?;
        // An admin call is quick; a server that holds one this long is not answering.
        let req = req.timeout(ADMIN_CALL_TIMEOUT);
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(b.to_string()),
            None => req,
        };
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| ApiCallError {
            status: Some(status),
            message: format!("reading the answer from {}: {e}", self.url),
        })?;
        if !(200..300).contains(&status) {
            return Err(ApiCallError {
                status: Some(status),
                message: error_message(status, &bytes),
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiCallError {
            status: Some(status),
            message: format!("the server's answer is not JSON: {e}"),
        })
    }
}

//! One typed configuration for a node ([`ServeArgs`]), built once from a TOML file,
//! the environment and flags (a flag wins over its variable, which wins over the
//! file) and validated at start with a message naming the setting.
//!
//! - `config/file.rs`: reading the file, with the line of every key.
//! - `config/layers.rs`: the layering, and where each setting came from.
//! - `config/show.rs`: `picloud config show`, secrets masked.

mod file;
mod layers;
mod show;

pub use layers::{LoadError, LogSettings, Setting, Settings, Source, load};
pub use show::{mask, render};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use picloud_sandbox::{HttpPolicy, LimitSettings};

/// A value never printed: `Debug` shows a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

/// A setting with an invalid value: its key (as in the file) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(key: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            key,
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where the event log lives.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// Data directory (SQLite file, bootstrap token).
    #[arg(long, env = "PICLOUD_DATA_DIR", default_value = "./picloud-data")]
    pub data_dir: PathBuf,
    /// A postgres:// URL; when absent the store is SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database: Option<String>,
}

impl StoreArgs {
    /// The store URL, after checking the settings.
    pub fn store_url(&self) -> Result<String, String> {
        match &self.database {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(url.clone())
            }
            Some(url) if url.starts_with("sqlite://") => Ok(url.clone()),
            Some(_) => Err("--database / DATABASE_URL must be a postgres:// URL".into()),
            None => {
                std::fs::create_dir_all(&self.data_dir).map_err(|e| {
                    format!(
                        "--data-dir / PICLOUD_DATA_DIR: cannot create {}: {e}",
                        self.data_dir.display()
                    )
                })?;
                Ok(picloud_events::store::sqlite_url(&self.data_dir))
            }
        }
    }

    /// The store named in logs, without credentials.
    pub fn describe(&self) -> String {
        match &self.database {
            Some(url) => {
                let host = url
                    .split_once('@')
                    .map(|(_, rest)| rest)
                    .unwrap_or_else(|| url.split_once("://").map_or(url.as_str(), |(_, r)| r));
                format!("postgres ({host})")
            }
            None => format!("sqlite ({})", self.data_dir.join("picloud.db").display()),
        }
    }
}

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// A TOML file with any of these settings (keys as the flags, with `_` for
    /// `-`), plus `master_key` and `[sandbox.defaults]` / `[sandbox.ceilings]`.
    /// The environment and flags override it; SIGHUP reads it again.
    #[arg(long, env = "PICLOUD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "PICLOUD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Executor slots (threads running scripts); default: number of CPUs.
    #[arg(long, env = "PICLOUD_SLOTS")]
    pub slots: Option<usize>,
    /// Runs that may wait for a free slot before the edge answers 503.
    #[arg(long, env = "PICLOUD_QUEUE")]
    pub queue: Option<usize>,
    /// Largest request body in bytes (413 above).
    #[arg(long, env = "PICLOUD_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// The owner's API token on first start (otherwise one is generated).
    #[arg(long, env = "PICLOUD_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// Milliseconds before the second attempt of a failed asynchronous invocation
    /// (each later attempt waits twice as long, plus up to 25% jitter).
    #[arg(long, env = "PICLOUD_RETRY_BASE_MS", default_value_t = 1000)]
    pub retry_base_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    #[arg(long, env = "PICLOUD_RETRY_MAX_MS", default_value_t = 600_000)]
    pub retry_max_ms: u64,
    /// Seconds a draining node (SIGTERM/Ctrl-C) lets its in-flight requests and
    /// outbox runs finish before it hands back what is left and exits.
    #[arg(long, env = "PICLOUD_DRAIN_SECONDS", default_value_t = 30)]
    pub drain_seconds: u64,
    /// OTLP/HTTP collector traces are exported to (e.g. `http://127.0.0.1:4318`);
    /// no export when unset. Needs a build with the `otlp` feature.
    #[arg(long, env = "PICLOUD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The address other nodes and operators reach this node at (`host:port`),
    /// shown in the cluster registry; default: the address it listens on.
    #[arg(long, env = "PICLOUD_ADVERTISE")]
    pub advertise: Option<String>,
    /// `1` lifts the SSRF deny-list of scripts' outbound HTTP (development only).
    #[arg(long, env = "PICLOUD_HTTP_ALLOW_PRIVATE")]
    pub http_allow_private: Option<String>,
    /// Address ranges scripts may reach despite the deny-list, e.g. `10.1.0.0/16,fd00::/8`.
    #[arg(long, env = "PICLOUD_HTTP_ALLOW_CIDRS")]
    pub http_allow_cidrs: Option<String>,
    /// PEM certificates git sync trusts for https remotes, besides the built-in roots.
    #[arg(long, env = "PICLOUD_GIT_CA_FILE")]
    pub git_ca_file: Option<std::path::PathBuf>,
    /// The sandbox defaults and ceilings (file `[sandbox.*]`, env
    /// `PICLOUD_SANDBOX_DEFAULT_<KNOB>` / `PICLOUD_SANDBOX_CEILING_<KNOB>`).
    #[arg(skip)]
    pub sandbox: LimitSettings,
    /// The secrets master key (file `master_key`, env `PICLOUD_MASTER_KEY`); when
    /// absent, the key file in the data directory.
    #[arg(skip)]
    pub master_key: Option<Secret>,
}

impl ServeArgs {
    /// The outbound HTTP policy; an invalid value names its variable.
    pub fn http_policy(&self) -> Result<HttpPolicy, String> {
        HttpPolicy::from_settings(
            self.http_allow_private.as_deref(),
            self.http_allow_cidrs.as_deref(),
        )
    }

    /// Checks the values clap cannot: ranges and relations between settings.
    pub fn validate(&self) -> Result<(), Invalid> {
        HttpPolicy::from_settings(self.http_allow_private.as_deref(), None)
            .map_err(|message| Invalid::new("http_allow_private", message))?;
        self.http_policy()
            .map_err(|message| Invalid::new("http_allow_cidrs", message))?;
        if self.slots == Some(0) {
            return Err(Invalid::new(
                "slots",
                "--slots / PICLOUD_SLOTS must be at least 1",
            ));
        }
        if self.queue == Some(0) {
            return Err(Invalid::new(
                "queue",
                "--queue / PICLOUD_QUEUE must be at least 1",
            ));
        }
        if self.retry_base_ms == 0 {
            return Err(Invalid::new(
                "retry_base_ms",
                "--retry-base-ms / PICLOUD_RETRY_BASE_MS must be at least 1",
            ));
        }
        if self.retry_max_ms < self.retry_base_ms {
            return Err(Invalid::new(
                "retry_max_ms",
                "--retry-max-ms / PICLOUD_RETRY_MAX_MS must be at least --retry-base-ms",
            ));
        }
        if let Some(address) = &self.advertise
            && (address.is_empty()
                || address.len() > 255
                || address.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(Invalid::new(
                "advertise",
                "--advertise / PICLOUD_ADVERTISE must be a host:port without spaces",
            ));
        }
        if self.body_limit == 0 {
            return Err(Invalid::new(
                "body_limit",
                "--body-limit / PICLOUD_BODY_LIMIT must be at least 1",
            ));
        }
        if let Some(token) = &self.bootstrap_token
            && (token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(Invalid::new(
                "bootstrap_token",
                "PICLOUD_BOOTSTRAP_TOKEN must be at least 16 characters with no spaces",
            ));
        }
        if let Some(Secret(key)) = &self.master_key {
            picloud_actors::MasterKey::from_base64(key, picloud_actors::keys::MASTER_KEY_ENV)
                .map_err(|e| Invalid::new("master_key", e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ServeArgs;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn serve(flags: &[&str]) -> ServeArgs {
        let argv = std::iter::once("picloud").chain(flags.iter().copied());
        Serve::try_parse_from(argv).expect("flags parse").args
    }

    #[test]
    fn outbound_http_settings_are_validated_naming_the_variable() {
        let policy = serve(&["--http-allow-cidrs", "127.0.0.2/32,10.1.0.0/16"])
            .http_policy()
            .expect("valid ranges");
        assert_eq!(policy.allow_cidrs.len(), 2);
        assert!(!policy.allow_private);
        assert!(
            serve(&["--http-allow-private", "1"])
                .http_policy()
                .expect("valid")
                .allow_private
        );
        let err = serve(&["--http-allow-cidrs", "10.0.0.0/33"])
            .validate()
            .expect_err("invalid range");
        assert!(err.message.contains("PICLOUD_HTTP_ALLOW_CIDRS"), "{err}");
        assert_eq!(err.key, "http_allow_cidrs");
        let err = serve(&["--http-allow-private", "perhaps"])
            .validate()
            .expect_err("invalid flag");
        assert!(err.message.contains("PICLOUD_HTTP_ALLOW_PRIVATE"), "{err}");
        assert_eq!(err.key, "http_allow_private");
    }
}

//! One typed configuration for a node, built once from flags and environment
//! (clap reads both; a flag wins over its variable) and validated at start with a
//! message naming the setting.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use picloud_sandbox::HttpPolicy;

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
}

impl ServeArgs {
    /// The outbound HTTP policy; an invalid value names its variable.
    pub fn http_policy(&self) -> Result<HttpPolicy, String> {
        HttpPolicy::from_settings(
            self.http_allow_private.as_deref(),
            self.http_allow_cidrs.as_deref(),
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        self.http_policy()?;
        if self.slots == Some(0) {
            return Err("--slots / PICLOUD_SLOTS must be at least 1".into());
        }
        if self.queue == Some(0) {
            return Err("--queue / PICLOUD_QUEUE must be at least 1".into());
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return Err(
                "--retry-base-ms must be at least 1 and --retry-max-ms at least the base".into(),
            );
        }
        if let Some(address) = &self.advertise
            && (address.is_empty()
                || address.len() > 255
                || address.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(
                "--advertise / PICLOUD_ADVERTISE must be a host:port without spaces".into(),
            );
        }
        if self.body_limit == 0 {
            return Err("--body-limit / PICLOUD_BODY_LIMIT must be at least 1".into());
        }
        if let Some(token) = &self.bootstrap_token
            && (token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(
                "PICLOUD_BOOTSTRAP_TOKEN must be at least 16 characters with no spaces".into(),
            );
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
        assert!(err.contains("PICLOUD_HTTP_ALLOW_CIDRS"), "{err}");
        let err = serve(&["--http-allow-private", "perhaps"])
            .validate()
            .expect_err("invalid flag");
        assert!(err.contains("PICLOUD_HTTP_ALLOW_PRIVATE"), "{err}");
    }
}

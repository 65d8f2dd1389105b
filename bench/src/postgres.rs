//! The throwaway PostgreSQL of `ops/pg-test.sh` (the one the tests use), started on
//! first use and stopped at the end if this run started it; one fresh database per
//! figure.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sqlx::Connection;

pub struct Postgres {
    /// `postgres://user@127.0.0.1:PORT/postgres`.
    url: String,
    script: PathBuf,
    started_here: bool,
}

impl Postgres {
    /// `PICLOUD_BENCH_DATABASE_URL` or `PICLOUD_TEST_DATABASE_URL` if set; else the
    /// running test server of this checkout; else start one.
    pub fn ensure(repo: &Path) -> anyhow::Result<Postgres> {
        let script = repo.join("ops/pg-test.sh");
        for var in ["PICLOUD_BENCH_DATABASE_URL", "PICLOUD_TEST_DATABASE_URL"] {
            if let Ok(url) = std::env::var(var)
                && !url.is_empty()
            {
                return Ok(Postgres {
                    url,
                    script,
                    started_here: false,
                });
            }
        }
        if let Some(url) = pg_test_url(&script) {
            return Ok(Postgres {
                url,
                script,
                started_here: false,
            });
        }
        eprintln!("picloud-bench: starting a throwaway PostgreSQL (ops/pg-test.sh)");
        let status = Command::new(&script)
            .arg("start")
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!("ops/pg-test.sh start failed ({status})");
        }
        let url = pg_test_url(&script).context("ops/pg-test.sh url failed after start")?;
        Ok(Postgres {
            url,
            script,
            started_here: true,
        })
    }

    /// A fresh, empty database; its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await?;
        // Two statements: a multi-statement string runs as one transaction, which
        // CREATE/DROP DATABASE refuse.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .with_context(|| format!("creating database {name}"))?;
        }
        conn.close().await?;
        Ok(database_url(&self.url, name))
    }

    pub async fn drop_database(&self, name: &str) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }

    /// Stop the server if this run started it.
    pub fn stop(&mut self) {
        if std::mem::take(&mut self.started_here) {
            let status = Command::new(&self.script).arg("stop").status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("picloud-bench: warning: ops/pg-test.sh stop failed");
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pg_test_url(script: &Path) -> Option<String> {
    let out = Command::new(script)
        .arg("url")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !url.is_empty()).then_some(url)
}

/// The same server URL naming another database.
fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let server = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_database_on_the_same_server() {
        assert_eq!(
            database_url("postgres://u@127.0.0.1:5/postgres", "b1"),
            "postgres://u@127.0.0.1:5/b1"
        );
        assert_eq!(
            database_url("postgres://u:p@h/db?sslmode=disable", "b1"),
            "postgres://u:p@h/b1?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h", "b1"), "postgres://h/b1");
    }
}

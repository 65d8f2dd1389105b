//! A `picloud serve` child process on a free loopback port: start, wait for ready,
//! drive its admin API, sample its `/proc` entries, stop it (SIGTERM, then kill).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::http::{self, Conn};

/// The owner's token of every node the bench starts (loopback only, thrown away).
pub const TOKEN: &str = "picloud-bench-owner-token-0123456789";
/// The master key of every node the bench starts (base64 of 32 bytes).
const MASTER_KEY: &str = "YmVuY2gtbWFzdGVyLWtleS0wMTIzNDU2Nzg5YWJjZGU=";

pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

pub struct Node {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub pid: u32,
    stderr: PathBuf,
}

impl Node {
    /// Spawn a node on `data_dir` (SQLite) or `database` (a postgres:// URL) without
    /// waiting; `wait_ready` says when it serves.
    pub fn spawn(binary: &Path, data_dir: &Path, database: Option<&str>) -> anyhow::Result<Node> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let stderr = data_dir.join("stderr.log");
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .env_remove("DATABASE_URL")
            .env("PICLOUD_BOOTSTRAP_TOKEN", TOKEN)
            // One master key for every node (nodes sharing a PostgreSQL).
            .env("PICLOUD_MASTER_KEY", MASTER_KEY)
            .env("PICLOUD_LOG_FORMAT", "json")
            .env("PICLOUD_DRAIN_SECONDS", "5")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(data_dir.join("stdout.log"))?)
            .stderr(std::fs::File::create(&stderr)?);
        if let Some(url) = database {
            cmd.arg("--database").arg(url);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Node {
            pid: child.id(),
            child: Some(child),
            addr,
            stderr,
        })
    }

    /// Spawn and wait until `/readyz` answers 200.
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        database: Option<&str>,
    ) -> anyhow::Result<Node> {
        let mut node = Node::spawn(binary, data_dir, database)?;
        node.wait_ready(Duration::from_secs(120)).await?;
        Ok(node)
    }

    /// Poll `/readyz` every 5 ms until 200; the time it took from now.
    pub async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let raw = http::request("GET", self.addr, "/readyz", &[], b"");
        loop {
            if let Ok(mut conn) = Conn::connect(self.addr).await
                && let Ok(reply) = conn.send(&raw).await
                && reply.status == 200
            {
                return Ok(start.elapsed());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "picloud exited ({status}) before ready: {}",
                    self.stderr_tail()
                );
            }
            if start.elapsed() > limit {
                bail!("picloud not ready within {limit:?}: {}", self.stderr_tail());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// An admin connection (keep-alive) to this node.
    pub async fn admin(&self) -> anyhow::Result<Admin> {
        Ok(Admin {
            addr: self.addr,
            conn: Conn::connect(self.addr).await?,
        })
    }

    /// SIGTERM, a bounded wait for a clean exit, then kill.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                bail!("picloud exited with {status} on SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("picloud did not stop within 20 s of SIGTERM")
    }

    /// CPU ticks (utime + stime) and context switches summed over every thread.
    pub fn cpu_sample(&self) -> anyhow::Result<CpuSample> {
        cpu_sample(self.pid)
    }

    /// Resident memory in MiB.
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kib: f64 = status_field(&status, "VmRSS:").context("no VmRSS")?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Clone, Debug)]
pub struct CpuSample {
    /// utime + stime of the whole process, ended threads included.
    pub ticks: u64,
    /// Context switches (voluntary and not) of each live thread, by thread id.
    pub switches: BTreeMap<u32, u64>,
}

/// What happened between two samples of one process's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchDelta {
    /// Context switches of the threads alive at the second sample since the first
    /// (all of them for a thread started in between), plus one for each thread that
    /// ended in between: its last switches are gone with it, but it had to be woken
    /// to end, so it counts at least once.
    pub switches: u64,
    pub started: usize,
    pub ended: usize,
}

impl CpuSample {
    pub fn switches_since(&self, before: &CpuSample) -> SwitchDelta {
        let mut delta = SwitchDelta::default();
        for (tid, now) in &self.switches {
            match before.switches.get(tid) {
                Some(then) => delta.switches += now.saturating_sub(*then),
                None => {
                    delta.started += 1;
                    delta.switches += now;
                }
            }
        }
        delta.ended = before
            .switches
            .keys()
            .filter(|tid| !self.switches.contains_key(tid))
            .count();
        delta.switches += delta.ended as u64;
        delta
    }
}

pub fn cpu_sample(pid: u32) -> anyhow::Result<CpuSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let field = |n: usize| -> anyhow::Result<u64> {
        Ok(fields.get(n - 3).context("short /proc/PID/stat")?.parse()?)
    };
    let ticks = field(14)? + field(15)?;
    let mut switches = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?;
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            // The thread ended between the listing and the read.
            continue;
        };
        let n = status_field::<u64>(&status, "voluntary_ctxt_switches:").unwrap_or(0)
            + status_field::<u64>(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
        switches.insert(tid, n);
    }
    Ok(CpuSample { ticks, switches })
}

fn status_field<T: std::str::FromStr>(status: &str, name: &str) -> Option<T> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The admin API over one keep-alive connection, as the owner.
pub struct Admin {
    addr: SocketAddr,
    conn: Conn,
}

impl Admin {
    /// A JSON call that must answer 2xx; its JSON body (`null` when empty).
    pub async fn call(&mut self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let auth = format!("Bearer {TOKEN}");
        let raw = http::request(
            method,
            self.addr,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &bytes,
        );
        let reply = self.conn.send(&raw).await?;
        if !(200..300).contains(&reply.status) {
            bail!("{method} {path}: status {}: {}", reply.status, reply.text());
        }
        if reply.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&reply.body)
            .with_context(|| format!("{method} {path}: not JSON: {}", reply.text()))
    }

    /// The read models' state: (events still to apply summed over projections,
    /// the log's head position).
    pub async fn log_state(&mut self) -> anyhow::Result<(i64, i64)> {
        let answer = self
            .call("GET", "/api/v1/admin/projections", Value::Null)
            .await?;
        let all = answer["projections"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let lag = all.iter().filter_map(|p| p["lag"].as_i64()).sum();
        let head = all
            .iter()
            .filter_map(|p| Some(p["checkpoint"].as_i64()? + p["lag"].as_i64()?))
            .max()
            .unwrap_or(0);
        Ok((lag, head))
    }

    /// Wait until the node has finished the work a load left behind (the log
    /// has stopped growing and every read model has caught up with it), so it
    /// does not run into the next measurement; how long that took.
    pub async fn settle(&mut self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut last = self.log_state().await?;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.log_state().await?;
            if now == last && now.0 == 0 {
                return Ok(start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(300) {
                bail!("the log was still growing 300 s after load");
            }
            last = now;
        }
    }

    /// An app with one endpoint script routed at `method route`; the script's id.
    pub async fn endpoint(
        &mut self,
        app: &str,
        script: &str,
        source: &str,
        method: &str,
        route: &str,
    ) -> anyhow::Result<String> {
        if self
            .call("GET", &format!("/api/v1/admin/apps/{app}"), Value::Null)
            .await
            .is_err()
        {
            self.call("POST", "/api/v1/admin/apps", json!({ "slug": app }))
                .await?;
        }
        let created = self
            .call(
                "POST",
                &format!("/api/v1/admin/apps/{app}/scripts"),
                json!({ "name": script, "source": source, "kind": "endpoint" }),
            )
            .await?;
        let id = created["id"]
            .as_str()
            .context("the script has no id")?
            .to_owned();
        self.call(
            "POST",
            &format!("/api/v1/admin/apps/{app}/routes"),
            json!({ "method": method, "path": route, "script_id": id }),
        )
        .await?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(threads: &[(u32, u64)]) -> CpuSample {
        CpuSample {
            ticks: 0,
            switches: threads.iter().copied().collect(),
        }
    }

    #[test]
    fn switches_count_per_thread_and_ended_threads_count_once() {
        let before = sample(&[(1, 10), (2, 500), (3, 7)]);
        // Thread 2 (many switches) ended, thread 4 started: a plain sum of all
        // threads would have dropped by 480 and hidden every other switch.
        let after = sample(&[(1, 12), (3, 7), (4, 5)]);
        assert_eq!(
            after.switches_since(&before),
            SwitchDelta {
                switches: 2 + 5 + 1,
                started: 1,
                ended: 1,
            }
        );
        assert_eq!(after.switches_since(&after), SwitchDelta::default());
    }

    #[test]
    fn a_live_process_samples_its_own_threads() {
        let now = cpu_sample(std::process::id()).expect("sample of this process");
        assert!(now.switches.contains_key(&std::process::id()));
    }
}

//! The hot path's baseline: a bare axum server answering the same JSON as the
//! script `#{ hello: ctx.params.name }` on the same path, with the same kind of
//! tokio runtime as PiCloud. Run as a child process (`picloud-bench
//! baseline-server --listen ADDR`) so it is measured on the same terms.

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

async fn hello(Path(name): Path<String>) -> Json<Value> {
    Json(json!({ "hello": name }))
}

pub fn app() -> Router {
    Router::new().route("/demo/hello/{name}", get(hello))
}

pub fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(listener, app()).await?;
        Ok(())
    })
}

/// The baseline server as a child process of this binary, killed on drop.
pub struct BaselineProcess {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl BaselineProcess {
    pub async fn start() -> anyhow::Result<BaselineProcess> {
        use anyhow::Context;
        let addr: SocketAddr = format!("127.0.0.1:{}", crate::node::free_port()?).parse()?;
        let me = std::env::current_exe().context("locating the bench binary")?;
        let child = std::process::Command::new(me)
            .args(["baseline-server", "--listen", &addr.to_string()])
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("starting the baseline server")?;
        let process = BaselineProcess { child, addr };
        let start = std::time::Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if start.elapsed() > std::time::Duration::from_secs(10) {
                anyhow::bail!("the baseline server did not listen within 10 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(process)
    }
}

impl Drop for BaselineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

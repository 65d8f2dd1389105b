//! The LISTEN side of wake-ups: a task that holds one connection listening on
//! `picloud_events` and bumps the store's watch channel on every notification.
//!
//! Notifications are only a hint (the payload is ignored), and they are lost
//! while the connection is down, so the task also bumps once after every
//! (re)connect: a follower then reads the log and finds whatever it missed. A
//! dropped connection is re-established with exponential backoff. While
//! connected and idle it only waits on the socket: no timer runs.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::CHANNEL;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(super) fn spawn(options: PgConnectOptions, wake: watch::Sender<u64>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // A pool of one, made only to hand PgListener its connection (and a new
        // one after a drop). Lazy: the first connect happens in the loop below.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        let mut backoff = MIN_BACKOFF;
        loop {
            match listen(&pool, &wake, &mut backoff).await {
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "event listener lost its connection");
                    // Whoever waits may have missed a notification; let them look.
                    bump(&wake);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Ok(()) => return,
            }
        }
    })
}

fn bump(wake: &watch::Sender<u64>) {
    wake.send_modify(|n| *n = n.wrapping_add(1));
}

/// Listen until the connection fails for good (then the caller backs off).
async fn listen(
    pool: &PgPool,
    wake: &watch::Sender<u64>,
    backoff: &mut Duration,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    *backoff = MIN_BACKOFF;
    bump(wake);
    loop {
        // `None`: the connection dropped and PgListener reconnected (and
        // re-listened) at once; notifications in between are lost, so wake anyway.
        let _ = listener.try_recv().await?;
        bump(wake);
    }
}

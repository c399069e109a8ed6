//! Accept loop with a connection limit, and graceful shutdown with a drain deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::{connect, Shared};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid fault rules")]
    Faults(#[from] crate::fault::FaultError),
    #[error("cannot open the TLS key log")]
    KeyLog(#[from] crate::tls::TlsSetupError),
}

/// Asks a running proxy to stop; cheap to clone.
#[derive(Clone)]
pub struct ProxyHandle {
    stop: Arc<watch::Sender<bool>>,
}

impl ProxyHandle {
    /// Stop accepting, let in-flight exchanges finish until the drain deadline.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    /// Connections still open when the drain deadline passed (0 = clean).
    pub abandoned: usize,
}

/// A proxy serving in the background.
pub struct RunningProxy {
    pub addr: SocketAddr,
    /// Where the control API listens, when enabled.
    pub admin_addr: Option<SocketAddr>,
    /// The bearer token every control API request must carry (with `admin_addr`).
    pub admin_token: Option<String>,
    /// The 0600 file holding `admin_token` while the proxy runs.
    pub admin_token_file: Option<std::path::PathBuf>,
    handle: ProxyHandle,
    task: JoinHandle<ShutdownReport>,
    pub(crate) shared: Arc<Shared>,
}

impl RunningProxy {
    /// Waits until no exchange is in flight (every one that had a request head is
    /// published), at most `within`; false when that bound was reached. After the
    /// client exited, its last exchanges end as its connections close.
    pub async fn settled(&self, within: Duration) -> bool {
        settled(&self.shared, within).await
    }

    /// How often each fault rule matched and fired so far (what the control API reports).
    pub fn fault_stats(&self) -> crate::fault::FaultStats {
        let engine = self.shared.faults.lock();
        engine.unwrap_or_else(|p| p.into_inner()).stats()
    }

    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }

    /// Shuts down and waits for the drain to end.
    pub async fn shutdown(self) -> ShutdownReport {
        self.handle.shutdown();
        self.wait().await
    }

    /// Waits until someone calls `shutdown` on a handle and the drain ended.
    pub async fn wait(self) -> ShutdownReport {
        self.task.await.unwrap_or(ShutdownReport { abandoned: 0 })
    }
}

pub async fn start(shared: Shared) -> Result<RunningProxy, ProxyError> {
    shared.config.validate()?;
    let listen = shared.config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ProxyError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ProxyError::Bind {
        addr: listen,
        source,
    })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(shared);
    let (admin_addr, admin_token, admin_token_file) = match shared.config.admin {
        Some(want) => {
            let (admin_listener, bound) = super::admin::bind(want)
                .await
                .map_err(|source| ProxyError::Bind { addr: want, source })?;
            let access = super::admin::AdminAccess::new(bound);
            let token = access.token.clone();
            let file =
                crate::ca::CaFiles::new(&shared.config.ca_dir).admin_token_path(bound.port());
            // The token is printed too; a file that cannot be written only costs scripts
            // that read it from there.
            let file = match super::admin::write_token_file(&file, &token) {
                Ok(()) => Some(file),
                Err(e) => {
                    tracing::warn!("cannot write the control API token: {e}");
                    None
                }
            };
            tokio::spawn(super::admin::serve(
                admin_listener,
                shared.clone(),
                access,
                file.clone(),
                stop_rx.clone(),
            ));
            (Some(bound), Some(token), file)
        }
        None => (None, None, None),
    };
    let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
    Ok(RunningProxy {
        addr,
        admin_addr,
        admin_token,
        admin_token_file,
        handle: ProxyHandle {
            stop: Arc::new(stop_tx),
        },
        task,
        shared,
    })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ShutdownReport {
    let max = shared.config.max_connections.max(1);
    // Taking the permit before accept leaves surplus clients queued in the kernel backlog
    // instead of holding a socket and a task for each.
    let limit = Arc::new(Semaphore::new(max));
    // Connection tasks, so the ones still running at the drain deadline can be cut (and
    // their exchanges published) before anyone finishes the trace.
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tasks.spawn(connect::serve_client(
                    shared.clone(),
                    tcp,
                    peer,
                    permit,
                    stop.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let grace = shared.config.shutdown_grace;
    let drained = tokio::time::timeout(grace, limit.acquire_many(max as u32)).await;
    let abandoned = match drained {
        Ok(_) => 0,
        Err(_) => max - limit.available_permits(),
    };
    if abandoned > 0 {
        tracing::warn!(
            "{abandoned} connection(s) still open after the {grace:?} drain deadline; closing them"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    // HTTP/2 streams run in tasks of their own and end (publishing their exchanges) once
    // their connection is gone: wait for them, so the trace is finished with every one.
    // A handler still waiting on its upstream for a client that left is not waited for.
    if !settled(&shared, Duration::from_secs(1)).await {
        tracing::debug!("exchanges still unpublished 1 s after the last connection closed");
    }
    ShutdownReport { abandoned }
}

/// True once no exchange is in flight (see `pending::InFlight`), false after `within`.
async fn settled(shared: &Shared, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if shared
            .stats
            .in_flight
            .load(std::sync::atomic::Ordering::Acquire)
            == 0
        {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

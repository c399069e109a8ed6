//! `modscope proxy`: a long-running proxy that prints its address and the export lines,
//! serves until SIGINT/SIGTERM and drains; `replay` serves the same way.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::session::{admin_lines, Closing, Opening, Session};
use crate::cli::ProxyArgs;
use crate::console::plural;
use crate::procenv::export_lines;
use crate::proxy::{self, RunningProxy};

pub async fn proxy(args: ProxyArgs) -> Result<i32> {
    let session = Session::open(
        &args.common,
        Opening::listen(args.listen, args.allow_remote),
    )?;
    if !session.config.listen.ip().is_loopback() {
        eprintln!(
            "modscope: WARNING: listening on {} — anyone who can reach it can use this proxy and read the traffic it intercepts",
            session.config.listen
        );
    }
    let running = session.start().await.context("cannot start the proxy")?;
    let code = serve_until_signal(running, &session.bundle).await?;
    session.finish(Closing::default()).await?;
    Ok(code)
}

/// Announces the proxy and serves until SIGINT/SIGTERM, then drains; the exit code is 0,
/// or 130/143 when a second signal quit the drain.
pub async fn serve_until_signal(running: RunningProxy, bundle: &Path) -> Result<i32> {
    // Handlers first: a script may send SIGTERM as soon as it has read the address.
    let signals = ShutdownSignals::new()?;
    announce(&running, bundle)?;
    wait_for_signal_then_shutdown(running, signals).await
}

/// Prints the listening line and the export lines. A reader that went away (a script that
/// only wanted the first line) must not stop the proxy, so write errors are only logged.
fn announce(running: &RunningProxy, bundle: &Path) -> Result<()> {
    let url = proxy::proxy_url(running.addr);
    let exports = match &running.shared.config.goproxy {
        Some(routes) => {
            crate::goproxy::export_lines(&routes.rewritten(running.addr)?, &url, bundle)
        }
        None => export_lines(&url, bundle),
    };
    let mut text = format!("modscope: listening on {url}\n{exports}");
    text.push_str(&admin_lines(running));
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!("cannot print the listening address to stdout: {e}");
    }
    Ok(())
}

/// What `proxy` and `replay` say when a signal starts the drain. Only a Ctrl-C (SIGINT)
/// came from someone at a terminal who can press it again.
pub fn shutdown_line(by_ctrl_c: bool) -> &'static str {
    if by_ctrl_c {
        "modscope: shutting down (in-flight exchanges may finish; press Ctrl-C again to quit now)"
    } else {
        "modscope: shutting down (in-flight exchanges may finish; SIGINT quits now)"
    }
}

/// SIGINT and SIGTERM handlers, installed before the proxy announces its address.
struct ShutdownSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }
}

/// Waits for SIGINT/SIGTERM, then drains; a second signal exits at once.
async fn wait_for_signal_then_shutdown(
    running: RunningProxy,
    signals: ShutdownSignals,
) -> Result<i32> {
    let ShutdownSignals { mut int, mut term } = signals;
    let by_ctrl_c = tokio::select! {
        _ = int.recv() => true,
        _ = term.recv() => false,
    };
    eprintln!("{}", shutdown_line(by_ctrl_c));
    let handle = running.handle();
    handle.shutdown();
    tokio::select! {
        report = running.wait() => {
            if report.abandoned > 0 {
                eprintln!("modscope: {} cut at the drain deadline", plural(report.abandoned, "connection was", "connections were"));
            }
            Ok(0)
        }
        _ = int.recv() => Ok(130),
        _ = term.recv() => Ok(143),
    }
}

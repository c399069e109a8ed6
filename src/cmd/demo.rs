//! `modscope demo`: a self-contained, offline tour. A loopback GOPROXY serving synthetic
//! modules, modscope in front of it, and go (or a built-in client) downloading through it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::session::Session;
use crate::ca::CertAuthority;
use crate::cli::DemoArgs;
use crate::config::{ConnectTo, ProxyConfig};
use crate::console::{exchange_line, human_bytes, plural, stderr_color};
use crate::exchange::Exchange;
use crate::procenv::which;
use crate::proxy;
use crate::testkit::client::{drain, get_request, Alpn, ProxiedClient};
use crate::testkit::make_writable;
use crate::testkit::modules::{app_requiring, default_modules, SyntheticModule};
use crate::testkit::origin::{Origin, OriginOptions};
use crate::tls::UpstreamTrust;

/// The host name go is told to use; modscope maps it to the loopback origin.
const DEMO_PROXY_HOST: &str = "proxy.golang.org";

pub async fn demo(args: DemoArgs) -> Result<i32> {
    let started = Instant::now();
    let work = std::env::temp_dir().join(format!("modscope-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let result = demo_in(&work, &args, started).await;
    if args.keep {
        eprintln!("modscope demo: kept {}", work.display());
    } else {
        make_writable(&work);
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

async fn demo_in(work: &Path, args: &DemoArgs, started: Instant) -> Result<i32> {
    let color = stderr_color();
    let modules = default_modules();
    let origin = Origin::start(modules.clone(), OriginOptions::default())
        .await
        .context("cannot start the demo origin")?;
    let ca_dir = work.join("ca");
    let ca = Arc::new(CertAuthority::load_or_create(&ca_dir).context("cannot create the demo CA")?);
    let trust = UpstreamTrust::only(&[origin.ca.cert_der().clone()])?;
    let mut config = ProxyConfig::new(ca_dir.clone());
    // Any free port: the demo prints the address and must not collide with a running proxy.
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.connect_to = vec![ConnectTo::parse(&format!(
        "{DEMO_PROXY_HOST}:443:127.0.0.1:{}",
        origin.addr.port()
    ))?];
    // Every exchange printed as it ends (credentials hidden), and kept for the closing lines.
    config.quiet = false;
    config.color = color;
    // go trusts only the demo CA: its one origin is behind modscope.
    let bundle = work.join("bundle.pem");
    std::fs::write(&bundle, ca.cert_pem())?;
    let mut session = Session::local(config, ca.clone(), trust, bundle);
    let collector = session.collect();
    let running = session.start().await?;
    let url = proxy::proxy_url(running.addr);

    println!("modscope demo");
    println!(
        "  synthetic GOPROXY  https://{DEMO_PROXY_HOST} -> 127.0.0.1:{} (loopback, offline)",
        origin.addr.port()
    );
    println!("  modscope proxy     {url}");
    let go = which("go").filter(|_| !args.no_go);
    let outcome = match &go {
        Some(go) => {
            println!(
                "  client             {} mod download (through the proxy)\n",
                go.display()
            );
            run_go(go, work, &session.bundle, &url, &modules).await
        }
        None => {
            println!(
                "  client             built-in ({}), same list/info/mod/zip requests\n",
                builtin_reason(args.no_go)
            );
            run_builtin(&running.addr, &ca, &modules).await
        }
    };
    running.shutdown().await;
    let exchanges = collector.exchanges();
    report(&exchanges, color, started);
    outcome?;
    Ok(0)
}

async fn run_go(
    go: &Path,
    work: &Path,
    bundle: &Path,
    url: &str,
    modules: &[SyntheticModule],
) -> Result<()> {
    let app = work.join("app");
    std::fs::create_dir_all(&app)?;
    let (go_mod, go_sum) = app_requiring(modules);
    std::fs::write(app.join("go.mod"), go_mod)?;
    std::fs::write(app.join("go.sum"), go_sum)?;
    let status = tokio::process::Command::new(go)
        .args(["mod", "download", "-x"])
        .current_dir(&app)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work)
        .env("GOPATH", work.join("gopath"))
        .env("GOMODCACHE", work.join("modcache"))
        .env("GOCACHE", work.join("gocache"))
        .env("GOFLAGS", "-modcacherw")
        .env("GOPROXY", format!("https://{DEMO_PROXY_HOST}"))
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("HTTPS_PROXY", url)
        .env("SSL_CERT_FILE", bundle)
        .status()
        .await
        .with_context(|| format!("cannot run {}", go.display()))?;
    if !status.success() {
        bail!("go mod download failed ({status}); the requests above show where");
    }
    println!("\ngo mod download succeeded: every zip matched go.sum");
    Ok(())
}

async fn run_builtin(
    proxy_addr: &std::net::SocketAddr,
    ca: &CertAuthority,
    modules: &[SyntheticModule],
) -> Result<()> {
    let client = ProxiedClient::new(*proxy_addr, &[ca.cert_der().clone()])?;
    let mut sender = client.connect(DEMO_PROXY_HOST, 443, Alpn::Both).await?;
    let (go_mod, _) = app_requiring(modules);
    for line in go_mod.lines().filter(|l| l.starts_with('\t')) {
        let mut parts = line.split_whitespace();
        let (Some(path), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        let escaped = crate::gomod::escape_path(path).unwrap_or_else(|_| path.to_string());
        let escaped_version =
            crate::gomod::escape_version(version).unwrap_or_else(|_| version.to_string());
        for suffix in [
            "list".to_string(),
            format!("{escaped_version}.info"),
            format!("{escaped_version}.mod"),
            format!("{escaped_version}.zip"),
        ] {
            let uri: http::Uri =
                format!("https://{DEMO_PROXY_HOST}/{escaped}/@v/{suffix}").parse()?;
            let resp = sender.send(get_request(&uri)).await?;
            let (status, _) = drain(resp).await.map_err(|e| anyhow::anyhow!(e))?;
            if status != 200 {
                bail!("{uri} answered {status}");
            }
        }
    }
    Ok(())
}

fn report(exchanges: &[Exchange], color: bool, started: Instant) {
    let bytes: u64 = exchanges
        .iter()
        .filter_map(|e| e.response.as_ref())
        .map(|r| r.body.size)
        .sum();
    let failed = exchanges.iter().filter(|e| e.error.is_some()).count();
    let connections: std::collections::BTreeSet<u64> =
        exchanges.iter().filter_map(|e| e.connection_id).collect();
    println!(
        "\n{}, {} downloaded, {}, {} failed, {:.1} s in all",
        plural(exchanges.len(), "request", "requests"),
        human_bytes(bytes),
        plural(
            connections.len(),
            "upstream connection",
            "upstream connections"
        ),
        failed,
        started.elapsed().as_secs_f64()
    );
    if let Some(tls) = exchanges.iter().find_map(|e| e.tls.as_ref()) {
        if let Some(c) = &tls.client {
            println!(
                "client TLS:   {} {} alpn offered {:?}",
                c.version.as_deref().unwrap_or("?"),
                c.cipher.as_deref().unwrap_or("?"),
                c.alpn
            );
        }
        if let Some(u) = &tls.upstream {
            println!(
                "upstream TLS: {} {} alpn {} verified={} cert {}",
                u.version.as_deref().unwrap_or("?"),
                u.cipher.as_deref().unwrap_or("?"),
                u.alpn.as_deref().unwrap_or("-"),
                u.verified,
                u.certificates
                    .first()
                    .map(|c| c.subject.as_str())
                    .unwrap_or("?")
            );
        }
    }
    if let Some(slowest) = exchanges
        .iter()
        .max_by(|a, b| total_ms(a).total_cmp(&total_ms(b)))
    {
        println!("slowest:      {}", exchange_line(slowest, color, true));
    }
}

fn total_ms(ex: &Exchange) -> f64 {
    let t = &ex.timings;
    [t.blocked, t.dns, t.tcp, t.tls, t.send, t.wait, t.receive]
        .into_iter()
        .flatten()
        .sum()
}

/// Why the demo uses its built-in client.
fn builtin_reason(no_go: bool) -> &'static str {
    if no_go {
        "--no-go"
    } else {
        "go not found on PATH"
    }
}

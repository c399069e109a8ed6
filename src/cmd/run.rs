//! `modscope run -- CMD`: a proxy on an ephemeral loopback port, and CMD run with the
//! environment that sends its traffic through it; exits with CMD's exit code.

use std::process::ExitStatus;

use anyhow::{Context, Result};
use tokio::process::Command;
use tokio::signal::unix::{signal, SignalKind};

use super::session::{admin_lines, Closing, Opening, Session};
use crate::cli::RunArgs;
use crate::console::plural;
use crate::diagnose::{Evidence, GoEnv, Verdict};
use crate::net::Authority;
use crate::procenv::{self, redact_goproxy};
use crate::proxy::proxy_url;
use crate::report::{entries_from_exchanges, exit_verdict, goproxy_bases, render_full};
use crate::trace::Unrecorded;
use crate::verify::{auth_env_from_process, gather, read_go_sum};

pub async fn run(args: RunArgs) -> Result<i32> {
    let go = crate::goproxy::go_of_command(&args.command);
    let mut session = Session::open(
        &args.common,
        Opening {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_remote: false,
            go: go.as_deref(),
            replay: args.replay.as_deref().map(|p| (p, &args.replay_options)),
        },
    )?;
    let (run_ctx, root_id) = crate::export::run_context();
    session.otlp_grouping = crate::otlp::SpanGrouping::Run(crate::otlp::SpanContext {
        parent: Some(root_id),
        ..run_ctx
    });
    let run_started = std::time::SystemTime::now();
    // The verdict, retries and closing summary read every exchange; `--report` may
    // already collect (see `Session::open`): one collector serves both.
    let collector = session.collect();
    let running = session.start().await.context("cannot start the proxy")?;
    let url = proxy_url(running.addr);
    eprint!("{}", admin_lines(&running));

    let goproxy = std::env::var("GOPROXY").unwrap_or_default();
    let no_proxy = std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default();
    // In --goproxy mode go reaches modscope on loopback, which NO_PROXY cannot bypass.
    let bypassed = match session.config.goproxy {
        Some(_) => Vec::new(),
        None => bypassed_goproxy_hosts(&goproxy, &no_proxy),
    };
    for host in bypassed {
        eprintln!(
            "modscope: warning: NO_PROXY={no_proxy:?} makes go bypass modscope for {host} (from GOPROXY); its traffic will not be seen"
        );
    }

    let mut env = go_env_from_process();
    if let Some(routes) = &session.config.goproxy {
        // The list go really used (it may come from `go env -w`), not the rewrite.
        env.goproxy = Some(routes.original.clone()).filter(|v| !v.is_empty());
    }
    let bases = goproxy_bases(env.goproxy.as_deref());
    // Findings and retry messages quote GOPROXY ("go moves on to ..."): never with its
    // password.
    env.goproxy = redact_goproxy(env.goproxy.as_deref(), session.redact);
    let mut retries_left = args.retry_transient;
    // The child's environment, the same for every attempt.
    let mut child_env: Vec<(&str, String)> = Vec::new();
    if let Some(routes) = &session.config.goproxy {
        // Plain HTTP on loopback: go needs no proxy variables and no CA for these.
        let value = routes.rewritten(running.addr)?;
        eprintln!("modscope: GOPROXY={value}");
        child_env.push(("GOPROXY", value));
    }
    // go never sends loopback URLs through HTTPS_PROXY, so with --goproxy --intercept
    // module requests still take the GOPROXY route and only direct/VCS traffic is
    // intercepted.
    if session.config.goproxy.is_none() || args.intercept {
        child_env.extend(procenv::child_env(&url, &session.bundle));
    }
    if let (Some(addr), Some(token)) = (running.admin_addr, &running.admin_token) {
        // A test suite run under modscope reaches the control API through these.
        child_env.push(("MODSCOPE_ADMIN", addr.to_string()));
        child_env.push(("MODSCOPE_ADMIN_TOKEN", token.clone()));
    }
    let status = loop {
        let seen_before = collector.0.lock().map(|l| l.len()).unwrap_or(0);
        let (status, interrupted) = run_child(&args.command, &child_env).await?;
        if status.success() || interrupted || args.retry_transient == 0 {
            break status;
        }
        // Exchanges are published as their bodies end: judge the attempt once the
        // last ones are in (a fixed 200 ms was too short on a loaded machine).
        if !running.settled(std::time::Duration::from_secs(5)).await {
            tracing::debug!("exchanges still in flight 5 s after the command exited");
        }
        let attempt: Vec<_> = collector
            .0
            .lock()
            .map(|l| l.get(seen_before..).unwrap_or_default().to_vec())
            .unwrap_or_default();
        let entries = entries_from_exchanges(&attempt, &bases);
        let judged = render_full(
            &entries,
            &Unrecorded::default(),
            Some(&env),
            &Evidence::default(),
            true,
            false,
        );
        let why = judged
            .reasons
            .iter()
            .map(|r| format!("{} at {}", r.cause, r.hop))
            .collect::<Vec<_>>()
            .join(", ");
        if judged.verdict != Verdict::Transient {
            eprintln!(
                "modscope: not retrying: the verdict is {}{}",
                judged.verdict.as_str(),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                }
            );
            break status;
        }
        if retries_left == 0 {
            eprintln!(
                "modscope: still transient ({why}) after {} retries; giving up",
                args.retry_transient
            );
            break status;
        }
        retries_left -= 1;
        eprintln!(
            "modscope: the command failed with a transient verdict ({why}); retrying ({}/{})",
            args.retry_transient - retries_left,
            args.retry_transient
        );
    };
    let report = running.shutdown().await;
    if report.abandoned > 0 {
        eprintln!(
            "modscope: {} cut at shutdown",
            plural(report.abandoned, "connection was", "connections were")
        );
    }
    let run_span = session.otlp.as_ref().map(|_| {
        let exchanges = collector.exchanges();
        // The run's verdict (ok/transient/permanent) from what went over the wire.
        let verdict = render_full(
            &entries_from_exchanges(&exchanges, &bases),
            &Unrecorded::default(),
            Some(&env),
            &Evidence::default(),
            true,
            false,
        )
        .verdict;
        let facts = crate::otlp::RunFacts {
            command: args.command.clone(),
            exit_code: exit_code(status),
            verdict: Some(verdict.as_str().to_string()),
            start_unix_nanos: unix_nanos(run_started),
            end_unix_nanos: unix_nanos(std::time::SystemTime::now()),
            requests: exchanges.len(),
            failed: exchanges
                .iter()
                .filter(|e| e.error.is_some() || e.response.is_none())
                .count(),
        };
        crate::otlp::run_span(&facts, &run_ctx, root_id)
    });
    session
        .finish(Closing {
            run_span,
            command: Some(args.command.join(" ")),
            go_env: Some(&go_env_from_process()),
        })
        .await?;
    if !args.common.quiet {
        let exchanges = collector.exchanges();
        // A recorded trace carries the bodies' h1 hashes; the collector's copies do not.
        let recorded = session
            .recorder
            .as_ref()
            .and_then(|r| crate::trace::load_trace(r.dir()).ok());
        let (entries, root, unrecorded) = match recorded {
            Some(t) if args.replay.is_none() => (t.entries, Some(t.root), t.unrecorded),
            _ => (
                entries_from_exchanges(&exchanges, &bases),
                None,
                Unrecorded::default(),
            ),
        };
        let go_sum = module_go_sum().and_then(|p| read_go_sum(&p).ok());
        let obs = crate::report::observations(&entries, &bases);
        let evidence = gather(
            &entries,
            &obs,
            root.as_deref(),
            go_sum,
            Some(auth_env_from_process()),
        );
        let rendered = render_full(
            &entries,
            &unrecorded,
            Some(&env),
            &evidence,
            false,
            session.config.color,
        );
        eprintln!("\n{}", rendered.text);
        // A forensic finding (a checksum, a credential) already names the cause.
        let named = rendered
            .worst
            .is_some_and(|w| w >= crate::diagnose::Severity::Warning);
        if let Some(verdict) = exit_verdict(
            &entries,
            Some(&env),
            exit_code(status),
            child_is_go(&args.command),
        )
        .filter(|_| !named)
        {
            eprintln!("modscope: {verdict}");
            // A go.sum hint only makes sense for go, and not when a fault explains it.
            let injected = entries.iter().any(|e| e.fault.is_some());
            if session.recorder.is_none() && child_is_go(&args.command) && !injected {
                eprintln!("modscope: rerun with --record DIR to have modscope hash every .zip/.mod and name the one that differs from go.sum");
            }
        }
        if let Some(routes) = &session.config.goproxy {
            let private = env.goprivate.is_some() || env.gonoproxy.is_some();
            if let Some(note) = crate::goproxy::direct_note(routes, &exchanges, private) {
                eprintln!("modscope: note: {note}");
            }
        }
    }
    Ok(exit_code(status))
}

/// Whether the child is the go command (`go`, `/usr/bin/go`, `go1.22.0`), which decides
/// whether the closing verdict may talk about go's own checks.
fn child_is_go(command: &[String]) -> bool {
    command.first().is_some_and(|c| {
        let name = std::path::Path::new(c)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name == "go" || name.starts_with("go1.")
    })
}

/// The go.sum beside the go.mod of the module the command runs in (the nearest go.mod
/// at or above the current directory, as go finds it).
fn module_go_sum() -> Option<std::path::PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|d| d.join("go.mod").is_file())
        .map(|d| d.join("go.sum"))
        .filter(|p| p.is_file())
}

/// Runs the command once with the proxy environment, forwarding signals; returns its
/// status and whether a signal asked it to stop (then it is never retried).
async fn run_child(command: &[String], child_env: &[(&str, String)]) -> Result<(ExitStatus, bool)> {
    let (program, rest) = command.split_first().context("no command given after --")?;
    let mut command = Command::new(program);
    command
        .args(rest)
        .envs(child_env.iter().map(|(k, v)| (*k, v)));
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {program:?} (is it installed and on PATH?)"))?;

    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut interrupted = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for the command failed")?,
            _ = int.recv() => {
                interrupted = true;
                // A terminal's Ctrl-C already reached the child through the foreground
                // process group; forwarding it again would deliver it twice.
                if !terminal_signals_reach_child() {
                    forward(&child, libc::SIGINT);
                }
            }
            _ = term.recv() => { interrupted = true; forward(&child, libc::SIGTERM) },
            _ = hup.recv() => { interrupted = true; forward(&child, libc::SIGHUP) },
        }
    };
    Ok((status, interrupted))
}

fn unix_nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn forward(child: &tokio::process::Child, sig: libc::c_int) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

/// True when stdin is a terminal whose foreground process group is ours (the child shares it).
fn terminal_signals_reach_child() -> bool {
    // SAFETY: plain queries of process state without pointers.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// The child's exit code, or 128 + signal number as shells report it.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// The go settings of this process' environment (inherited by a child under `run`).
pub fn go_env_from_process() -> GoEnv {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    GoEnv {
        goproxy: var("GOPROXY"),
        gonoproxy: var("GONOPROXY"),
        goprivate: var("GOPRIVATE"),
        gonosumdb: var("GONOSUMDB"),
        gosumdb: var("GOSUMDB"),
        goflags: var("GOFLAGS"),
        goinsecure: var("GOINSECURE"),
    }
}

/// GOPROXY hosts that the NO_PROXY list would send around the proxy.
pub fn bypassed_goproxy_hosts(goproxy: &str, no_proxy: &str) -> Vec<String> {
    let goproxy = if goproxy.trim().is_empty() {
        "https://proxy.golang.org,direct"
    } else {
        goproxy
    };
    goproxy
        .split([',', '|'])
        .filter_map(|entry| {
            // Userinfo is not part of the host (and may hold a password).
            let (_, authority) = Authority::of_url(entry).ok()?;
            Some(authority.host.to_ascii_lowercase())
        })
        .filter(|host| no_proxy_matches(no_proxy, host))
        .collect()
}

/// Go's NO_PROXY rules for host names: `*` matches all, `example.com` matches it and its
/// subdomains, `.example.com` only subdomains; ports in entries are ignored.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            // `::1`, `[::1]:8080`, `host:443` and `host` all name a host; ports are ignored.
            let entry = match Authority::parse(entry) {
                _ if entry.parse::<std::net::IpAddr>().is_ok() => entry.to_ascii_lowercase(),
                Ok(a) => a.host.to_ascii_lowercase(),
                Err(_) => entry.to_ascii_lowercase(),
            };
            if let Some(suffix) = entry.strip_prefix('.') {
                host.ends_with(&format!(".{suffix}"))
            } else {
                host == entry || host.ends_with(&format!(".{entry}"))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_rules() {
        let table = [
            ("*", "proxy.golang.org", true),
            ("golang.org", "proxy.golang.org", true),
            (".golang.org", "proxy.golang.org", true),
            (".golang.org", "golang.org", false),
            ("example.com,localhost", "proxy.golang.org", false),
            ("proxy.golang.org:443", "proxy.golang.org", true),
            ("[::1]:8080", "::1", true),
            ("[::1]", "::1", true),
            ("", "proxy.golang.org", false),
        ];
        for (list, host, want) in table {
            assert_eq!(no_proxy_matches(list, host), want, "{list} / {host}");
        }
    }

    #[test]
    fn goproxy_hosts_checked_against_no_proxy() {
        assert_eq!(
            bypassed_goproxy_hosts("", "golang.org"),
            ["proxy.golang.org"]
        );
        assert_eq!(
            bypassed_goproxy_hosts("https://a.example/p,https://b.example|direct", "b.example"),
            ["b.example"]
        );
        assert!(bypassed_goproxy_hosts("off", "*").is_empty());
        // IPv6 literals keep their colons: `https://[::1]/` is host `::1`, not `:`.
        assert_eq!(bypassed_goproxy_hosts("https://[::1]/", "[::1]"), ["::1"]);
        assert_eq!(
            bypassed_goproxy_hosts("https://user:pw@[::1]:8443/p", "::1"),
            ["::1"]
        );
        assert!(bypassed_goproxy_hosts("https://[::1]/", ":").is_empty());
        assert_eq!(
            bypassed_goproxy_hosts("https://u:SECRET@corp.example/go", "corp.example"),
            vec!["corp.example".to_string()]
        );
    }
}

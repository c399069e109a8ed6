//! A newcomer's first hour, as CLI checks: closed pipes, colour, error chains, help texts,
//! completions and man page, the demo's client line, verdicts for non-go commands, and
//! what `proxy` prints and how it stops.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{KillOnDrop, TempDir, MODSCOPE};

/// A pipe whose reading end is already closed: writing to it fails with EPIPE, as when
/// `| head` has read what it wanted.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two fresh descriptors that we own from here on.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: each descriptor is owned exactly once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn output(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(MODSCOPE)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_or_stderr_is_a_normal_end() {
    let summary = data("mitmproxy-go.har");
    for args in [
        vec!["summary", summary.as_str()],
        vec!["completions", "bash"],
        vec!["man"],
    ] {
        let out = Command::new(MODSCOPE)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // stderr closed: the error report cannot be printed, the exit code still says 1.
    let out = Command::new(MODSCOPE)
        .args(["summary", "/nonexistent/trace"])
        .stdin(Stdio::null())
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{:?}",
        out.status
    );
}

#[test]
fn error_chains_print_each_cause_once() {
    let (code, _, stderr) = output(&["summary", "/etc/passwd"]);
    assert_eq!(code, 1);
    let causes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("caused by:"))
        .collect();
    let mut unique = causes.clone();
    unique.dedup();
    assert_eq!(causes, unique, "{stderr}");
    assert!(
        stderr.starts_with("modscope: error: cannot read the trace /etc/passwd"),
        "{stderr}"
    );
}

#[test]
fn help_has_examples_and_says_what_flags_do() {
    let (_, top, _) = output(&["--help"]);
    assert!(!top.contains("eval"), "{top}");
    for cmd in [
        "proxy",
        "run",
        "ca",
        "demo",
        "summary",
        "replay",
        "bench",
        "import",
        "completions",
        "man",
    ] {
        let (code, help, _) = output(&[cmd, "--help"]);
        assert_eq!(code, 0, "{cmd}");
        assert!(
            help.contains("Example"),
            "{cmd} --help has no example:\n{help}"
        );
    }
    let (_, proxy, _) = output(&["proxy", "--help"]);
    assert!(proxy.contains("nor the closing summary"), "{proxy}");
    assert!(
        !proxy.contains("--fault SPEC"),
        "--fault help repeats the flag:\n{proxy}"
    );
    let keylog = proxy
        .split("--keylog")
        .nth(1)
        .and_then(|s| s.split("--shutdown-grace").next())
        .unwrap_or_default();
    assert_eq!(keylog.matches("default").count(), 0, "{keylog}");
    assert!(keylog.contains("[env: SSLKEYLOGFILE]"), "{keylog}");
}

#[test]
fn completions_and_man_page_come_from_the_cli() {
    for (shell, marker) in [
        ("bash", "_modscope()"),
        ("zsh", "#compdef modscope"),
        ("fish", "complete -c modscope"),
    ] {
        let (code, out, err) = output(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(out.contains("replay"), "{shell}: subcommands are listed");
    }
    let (code, man, _) = output(&["man"]);
    assert_eq!(code, 0);
    assert!(man.contains(".TH modscope 1"), "{man}");
    assert!(man.contains("summary"), "{man}");
}

#[test]
fn demo_no_go_says_why_it_uses_the_built_in_client() {
    let dir = TempDir::new("newcomer-demo");
    let out = Command::new(MODSCOPE)
        .args(["demo", "--no-go"])
        .env("HOME", dir.path())
        .env("MODSCOPE_HOME", dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("built-in (--no-go)"), "{stdout}");
    assert!(!stdout.contains("not found on PATH"), "{stdout}");
    assert!(!stdout.contains("connection(s)"), "{stdout}");
}

#[test]
fn run_of_a_non_go_command_gets_no_go_advice() {
    let dir = TempDir::new("newcomer-run");
    let (code, _, stderr) = output(&[
        "run",
        "--ca-dir",
        dir.path().join("ca").to_str().unwrap(),
        "--",
        "/bin/false",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the failure is not the network"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("go.sum") && !stderr.contains("SECURITY"),
        "{stderr}"
    );
    // The child sees every proxy and CA variable.
    let (code, env, _) = output(&[
        "run",
        "-q",
        "--ca-dir",
        dir.path().join("ca").to_str().unwrap(),
        "--",
        "env",
    ]);
    assert_eq!(code, 0);
    for var in [
        "HTTPS_PROXY=",
        "https_proxy=",
        "HTTP_PROXY=",
        "http_proxy=",
        "SSL_CERT_FILE=",
        "GIT_SSL_CAINFO=",
        "CURL_CA_BUNDLE=",
        "REQUESTS_CA_BUNDLE=",
        "NODE_EXTRA_CA_CERTS=",
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(var)),
            "{var} missing:\n{env}"
        );
    }
}

/// `proxy` prints every export the README lists, logs without colour into a file, and
/// after SIGTERM does not suggest pressing Ctrl-C.
#[test]
fn proxy_exports_logs_plainly_and_stops_on_sigterm() {
    let dir = TempDir::new("newcomer-proxy");
    let log = dir.path().join("stderr.log");
    let child = Command::new(MODSCOPE)
        .args(["proxy", "-vv", "--listen", "127.0.0.1:0", "--ca-dir"])
        .arg(dir.path().join("ca"))
        .env_remove("NO_COLOR")
        .env_remove("SSLKEYLOGFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(Some(child));
    let mut stdout = BufReader::new(child.0.as_mut().unwrap().stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(line);
    }
    let addr = lines[0]
        .trim()
        .strip_prefix("modscope: listening on http://")
        .unwrap()
        .to_string();
    let text = lines.concat();
    for var in [
        "HTTPS_PROXY=",
        " https_proxy=",
        " http_proxy=",
        "CURL_CA_BUNDLE=",
        "REQUESTS_CA_BUNDLE=",
        "NODE_EXTRA_CA_CERTS=",
    ] {
        assert!(text.contains(var), "{var} missing:\n{text}");
    }
    // A tunnel to a closed loopback port makes modscope log (debug) why it failed.
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(
        b"GET http://127.0.0.1:9/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let pid = child.0.as_ref().unwrap().id();
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let status = child.0.take().unwrap().wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains("Ctrl-C"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "colour escapes in a file:\n{stderr}"
    );
    assert!(
        stderr.contains("DEBUG")
            || stderr.contains("INFO")
            || stderr.contains("WARN")
            || stderr.contains("GET http://127.0.0.1:9/x"),
        "{stderr}"
    );
}

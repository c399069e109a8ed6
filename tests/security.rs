//! Security hardening (#11): credentials never printed or stored, the recorded URL is the
//! dialled authority, request-head timeouts inside tunnels, parent-proxy loops, upstream
//! CA files, and warnings about secrets on disk. Loopback only; every test is bounded.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    go_binary, go_env, map_hosts_to, run_bounded, write_app, Fixture, FixtureOptions, TempDir,
    GOPROXY_HOST, MODSCOPE,
};
use modscope::testkit::client::{drain, get_request, Alpn};
use modscope::testkit::modules::default_modules;
use modscope::testkit::origin::{Origin, OriginOptions};

const LIMIT: Duration = Duration::from_secs(120);

/// Every file under `dir`, with its text (lossy).
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                out.push((p, text));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn goproxy_credentials_appear_nowhere_under_run_with_record() {
    let Some(go) = go_binary() else { return };
    let dir = TempDir::new("redact");
    let modules = default_modules();
    let origin = Origin::start(
        modules.clone(),
        OriginOptions {
            names: vec!["corp.example".into()],
            ..OriginOptions::default()
        },
    )
    .await
    .unwrap();
    let plain = Origin::start(
        modules.clone(),
        OriginOptions {
            tls: false,
            ..OriginOptions::default()
        },
    )
    .await
    .unwrap();
    let app = write_app(dir.path(), &modules);
    let record = dir.path().join("rec");
    let mut cmd = Command::new(MODSCOPE);
    cmd.arg("run")
        .arg("--record")
        .arg(&record)
        .arg("--ca-dir")
        .arg(dir.path().join("ca"));
    map_hosts_to(&mut cmd, dir.path(), &origin, &["corp.example"]);
    cmd.arg("--connect-to")
        .arg(format!("plain.example:80:127.0.0.1:{}", plain.addr.port()));
    // go sends the GOPROXY password as Basic auth; a hand-written absolute-form request
    // carries one in the URL itself, as the plain-HTTP attack did.
    let raw = format!(
        "p=${{HTTP_PROXY##*:}}; exec 3<>/dev/tcp/127.0.0.1/$p; printf 'GET http://user:SECRET@plain.example/{}/@v/list HTTP/1.1\\r\\nHost: plain.example\\r\\nConnection: close\\r\\n\\r\\n' >&3; cat <&3 >/dev/null",
        modules[0].path
    );
    cmd.arg("--")
        .arg("bash")
        .arg("-c")
        .arg(format!("{} mod download && ( {raw} )", go.display()));
    go_env(
        &mut cmd,
        dir.path(),
        "https://user:SECRET@corp.example,direct",
    );
    cmd.current_dir(&app);
    let ran = run_bounded(cmd, LIMIT).await;
    assert!(ran.success, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("http://[redacted]@plain.example/"),
        "the plain-HTTP line is printed, redacted:\n{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("SECRET"), "stderr:\n{}", ran.stderr);
    assert!(!ran.stdout.contains("SECRET"), "stdout:\n{}", ran.stdout);
    let files = files_under(&record);
    assert!(files.iter().any(|(p, _)| p.ends_with("journal.jsonl")));
    for (path, text) in &files {
        assert!(
            !text.contains("SECRET"),
            "{} holds the secret",
            path.display()
        );
    }
    let (_, journal) = files
        .iter()
        .find(|(p, _)| p.ends_with("journal.jsonl"))
        .unwrap();
    assert!(
        journal.contains("\"base\":\"https://[redacted]@corp.example\""),
        "_go.base is recorded, without the password: {journal}"
    );
}

/// Inside a tunnel to proxy.golang.org:443, requests that name `evil.example:8443` (HTTP/1.1
/// Host, HTTP/2 :authority) are recorded under the dialled authority, keep the name they
/// sent as a header, and are reported.
#[tokio::test]
async fn the_recorded_url_is_the_dialled_authority_not_the_host_header() {
    let fx = Fixture::start().await;
    let m = &fx.modules[0];
    let forged: http::Uri = format!("https://evil.example:8443/{}/@v/list", m.path)
        .parse()
        .unwrap();
    for (alpn, header) in [(Alpn::H1, "host"), (Alpn::H2, ":authority")] {
        let mut sender = fx.client.connect(GOPROXY_HOST, 443, alpn).await.unwrap();
        let resp = sender.send(get_request(&forged)).await.unwrap();
        drain(resp).await.unwrap();
        let ex = fx
            .wait_exchanges(if alpn == Alpn::H1 { 1 } else { 2 })
            .await;
        let ex = ex.last().unwrap();
        assert_eq!(
            ex.request.url,
            format!("https://{GOPROXY_HOST}/{}/@v/list", m.path),
            "{alpn:?}"
        );
        assert!(
            ex.request
                .headers
                .iter()
                .any(|(n, v)| n == header && v == "evil.example:8443"),
            "{alpn:?}: {:?}",
            ex.request.headers
        );
    }
    let entries = modscope::report::entries_from_exchanges(&fx.exchanges(), &[]);
    let obs = modscope::report::observations(&entries, &[]);
    let findings = modscope::diagnose::diagnose(&obs, None);
    let f = findings
        .iter()
        .find(|f| f.cause.as_str() == "host-header-mismatch")
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert_eq!(f.entries.len(), 2);
    assert!(f.title.contains("evil.example:8443"), "{}", f.title);
}

/// `--upstream-proxy` naming this very proxy: one request must not turn into a thousand
/// nested hops; the CONNECT that comes back (with our `Via`) is refused at once.
#[tokio::test]
async fn an_upstream_proxy_pointing_at_itself_is_answered_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fx = Fixture::with(FixtureOptions {
        tweak: Box::new(move |c| {
            c.listen = ([127, 0, 0, 1], port).into();
            c.upstream_proxy = Some(
                modscope::config::UpstreamProxy::parse(&format!("http://127.0.0.1:{port}"))
                    .unwrap(),
            );
        }),
        ..FixtureOptions::default()
    })
    .await;
    let m = &fx.modules[0];
    let started = std::time::Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        fx.client.get(
            &format!("https://{GOPROXY_HOST}/{}/@v/list", m.path),
            Alpn::Both,
        ),
    )
    .await
    .expect("answered")
    .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&got.body);
    assert_eq!(got.status, 502, "{text}");
    assert!(
        text.contains("leads back to this modscope"),
        "the answer says why: {text}"
    );
    // Well under the 5 s bound around it: a loop would only end at that bound.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // One refused CONNECT from itself plus the client's exchange, not a cascade.
    let exchanges = fx.wait_exchanges(1).await;
    assert!(exchanges.len() <= 2, "{exchanges:?}");
}

/// A CA key others can read, and a key log switched on by the environment, are both said
/// out loud at start-up (once), since either hands out the power to read the traffic.
#[tokio::test]
async fn an_exposed_ca_key_and_an_inherited_sslkeylogfile_are_announced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("secrets");
    let ca = dir.path().join("ca");
    let run = |keylog: Option<&Path>| {
        let mut cmd = Command::new(MODSCOPE);
        cmd.args(["run", "--ca-dir"])
            .arg(&ca)
            .args(["--", "true"])
            .env_remove("SSLKEYLOGFILE");
        if let Some(k) = keylog {
            cmd.env("SSLKEYLOGFILE", k);
        }
        cmd
    };
    let first = run_bounded(run(None), LIMIT).await;
    assert!(first.success, "{}", first.stderr);
    assert!(!first.stderr.contains("readable by"), "{}", first.stderr);
    assert!(!first.stderr.contains("secrets"), "{}", first.stderr);

    let key = ca.join("ca-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let keylog = dir.path().join("keys.log");
    let second = run_bounded(run(Some(&keylog)), LIMIT).await;
    assert!(second.success, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("ca-key.pem is readable by its group (mode 640)"),
        "{}",
        second.stderr
    );
    let announced = format!("written to {} (from $SSLKEYLOGFILE)", keylog.display());
    assert_eq!(
        second.stderr.matches(&announced).count(),
        1,
        "{}",
        second.stderr
    );
}

/// A one-certificate TLS server on loopback presenting `cert_pem`/`key_pem` and answering
/// every connection with `200 hello`.
async fn tls_server(cert_pem: &str, key_pem: &str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs = modscope::tls::certs_from_pem(cert_pem.as_bytes()).unwrap();
    use rustls::pki_types::pem::PemObject;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(modscope::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// What `openssl req -x509 -newkey ...` makes: self-signed and CA:TRUE. Passed with
/// `--upstream-ca`, a server presenting it is trusted (webpki alone refuses a CA as the
/// end entity); names are still checked.
#[tokio::test]
async fn a_self_signed_ca_true_upstream_ca_is_trusted_as_the_server_certificate() {
    use modscope::config::ConnectTo;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = TempDir::new("selfsigned");
    let mut params = CertificateParams::new(vec!["selfsigned.example".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem_file = dir.path().join("selfsigned.pem");
    std::fs::write(&pem_file, cert.pem()).unwrap();
    let server = tls_server(&cert.pem(), &key.serialize_pem()).await;

    let ca_dir = dir.path().join("ca");
    let ca = std::sync::Arc::new(modscope::ca::CertAuthority::load_or_create(&ca_dir).unwrap());
    let mut config = common::test_config(ca_dir);
    for host in ["selfsigned.example", "othername.example"] {
        config
            .connect_to
            .push(ConnectTo::parse(&format!("{host}:443:127.0.0.1:{}", server.port())).unwrap());
    }
    let trust = modscope::tls::UpstreamTrust::new(&[pem_file]).unwrap();
    let proxy = modscope::proxy::start(config, ca.clone(), trust, Vec::new())
        .await
        .unwrap();
    let client =
        modscope::testkit::client::ProxiedClient::new(proxy.addr, &[ca.cert_der().clone()])
            .unwrap();
    let ok = client
        .get("https://selfsigned.example/", Alpn::H1)
        .await
        .unwrap();
    assert_eq!(
        (ok.status, String::from_utf8_lossy(&ok.body).to_string()),
        (200, "hello".to_string())
    );
    let wrong = client
        .get("https://othername.example/", Alpn::H1)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&wrong.body);
    assert_eq!(wrong.status, 502, "{text}");
    assert!(text.contains("not valid for this host"), "{text}");
    proxy.shutdown().await;
}

/// Reads until the server closes; how long that took (None: still open at `limit`).
async fn closed_after<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            s.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `--header-timeout` inside TLS tunnels and plain tunnels: a client that finishes the
/// handshake and sends no request, or only part of a head (HTTP/1.1 or HTTP/2), is cut
/// within the header timeout + 1 s, not held until `--idle-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_request_heads_inside_tunnels_are_cut_by_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let header_timeout = Duration::from_secs(1);
    let budget = header_timeout + Duration::from_secs(1);
    let fx = Fixture::with(FixtureOptions {
        tweak: Box::new(move |c| {
            c.header_timeout = header_timeout;
            c.idle_timeout = Duration::from_secs(60);
        }),
        ..FixtureOptions::default()
    })
    .await;
    let m = &fx.modules[0];
    let list = format!(
        "GET /{}/@v/list HTTP/1.1\r\nHost: {GOPROXY_HOST}\r\n\r\n",
        m.path
    );
    let mut results = Vec::new();

    let tunnel = |alpn| fx.client.tls_tunnel(GOPROXY_HOST, 443, alpn);
    let wait = Duration::from_secs(10);

    // HTTP/1.1 in TLS: nothing after the handshake.
    let mut tls = tunnel(Alpn::H1).await.unwrap();
    results.push(("h1 silent", closed_after(&mut tls, wait).await));

    // HTTP/1.1 in TLS: one request, then a next head that never ends.
    let mut tls = tunnel(Alpn::H1).await.unwrap();
    tls.write_all(list.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(&m.version) {
        use tokio::io::AsyncReadExt;
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0, "first answer: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    // Idle longer than the header timeout: that is the idle timeout's business.
    tokio::time::sleep(header_timeout + Duration::from_millis(500)).await;
    tls.write_all(b"GET /slow HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    results.push(("h1 slow second head", closed_after(&mut tls, wait).await));

    // HTTP/2: the preface and SETTINGS, then no request; then the same plus a HEADERS
    // frame without END_HEADERS and no CONTINUATION.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut opening = preface.to_vec();
    opening.extend(h2_frame(0x4, 0, 0, &[]));
    let mut partial = opening.clone();
    partial.extend(h2_frame(0x1, 0x1, 1, &[0x82, 0x87]));
    for (what, bytes) in [
        ("h2 no request", opening),
        ("h2 HEADERS never complete", partial),
    ] {
        let mut tls = tunnel(Alpn::H2).await.unwrap();
        tls.write_all(&bytes).await.unwrap();
        results.push((what, closed_after(&mut tls, wait).await));
    }

    // A plain-HTTP tunnel: CONNECT, then a head that stops half-way.
    let mut plain = fx.client.tunnel("plain.example:80").await.unwrap();
    plain.write_all(b"GET /x HTTP/1.1\r\nHo").await.unwrap();
    results.push((
        "plain tunnel slow head",
        closed_after(&mut plain, Duration::from_secs(10)).await,
    ));

    for (what, closed) in &results {
        let took = closed.unwrap_or_else(|| panic!("{what}: still open after 10 s"));
        assert!(
            took <= budget,
            "{what}: cut after {took:?}, budget {budget:?}"
        );
        eprintln!("{what}: cut after {took:.2?}");
    }
    // Nobody else was hurt.
    let ok = fx
        .client
        .get(
            &format!("https://{GOPROXY_HOST}/{}/@v/list", m.path),
            Alpn::Both,
        )
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
}

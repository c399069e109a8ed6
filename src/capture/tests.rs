//! Capture import tests on captures synthesized in code.

use std::path::Path;

use serde_json::{json, Value};

use super::synth::*;
use super::*;
use crate::trace::validate_har_1_2;

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

fn run(bytes: &[u8]) -> (MemoryOutput, ImportReport) {
    let mut out = MemoryOutput::default();
    let report = analyze(
        Path::new("test.pcap"),
        bytes,
        &mut out,
        &ImportOptions::default(),
    )
    .expect("import");
    (out, report)
}

fn json_entries(out: &MemoryOutput) -> Vec<Value> {
    let entries: Vec<Value> = out
        .entries
        .iter()
        .map(|e| serde_json::to_value(e).expect("serialise"))
        .collect();
    let har = json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "0"}, "entries": entries}});
    let problems = validate_har_1_2(&har);
    assert!(problems.is_empty(), "invalid HAR: {problems:?}");
    entries
}

fn http_get(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: proxy.golang.org\r\nUser-Agent: Go-http-client/1.1\r\n\
         Accept-Encoding: gzip\r\n\r\n"
    )
    .into_bytes()
}

fn http_ok(ct: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// list, info, mod and zip of one module on one keep-alive connection.
fn goproxy_conversation() -> Conv {
    let mut c = Conv::new("10.0.0.1:50000", "10.0.0.2:80", T0);
    c.handshake();
    let files: [(&str, &str, &[u8]); 4] = [
        (
            "/example.com/hello/@v/list",
            "text/plain; charset=utf-8",
            b"v1.0.0\nv1.1.0\n",
        ),
        (
            "/example.com/hello/@v/v1.1.0.info",
            "application/json",
            br#"{"Version":"v1.1.0","Time":"2026-01-01T00:00:00Z"}"#,
        ),
        (
            "/example.com/hello/@v/v1.1.0.mod",
            "text/plain; charset=utf-8",
            b"module example.com/hello\n",
        ),
        (
            "/example.com/hello/@v/v1.1.0.zip",
            "application/zip",
            b"PK\x03\x04 not really a zip but binary \x00\x01\x02",
        ),
    ];
    for (path, ct, body) in files {
        c.client(&http_get(path));
        c.wait(5_000_000);
        c.server_segments(&http_ok(ct, body), 40);
        c.ack_from_client();
    }
    c.fin(true);
    c.fin(false);
    c.ack_from_client();
    c
}

#[test]
fn plain_http_goproxy_requests_become_entries_with_go_kinds() {
    let c = goproxy_conversation();
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, report) = run(&bytes);
    assert_eq!(report.connections, 1);
    assert_eq!(report.http_exchanges, 4);
    assert_eq!(report.entries, 4);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let e = json_entries(&out);
    let kinds: Vec<&str> = e
        .iter()
        .map(|e| e["_go"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["list", "info", "mod", "zip"]);
    assert_eq!(
        e[0]["request"]["url"],
        "http://proxy.golang.org/example.com/hello/@v/list"
    );
    assert_eq!(e[0]["_go"]["module"], "example.com/hello");
    assert_eq!(e[1]["_go"]["version"], "v1.1.0");
    assert_eq!(e[0]["response"]["status"], 200);
    assert_eq!(e[0]["response"]["content"]["text"], "v1.0.0\nv1.1.0\n");
    // The zip is binary: stored, referenced, not embedded.
    let zip = &e[3]["response"]["content"];
    assert!(zip.get("text").is_none());
    let sha = zip["_sha256"].as_str().unwrap();
    assert_eq!(
        out.bodies.borrow()[sha],
        b"PK\x03\x04 not really a zip but binary \x00\x01\x02".to_vec()
    );
    // First exchange carries the TCP handshake; later ones reuse the connection.
    assert_eq!(e[0]["timings"]["connect"], 2.0);
    assert_eq!(e[1]["timings"]["connect"], -1.0);
    assert_eq!(e[0]["connection"], "1");
    assert_eq!(e[0]["serverIPAddress"], "10.0.0.2");
    assert_eq!(e[0]["startedDateTime"], "2026-01-01T00:00:00.000Z");
    assert!(e[0]["timings"]["wait"].as_f64().unwrap() >= 5.0);
    let conn = &e[0]["_capture"]["connection"];
    assert_eq!(conn["client"], "10.0.0.1:50000");
    assert_eq!(conn["server"], "10.0.0.2:80");
    assert_eq!(conn["protocol"], "http");
    assert_eq!(conn["opening"], "complete");
    assert_eq!(conn["rtt_ms"], 2.0);
    assert_eq!(conn["fin_by"], json!(["client", "server"]));
    assert_eq!(conn["closed_by"], "client");
    assert_eq!(conn["retransmissions"], json!({"client": 0, "server": 0}));
    assert!(e.iter().all(|x| x.get("_error").is_none()));
    assert_eq!(e[2]["_capture"]["http"]["exchange"], 2);
}

#[test]
fn retransmitted_and_reordered_segments_are_counted_and_the_body_kept_whole() {
    let mut c = Conv::new("10.0.0.1:50001", "10.0.0.2:8080", T0);
    c.handshake();
    c.client(&http_get("/example.com/hello/@v/list"));
    let body: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
    let response = http_ok("text/plain", &body);
    let base = c.sseq;
    let (a, rest) = response.split_at(100);
    let (b, d) = rest.split_at(100);
    c.server_at(base, a);
    // d arrives before b (reordering), then a is retransmitted, then b, then d again.
    c.server_at(base + 200, d);
    c.server_at(base, a);
    c.server_at(base + 100, b);
    c.server_at(base + 200, d);
    c.sseq = base + response.len() as u32;
    c.fin(false);
    c.fin(true);
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, report) = run(&bytes);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let e = json_entries(&out);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0]["response"]["content"]["text"],
        String::from_utf8(body).unwrap()
    );
    let conn = &e[0]["_capture"]["connection"];
    assert_eq!(conn["retransmissions"], json!({"client": 0, "server": 2}));
    assert_eq!(conn["out_of_order"], json!({"client": 0, "server": 1}));
    assert_eq!(conn["bytes_server_to_client"], response.len());
}

#[test]
fn chunked_body_with_trailers_is_decoded_across_segment_boundaries() {
    let mut c = Conv::new("10.0.0.1:50002", "10.0.0.2:80", T0);
    c.handshake();
    c.client(&http_get("/example.com/hello/@v/v1.0.0.mod"));
    let response =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
        7\r\nmodule \r\n11;ext=1\r\nexample.com/hello\r\n1\r\n\n\r\n0\r\nX-Checksum: abc\r\n\r\n";
    c.server_segments(response, 3);
    c.client(&http_get("/example.com/hello/@v/list"));
    c.server(&http_ok("text/plain", b"v1.0.0\n"));
    let bytes = capture(&c.packets, Link::Ethernet, Format::Ng(6));
    let (out, _) = run(&bytes);
    let e = json_entries(&out);
    assert_eq!(e.len(), 2);
    let r = &e[0]["response"];
    assert_eq!(r["content"]["text"], "module example.com/hello\n");
    assert_eq!(r["bodySize"], 25);
    assert_eq!(
        r["_trailers"],
        json!([{"name": "x-checksum", "value": "abc"}])
    );
    assert!(e[0].get("_error").is_none());
    // The connection stays in step: the next exchange parses too.
    assert_eq!(e[1]["response"]["content"]["text"], "v1.0.0\n");
    assert_eq!(e[1]["_go"]["kind"], "list");
}

fn tls_conversation(sni: &str, complete: bool) -> Conv {
    let mut c = Conv::new("10.0.0.1:50003", "10.0.0.3:443", T0);
    c.handshake();
    c.client(&client_hello(sni, &["h2", "http/1.1"]));
    c.wait(10_000_000);
    if complete {
        let mut flight = server_hello_13();
        flight.extend_from_slice(&record(20, &[1]));
        flight.extend_from_slice(&record(23, &[0u8; 900]));
        c.server(&flight);
        let mut fin = record(20, &[1]);
        fin.extend_from_slice(&record(23, &[0u8; 53]));
        c.client(&fin);
        c.client(&record(23, &[0u8; 120]));
        c.server(&record(23, &[0u8; 4000]));
    }
    c
}

#[test]
fn completed_tls_connection_gets_one_entry_with_hello_facts() {
    let mut c = tls_conversation("proxy.golang.org", true);
    c.fin(true);
    c.fin(false);
    let bytes = capture(&c.packets, Link::Ethernet, Format::Ng(9));
    let (out, report) = run(&bytes);
    assert_eq!(report.tls_connections, 1);
    let e = json_entries(&out);
    assert_eq!(e.len(), 1);
    let x = &e[0];
    assert_eq!(x["request"]["method"], "CONNECT");
    assert_eq!(x["request"]["url"], "https://proxy.golang.org/");
    assert_eq!(x["response"]["status"], 200);
    assert!(x.get("_error").is_none());
    let client = &x["_tls"]["client"];
    assert_eq!(client["sni"], "proxy.golang.org");
    assert_eq!(client["alpn"], json!(["h2", "http/1.1"]));
    assert_eq!(client["version"], "TLS 1.3");
    assert_eq!(client["cipher"], "TLS13_AES_128_GCM_SHA256");
    let tls = &x["_capture"]["tls"];
    assert_eq!(tls["versions_offered"], json!(["TLS 1.3", "TLS 1.2"]));
    assert_eq!(tls["completed"], true);
    // ClientHello -> ServerHello 10 ms, + 1 ms to the client's Finished.
    assert_eq!(tls["handshake_ms"], 12.0);
    assert_eq!(x["timings"]["ssl"], 12.0);
    assert_eq!(x["timings"]["connect"], 14.0);
    assert_eq!(x["_go"]["kind"], "other");
}

#[test]
fn reset_after_client_hello_is_a_tls_handshake_failure() {
    let mut c = tls_conversation("sum.golang.org", false);
    c.rst(false);
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, _) = run(&bytes);
    let e = json_entries(&out);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["response"]["status"], 0);
    assert_eq!(e[0]["request"]["url"], "https://sum.golang.org/");
    let err = &e[0]["_error"];
    assert_eq!(err["phase"], "tls");
    assert_eq!(err["kind"], "tls-handshake");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("reset by 10.0.0.3:443"), "{msg}");
    assert!(msg.contains("no ServerHello"), "{msg}");
    assert_eq!(e[0]["_capture"]["connection"]["rst_by"], json!(["server"]));
}

#[test]
fn stalled_handshake_says_how_long_no_server_hello_came() {
    let mut c = tls_conversation("proxy.golang.org", false);
    c.wait(9_000_000_000);
    c.ack_from_client();
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, _) = run(&bytes);
    let e = json_entries(&out);
    let msg = e[0]["_error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("no ServerHello within 9.0 s after ClientHello"),
        "{msg}"
    );
    assert_eq!(e[0]["_capture"]["connection"]["ended"], "capture-end");
}

#[test]
fn server_alert_is_reported_with_its_description() {
    let mut c = tls_conversation("proxy.golang.org", false);
    c.server(&alert(2, 112));
    c.fin(false);
    let bytes = capture(&c.packets, Link::Raw, Format::MicroLe);
    let (out, _) = run(&bytes);
    let e = json_entries(&out);
    let msg = e[0]["_error"]["message"].as_str().unwrap();
    assert!(msg.contains("unrecognized_name (fatal)"), "{msg}");
    assert_eq!(
        e[0]["_capture"]["tls"]["alerts"][0],
        json!({"from": "server", "level": "fatal", "description": "unrecognized_name", "after_ms": 11.0})
    );
}

#[test]
fn nanosecond_pcap_keeps_sub_microsecond_timing() {
    for format in [Format::NanoBe, Format::NanoLe] {
        let mut c = Conv::new("127.0.0.1:40000", "127.0.0.1:9", T0 + 123_456_789);
        c.step = 1_234_567;
        c.syn();
        c.refuse();
        let bytes = capture(&c.packets, Link::Ethernet, format);
        let (out, _) = run(&bytes);
        let e = json_entries(&out);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["startedDateTime"], "2026-01-01T00:00:00.123Z");
        assert_eq!(e[0]["timings"]["connect"], 1.235);
        assert_eq!(e[0]["_error"]["kind"], "connect-refused");
        assert_eq!(e[0]["_error"]["phase"], "connect");
        assert_eq!(e[0]["request"]["url"], "http://127.0.0.1:9/");
    }
}

#[test]
fn microsecond_big_endian_pcap_reads() {
    let c = goproxy_conversation();
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroBe);
    let (out, _) = run(&bytes);
    assert_eq!(out.entries.len(), 4);
}

#[test]
fn every_link_type_decodes() {
    for link in [Link::Sll, Link::Sll2, Link::Raw, Link::Null, Link::Loop] {
        let c = goproxy_conversation();
        let bytes = capture(&c.packets, link, Format::Ng(6));
        let (out, report) = run(&bytes);
        assert_eq!(out.entries.len(), 4, "{link:?}: {report:?}");
        assert!(
            report.warnings.is_empty(),
            "{link:?}: {:?}",
            report.warnings
        );
    }
}

#[test]
fn dlt_raw_variants_decode() {
    for linktype in [12u32, 14, 228] {
        let c = goproxy_conversation();
        let mut bytes = capture(&c.packets, Link::Raw, Format::MicroLe);
        bytes[20..24].copy_from_slice(&linktype.to_le_bytes());
        let (out, report) = run(&bytes);
        assert_eq!(out.entries.len(), 4, "linktype {linktype}: {report:?}");
    }
}

#[test]
fn unsupported_link_types_are_counted_in_a_warning() {
    let c = goproxy_conversation();
    let mut bytes = capture(&c.packets, Link::Raw, Format::MicroLe);
    bytes[20..24].copy_from_slice(&147u32.to_le_bytes());
    let (out, report) = run(&bytes);
    assert!(out.entries.is_empty());
    assert_eq!(
        report.warnings,
        [format!(
            "test.pcap: {} packets with unsupported link type 147 skipped (supported: Ethernet, \
             Linux cooked SLL/SLL2, raw IP, BSD loopback)",
            c.packets.len()
        )]
    );
}

#[test]
fn sll2_capture_of_loopback_skips_the_outgoing_copy() {
    let mut c = Conv::new("127.0.0.1:40001", "127.0.0.1:8080", T0);
    c.handshake();
    c.client(&http_get("/example.com/hello/@v/list"));
    c.server(&http_ok("text/plain", b"v1.0.0\n"));
    let mut doubled = Vec::new();
    let mut ng = PcapNg::new();
    let iface = ng.interface(276, 9);
    for (ts, ip) in &c.packets {
        let mut frame = Link::Sll2.wrap(ip);
        frame[8..10].copy_from_slice(&772u16.to_be_bytes());
        let mut out_copy = frame.clone();
        out_copy[10] = 4;
        ng.packet(iface, *ts, &out_copy, u32::MAX);
        ng.packet(iface, *ts, &frame, u32::MAX);
        doubled.push(());
    }
    let (out, report) = run(&ng.buf);
    assert_eq!(report.packets, 2 * doubled.len() as u64);
    let e = json_entries(&out);
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0]["_capture"]["connection"]["retransmissions"],
        json!({"client": 0, "server": 0})
    );
}

#[test]
fn ipv6_connections_are_followed() {
    let mut c = Conv::new("[2001:db8::1]:50000", "[2001:db8::2]:443", T0);
    c.handshake();
    c.client(&client_hello("proxy.golang.org", &["h2"]));
    c.server(&server_hello_13());
    c.client(&record(23, &[1u8; 53]));
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, _) = run(&bytes);
    let e = json_entries(&out);
    assert_eq!(
        e[0]["_capture"]["connection"]["client"],
        "[2001:db8::1]:50000"
    );
    assert_eq!(e[0]["serverIPAddress"], "2001:db8::2");
    assert_eq!(e[0]["_tls"]["client"]["sni"], "proxy.golang.org");
    assert_eq!(e[0]["response"]["status"], 200);
}

#[test]
fn dns_answers_failures_and_names_for_later_connections() {
    let client = addr("10.0.0.1:33000");
    let server = addr("10.0.0.53:53");
    let mut p = vec![
        (
            T0,
            udp_packet(client, server, &dns_query(1, "proxy.golang.org", 1)),
        ),
        (
            T0 + 12_000_000,
            udp_packet(
                server,
                client,
                &dns_response(
                    1,
                    "proxy.golang.org",
                    1,
                    0,
                    &[
                        (5, cname_rdata("proxy.l.google.com")),
                        (1, vec![10, 0, 0, 9]),
                    ],
                ),
            ),
        ),
        (
            T0 + 13_000_000,
            udp_packet(client, server, &dns_query(2, "nope.example", 28)),
        ),
        (
            T0 + 20_000_000,
            udp_packet(server, client, &dns_response(2, "nope.example", 28, 3, &[])),
        ),
        (
            T0 + 21_000_000,
            udp_packet(client, server, &dns_query(3, "slow.example", 1)),
        ),
        (
            T0 + 1_021_000_000,
            udp_packet(client, server, &dns_query(3, "slow.example", 1)),
        ),
    ];
    // A refused connect to the resolved address is named after the query.
    let mut c = Conv::new("10.0.0.1:50010", "10.0.0.9:443", T0 + 30_000_000);
    c.syn();
    c.refuse();
    p.extend(c.packets);
    p.sort_by_key(|(t, _)| *t);
    let bytes = capture(&p, Link::Ethernet, Format::MicroLe);
    let (out, report) = run(&bytes);
    assert_eq!(report.dns_queries, 3);
    let e = json_entries(&out);
    let ok = e.iter().find(|x| x["_capture"]["dns"]["id"] == 1).unwrap();
    assert_eq!(ok["request"]["method"], "DNS");
    assert_eq!(ok["request"]["url"], "https://proxy.golang.org/");
    assert_eq!(ok["response"]["status"], 200);
    assert_eq!(ok["timings"]["dns"], 12.0);
    assert_eq!(ok["_capture"]["dns"]["rcode"], "NOERROR");
    assert_eq!(
        ok["_capture"]["dns"]["answers"][0]["data"],
        "proxy.l.google.com"
    );
    assert_eq!(ok["_capture"]["dns"]["answers"][1]["data"], "10.0.0.9");
    let nx = e.iter().find(|x| x["_capture"]["dns"]["id"] == 2).unwrap();
    assert_eq!(nx["response"]["status"], 0);
    assert_eq!(nx["_error"]["phase"], "dns");
    assert_eq!(nx["_error"]["kind"], "dns");
    assert_eq!(
        nx["_error"]["message"],
        "NXDOMAIN for nope.example (AAAA) from 10.0.0.53:53 after 7.0 ms"
    );
    let slow = e.iter().find(|x| x["_capture"]["dns"]["id"] == 3).unwrap();
    let msg = slow["_error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("no answer for slow.example (A) from 10.0.0.53:53"),
        "{msg}"
    );
    assert!(msg.ends_with(", 1 retry"), "{msg}");
    let refused = e
        .iter()
        .find(|x| x["_error"]["kind"] == "connect-refused")
        .unwrap();
    assert_eq!(refused["request"]["url"], "https://proxy.golang.org/");
}

#[test]
fn unanswered_syns_are_a_connect_timeout() {
    let mut c = Conv::new("10.0.0.1:50020", "10.255.255.1:443", T0);
    c.step = 1_000_000_000;
    c.syn();
    c.syn();
    c.syn();
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, report) = run(&bytes);
    assert_eq!(report.connections, 1);
    let e = json_entries(&out);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["_error"]["kind"], "connect-timeout");
    assert_eq!(
        e[0]["_error"]["message"],
        "no answer to 3 SYNs sent to 10.255.255.1:443 over 2.0 s"
    );
    assert_eq!(e[0]["_capture"]["connection"]["opening"], "syn-only");
}

#[test]
fn reset_in_the_middle_of_a_body_is_an_upstream_reset() {
    let mut c = Conv::new("10.0.0.1:50030", "10.0.0.2:80", T0);
    c.handshake();
    c.client(&http_get("/example.com/hello/@v/v1.0.0.zip"));
    let mut head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: 1000\r\n\r\n"
            .to_vec();
    head.extend_from_slice(&[7u8; 400]);
    c.server(&head);
    c.rst(false);
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, _) = run(&bytes);
    let e = json_entries(&out);
    assert_eq!(e[0]["response"]["status"], 200);
    assert_eq!(e[0]["response"]["content"]["_complete"], false);
    assert_eq!(e[0]["_error"]["kind"], "upstream-reset");
    assert_eq!(e[0]["_error"]["phase"], "body");
    assert_eq!(
        e[0]["_error"]["message"],
        "connection reset by 10.0.0.2:80 after 400 of 1000 body bytes"
    );
}

#[test]
fn request_bodies_are_stored_and_a_body_until_close_completes_at_fin() {
    let mut c = Conv::new("10.0.0.1:50070", "10.0.0.2:80", T0);
    c.handshake();
    let mut req = b"POST /repo.git/git-upload-pack HTTP/1.1\r\nHost: git.example\r\n\
        Content-Type: application/x-git-upload-pack-request\r\nContent-Length: 9\r\n\r\n"
        .to_vec();
    req.extend_from_slice(b"0000want\n");
    c.client(&req[..40]);
    c.client(&req[40..]);
    c.server(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ");
    c.server(b"second");
    c.fin(false);
    c.fin(true);
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, report) = run(&bytes);
    assert_eq!(
        report.to_string(),
        format!(
            "{} packets: 1 TCP connections (0 TLS), 1 HTTP exchanges, 0 DNS queries; 1 entries",
            c.packets.len()
        )
    );
    let e = json_entries(&out);
    let post = &e[0]["request"]["postData"];
    assert_eq!(post["mimeType"], "application/x-git-upload-pack-request");
    let sha = post["_sha256"].as_str().unwrap();
    assert_eq!(out.bodies.borrow()[sha], b"0000want\n".to_vec());
    assert_eq!(e[0]["_go"]["kind"], "git");
    assert_eq!(e[0]["response"]["content"]["text"], "first second");
    assert!(e[0]["response"]["content"].get("_complete").is_none());
    assert!(e[0].get("_error").is_none());
}

#[test]
fn connect_tunnel_through_a_proxy_is_one_entry_with_the_inner_tls() {
    let mut c = Conv::new("127.0.0.1:50040", "127.0.0.1:8080", T0);
    c.handshake();
    c.client(b"CONNECT proxy.golang.org:443 HTTP/1.1\r\nHost: proxy.golang.org:443\r\n\r\n");
    c.wait(3_000_000);
    c.server(b"HTTP/1.1 200 OK\r\n\r\n");
    c.client(&client_hello("proxy.golang.org", &["h2", "http/1.1"]));
    c.server(&server_hello_13());
    c.client(&record(23, &[1u8; 53]));
    c.client(&record(23, &[1u8; 100]));
    c.fin(true);
    c.fin(false);
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, report) = run(&bytes);
    assert_eq!(report.tls_connections, 1);
    assert_eq!(report.http_exchanges, 1);
    let e = json_entries(&out);
    assert_eq!(e.len(), 1);
    let x = &e[0];
    assert_eq!(x["request"]["url"], "https://proxy.golang.org/");
    assert_eq!(x["response"]["status"], 200);
    assert_eq!(x["_tls"]["client"]["sni"], "proxy.golang.org");
    assert_eq!(x["_capture"]["tunnel"]["proxy"], "127.0.0.1:8080");
    assert_eq!(x["_capture"]["tunnel"]["authority"], "proxy.golang.org:443");
    assert_eq!(x["_capture"]["connection"]["protocol"], "http-connect-tls");
    assert!(x["timings"]["wait"].as_f64().unwrap() >= 3.0);
}

#[test]
fn pcapng_interfaces_keep_their_own_timestamp_resolution() {
    let mut c = Conv::new("10.0.0.1:50050", "10.0.0.2:9", T0);
    c.step = 1_500_000;
    c.syn();
    c.refuse();
    let mut ng = PcapNg::new();
    let micro = ng.interface(1, 6);
    let nano = ng.interface(101, 9);
    ng.packet(
        micro,
        c.packets[0].0,
        &Link::Ethernet.wrap(&c.packets[0].1),
        u32::MAX,
    );
    ng.packet(nano, c.packets[1].0, &c.packets[1].1, u32::MAX);
    let (out, report) = run(&ng.buf);
    assert_eq!(report.packets, 2);
    let e = json_entries(&out);
    assert_eq!(e[0]["timings"]["connect"], 1.5);
}

#[test]
fn snapshot_length_cuts_are_reported_not_misread() {
    let c = goproxy_conversation();
    let bytes = capture_cut(&c.packets, Link::Ethernet, Format::MicroLe, 80);
    let (out, report) = run(&bytes);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("snapshot length")),
        "{:?}",
        report.warnings
    );
    json_entries(&out);
}

#[test]
fn zero_windows_are_counted_per_side() {
    let mut c = Conv::new("10.0.0.1:50060", "10.0.0.2:80", T0);
    c.handshake();
    c.client(&http_get("/example.com/hello/@v/list"));
    let p = tcp_packet(c.c, c.s, c.cseq, c.sseq, ACK, 0, &[]);
    c.packets.push((c.t, p.clone()));
    c.packets.push((c.t + 1, p));
    c.t += 2;
    c.server(&http_ok("text/plain", b"v1.0.0\n"));
    let bytes = capture(&c.packets, Link::Ethernet, Format::MicroLe);
    let (out, _) = run(&bytes);
    let e = json_entries(&out);
    assert_eq!(
        e[0]["_capture"]["connection"]["zero_windows"],
        json!({"client": 2, "server": 0})
    );
}

#[test]
fn not_a_capture_names_the_file_and_the_magic() {
    let mut out = MemoryOutput::default();
    let err = analyze(
        Path::new("trace.har"),
        &b"{\"log\": {}}"[..],
        &mut out,
        &ImportOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("trace.har: not a pcap or pcapng file: bad magic 0x7b226c6f"),
        "{msg}"
    );
    assert!(msg.contains("looks like text"), "{msg}");
    let err = analyze(
        Path::new("e.pcap"),
        &b""[..],
        &mut out,
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "e.pcap: empty file, expected a pcap or pcapng capture"
    );
}

fn all_captures() -> Vec<(&'static str, Vec<u8>)> {
    let http = goproxy_conversation();
    let mut tls = tls_conversation("proxy.golang.org", true);
    tls.fin(true);
    let mut chunked = Conv::new("10.0.0.1:50002", "10.0.0.2:80", T0);
    chunked.handshake();
    chunked.client(&http_get("/x/@v/list"));
    chunked.server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    let client = addr("10.0.0.1:33000");
    let server = addr("10.0.0.53:53");
    let dns = vec![
        (
            T0,
            udp_packet(client, server, &dns_query(9, "nope.example", 1)),
        ),
        (
            T0 + 1,
            udp_packet(server, client, &dns_response(9, "nope.example", 1, 3, &[])),
        ),
    ];
    vec![
        (
            "http pcap",
            capture(&http.packets, Link::Ethernet, Format::MicroLe),
        ),
        (
            "http pcapng",
            capture(&http.packets, Link::Sll2, Format::Ng(9)),
        ),
        (
            "tls pcap be",
            capture(&tls.packets, Link::Raw, Format::NanoBe),
        ),
        (
            "chunked",
            capture(&chunked.packets, Link::Null, Format::Ng(6)),
        ),
        ("dns", capture(&dns, Link::Loop, Format::MicroLe)),
    ]
}

/// Offsets where a record ends: a file cut exactly there is a complete, shorter capture.
fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            at += len;
            ends.push(at);
        }
    } else {
        let le = bytes[0] == 0xd4 || bytes[0] == 0x4d;
        let u32at = |at: usize| {
            let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let mut at = 24;
        ends.push(at);
        while at + 16 <= bytes.len() {
            at += 16 + u32at(at + 8) as usize;
            ends.push(at);
        }
    }
    ends
}

#[test]
fn every_prefix_imports_and_says_where_it_was_cut() {
    for (name, bytes) in all_captures() {
        let full = run(&bytes).1;
        assert!(full.warnings.is_empty(), "{name}: {:?}", full.warnings);
        let ends = record_ends(&bytes);
        let step = if bytes.len() > 3000 { 7 } else { 1 };
        for len in (1..bytes.len()).step_by(step) {
            let mut out = MemoryOutput::default();
            let report = analyze(
                Path::new("cut.pcap"),
                &bytes[..len],
                &mut out,
                &ImportOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{name}: prefix {len}: {e}"));
            let cut = format!("cut at byte {len}");
            assert!(
                ends.contains(&len) || report.warnings.iter().any(|w| w.contains(&cut)),
                "{name}: prefix {len}: {:?}",
                report.warnings
            );
            json_entries(&out);
        }
    }
}

#[test]
fn damaged_captures_never_panic() {
    // A fixed xorshift keeps the test deterministic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (_, bytes) in all_captures() {
        for _ in 0..300 {
            let mut damaged = bytes.clone();
            let flips = 1 + next() % 8;
            for _ in 0..flips {
                let at = (next() % damaged.len() as u64) as usize;
                damaged[at] = next() as u8;
            }
            let mut out = MemoryOutput::default();
            let _ = analyze(
                Path::new("damaged.pcap"),
                &damaged[..],
                &mut out,
                &ImportOptions::default(),
            );
        }
    }
}

#[test]
fn the_same_capture_gives_the_same_entries() {
    let mut packets = goproxy_conversation().packets;
    let mut tls = tls_conversation("proxy.golang.org", true);
    tls.fin(true);
    packets.extend(tls.packets);
    let mut other = Conv::new("10.0.0.1:50099", "10.0.0.7:443", T0);
    other.syn();
    other.refuse();
    packets.extend(other.packets);
    packets.sort_by_key(|(t, _)| *t);
    let bytes = capture(&packets, Link::Ethernet, Format::Ng(9));
    let a: Vec<String> = run(&bytes)
        .0
        .entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    for _ in 0..5 {
        let b: Vec<String> = run(&bytes)
            .0
            .entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        assert_eq!(a, b);
    }
    assert_eq!(a.len(), 6);
}

#[test]
fn dns_parser_survives_compression_loops_and_short_messages() {
    // A name pointing at itself.
    let mut m = dns_response(1, "a.example", 1, 0, &[]);
    m.truncate(12);
    m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    m[5] = 1;
    assert!(dns::parse(&m).is_none());
    for len in 0..40 {
        let q = dns_query(7, "proxy.golang.org", 1);
        let _ = dns::parse(&q[..len.min(q.len())]);
    }
}

#[test]
fn import_writes_a_trace_directory_that_loads() {
    let tmp = crate::testkit::TempDir::new("capture-unit");
    let dir = tmp.path();
    let file = dir.join("in.pcap");
    let c = goproxy_conversation();
    std::fs::write(&file, capture(&c.packets, Link::Ethernet, Format::MicroLe)).unwrap();
    let out = dir.join("trace");
    let report = import(&file, &out).unwrap();
    assert_eq!(report.entries, 4);
    let loaded = crate::trace::load_trace(&out).unwrap();
    assert_eq!(loaded.entries.len(), 4);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let zip = &loaded.entries[3];
    let body = crate::trace::entry_body(&loaded, &zip.response.content).unwrap();
    assert!(body.starts_with(b"PK"));
    // A second import into the same directory is refused instead of mixing traces.
    let err = import(&file, &out).unwrap_err();
    assert!(err.to_string().contains("already holds a trace"), "{err}");
}

"""Writes chrome-go.har: the exchanges of mitmproxy-go.har shaped as Chrome's DevTools
"Save all as HAR with content" writes them (a headless DevTools export is not scriptable
here). Chrome's rules followed: creator WebInspector, pages + pageref, http/2.0 with
pseudo-headers in the request, lower-case h2 header names, `content.text` is the body
after Content-Encoding was undone (text responses below are served gzip-encoded), binary
bodies as base64, `content.size` the decoded length, `compression` = size - transfer
size, `bodySize` -1 with `_transferSize`, `_initiator`, `_priority`, `_resourceType`,
`_error: null`, timings with `_blocked_queueing` and -1 for unknown phases.

Run: python3 tests/data/make_chrome_har.py
"""
import base64
import gzip
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
src = json.load(open(os.path.join(here, "mitmproxy-go.har")))
entries = []
for i, e in enumerate(src["log"]["entries"]):
    url = e["request"]["url"]
    c = e["response"]["content"]
    body = c["text"].encode("latin-1" if url.endswith(".zip") else "utf-8")
    mime = c["mimeType"].split(";")[0].strip()
    headers = [{"name": "content-type", "value": c["mimeType"]},
               {"name": "date", "value": "Wed, 25 Nov 2026 12:00:00 GMT"}]
    if url.endswith(".zip"):
        content = {"size": len(body), "mimeType": mime, "compression": 0,
                   "text": base64.b64encode(body).decode(), "encoding": "base64"}
        transfer = len(body)
    else:
        wire = gzip.compress(body, mtime=0)
        headers.insert(0, {"name": "content-encoding", "value": "gzip"})
        headers.append({"name": "content-length", "value": str(len(wire))})
        transfer = len(wire)
        content = {"size": len(body), "mimeType": mime,
                   "compression": len(body) - transfer, "text": body.decode()}
    path = url.split("proxy.golang.org", 1)[1]
    entries.append({
        "_initiator": {"type": "script"},
        "_priority": "High",
        "_resourceType": "fetch",
        "cache": {},
        "connection": "41873",
        "pageref": "page_1",
        "request": {
            "method": "GET", "url": url, "httpVersion": "http/2.0",
            "headers": [
                {"name": ":authority", "value": "proxy.golang.org"},
                {"name": ":method", "value": "GET"},
                {"name": ":path", "value": path},
                {"name": ":scheme", "value": "https"},
                {"name": "accept", "value": "*/*"},
                {"name": "accept-encoding", "value": "gzip, deflate, br, zstd"},
                {"name": "user-agent", "value": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
            ],
            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0,
        },
        "response": {
            "status": 200, "statusText": "", "httpVersion": "http/2.0",
            "headers": headers, "cookies": [], "content": content,
            "redirectURL": "", "headersSize": -1, "bodySize": -1,
            "_transferSize": transfer + 60, "_error": None,
            "_fetchedViaServiceWorker": False,
        },
        "serverIPAddress": "127.0.0.1",
        "startedDateTime": "2026-11-25T12:00:00.%03dZ" % (100 + i * 10),
        "time": 3.2,
        "timings": {"blocked": 0.8, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1,
                    "wait": 1.9, "receive": 0.4, "_blocked_queueing": 0.5,
                    "_workerStart": -1, "_workerReady": -1, "_workerFetchStart": -1,
                    "_workerRespondWithSettled": -1},
    })
har = {"log": {
    "version": "1.2",
    "creator": {"name": "WebInspector", "version": "537.36"},
    "pages": [{"startedDateTime": "2026-11-25T12:00:00.000Z", "id": "page_1",
               "title": "https://proxy.golang.org/", "pageTimings": {"onContentLoad": -1, "onLoad": -1}}],
    "entries": entries,
}}
with open(os.path.join(here, "chrome-go.har"), "w") as f:
    json.dump(har, f, indent=2)
    f.write("\n")

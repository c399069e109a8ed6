#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver built on opentelemetry-proto's own classes (not modscope's).

Usage: otlp_receiver.py OUT.jsonl [--fail-first N] [--status CODE]
Listens on 127.0.0.1:0, prints "port N" on stdout, and for each POST /v1/traces decodes the
(optionally gzipped) ExportTraceServiceRequest, protobuf or JSON by Content-Type, and appends
it to OUT.jsonl as protobuf's canonical JSON, with the request's headers under "_headers".
The first N requests (or every request, with --status) are answered with CODE instead.
Also: otlp_receiver.py --check-json FILE  parses each line of an OTLP/JSON file with
json_format.Parse and prints the span count (fails on anything protobuf rejects).
"""
import gzip
import http.server
import json
import sys
import threading

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def check_json(path):
    spans = 0
    with open(path) as f:
        for line in f:
            req = json_format.Parse(line, trace_service_pb2.ExportTraceServiceRequest())
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    spans += len(ss.spans)
    print(spans)


def main():
    if sys.argv[1] == "--check-json":
        check_json(sys.argv[2])
        return
    out_path = sys.argv[1]
    args = sys.argv[2:]
    fail_first = int(args[args.index("--fail-first") + 1]) if "--fail-first" in args else 0
    always = int(args[args.index("--status") + 1]) if "--status" in args else None
    lock = threading.Lock()
    seen = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                seen["n"] += 1
                n = seen["n"]
            code = always if always is not None else (503 if n <= fail_first else 200)
            if code != 200:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            req = trace_service_pb2.ExportTraceServiceRequest()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                json_format.Parse(body.decode(), req)
            else:
                req.ParseFromString(body)
            doc = json_format.MessageToDict(req)
            doc["_headers"] = {k.lower(): v for k, v in self.headers.items()}
            doc["_path"] = self.path
            with lock, open(out_path, "a") as f:
                f.write(json.dumps(doc) + "\n")
            resp = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(resp)))
            self.end_headers()
            self.wfile.write(resp)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("port", server.server_address[1], flush=True)
    # Stop with the test: when stdin closes (the test dropped the child's pipe).
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()

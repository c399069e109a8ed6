#!/usr/bin/env python3
"""A tiny plain-HTTP GOPROXY for making test captures (not used by the tests themselves).

Serves example.com/hello v1.0.0 and v1.1.0: list, .info and .mod with Content-Length,
.zip with Transfer-Encoding: chunked, anything else 404 text/plain (as go expects).
Usage: goproxy_server.py PORT  (prints "listening" once ready).
"""
import io
import sys
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODULE = "example.com/hello"
VERSIONS = ["v1.0.0", "v1.1.0"]


def module_zip(version):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        root = f"{MODULE}@{version}/"
        z.writestr(root + "go.mod", f"module {MODULE}\n\ngo 1.19\n")
        z.writestr(root + "hello.go", f'package hello\n\nconst Version = "{version}"\n')
    return buf.getvalue()


FILES = {f"/{MODULE}/@v/list": ("text/plain; charset=utf-8", "".join(v + "\n" for v in VERSIONS).encode())}
for v in VERSIONS:
    FILES[f"/{MODULE}/@v/{v}.info"] = ("application/json", f'{{"Version":"{v}","Time":"2026-01-02T03:04:05Z"}}'.encode())
    FILES[f"/{MODULE}/@v/{v}.mod"] = ("text/plain; charset=utf-8", f"module {MODULE}\n\ngo 1.19\n".encode())
    FILES[f"/{MODULE}/@v/{v}.zip"] = ("application/zip", module_zip(v))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        found = FILES.get(self.path)
        if found is None:
            body = f"not found: {self.path}\n".encode()
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        ctype, body = found
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if self.path.endswith(".zip"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 200):
                part = body[i:i + 200]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening", flush=True)
    server.serve_forever()

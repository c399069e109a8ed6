#!/bin/sh
# Remakes the capture files made with python helpers and go (see README.md):
# goproxy-http.pcapng, dns-nxdomain.pcapng and dns-5353.pcap. Needs root (or capture
# rights), dumpcap, python3 and go. The TLS captures come from
#   MODSCOPE_REGENERATE_CAPTURES=1 cargo test --test capture regenerate -- --ignored
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
cleanup() {
    for pid in ${SERVER:-} ${DUMPCAP:-}; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# start_capture IFACE FILTER FILE [FORMAT-FLAG]: dumpcap in the background, capturing.
start_capture() {
    dumpcap -i "$1" -f "$2" ${4:-} -w "$work/$3" 2>"$work/$3.log" &
    DUMPCAP=$!
    i=0
    until grep -q "Capturing on" "$work/$3.log"; do
        i=$((i + 1)); [ $i -lt 100 ] || { cat "$work/$3.log"; exit 1; }
        sleep 0.1
    done
    # The filter goes live a moment after the message.
    sleep 1
}

stop_capture() {
    sleep 0.5
    kill -INT "$DUMPCAP"
    wait "$DUMPCAP" || true
    DUMPCAP=
    cp "$work/$1" "$here/$1"
    chmod 644 "$here/$1"
}

go_env() {
    export HOME="$work" GOPATH="$work/gopath" GOMODCACHE="$work/modcache" GOCACHE="$work/gocache" \
        GOFLAGS=-modcacherw GOSUMDB=off GOTOOLCHAIN=local GOPRIVATE= GONOPROXY= GONOSUMDB= \
        GOINSECURE= HTTPS_PROXY= HTTP_PROXY= NO_PROXY=
    rm -rf "$work/app" && mkdir -p "$work/app" && cd "$work/app"
    printf 'module app\n\ngo 1.19\n' >go.mod
}

# 1. go over a plain-HTTP GOPROXY on port 38080, behind a first proxy that refuses.
python3 "$here/goproxy_server.py" 38080 >"$work/server.log" 2>&1 &
SERVER=$!
until grep -q listening "$work/server.log"; do sleep 0.1; done
start_capture lo "tcp port 38080 or tcp port 9" goproxy-http.pcapng
(go_env && GOPROXY='http://127.0.0.1:9|http://127.0.0.1:38080' go get example.com/hello/greet@latest || true)
(go_env && GOPROXY='http://127.0.0.1:9|http://127.0.0.1:38080' go get example.com/hello@latest)
stop_capture goproxy-http.pcapng
kill "$SERVER"; SERVER=

# 2. go with the default GOPROXY where the resolver answers NXDOMAIN (this sandbox's
#    resolver does; elsewhere point resolv.conf at one that does). "any" gives SLL2 frames.
start_capture any "udp port 53" dns-nxdomain.pcapng
(go_env && GOPROXY=https://proxy.golang.org go get example.com/hello@latest || true)
stop_capture dns-nxdomain.pcapng

# 3. DNS answers, rcodes and silence from a responder on 127.0.0.1:5353, as legacy pcap.
start_capture lo "udp port 5353" dns-5353.pcap -P
python3 "$here/dns_responder.py"
stop_capture dns-5353.pcap

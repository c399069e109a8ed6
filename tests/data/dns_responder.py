#!/usr/bin/env python3
"""A unicast DNS responder and client on 127.0.0.1:5353 for making test captures.

Answers proxy.golang.org A (CNAME + A), AAAA (no data), NXDOMAIN for nonexistent.example,
SERVFAIL for broken.example, and never answers slow.example (the client retries once).
Usage: dns_responder.py  (runs the responder and the queries, then exits).
"""
import socket
import struct
import threading
import time

ADDR = ("127.0.0.1", 5353)


def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"


def query(qid, qname, qtype):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name(qname) + struct.pack(">HH", qtype, 1)


def parse_question(msg):
    pos, labels = 12, []
    while msg[pos]:
        labels.append(msg[pos + 1:pos + 1 + msg[pos]].decode())
        pos += 1 + msg[pos]
    qtype, = struct.unpack(">H", msg[pos + 1:pos + 3])
    return ".".join(labels), qtype, msg[12:pos + 5]


def answer(msg):
    qid, = struct.unpack(">H", msg[:2])
    qname, qtype, question = parse_question(msg)
    answers, rcode = [], 0
    if qname == "proxy.golang.org" and qtype == 1:
        answers.append(b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 300, len(name("proxy.l.example"))) + name("proxy.l.example"))
        answers.append(b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([127, 0, 0, 1]))
    elif qname == "nonexistent.example":
        rcode = 3
    elif qname == "broken.example":
        rcode = 2
    elif qname == "slow.example":
        return None
    head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0)
    return head + question + b"".join(answers)


def serve(sock):
    while True:
        msg, peer = sock.recvfrom(512)
        reply = answer(msg)
        if reply:
            time.sleep(0.002)
            sock.sendto(reply, peer)


if __name__ == "__main__":
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(ADDR)
    threading.Thread(target=serve, args=(server,), daemon=True).start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(1.0)
    for qid, (qname, qtype) in enumerate([("proxy.golang.org", 1), ("proxy.golang.org", 28),
                                          ("nonexistent.example", 1), ("broken.example", 1),
                                          ("slow.example", 1)], start=0x100):
        for attempt in range(2):
            client.sendto(query(qid, qname, qtype), ADDR)
            try:
                client.recvfrom(512)
                break
            except socket.timeout:
                pass

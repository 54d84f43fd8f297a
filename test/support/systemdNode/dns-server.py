#!/usr/bin/python3
"""Test DNS server of the systemd test nodes (test/support/systemdNode.ts).

Usage: dns-server.py IP MODE READY_FILE

Listens on IP:53 over TCP and UDP inside the node's network namespace, as a
stand-in for the node-local DNS cache when a test checks the node program's
DNS-level readiness check. Test infrastructure only, never part of the node
program. MODE:
  dns      answers properly: NOERROR with an A record 10.96.0.1 for names
           under cluster.local, NXDOMAIN otherwise (query ID echoed; TCP with
           the 2-byte length prefix)
  silent   accepts TCP connections and never says anything (UDP: no answer)
  garbage  answers every connection and datagram with bytes that are not DNS
Writes READY_FILE once both sockets listen.
"""

import socket
import struct
import sys
import threading

ANSWER_IP = "10.96.0.1"
ZONE = ("cluster", "local")
TTL = 30
GARBAGE = b"HTTP/1.0 418 I'm a teapot\r\n\r\nthis is not DNS\n"
IP_FREEBIND = 15  # Linux: bind before the address is on an interface


def parse_question(query):
    """(labels, qtype, end offset) of the first question of a DNS message."""
    offset = 12
    labels = []
    while True:
        length = query[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed name in question")
        labels.append(query[offset : offset + length].decode("ascii", "replace"))
        offset += length
    qtype, _qclass = struct.unpack("!HH", query[offset : offset + 4])
    return labels, qtype, offset + 4


def answer(query):
    """The reply to one DNS query, or None if it is too short to answer."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    opcode = flags & 0x7800
    rd = flags & 0x0100
    try:
        if qdcount != 1:
            raise ValueError("one question expected")
        labels, qtype, end = parse_question(query)
    except (IndexError, ValueError, struct.error):
        return struct.pack("!HHHHHH", qid, 0x8000 | opcode | rd | 0x0080 | 1, 0, 0, 0, 0)
    question = query[12:end]
    lowered = tuple(label.lower() for label in labels)
    in_zone = lowered[-len(ZONE) :] == ZONE
    records = b""
    ancount = 0
    if in_zone and qtype in (1, 255):  # A or ANY
        rdata = socket.inet_aton(ANSWER_IP)
        records = struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, len(rdata)) + rdata
        ancount = 1
    rcode = 0 if in_zone else 3  # NOERROR or NXDOMAIN
    reply_flags = 0x8000 | opcode | 0x0400 | rd | 0x0080 | rcode  # QR AA RD RA
    header = struct.pack("!HHHHHH", qid, reply_flags, 1, ancount, 0, 0)
    return header + question + records


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def handle_tcp(conn, mode):
    with conn:
        conn.settimeout(30)
        try:
            if mode == "silent":
                while conn.recv(4096):
                    pass
                return
            if mode == "garbage":
                conn.recv(4096)
                conn.sendall(GARBAGE)
                return
            while True:
                prefix = recv_exact(conn, 2)
                if prefix is None:
                    return
                query = recv_exact(conn, struct.unpack("!H", prefix)[0])
                if query is None:
                    return
                reply = answer(query)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return


def serve_tcp(sock, mode):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=handle_tcp, args=(conn, mode), daemon=True).start()


def serve_udp(sock, mode):
    while True:
        query, peer = sock.recvfrom(4096)
        if mode == "silent":
            continue
        reply = GARBAGE if mode == "garbage" else answer(query)
        if reply is not None:
            sock.sendto(reply, peer)


def main():
    ip, mode, ready_file = sys.argv[1:4]
    if mode not in ("dns", "silent", "garbage"):
        sys.exit(f"dns-server.py: unknown mode {mode}")
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    tcp = socket.socket(family, socket.SOCK_STREAM)
    udp = socket.socket(family, socket.SOCK_DGRAM)
    for sock in (tcp, udp):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        level = socket.IPPROTO_IPV6 if family == socket.AF_INET6 else socket.IPPROTO_IP
        sock.setsockopt(level, IP_FREEBIND, 1)
        sock.bind((ip, 53))
    tcp.listen(64)
    threading.Thread(target=serve_udp, args=(udp, mode), daemon=True).start()
    with open(ready_file, "w", encoding="utf-8") as f:
        f.write("ready\n")
    serve_tcp(tcp, mode)


if __name__ == "__main__":
    main()

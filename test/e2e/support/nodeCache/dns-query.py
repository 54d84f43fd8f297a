#!/usr/bin/python3
"""One DNS query from inside a systemd test node (test/e2e/support/nodeCache.ts).

Usage: python3 - SERVER NAME TYPE PROTO TIMEOUT_S   (this script on stdin)

Sends one query (RD set) for NAME/TYPE to SERVER:53 over PROTO ("udp" or
"tcp", TCP with the 2-byte length prefix) and prints one JSON object:
  {"rcode": "NOERROR", "flags": {...}, "answers": [{"name", "type", "ttl",
   "data"}]}
or, when no DNS answer came, {"rcode": "TIMEOUT" | "UNREACHABLE",
"error": "..."}. A and AAAA data are addresses, CNAME/NS/PTR names, other
types hex. Test infrastructure only; standard library only.
"""

import json
import random
import socket
import struct
import sys

RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"]
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "HINFO": 13, "TXT": 16,
         "AAAA": 28, "SRV": 33, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def read_name(msg, offset):
    """(name, offset after the name) with compression pointers followed."""
    labels = []
    end = None
    for _ in range(128):
        length = msg[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | msg[offset + 1]
            continue
        offset += 1
        if length == 0:
            break
        labels.append(msg[offset:offset + length].decode("ascii", "replace"))
        offset += length
    return ".".join(labels) + ".", (end if end is not None else offset)


def parse(msg, qid):
    rid, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if rid != qid:
        raise ValueError(f"reply id {rid} != query id {qid}")
    offset = 12
    for _ in range(qd):
        _, offset = read_name(msg, offset)
        offset += 4
    answers = []
    for _ in range(an):
        name, offset = read_name(msg, offset)
        rtype, _rclass, ttl, rdlen = struct.unpack("!HHIH", msg[offset:offset + 10])
        offset += 10
        rdata = msg[offset:offset + rdlen]
        if rtype == 1 and rdlen == 4:
            data = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28 and rdlen == 16:
            data = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype in (2, 5, 12):
            data, _ = read_name(msg, offset)
        else:
            data = rdata.hex()
        offset += rdlen
        answers.append({"name": name, "type": TYPE_NAMES.get(rtype, str(rtype)),
                        "ttl": ttl, "data": data})
    rcode = flags & 0xF
    return {
        "rcode": RCODES[rcode] if rcode < len(RCODES) else str(rcode),
        "flags": {"aa": bool(flags & 0x0400), "tc": bool(flags & 0x0200),
                  "rd": bool(flags & 0x0100), "ra": bool(flags & 0x0080)},
        "answers": answers,
    }


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-reply")
        data += chunk
    return data


def main():
    server, name, qtype, proto, timeout = sys.argv[1:6]
    qid = random.randrange(1, 0xFFFF)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    query += encode_name(name) + struct.pack("!HH", TYPES[qtype.upper()], 1)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    try:
        if proto == "tcp":
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(float(timeout))
                sock.connect((server, 53))
                sock.sendall(struct.pack("!H", len(query)) + query)
                length = struct.unpack("!H", recv_exact(sock, 2))[0]
                reply = recv_exact(sock, length)
        else:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(float(timeout))
                sock.connect((server, 53))
                sock.send(query)
                reply = sock.recv(65535)
        result = parse(reply, qid)
    except socket.timeout as error:
        result = {"rcode": "TIMEOUT", "error": str(error) or "timed out"}
    except OSError as error:
        result = {"rcode": "UNREACHABLE", "error": str(error)}
    print(json.dumps(result))


main()

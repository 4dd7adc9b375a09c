"""Ask a DNS server for NAME's A record; exit 0 if it answers with the EXPECTED address.

python3 dnsquery.py SERVER NAME EXPECTED_IP
"""

import random
import socket
import struct
import sys


def query(server: str, name: str) -> list[str]:
    ident = random.randrange(65536)
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(header + question, (server, 53))
        reply, _ = sock.recvfrom(4096)
    rid, flags, _qd, ancount, _ns, _ar = struct.unpack(">HHHHHH", reply[:12])
    if rid != ident or flags & 0x000F:
        return []
    offset = 12 + len(question)
    addresses = []
    for _ in range(ancount):
        if reply[offset] & 0xC0 == 0xC0:
            offset += 2
        else:
            while reply[offset]:
                offset += reply[offset] + 1
            offset += 1
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return addresses


if __name__ == "__main__":
    server, name, expected = sys.argv[1:4]
    try:
        found = query(server, name)
    except OSError as error:
        print(f"no answer from {server}: {error}", file=sys.stderr)
        sys.exit(1)
    print(" ".join(found))
    sys.exit(0 if expected in found else 1)

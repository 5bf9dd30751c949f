"""The pure-Python socket floor: the same protocol as bench/floor.rs, with socket + struct.

A frame is one op byte, a little-endian u64 length and the payload. `E` echo, `P` put (empty
reply), `G` get (payload: u64 n; reply: n zero bytes). TCP_NODELAY on both ends.
"""

import socket
import struct
import threading

HEADER = struct.Struct("<cQ")
CHUNK = 1 << 20


def recv_exact(sock, n):
    """Read exactly n bytes into one bytearray (recv_into, no joining of pieces)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], min(n - got, CHUNK))
        if k == 0:
            raise ConnectionError("peer closed")
        got += k
    return buf


def read_frame_header(sock):
    op, n = HEADER.unpack(recv_exact(sock, HEADER.size))
    return op, n


def _serve_one(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    zeros = bytes(CHUNK)
    try:
        while True:
            try:
                op, n = read_frame_header(sock)
            except ConnectionError:
                return
            if op == b"E":
                data = recv_exact(sock, n)
                if n < 65536:
                    sock.sendall(HEADER.pack(b"E", n) + data)
                else:
                    sock.sendall(HEADER.pack(b"E", n))
                    sock.sendall(data)
            elif op == b"P":
                left = n
                while left:
                    left -= len(recv_exact(sock, min(left, CHUNK)))
                sock.sendall(HEADER.pack(b"P", 0))
            elif op == b"G":
                (size,) = struct.unpack("<Q", recv_exact(sock, 8))
                sock.sendall(HEADER.pack(b"G", size))
                left = size
                while left:
                    k = min(left, CHUNK)
                    sock.sendall(zeros[:k] if k < CHUNK else zeros)
                    left -= k
            else:
                return
    except OSError:
        return
    finally:
        sock.close()


def serve(port, ready):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(256)
    ready(listener.getsockname()[1])
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=_serve_one, args=(sock,), daemon=True).start()


class Client:
    """A floor client: `echo()` is one 32-byte round trip."""

    def __init__(self, port, size=32):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.msg = HEADER.pack(b"E", size) + bytes(size)
        self.reply_len = len(self.msg)

    def echo(self):
        self.sock.sendall(self.msg)
        recv_exact(self.sock, self.reply_len)

    def put(self, data):
        self.sock.sendall(HEADER.pack(b"P", len(data)))
        self.sock.sendall(data)
        _, n = read_frame_header(self.sock)
        recv_exact(self.sock, n)

    def get(self, size):
        self.sock.sendall(HEADER.pack(b"G", 8) + struct.pack("<Q", size))
        _, n = read_frame_header(self.sock)
        return recv_exact(self.sock, n)

    def echo_bulk(self, data):
        self.sock.sendall(HEADER.pack(b"E", len(data)))
        self.sock.sendall(data)
        _, n = read_frame_header(self.sock)
        return recv_exact(self.sock, n)

    def close(self):
        self.sock.close()

# A small server the ingress tests run inside a sprite: a page, its request's headers,
# N bytes, an upload's size and digest, and a WebSocket that echoes.
import base64, hashlib, struct, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/headers":
            self.reply("".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items()).encode())
        elif self.path.startswith("/bytes/"):
            left = int(self.path[len("/bytes/"):])
            self.send_response(200)
            self.send_header("Content-Length", str(left))
            self.end_headers()
            chunk = b"x" * 65536
            while left > 0:
                n = min(left, len(chunk))
                self.wfile.write(chunk[:n])
                left -= n
        elif self.path == "/ws":
            accept = base64.b64encode(
                hashlib.sha1((self.headers["Sec-WebSocket-Key"] + GUID).encode()).digest()
            ).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            self.echo()
            self.close_connection = True
        else:
            self.reply(b"hello from the sprite\n")

    def do_POST(self):
        left = int(self.headers.get("Content-Length", "0"))
        digest, got = hashlib.sha256(), 0
        while left > 0:
            data = self.rfile.read(min(65536, left))
            if not data:
                break
            digest.update(data)
            got += len(data)
            left -= len(data)
        self.reply(f"{got} {digest.hexdigest()}\n".encode())

    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def echo(self):
        read = self.rfile.read
        while True:
            head = read(2)
            if len(head) < 2:
                return
            op, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", read(8))[0]
            mask = read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(read(n)))
            if op == 8:
                self.frame(8, data)
                return
            if op in (1, 2):
                self.frame(op, b"echo: " + data)

    def frame(self, op, data):
        n = len(data)
        size = bytes([n]) if n < 126 else bytes([126]) + struct.pack(">H", n)
        self.wfile.write(bytes([0x80 | op]) + size + data)
        self.wfile.flush()


ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()

"""A Web Push service as the tests run it: a local HTTP server that checks what
a real push service checks (the VAPID JWT, RFC 8292) and, like the browser at
the other end, decrypts the aes128gcm payload (RFC 8291) with its own code,
written here from the RFCs on `cryptography` (not the http-ece phr sends with)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def decrypt_aes128gcm(body: bytes, ua_private: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """RFC 8188 framing with the RFC 8291 key schedule, one record."""
    salt, record_size, id_length = body[:16], struct.unpack("!I", body[16:20])[0], body[20]
    sender_public = body[21 : 21 + id_length]
    ciphertext = body[21 + id_length :]
    assert id_length == 65 and record_size >= 18
    assert len(ciphertext) <= record_size, "one record expected for a small payload"
    ua_public = ua_private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
    shared = ua_private.exchange(ec.ECDH(), peer)
    prk_key = _hmac(auth, shared)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + ua_public + sender_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    end = len(padded.rstrip(b"\x00")) - 1
    assert padded[end] == 2, "the last record ends with the 0x02 delimiter"
    return padded[:end]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]
    claims: dict[str, Any]


@dataclass
class WebPushReceiver:
    """Answers each push with the next scripted (status, headers, body), then 201."""

    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    hang_first: bool = False
    port: int = 0  # 0: any free port; a given one brings a stopped service back where it was
    ua_private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(
        default_factory=lambda: hashlib.sha256(str(time.time()).encode()).digest()[:16]
    )
    expected_key: str | None = None  # the VAPID public key phr publishes
    received: list[Received] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)
    hanging: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> WebPushReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def subscription(self, name: str = "browser") -> dict[str, Any]:
        public = self.ua_private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.origin}/push/{name}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def unique(self) -> dict[str, Received]:
        """What the device shows: one message per Topic (a resend replaces it)."""
        return {r.headers.get("topic", ""): r for r in self.received}

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Waits without blocking the loop (the app under test may share it)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.received

    def _verify(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        assert scheme == "vapid", "VAPID (RFC 8292) authorization expected"
        fields = dict(item.strip().split("=", 1) for item in params.split(","))
        key = unb64url(fields["k"])
        if self.expected_key is not None:
            assert fields["k"] == self.expected_key, "signed with another key than phr publishes"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
        claims = jwt.decode(
            fields["t"],
            public,
            algorithms=["ES256"],
            audience=self.origin,
            options={"require": ["exp", "aud", "sub"]},
        )
        assert claims["exp"] <= time.time() + 24 * 3600, "exp at most 24 hours ahead"
        assert request.headers["Content-Encoding"] == "aes128gcm"
        assert int(request.headers["TTL"]) >= 0
        topic = request.headers.get("Topic", "")
        assert 0 < len(topic) <= 32 and all(c.isalnum() or c in "-_" for c in topic)
        return claims

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0")))
        self.attempts.append(time.time())
        try:
            claims = self._verify(request)
            payload = json.loads(decrypt_aes128gcm(body, self.ua_private, self.auth))
        except Exception as error:  # the test reads these; the sender gets a 400
            self.errors.append(f"{type(error).__name__}: {error}")
            request.send_response(400)
            request.end_headers()
            return
        if self.hang_first and not self.hanging.is_set():
            # Received, but the answer never reaches the sender (it dies first).
            self.received.append(
                Received(
                    request.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    payload,
                    claims,
                )
            )
            self.hanging.set()
            self.release.wait(30)
            return
        status, headers, reply = self.script.pop(0) if self.script else (201, {}, b"")
        if status < 300:
            self.received.append(
                Received(
                    request.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    payload,
                    claims,
                )
            )
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(reply)))
        request.end_headers()
        request.wfile.write(reply)

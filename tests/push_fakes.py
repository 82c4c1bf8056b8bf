"""APNs and FCM as the tests run them: local servers that check what the real
services check and answer with their documented error bodies.

APNs: HTTP/2 over TLS, as Apple serves it: a certificate from a CA the test
makes (`LocalCa`; phr trusts it through PHR_APNS_CA_FILE), ALPN `h2` and nothing
else (a client that does not offer h2 is dropped after the handshake, one that
skips the HTTP/2 preface fails it), `:scheme` https, the
`:path` /3/device/<token>, a provider JWT (ES256, kid, iss = team, iat within
the hour), apns-topic, apns-push-type, apns-collapse-id (64 bytes at most),
apns-id (a UUID), a JSON body with `aps` of at most 4 KiB; reasons
BadDeviceToken (400), Unregistered (410), TooManyRequests (429) and the others.

FCM: the OAuth token endpoint (a JWT bearer assertion, RS256, signed by the
service account), then messages:send with that bearer token, one target, string
data values; errors as FCM's google.rpc.Status bodies (UNREGISTERED 404,
QUOTA_EXCEEDED 429 with Retry-After, INVALID_ARGUMENT 400, UNAUTHENTICATED 401)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_TOKEN = re.compile(r"^/3/device/([0-9a-fA-F]{64})$")


@dataclass
class LocalCa:
    """A certificate authority made for one test, and a server certificate it
    issued for 127.0.0.1 (files in `folder`): `ca_file` is what a client is told
    to trust, `server_context()` what the fake serves with."""

    folder: Path

    def __post_init__(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phr test push CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.folder / "test-ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file = self.folder / "server.pem"
        self.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        self.key_file = self.folder / "server.key"
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def server_context(self, alpn: list[str]) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        context.set_alpn_protocols(alpn)
        return context


@dataclass
class FakeApns:
    public_key: Any
    key_id: str
    team_id: str
    topic: str
    ca: LocalCa
    known_tokens: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)
    script: list[tuple[int, str]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    provider_tokens: list[str] = field(default_factory=list)

    async def start(self) -> FakeApns:
        self.server = await asyncio.start_server(
            self._connection, "127.0.0.1", 0, ssl=self.ca.server_context(["h2"])
        )
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        tls = writer.get_extra_info("ssl_object")
        if tls is None or tls.selected_alpn_protocol() != "h2":
            # APNs speaks nothing but HTTP/2, and says so in the TLS handshake.
            self.errors.append("not HTTP/2: the client did not negotiate h2 by ALPN")
            writer.close()
            return
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            while data := await reader.read(65535):
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError as error:
                    self.errors.append(f"not HTTP/2: {error}")
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = (dict(event.headers), bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        status, reply_headers, reply = self._respond(headers, bytes(body))
                        conn.send_headers(
                            event.stream_id,
                            [(":status", str(status)), *reply_headers.items(),
                             ("content-length", str(len(reply)))],
                        )  # fmt: skip
                        conn.send_data(event.stream_id, reply, end_stream=True)
                writer.write(conn.data_to_send())
                await writer.drain()
        finally:
            writer.close()

    def _error(self, status: int, reason: str) -> tuple[int, dict[str, str], bytes]:
        body: dict[str, Any] = {"reason": reason}
        if status == 410:
            body["timestamp"] = int(time.time() * 1000)
        return status, {"apns-id": str(uuid.uuid4()).upper()}, json.dumps(body).encode()

    def _respond(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if headers.get(":scheme") != "https":
            self.errors.append(f"scheme {headers.get(':scheme')!r}")
        if headers.get(":method") != "POST":
            return self._error(405, "MethodNotAllowed")
        match = _TOKEN.match(headers.get(":path", ""))
        if match is None:
            return self._error(
                400 if headers.get(":path", "").startswith("/3/device/") else 404,
                "BadDeviceToken"
                if headers.get(":path", "").startswith("/3/device/")
                else "BadPath",
            )
        token = match.group(1)
        scheme, _, provider = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not provider:
            return self._error(403, "MissingProviderToken")
        try:
            header = jwt.get_unverified_header(provider)
            claims = jwt.decode(provider, self.public_key, algorithms=["ES256"])
        except jwt.PyJWTError:
            return self._error(403, "InvalidProviderToken")
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return self._error(403, "InvalidProviderToken")
        if time.time() - claims.get("iat", 0) > 3600:
            return self._error(403, "ExpiredProviderToken")
        self.provider_tokens.append(provider)
        if "apns-topic" not in headers:
            return self._error(400, "MissingTopic")
        if headers["apns-topic"] != self.topic:
            return self._error(400, "TopicDisallowed")
        if headers.get("apns-push-type") not in {"alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity"}:  # fmt: skip
            return self._error(400, "InvalidPushType")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return self._error(400, "BadCollapseId")
        if "apns-id" in headers:
            try:
                uuid.UUID(headers["apns-id"])
            except ValueError:
                return self._error(400, "BadMessageId")
        if not body:
            return self._error(400, "PayloadEmpty")
        if len(body) > 4096:
            return self._error(413, "PayloadTooLarge")
        try:
            payload = json.loads(body)
            assert isinstance(payload.get("aps"), dict)
        except (ValueError, AssertionError):
            return self._error(400, "BadRequest")  # not one of Apple's, but never expected
        if token in self.unregistered:
            return self._error(410, "Unregistered")
        if token not in self.known_tokens:
            return self._error(400, "BadDeviceToken")
        if self.script:
            return self._error(*self.script.pop(0))
        self.received.append({"token": token, "headers": headers, "payload": payload})
        return 200, {"apns-id": headers.get("apns-id", str(uuid.uuid4()))}, b""


def _fcm_error(status: int, code: str, message: str, error_code: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if error_code:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        ]
    return json.dumps({"error": error}).encode()


@dataclass
class FakeFcm:
    public_key: Any
    client_email: str
    project_id: str
    known_tokens: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    token_requests: int = 0

    def start(self) -> FakeFcm:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/token":
                    status, headers, reply = fake._token(self.headers, body)
                else:
                    status, headers, reply = fake._send(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _token(self, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {}, json.dumps({"error": "unsupported_grant_type"}).encode()
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                audience=f"{self.url}/token",
                issuer=self.client_email,
                options={"require": ["exp", "iat", "aud", "iss"]},
            )
        except jwt.PyJWTError as error:
            self.errors.append(f"assertion: {error}")
            return 400, {}, json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}).encode()  # fmt: skip
        if (
            "https://www.googleapis.com/auth/firebase.messaging"
            not in claims.get("scope", "").split()
        ):
            return 400, {}, json.dumps({"error": "invalid_scope"}).encode()
        if claims["exp"] - claims["iat"] > 3600:
            return 400, {}, json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes)"}).encode()  # fmt: skip
        token = "ya29." + secrets.token_urlsafe(24)
        self.issued.add(token)
        return 200, {}, json.dumps({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}).encode()  # fmt: skip

    def _send(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.issued:
            return 401, {}, _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")  # fmt: skip
        if path != f"/v1/projects/{self.project_id}/messages:send":
            return 404, {}, _fcm_error(404, "NOT_FOUND", "Requested entity was not found.")
        try:
            message = json.loads(body)["message"]
            targets = [k for k in ("token", "topic", "condition") if k in message]
            assert len(targets) == 1, "exactly one target"
            assert all(isinstance(v, str) for v in message.get("data", {}).values()), "data values are strings"  # fmt: skip
            assert isinstance(message.get("android", {}).get("collapse_key", ""), str)
        except (ValueError, KeyError, AssertionError) as error:
            return 400, {}, _fcm_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {error}")  # fmt: skip
        registration = message.get("token", "")
        if registration in self.unregistered:
            return 404, {}, _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")  # fmt: skip
        if registration not in self.known_tokens:
            return 400, {}, _fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT")  # fmt: skip
        if self.script:
            return self.script.pop(0)
        self.received.append(message)
        return 200, {}, json.dumps({"name": f"projects/{self.project_id}/messages/0:{len(self.received)}"}).encode()  # fmt: skip


def quota_exceeded(retry_after: int) -> tuple[int, dict[str, str], bytes]:
    return (
        429,
        {"Retry-After": str(retry_after)},
        _fcm_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Send requests'.",
            "QUOTA_EXCEEDED",
        ),
    )

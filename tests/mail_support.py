"""Reading the mail phr sends: from the `.eml` folder (the embedded default) or
from a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller

CODE = re.compile(r"\b([0-9A-Z]{4}-[0-9A-Z]{4})\b")


def code_in(message: EmailMessage) -> str:
    """The code from the Subject, where a phone's notification shows it."""
    match = CODE.search(str(message["Subject"]))
    assert match, f"no code in subject {message['Subject']!r}"
    return match.group(1)


def body_text(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def body_html(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


class Mailbox:
    """Messages received so far; `next_to` waits for the next one to an address."""

    def __init__(self) -> None:
        self._taken: set[int] = set()

    def messages(self) -> list[EmailMessage]:
        raise NotImplementedError

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if str(m["To"]).lower() == address.lower()]

    async def next_to(self, address: str, timeout: float = 10.0) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.messages()):
                key = hash((index, str(message["Message-ID"])))
                if key in self._taken or str(message["To"]).lower() != address.lower():
                    continue
                self._taken.add(key)
                return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {address} within {timeout} s")
            await asyncio.sleep(0.02)

    async def next_code(self, address: str) -> str:
        return code_in(await self.next_to(address))


class EmlFolder(Mailbox):
    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml")) if self.folder.exists() else []

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for path in self.files()
        ]


class _Collect:
    def __init__(self, sink: list[tuple[str, list[str], bytes]]):
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._sink.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class SmtpServer(Mailbox):
    """aiosmtpd on a free local port, in a thread of its own: plain text, STARTTLS
    (required) or implicit TLS with the given certificate, and optionally a login."""

    def __init__(
        self,
        port: int | None = None,
        *,
        tls: str = "none",
        certificate: tuple[Path, Path] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.received: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []
        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self.tls = tls
        self.login = login
        context = None
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        options: dict[str, Any] = {}
        if tls == "starttls":
            options |= {"tls_context": context, "require_starttls": True}
        if login is not None:
            options |= {"authenticator": self._authenticate, "auth_required": True}
            if tls == "implicit":
                # aiosmtpd does not see a TLS-wrapped socket as TLS for AUTH; it is.
                options["auth_require_tls"] = False
        self._controller = Controller(
            _Collect(self.received),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=context if tls == "implicit" else None,
            **options,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and self.login is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    @property
    def url(self) -> str:
        userinfo = (
            f"{quote(self.login[0], safe='')}:{quote(self.login[1], safe='')}@"
            if self.login
            else ""
        )
        if self.tls == "implicit":
            return f"smtps://{userinfo}127.0.0.1:{self.port}"
        if self.tls == "starttls":
            return f"smtp://{userinfo}127.0.0.1:{self.port}"
        return f"smtp://{userinfo}127.0.0.1:{self.port}?tls=none"

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(content, policy=policy.default)  # type: ignore[misc]
            for _, _, content in list(self.received)
        ]


def mailbox_of(client: Any) -> Mailbox:
    """Where the app behind a test client (litestar's or httpx's ASGI one) writes
    its mail: its `.eml` folder."""
    app = getattr(client, "app", None) or client._transport.app
    settings = app.state.services.settings
    assert settings.smtp_url is None, "pass the SMTP test server's mailbox instead"
    return EmlFolder(settings.data_dir / "mail")


def code_from_folder(folder: Path, address: str, timeout: float = 30.0) -> str:
    """For tests driving a `phr serve` process: the newest code mailed to `address`."""
    mailbox = EmlFolder(folder)
    deadline = time.monotonic() + timeout
    while True:
        messages = mailbox.to(address)
        if messages:
            return code_in(messages[-1])
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {address} in {folder} within {timeout} s")
        time.sleep(0.05)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost), and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phr test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path

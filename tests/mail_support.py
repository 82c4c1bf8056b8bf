"""Reading the mail phr sends: from the `.eml` folder (the embedded default) or
from a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

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
    """aiosmtpd on a free local port, in a thread of its own."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.received: list[tuple[str, list[str], bytes]] = []
        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self._controller = Controller(_Collect(self.received), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

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

"""The embedded default when no SMTP server is configured: each message is written
as an RFC 5322 `.eml` file under PHR_DATA_DIR/mail/, for the operator (or a test)
to open. The log says that a message was written, never what it says."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from domain.mail import MailMessage
from infra.mail.messages import rfc5322

log = logging.getLogger("phr.mail")


class EmlFileMailer:
    def __init__(self, folder: Path, *, sender: str):
        self._folder = folder
        self._sender = sender

    @property
    def folder(self) -> Path:
        return self._folder

    async def send(self, message: MailMessage) -> None:
        data = rfc5322(message, sender=self._sender).as_bytes()
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        path = await asyncio.to_thread(self._write, name, data)
        log.info("mail written", extra={"mail_kind": message.kind, "file": path.name})

    def _write(self, name: str, data: bytes) -> Path:
        # Codes are secrets until used: only the service's user may read them.
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._folder / name
        partial = self._folder / (name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        # A reader polling the folder never sees half a message.
        os.replace(partial, path)
        return path

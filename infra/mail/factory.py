"""SMTP when SMTP_URL is set, otherwise `.eml` files under PHR_DATA_DIR/mail/."""

from __future__ import annotations

from infra.mail.messages import Mailer
from infra.settings import Settings


def open_mailer(settings: Settings) -> Mailer:
    if settings.smtp_url:
        from infra.mail.smtp import SmtpMailer, parse_smtp_url

        return SmtpMailer(
            parse_smtp_url(settings.smtp_url),
            sender=settings.smtp_from,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )
    from infra.mail.eml_files import EmlFileMailer

    return EmlFileMailer(settings.data_dir / "mail", sender=settings.smtp_from)

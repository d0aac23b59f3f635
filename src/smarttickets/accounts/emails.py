"""Account emails: text + HTML from templates, in the recipient's language, sent after commit."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

logger = logging.getLogger(__name__)


def language_for(code: str | None) -> str:
    """The recipient's language if we speak it, else the site default."""
    available = {lang for lang, _name in settings.LANGUAGES}
    code = (code or "").lower()
    return code if code in available else settings.LANGUAGE_CODE


def absolute_url(viewname: str, **kwargs: Any) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(viewname, kwargs=kwargs or None)


def render_email(*, to: str, template: str, context: dict[str, Any], language: str
                 ) -> EmailMultiAlternatives:
    """``template`` names ``accounts/email/<template>_subject.txt``, ``.txt`` and ``.html``."""
    base = f"accounts/email/{template}"
    with translation.override(language_for(language)):
        ctx = {"site_name": "SmartTickets", "site_url": settings.SITE_URL, **context}
        subject = " ".join(render_to_string(f"{base}_subject.txt", ctx).split())
        text = render_to_string(f"{base}.txt", ctx)
        html = render_to_string(f"{base}.html", ctx)
    message = EmailMultiAlternatives(subject=subject, body=text,
                                     from_email=settings.DEFAULT_FROM_EMAIL, to=[to])
    message.attach_alternative(html, "text/html")
    return message


def send_email(*, to: str, template: str, context: dict[str, Any], language: str) -> None:
    message = render_email(to=to, template=template, context=context, language=language)
    try:
        message.send()
    except Exception:
        # The state change has committed; the user can ask for the mail again.
        logger.exception("could not send %s email to %s", template, to)


def send_email_on_commit(*, to: str, template: str, context: dict[str, Any],
                         language: str) -> None:
    """Queue the mail for after the surrounding transaction commits (never on rollback)."""
    transaction.on_commit(
        lambda: send_email(to=to, template=template, context=context, language=language)
    )

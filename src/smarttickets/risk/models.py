"""Risk records: behaviour telemetry (append-only), identifier links and stored decisions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RiskEvent(models.Model):
    """One behaviour-log event (spec: behaviour-log v1). Append-only; pruned by age."""

    ts = models.DateTimeField(_("time"))
    type = models.CharField(_("type"), max_length=32)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    session = models.CharField(_("session"), max_length=128)
    ip = models.GenericIPAddressField(_("IP address"))
    device = models.CharField(_("device"), max_length=128, blank=True)
    ua = models.CharField(_("user agent"), max_length=512, blank=True)
    # The type's own fields, exactly as the spec names them.
    data = models.JSONField(default=dict, blank=True)
    # Copied out of ``data`` for the live graph: tickets ordered by a neighbourhood in one query.
    quantity = models.IntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("risk event")
        verbose_name_plural = _("risk events")
        indexes = [
            models.Index(fields=["account", "ts"], name="risk_event_account_ts"),
            models.Index(fields=["ts"], name="risk_event_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.type} {self.account_id}"


class RiskLink(models.Model):
    """An identifier an account used (card, device, address, IP, transfer recipient …).

    Accounts sharing one (kind, value) are neighbours in the graph the live decision walks.
    """

    KINDS = ("card", "device", "addr", "name", "ip", "ipo", "xfer")

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="+")
    kind = models.CharField(max_length=8)
    value = models.CharField(max_length=128)
    first_seen = models.DateTimeField()

    class Meta:
        verbose_name = _("risk identifier link")
        constraints = [models.UniqueConstraint(fields=["account", "kind", "value"],
                                               name="risk_link_unique")]
        # Value first: the live walk looks identifiers up by value across kinds.
        indexes = [models.Index(fields=["value", "kind"], name="risk_link_value_kind")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.kind}:{self.value}"


class Decision(models.Model):
    """A risk decision at a checkpoint, with everything needed to explain it later."""

    CHECKPOINTS = [("hold", _("hold")), ("checkout", _("checkout")),
                   ("lottery_entry", _("lottery entry"))]
    OUTCOMES = [("allow", _("allow")), ("challenge", _("challenge")), ("review", _("review")),
                ("block", _("block"))]

    created_at = models.DateTimeField(_("created at"))
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="risk_decisions")
    checkpoint = models.CharField(_("checkpoint"), max_length=20, choices=CHECKPOINTS)
    object_type = models.CharField(_("object type"), max_length=50, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    event_id = models.CharField(_("event"), max_length=64, blank=True)
    score = models.FloatField(_("score"))
    decision = models.CharField(_("decision"), max_length=10, choices=OUTCOMES)
    model_version = models.CharField(_("model version"), max_length=100)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    thresholds = models.JSONField(_("thresholds"), default=dict, blank=True)
    failsafe = models.BooleanField(_("fail-safe"), default=False,
                                   help_text=_("The model was unavailable; the fail-safe "
                                               "decision was used."))
    elapsed_ms = models.FloatField(_("elapsed ms"), default=0.0)

    class Meta:
        verbose_name = _("risk decision")
        verbose_name_plural = _("risk decisions")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "created_at"], name="risk_decision_account"),
            models.Index(fields=["decision", "created_at"], name="risk_decision_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.checkpoint} {self.decision} {self.score:.3f} ({self.account_id})"

    @property
    def reason_texts(self) -> list[str]:
        """Reasons in the reader's language (templates are translated, numbers kept)."""
        from django.utils.translation import gettext

        out = []
        for reason in self.reasons or []:
            template = reason.get("template") or reason.get("text", "")
            try:
                out.append(gettext(template) % (reason.get("params") or {}))
            except (KeyError, TypeError, ValueError):
                out.append(reason.get("text", ""))
        return out

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
    # What the event was recorded from ("order:12", "payment:7:succeeded"): a page reloaded or
    # a retried request records it once.
    source_key = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        verbose_name = _("risk event")
        verbose_name_plural = _("risk events")
        indexes = [
            models.Index(fields=["account", "ts"], name="risk_event_account_ts"),
            models.Index(fields=["ts"], name="risk_event_ts"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source_key"], condition=~models.Q(source_key=""),
                                    name="risk_event_source_key"),
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
    # What the model and thresholds said before a ban, a passed step-up or a reviewer's release
    # changed the outcome (``override`` names which).
    model_decision = models.CharField(_("model decision"), max_length=10, blank=True,
                                      choices=OUTCOMES)
    override = models.CharField(_("override"), max_length=20, blank=True)

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


class RiskPolicy(models.Model):
    """Per-event thresholds; empty values fall back to the model file's thresholds."""

    event = models.OneToOneField("events.Event", on_delete=models.CASCADE, primary_key=True,
                                 related_name="risk_policy", verbose_name=_("event"))
    enabled = models.BooleanField(_("risk decisions on"), default=True,
                                  help_text=_("Off: every checkpoint of this event allows."))
    challenge_at = models.FloatField(_("challenge at score"), null=True, blank=True)
    review_at = models.FloatField(_("review at score"), null=True, blank=True)
    block_at = models.FloatField(_("block at score"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("risk policy")
        verbose_name_plural = _("risk policies")

    def __str__(self) -> str:
        return f"risk policy for event {self.event_id}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        values = [v for v in (self.challenge_at, self.review_at, self.block_at) if v is not None]
        if any(not 0.0 <= v <= 1.0 for v in values) or values != sorted(values):
            raise ValidationError(_("Thresholds are scores from 0 to 1, with challenge ≤ "
                                    "review ≤ block."))


class AccountRiskState(models.Model):
    """Per-account aggregates kept up to date as events are recorded, read by the live decision.

    Counters change with ``F()``; the graph row is recomputed when the account's identifiers
    (or a neighbour's) change, so the decision itself never walks the graph in the common case.
    """

    account = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   primary_key=True, related_name="risk_state")
    events = models.PositiveIntegerField(default=0)
    tickets = models.IntegerField(default=0)
    transfers_in = models.PositiveIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    graph = models.JSONField(null=True, blank=True)
    graph_at = models.DateTimeField(null=True, blank=True)
    graph_stale = models.BooleanField(default=True)
    # Bumped whenever a tie of this account or of a neighbour changes: a graph row computed
    # from an older version is not stored as fresh.
    graph_version = models.PositiveIntegerField(default=0)
    banned_at = models.DateTimeField(_("banned at"), null=True, blank=True)
    ban_reason = models.CharField(_("ban reason"), max_length=500, blank=True)
    stepup_until = models.DateTimeField(_("step-up passed until"), null=True, blank=True)
    # Event ids a reviewer released this account for: later checkpoints there allow.
    cleared_events = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("account risk state")
        verbose_name_plural = _("account risk states")

    def __str__(self) -> str:
        return f"risk state of {self.account_id}"


class ReviewCase(models.Model):
    """An account (and the hold or order it was trying for) waiting for a staff reviewer."""

    class State(models.TextChoices):
        OPEN = "open", _("Waiting for review")
        RELEASED = "released", _("Released")
        CANCELLED = "cancelled", _("Cancelled")
        BANNED = "banned", _("Account banned")

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="risk_cases", verbose_name=_("account"))
    event = models.ForeignKey("events.Event", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="risk_cases", verbose_name=_("event"))
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="cases",
                                 verbose_name=_("latest decision"))
    state = models.CharField(_("state"), max_length=12, choices=State.choices,
                             default=State.OPEN)
    opened_at = models.DateTimeField(_("opened at"))
    updated_at = models.DateTimeField(_("updated at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    verbose_name=_("resolved by"))
    note = models.TextField(_("reviewer note"), blank=True)

    class Meta:
        verbose_name = _("review case")
        verbose_name_plural = _("review cases")
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "event"],
                                    condition=models.Q(state="open"),
                                    name="risk_case_one_open_per_event"),
        ]
        indexes = [models.Index(fields=["state", "updated_at"], name="risk_case_queue")]

    def __str__(self) -> str:
        return f"case {self.pk} ({self.account_id}, {self.state})"


class Appeal(models.Model):
    """A fan's word against a block or a review; it joins the case in the review queue."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="risk_appeals")
    case = models.ForeignKey(ReviewCase, on_delete=models.CASCADE, related_name="appeals")
    text = models.TextField(_("your message"))
    created_at = models.DateTimeField(_("sent at"))

    class Meta:
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"appeal {self.pk} on case {self.case_id}"


class StepUpChallenge(models.Model):
    """A one-time code sent by SMS to the account's verified phone after a challenge decision.

    Only a keyed hash of the code is stored; passing it lets the account continue for
    ``STEPUP_PASS_MINUTES``.
    """

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="risk_stepups")
    phone = models.CharField(max_length=20)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    passed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("step-up challenge")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "created_at"], name="risk_stepup_account")]

    def __str__(self) -> str:
        return f"step-up {self.pk} for {self.account_id}"

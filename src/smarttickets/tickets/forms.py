"""The organizer's ticketing-policy form and the fan's ticket-transfer form."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from smarttickets.tickets.credential import MAX_GATE_GROUP
from smarttickets.tickets.models import TicketingPolicy

GATE_RE = re.compile(r"[A-Z0-9][A-Z0-9 _-]*")


def clean_gate(value: str) -> str:
    value = " ".join((value or "").upper().split())
    if not value:
        return ""
    if len(value.encode()) > MAX_GATE_GROUP or not GATE_RE.fullmatch(value):
        raise forms.ValidationError(
            _("Use up to %(n)d letters, digits, spaces, - or _ (e.g. NORTH)."),
            params={"n": MAX_GATE_GROUP})
    return value


class PolicyForm(forms.ModelForm):
    """The policy plus one gate-group field per price zone of the event."""

    class Meta:
        model = TicketingPolicy
        fields = ["default_gate_group", "reentry_allowed", "totp_fallback", "printed_fallback",
                  "valid_from_minutes_before", "valid_until_minutes_after",
                  "transfers_allowed", "max_transfers_per_ticket"]

    def __init__(self, *args, zones=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.zones = list(zones)
        for zone in self.zones:
            self.fields[f"zone_{zone.pk}"] = forms.CharField(
                label=zone.name, required=False, max_length=32,
                initial=self.instance.zone_gate_groups.get(str(zone.pk), ""),
                help_text=_("Empty: the default gate group."))
        for name in ("valid_from_minutes_before", "valid_until_minutes_after"):
            self.fields[name].widget.attrs.update({"min": 0, "max": 7 * 24 * 60})
        self.fields["max_transfers_per_ticket"].widget.attrs.update({"min": 0, "max": 10})
        # Empty keeps the current value, so forms posted without it change nothing.
        self.fields["max_transfers_per_ticket"].required = False

    def clean_default_gate_group(self):
        return clean_gate(self.cleaned_data.get("default_gate_group", ""))

    def clean_max_transfers_per_ticket(self):
        value = self.cleaned_data.get("max_transfers_per_ticket")
        return self.instance.max_transfers_per_ticket if value is None else value

    def clean(self):
        data = super().clean()
        for name in ("valid_from_minutes_before", "valid_until_minutes_after"):
            value = data.get(name)
            if value is not None and value > 7 * 24 * 60:
                self.add_error(name, _("At most a week (10080 minutes)."))
        gates = {}
        for zone in self.zones:
            try:
                gates[str(zone.pk)] = clean_gate(data.get(f"zone_{zone.pk}", ""))
            except forms.ValidationError as exc:
                self.add_error(f"zone_{zone.pk}", exc)
        data["zone_gate_groups"] = {k: v for k, v in gates.items() if v}
        return data

    def zone_fields(self):
        return [self[f"zone_{zone.pk}"] for zone in self.zones]


class TransferForm(forms.Form):
    email = forms.EmailField(
        label=_("Recipient's email address"), max_length=254,
        help_text=_("The address they log in to SmartTickets with."),
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                       "inputmode": "email"}))
    confirm = forms.BooleanField(
        label=_("I understand that once they accept, the ticket is theirs and my code stops "
                "working. This cannot be undone."),
        error_messages={"required": _("Tick the box to confirm you want to give this ticket "
                                      "away.")})

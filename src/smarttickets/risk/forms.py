"""Forms for the step-up, appeals and the reviewer's verdict."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from smarttickets.risk.services import MAX_APPEAL_CHARS


class StepUpCodeForm(forms.Form):
    code = forms.CharField(label=_("Code from the text message"), max_length=12,
                           widget=forms.TextInput(attrs={"inputmode": "numeric",
                                                         "autocomplete": "one-time-code",
                                                         "pattern": "[0-9 ]*"}))


class AppealForm(forms.Form):
    text = forms.CharField(label=_("Tell us what happened"), min_length=10,
                           max_length=MAX_APPEAL_CHARS, widget=forms.Textarea(attrs={"rows": 5}),
                           help_text=_("For example: who you are buying for, or why several "
                                       "accounts used one card. A person reads every message."))


class VerdictForm(forms.Form):
    ACTIONS = [("release", _("Release: let this account buy for this event")),
               ("cancel", _("Cancel: refuse this purchase")),
               ("ban", _("Ban: refuse this account everywhere"))]
    action = forms.ChoiceField(label=_("Decision"), choices=ACTIONS, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note for the record"), required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 3}))


class QueueFilterForm(forms.Form):
    STATES = [("open", _("Waiting for review")), ("released", _("Released")),
              ("cancelled", _("Cancelled")), ("banned", _("Account banned")), ("all", _("All"))]
    state = forms.ChoiceField(label=_("Show"), choices=STATES, required=False)
    event = forms.IntegerField(label=_("Event"), required=False, min_value=1,
                               widget=forms.HiddenInput)

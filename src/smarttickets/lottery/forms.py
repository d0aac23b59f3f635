"""Forms for the lottery pages: parsing only; the rules live in services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from smarttickets.lottery.models import Lottery

MAX_COMPANIONS = 19


class EntryForm(forms.Form):
    """Zone and number of tickets; one name field per companion on real-name events."""

    lottery = forms.ChoiceField(label=_("Price zone"), widget=forms.RadioSelect)
    quantity = forms.IntegerField(label=_("Number of tickets"), min_value=1)

    def __init__(self, *args, lotteries: list[Lottery], limit: int, personalised: bool,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lottery"].choices = [(lot.public_id, lot.zone.name) for lot in lotteries]
        if len(lotteries) == 1:
            self.fields["lottery"].initial = lotteries[0].public_id
        self.fields["quantity"] = forms.IntegerField(
            label=_("Number of tickets"), min_value=1, max_value=limit, initial=min(2, limit),
            widget=forms.Select(choices=[(n, str(n)) for n in range(1, limit + 1)]),
            error_messages={"max_value": _("You can enter for at most %(n)d tickets.")
                            % {"n": limit}})
        self.companion_fields = []
        if personalised:
            for i in range(1, min(limit, MAX_COMPANIONS + 1)):
                name = f"companion_{i}"
                self.fields[name] = forms.CharField(
                    label=_("Companion %(n)d — legal name") % {"n": i}, max_length=200,
                    required=False,
                    help_text=_("As on their identity document; checked at the gate."),
                    widget=forms.TextInput(attrs={"autocomplete": "off",
                                                  "data-companion": str(i)}))
                self.companion_fields.append(name)

    def companions(self) -> list[str]:
        quantity = self.cleaned_data["quantity"]
        return [self.cleaned_data.get(f"companion_{i}", "") or ""
                for i in range(1, quantity)] if self.companion_fields else []


class SettingsForm(forms.Form):
    capacity = forms.IntegerField(label=_("Seats to give away"), min_value=1)
    flagged_policy = forms.ChoiceField(label=_("Entries flagged by the risk checks"),
                                       choices=Lottery.FlaggedPolicy.choices,
                                       widget=forms.RadioSelect)
    beacon_kind = forms.ChoiceField(label=_("Public randomness (beacon)"),
                                    choices=Lottery.BeaconKind.choices,
                                    widget=forms.RadioSelect)
    beacon_source = forms.CharField(label=_("Public value source"), required=False,
                                    max_length=63,
                                    help_text=_("Lower-case name, e.g. hk-mark-six."))
    beacon_draw = forms.CharField(label=_("Which draw"), required=False, max_length=100,
                                  help_text=_("The future draw whose outcome you will enter, "
                                              "e.g. 26/041."))
    offer_hours = forms.IntegerField(label=_("Hours each winner has to buy"), min_value=1,
                                     max_value=24 * 14)


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I have checked the details above and want to go ahead."),
        error_messages={"required": _("Tick the box to confirm this step.")})


class BeaconForm(forms.Form):
    evidence = forms.CharField(
        label=_("Beacon output"), max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        error_messages={"required": _("Enter the beacon output.")})


class DrawForm(ConfirmForm):
    seed = forms.CharField(
        label=_("Seed (only if you keep it outside the platform)"), required=False,
        max_length=80, widget=forms.TextInput(attrs={"autocomplete": "off",
                                                     "spellcheck": "false"}),
        help_text=_("Leave empty to reveal the seed the platform sealed when the lottery was "
                    "created."))


class ReviewForm(forms.Form):
    entry = forms.CharField(max_length=32, widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=[("include", _("Include")), ("exclude", _("Exclude"))])

"""Forms for the booking pages: parsing only; rules live in services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

MAX_SEATS_PER_REQUEST = 20


class ZoneQuantityForm(forms.Form):
    zone = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    quantity = forms.IntegerField(label=_("Number of tickets"), min_value=1, max_value=20,
                                  initial=2)
    entitlement = forms.IntegerField(required=False, widget=forms.HiddenInput)


class SeatPickForm(forms.Form):
    seat_ids = forms.CharField(widget=forms.HiddenInput,
                               error_messages={"required": _("Choose at least one seat on the "
                                                             "map.")})
    entitlement = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean_seat_ids(self) -> list[int]:
        raw = [part for part in self.cleaned_data["seat_ids"].replace(" ", "").split(",") if part]
        if not raw:
            raise forms.ValidationError(_("Choose at least one seat on the map."))
        if len(raw) > MAX_SEATS_PER_REQUEST:
            raise forms.ValidationError(_("Choose at most %(n)d seats.")
                                        % {"n": MAX_SEATS_PER_REQUEST})
        try:
            return [int(part) for part in raw]
        except ValueError as exc:
            raise forms.ValidationError(_("The seat selection is not valid.")) from exc


class HolderNamesForm(forms.Form):
    """One name field per companion ticket; the first ticket carries the buyer's own name."""

    def __init__(self, *args, count: int, personalised: bool, initial_names: list[str],
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for i in range(1, count):
            self.fields[f"holder_{i}"] = forms.CharField(
                label=_("Ticket %(n)d holder") % {"n": i + 1}, max_length=200,
                required=personalised,
                initial=initial_names[i] if i < len(initial_names) else "",
                help_text=_("Legal name as on the holder's identity document.") if personalised
                else _("Optional; leave empty to use your own name."),
                widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def names(self) -> list[str]:
        return [""] + [self.cleaned_data.get(f"holder_{i}", "") or ""
                       for i in range(1, len(self.fields) + 1)]


class OrderSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=200,
                        widget=forms.TextInput(attrs={
                            "type": "search",
                            "placeholder": _("Buyer name, email or order code")}))

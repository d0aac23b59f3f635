"""Forms that parse input for the organizer pages and catalogue filters; the rules live in
services, whose errors are copied back onto the form with ``add_domain_errors``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from smarttickets.core.exceptions import DomainError
from smarttickets.core.money import CURRENCY_EXPONENTS
from smarttickets.events import seatmap
from smarttickets.events.models import Performance, Venue

DATETIME_INPUT = "%Y-%m-%dT%H:%M"


def add_domain_errors(form: forms.Form, exc: DomainError) -> None:
    """Show a service's field errors next to the fields, the rest at the top of the form."""
    placed = False
    for name, messages in exc.fields.items():
        # Services name id lists ``section_ids``; the form's checkbox lists are ``sections``.
        target = name.removesuffix("_ids") + "s" if name.endswith("_ids") else name
        key = target if target in form.fields else None
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(key, str(message))
            placed = True
    if not placed:
        form.add_error(None, str(exc.message))


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=DATETIME_INPUT, **kwargs)


def _dt(label, *, required=False, help_text=""):
    return forms.DateTimeField(label=label, required=required, help_text=help_text,
                               input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M"],
                               widget=DateTimeLocalInput())


class EventForm(forms.Form):
    organizer = forms.ChoiceField(label=_("Organizer"))
    title = forms.CharField(label=_("Title"), max_length=200)
    artist = forms.CharField(label=_("Artist"), max_length=200, required=False)
    description = forms.CharField(label=_("Description"), required=False, max_length=20000,
                                  widget=forms.Textarea(attrs={"rows": 6}))
    venue = forms.ModelChoiceField(label=_("Venue"), queryset=Venue.objects.none(),
                                   empty_label=_("Choose a venue"))
    personalised = forms.BooleanField(
        label=_("Real-name tickets"), required=False,
        help_text=_("Each ticket carries its holder's legal name, checked at the gate."))
    per_person_limit = forms.IntegerField(label=_("Tickets per person per performance"),
                                          min_value=1, max_value=10, initial=4)
    hold_minutes = forms.IntegerField(
        label=_("Hold time (minutes)"), min_value=1, max_value=60, initial=10,
        help_text=_("How long seats stay reserved while the buyer pays."))
    currency = forms.ChoiceField(label=_("Currency"), initial="HKD",
                                 choices=[(c, c) for c in sorted(CURRENCY_EXPONENTS)])

    def __init__(self, *args, organizers, venues, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.organizers = {str(o.pk): o for o in organizers}
        self.fields["organizer"].choices = [(pk, o.name) for pk, o in self.organizers.items()]
        self.fields["venue"].queryset = venues
        if editing or len(self.organizers) == 1:
            self.fields["organizer"].required = False
            self.fields["organizer"].widget = forms.HiddenInput()
            if not editing:
                self.fields["organizer"].initial = next(iter(self.organizers))

    def clean_organizer(self):
        value = self.cleaned_data.get("organizer")
        if not value and len(self.organizers) == 1:
            value = next(iter(self.organizers))
        if value not in self.organizers:
            raise forms.ValidationError(_("Choose an organizer."))
        return self.organizers[value]

    def clean(self):
        data = super().clean()
        venue = data.get("venue")
        if data.get("organizer") and venue and venue.organizer_id != data["organizer"].pk:
            self.add_error("venue", _("Choose one of this organizer's venues."))
        return data


class PerformanceForm(forms.Form):
    starts_at = _dt(_("Starts at"), required=True)
    doors_open_at = _dt(_("Doors open at"))
    ends_at = _dt(_("Ends at"))
    sale_mode = forms.ChoiceField(label=_("Sales phase"), choices=Performance.SaleMode.choices,
                                  widget=forms.RadioSelect, initial=Performance.SaleMode.FIRST_COME)
    onsale_starts_at = _dt(_("On-sale starts"))
    onsale_ends_at = _dt(_("On-sale ends"), help_text=_("Leave empty to sell until the show "
                                                        "starts."))
    entry_opens_at = _dt(_("Lottery entry opens"))
    entry_closes_at = _dt(_("Lottery entry closes"))
    draw_at = _dt(_("Draw time"))
    purchase_opens_at = _dt(_("Winners' purchase opens"))
    purchase_closes_at = _dt(_("Winners' purchase closes"))

    first_come_fields = ("onsale_starts_at", "onsale_ends_at")
    lottery_fields = ("entry_opens_at", "entry_closes_at", "draw_at", "purchase_opens_at",
                      "purchase_closes_at")


class PriceZoneForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    price = forms.DecimalField(label=_("Price"), min_value=0, max_digits=10, decimal_places=2)
    color = forms.RegexField(label=_("Colour"), regex=r"^#[0-9a-fA-F]{6}$", initial="#4f46e5",
                             widget=forms.TextInput(attrs={"type": "color"}),
                             error_messages={"invalid": _("Use a colour like #2563eb.")})
    sections = forms.MultipleChoiceField(label=_("Sections"), required=False,
                                         widget=forms.CheckboxSelectMultiple)
    ga_areas = forms.MultipleChoiceField(label=_("Standing areas"), required=False,
                                         widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, venue, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sections"].choices = [(str(s.pk), s.name) for s in venue.sections.all()]
        self.fields["ga_areas"].choices = [(str(a.pk), a.name) for a in venue.ga_areas.all()]


class SeatMapFileField(forms.FileField):
    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload and upload.size > seatmap.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than %(mb)s MB."),
                                        params={"mb": seatmap.MAX_BYTES // (1024 * 1024)})
        if upload and not upload.name.lower().endswith((".csv", ".json")):
            raise forms.ValidationError(_("Upload a .csv or .json file."))
        return upload


class VenueForm(forms.Form):
    organizer = forms.ChoiceField(label=_("Organizer"))
    name = forms.CharField(label=_("Name"), max_length=200)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    city = forms.CharField(label=_("City"), max_length=100, initial="Hong Kong")
    seatmap = SeatMapFileField(
        label=_("Seat map file"),
        help_text=_("CSV or JSON, up to 5 MB. Every line is checked before anything is saved."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.json,text/csv,application/json"}))

    def __init__(self, *args, organizers, **kwargs):
        super().__init__(*args, **kwargs)
        self.organizers = {str(o.pk): o for o in organizers}
        self.fields["organizer"].choices = [(pk, o.name) for pk, o in self.organizers.items()]
        if len(self.organizers) == 1:
            self.fields["organizer"].required = False
            self.fields["organizer"].widget = forms.HiddenInput()
            self.fields["organizer"].initial = next(iter(self.organizers))

    def clean_organizer(self):
        value = self.cleaned_data.get("organizer") or next(iter(self.organizers), None)
        if value not in self.organizers:
            raise forms.ValidationError(_("Choose an organizer."))
        return self.organizers[value]


class SeatMapReplaceForm(forms.Form):
    seatmap = SeatMapFileField(label=_("New seat map file"),
                               widget=forms.ClearableFileInput(
                                   attrs={"accept": ".csv,.json,text/csv,application/json"}))


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500,
                             help_text=_("Kept in the audit log and shown to buyers."),
                             widget=forms.Textarea(attrs={"rows": 3}))


class CatalogueFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100,
                        widget=forms.TextInput(attrs={
                            "type": "search", "placeholder": _("Artist, event or venue")}))
    date_from = forms.DateField(label=_("From"), required=False,
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}))
    venue = forms.ModelChoiceField(label=_("Venue"), required=False,
                                   queryset=Venue.objects.none(), empty_label=_("Any venue"))
    max_price = forms.DecimalField(label=_("Max price (HK$)"), required=False, min_value=0,
                                   max_digits=10, decimal_places=2)
    past = forms.BooleanField(label=_("Past events"), required=False)

    def __init__(self, *args, venues, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["venue"].queryset = venues

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

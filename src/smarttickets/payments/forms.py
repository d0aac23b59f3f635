"""Forms: the sandbox's card and one-time-code pages, and the organizer's refund form."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from smarttickets.payments.providers import cards
from smarttickets.payments.providers.sandbox import CardInput


class CardForm(forms.Form):
    number = forms.CharField(
        label=_("Card number"), max_length=30,
        widget=forms.TextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric",
                                      "placeholder": "1234 1234 1234 1234",
                                      "spellcheck": "false"}))
    expiry = forms.CharField(
        label=_("Expiry date"), max_length=9, help_text=_("MM / YY"),
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "inputmode": "numeric",
                                      "placeholder": _("MM / YY")}))
    cvc = forms.CharField(
        label=_("Security code"), max_length=4, help_text=_("3 digits on the back (Amex: 4 on "
                                                            "the front)"),
        widget=forms.TextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric",
                                      "placeholder": "CVC"}))
    name = forms.CharField(
        label=_("Name on card"), max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "cc-name"}))

    def __init__(self, *args, today: date, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean_number(self) -> str:
        number = cards.digits(self.cleaned_data["number"])
        if not number:
            raise forms.ValidationError(_("Enter the card number using digits only."),
                                        code="invalid")
        if len(number) < 12:
            raise forms.ValidationError(_("Your card number is incomplete."), code="incomplete")
        if not cards.luhn_valid(number):
            raise forms.ValidationError(_("Your card number is invalid."), code="luhn")
        return number

    def clean_expiry(self) -> tuple[int, int]:
        try:
            month, year = cards.parse_expiry(self.cleaned_data["expiry"])
        except ValueError:
            raise forms.ValidationError(_("Enter the expiry date as MM / YY."),
                                        code="invalid") from None
        if cards.expiry_in_past(month, year, self.today):
            raise forms.ValidationError(_("Your card's expiry date is in the past."),
                                        code="expired")
        if cards.expiry_too_far(month, year, self.today):
            raise forms.ValidationError(_("Your card's expiry year is invalid."),
                                        code="too_far")
        return month, year

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Enter the name on the card."), code="required")
        return name

    def clean(self):
        cleaned = super().clean()
        number, cvc = cleaned.get("number"), (cleaned.get("cvc") or "").strip()
        if number:
            length = cards.cvc_length(cards.brand(number))
            if not cvc.isdigit() or len(cvc) != length:
                self.add_error("cvc", forms.ValidationError(
                    _("Your card's security code is %(n)d digits."), code="cvc",
                    params={"n": length}))
        return cleaned

    def card(self) -> CardInput:
        month, year = self.cleaned_data["expiry"]
        return CardInput(number=self.cleaned_data["number"], exp_month=month, exp_year=year,
                         cvc=self.cleaned_data["cvc"], name=self.cleaned_data["name"])


class ChallengeForm(forms.Form):
    code = forms.CharField(
        label=_("One-time code"), max_length=6, min_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": "[0-9]{6}"}))

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise forms.ValidationError(_("The code is 6 digits."), code="invalid")
        return code


class RefundForm(forms.Form):
    SCOPE_ALL = "all"
    SCOPE_TICKETS = "tickets"

    scope = forms.ChoiceField(
        label=_("What to refund"), widget=forms.RadioSelect,
        choices=[(SCOPE_ALL, _("The whole order")), (SCOPE_TICKETS, _("Chosen tickets"))],
        initial=SCOPE_ALL)
    tickets = forms.TypedMultipleChoiceField(label=_("Tickets"), coerce=int, required=False,
                                             widget=forms.CheckboxSelectMultiple)
    reason = forms.CharField(label=_("Reason"), max_length=500,
                             help_text=_("Shown in the audit log; the buyer is emailed about "
                                         "the refund."),
                             widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, tickets: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tickets"].choices = [(t.pk, str(t.pk)) for t in tickets]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == self.SCOPE_TICKETS and not cleaned.get("tickets"):
            self.add_error("tickets", _("Choose at least one ticket to refund."))
        return cleaned

    def ticket_ids(self) -> list[int] | None:
        if self.cleaned_data["scope"] == self.SCOPE_ALL:
            return None
        return sorted(self.cleaned_data["tickets"])

"""Account forms: they parse input; the rules live in services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from smarttickets.accounts import emails, services
from smarttickets.accounts.models import User
from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError


def add_domain_error(form: forms.Form, exc: DomainError, default_field: str | None = None
                     ) -> None:
    """Show a service error on the fields it names, else on ``default_field`` or the form."""
    placed = False
    for name, messages in (exc.fields or {}).items():
        target = name if name in form.fields else None
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(target, message)
        placed = True
    if not placed:
        form.add_error(default_field, exc.message)


class RegisterForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"), max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    legal_name = forms.CharField(
        label=_("Legal name (optional)"), max_length=200, required=False,
        help_text=_("As on your identity document. It is printed on real-name tickets; you "
                    "can add it later."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}))
    password = forms.CharField(
        label=_("Password"), strip=False,
        help_text=_("At least 10 characters. Avoid common words and your email address."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "minlength": 10}))
    accept_terms = forms.BooleanField(
        label=_("I accept the terms of service and the privacy policy"), required=True,
        error_messages={"required": _("You must accept the terms to create an account.")})

    def clean(self):
        cleaned = super().clean()
        # Checked here too so every problem shows at once; the service checks again.
        password = cleaned.get("password")
        if password:
            probe = User(email=cleaned.get("email") or "", legal_name=cleaned.get("legal_name", ""))
            try:
                password_validation.validate_password(password, probe)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class EmailAuthenticationForm(auth_forms.AuthenticationForm):
    """Django's login form, worded for email addresses."""

    username = forms.EmailField(
        label=_("Email address"), max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(
        label=_("Password"), strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    error_messages = {
        "invalid_login": _("That email address and password do not match an account."),
        "inactive": _("This account is disabled. Contact support if you think this is wrong."),
    }


class ResendVerificationForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class ProfileForm(forms.Form):
    legal_name = forms.CharField(
        label=_("Legal name"), max_length=200,
        help_text=_("Exactly as on your identity document: it is printed on real-name tickets "
                    "and checked at the gate."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}))
    preferred_language = forms.ChoiceField(
        label=_("Language for emails and messages"), choices=settings.LANGUAGES)


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label=_("Mobile number"), max_length=32,
        help_text=_("Hong Kong numbers can be typed as 9123 4567; others with their country "
                    "code, e.g. +44 7911 123456."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel",
                                      "inputmode": "tel"}))


class PhoneCodeForm(forms.Form):
    code = forms.RegexField(
        label=_("6-digit code"), regex=r"^\s*\d{3}\s?\d{3}\s*$", max_length=8,
        error_messages={"invalid": _("Enter the 6 digits from the text message.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                      "pattern": r"\s*\d{3}\s?\d{3}\s*", "size": 8,
                                      "class": "otp-input"}))


class EmailChangeForm(forms.Form):
    email = forms.EmailField(label=_("New email address"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        label=_("Current password"), strip=False,
        help_text=_("To make sure it is really you."),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your current password."),
                                        code="password_incorrect")
        return password


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100,
                           help_text=_("What will use it, e.g. “box office sync”."))


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, mailing our templates in the user's language.

    The link is built from ``SITE_URL``, never from the request's Host header.
    """

    def send_mail(self, subject_template_name, email_template_name, context, from_email,
                  to_email, html_email_template_name=None) -> None:
        user = context["user"]
        link = emails.absolute_url("accounts:password_reset_confirm",
                                   uidb64=context["uid"], token=context["token"])
        emails.send_email(to=to_email, template="password_reset",
                          language=user.preferred_language,
                          context={"user_name": user.legal_name, "link": link})


class SetPasswordForm(auth_forms.SetPasswordForm):
    """Reset: saved through the service so it is audited (and verifies the mailbox)."""

    def save(self, commit: bool = True):
        return services.set_user_password(user=self.user,
                                          password=self.cleaned_data["new_password1"],
                                          reason="reset", now=clock.now())


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    def save(self, commit: bool = True):
        return services.set_user_password(user=self.user,
                                          password=self.cleaned_data["new_password1"],
                                          reason="change", now=clock.now())

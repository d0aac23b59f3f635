"""Account pages: parse the request, check who is asking, call one service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from smarttickets.accounts import forms, selectors, services, tokens
from smarttickets.accounts.exceptions import AlreadyVerified
from smarttickets.accounts.permissions import can_manage_api_tokens, role_labels
from smarttickets.accounts.phone import display_phone
from smarttickets.core import clock
from smarttickets.core.exceptions import DomainError

# --- sign-up and email verification --------------------------------------------------------


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:profile")
    form = forms.RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.register_user(email=data["email"], password=data["password"],
                                   legal_name=data["legal_name"],
                                   language=translation.get_language(),
                                   accepted_terms=data["accept_terms"], now=clock.now())
        except DomainError as exc:
            forms.add_domain_error(form, exc)
        else:
            # The same page whether or not the address was new: see register_user.
            request.session["registered_email"] = data["email"].strip().lower()
            return redirect("accounts:register_done")
    return render(request, "accounts/register.html", {"form": form})


@never_cache
def register_done(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/register_done.html", {
        "email": request.session.get("registered_email", ""),
        "valid_days": tokens.EMAIL_LINK_MAX_AGE.days,
    })


@never_cache
@require_http_methods(["GET", "POST"])
def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirm button (mail scanners that prefetch links change nothing); POST
    verifies."""
    now = clock.now()
    try:
        payload = tokens.read_token(salt=tokens.EMAIL_VERIFICATION_SALT, token=token, now=now)
    except DomainError as exc:
        return _link_problem(request, exc)
    if request.method == "POST":
        try:
            services.verify_email(token=token, now=now)
        except AlreadyVerified as exc:
            messages.info(request, exc.message)
            return redirect("accounts:profile" if request.user.is_authenticated
                            else "accounts:login")
        except DomainError as exc:
            return _link_problem(request, exc)
        messages.success(request, _("Thank you, your email address is verified."))
        return redirect("accounts:profile" if request.user.is_authenticated
                        else "accounts:login")
    return render(request, "accounts/verify_email.html", {"email": payload.data.get("e", "")})


def _link_problem(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return render(request, "accounts/link_problem.html", {"error": exc}, status=exc.status)


@never_cache
@require_http_methods(["GET", "POST"])
def resend_verification(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                services.send_email_verification(user=request.user, now=now)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("We sent a new link to %(email)s.")
                                 % {"email": request.user.email})
        return redirect("accounts:profile")
    form = forms.ResendVerificationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.resend_verification_by_email(email=form.cleaned_data["email"], now=now)
        messages.success(request, _("If an account with an unverified address %(email)s "
                                    "exists, a new link is on its way.")
                         % {"email": form.cleaned_data["email"]})
        return redirect("accounts:login")
    return render(request, "accounts/resend_verification.html", {"form": form})


# --- sign-in and passwords (Django's views, our forms and templates) -----------------------

class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = forms.EmailAuthenticationForm
    redirect_authenticated_user = True


class PasswordResetView(auth_views.PasswordResetView):
    form_class = forms.PasswordResetForm
    template_name = "accounts/password_reset_form.html"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = forms.SetPasswordForm
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = forms.PasswordChangeForm
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")
    extra_context = {"nav": "password"}

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password has been changed."))
        return response


# --- profile -------------------------------------------------------------------------------

@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    initial = {"legal_name": user.legal_name, "preferred_language": user.preferred_language}
    form = forms.ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_profile(user=user, legal_name=form.cleaned_data["legal_name"],
                                    preferred_language=form.cleaned_data["preferred_language"],
                                    actor=user, now=clock.now())
        except DomainError as exc:
            forms.add_domain_error(form, exc)
        else:
            messages.success(request, _("Your details have been saved."))
            return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {
        "form": form,
        "state": selectors.verification_state(user),
        "roles": role_labels(user),
        "phone_display": display_phone(user.phone),
        "can_manage_api_tokens": can_manage_api_tokens(user),
        "nav": "profile",
    })


# --- phone ---------------------------------------------------------------------------------

@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def phone_verify(request: HttpRequest) -> HttpResponse:
    """One page, three actions: send a code to a number, resend it, check a code."""
    user = request.user
    now = clock.now()
    action = request.POST.get("action", "") if request.method == "POST" else ""
    phone_form = forms.PhoneForm(request.POST if action == "send" else None,
                                 initial={"phone": display_phone(user.phone)})
    code_form = forms.PhoneCodeForm(request.POST if action == "verify" else None)
    if action == "send" and phone_form.is_valid():
        try:
            services.start_phone_verification(user=user, phone=phone_form.cleaned_data["phone"],
                                              now=now)
        except DomainError as exc:
            forms.add_domain_error(phone_form, exc)
        else:
            messages.success(request, _("We sent a code to %(phone)s.")
                             % {"phone": display_phone(user.phone)})
            return redirect("accounts:phone_verify")
    elif action == "resend":
        try:
            services.start_phone_verification(user=user, phone=user.phone, now=now)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("We sent a new code to %(phone)s.")
                             % {"phone": display_phone(user.phone)})
        return redirect("accounts:phone_verify")
    elif action == "verify" and code_form.is_valid():
        try:
            services.verify_phone(user=user, code=code_form.cleaned_data["code"], now=now)
        except DomainError as exc:
            forms.add_domain_error(code_form, exc, default_field="code")
        else:
            messages.success(request, _("Your mobile number is verified."))
            return redirect("accounts:profile")
    elif request.method == "POST" and action not in {"send", "verify"}:
        messages.error(request, _("Something went wrong with that form. Please try again."))
        return redirect("accounts:phone_verify")
    challenge = selectors.open_phone_challenge(user=user, now=now)
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/phone_verify.html", {
        "phone_form": phone_form,
        "code_form": code_form,
        "challenge": challenge,
        "phone_display": display_phone(user.phone),
        "nav": "phone",
    }, status=status)


# --- email change --------------------------------------------------------------------------

@sensitive_post_parameters("password")
@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def email_change(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = forms.EmailChangeForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            services.request_email_change(user=user, new_email=form.cleaned_data["email"],
                                          now=clock.now())
        except DomainError as exc:
            forms.add_domain_error(form, exc)
        else:
            messages.success(request, _("Check %(email)s: your address changes once you "
                                        "follow the link we sent there.")
                             % {"email": form.cleaned_data["email"].strip().lower()})
            return redirect("accounts:email_change")
    return render(request, "accounts/email_change.html", {
        "form": form, "pending_email": user.pending_email, "nav": "email",
        "valid_days": tokens.EMAIL_LINK_MAX_AGE.days,
    })


@login_required
@require_POST
def email_change_cancel(request: HttpRequest) -> HttpResponse:
    services.cancel_email_change(user=request.user, now=clock.now())
    messages.success(request, _("The email change was cancelled."))
    return redirect("accounts:email_change")


@never_cache
@require_http_methods(["GET", "POST"])
def email_change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    now = clock.now()
    try:
        payload = tokens.read_token(salt=tokens.EMAIL_CHANGE_SALT, token=token, now=now)
    except DomainError as exc:
        return _link_problem(request, exc)
    if request.method == "POST":
        try:
            user = services.confirm_email_change(token=token, now=now)
        except DomainError as exc:
            return _link_problem(request, exc)
        messages.success(request, _("Your email address is now %(email)s.")
                         % {"email": user.email})
        return redirect("accounts:profile" if request.user.is_authenticated
                        else "accounts:login")
    return render(request, "accounts/email_change_confirm.html", {
        "old_email": payload.data.get("o", ""), "new_email": payload.data.get("n", ""),
    })


# --- API tokens ----------------------------------------------------------------------------

@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not can_manage_api_tokens(user):
        return render(request, "accounts/api_tokens_forbidden.html", {"nav": "api_tokens"},
                      status=403)
    form = forms.ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            token, new_key = services.issue_api_token(user=user, name=form.cleaned_data["name"],
                                                      now=clock.now())
        except DomainError as exc:
            forms.add_domain_error(form, exc)
        else:
            # Rendered, not redirected: the key is shown this once and never stored.
            messages.success(request, _("Token “%(name)s” created.") % {"name": token.name})
            form = forms.ApiTokenForm()
    response = render(request, "accounts/api_tokens.html", {
        "form": form, "tokens": selectors.api_tokens_for(user), "new_key": new_key,
        "nav": "api_tokens", "me_url": reverse("api:accounts_me"),
    }, status=400 if request.method == "POST" and new_key is None else 200)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.revoke_api_token(user=request.user, token_id=token_id, now=clock.now())
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Token “%(name)s” revoked. Programs using it can no longer "
                                    "sign in.") % {"name": token.name})
    return redirect("accounts:api_tokens")

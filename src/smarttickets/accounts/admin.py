"""Admin for users (email login) and API tokens (the key is never shown)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from smarttickets.accounts import services
from smarttickets.accounts.models import ApiToken, PhoneVerification, User
from smarttickets.core import clock
from smarttickets.core.audit import log_action


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ("-date_joined",)
    list_display = ("email", "legal_name", "email_verified_at", "phone", "phone_verified_at",
                    "is_gate_staff", "is_staff", "is_active")
    list_filter = ("is_active", "is_staff", "is_gate_staff", "preferred_language",
                   ("email_verified_at", admin.EmptyFieldListFilter),
                   ("phone_verified_at", admin.EmptyFieldListFilter))
    search_fields = ("email", "legal_name", "phone")
    readonly_fields = ("last_login", "date_joined", "email_verification_sent_at",
                       "legal_name_locked_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Identity"), {"fields": ("legal_name", "legal_name_locked_at", "phone",
                                    "phone_verified_at", "email_verified_at",
                                    "email_verification_sent_at", "pending_email",
                                    "preferred_language")}),
        (_("Roles"), {"fields": ("is_active", "is_gate_staff", "is_staff", "is_superuser",
                                 "groups", "user_permissions")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2")}),
    )

    def save_model(self, request, obj, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Staff edits bypass the services; the audit log still records who changed what.
        changed = {name: str(getattr(obj, name, form.cleaned_data.get(name)))
                   for name in form.changed_data
                   if name not in {"password", "password1", "password2", "usable_password",
                                   "groups", "user_permissions"}}
        log_action(action="accounts.user.admin_changed" if change else "accounts.user.admin_created",
                   obj=obj, actor=request.user, data={"fields": changed})


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__email")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # keys are made in the account area, where the plain key is shown once

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request, queryset) -> None:
        now = clock.now()
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            services.revoke_api_token(user=token.user, token_id=token.pk, now=now)
        messages.success(request, _("The selected tokens are revoked."))


@admin.register(PhoneVerification)
class PhoneVerificationAdmin(admin.ModelAdmin):
    list_display = ("phone", "user", "created_at", "attempts", "verified_at", "superseded_at")
    search_fields = ("phone", "user__email")
    fields = ("user", "phone", "created_at", "expires_at", "attempts", "verified_at",
              "superseded_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

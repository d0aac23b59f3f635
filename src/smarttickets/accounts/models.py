"""Users (email login), identity (legal name, phone, verification state) and API tokens."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username: str):
        # Addresses are stored lower-case; "Fan@Example.com" must log in to the same account.
        return self.get(**{self.model.USERNAME_FIELD: (username or "").strip().lower()})

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required")
        email = self.normalize_email(email).lower()
        user = self.model(email=email, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Email is the login; the legal name is printed on personalised tickets."""

    email = models.EmailField(_("email address"), unique=True)
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    phone = models.CharField(_("mobile phone"), max_length=20, blank=True,
                             help_text=_("International format, e.g. +852 9123 4567"))
    email_verified_at = models.DateTimeField(_("email verified at"), null=True, blank=True)
    phone_verified_at = models.DateTimeField(_("phone verified at"), null=True, blank=True)
    preferred_language = models.CharField(_("preferred language"), max_length=10, default="en")
    is_gate_staff = models.BooleanField(_("gate staff"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # Set when the verification link is mailed: throttles resends.
    email_verification_sent_at = models.DateTimeField(null=True, blank=True)
    # A requested new address; it replaces ``email`` only once its link is followed.
    pending_email = models.EmailField(_("new email address (pending)"), blank=True)
    # Set by booking once tickets carry this name; later changes go through support.
    legal_name_locked_at = models.DateTimeField(_("legal name locked at"), null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            # One verified phone number per account: a bot farm cannot reuse one SIM.
            models.UniqueConstraint(fields=["phone"], name="user_unique_verified_phone",
                                    condition=models.Q(phone_verified_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        # Logins look addresses up lower-cased (UserManager.get_by_natural_key).
        self.email = User.objects.normalize_email(self.email).strip().lower()

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def phone_verified(self) -> bool:
        return self.phone_verified_at is not None and bool(self.phone)

    @property
    def identity_verified(self) -> bool:
        """Verified email and phone plus a legal name: required to buy or enter a lottery."""
        return self.email_verified and self.phone_verified and bool(self.legal_name.strip())

    @property
    def legal_name_locked(self) -> bool:
        return self.legal_name_locked_at is not None


class ApiToken(models.Model):
    """A bearer token for the API. Only a SHA-256 of the secret is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()


class PhoneVerification(models.Model):
    """One one-time code sent by SMS to prove the user holds ``phone``.

    Only a keyed hash of the code is kept. The newest challenge for a user supersedes older
    ones; rows are kept as the record that throttles resends.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="phone_verifications")
    phone = models.CharField(max_length=20, db_index=True)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    TTL = timedelta(minutes=10)
    MAX_ATTEMPTS = 5

    class Meta:
        verbose_name = _("phone verification")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.phone} @ {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def attempts_left(self) -> int:
        return max(0, self.MAX_ATTEMPTS - self.attempts)

"""Test data for accounts. ``UserFactory(verified=True)`` gives a buyer with a verified identity."""

import factory
from django.utils import timezone

from smarttickets.accounts.models import PhoneVerification, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"fan{n}@example.com")
    legal_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    class Params:
        verified = factory.Trait(
            email_verified_at=factory.LazyFunction(timezone.now),
            # +852 91xx xxxx: a valid Hong Kong mobile range, unique per user.
            phone=factory.Sequence(lambda n: f"+85291{n % 10**6:06d}"),
            phone_verified_at=factory.LazyFunction(timezone.now),
        )

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class PhoneVerificationFactory(factory.django.DjangoModelFactory):
    """A code sent earlier (the code itself is unknowable: only a dummy hash is stored)."""

    class Meta:
        model = PhoneVerification

    user = factory.SubFactory(UserFactory)
    phone = factory.LazyAttribute(lambda o: o.user.phone or "+85291234567")
    code_hash = "0" * 64
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + PhoneVerification.TTL)

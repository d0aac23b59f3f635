"""The provider interface: what checkout, webhooks and refunds need from a payment service.

Amounts cross this boundary as integer minor units with an ISO currency; nothing here touches
the database of orders, so a provider can be swapped without booking noticing.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class LineItem:
    name: str
    unit_amount_minor: int
    quantity: int


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """What the provider needs to take one payment for one order."""

    order_code: str
    amount_minor: int
    currency: str
    description: str
    buyer_email: str
    return_url: str
    cancel_url: str
    idempotency_key: str
    expires_at: datetime | None = None
    line_items: tuple[LineItem, ...] = ()

    def items(self) -> tuple[LineItem, ...]:
        """The line items, or one line for the whole amount; they always add up to the total."""
        if not self.line_items:
            return (LineItem(self.description, self.amount_minor, 1),)
        total = sum(item.unit_amount_minor * item.quantity for item in self.line_items)
        if total != self.amount_minor:
            raise ValueError(f"line items add up to {total}, not {self.amount_minor}")
        return self.line_items


@dataclass(frozen=True, slots=True)
class ProviderSession:
    reference: str
    redirect_url: str
    expires_at: datetime | None = None


class PaymentStatus(enum.StrEnum):
    OPEN = "open"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PaymentSnapshot:
    """The provider's own view of a checkout session, fetched fresh (never from a webhook)."""

    reference: str
    status: PaymentStatus
    amount_minor: int
    currency: str
    order_code: str
    payment_id: str = ""
    card_brand: str = ""
    card_last4: str = ""
    card_fingerprint: str = ""
    decline_code: str = ""
    amount_refunded_minor: int = 0


class RefundStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RefundResult:
    id: str
    status: RefundStatus
    amount_minor: int


class EventType(enum.StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified webhook, normalised. Handlers use it to know *what* to re-fetch, not the
    outcome: the state comes from ``fetch_payment``."""

    id: str
    type: EventType
    raw_type: str
    reference: str
    amount_minor: int | None = None
    currency: str = ""
    order_code: str = ""
    card_fingerprint: str = ""
    card_last4: str = ""
    decline_code: str = ""
    extra: dict = field(default_factory=dict)


class PaymentProvider(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def create_checkout(self, request: CheckoutRequest) -> ProviderSession:
        """Open a hosted payment session. The same idempotency key returns the same session."""

    @abc.abstractmethod
    def fetch_payment(self, reference: str) -> PaymentSnapshot:
        """Re-fetch the state of a session from the provider."""

    def fetch_session(self, reference: str) -> PaymentSnapshot:
        return self.fetch_payment(reference)

    @abc.abstractmethod
    def refund(self, *, reference: str, amount_minor: int, idempotency_key: str,
               reason: str = "") -> RefundResult:
        """Give back ``amount_minor`` of a succeeded payment. Idempotent on the key."""

    @abc.abstractmethod
    def parse_and_verify_webhook(self, body: bytes, headers: Mapping[str, str], *,
                                 now: datetime | None = None) -> ProviderEvent:
        """Check the signature and freshness, then normalise; raise WebhookRejected."""

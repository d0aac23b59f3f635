from datetime import UTC, datetime
from decimal import Decimal

import pytest

from smarttickets.core import clock
from smarttickets.core.audit import log_action, mask
from smarttickets.core.money import Money, format_money, from_minor, quantize, to_minor


def test_quantize_rounds_half_up_to_currency_exponent():
    assert quantize(Decimal("1.005"), "HKD") == Decimal("1.01")
    assert quantize(Decimal("1.5"), "JPY") == Decimal("2")


def test_minor_units_round_trip():
    assert to_minor(Decimal("1280.50"), "HKD") == 128050
    assert from_minor(128050, "HKD") == Decimal("1280.50")
    assert to_minor(Decimal("500"), "JPY") == 500


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(1.5, "HKD")
    with pytest.raises(ValueError):
        Money(Decimal("1"), "HKD") + Money(Decimal("1"), "USD")
    assert (Money(Decimal("880"), "HKD") * 3).amount == Decimal("2640.00")


def test_format_money():
    assert format_money(Decimal("1280"), "HKD") == "HK$1,280.00"


def test_clock_frozen_and_requires_aware():
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    with clock.frozen(at):
        assert clock.now() == at
    assert clock.now() != at
    with pytest.raises(ValueError), clock.frozen(datetime(2026, 1, 1)):
        pass


def test_mask_hides_sensitive_keys():
    assert mask({"password": "x", "nested": [{"token": "y", "ok": 1}]}) == {
        "password": "***", "nested": [{"token": "***", "ok": 1}]}


@pytest.mark.django_db
def test_log_action_writes_masked_entry():
    entry = log_action(action="test.done", object_type="thing", object_id=7,
                       data={"secret": "s", "why": "because"})
    entry.refresh_from_db()
    assert entry.data == {"secret": "***", "why": "because"}
    assert entry.object_id == "7"


@pytest.mark.django_db
def test_api_unknown_route_is_json_404(client):
    response = client.get("/api/nope")
    assert response.status_code == 404


@pytest.mark.django_db
def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}

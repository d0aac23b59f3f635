"""Background work for risk: recompute graph rows after new ties, housekeeping."""

from __future__ import annotations

from django_tasks import task

from smarttickets.core import clock


@task()
def refresh_graph_rows(*, account_ids: list[int]) -> int:
    """Queued on commit of an event that tied accounts together (see ``record_event``)."""
    from smarttickets.risk import decisions

    return decisions.refresh_graph_rows(account_ids=account_ids, now=clock.now())

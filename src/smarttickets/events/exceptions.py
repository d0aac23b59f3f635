"""Errors raised by the events services, each with a stable code for the API."""

from smarttickets.core.exceptions import Conflict, InvalidInput


class InvalidSeatMap(InvalidInput):
    """The uploaded seat map has problems; ``problems`` lists them with line and field."""

    code = "invalid_seatmap"

    def __init__(self, message, *, problems=(), truncated: bool = False) -> None:
        self.problems = list(problems)
        self.truncated = truncated
        super().__init__(message, fields={"file": [str(p) for p in self.problems]})


class SeatMapLocked(Conflict):
    code = "seatmap_locked"


class NotPublishable(Conflict):
    """Publishing was refused; ``problems`` lists what is missing."""

    code = "not_publishable"

    def __init__(self, message, *, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(message, fields={"problems": problems})


class InvalidState(Conflict):
    code = "invalid_state"

"""Risk API at /api/risk/: the step-up for API clients that got ``risk_challenge``, appeals."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Router, Schema

from smarttickets.accounts.api_auth import API_AUTH
from smarttickets.core import clock
from smarttickets.risk import selectors, services

router = Router(tags=["risk"])
AUTH = API_AUTH


class Error(Schema):
    code: str
    message: str


class StepUpSentOut(Schema):
    expires_at: str


class StepUpIn(Schema):
    code: str = Field(..., max_length=12)


class StepUpPassedOut(Schema):
    passed_until: str


class AppealIn(Schema):
    text: str = Field(..., max_length=services.MAX_APPEAL_CHARS)


class AppealOut(Schema):
    id: int
    case_id: int
    case_state: str


@router.post("/stepup", auth=AUTH, response={200: StepUpSentOut, 409: Error, 429: Error},
             summary="Text a step-up code to my verified phone")
def stepup_send(request: HttpRequest):
    challenge = services.start_stepup(account=request.auth, now=clock.now())
    return {"expires_at": challenge.expires_at.isoformat()}


@router.post("/stepup/verify", auth=AUTH,
             response={200: StepUpPassedOut, 400: Error, 409: Error, 429: Error},
             summary="Check the step-up code; then retry the refused request")
def stepup_verify(request: HttpRequest, payload: StepUpIn):
    state = services.check_stepup(account=request.auth, code=payload.code, now=clock.now())
    return {"passed_until": state.stepup_until.isoformat()}


@router.post("/cases/{case_id}/appeals", auth=AUTH,
             response={201: AppealOut, 400: Error, 404: Error, 409: Error, 429: Error},
             summary="Appeal a review or block on one of my cases")
def appeal(request: HttpRequest, case_id: int, payload: AppealIn):
    case = selectors.access_case_by_owner(user=request.auth, case_id=case_id)
    made = services.submit_appeal(account=request.auth, case=case, text=payload.text,
                                  now=clock.now())
    made.case.refresh_from_db()
    return 201, {"id": made.pk, "case_id": made.case_id, "case_state": made.case.state}

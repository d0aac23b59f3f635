"""The wallet page: my tickets, grouped by performance."""

from __future__ import annotations

from itertools import groupby

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from smarttickets.tickets import selectors


@login_required
def wallet(request: HttpRequest) -> HttpResponse:
    show_all = request.GET.get("show") == "all"
    tickets = selectors.tickets_of_user(user=request.user, include_cancelled=show_all)
    groups = [(performance, list(items))
              for performance, items in groupby(tickets, key=lambda t: t.performance)]
    return render(request, "tickets/wallet.html", {"groups": groups, "show_all": show_all})

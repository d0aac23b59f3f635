"""Per-account features from behaviour-log events: timing, identity, purchases and shared identifiers.

Pure kernel (standard library, numpy, scipy): no Django. The offline detector feeds it a whole log;
the in-process decision feeds it one account's recent events plus its graph neighbourhood, and
both get the same numbers for the same inputs.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NAN = float("nan")
# A gap this long ends a burst of activity: intervals across it say nothing about automation.
SESSION_GAP_S = 30 * 60
# Identifiers that tie accounts together. IPs at order time only count as a tie when few
# accounts were ever seen there: mobile-carrier CGNAT and campus IPs are shared by many fans.
STRONG_LINK_KINDS = ("card", "device", "addr", "xfer")
IP_LINK_MAX_ACCOUNTS = 6
MIN_GAPS_FOR_SPREAD = 6
MIN_GAPS_FOR_PACE = 3
# Requests a client makes. A login, signup, order or lottery entry is the server's answer to a
# form_submit and is written in the same instant, so its gap says nothing about who is typing.
TIMING_TYPES = frozenset({"page_view", "form_submit", "queue_join", "hold", "ticket_transfer"})
# Typing speed from a handful of keys (Enter after an autofill) is noise, not a measurement.
MIN_KEYS_FOR_RATE = 10
# A shared identifier with more accounts than this is infrastructure, not a ring (a kiosk, a
# default device id): it neither joins components nor counts as sharing.
LINK_MAX_ACCOUNTS = 400
PURCHASE_TYPES = frozenset({"hold", "order", "payment", "lottery_entry"})
ACTION_TYPES = frozenset({"hold", "order", "lottery_entry", "queue_join"})
# Clients that name themselves as automation. Not okhttp, Dalvik or CFNetwork: a platform's
# own mobile app sends those for every fan.
AUTOMATION_UA = re.compile(
    r"headless|phantomjs|selenium|webdriver|puppeteer|playwright|python-requests|python-urllib|"
    r"aiohttp|httpx|curl/|wget/|go-http-client|libwww|scrapy|node-fetch|axios",
    re.IGNORECASE,
)

LOCAL_FEATURES = [
    # timing: measured against the log's own typical values, or machine-absolute limits
    "iat_median_rel", "iat_log_std", "iat_cv", "iat_min_s", "iat_sub1s_frac",
    "forms_no_telemetry_frac", "fill_s_min", "fill_rel_min", "fill_rel_median",
    "keys_per_s_max", "keystrokes_zero_frac", "pastes_per_form", "zero_pointer_forms_frac",
    "robotic_forms_frac",
    # identity and velocity: ratios, not counts that grow with the length of the log
    "ips_per_session", "devices_per_session",
    "uas_per_session", "automation_ua", "login_fail_ratio",
    "page_views_per_action", "phone_missing",
    # purchases: quantities relative to the purchase limit seen in the log
    "holds", "hold_fail_ratio", "hold_qty_rel", "hold_qty_max_rel", "orders", "tickets",
    "tickets_per_order", "order_performances", "order_events", "entries", "entry_performances",
    "entries_per_event", "entry_qty_rel", "payments_per_order", "pay_fail_ratio",
    "decline_codes", "cards", "transfers_out", "transfer_out_share", "transfer_recipients",
    "transfers_in", "transfer_senders",
]
GRAPH_FEATURES = [
    "card_share", "device_share", "addr_share", "name_share", "ipo_buyers", "ipo_accounts_min",
    "ipo_buyer_density", "recipient_in_degree_max", "neighbours", "component_size",
    "component_tickets", "component_tickets_per_account", "component_share",
    "component_transfers", "component_cards",
]
FEATURES = LOCAL_FEATURES + GRAPH_FEATURES
# The direction in which a feature may only raise suspicion (+1), lower it (-1), or either (0).
# Used as monotonic constraints when training, so that the model cannot learn that, say, a
# faster form is safer: one simulator's quirks must not turn into an inverted rule.
MONOTONE = {
    "iat_min_s": -1, "iat_sub1s_frac": 1, "fill_s_min": -1, "fill_rel_min": -1,
    "keys_per_s_max": 1, "robotic_forms_frac": 1, "ips_per_session": 1, "automation_ua": 1,
    "decline_codes": 1, "cards": 1, "transfer_out_share": 1, "transfer_senders": 1,
    "card_share": 1, "device_share": 1, "recipient_in_degree_max": 1, "hold_qty_max_rel": 1,
    "entry_performances": 1, "component_transfers": 1,
    # A pace faster than the log's typical account, less browsing per action and asking for
    # the limit can only raise suspicion; slower, browsing, a pair of tickets never do.
    "iat_median_rel": -1, "page_views_per_action": -1, "hold_qty_rel": 1, "entry_qty_rel": 1,
    # Counts of what an account tried, got and handed on, the ties it shares and the ways it
    # fails: more never makes it look safer. Left free, the trees learned the simulator's
    # populations instead (six lottery entries or two tickets bought "cleared" an account).
    "holds": 1, "hold_fail_ratio": 1, "orders": 1, "tickets": 1, "tickets_per_order": 1,
    "order_performances": 1, "entries": 1, "entries_per_event": 1, "payments_per_order": 1,
    "pay_fail_ratio": 1, "transfers_out": 1, "transfer_recipients": 1, "transfers_in": 1,
    "devices_per_session": 1, "uas_per_session": 1, "addr_share": 1, "name_share": 1,
    "neighbours": 1, "component_size": 1, "component_tickets": 1, "component_cards": 1,
    "component_tickets_per_account": 1, "order_events": 1,
    # Buying from an address that many others buy from is what the IP rule punishes; it is no
    # proof of a ring (a campus, a carrier), but it never clears an account either: otherwise
    # a bot on a busy proxy passes as a student.
    "ipo_buyers": 1, "ipo_buyer_density": 1,
}
# Below this many accounts with a measurement, a log's own typical value is too noisy: the
# defaults (typical human values) are used instead, as on the live path.
MIN_CONTEXT_ACCOUNTS = 50


@dataclass(frozen=True)
class Context:
    """What is typical on the platform a log comes from, so features are scale-free.

    Human pace, form lengths and the purchase limit differ between deployments (and between
    simulators); a form filled in half the usual time means the same everywhere, 9 s does not.
    """

    purchase_limit: float = 4.0
    iat_median_s: float = 7.0
    pages_per_session: float = 3.0
    fill_median_s: tuple[tuple[str, float], ...] = (
        ("signup", 25.0), ("login", 7.0), ("checkout", 20.0), ("lottery_entry", 14.0))

    def fill_median(self, form: str) -> float:
        for name, value in self.fill_median_s:
            if name == form:
                return value
        return 15.0


DEFAULT_CONTEXT = Context()


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any, default: int = 0) -> int:
    v = _num(value)
    if v is None or not math.isfinite(v):
        return default
    return int(v)


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else NAN


def _mean(values: list[float] | list[int]) -> float:
    return sum(values) / len(values) if values else NAN


@functools.lru_cache(maxsize=4096)
def is_automation_ua(ua: str) -> bool:
    return AUTOMATION_UA.search(ua) is not None


class _Account:
    """Everything one account did, kept raw so that event order does not matter."""

    __slots__ = (
        "addrs",
        "cards",
        "decline_codes",
        "devices",
        "entries",
        "entry_events",
        "entry_perfs",
        "entry_qty",
        "events",
        "first_action",
        "first_ts",
        "foreign_login_fail",
        "forms",
        "hold_fail",
        "hold_qty",
        "hold_ts",
        "holds",
        "ips",
        "last_ts",
        "login_fail",
        "login_ok",
        "names",
        "order_events",
        "order_ips",
        "order_perfs",
        "order_qty",
        "orders",
        "owned",
        "page_views",
        "pay_fail",
        "payments",
        "pending",
        "phone_missing",
        "queue_ts",
        "recipients",
        "senders",
        "sessions",
        "signup",
        "stamps",
        "tickets",
        "transfers_in",
        "transfers_out",
        "uas",
    )

    def __init__(self) -> None:
        self.stamps: list[tuple[str, float]] = []
        self.sessions: set[str] = set()
        self.devices: set[str] = set()
        self.ips: set[str] = set()
        self.uas: set[str] = set()
        self.order_ips: set[str] = set()
        self.cards: set[str] = set()
        self.names: set[str] = set()
        self.addrs: set[str] = set()
        self.decline_codes: set[str] = set()
        self.recipients: set[str] = set()
        self.senders: set[str] = set()
        self.order_perfs: set[str] = set()
        self.order_events: set[str] = set()
        self.entry_perfs: set[str] = set()
        self.entry_events: set[str] = set()
        self.forms: list[tuple[str, Any, Any, Any, Any, Any]] = []
        self.hold_qty: list[int] = []
        self.entry_qty: list[int] = []
        self.order_qty: list[int] = []
        self.queue_ts: list[float] = []
        self.hold_ts: list[float] = []
        self.signup: float | None = None
        self.phone_missing = NAN
        self.first_action: float | None = None
        self.first_ts = math.inf
        self.last_ts = -math.inf
        self.login_ok = self.login_fail = self.page_views = 0
        self.holds = self.hold_fail = self.orders = self.tickets = 0
        self.entries = self.payments = self.pay_fail = 0
        self.transfers_out = self.transfers_in = 0
        self.events = 0
        # Sessions that did something as this account, and failed-login-only sessions that may
        # still turn out to be its own (events in any order) or someone else's attack.
        self.owned: set[str] = set()
        self.pending: dict[str, list[Mapping[str, Any]]] = {}
        self.foreign_login_fail = 0

    def settle(self) -> None:
        """Close the books: sessions that never got in were someone else trying passwords.

        Their user agent, timing and address say nothing about the account's owner (a
        credential-stuffing bot is not the fan whose password it tried), so they are only
        counted. Idempotent; called before features are computed.
        """
        for events in self.pending.values():
            self.foreign_login_fail += sum(1 for ev in events if ev.get("type") == "login")
        self.pending.clear()


def _key(value: Any) -> str | None:
    """Identifiers are opaque strings; numbers are accepted and normalised, blanks dropped."""
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


class FeatureBuilder:
    """Feed events in any order with ``add``; ``build`` returns the feature matrix."""

    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}
        self.ip_accounts: dict[str, set[str]] = defaultdict(set)

    def _acc(self, account: str) -> _Account:
        acc = self.accounts.get(account)
        if acc is None:
            acc = self.accounts[account] = _Account()
        return acc

    def add_many(self, events: Iterable[Mapping[str, Any]]) -> FeatureBuilder:
        for event in events:
            self.add(event)
        return self

    def add(self, ev: Mapping[str, Any]) -> None:
        account = _key(ev.get("account"))
        if account is None:
            return
        acc = self._acc(account)
        session = _key(ev.get("session")) or ""
        if session not in acc.owned:
            kind = ev.get("type")
            if (kind == "login" and ev.get("success") is not True) or (
                    kind == "form_submit" and ev.get("form") == "login"):
                # Someone typing passwords at this account: it only becomes the account's own
                # behaviour once that session gets in (see ``_Account.settle``).
                acc.pending.setdefault(session, []).append(ev)
                return
            acc.owned.add(session)
            for earlier in acc.pending.pop(session, ()):
                self._apply(account, acc, session, earlier)
        self._apply(account, acc, session, ev)

    def _apply(self, account: str, acc: _Account, session: str, ev: Mapping[str, Any]) -> None:
        kind = ev.get("type")
        ts = float(ev["ts"])
        if kind in TIMING_TYPES:
            acc.stamps.append((session, ts))
        acc.sessions.add(session)
        ts_first, ts_last = acc.first_ts, acc.last_ts
        if ts < ts_first:
            acc.first_ts = ts
        if ts > ts_last:
            acc.last_ts = ts
        acc.events += 1
        device = _key(ev.get("device"))
        if device is not None:
            acc.devices.add(device)
        ip = _key(ev.get("ip"))
        if ip is not None:
            acc.ips.add(ip)
            self.ip_accounts[ip].add(account)
        ua = ev.get("ua")
        if isinstance(ua, str):
            acc.uas.add(ua)
        if kind in ACTION_TYPES and (acc.first_action is None or ts < acc.first_action):
            acc.first_action = ts
        if kind in PURCHASE_TYPES and ip is not None:
            acc.order_ips.add(ip)

        if kind == "page_view":
            acc.page_views += 1
        elif kind == "form_submit":
            acc.forms.append((str(ev.get("form") or ""), _num(ev.get("fill_ms")),
                              _num(ev.get("keystrokes")), _num(ev.get("pastes")),
                              _num(ev.get("pointer_moves")), _num(ev.get("focus_changes"))))
        elif kind == "login":
            if ev.get("success") is True:
                acc.login_ok += 1
            else:
                acc.login_fail += 1
        elif kind == "hold":
            acc.holds += 1
            acc.hold_ts.append(ts)
            acc.hold_qty.append(_int(ev.get("quantity")))
            if ev.get("success") is not True:
                acc.hold_fail += 1
        elif kind == "order":
            acc.orders += 1
            qty = max(_int(ev.get("quantity")), 0)
            acc.tickets += qty
            acc.order_qty.append(qty)
            perf = _key(ev.get("performance_id"))
            if perf is not None:
                acc.order_perfs.add(perf)
            event_id = _key(ev.get("event_id"))
            if event_id is not None:
                acc.order_events.add(event_id)
        elif kind == "payment":
            acc.payments += 1
            card = _key(ev.get("card_fp"))
            if card is not None:
                acc.cards.add(card)
            if ev.get("success") is not True:
                acc.pay_fail += 1
                code = _key(ev.get("decline_code"))
                if code is not None:
                    acc.decline_codes.add(code)
        elif kind == "lottery_entry":
            acc.entries += 1
            acc.entry_qty.append(_int(ev.get("quantity")))
            perf = _key(ev.get("performance_id"))
            if perf is not None:
                acc.entry_perfs.add(perf)
            event_id = _key(ev.get("event_id"))
            if event_id is not None:
                acc.entry_events.add(event_id)
        elif kind == "queue_join":
            acc.queue_ts.append(ts)
        elif kind == "signup":
            if acc.signup is None or ts < acc.signup:
                acc.signup = ts
            acc.phone_missing = 0.0 if _key(ev.get("phone_country")) else 1.0
            name = _key(ev.get("name_hash"))
            if name is not None:
                acc.names.add(name)
            addr = _key(ev.get("address_hash"))
            if addr is not None:
                acc.addrs.add(addr)
        elif kind == "ticket_transfer":
            to = _key(ev.get("to_account"))
            acc.transfers_out += 1
            if to is not None:
                acc.recipients.add(to)
                recipient = self._acc(to)
                recipient.transfers_in += 1
                recipient.senders.add(account)

    # -- building ---------------------------------------------------------------------------

    def local_row(self, acc: _Account, ctx: Context = DEFAULT_CONTEXT) -> list[float]:
        return _local_features(acc, ctx)

    def context(self) -> Context:
        """The log's own typical values (see ``Context``); defaults where it has too few."""
        return context_of(self.accounts.values())

    def links(self) -> dict[str, set[tuple[str, str]]]:
        """Identifiers per account: (kind, value) pairs shared accounts have in common."""
        out: dict[str, set[tuple[str, str]]] = {}
        for account, acc in self.accounts.items():
            ids: set[tuple[str, str]] = set()
            ids.update(("card", c) for c in acc.cards)
            ids.update(("device", d) for d in acc.devices)
            ids.update(("addr", a) for a in acc.addrs)
            ids.update(("name", n) for n in acc.names)
            ids.update(("ipo", i) for i in acc.order_ips)
            # Sender and recipient share the recipient's id: collectors become hubs.
            ids.update(("xfer", r) for r in acc.recipients)
            if acc.senders:
                ids.add(("xfer", account))
            out[account] = ids
        return out

    def build(self, accounts: list[str] | None = None,
              context: Context | None = None) -> FeatureTable:
        names = sorted(self.accounts) if accounts is None else accounts
        ctx = context or self.context()
        local = np.array([_local_features(self.accounts[a], ctx) if a in self.accounts
                          else [NAN] * len(LOCAL_FEATURES) for a in names], dtype=np.float64)
        local = local.reshape(len(names), len(LOCAL_FEATURES))
        tickets = {a: acc.tickets for a, acc in self.accounts.items()}
        ip_counts = {ip: len(accs) for ip, accs in self.ip_accounts.items()}
        components: list[int] = []
        graph = graph_features(self.links(), tickets, ip_counts, names, components)
        return FeatureTable(accounts=names, X=np.hstack([local, graph]), names=list(FEATURES),
                            components=np.array(components, dtype=np.int64), context=ctx)


@dataclass
class FeatureTable:
    accounts: list[str]
    X: np.ndarray
    names: list[str]
    components: np.ndarray | None = None
    context: Context | None = None

    def column(self, name: str) -> np.ndarray:
        return self.X[:, self.names.index(name)]

    def row(self, account: str) -> dict[str, float]:
        i = self.accounts.index(account)
        return dict(zip(self.names, self.X[i].tolist(), strict=True))


def _intervals(stamps: list[tuple[str, float]]) -> list[float]:
    """Gaps between consecutive requests of one session, within one burst of activity."""
    gaps: list[float] = []
    prev_session, prev_ts = None, 0.0
    for session, ts in sorted(stamps):
        gap = ts - prev_ts
        if session == prev_session and gap <= SESSION_GAP_S:
            gaps.append(gap)
        prev_session, prev_ts = session, ts
    return gaps


def _std(values: list[float], mean: float) -> float:
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _ratio(num: float, den: float) -> float:
    return num / den if den else NAN


def _shrunk(distinct: int, sessions: int) -> float:
    """New identifiers per session, pulled towards one half when there are few sessions.

    Two sessions on two devices is a fan with a phone and a laptop as often as a rotating
    bot; twelve sessions on twelve devices is not. (distinct + 1) / (sessions + 2) says so.
    """
    return (distinct + 1) / (sessions + 2) if sessions else NAN


def context_of(accounts: Iterable[_Account]) -> Context:
    """Typical human pace, form times and the purchase limit of a whole log.

    Medians over accounts (each account's own median), so a ring's thousand identical forms
    count once each and a minority of bots cannot move them; the limit is the 99th percentile
    of requested quantities (bots ask for the limit, a stray invalid value does not count).
    """
    gaps: list[float] = []
    pages: list[float] = []
    fills: dict[str, list[float]] = defaultdict(list)
    quantities: list[int] = []
    for acc in accounts:
        acc.settle()
        if acc.sessions and acc.events:
            pages.append(acc.page_views / len(acc.sessions))
        g = _intervals(acc.stamps)
        if len(g) >= 3:
            gaps.append(_median(g))
        per_form: dict[str, list[float]] = defaultdict(list)
        for f in acc.forms:
            if f[1] is not None:
                per_form[f[0]].append(f[1] / 1000.0)
        for form, values in per_form.items():
            fills[form].append(_median(values))
        quantities.extend(acc.hold_qty)
        quantities.extend(acc.entry_qty)
        quantities.extend(acc.order_qty)
    d = DEFAULT_CONTEXT
    iat = _median(gaps) if len(gaps) >= MIN_CONTEXT_ACCOUNTS else d.iat_median_s
    fill = tuple((form, _median(fills[form]) if len(fills[form]) >= MIN_CONTEXT_ACCOUNTS
                  else d.fill_median(form)) for form in ("signup", "login", "checkout",
                                                         "lottery_entry"))
    positive = [q for q in quantities if q > 0]
    limit = (float(np.percentile(positive, 99, method="lower"))
             if len(positive) >= MIN_CONTEXT_ACCOUNTS else d.purchase_limit)
    per_session = _median(pages) if len(pages) >= MIN_CONTEXT_ACCOUNTS else d.pages_per_session
    return Context(purchase_limit=max(limit, 1.0), iat_median_s=max(iat, 0.05),
                   pages_per_session=max(per_session, 0.1),
                   fill_median_s=tuple((f, max(v, 0.05)) for f, v in fill))


def _local_features(acc: _Account, ctx: Context = DEFAULT_CONTEXT) -> list[float]:
    acc.settle()
    gaps = _intervals(acc.stamps)
    if gaps:
        logs = [math.log(max(g, 0.01)) for g in gaps]
        mean = sum(gaps) / len(gaps)
        # Spread needs a few intervals: two page views say nothing about regularity.
        many = len(gaps) >= MIN_GAPS_FOR_SPREAD
        iat = [_median(gaps) / ctx.iat_median_s if len(gaps) >= MIN_GAPS_FOR_PACE else NAN,
               _std(logs, sum(logs) / len(logs)) if many else NAN,
               _std(gaps, mean) / mean if many and mean > 0 else NAN,
               min(gaps),
               sum(1 for g in gaps if g < 1.0) / len(gaps)]
    else:
        iat = [NAN, NAN, NAN, NAN, NAN]

    measured = [f for f in acc.forms if f[1] is not None]
    fills = [f[1] / 1000.0 for f in measured]
    rel = [f[1] / 1000.0 / ctx.fill_median(f[0]) for f in measured]
    keys = [f[2] for f in measured if f[2] is not None]
    rates = [f[2] / max(f[1] / 1000.0, 0.05) for f in measured
             if f[2] is not None and f[2] >= MIN_KEYS_FOR_RATE]
    pointers = [f[4] for f in measured if f[4] is not None]
    # A form no person fills: under a second, not one key pressed, the pointer never moved.
    robotic = [f for f in measured if f[1] < 1000 and not f[2] and not f[4]]
    n_forms = len(acc.forms)
    forms = [
        _ratio(n_forms - len(measured), n_forms),
        min(fills) if fills else NAN,
        min(rel) if rel else NAN,
        _median(rel),
        max(rates) if rates else NAN,
        (sum(1 for k in keys if k == 0) / len(keys)) if keys else NAN,
        _ratio(sum(f[3] for f in measured if f[3] is not None), len(measured)),
        (sum(1 for p in pointers if p == 0) / len(pointers)) if pointers else NAN,
        _ratio(len(robotic), len(measured)),
    ]

    sessions = len(acc.sessions)
    actions = acc.holds + acc.entries + acc.orders
    logins = acc.login_ok + acc.login_fail
    # Neither account age nor whether the signup is in the log at all is a feature: that
    # depends on where the log starts ("created 10 days before" means a bot in one log and any
    # fan in another), and on the live path every account's signup is on record.
    identity = [
        _shrunk(len(acc.ips), sessions),
        _shrunk(len(acc.devices), sessions),
        _shrunk(len(acc.uas), sessions),
        1.0 if any(is_automation_ua(ua) for ua in acc.uas) else 0.0,
        _ratio(acc.login_fail, logins),
        _ratio(acc.page_views, actions),
        acc.phone_missing,
    ]

    limit = ctx.purchase_limit
    purchases = [
        float(acc.holds),
        _ratio(acc.hold_fail, acc.holds),
        _mean(acc.hold_qty) / limit if acc.hold_qty else NAN,
        max(acc.hold_qty) / limit if acc.hold_qty else NAN,
        float(acc.orders),
        float(acc.tickets),
        _ratio(acc.tickets, acc.orders),
        float(len(acc.order_perfs)),
        float(len(acc.order_events)),
        float(acc.entries),
        float(len(acc.entry_perfs)),
        _ratio(acc.entries, len(acc.entry_events)),
        _mean(acc.entry_qty) / limit if acc.entry_qty else NAN,
        _ratio(acc.payments, acc.orders),
        _ratio(acc.pay_fail, acc.payments),
        float(len(acc.decline_codes)),
        float(len(acc.cards)),
        float(acc.transfers_out),
        # Tickets handed on per ticket bought: a fan keeps theirs; a scalper keeps none.
        min(acc.transfers_out / max(acc.tickets, 1), 2.0) if acc.transfers_out else
        (0.0 if acc.tickets else NAN),
        float(len(acc.recipients)),
        float(acc.transfers_in),
        float(len(acc.senders)),
    ]
    return iat + forms + identity + purchases


def graph_features(links: Mapping[str, set[tuple[str, str]]], tickets: Mapping[str, int],
                   ip_accounts: Mapping[str, int], accounts: list[str],
                   components: list[int] | None = None,
                   counts: Mapping[tuple[str, str], int] | None = None) -> np.ndarray:
    """Shared-identifier features for ``accounts`` from the account–identifier graph.

    ``links`` maps every known account to its (kind, value) identifiers, ``tickets`` to the
    tickets it ordered, ``ip_accounts`` an IP to how many distinct accounts were seen on it at all.
    When ``components`` is a list, each account's component number is appended to it.
    ``counts`` gives the true number of accounts of identifiers whose members were not all
    passed (the live path does not fetch the hundreds of fans behind a carrier IP).
    """
    counts = counts or {}
    account_ids = list(links)
    index = {a: i for i, a in enumerate(account_ids)}
    members: dict[tuple[str, str], list[int]] = defaultdict(list)
    for a, ids in links.items():
        i = index[a]
        for ident in ids:
            members[ident].append(i)

    n = len(account_ids)
    buyers_by_ip = {ident[1]: max(len(m), counts.get(ident, 0))
                    for ident, m in members.items() if ident[0] == "ipo"}
    rows: list[int] = []
    cols: list[int] = []
    edge_ids: list[tuple[str, str]] = []
    for ident, m in members.items():
        if len(m) < 2 or len(m) > LINK_MAX_ACCOUNTS:
            continue
        kind, value = ident
        if kind == "ipo":
            # An address is a place, not an identity: a handful of accounts on one carrier or
            # campus address in a small log would chain whole neighbourhoods into one "ring".
            # It counts for the account's own IP features, and never joins groups.
            continue
        if kind == "xfer":
            # One or two senders are a gift, a resale to a fan, both: not a tie. Only a
            # recipient fed by several accounts (a collector) joins them into one group.
            # Gifts as ties chain friends of friends of households into one giant "ring".
            if len(m) - (value in index) < COLLECTOR_MIN_SENDERS:
                continue
        elif kind not in STRONG_LINK_KINDS:
            continue
        j = n + len(edge_ids)
        edge_ids.append(ident)
        rows.extend(m)
        cols.extend([j] * len(m))

    total = n + len(edge_ids)
    if total:
        graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(total, total))
        _, labels = connected_components(graph, directed=False)
        labels = labels[:n]
    else:
        labels = np.zeros(0, dtype=np.int64)
    if n:
        _attach_single_recipients(labels, members, index)

    ticket_arr = np.array([float(tickets.get(a, 0)) for a in account_ids])
    comp_size = np.bincount(labels, minlength=labels.max() + 1 if n else 0) if n else labels
    comp_tickets = np.bincount(labels, weights=ticket_arr) if n else ticket_arr
    comp_transfers = defaultdict(int)
    comp_cards: dict[int, set[str]] = defaultdict(set)
    for a, ids in links.items():
        c = int(labels[index[a]])
        for kind, value in ids:
            if kind == "xfer" and value != a:
                comp_transfers[c] += 1
            elif kind == "card":
                comp_cards[c].add(value)

    out = np.full((len(accounts), len(GRAPH_FEATURES)), NAN)
    for r, a in enumerate(accounts):
        i = index.get(a)
        if components is not None:
            components.append(-1 if i is None else int(labels[i]))
        if i is None:
            continue
        ids = links[a]
        shares = {"card": 0, "device": 0, "addr": 0, "name": 0}
        neighbours: set[int] = set()
        ipo_buyers = 0
        ipo_min = NAN
        density = 0.0
        in_degree = 0
        for ident in ids:
            kind, value = ident
            m = members[ident]
            size = max(len(m), counts.get(ident, 0))
            if kind in shares:
                if size <= LINK_MAX_ACCOUNTS:
                    shares[kind] = max(shares[kind], size - 1)
                    if kind != "name":
                        neighbours.update(m)
            elif kind == "ipo":
                seen = max(ip_accounts.get(value, size), size)
                ipo_buyers = max(ipo_buyers, buyers_by_ip.get(value, 1) - 1)
                ipo_min = seen if math.isnan(ipo_min) else min(ipo_min, seen)
                density = max(density, (buyers_by_ip.get(value, 1) - 1) / seen)
                if seen <= IP_LINK_MAX_ACCOUNTS:
                    neighbours.update(m)
            elif kind == "xfer":
                neighbours.update(m)
                if value != a:
                    # How many senders the recipient has: a collector receives from many.
                    in_degree = max(in_degree, size - 1)
        neighbours.discard(i)
        c = int(labels[i])
        size = float(comp_size[c])
        ctickets = float(comp_tickets[c])
        out[r] = [
            shares["card"], shares["device"], shares["addr"], shares["name"],
            float(ipo_buyers), ipo_min, density, float(in_degree), float(len(neighbours)),
            size, ctickets, ctickets / size,
            (ticket_arr[i] / ctickets) if ctickets else NAN,
            float(comp_transfers.get(c, 0)), len(comp_cards.get(c, ())) / size,
        ]
    return out


# A group this large is a ring (or a household) that a lone recipient may belong to.
ATTACH_MIN_GROUP = 3
# A recipient fed by this many accounts is a collector: it ties its senders together.
COLLECTOR_MIN_SENDERS = 3


def _attach_single_recipients(labels: np.ndarray, members: Mapping[tuple[str, str], list[int]],
                              index: Mapping[str, int]) -> None:
    """A lone account that received from one member of a group of three or more joins it.

    It joins as a leaf and never merges two groups, so friends of friends cannot chain a
    neighbourhood of households into one "ring"; a ring's collector fed by one member is
    still part of the ring.
    """
    # Eligibility from the groups as the strong ties made them, so that the result does not
    # depend on which leaf is looked at first.
    sizes = np.bincount(labels)
    moves: list[tuple[int, int]] = []
    for (kind, value), m in members.items():
        r = index.get(value)
        if kind != "xfer" or r is None or sizes[labels[r]] != 1:
            continue
        senders = [i for i in m if i != r]
        if len(senders) == 1 and sizes[labels[senders[0]]] >= ATTACH_MIN_GROUP:
            moves.append((r, int(labels[senders[0]])))
    for r, group in moves:
        labels[r] = group


def extract(events: Iterable[Mapping[str, Any]]) -> FeatureTable:
    """Features for every account in ``events`` (including accounts only named as recipients)."""
    return FeatureBuilder().add_many(events).build()

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
MIN_GAPS_FOR_SPREAD = 4
# A shared identifier with more accounts than this is infrastructure, not a ring (a kiosk, a
# default device id): it neither joins components nor counts as sharing.
LINK_MAX_ACCOUNTS = 400
PURCHASE_TYPES = frozenset({"hold", "order", "payment", "lottery_entry"})
ACTION_TYPES = frozenset({"hold", "order", "lottery_entry", "queue_join"})
AUTOMATION_UA = re.compile(
    r"headless|phantomjs|selenium|webdriver|puppeteer|playwright|python-requests|python-urllib|"
    r"aiohttp|httpx|curl/|wget/|go-http-client|okhttp|java/|libwww|scrapy|node-fetch|axios",
    re.IGNORECASE,
)

LOCAL_FEATURES = [
    # timing
    "iat_count", "iat_median_s", "iat_log_std", "iat_cv", "iat_min_s",
    "forms", "forms_no_telemetry", "fill_s_min", "fill_s_median", "checkout_fill_s_min",
    "keystrokes_per_form", "keys_per_s_max", "pastes", "pointer_moves_median",
    "zero_pointer_forms_frac", "focus_changes_median",
    # identity and velocity
    "has_signup", "age_at_first_action_h", "active_span_h", "sessions", "devices", "ips", "uas",
    "ips_per_session", "devices_per_session", "automation_ua", "login_failures",
    "login_fail_ratio", "page_views", "page_views_per_action", "queue_to_hold_s_min",
    "phone_missing",
    # purchases
    "holds", "hold_fail_ratio", "hold_qty_mean", "hold_qty_max", "orders", "tickets",
    "order_performances", "order_events", "entries", "entry_performances", "entry_events",
    "entry_qty_mean", "payments", "payment_failures", "decline_codes", "cards",
    "transfers_out", "transfer_recipients", "transfers_in", "transfer_senders",
]
GRAPH_FEATURES = [
    "card_share", "device_share", "addr_share", "name_share", "ipo_buyers", "ipo_accounts_min",
    "ipo_buyer_density", "recipient_in_degree_max", "neighbours", "component_size",
    "component_tickets", "component_tickets_per_account", "component_share",
    "component_transfers", "component_cards",
]
FEATURES = LOCAL_FEATURES + GRAPH_FEATURES


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
        "first_action",
        "first_ts",
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
        "orders",
        "page_views",
        "pay_fail",
        "payments",
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
        kind = ev.get("type")
        ts = float(ev["ts"])
        acc = self._acc(account)
        session = _key(ev.get("session")) or ""
        acc.stamps.append((session, ts))
        acc.sessions.add(session)
        ts_first, ts_last = acc.first_ts, acc.last_ts
        if ts < ts_first:
            acc.first_ts = ts
        if ts > ts_last:
            acc.last_ts = ts
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
            acc.tickets += max(_int(ev.get("quantity")), 0)
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

    def local_row(self, acc: _Account) -> list[float]:
        return _local_features(acc)

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

    def build(self, accounts: list[str] | None = None) -> FeatureTable:
        names = sorted(self.accounts) if accounts is None else accounts
        local = np.array([_local_features(self.accounts[a]) if a in self.accounts
                          else [NAN] * len(LOCAL_FEATURES) for a in names], dtype=np.float64)
        local = local.reshape(len(names), len(LOCAL_FEATURES))
        tickets = {a: acc.tickets for a, acc in self.accounts.items()}
        ip_counts = {ip: len(accs) for ip, accs in self.ip_accounts.items()}
        components: list[int] = []
        graph = graph_features(self.links(), tickets, ip_counts, names, components)
        return FeatureTable(accounts=names, X=np.hstack([local, graph]), names=list(FEATURES),
                            components=np.array(components, dtype=np.int64))


@dataclass
class FeatureTable:
    accounts: list[str]
    X: np.ndarray
    names: list[str]
    components: np.ndarray | None = None

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


def _local_features(acc: _Account) -> list[float]:
    gaps = _intervals(acc.stamps)
    if gaps:
        logs = [math.log(max(g, 0.01)) for g in gaps]
        mean = sum(gaps) / len(gaps)
        # Spread needs a few intervals: two page views say nothing about regularity.
        many = len(gaps) >= MIN_GAPS_FOR_SPREAD
        iat = [float(len(gaps)), _median(gaps),
               _std(logs, sum(logs) / len(logs)) if many else NAN,
               _std(gaps, mean) / mean if many and mean > 0 else NAN,
               min(gaps)]
    else:
        iat = [0.0, NAN, NAN, NAN, NAN]

    measured = [f for f in acc.forms if f[1] is not None]
    fills = [f[1] / 1000.0 for f in measured]
    checkout_fills = [f[1] / 1000.0 for f in measured if f[0] in ("checkout", "lottery_entry")]
    keys = [f[2] for f in measured if f[2] is not None]
    rates = [f[2] / max(f[1] / 1000.0, 0.05) for f in measured if f[2] is not None]
    pointers = [f[4] for f in measured if f[4] is not None]
    focus = [f[5] for f in measured if f[5] is not None]
    forms = [
        float(len(acc.forms)),
        float(len(acc.forms) - len(measured)),
        min(fills) if fills else NAN,
        _median(fills),
        min(checkout_fills) if checkout_fills else NAN,
        _median(keys),
        max(rates) if rates else NAN,
        float(sum(f[3] for f in measured if f[3] is not None)),
        _median(pointers),
        (sum(1 for p in pointers if p == 0) / len(pointers)) if pointers else NAN,
        _median(focus),
    ]

    sessions = max(len(acc.sessions), 1)
    actions = acc.holds + acc.entries + acc.orders
    if acc.signup is not None and acc.first_action is not None:
        age = (acc.first_action - acc.signup) / 3600.0
    else:
        age = NAN
    logins = acc.login_ok + acc.login_fail
    queue_to_hold = NAN
    if acc.queue_ts and acc.hold_ts:
        first_queue = min(acc.queue_ts)
        later = [t - first_queue for t in acc.hold_ts if t >= first_queue]
        queue_to_hold = min(later) if later else NAN
    identity = [
        0.0 if acc.signup is None else 1.0,
        age,
        (acc.last_ts - acc.first_ts) / 3600.0 if acc.stamps else 0.0,
        float(len(acc.sessions)),
        float(len(acc.devices)),
        float(len(acc.ips)),
        float(len(acc.uas)),
        len(acc.ips) / sessions,
        len(acc.devices) / sessions,
        1.0 if any(is_automation_ua(ua) for ua in acc.uas) else 0.0,
        float(acc.login_fail),
        acc.login_fail / logins if logins else NAN,
        float(acc.page_views),
        acc.page_views / actions if actions else NAN,
        queue_to_hold,
        acc.phone_missing,
    ]

    purchases = [
        float(acc.holds),
        acc.hold_fail / acc.holds if acc.holds else NAN,
        _mean(acc.hold_qty),
        float(max(acc.hold_qty)) if acc.hold_qty else NAN,
        float(acc.orders),
        float(acc.tickets),
        float(len(acc.order_perfs)),
        float(len(acc.order_events)),
        float(acc.entries),
        float(len(acc.entry_perfs)),
        float(len(acc.entry_events)),
        _mean(acc.entry_qty),
        float(acc.payments),
        float(acc.pay_fail),
        float(len(acc.decline_codes)),
        float(len(acc.cards)),
        float(acc.transfers_out),
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
            if ip_accounts.get(value, len(m)) > IP_LINK_MAX_ACCOUNTS:
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


def extract(events: Iterable[Mapping[str, Any]]) -> FeatureTable:
    """Features for every account in ``events`` (including accounts only named as recipients)."""
    return FeatureBuilder().add_many(events).build()

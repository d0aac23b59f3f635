"""Behaviour-log simulator: fans and scalpers around a lottery and a first-come on-sale.

Writes ``log.jsonl`` and ``labels.csv`` in the behaviour-log v1 format. Deterministic per seed.
Every population draws its identifiers (accounts, sessions, devices, IPs, cards) from the same
generators, so nothing but behaviour tells them apart. Assumptions: docs/risk-simulator.md.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DAY = 86400.0
HOUR = 3600.0

BROWSER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{m} Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{m} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.{m} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
]
AUTOMATION_UAS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/{v}.0.0.0 Safari/537.36",
    "python-requests/2.{m}.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
]
EMAIL_DOMAINS = ["gmail.com", "yahoo.com.hk", "outlook.com", "hotmail.com", "icloud.com",
                 "netvigator.com", "protonmail.com", "ymail.com"]
DECLINES = ["insufficient_funds", "do_not_honor", "card_declined", "expired_card",
            "incorrect_cvc", "authentication_required"]
PHONE_COUNTRIES = ["+852"] * 8 + ["+853", "+86", "+886", "+65", "+44"]


@dataclass(frozen=True)
class Scenario:
    """Population shares and behaviour knobs. ``hard`` moves every knob towards overlap."""

    name: str
    adversary_share: float
    fan_mix: dict[str, float]
    adversary_mix: dict[str, float]
    fan_think_s: tuple[float, float]          # lognormal median and sigma of human gaps
    stealth_think_s: tuple[float, float]
    stealth_rotates_device: float             # probability a stealth bot changes device per session
    stealth_card_ring: tuple[int, int]        # accounts per shared card among stealth bots
    stealth_transfer: float                   # share of stealth bots that hand tickets on
    farm_accounts_per_worker: tuple[int, int]
    farm_shares_card: float
    farm_on_cgnat: float
    collector_fan_in: tuple[int, int]
    bot_entry_perfs: tuple[int, int]
    fan_friend_transfer: float
    p_win: float
    stealth_max_quantity: float
    # Platform and measurement: these move between deployments, so the detector must not
    # depend on them (varied per seed in the ``varied`` scenario).
    max_qty: int = 4
    lottery_days: tuple[float, float] = (2.0, 5.0)
    queue_wait_s: float = 600.0
    null_telemetry: float = 0.02
    null_device: float = 0.0
    ipv6_share: float = 0.12
    fan_autofill: float = 0.1
    fan_speed: tuple[float, float] = (0.6, 1.6)
    naive_pace: tuple[float, float] = (0.15, 0.9)
    bot_stealth: tuple[float, float] = (0.5, 1.0)
    # Of the ring accounts that hand tickets on, the share that resell them to fans (one or
    # two tickets to each of several buyers) instead of feeding a collector.
    resale_share: float = 0.2
    # Probability that a careful bot copies the fans' pace, forms and browsing exactly (a
    # recorded human replayed, or a person in the loop): then only what it does gives it away.
    mimicry: float = 0.0
    # Share of visits whose pages before the login are logged as anonymous (account null), as
    # a platform that only knows the account after login writes them.
    anon_prelogin: float = 0.5
    # Hold attempts per round at a sold-out on-sale: each ring draws its own upper bound from
    # this range (a script retries until it gets something; a person gives up sooner).
    bot_retries: tuple[int, int] = (1, 12)
    # A careful bot's tells are drawn one by one, not as a package: the share of bots whose
    # requests come machine-fast even though their forms look human (and the other way round).
    bot_fast_pace: float = 0.3
    # Share of stealth rings whose accounts each pay with their own card (nothing shared).
    own_card_rings: float = 0.3
    # Accounts a lone human scalper runs (their own and relatives').
    scalper_accounts: tuple[int, int] = (1, 6)
    # Share of households that also buy for friends and hand tickets on.
    household_gives: float = 0.15
    # Share of fans who enter the lottery for every performance to raise their chances.
    fan_enter_all: float = 0.04
    # How sold out the first-come sale is: scales every hold's chance there (1 = the standard
    # odds; 0.1 = nearly every attempt fails, and most rings that try hard get nothing).
    sale_odds: float = 1.0
    # How the big show is sold: a lottery then a first-come sale of what is left ("both"), a
    # first-come sale only, or a lottery only. A detector trained on one format only learns
    # that the other's absence is normal (every bot entering a lottery, say).
    sale_format: str = "both"


STANDARD = Scenario(
    name="standard",
    adversary_share=0.15,
    fan_mix={"regular": 0.34, "household": 0.12, "mobile_cgnat": 0.11, "campus": 0.05,
             "autofill": 0.08, "keyboard_only": 0.03, "new_for_show": 0.08, "buys_for_friends": 0.07,
             "frantic": 0.03, "failed_payment": 0.03, "privacy": 0.02, "lurker": 0.08,
             "receiver": 0.08},
    adversary_mix={"naive_bot": 0.18, "stealth_bot": 0.24, "human_farm": 0.18,
                   "aged_sleeper": 0.14, "collector": 0.05, "lottery_flooder": 0.08,
                   "human_scalper": 0.06, "card_tester": 0.04, "takeover": 0.05},
    fan_think_s=(7.0, 1.0),
    stealth_think_s=(3.0, 0.35),
    stealth_rotates_device=0.8,
    stealth_card_ring=(3, 8),
    stealth_transfer=0.6,
    farm_accounts_per_worker=(3, 8),
    farm_shares_card=0.8,
    farm_on_cgnat=0.1,
    collector_fan_in=(8, 30),
    bot_entry_perfs=(3, 6),
    fan_friend_transfer=0.8,
    p_win=0.3,
    stealth_max_quantity=0.9,
)

HARD = Scenario(
    name="hard",
    adversary_share=0.1,
    fan_mix={"regular": 0.22, "household": 0.14, "mobile_cgnat": 0.14, "campus": 0.08,
             "autofill": 0.12, "keyboard_only": 0.04, "new_for_show": 0.08, "buys_for_friends": 0.08,
             "frantic": 0.05, "failed_payment": 0.04, "privacy": 0.04, "lurker": 0.04,
             "receiver": 0.08},
    adversary_mix={"naive_bot": 0.04, "stealth_bot": 0.30, "human_farm": 0.20,
                   "aged_sleeper": 0.12, "collector": 0.04, "lottery_flooder": 0.08,
                   "human_scalper": 0.12, "card_tester": 0.02, "takeover": 0.08},
    fan_think_s=(4.0, 1.2),
    stealth_think_s=(6.0, 0.8),
    stealth_rotates_device=0.3,
    stealth_card_ring=(1, 3),
    stealth_transfer=0.5,
    farm_accounts_per_worker=(2, 4),
    farm_shares_card=0.4,
    farm_on_cgnat=0.5,
    collector_fan_in=(4, 14),
    bot_entry_perfs=(1, 4),
    fan_friend_transfer=0.9,
    p_win=0.15,
    stealth_max_quantity=0.6,
    max_qty=6,
    lottery_days=(5.0, 10.0),
    queue_wait_s=1800.0,
    null_telemetry=0.08,
    null_device=0.05,
    ipv6_share=0.35,
    fan_autofill=0.25,
    fan_speed=(0.4, 1.3),
    naive_pace=(0.6, 2.0),
    bot_stealth=(0.7, 1.0),
    resale_share=0.5,
    mimicry=0.5,
    anon_prelogin=1.0,
    bot_retries=(1, 8),
    bot_fast_pace=0.2,
    own_card_rings=0.5,
    scalper_accounts=(1, 4),
    household_gives=0.2,
    fan_enter_all=0.06,
    sale_odds=0.5,
)


SALE_FORMATS = ("both", "first_come", "lottery")


def varied(seed: int) -> Scenario:
    """A scenario drawn per seed around the standard one: every knob, mix and scale moves.

    Training on many of these teaches the model what holds across platforms rather than one
    simulator's constants; the ``hard`` scenario stays out of training for evaluation.
    """
    r = random.Random(f"varied-{seed}")

    def mix(base: dict[str, float]) -> dict[str, float]:
        return {k: v * r.uniform(0.3, 2.0) for k, v in base.items()}

    lo_card = r.randint(1, 3)
    return replace(
        STANDARD, name=f"varied-{seed}",
        adversary_share=r.uniform(0.03, 0.35),
        fan_mix=mix(STANDARD.fan_mix), adversary_mix=mix(STANDARD.adversary_mix),
        fan_think_s=(r.uniform(3.0, 15.0), r.uniform(0.7, 1.3)),
        stealth_think_s=(r.uniform(1.5, 8.0), r.uniform(0.3, 0.9)),
        stealth_rotates_device=r.uniform(0.2, 0.9),
        stealth_card_ring=(lo_card, lo_card + r.randint(0, 7)),
        stealth_transfer=r.uniform(0.3, 0.9),
        farm_accounts_per_worker=(2, r.randint(3, 9)),
        farm_shares_card=r.uniform(0.3, 0.9),
        farm_on_cgnat=r.uniform(0.0, 0.6),
        bot_entry_perfs=(1, r.randint(2, 6)),
        p_win=r.uniform(0.1, 0.5),
        stealth_max_quantity=r.uniform(0.5, 1.0),
        max_qty=r.choice([2, 4, 4, 6, 8]),
        lottery_days=(r.uniform(0.5, 3.0), r.uniform(3.0, 12.0)),
        queue_wait_s=r.uniform(60, 3600),
        null_telemetry=r.uniform(0.0, 0.15),
        null_device=r.uniform(0.0, 0.1),
        ipv6_share=r.uniform(0.0, 0.5),
        fan_autofill=r.uniform(0.05, 0.3),
        fan_speed=(r.uniform(0.3, 0.8), r.uniform(1.2, 2.5)),
        naive_pace=(r.uniform(0.05, 0.5), r.uniform(0.6, 2.5)),
        bot_stealth=(r.uniform(0.3, 0.7), 1.0),
        resale_share=r.uniform(0.0, 0.6),
        mimicry=r.uniform(0.0, 0.8),
        anon_prelogin=r.uniform(0.0, 1.0),
        bot_retries=(1, r.randint(2, 30)),
        bot_fast_pace=r.uniform(0.0, 0.7),
        own_card_rings=r.uniform(0.0, 0.8),
        scalper_accounts=(1, r.randint(2, 7)),
        household_gives=r.uniform(0.0, 0.4),
        fan_enter_all=r.uniform(0.0, 0.12),
        sale_odds=r.uniform(0.1, 1.0),
        sale_format=r.choices(SALE_FORMATS, [0.5, 0.3, 0.2])[0],
    )


SCENARIOS = {"standard": STANDARD, "hard": HARD}
SCENARIO_NAMES = ("standard", "hard", "varied")


@dataclass
class Actor:
    """One account and the habits that shape its events."""

    account: str
    label: int
    kind: str
    signup_ts: float | None
    timing: Callable[[], float]
    form: Callable[[str], dict[str, Any]]
    ip: Callable[[], str]
    per_request_ip: bool
    device: Callable[[], str | None]
    ua: Callable[[], str]
    cards: list[str]
    browse_pages: tuple[int, int]
    login_fail: float
    name_hash: str | None = None
    address_hash: str | None = None
    email_domain: str = "gmail.com"
    phone_country: str | None = "+852"
    reaction_s: tuple[float, float] = (4.0, 0.8)
    recipients: list[str] = field(default_factory=list)
    # "collector": tickets go to the ring's collectors; "resale": one or two to each of several
    # fans who bought them elsewhere; "none": kept (resold by handing over the login).
    hand_on: str = "collector"
    pay_fail: float | None = None
    frantic: bool = False
    # Hold attempts per round at a sold-out on-sale, and the gap between two attempts
    # (None: the actor's own pace). Resale: tickets per buyer, and the share resold.
    retries: int = 1
    retry_gap: Callable[[], float] | None = None
    resale_lot: tuple[int, int] = (1, 2)
    resale_share: float = 1.0
    gives_friends: bool = False
    takeover: Actor | None = None   # the attacker's habits, once the account is taken over


class World:
    """Generates one log: ids, IP pools, events and performances, then every population."""

    def __init__(self, *, seed: int, scenario: Scenario) -> None:
        self.rng = random.Random(seed)
        self.sc = scenario
        self.lines: list[tuple[float, str]] = []
        self.labels: dict[str, tuple[int, str]] = {}
        r = self.rng
        # The calendar moves with the seed so that no absolute time means anything.
        self.lottery_open = 1_735_689_600 + r.uniform(0, 400) * DAY
        self.lottery_close = self.lottery_open + r.uniform(*scenario.lottery_days) * DAY
        self.draw_ts = self.lottery_close + r.uniform(0.5, 2) * DAY
        self.sale_ts = self.draw_ts + r.uniform(2, 6) * DAY
        self.end_ts = self.sale_ts + r.uniform(3, 8) * DAY
        self.big_event = self.hexid(10)
        self.big_perfs = [self.hexid(10) for _ in range(r.randint(3, 6))]
        self.other_events = {self.hexid(10): [self.hexid(10) for _ in range(r.randint(1, 3))]
                             for _ in range(r.randint(4, 9))}
        self.prices = {p: r.choice([48000, 68000, 88000, 118000, 158000, 188000])
                       for p in self.big_perfs}
        for perfs in self.other_events.values():
            for p in perfs:
                self.prices[p] = r.choice([18000, 28000, 38000, 58000])
        self.cgnat_ips = [self.public_ip() for _ in range(r.randint(20, 60))]
        self.campus_ips = [self.public_ip() for _ in range(r.randint(3, 8))]
        # Commercial VPN exits: a few addresses shared by privacy-minded fans and bots alike.
        self.vpn_ips = [self.public_ip() for _ in range(r.randint(4, 15))]
        self.name_pool = [self.hexid(16) for _ in range(3000)]
        self.ticket_seq = 0

    # -- identifiers ------------------------------------------------------------------------

    def hexid(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def public_ip(self) -> str:
        r = self.rng
        if r.random() < self.sc.ipv6_share:
            return "2001:{:x}:{:x}:{:x}::{:x}".format(*(r.getrandbits(16) for _ in range(4)))
        first = r.choice([14, 42, 58, 61, 101, 103, 110, 112, 113, 116, 119, 124, 175, 180, 182,
                          202, 203, 210, 218, 219, 220, 223])
        return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def browser_ua(self) -> str:
        r = self.rng
        return r.choice(BROWSER_UAS).format(v=r.randint(118, 131), m=r.randint(0, 6))

    def common_name(self) -> str:
        # Common names collide: many unrelated fans share one name hash.
        return self.name_pool[min(int(self.rng.paretovariate(1.1)) - 1, len(self.name_pool) - 1)]

    # -- behaviour models -------------------------------------------------------------------

    def lognormal_gap(self, median: float, sigma: float) -> Callable[[], float]:
        mu = math.log(median)
        return lambda: min(self.rng.lognormvariate(mu, sigma), 1500.0)

    def human_form(self, *, speed: float, autofill: bool = False,
                   keyboard_only: bool = False,
                   no_telemetry: float | None = None) -> Callable[[str], dict[str, Any]]:
        r = self.rng
        fields = {"signup": 7, "login": 2, "checkout": 6, "lottery_entry": 4}
        blocked = self.sc.null_telemetry if no_telemetry is None else no_telemetry
        # Password managers range from filling fields for a person to click on, to filling
        # and submitting at once (a tenth of a second, no key, no pointer).
        autofill_pace = r.uniform(0.05, 1.0)

        def form(kind: str) -> dict[str, Any]:
            n = fields.get(kind, 4)
            if r.random() < blocked:  # an old browser or blocked script sends no telemetry
                return {"fill_ms": None, "keystrokes": None, "pastes": None,
                        "pointer_moves": None, "focus_changes": None}
            if autofill and kind != "lottery_entry":
                fill = max(80.0, r.lognormvariate(math.log(1800 * n / 4 * autofill_pace), 0.5))
                keys = r.randint(0, 4)
                pastes = r.choice([0, 0, 1])
            else:
                fill = r.lognormvariate(math.log(3500 * n * speed), 0.45)
                keys = max(0, int(r.gauss(9 * n, 3 * n)))
                pastes = 1 if r.random() < 0.15 else 0
            pointer = 0 if keyboard_only else max(0, int(r.lognormvariate(math.log(25 * n), 0.6)))
            if autofill and autofill_pace < 0.2 and kind != "lottery_entry":
                pointer = r.choice([0, 0, 1, 3])
            focus = n + r.randint(0, 3) + (n if keyboard_only else 0)
            return {"fill_ms": int(fill), "keystrokes": keys, "pastes": pastes,
                    "pointer_moves": pointer, "focus_changes": focus}

        return form

    def bot_form(self, *, stealth: float) -> Callable[[str], dict[str, Any]]:
        """``stealth`` 0 is a raw script, 1 a careful imitation of a person."""
        r = self.rng
        fields = {"signup": 7, "login": 2, "checkout": 6, "lottery_entry": 4}
        sends_nothing = stealth < 0.3 and r.random() < 0.5

        def form(kind: str) -> dict[str, Any]:
            n = fields.get(kind, 4)
            if sends_nothing:
                return {"fill_ms": None, "keystrokes": None, "pastes": None,
                        "pointer_moves": None, "focus_changes": None}
            if stealth < 0.3:
                return {"fill_ms": r.randint(40, 600), "keystrokes": r.choice([0, 0, 9 * n]),
                        "pastes": 0, "pointer_moves": 0, "focus_changes": r.randint(0, 1)}
            # Imitations type at an even pace with synthetic mouse paths: plausible, narrower.
            fill = r.uniform(1500, 3000 + 4500 * stealth) * n / 4
            keys = int(9 * n * r.uniform(0.9, 1.1))
            return {"fill_ms": int(fill), "keystrokes": keys,
                    "pastes": 1 if r.random() < 0.3 * stealth else 0,
                    "pointer_moves": int(r.uniform(5, 60 * stealth) * n / 4),
                    "focus_changes": n + (r.randint(0, 2) if stealth > 0.6 else 0)}

        return form

    # -- events -----------------------------------------------------------------------------

    def emit(self, actor: Actor, ts: float, kind: str, session: str, ip: str, device: str | None,
             ua: str, anonymous: bool = False, **fields: Any) -> None:
        event = {"ts": round(ts, 3), "type": kind,
                 "account": None if anonymous else actor.account, "session": session,
                 "ip": ip, "device": device, "ua": ua, **fields}
        self.lines.append((ts, json.dumps(event, separators=(",", ":"))))

    def session(self, actor: Actor, start: float, *, login: bool = True,
                pages: int | None = None, event_id: str | None = None) -> _Session:
        return _Session(self, actor, start, login=login, pages=pages, event_id=event_id)

    def next_ticket(self) -> str:
        self.ticket_seq += 1
        return self.hexid(12)

    def buy(self, s: _Session, perf: str, event_id: str, qty: int, *, hold_success: float,
            pay_fail: float, gap: Callable[[], float] | None = None) -> int:
        """Hold → order → payment(s). Returns tickets bought. ``gap``: time before the hold
        (a retry), instead of the actor's own pace."""
        qty = max(1, min(qty, self.sc.max_qty))
        if s.actor.pay_fail is not None:
            pay_fail = s.actor.pay_fail
        s.step("hold", event_id=event_id, performance_id=perf, quantity=qty,
               success=self.rng.random() < hold_success, check_success=True, gap=gap)
        if not s.last_success:
            return 0
        s.form("checkout")
        order_id = self.hexid(12)
        amount = self.prices[perf] * qty
        s.step("order", order_id=order_id, event_id=event_id, performance_id=perf, quantity=qty,
               amount_minor=amount, currency="HKD")
        cards = s.actor.cards
        for attempt in range(3):
            card = cards[min(attempt, len(cards) - 1)]
            ok = self.rng.random() > pay_fail
            s.step("payment", order_id=order_id, amount_minor=amount, currency="HKD", card_fp=card,
                   success=ok, decline_code=None if ok else self.rng.choice(DECLINES))
            if ok:
                return qty
        return 0

    def transfer(self, s: _Session, to: str, n: int) -> None:
        for _ in range(n):
            s.step("ticket_transfer", ticket_id=self.next_ticket(), to_account=to)

    def label(self, actor: Actor) -> None:
        self.labels[actor.account] = (actor.label, actor.kind)


class _Session:
    """One visit: a session id, an IP policy, a device and a user agent, moving in time."""

    def __init__(self, world: World, actor: Actor, start: float, *, login: bool,
                 pages: int | None, event_id: str | None) -> None:
        self.w = world
        self.actor = actor
        self.t = start
        self.id = world.hexid(16)
        self.ip = actor.ip()
        self.device = actor.device()
        if world.rng.random() < world.sc.null_device:  # cookies blocked, no fingerprint
            self.device = None
        self.ua = actor.ua()
        self.last_success = True
        r = world.rng
        n = pages if pages is not None else r.randint(*actor.browse_pages)
        anonymous = login and r.random() < world.sc.anon_prelogin
        for _ in range(n):
            path_event = event_id or r.choice([world.big_event, *world.other_events])
            self.step("page_view", path=f"/events/{path_event}", event_id=path_event,
                      anonymous=anonymous)
        if login:
            self.form("login")
            while r.random() < actor.login_fail:
                self.step("login", success=False)
                self.form("login")
            self.step("login", success=True)

    def step(self, kind: str, check_success: bool = False, anonymous: bool = False,
             gap: Callable[[], float] | None = None, **fields: Any) -> None:
        self.t += (gap or self.actor.timing)()
        ip = self.actor.ip() if self.actor.per_request_ip else self.ip
        if check_success:
            self.last_success = bool(fields.get("success"))
        self.w.emit(self.actor, self.t, kind, self.id, ip, self.device, self.ua,
                    anonymous=anonymous, **fields)

    def form(self, kind: str) -> None:
        values = self.actor.form(kind)
        # The form takes as long to fill as it says it did.
        self.t += (values["fill_ms"] or 0) / 1000.0
        self.step("form_submit", form=kind, **values)


def _choice_weighted(rng: random.Random, mix: dict[str, float]) -> str:
    return rng.choices(list(mix), weights=list(mix.values()))[0]


class Simulation:
    """Builds populations in the world and plays the lottery, the draw and the on-sale."""

    def __init__(self, *, accounts: int, seed: int, scenario: Scenario) -> None:
        self.w = World(seed=seed, scenario=scenario)
        self.n = accounts
        self.sc = scenario
        self.collectors: list[Actor] = []
        self.receivers: list[Actor] = []
        self._deck: list[Actor] = []
        self.fans: list[Actor] = []

    # -- populations ------------------------------------------------------------------------

    def fan(self, kind: str, *, household: dict[str, Any] | None = None) -> Actor:
        w, r, sc = self.w, self.w.rng, self.sc
        home_ip = w.public_ip()
        devices = [w.hexid(20) for _ in range(r.choice([1, 1, 1, 2, 2, 3]))]
        uas = [w.browser_ua() for _ in devices]
        age_days = r.lognormvariate(math.log(300), 1.1)
        if kind == "new_for_show":
            age_days = r.uniform(0.02, 10)
        signup = w.lottery_open - age_days * DAY
        if kind == "new_for_show" and r.random() < 0.5:
            signup = r.uniform(w.lottery_open, w.lottery_close)
        if kind == "receiver" and r.random() < 0.4:  # made an account to receive a ticket
            signup = r.uniform(w.lottery_open, w.sale_ts)

        def ip() -> str:
            if kind == "privacy":
                return r.choice(w.vpn_ips)
            if kind == "mobile_cgnat" or r.random() < 0.25:
                return r.choice(w.cgnat_ips)
            if kind == "campus" and r.random() < 0.8:
                return r.choice(w.campus_ips)
            return home_ip

        def device() -> str | None:
            if kind == "privacy":  # private windows: a new device id, or none, every visit
                return w.hexid(20) if r.random() < 0.5 else None
            return r.choice(devices)

        median, sigma = sc.fan_think_s
        actor = Actor(
            account=w.hexid(12), label=0, kind=f"fan:{kind}", signup_ts=signup,
            timing=w.lognormal_gap(median * r.uniform(0.6, 1.6), sigma * r.uniform(0.8, 1.2)),
            form=w.human_form(speed=r.uniform(*sc.fan_speed), autofill=kind == "autofill"
                              or r.random() < sc.fan_autofill,
                              keyboard_only=kind == "keyboard_only",
                              no_telemetry=0.7 if kind == "privacy" else None),
            ip=ip, per_request_ip=False, device=device, ua=lambda: r.choice(uas),
            cards=[w.hexid(16) for _ in range(r.randint(2, 3) if kind == "failed_payment"
                                             else 1 + (r.random() < 0.3))],
            browse_pages=(1, 6), login_fail=0.08, name_hash=w.common_name(),
            address_hash=w.hexid(16) if r.random() < 0.9 else None,
            email_domain=r.choice(EMAIL_DOMAINS),
            phone_country=r.choice(PHONE_COUNTRIES) if r.random() < 0.97 else None,
            reaction_s=(r.uniform(3, 12), 0.8),
            pay_fail=r.uniform(0.4, 0.75) if kind == "failed_payment" else None,
            frantic=kind == "frantic",
            # A person pressing "try again" at a sold-out sale: seconds, not tenths.
            retry_gap=w.lognormal_gap(r.uniform(1.5, 4.0), 0.5) if kind == "frantic" else None,
        )
        if household:
            actor.ip = household["ip"]
            actor.cards = household["cards"]
            actor.address_hash = household["address"]
            if household.get("devices"):
                shared = household["devices"]
                actor.device = lambda: r.choice(shared + devices)
        return actor

    def adversary(self, kind: str, operator: dict[str, Any]) -> Actor:
        w, r, sc = self.w, self.w.rng, self.sc
        if kind == "naive_bot":
            ua_template = operator["ua"]
            own_device = w.hexid(20)
            device_policy = operator["device_policy"]
            return Actor(
                account=w.hexid(12), label=1, kind="bot:naive", signup_ts=operator["signup"]
                + r.uniform(0, 3 * HOUR),
                timing=lambda: operator["pace"] + r.uniform(0, 0.08 * operator["pace"] + 0.02),
                # Some scripts replay forms recorded from a person: only the pace is a machine's.
                form=w.human_form(speed=r.uniform(*sc.fan_speed)) if operator["replay"]
                else w.bot_form(stealth=0.0), ip=lambda: r.choice(operator["ips"]),
                per_request_ip=False,
                device=(lambda: operator["device"] if r.random() < 0.7 else w.hexid(20))
                if device_policy == "shared" else (lambda: own_device)
                if device_policy == "own" else (lambda: None),
                ua=lambda: ua_template, cards=[r.choice(operator["cards"])],
                browse_pages=(0, 1), login_fail=0.02, name_hash=w.hexid(16),
                address_hash=r.choice(operator["addresses"]),
                email_domain=operator["domain"], phone_country="+852",
                reaction_s=(0.3, 0.3), retries=operator["retries"],
            )
        if kind in ("stealth_bot", "aged_sleeper", "lottery_flooder"):
            device_keep = w.hexid(20)
            rotate = sc.stealth_rotates_device
            median, sigma = sc.stealth_think_s
            signup = operator["signup"] + r.uniform(0, 5 * DAY)
            if kind == "aged_sleeper":
                signup = w.lottery_open - r.uniform(150, 800) * DAY
            elif kind == "lottery_flooder":  # cheap accounts made in bulk for one lottery
                signup = w.lottery_open - r.uniform(0.1, 4) * DAY
            # Each tell on its own: human-looking forms with a machine's pace, a person's pace
            # with synthetic forms, either, both. Packages would teach the model conjunctions.
            mimic = r.random() < sc.mimicry
            mimic_form = r.random() < sc.mimicry
            fan_median, fan_sigma = sc.fan_think_s
            if r.random() < sc.bot_fast_pace:
                timing = w.lognormal_gap(r.uniform(0.15, 1.2), r.uniform(0.2, 0.8))
            elif mimic:
                timing = w.lognormal_gap(fan_median * r.uniform(0.6, 1.6), fan_sigma)
            else:
                timing = w.lognormal_gap(median * r.uniform(0.8, 1.25), sigma)
            return Actor(
                account=w.hexid(12), label=1,
                kind={"stealth_bot": "bot:stealth", "aged_sleeper": "bot:aged_sleeper",
                      "lottery_flooder": "bot:lottery_flooder"}[kind],
                signup_ts=signup, timing=timing,
                form=w.human_form(speed=r.uniform(*sc.fan_speed)) if mimic_form
                else w.bot_form(stealth=r.uniform(*sc.bot_stealth)),
                ip=w.public_ip if r.random() < 0.6 else (lambda: r.choice(w.cgnat_ips)),
                per_request_ip=r.random() < 0.5 and sc.name == "standard",
                device=lambda: w.hexid(20) if r.random() < rotate else device_keep,
                ua=w.browser_ua, cards=[w.hexid(16) if operator["own_cards"]
                                        else r.choice(operator["cards"])],
                browse_pages=(1, 6) if mimic else (0, 2), login_fail=0.03, name_hash=w.common_name()
                if r.random() < 0.5 else w.hexid(16),
                address_hash=w.hexid(16), email_domain=r.choice(EMAIL_DOMAINS),
                phone_country="+852" if r.random() < 0.9 else None,
                reaction_s=(r.uniform(0.8, 2.5), 0.4), retries=operator["retries"],
                retry_gap=operator["retry_gap"],
            )
        if kind == "human_farm":
            worker = operator["worker"]
            return Actor(
                account=w.hexid(12), label=1, kind="farm:human", signup_ts=worker["signup"]
                + r.uniform(0, 2 * DAY),
                timing=w.lognormal_gap(sc.fan_think_s[0] * 0.6, sc.fan_think_s[1] * 0.8),
                form=w.human_form(speed=r.uniform(0.4, 0.8), autofill=r.random() < 0.5),
                ip=worker["ip"], per_request_ip=False,
                device=lambda: r.choice(worker["devices"]), ua=lambda: worker["ua"],
                cards=[r.choice(operator["cards"])] if r.random() < sc.farm_shares_card
                else [w.hexid(16)],
                browse_pages=(0, 2), login_fail=0.05, name_hash=w.hexid(16),
                address_hash=r.choice(operator["addresses"]) if r.random() < 0.5 else w.hexid(16),
                email_domain=r.choice(EMAIL_DOMAINS), phone_country="+852",
                reaction_s=(r.uniform(1.5, 5), 0.6), retries=operator["retries"],
                retry_gap=w.lognormal_gap(r.uniform(1.0, 4.0), 0.5),
            )
        if kind == "human_scalper":
            person = operator["person"]
            median, sigma = sc.fan_think_s
            return Actor(
                account=w.hexid(12), label=1, kind="scalper:human",
                signup_ts=w.lottery_open - r.uniform(5, 600) * DAY,
                timing=w.lognormal_gap(median * r.uniform(0.5, 1.0), sigma),
                form=w.human_form(speed=r.uniform(0.4, 1.0), autofill=r.random() < 0.5),
                ip=person["ip"], per_request_ip=False,
                device=lambda: r.choice(person["devices"]), ua=lambda: r.choice(person["uas"]),
                cards=[w.hexid(16) if person["own_cards"] else r.choice(person["cards"])],
                browse_pages=(0, 4), login_fail=0.05,
                name_hash=w.common_name(), address_hash=person["address"]
                if r.random() < 0.6 else w.hexid(16), email_domain=r.choice(EMAIL_DOMAINS),
                phone_country="+852", reaction_s=(r.uniform(2, 6), 0.6),
                hand_on="none" if r.random() < person["keeps"] else "resale",
                retries=person["retries"], retry_gap=w.lognormal_gap(r.uniform(1.0, 4.0), 0.5),
                resale_lot=person["lot"], resale_share=person["resold"],
            )
        if kind == "card_tester":
            ips = operator["ips"]
            return Actor(
                account=w.hexid(12), label=1, kind="bot:card_tester",
                signup_ts=w.lottery_open + r.uniform(-3, 10) * DAY,
                timing=lambda: r.uniform(0.5, 6), form=w.bot_form(stealth=0.0),
                ip=lambda: r.choice(ips), per_request_ip=True, device=lambda: None,
                ua=lambda: operator["ua"], cards=[w.hexid(16)], browse_pages=(0, 1),
                login_fail=0.1, name_hash=None, address_hash=None,
                email_domain=operator["domain"], phone_country=None, hand_on="none",
            )
        if kind == "takeover":
            # A fan's account with a fan's past; the attacker's habits take over at the sale.
            owner = self.fan("regular")
            owner.label, owner.kind = 1, "bot:takeover"
            new_device, new_ua = w.hexid(20), w.browser_ua()
            owner.takeover = replace(
                owner, timing=w.lognormal_gap(r.uniform(0.8, 3.0), 0.4),
                form=w.bot_form(stealth=r.uniform(*sc.bot_stealth)), ip=w.public_ip,
                per_request_ip=r.random() < 0.3, device=lambda: new_device,
                ua=lambda: new_ua, cards=[w.hexid(16)], browse_pages=(0, 1),
                login_fail=0.6, pay_fail=None, takeover=None)
            return owner
        raise ValueError(kind)

    def collector(self) -> Actor:
        w, r = self.w, self.w.rng
        home = w.public_ip()
        device = w.hexid(20)
        ua = w.browser_ua()
        # Made for the job shortly before, or an old account; a person or a script checking
        # the wallet now and then.
        signup = (w.lottery_open - r.uniform(20, 400) * DAY if r.random() < 0.6
                  else w.lottery_open + r.uniform(-10, 4) * DAY)
        return Actor(
            account=w.hexid(12), label=1, kind="collector", signup_ts=signup,
            timing=w.lognormal_gap(r.uniform(2.0, 15.0), r.uniform(0.5, 1.1)),
            form=w.human_form(speed=r.uniform(0.5, 1.2), autofill=r.random() < 0.6),
            ip=lambda: home, per_request_ip=False,
            device=lambda: device, ua=lambda: ua, cards=[w.hexid(16)], browse_pages=(0, 3),
            login_fail=0.05, name_hash=w.hexid(16), address_hash=w.hexid(16),
        )

    # -- the story --------------------------------------------------------------------------

    def run(self, progress: bool = False) -> World:
        w, r, sc = self.w, self.w.rng, self.sc
        n_adv = round(self.n * sc.adversary_share)
        n_fans = self.n - n_adv
        actors: list[Actor] = []
        fans: list[Actor] = []
        while len(fans) < n_fans:
            kind = _choice_weighted(r, sc.fan_mix)
            if kind == "household":
                size = min(r.randint(2, 4), n_fans - len(fans))
                house_ip = w.public_ip()
                house = {"ip": (lambda ip=house_ip: ip), "cards": [w.hexid(16)],
                         "address": w.hexid(16),
                         "devices": [w.hexid(20)] if r.random() < 0.5 else []}
                gives = r.random() < sc.household_gives
                for _ in range(size):
                    member = self.fan("household", household=house)
                    # Some families buy the limit for friends and hand tickets on, as a
                    # scalper's relatives' accounts do.
                    member.gives_friends = gives and r.random() < 0.7
                    fans.append(member)
            else:
                fans.append(self.fan(kind))
        actors.extend(fans)
        self.receivers = [f for f in fans if f.kind == "fan:receiver"]
        self.fans = fans

        n_collectors = max(1, int(n_adv * sc.adversary_mix["collector"]))
        self.collectors = [self.collector() for _ in range(n_collectors)]
        adversaries: list[Actor] = list(self.collectors)
        while len(adversaries) < n_adv:
            kind = _choice_weighted(r, {k: v for k, v in sc.adversary_mix.items()
                                        if k != "collector"})
            adversaries.extend(self.operation(kind, n_adv - len(adversaries)))
        actors.extend(adversaries)

        iterator: Any = actors
        if progress:
            from tqdm import tqdm

            iterator = tqdm(actors, desc="simulating accounts", unit="acct")
        for actor in iterator:
            w.label(actor)
            self.life(actor, fans)
        return w

    def operation(self, kind: str, room: int) -> list[Actor]:
        """One operator's ring of accounts: they share what that operator has to share."""
        w, r, sc = self.w, self.w.rng, self.sc
        base_signup = w.lottery_open - r.uniform(1, 25) * DAY
        collectors = r.sample(self.collectors, k=min(len(self.collectors), r.randint(1, 2)))
        # How hard the ring's accounts retry a sold-out sale, and how fast (a loop, or the
        # account's own pace).
        retries = r.randint(*sc.bot_retries)
        fast_loop = r.random() < 0.5
        loop_gap = w.lognormal_gap(r.uniform(0.2, 1.5), 0.4) if fast_loop else None
        if kind == "naive_bot":
            size = min(r.randint(10, 60), room)
            op = {"signup": base_signup, "pace": r.uniform(0.15, 0.9),
                  "ips": [w.public_ip() for _ in range(r.randint(1, 4))], "device": w.hexid(20),
                  "ua": r.choice(AUTOMATION_UAS).format(v=r.randint(110, 131), m=r.randint(20, 32)),
                  "cards": [w.hexid(16) for _ in range(max(1, size // r.randint(4, 10)))],
                  "addresses": [w.hexid(16) for _ in range(r.randint(1, 3))],
                  "domain": w.hexid(8) + ".net", "retries": retries,
                  "replay": r.random() < 0.25,
                  "device_policy": r.choices(["shared", "own", "none"], [60, 25, 15])[0]}
            if r.random() < 0.3:  # a spoofed browser user agent
                op["ua"] = w.browser_ua()
            ring = [self.adversary(kind, op) for _ in range(size)]
        elif kind == "human_scalper":
            # Mostly one to three accounts (their own and a relative's or two), sometimes more.
            lo, hi = sc.scalper_accounts
            size = min(r.randint(lo, min(hi, 3)) if r.random() < 0.6 else r.randint(lo, hi), room)
            n_dev = r.randint(1, 3)
            home = w.public_ip()
            mobile = r.random() < 0.3
            op = {"person": {"ip": (lambda: r.choice(w.cgnat_ips) if r.random() < 0.7 else home)
                             if mobile else (lambda: home),
                             "devices": [w.hexid(20) for _ in range(n_dev)],
                             "uas": [w.browser_ua() for _ in range(n_dev)],
                             "cards": [w.hexid(16) for _ in range(r.randint(1, 3))],
                             "own_cards": r.random() < 0.3, "address": w.hexid(16),
                             "retries": r.randint(1, 8), "keeps": r.choice([0.0, 0.0, 0.3]),
                             "lot": (1, r.randint(1, 4)), "resold": r.uniform(0.4, 1.0)}}
            ring = [self.adversary(kind, op) for _ in range(size)]
        elif kind == "card_tester":
            size = min(r.randint(2, 6), room)
            op = {"ips": [w.public_ip() for _ in range(r.randint(1, 20))],
                  "ua": r.choice(AUTOMATION_UAS + BROWSER_UAS).format(v=r.randint(110, 131),
                                                                      m=r.randint(0, 32)),
                  "domain": r.choice(EMAIL_DOMAINS)}
            ring = [self.adversary(kind, op) for _ in range(size)]
        elif kind == "takeover":
            ring = [self.adversary(kind, {}) for _ in range(min(r.randint(2, 10), room))]
        elif kind in ("stealth_bot", "aged_sleeper", "lottery_flooder"):
            size = min(r.randint(8, 50), room)
            per_card = r.randint(*sc.stealth_card_ring)
            op = {"signup": base_signup, "cards": [w.hexid(16) for _ in
                                                   range(max(1, size // per_card))],
                  "own_cards": r.random() < sc.own_card_rings, "retries": retries,
                  "retry_gap": loop_gap}
            ring = [self.adversary(kind, op) for _ in range(size)]
        else:
            size = min(r.randint(6, 40), room)
            op = {"cards": [w.hexid(16) for _ in range(max(1, size // r.randint(3, 6)))],
                  "addresses": [w.hexid(16) for _ in range(r.randint(1, 4))],
                  "retries": max(1, retries // 2)}
            ring = []
            while len(ring) < size:
                shared_ip = r.choice(w.cgnat_ips) if r.random() < sc.farm_on_cgnat else None
                home = w.public_ip()
                worker = {"signup": base_signup + r.uniform(0, 10) * DAY,
                          "ip": (lambda s=shared_ip, h=home: s or h),
                          "devices": [w.hexid(20) for _ in range(r.randint(1, 2))],
                          "ua": w.browser_ua()}
                op["worker"] = worker
                per_worker = r.randint(*sc.farm_accounts_per_worker)
                ring.extend(self.adversary(kind, op) for _ in range(min(per_worker,
                                                                       size - len(ring))))
        # Some rings feed every collector from every account, others one collector each.
        spread = r.random() < 0.5
        for actor in ring:
            if kind in ("human_scalper", "card_tester"):
                continue
            hands_on = kind != "stealth_bot" or r.random() < sc.stealth_transfer
            actor.recipients = ([c.account for c in collectors] if spread
                                else [r.choice(collectors).account]) if hands_on else []
            if not hands_on:
                actor.hand_on = "none"
            elif r.random() < sc.resale_share:
                actor.hand_on = "resale"
        return ring

    def life(self, a: Actor, fans: list[Actor]) -> None:
        w, r, sc = self.w, self.w.rng, self.sc
        is_bot = a.label == 1 and a.kind != "collector"
        signup_in_log = a.signup_ts is not None and a.signup_ts > w.lottery_open - 365 * DAY
        if signup_in_log:
            s = w.session(a, a.signup_ts, login=False, pages=r.randint(0, 2))
            s.form("signup")
            s.step("signup", email_domain=a.email_domain, phone_country=a.phone_country,
                   name_hash=a.name_hash, address_hash=a.address_hash)
        # Browsing before the show: fans look around, sleepers stay dormant; a taken-over
        # account has its owner's ordinary past.
        if a.kind == "bot:aged_sleeper":
            visits = 0
        elif a.kind in ("bot:takeover", "scalper:human"):
            visits = r.randint(1, 3)
        else:
            visits = r.randint(0, 3 if not is_bot else 1)
        for _ in range(visits):
            start = max(a.signup_ts or 0, w.lottery_open - 30 * DAY) + r.uniform(0, 29) * DAY
            if start < w.lottery_open:
                w.session(a, start)
        if a.kind in ("collector", "fan:receiver"):
            for _ in range(r.randint(0, 6) if a.kind == "collector" else r.randint(0, 2)):
                w.session(a, r.uniform(max(w.lottery_open, a.signup_ts or 0), w.end_ts))
            # Some collectors are someone's everyday account too: a small purchase of their own.
            if a.kind == "collector" and r.random() < 0.25:
                event_id = r.choice(list(w.other_events))
                s = w.session(a, r.uniform(w.lottery_open, w.end_ts), event_id=event_id)
                w.buy(s, r.choice(w.other_events[event_id]), event_id, r.randint(1, 2),
                      hold_success=0.9, pay_fail=0.03)
            return
        if a.kind == "fan:lurker":
            return
        if a.kind == "bot:card_tester":
            self.card_test(a)
            return
        if a.takeover is not None:
            self.stuffing(a)
            a = a.takeover

        # Lottery entries.
        tickets_won: list[tuple[str, int]] = []
        top = sc.max_qty
        if is_bot:
            n_entries = min(r.randint(*sc.bot_entry_perfs), len(w.big_perfs))
            if a.kind == "bot:lottery_flooder":
                n_entries = len(w.big_perfs)
            elif a.kind == "bot:takeover":
                n_entries = 0
            qty_of = (lambda: top if r.random() < sc.stealth_max_quantity  # noqa: E731
                      else r.randint(max(1, top // 2), top))
        else:
            n_entries = 0 if r.random() < 0.2 else min(r.choices([1, 2, 3], [70, 24, 6])[0],
                                                     len(w.big_perfs))
            if r.random() < sc.fan_enter_all:  # every date, for a better chance
                n_entries = len(w.big_perfs)
            if a.kind == "fan:buys_for_friends":
                qty_of = lambda: top  # noqa: E731
            else:
                qty_of = lambda: min(top, r.choices([1, 2, 3, 4], [25, 50, 12, 13])[0])  # noqa: E731
        if sc.sale_format == "first_come":
            n_entries = 0
        if n_entries:
            start = max(w.lottery_open, a.signup_ts or 0) + (
                r.uniform(0, 0.3) * DAY if is_bot else r.uniform(0, 1) * (w.lottery_close
                                                                         - w.lottery_open))
            s = w.session(a, start, event_id=w.big_event)
            for perf in r.sample(w.big_perfs, n_entries):
                qty = qty_of()
                s.step("page_view", path=f"/events/{w.big_event}/{perf}", event_id=w.big_event)
                s.form("lottery_entry")
                s.step("lottery_entry", event_id=w.big_event, performance_id=perf, quantity=qty)
                if r.random() < sc.p_win:
                    tickets_won.append((perf, qty))

        bought = 0
        for perf, qty in tickets_won:
            start = w.draw_ts + r.uniform(0.01, 2) * DAY
            s = w.session(a, start, pages=r.randint(0, 2), event_id=w.big_event)
            bought += w.buy(s, perf, w.big_event, qty, hold_success=0.98, pay_fail=0.06)

        # First-come on-sale: those without tickets queue at the opening.
        # With no lottery, the accounts made for one go to the sale like any other bot.
        goes_to_sale = sc.sale_format != "lottery" and (
            (is_bot and (a.kind != "bot:lottery_flooder" or sc.sale_format == "first_come")
             and r.random() < 0.9)
            or (not is_bot and not tickets_won and r.random() < (0.95 if a.frantic else 0.55)))
        if goes_to_sale:
            start = w.sale_ts - r.uniform(60, 900)
            s = w.session(a, start, pages=r.randint(0, 2), event_id=w.big_event)
            s.t = max(s.t, w.sale_ts - 30)
            s.step("queue_join", event_id=w.big_event)
            # Admitted when the queue reaches them.
            s.t = w.sale_ts + r.expovariate(1 / sc.queue_wait_s)
            rounds = r.randint(1, 3) if is_bot else 1
            for _ in range(rounds):
                perf = r.choice(w.big_perfs)
                s.step("page_view", path=f"/events/{w.big_event}/{perf}", event_id=w.big_event)
                s.t += r.lognormvariate(math.log(a.reaction_s[0]), a.reaction_s[1])
                if a.frantic or (is_bot and a.retries > 1):
                    # Sold out in front of them: a frantic fan retries, retries, sometimes in
                    # luck; a script (or a scalper) keeps trying until something is held.
                    tries, odds, pay_fail = ((r.randint(3, 15), 0.12, 0.04) if a.frantic
                                             else (r.randint(1, a.retries), 0.2, 0.08))
                    for k in range(tries):
                        got = w.buy(s, perf, w.big_event, qty_of(),
                                    hold_success=odds * sc.sale_odds,
                                    pay_fail=pay_fail, gap=a.retry_gap if k else None)
                        bought += got
                        if got:
                            break
                    continue
                bought += w.buy(s, perf, w.big_event, qty_of(),
                                hold_success=(0.45 if is_bot else 0.55) * sc.sale_odds,
                                pay_fail=0.08 if is_bot else 0.04)

        # Everyday purchases for other shows.
        extra_buys = (r.choices([0, 1, 2], [65, 28, 7])[0] if not is_bot
                      else r.randint(1, 3) if a.kind == "scalper:human" else r.randint(0, 1))
        for _ in range(extra_buys):
            event_id = r.choice(list(w.other_events))
            perf = r.choice(w.other_events[event_id])
            s = w.session(a, r.uniform(w.lottery_open - 20 * DAY, w.end_ts), event_id=event_id)
            bought += w.buy(s, perf, event_id, qty_of() if is_bot else r.randint(1, 3),
                            hold_success=0.9, pay_fail=0.03)

        # Handing tickets on: scalpers to their collectors or buyers, fans to friends.
        if bought and is_bot and a.hand_on == "resale":
            # Resold in lots to different buyers, over one or a few visits; some kept.
            left = max(1, round(bought * a.resale_share))
            visits = r.randint(1, 3)
            while left > 0:
                s = w.session(a, r.uniform(w.sale_ts + 0.2 * DAY, w.end_ts), pages=0)
                for _ in range(r.randint(1, 4) if visits > 1 else left):
                    n = min(left, r.randint(*a.resale_lot))
                    w.transfer(s, self.next_receiver().account, n)
                    left -= n
                    if left <= 0:
                        break
        elif bought and a.recipients and a.hand_on == "collector":
            s = w.session(a, r.uniform(w.sale_ts + DAY, w.end_ts), pages=0)
            for to in a.recipients:
                w.transfer(s, to, max(1, bought // len(a.recipients)))
        elif bought >= 2 and (a.kind == "fan:buys_for_friends" or a.gives_friends) and \
                r.random() < sc.fan_friend_transfer:
            s = w.session(a, r.uniform(w.sale_ts + DAY, w.end_ts), pages=r.randint(0, 2))
            for _ in range(r.randint(1, 3)):
                # Mostly someone new; now and then a friend who already got one from another.
                friend = self.next_receiver() if r.random() < 0.7 else r.choice(fans)
                if friend.account != a.account:
                    w.transfer(s, friend.account, r.randint(1, 2))
        elif bought >= 2 and a.label == 0 and r.random() < 0.04:
            s = w.session(a, r.uniform(w.sale_ts + DAY, w.end_ts), pages=r.randint(0, 2))
            friend = self.next_receiver()
            if friend.account != a.account:
                w.transfer(s, friend.account, 1)

    def next_receiver(self) -> Actor:
        """Fans who receive tickets, each once: a friend or a resale buyer gets a ticket from
        one person, not from a dozen (that is a collector). Receivers first, then other fans."""
        if not self._deck:
            rest = [f for f in self.fans if f.kind != "fan:receiver"]
            self.w.rng.shuffle(rest)
            receivers = list(self.receivers)
            self.w.rng.shuffle(receivers)
            self._deck = rest + receivers  # popped from the end: receivers go first
        return self._deck.pop()

    def stuffing(self, a: Actor) -> None:
        """Credential stuffing before a takeover: failed logins, then one that works."""
        w, r = self.w, self.w.rng
        bot = a.takeover
        assert bot is not None
        start = w.sale_ts - r.uniform(0.1, 5) * DAY
        s = w.session(bot, start, login=False, pages=0)
        for _ in range(r.randint(1, 4)):
            s.form("login")
            s.step("login", success=False)
        s.form("login")
        s.step("login", success=True)

    def card_test(self, a: Actor) -> None:
        """Small orders paid with one stolen card after another until some go through."""
        w, r = self.w, self.w.rng
        event_id = r.choice(list(w.other_events))
        perf = r.choice(w.other_events[event_id])
        s = w.session(a, r.uniform(w.lottery_open, w.end_ts), pages=r.randint(0, 1),
                      event_id=event_id)
        s.step("hold", event_id=event_id, performance_id=perf, quantity=1, success=True)
        order_id = w.hexid(12)
        amount = w.prices[perf]
        s.step("order", order_id=order_id, event_id=event_id, performance_id=perf, quantity=1,
               amount_minor=amount, currency="HKD")
        for _ in range(r.randint(6, 40)):
            ok = r.random() < 0.06
            s.step("payment", order_id=order_id, amount_minor=amount, currency="HKD",
                   card_fp=w.hexid(16), success=ok, decline_code=None if ok else
                   r.choice([*DECLINES, "stolen_card", "invalid_number", "lost_card"]))


def simulate(*, accounts: int, seed: int, scenario: str = "standard",
             progress: bool = False) -> World:
    if scenario not in SCENARIO_NAMES:
        raise ValueError(f"unknown scenario {scenario!r}: choose {', '.join(SCENARIO_NAMES)}")
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    chosen = varied(seed) if scenario == "varied" else SCENARIOS[scenario]
    return Simulation(accounts=accounts, seed=seed, scenario=chosen).run(progress)


def write(world: World, out: str | Path) -> tuple[Path, Path]:
    """Write ``log.jsonl`` (time order) and ``labels.csv`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log_path, labels_path = out / "log.jsonl", out / "labels.csv"
    world.lines.sort(key=lambda item: item[0])
    with open(log_path, "w", encoding="utf-8") as fh:
        for start in range(0, len(world.lines), 50000):
            fh.write("\n".join(line for _, line in world.lines[start:start + 50000]))
            fh.write("\n")
    with open(labels_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["account", "label", "kind"])
        for account, (label, kind) in world.labels.items():
            writer.writerow([account, label, kind])
    return log_path, labels_path

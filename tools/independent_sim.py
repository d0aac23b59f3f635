#!/usr/bin/env python3
"""Independent behaviour-log generator, written from the log spec alone, to test the detector on unseen traffic.

It shares no code and no assumptions with `smarttickets.risk.simulate` on purpose: the detector is
trained on that simulator, so this generator is only useful as a check if it stays held out
(never train on its output). Standard library only, deterministic per seed.

    python tools/independent_sim.py generate --accounts 20000 --seed 1 --out /tmp/ind1
    smarttickets risk score /tmp/ind1/log.jsonl --out /tmp/ind1/scores.csv
    python tools/independent_sim.py evaluate --scores /tmp/ind1/scores.csv --labels /tmp/ind1/labels.csv

Each seed draws its own "platform": id formats (UUIDs, sequential numbers, e-mail hashes,
prefixed base62), on-sale dates and durations, first-come sales and multi-day lotteries, the
share of adversaries (2 % to 30 %), currency, purchase limit, how often optional data is missing
(null device, null form timings), IPv6 share, line order (sorted, jittered, chunked, shuffled),
unknown event types, extra fields and a few malformed lines.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import ipaddress
import json
import math
import random
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0

FORMS = {  # typed characters and fields of each form, for plausible keystroke counts
    "signup": (70, 7),
    "login": (24, 2),
    "checkout": (34, 5),
    "lottery_entry": (10, 3),
}
FORM_MEDIAN_MS = {"signup": 42000, "login": 7000, "checkout": 24000, "lottery_entry": 14000}

COMMON_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
               "yahoo.com.hk", "netvigator.com", "qq.com", "163.com", "protonmail.com"]
CAMPUS_MAIL = ["connect.hku.hk", "link.cuhk.edu.hk", "connect.ust.hk", "life.hkbu.edu.hk"]
DISPOSABLE_MAIL = ["mailinator.com", "yopmail.com", "tempmail.dev", "guerrillamail.com",
                   "sharklasers.com", "10minutemail.net"]
CATCHALL_MAIL = ["tix-drop.net", "qwmail.xyz", "box-hk.top", "fanmail.store"]
PHONES_LOCAL = ["+852"] * 8 + ["+853", "+86", "+886", "+65", "+44", "+1", "+61"]
PHONES_VIRTUAL = ["+1", "+44", "+48", "+62", "+63", "+84", "+7", "+44", "+1"]

DECLINES_FAN = ["insufficient_funds", "do_not_honor", "expired_card", "authentication_required",
                "card_declined"]
DECLINES_TEST = ["card_declined", "incorrect_cvc", "invalid_number", "stolen_card",
                 "do_not_honor", "incorrect_number", "lost_card"]

ANDROID_MODELS = ["SM-S918B", "SM-A536E", "Pixel 7", "Pixel 8 Pro", "M2101K6G", "CPH2581",
                  "V2203", "SM-G991B", "2201117TY", "RMX3630"]
CHEAP_ANDROID = ["SM-A045F", "Redmi 9A", "RMX3269", "A1601", "V2111", "SM-A125F"]

RESIDENTIAL_FIRST_OCTETS = [1, 14, 27, 36, 42, 49, 58, 59, 60, 61, 101, 103, 110, 111, 112, 113,
                            116, 118, 119, 120, 121, 122, 123, 124, 175, 180, 182, 183, 202,
                            203, 210, 211, 218, 219, 220, 221, 222, 223]
DATACENTER_FIRST_OCTETS = [3, 13, 18, 34, 35, 44, 52, 54, 104, 138, 139, 143, 146, 157, 159,
                           164, 167, 178, 188, 198, 207, 209]
RESIDENTIAL_V6 = ["2400:8500", "2403:c300", "2404:e800", "2001:ee0", "2a02:c7c", "2406:3003"]
MOBILE_V6 = ["2402:7500", "2001:4450", "240e:47c", "2408:8456"]

FAN_KINDS_NOTE = """fan kinds: casual, autofill (password manager), keyboard_only, mobile_cgnat,
campus (thousands behind a few NAT addresses), household (shared card, address, IP, sometimes
device), friend_buyer (buys the limit, transfers to friends), friend (receives transfers),
new_for_show (account made days before), failed_payment, privacy_vpn (datacenter VPN exit, null
device or fresh device every session, null form timings), lurker, frantic (many failed holds),
traveller, resale_buyer (receives tickets from a scalper), lottery_fan, stuffing_target (someone
else tried its password)."""


# -- per-seed platform ----------------------------------------------------------------------


@dataclass
class Config:
    seed: int
    accounts: int
    bad_share: float
    id_style: str
    session_style: str
    device_style: str
    line_order: str
    start: float
    n_events: int
    lottery_share: float
    currency: str
    price_minor: int
    max_qty: int
    null_device: float
    null_timing: float
    ipv6: float
    extras: bool
    unknown_types: bool
    int_ts: bool
    malformed: int
    prelog_days: float
    tz_hours: int
    chrome: int

    @classmethod
    def draw(cls, seed: int, accounts: int, bad_share: float | None) -> Config:
        r = random.Random(f"config-{seed}")
        # 2021-06-01 .. 2027-01-01: on-sale dates well away from any one simulator's epoch.
        start = r.uniform(1622505600, 1798761600)
        currency, price = r.choice([("HKD", (48000, 188000)), ("TWD", (180000, 880000)),
                                    ("JPY", (9800, 22000)), ("USD", (8900, 34900)),
                                    ("SGD", (12800, 36800))])
        return cls(
            seed=seed, accounts=accounts,
            bad_share=bad_share if bad_share is not None else r.choice([0.02, 0.05, 0.12, 0.3]),
            id_style=r.choice(["uuid", "seq", "emailhash", "base62"]),
            session_style=r.choice(["uuid", "hex", "prefixed"]),
            device_style=r.choice(["fp", "uuid", "b64"]),
            line_order=r.choice(["sorted", "jittered", "chunked", "shuffled"]),
            start=start,
            n_events=r.randint(1, 9),
            lottery_share=r.choice([0.0, 0.4, 0.7, 1.0]),
            currency=currency,
            price_minor=r.randint(*price),
            max_qty=r.choice([2, 4, 4, 6]),
            null_device=r.choice([0.0, 0.02, 0.08]),
            null_timing=r.choice([0.0, 0.03, 0.12]),
            ipv6=r.choice([0.0, 0.15, 0.4]),
            extras=r.random() < 0.7,
            unknown_types=r.random() < 0.7,
            int_ts=r.random() < 0.3,
            malformed=r.randint(0, 6),
            prelog_days=r.uniform(3, 40),
            tz_hours=r.choice([8, 8, 9, 0, -5, 1]),
            chrome=100 + int((start - 1622505600) / (365 * DAY) * 9),
        )


class Ids:
    """Opaque ids in the seed's format; sequential ids follow creation order, like a real database."""

    B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def __init__(self, r: random.Random, cfg: Config):
        self.r = r
        self.cfg = cfg
        self.counters: Counter = Counter()
        self.seq_base = r.randint(1000, 9_000_000)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def _b62(self, n: int) -> str:
        return "".join(self.r.choice(self.B62) for _ in range(n))

    def account(self, rank: int, email: str) -> str:
        style = self.cfg.id_style
        if style == "uuid":
            return self._uuid()
        if style == "seq":
            return str(self.seq_base + rank)
        if style == "emailhash":
            return hashlib.sha1(f"{self.cfg.seed}:{email}".encode(), usedforsecurity=False).hexdigest()
        return "usr_" + self._b62(14)

    def session(self) -> str:
        style = self.cfg.session_style
        if style == "uuid":
            return self._uuid()
        if style == "hex":
            return f"{self.r.getrandbits(128):032x}"
        return "sess_" + self._b62(22)

    def device(self) -> str:
        style = self.cfg.device_style
        if style == "fp":
            return f"{self.r.getrandbits(256):064x}"
        if style == "uuid":
            return self._uuid()
        return self._b62(27)

    def thing(self, prefix: str) -> str:
        self.counters[prefix] += 1
        if self.cfg.id_style in ("seq", "emailhash"):
            return f"{prefix}-{self.counters[prefix] + 100000}"
        return self._uuid() if self.r.random() < 0.5 else f"{prefix}_{self._b62(12)}"

    def card(self) -> str:
        return "fp_" + self._b62(16)

    def hash(self) -> str:
        return hashlib.sha256(self._b62(20).encode()).hexdigest()[:40]


class Network:
    """Where requests come from: homes, carriers' NAT pools, campuses, data centres, proxies."""

    def __init__(self, r: random.Random, cfg: Config):
        self.r = r
        self.cfg = cfg
        self.res16 = [(r.choice(RESIDENTIAL_FIRST_OCTETS), r.randrange(256)) for _ in range(60)]
        self.carriers = [[self._v4(self.res16[r.randrange(60)]) for _ in range(r.randint(40, 300))]
                         for _ in range(3)]
        self.campuses = [[self._v4(self.res16[r.randrange(60)]) for _ in range(r.randint(2, 12))]
                         for _ in range(r.randint(1, 3))]
        self.vpn_exits = [self.datacenter_block(r.randint(8, 40)) for _ in range(2)]

    def _v4(self, prefix16: tuple[int, int]) -> str:
        a, b = prefix16
        return f"{a}.{b}.{self.r.randrange(256)}.{self.r.randint(1, 254)}"

    def home_v4(self) -> str:
        return self._v4(self.res16[self.r.randrange(len(self.res16))])

    def home_v6_prefix(self) -> str:
        base = self.r.choice(RESIDENTIAL_V6)  # two groups: the ISP's /32
        return f"{base}:{self.r.randrange(65536):x}:{self.r.randrange(65536):x}"

    def v6_address(self, prefix64: str) -> str:
        # Privacy extensions: a fresh interface id per session inside the household's /64.
        iid = ":".join(f"{self.r.randrange(65536):x}" for _ in range(4))
        return str(ipaddress.IPv6Address(f"{prefix64}:{iid}"))

    def mobile(self, carrier: int) -> str:
        if self.r.random() < self.cfg.ipv6:
            base = MOBILE_V6[carrier % len(MOBILE_V6)]
            return str(ipaddress.IPv6Address(
                f"{base}:{self.r.randrange(65536):x}:"
                + ":".join(f"{self.r.randrange(65536):x}" for _ in range(5))))
        return self.r.choice(self.carriers[carrier])

    def datacenter_block(self, n: int) -> list[str]:
        a = self.r.choice(DATACENTER_FIRST_OCTETS)
        b, c = self.r.randrange(256), self.r.randrange(256)
        return [f"{a}.{b}.{c}.{self.r.randint(2, 250)}" for _ in range(n)]

    def proxy(self) -> str:
        # Residential proxies exit from the same consumer ranges as the fans.
        if self.r.random() < self.cfg.ipv6 * 0.5:
            return self.v6_address(self.home_v6_prefix())
        return self.home_v4()


class Agents:
    """User-Agent strings, with versions around the seed's date."""

    def __init__(self, r: random.Random, cfg: Config):
        self.r = r
        self.cv = cfg.chrome

    def _chrome(self) -> int:
        return self.cv - self.r.choice([0, 0, 0, 1, 1, 2, 3, 5])

    def desktop(self) -> str:
        cv = self._chrome()
        return self.r.choice([
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{cv}.0.0.0 Safari/537.36",
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{cv}.0.0.0 Safari/537.36",
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{cv}.0.0.0 Safari/537.36",
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{self.r.randint(15, 18)}.{self.r.randint(0, 6)} Safari/605.1.15",
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{cv - 3}.0) Gecko/20100101 Firefox/{cv - 3}.0",
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{cv}.0.0.0 Safari/537.36 Edg/{cv}.0.{self.r.randint(1000, 2999)}.{self.r.randint(10, 99)}",
            f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{cv}.0.0.0 Safari/537.36",
        ])

    def mobile(self, cheap: bool = False) -> str:
        cv = self._chrome()
        ios = f"{self.r.randint(15, 18)}_{self.r.randint(0, 6)}"
        model = self.r.choice(CHEAP_ANDROID if cheap else ANDROID_MODELS)
        av = self.r.randint(10, 14)
        options = [
            f"Mozilla/5.0 (Linux; Android {av}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{cv}.0.0.0 Mobile Safari/537.36",
            f"Mozilla/5.0 (Linux; Android {av}; {model}) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/{self.r.randint(20, 25)}.0 Chrome/{cv - 6}.0.0.0 Mobile Safari/537.36",
        ]
        if not cheap:
            options += [
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{ios.split('_')[0]}.0 Mobile/15E148 Safari/604.1",
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{ios.split('_')[0]}.0 Mobile/15E148 Safari/604.1",
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram {self.r.randint(250, 330)}.0.0.{self.r.randint(10, 40)}.{self.r.randint(100, 120)} (iPhone14,5; iOS {ios}; zh_HK; zh-Hant-HK)",
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.{self.r.randint(30, 50)}(0x1800{self.r.randint(2000, 3000)}) NetType/WIFI Language/zh_HK",
            ]
        return self.r.choice(options)

    def any(self) -> str:
        return self.mobile() if self.r.random() < 0.55 else self.desktop()

    def headless(self) -> str:
        return self.r.choice([
            f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/{self.cv - 2}.0.0.0 Safari/537.36",
            f"python-requests/2.{self.r.randint(25, 32)}.0",
            "Go-http-client/2.0",
            f"axios/1.{self.r.randint(3, 7)}.{self.r.randint(0, 9)}",
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{self.cv - 14}.0.0.0 Safari/537.36",
        ])


# -- actors ---------------------------------------------------------------------------------


@dataclass
class Account:
    kind: str
    label: int
    created: float
    email_domain: str
    phone: str | None
    name_hash: str | None
    address_hash: str | None
    styles: dict[str, str]
    cards: list[str]
    ip: Callable[[], str]
    devices: list[str | None]
    uas: list[str]
    fresh_device_each_session: bool = False
    rotate_ip_per_request: bool = False
    signup_in_log: bool = True
    id: str = ""
    email: str = ""
    ring: int | None = None
    paid_ok: float = 0.97
    tickets: list[str] = field(default_factory=list)
    after_lottery: Callable | None = None


@dataclass
class Session:
    sid: str
    account: Account | None
    ip: str
    device: str | None
    ua: str
    rotate: Callable[[], str] | None = None


@dataclass
class Sale:
    event_id: str
    perfs: list[str]
    mode: str  # "fcfs" or "lottery"
    opens: float
    closes: float  # lottery: entries close; fcfs: when the queue stops admitting
    pay_until: float
    price: int
    popularity: float
    drain_s: float


@dataclass
class Intent:
    account: Account
    sale: Sale
    perf: str
    qty: int
    join: float
    retries: int
    retry_gap: Callable[[], float]
    after: Callable[[Intent, float, list[str]], None] | None
    session: Session
    bot: bool
    admitted: float = 0.0
    got: int = 0


class World:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.r = random.Random(f"world-{cfg.seed}")
        self.ids = Ids(random.Random(f"ids-{cfg.seed}"), cfg)
        self.net = Network(self.r, cfg)
        self.agents = Agents(self.r, cfg)
        self.lines: list[dict] = []
        self.accounts: list[Account] = []
        self.intents: list[Intent] = []
        self.lottery_entries: list[tuple[Account, Sale, str, int, Session, bool]] = []
        self.sales: list[Sale] = []
        self.end = cfg.start
        self.receivers: list[Account] = []

    # -- primitives ---------------------------------------------------------------------

    def lognorm(self, median: float, sigma: float) -> float:
        return median * math.exp(self.r.gauss(0.0, sigma))

    def emit(self, ts: float, type_: str, s: Session, *, anonymous: bool = False, **fields) -> None:
        ev = {"ts": ts, "type": type_,
              "account": None if anonymous or s.account is None else s.account.id,
              "session": s.sid, "ip": s.rotate() if s.rotate else s.ip,
              "device": s.device, "ua": s.ua}
        ev.update(fields)
        self.lines.append(ev)
        self.end = max(self.end, ts)

    def session(self, a: Account, *, ip: str | None = None, device: str | None = None,
                ua: str | None = None) -> Session:
        if device is None:
            if a.fresh_device_each_session:
                device = None if self.r.random() < 0.5 else self.ids.device()
            else:
                device = self.r.choice(a.devices)
        if device is not None and self.r.random() < self.cfg.null_device:
            device = None
        return Session(self.ids.session(), a, ip or a.ip(), device,
                       ua or self.r.choice(a.uas), a.ip if a.rotate_ip_per_request else None)

    def timing(self, style: str, form: str) -> dict:
        chars, nfields = FORMS[form]
        median = FORM_MEDIAN_MS[form]
        r = self.r
        if style == "none" or (style not in ("bot_api",) and r.random() < self.cfg.null_timing):
            return {"fill_ms": None, "keystrokes": None, "pastes": None, "pointer_moves": None,
                    "focus_changes": None}
        if style == "bot_api":
            return {"fill_ms": None, "keystrokes": None, "pastes": None, "pointer_moves": None,
                    "focus_changes": None} if r.random() < 0.6 else {
                "fill_ms": r.randint(15, 350), "keystrokes": 0, "pastes": 0, "pointer_moves": 0,
                "focus_changes": r.choice([0, 0, nfields])}
        if style == "typist":
            fill = self.lognorm(median, 0.6)
            return {"fill_ms": int(fill), "keystrokes": int(chars * r.uniform(0.85, 1.5)),
                    "pastes": int(r.random() < 0.15) + int(r.random() < 0.05),
                    "pointer_moves": int(self.lognorm(60 * fill / median, 0.7)),
                    "focus_changes": nfields + r.randint(-1, 4)}
        if style == "autofill":
            return {"fill_ms": int(max(120, self.lognorm(median * 0.06, 0.7))),
                    "keystrokes": r.choice([0, 0, 0, 1, 2, 5]), "pastes": 0,
                    "pointer_moves": r.randint(0, 25), "focus_changes": r.randint(0, 3)}
        if style == "keyboard":
            fill = self.lognorm(median * 1.6, 0.5)
            return {"fill_ms": int(fill), "keystrokes": int(chars * r.uniform(1.1, 1.7)) + nfields * 2,
                    "pastes": int(r.random() < 0.1), "pointer_moves": 0,
                    "focus_changes": int(nfields * r.uniform(1.5, 3.5))}
        if style == "touch":
            fill = self.lognorm(median * 1.2, 0.6)
            return {"fill_ms": int(fill), "keystrokes": int(chars * r.uniform(0.4, 1.2)),
                    "pastes": int(r.random() < 0.25), "pointer_moves": r.choice([0, 0, 1, 2, 4, 9]),
                    "focus_changes": nfields + r.randint(0, 3)}
        if style == "slow":  # elderly or unfamiliar users: long, hesitant, many corrections
            fill = self.lognorm(median * 3.5, 0.5)
            return {"fill_ms": int(fill), "keystrokes": int(chars * r.uniform(1.4, 2.6)),
                    "pastes": 0, "pointer_moves": int(self.lognorm(250, 0.5)),
                    "focus_changes": nfields + r.randint(2, 10)}
        if style == "bot_stealth":  # synthetic "human" timings: plausible but too tidy
            return {"fill_ms": int(self.lognorm(median * 0.7, 0.2)), "keystrokes": chars,
                    "pastes": 0, "pointer_moves": int(self.lognorm(35, 0.25)),
                    "focus_changes": nfields}
        if style == "farm":  # practised humans pasting credentials from a sheet
            fill = self.lognorm(median * 0.35, 0.4)
            return {"fill_ms": int(fill), "keystrokes": int(chars * r.uniform(0.2, 0.8)),
                    "pastes": r.randint(1, 3), "pointer_moves": int(self.lognorm(20, 0.5)),
                    "focus_changes": nfields + r.randint(0, 2)}
        if style == "replay":  # one recorded human session replayed for every account
            base = self.lognorm(median, 0.05)
            return {"fill_ms": int(base), "keystrokes": int(chars * 1.2), "pastes": 0,
                    "pointer_moves": 47, "focus_changes": nfields + 1}
        raise ValueError(style)

    def page_views(self, s: Session, t: float, paths: list[str], gap: Callable[[], float],
                   event_id: str | None = None, anonymous: bool = False) -> float:
        for p in paths:
            self.emit(t, "page_view", s, anonymous=anonymous, path=p,
                      event_id=event_id if p.startswith("/events/") else None)
            t += gap()
        return t

    def human_gap(self) -> float:
        return max(0.4, self.lognorm(9.0, 0.9))

    def form(self, s: Session, t: float, form: str, style: str) -> float:
        timing = self.timing(style, form)
        if timing["fill_ms"] is not None:
            t += timing["fill_ms"] / 1000.0
        self.emit(t, "form_submit", s, form=form, **timing)
        return t + self.r.uniform(0.05, 0.6)

    # -- flows --------------------------------------------------------------------------

    def signup(self, a: Account, s: Session, t: float, browse: int, gap: Callable[[], float]) -> float:
        paths = [*["/", "/events/", "/events/"][: max(0, browse)], "/accounts/signup/"]
        t = self.page_views(s, t, paths, gap, anonymous=True)
        t = self.form(s, t, "signup", a.styles["signup"])
        self.emit(t, "signup", s, email_domain=a.email_domain, phone_country=a.phone,
                  name_hash=a.name_hash, address_hash=a.address_hash)
        return t + gap()

    def login(self, a: Account, s: Session, t: float, fails: int = 0) -> float:
        t = self.page_views(s, t, ["/accounts/login/"], lambda: 0.5, anonymous=True)
        for _ in range(fails):
            t = self.form(s, t, "login", a.styles["login"])
            self.emit(t, "login", s, success=False)
            t += self.r.uniform(2, 20)
        t = self.form(s, t, "login", a.styles["login"])
        self.emit(t, "login", s, success=True)
        return t + self.r.uniform(0.3, 2)

    def browse(self, a: Account, t: float, n: int, event: str | None = None,
               login: bool = True) -> float:
        s = self.session(a)
        if login:
            t = self.login(a, s, t, fails=int(self.r.random() < 0.05))
        paths = []
        for _ in range(n):
            x = self.r.random()
            if x < 0.5 and event:
                paths.append(f"/events/{event}/")
            elif x < 0.7:
                paths.append("/events/")
            elif x < 0.8:
                paths.append("/tickets/wallet/")
            elif x < 0.9:
                paths.append("/")
            else:
                paths.append(self.r.choice(["/help/", "/accounts/profile/", "/events/?q=tour",
                                            "/venues/", "/lottery/"]))
        return self.page_views(s, t, paths, self.human_gap, event_id=event)

    def pay(self, a: Account, s: Session, t: float, order_id: str, amount: int, *,
            bot: bool) -> tuple[float, bool]:
        cards = list(a.cards)
        attempts = 0
        while True:
            card = cards[0] if attempts == 0 else self.r.choice(cards)
            ok = self.r.random() < a.paid_ok
            self.emit(t, "payment", s, order_id=order_id, amount_minor=amount,
                      currency=self.cfg.currency, card_fp=card, success=ok,
                      decline_code=None if ok else self.r.choice(DECLINES_FAN))
            attempts += 1
            if ok:
                return t, True
            if attempts >= (4 if bot else 3) or self.r.random() < 0.25:
                return t, False
            t += self.r.uniform(4, 30) if bot else self.lognorm(60, 0.8)

    def checkout(self, it: Intent, t: float, qty: int) -> tuple[float, list[str]]:
        a, s, sale = it.account, it.session, it.sale
        t = self.form(s, t, "checkout", a.styles["checkout"])
        order_id = self.ids.thing("ord")
        amount = sale.price * qty
        self.emit(t, "order", s, order_id=order_id, event_id=sale.event_id,
                  performance_id=it.perf, quantity=qty, amount_minor=amount,
                  currency=self.cfg.currency)
        t += self.r.uniform(1.5, 6) if it.bot else self.lognorm(25, 0.6)
        t, ok = self.pay(a, s, t, order_id, amount, bot=it.bot)
        if not ok:
            return t, []
        tickets = [self.ids.thing("tkt") for _ in range(qty)]
        a.tickets.extend(tickets)
        return t, tickets

    def transfer(self, a: Account, t: float, tickets: list[str], to: list[Account],
                 s: Session | None = None) -> float:
        s = s or self.session(a)
        t = self.page_views(s, t, ["/tickets/wallet/"], lambda: self.r.uniform(2, 20))
        for i, ticket in enumerate(tickets):
            dest = to[i % len(to)]
            self.emit(t, "ticket_transfer", s, ticket_id=ticket, to_account=dest.id)
            dest.tickets.append(ticket)
            t += self.r.uniform(3, 40)
            if a in to:  # never transfer to oneself
                raise AssertionError("self transfer")
        return t

    # -- sale mechanics -----------------------------------------------------------------

    def resolve_fcfs(self, sale: Sale, intents: list[Intent]) -> None:
        """Randomise the pre-queue (a fair waiting room), then admit first-come, first-served."""
        if not intents:
            return
        demand = sum(i.qty for i in intents)
        capacity = max(2, int(demand / self.r.uniform(1.3, 6.0)))
        keyed = []
        for it in intents:
            key = sale.opens + self.r.random() * 2.0 if it.join <= sale.opens else it.join + 2.0
            keyed.append((key, self.r.random(), it))
        keyed.sort(key=lambda x: (x[0], x[1]))
        rate = len(keyed) / sale.drain_s
        for pos, (key, _, it) in enumerate(keyed):
            it.admitted = max(key + self.r.uniform(1, 8), sale.opens + pos / rate)
            take = min(it.qty, capacity) if not it.bot else (it.qty if capacity >= it.qty else 0)
            it.got = take
            capacity -= take

    def play_fcfs(self, it: Intent) -> None:
        s, sale = it.session, it.sale
        self.emit(it.join, "queue_join", s, event_id=sale.event_id)
        t = it.admitted
        t = self.page_views(s, t, [f"/events/{sale.event_id}/performances/{it.perf}/"],
                            lambda: self.r.uniform(0.2, 1.0) if it.bot else self.human_gap(),
                            event_id=sale.event_id)
        if it.got == 0:
            tries = it.retries + 1
            for _ in range(tries):
                self.emit(t, "hold", s, event_id=sale.event_id, performance_id=it.perf,
                          quantity=it.qty, success=False)
                t += it.retry_gap()
            return
        if it.got < it.qty and not it.bot:
            self.emit(t, "hold", s, event_id=sale.event_id, performance_id=it.perf,
                      quantity=it.qty, success=False)
            t += self.human_gap()
        self.emit(t, "hold", s, event_id=sale.event_id, performance_id=it.perf,
                  quantity=it.got, success=True)
        t += self.r.uniform(0.5, 2) if it.bot else self.lognorm(12, 0.5)
        t, tickets = self.checkout(it, t, it.got)
        if tickets and it.after:
            it.after(it, t, tickets)

    def play_lottery(self) -> None:
        by_sale: dict[int, list] = defaultdict(list)
        for entry in self.lottery_entries:
            by_sale[id(entry[1])].append(entry)
        for entries in by_sale.values():
            sale = entries[0][1]
            demand = sum(e[3] for e in entries)
            capacity = max(2, int(demand / self.r.uniform(1.5, 8.0)))
            order = list(range(len(entries)))
            self.r.shuffle(order)
            won_accounts: set[int] = set()
            for idx in order:
                a, _, perf, qty, _s, bot = entries[idx]
                if id(a) in won_accounts or capacity < qty:
                    continue
                won_accounts.add(id(a))
                capacity -= qty
                t = sale.closes + self.r.uniform(0.5, 6) * HOUR
                if not bot:
                    t += self.lognorm(10 * HOUR, 1.0)
                t = min(t, sale.pay_until - HOUR)
                s2 = self.session(a)
                t = self.login(a, s2, t)
                t = self.page_views(s2, t, ["/lottery/results/", f"/events/{sale.event_id}/"],
                                    lambda b=bot: self.r.uniform(0.3, 1.5) if b else self.human_gap(),
                                    event_id=sale.event_id)
                self.emit(t, "hold", s2, event_id=sale.event_id, performance_id=perf,
                          quantity=qty, success=True)
                it = Intent(a, sale, perf, qty, t, 0, lambda: 1.0, None, s2, bot)
                t, tickets = self.checkout(it, t + (1 if bot else self.lognorm(20, 0.5)), qty)
                if tickets and a.after_lottery:
                    a.after_lottery(it, t, tickets)

    def enter_lottery(self, a: Account, s: Session, t: float, sale: Sale, perfs: list[str],
                      qty: int, bot: bool) -> float:
        t = self.page_views(s, t, ["/lottery/", f"/events/{sale.event_id}/"],
                            lambda: self.r.uniform(0.3, 2) if bot else self.human_gap(),
                            event_id=sale.event_id)
        for perf in perfs:
            t = self.form(s, t, "lottery_entry", a.styles["lottery_entry"])
            self.emit(t, "lottery_entry", s, event_id=sale.event_id, performance_id=perf,
                      quantity=qty)
            self.lottery_entries.append((a, sale, perf, qty, s, bot))
            t += self.r.uniform(0.5, 3) if bot else self.human_gap()
        return t


# -- populations ----------------------------------------------------------------------------

FAN_MIX = [
    ("casual", 26), ("autofill", 11), ("mobile_cgnat", 13), ("campus", 7), ("household", 8),
    ("friend_buyer", 6), ("new_for_show", 6), ("failed_payment", 4), ("keyboard_only", 2),
    ("privacy_vpn", 2), ("lurker", 5), ("frantic", 3), ("traveller", 1), ("slow_typist", 2),
    ("stuffing_target", 1), ("lottery_fan", 3),
]
BAD_MIX = [
    ("naive_bot", 18), ("stealth_bot", 24), ("human_farm", 14), ("sleeper", 14),
    ("card_tester", 4), ("account_takeover", 4), ("lottery_flooder", 12), ("human_scalper", 10),
]


def pick(r: random.Random, mix: list[tuple[str, int]]) -> str:
    total = sum(w for _, w in mix)
    x = r.random() * total
    for name, w in mix:
        x -= w
        if x < 0:
            return name
    return mix[-1][0]


class Builder:
    """Creates the accounts, then plays the on-sales, then writes the log."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.w = World(cfg)
        self.r = self.w.r
        self.plans: list[Callable[[], None]] = []
        self.post: list[Callable[[], None]] = []
        self.ids_assigned = False

    # -- platform -------------------------------------------------------------------------

    def make_sales(self) -> None:
        cfg, r, w = self.cfg, self.r, self.w
        t = cfg.start + cfg.prelog_days * DAY
        for i in range(cfg.n_events):
            lottery = r.random() < cfg.lottery_share
            perfs = [w.ids.thing("perf") for _ in range(r.choice([1, 1, 2, 3, 4, 6]))]
            # On-sales start on the hour or half hour in local time, like real announcements.
            opens = math.floor((t + r.uniform(0, 3) * DAY) / 1800) * 1800 + 1800 - cfg.tz_hours * HOUR
            if lottery:
                closes = opens + r.uniform(1, 7) * DAY
                pay_until = closes + r.uniform(1, 3) * DAY
            else:
                closes = opens + r.uniform(0.5, 6) * HOUR
                pay_until = closes
            w.sales.append(Sale(w.ids.thing("evt"), perfs, "lottery" if lottery else "fcfs",
                                opens, closes, pay_until, int(cfg.price_minor * r.uniform(0.6, 1.8)),
                                popularity=1.0 / (i + 1) ** r.uniform(0.4, 1.2),
                                drain_s=r.uniform(240, 5400)))
            t = opens + r.uniform(0.2, 4) * DAY

    def popular_sale(self) -> Sale:
        weights = [s.popularity for s in self.w.sales]
        return self.r.choices(self.w.sales, weights=weights)[0]

    # -- account factory ------------------------------------------------------------------

    def new_account(self, kind: str, label: int, *, created: float, mail: str,
                    phone: str | None, name: bool, address: str | None, styles: dict[str, str],
                    cards: list[str], ip: Callable[[], str], devices: list[str | None],
                    uas: list[str], **extra) -> Account:
        a = Account(kind=kind, label=label, created=created, email_domain=mail, phone=phone,
                    name_hash=self.w.ids.hash() if name else None, address_hash=address,
                    styles=styles, cards=cards, ip=ip, devices=devices, uas=uas, **extra)
        a.signup_in_log = created >= self.cfg.start
        a.email = f"{self.w.ids._b62(10).lower()}@{mail}"
        if self.ids_assigned:  # made while playing the sales (a friend receiving a ticket)
            a.id = self.w.ids.account(len(self.w.accounts), a.email)
        self.w.accounts.append(a)
        return a

    def fan_styles(self, main: str) -> dict[str, str]:
        r = self.r
        styles = {f: main for f in FORMS}
        if main in ("typist", "touch") and r.random() < 0.4:
            styles["login"] = "autofill"  # browsers fill saved passwords even for typists
        return styles

    def fan_created(self, recent: float = 0.25) -> float:
        first = self.w.sales[0].opens
        if self.r.random() < recent:
            return self.r.uniform(self.cfg.start, first - HOUR)
        return first - self.r.uniform(30, 1500) * DAY

    def home(self, v6_ok: bool = True) -> Callable[[], str]:
        if v6_ok and self.r.random() < self.cfg.ipv6:
            prefix = self.w.net.home_v6_prefix()
            return lambda: self.w.net.v6_address(prefix)
        state = {"ip": self.w.net.home_v4()}

        def ip() -> str:
            if self.r.random() < 0.03:  # dynamic residential address renewed
                state["ip"] = self.w.net.home_v4()
            return state["ip"]
        return ip

    # -- fans -----------------------------------------------------------------------------

    def make_fan(self, kind: str) -> list[Account]:
        r, w, net, ag = self.r, self.w, self.w.net, self.w.agents
        mail = r.choice(COMMON_MAIL)
        phone = r.choice(PHONES_LOCAL) if r.random() < 0.85 else None
        name = r.random() < 0.9
        address = w.ids.hash() if r.random() < 0.8 else None
        card = [w.ids.card()]
        main = r.choice(["typist", "typist", "touch"])
        devices = [w.ids.device() for _ in range(r.choice([1, 1, 2, 3]))]
        uas = [ag.any() for _ in devices]
        ip = self.home()
        created = self.fan_created()
        extra = {}
        if kind == "autofill":
            main = "autofill"
        elif kind == "keyboard_only":
            main = "keyboard"
            uas = [ag.desktop()]
            devices = devices[:1]
        elif kind == "slow_typist":
            main = "slow"
        elif kind == "mobile_cgnat":
            carrier = r.randrange(3)
            ip = lambda c=carrier: net.mobile(c)  # noqa: E731
            main = "touch"
            uas = [ag.mobile()]
            devices = devices[:1]
        elif kind == "campus":
            campus = r.randrange(len(net.campuses))
            ip = lambda c=campus: r.choice(net.campuses[c])  # noqa: E731
            mail = r.choice(CAMPUS_MAIL)
            created = self.fan_created(recent=0.5)
        elif kind == "new_for_show":
            first = w.sales[0].opens
            created = first - r.uniform(0.05, 3) * DAY
            if created < self.cfg.start:
                created = self.cfg.start + r.uniform(0, 1) * HOUR
        elif kind == "failed_payment":
            extra["paid_ok"] = r.uniform(0.2, 0.6)
            card = [w.ids.card() for _ in range(r.randint(1, 3))]
        elif kind == "privacy_vpn":
            exits = r.choice(net.vpn_exits)
            ip = lambda e=exits: r.choice(e)  # noqa: E731
            main = "none" if r.random() < 0.6 else main
            extra["fresh_device_each_session"] = True
            mail = r.choice(["protonmail.com", "tutanota.com", "duck.com", "icloud.com"])
            name = r.random() < 0.5
        elif kind == "traveller":
            ip = lambda: net.mobile(r.randrange(3)) if r.random() < 0.5 else net.datacenter_block(1)[0]  # noqa: E731
            phone = r.choice(PHONES_LOCAL)
        elif kind == "household":
            return self.make_household()
        a = self.new_account(kind, 0, created=created, mail=mail, phone=phone, name=name,
                             address=address, styles=self.fan_styles(main), cards=card, ip=ip,
                             devices=devices, uas=uas, **extra)
        self.plans.append(lambda: self.fan_plan(a))
        return [a]

    def make_household(self) -> list[Account]:
        r, w, ag = self.r, self.w, self.w.agents
        n = r.randint(2, 5)
        address = w.ids.hash()
        shared_card = w.ids.card()
        ip = self.home()
        family_pc = w.ids.device()
        family_ua = ag.desktop()
        members = []
        for _ in range(n):
            own_device = w.ids.device()
            devices = [own_device, family_pc] if r.random() < 0.6 else [own_device]
            a = self.new_account("household", 0, created=self.fan_created(0.3),
                                 mail=r.choice(COMMON_MAIL), phone=r.choice(PHONES_LOCAL),
                                 name=True, address=address,
                                 styles=self.fan_styles(r.choice(["typist", "touch", "autofill"])),
                                 cards=[shared_card] + ([w.ids.card()] if r.random() < 0.3 else []),
                                 ip=ip, devices=devices, uas=[ag.mobile(), family_ua][: len(devices)])
            members.append(a)
        for a in members:
            self.plans.append(lambda a=a, m=members: self.fan_plan(a, family=m))
        return members

    def fan_plan(self, a: Account, family: list[Account] | None = None) -> None:
        r, w = self.r, self.w
        if a.signup_in_log:
            w.signup(a, w.session(a), a.created, r.randint(0, 3), w.human_gap)
        # Ordinary visits in the days before a sale, at local daytime-ish hours.
        for _ in range(r.choice([0, 1, 1, 2, 3, 5])):
            day = r.uniform(max(self.cfg.start, a.created), w.sales[-1].opens)
            w.browse(a, day, r.randint(1, 6), event=self.popular_sale().event_id)
        if a.kind == "stuffing_target":
            self.stuffing_attempts(a)
        if a.kind == "lurker":
            return
        sales = [self.popular_sale()]
        if r.random() < 0.3:
            sales.append(self.popular_sale())
        for sale in {id(s): s for s in sales}.values():
            self.fan_join_sale(a, sale, family)

    def fan_join_sale(self, a: Account, sale: Sale, family: list[Account] | None) -> None:
        r, w, cfg = self.r, self.w, self.cfg
        qty = min(cfg.max_qty, r.choice([1, 2, 2, 2, 2, 3, 4]))
        if a.kind == "friend_buyer":
            qty = cfg.max_qty
        perfs = sale.perfs
        after = None
        if a.kind == "friend_buyer" or (qty > 1 and r.random() < 0.25):
            after = lambda it, t, tickets, fam=family: self.give_to_friends(  # noqa: E731
                it.account, t, tickets, fam)
        if sale.mode == "lottery":
            t = r.uniform(sale.opens, sale.closes - HOUR)
            s = w.session(a)
            t = w.login(a, s, t, fails=int(r.random() < 0.05))
            chosen = r.sample(perfs, k=min(len(perfs), r.choice([1, 1, 2, 3])))
            if a.kind == "lottery_fan":
                chosen = perfs
            w.enter_lottery(a, s, t, sale, chosen, qty, bot=False)
            a.after_lottery = after
            return
        # Fans set alarms: many are waiting before the sale opens; others come later.
        x = r.random()
        if x < 0.45:
            join = sale.opens - r.uniform(0, 900)
        elif x < 0.75:
            join = sale.opens + r.expovariate(1 / 60)
        else:
            join = sale.opens + r.uniform(60, sale.closes - sale.opens)
        s = w.session(a)
        t0 = join - r.uniform(30, 600)
        t0 = w.login(a, s, t0, fails=int(r.random() < 0.06))
        w.page_views(s, t0, [f"/events/{sale.event_id}/"] * r.randint(1, 4),
                     lambda: r.uniform(3, 60), event_id=sale.event_id)
        retries = r.randint(5, 25) if a.kind == "frantic" else r.choice([0, 0, 1, 2, 3])
        gap = (lambda: r.uniform(1.0, 6)) if a.kind == "frantic" else w.human_gap
        w.intents.append(Intent(a, sale, r.choice(perfs), qty, join, retries, gap, after, s, False))

    def friends(self, a: Account, family: list[Account] | None, when: float) -> list[Account]:
        if family and self.r.random() < 0.5:
            others = [m for m in family if m is not a]
            if others:
                return others
        return [self.receiver("friend", when) for _ in range(self.r.randint(1, 3))]

    def receiver(self, kind: str, when: float) -> Account:
        """A fan who gets a ticket from someone else; some sign up just to receive it."""
        r, w = self.r, self.w
        created = when - w.lognorm(2 * HOUR, 1.0) if r.random() < 0.4 else self.fan_created(0.0)
        a = self.new_account(kind, 0, created=created, mail=r.choice(COMMON_MAIL),
                             phone=r.choice(PHONES_LOCAL) if r.random() < 0.8 else None,
                             name=True, address=w.ids.hash() if r.random() < 0.5 else None,
                             styles=self.fan_styles(r.choice(["typist", "touch", "autofill"])),
                             cards=[w.ids.card()], ip=self.home(),
                             devices=[w.ids.device()], uas=[w.agents.any()])
        w.receivers.append(a)
        if a.signup_in_log:
            self.post.append(lambda: w.signup(a, w.session(a), a.created, 0, w.human_gap))
        if r.random() < 0.8:  # most open the app to see the ticket; the rest appear only as `to_account`
            self.post.append(lambda: w.browse(a, when + w.lognorm(6 * HOUR, 1.0), r.randint(1, 3)))
        return a

    def give_to_friends(self, a: Account, t: float, tickets: list[str], family) -> None:
        give = tickets[1:]
        if not give:
            return
        when = t + self.w.lognorm(2 * DAY, 1.0)
        self.w.transfer(a, when, give, self.friends(a, family, when))

    def stuffing_attempts(self, a: Account) -> None:
        # Someone else tried a leaked password on this fan: failed logins from a bot's network.
        w = self.w
        bot = self.stuffing_bot
        t = self.r.uniform(self.cfg.start, w.sales[0].opens)
        s = Session(w.ids.session(), a, self.r.choice(bot["ips"]), None, bot["ua"])
        for _ in range(self.r.randint(1, 3)):
            w.emit(t, "form_submit", s, form="login", **w.timing("bot_api", "login"))
            w.emit(t + 0.2, "login", s, success=False)
            t += self.r.uniform(0.5, 5)

    # -- adversaries ----------------------------------------------------------------------

    def collectors(self, n: int, ip: Callable[[], str], ua: str) -> list[Account]:
        w = self.w
        out = []
        for _ in range(n):
            a = self.new_account("collector", 1, created=self.fan_created(0.1),
                                 mail=self.r.choice(COMMON_MAIL), phone=self.r.choice(PHONES_LOCAL),
                                 name=True, address=w.ids.hash(), styles=self.fan_styles("typist"),
                                 cards=[w.ids.card()], ip=ip, devices=[w.ids.device()], uas=[ua])
            out.append(a)
            self.plans.append(lambda a=a: self.collector_plan(a))
        return out


    def scalper_after(self, mode: str, collectors: list[Account], delay: float
                      ) -> Callable[[Intent, float, list[str]], None] | None:
        if mode == "hold":  # resold off-platform by handing over the login: no transfer at all
            return None

        def after(it: Intent, t: float, tickets: list[str]) -> None:
            if mode == "collector":
                dest = [self.r.choice(collectors)]
            when = t + self.w.lognorm(delay, 1.0)
            if mode != "collector":
                # Tickets resold on a marketplace reach real fans, a pair or two at a time.
                dest = [self.receiver("resale_buyer", when) for _ in range(max(1, len(tickets) // 2))]
            self.w.transfer(it.account, when, tickets, dest)
        return after

    def make_ring(self, kind: str, budget: int) -> int:
        """Create one operation of `kind`; returns how many labelled accounts it used."""
        maker = getattr(self, "ring_" + kind)
        return maker(budget)

    def bot_sales(self, n: int) -> list[Sale]:
        sales = sorted(self.w.sales, key=lambda s: -s.popularity)
        return sales[: max(1, n)]

    def ring_naive_bot(self, budget: int) -> int:
        r, w, ag = self.r, self.w, self.w.agents
        n = min(budget, r.randint(8, 150))
        dc = w.net.datacenter_block(r.randint(1, 6))
        ua = ag.headless()
        device = r.choice([None, w.ids.device(), "per-account"])
        mail = r.choice(DISPOSABLE_MAIL + CATCHALL_MAIL)
        cards = [w.ids.card() for _ in range(r.randint(1, 4))]
        burst = r.uniform(self.cfg.start, w.sales[0].opens - HOUR)
        style = r.choice(["bot_api", "bot_api", "replay"])
        colls = self.collectors(r.randint(0, 2), lambda: r.choice(dc), ua)
        mode = "collector" if colls and r.random() < 0.6 else r.choice(["resale", "hold"])
        sales = self.bot_sales(r.randint(1, 3))
        for i in range(n):
            devs = [w.ids.device()] if device == "per-account" else [device]
            a = self.new_account("naive_bot", 1, created=burst + i * r.uniform(1, 40),
                                 mail=mail, phone=None if r.random() < 0.7 else r.choice(PHONES_VIRTUAL),
                                 name=r.random() < 0.3, address=None,
                                 styles={f: style for f in FORMS},
                                 cards=[r.choice(cards)], ip=lambda: r.choice(dc),
                                 devices=devs, uas=[ua], paid_ok=0.9)
            self.plans.append(lambda a=a: self.bot_plan(a, sales, self.scalper_after(mode, colls, 600),
                                                        join_spread=1.5, browse=0))
        return n + len(colls)

    def ring_stealth_bot(self, budget: int) -> int:
        r, w, ag = self.r, self.w, self.w.agents
        n = min(budget, r.randint(5, 80))
        opsec = r.random()
        shared_ua = ag.desktop()
        cards = [w.ids.card() for _ in range(r.randint(2, 8))]
        drops = [w.ids.hash() for _ in range(r.randint(1, 4))]
        style = r.choice(["bot_stealth", "replay", "typist"])
        colls = self.collectors(r.randint(1, 3), w.net.proxy, shared_ua)
        mode = r.choice(["collector", "collector", "resale", "hold"])
        sales = self.bot_sales(r.randint(1, 4))
        for _ in range(n):
            created = self.r.uniform(self.cfg.start - 120 * DAY, w.sales[0].opens - DAY)
            a = self.new_account(
                "stealth_bot", 1, created=created, mail=r.choice(COMMON_MAIL),
                phone=r.choice(PHONES_VIRTUAL + PHONES_LOCAL), name=True,
                address=r.choice(drops) if opsec < 0.5 else w.ids.hash(),
                styles={f: style for f in FORMS},
                cards=[w.ids.card()] if opsec > 0.6 else [r.choice(cards)],
                ip=w.net.proxy, devices=[w.ids.device()],
                uas=[ag.any()] if opsec > 0.7 else [shared_ua],
                fresh_device_each_session=opsec > 0.8, rotate_ip_per_request=opsec < 0.3)
            self.plans.append(lambda a=a: self.bot_plan(a, sales, self.scalper_after(mode, colls, 3 * DAY),
                                                        join_spread=4.0, browse=r.randint(1, 4)))
        return n + len(colls)

    def ring_human_farm(self, budget: int) -> int:
        r, w, ag = self.r, self.w, self.w.agents
        n = min(budget, r.randint(15, 120))
        workers = max(1, n // r.randint(8, 25))
        phones = [(w.ids.device(), ag.mobile(cheap=True)) for _ in range(workers)]
        if r.random() < 0.5:
            line = self.home(v6_ok=False)
        else:
            carrier = r.randrange(3)
            line = lambda: w.net.mobile(carrier)  # noqa: E731
        cards = [w.ids.card() for _ in range(r.randint(2, 10))]
        drop = w.ids.hash() if r.random() < 0.6 else None
        colls = self.collectors(r.randint(1, 2), line, phones[0][1])
        mode = r.choice(["collector", "collector", "resale"])
        sales = self.bot_sales(r.randint(1, 3))
        day0 = r.uniform(self.cfg.start, w.sales[0].opens - 2 * DAY)
        for i in range(n):
            device, ua = phones[i % workers]
            a = self.new_account("human_farm", 1, created=day0 + (i // 30) * DAY + r.uniform(9, 18) * HOUR,
                                 mail=r.choice(COMMON_MAIL + DISPOSABLE_MAIL[:1]),
                                 phone=r.choice(PHONES_VIRTUAL), name=r.random() < 0.7,
                                 address=drop, styles={f: "farm" for f in FORMS},
                                 cards=[r.choice(cards)], ip=line, devices=[device], uas=[ua])
            self.plans.append(lambda a=a: self.bot_plan(a, sales, self.scalper_after(mode, colls, DAY),
                                                        join_spread=90.0, browse=r.randint(0, 3),
                                                        human=True))
        return n + len(colls)

    def ring_sleeper(self, budget: int) -> int:
        r, w, ag = self.r, self.w, self.w.agents
        n = min(budget, r.randint(10, 100))
        colls = self.collectors(r.randint(1, 2), w.net.proxy, ag.desktop())
        mode = r.choice(["collector", "hold", "resale"])
        sales = self.bot_sales(r.randint(1, 4))
        hour = r.uniform(0, 24)
        for _ in range(n):
            a = self.new_account("sleeper", 1, created=w.sales[0].opens - r.uniform(90, 400) * DAY,
                                 mail=r.choice(COMMON_MAIL), phone=r.choice(PHONES_LOCAL + PHONES_VIRTUAL),
                                 name=True, address=w.ids.hash() if r.random() < 0.5 else None,
                                 styles={f: r.choice(["bot_stealth", "autofill"]) for f in FORMS},
                                 cards=[w.ids.card()], ip=w.net.proxy, devices=[w.ids.device()],
                                 uas=[ag.any()])
            self.plans.append(lambda a=a: self.sleeper_plan(a, hour, sales,
                                                            self.scalper_after(mode, colls, 2 * DAY)))
        return n + len(colls)

    def ring_lottery_flooder(self, budget: int) -> int:
        r, w, ag = self.r, self.w, self.w.agents
        lotteries = [s for s in w.sales if s.mode == "lottery"]
        if not lotteries:
            return self.ring_stealth_bot(budget)
        n = min(budget, r.randint(20, 250))
        colls = self.collectors(r.randint(1, 3), w.net.proxy, ag.desktop())
        mail = r.choice(COMMON_MAIL[:3] + CATCHALL_MAIL)
        style = r.choice(["bot_api", "bot_stealth", "replay"])
        for _ in range(n):
            a = self.new_account("lottery_flooder", 1,
                                 created=r.uniform(self.cfg.start, lotteries[0].opens),
                                 mail=mail, phone=r.choice(PHONES_VIRTUAL), name=r.random() < 0.5,
                                 address=None, styles={f: style for f in FORMS},
                                 cards=[w.ids.card()], ip=w.net.proxy, devices=[w.ids.device()],
                                 uas=[ag.any()], rotate_ip_per_request=r.random() < 0.5)
            a.after_lottery = self.scalper_after("collector", colls, HOUR)
            self.plans.append(lambda a=a: self.flood_plan(a, lotteries))
        return n + len(colls)

    def ring_card_tester(self, budget: int) -> int:
        r, w, ag = self.r, self.w, self.w.agents
        n = min(budget, r.randint(1, 4))
        dc = w.net.datacenter_block(3) if r.random() < 0.5 else None
        for _ in range(n):
            a = self.new_account("card_tester", 1, created=r.uniform(self.cfg.start, w.sales[-1].opens),
                                 mail=r.choice(DISPOSABLE_MAIL + COMMON_MAIL), phone=None,
                                 name=False, address=None, styles={f: "bot_api" for f in FORMS},
                                 cards=[w.ids.card()], ip=(lambda d=dc: r.choice(d)) if dc else w.net.proxy,
                                 devices=[None], uas=[ag.headless() if dc else ag.desktop()])
            self.plans.append(lambda a=a: self.card_test_plan(a))
        return n

    def ring_account_takeover(self, budget: int) -> int:
        r, w, ag = self.r, self.w, self.w.agents
        n = min(budget, r.randint(2, 20))
        colls = self.collectors(1, w.net.proxy, ag.desktop())
        sales = self.bot_sales(2)
        for _ in range(n):
            a = self.new_account("account_takeover", 1, created=self.fan_created(0.0),
                                 mail=r.choice(COMMON_MAIL), phone=r.choice(PHONES_LOCAL), name=True,
                                 address=w.ids.hash(), styles=self.fan_styles("typist"),
                                 cards=[w.ids.card()], ip=self.home(), devices=[w.ids.device()],
                                 uas=[ag.any()])
            self.plans.append(lambda a=a: self.ato_plan(a, sales, colls))
        return n + 1

    def ring_human_scalper(self, budget: int) -> int:
        # One person with a handful of accounts in relatives' names: home IP, own cards.
        r, w, ag = self.r, self.w, self.w.agents
        n = min(budget, r.randint(2, 8))
        ip = self.home()
        devices = [w.ids.device(), w.ids.device()]
        uas = [ag.desktop(), ag.mobile()]
        cards = [w.ids.card() for _ in range(r.randint(1, 3))]
        address = w.ids.hash()
        sales = self.bot_sales(r.randint(2, 5))
        for _ in range(n):
            a = self.new_account("human_scalper", 1, created=self.fan_created(0.3),
                                 mail=r.choice(COMMON_MAIL), phone=r.choice(PHONES_LOCAL),
                                 name=True, address=address if r.random() < 0.6 else w.ids.hash(),
                                 styles=self.fan_styles(r.choice(["typist", "autofill"])),
                                 cards=[r.choice(cards)], ip=ip, devices=devices, uas=uas)
            self.plans.append(lambda a=a: self.bot_plan(
                a, sales, self.scalper_after("resale", [], 4 * DAY), join_spread=20.0,
                browse=r.randint(1, 5), human=True))
        return n

    # -- adversary plans ------------------------------------------------------------------

    def bot_plan(self, a: Account, sales: list[Sale], after, *, join_spread: float,
                 browse: int, human: bool = False) -> None:
        r, w = self.r, self.w
        gap = w.human_gap if human else (lambda: r.uniform(0.3, 2.5))
        if a.signup_in_log:
            w.signup(a, w.session(a), a.created, browse, gap)
        for sale in sales:
            if sale.mode == "lottery":
                s = w.session(a)
                t = r.uniform(sale.opens, sale.opens + (sale.closes - sale.opens) * 0.3)
                t = w.login(a, s, t)
                w.enter_lottery(a, s, t, sale, sale.perfs, self.cfg.max_qty, bot=not human)
                a.after_lottery = after
                continue
            s = w.session(a)
            join = sale.opens + abs(r.gauss(0, join_spread))
            t0 = w.login(a, s, join - r.uniform(20, 300))
            w.page_views(s, t0, [f"/events/{sale.event_id}/"] * max(1, browse), gap,
                         event_id=sale.event_id)
            perfs = r.sample(sale.perfs, k=min(len(sale.perfs), r.randint(1, 3)))
            for perf in perfs:
                w.intents.append(Intent(a, sale, perf, self.cfg.max_qty, join + r.uniform(0, 0.5),
                                        r.randint(2, 12), lambda: r.uniform(0.2, 2.0) if not human
                                        else w.human_gap(), after, s, not human))

    def collector_plan(self, a: Account) -> None:
        # Checks the wallet now and then; tickets arrive while the sales are played.
        w = self.w
        if a.signup_in_log:
            w.signup(a, w.session(a), a.created, 0, w.human_gap)
        for _ in range(self.r.randint(1, 4)):
            w.browse(a, self.r.uniform(w.sales[0].opens, w.sales[-1].closes + 2 * DAY),
                     self.r.randint(1, 3))

    def sleeper_plan(self, a: Account, hour: float, sales: list[Sale], after) -> None:
        r, w = self.r, self.w
        # Warming: a short visit every few days at nearly the same hour, to look alive.
        day = math.floor(self.cfg.start / DAY) * DAY
        while day < w.sales[0].opens - DAY:
            if r.random() < 0.35:
                w.browse(a, day + (hour + r.gauss(0, 0.3)) % 24 * HOUR, r.randint(1, 2),
                         event=self.popular_sale().event_id)
            day += DAY
        self.bot_plan(a, sales, after, join_spread=2.0, browse=1)

    def flood_plan(self, a: Account, lotteries: list[Sale]) -> None:
        r, w = self.r, self.w
        if a.signup_in_log:
            w.signup(a, w.session(a), a.created, 0, lambda: r.uniform(0.3, 2))
        for sale in lotteries:
            s = w.session(a)
            t = w.login(a, s, r.uniform(sale.opens, sale.closes - HOUR))
            w.enter_lottery(a, s, t, sale, sale.perfs, self.cfg.max_qty, bot=True)

    def card_test_plan(self, a: Account) -> None:
        r, w = self.r, self.w
        s = w.session(a)
        t = a.created
        if a.signup_in_log:
            t = w.signup(a, s, t, 0, lambda: r.uniform(0.2, 1))
        sale = r.choice(w.sales)
        t = max(t, sale.opens) + r.uniform(60, 3 * HOUR)
        perf = sale.perfs[0]
        w.emit(t, "hold", s, event_id=sale.event_id, performance_id=perf, quantity=1, success=True)
        order_id = w.ids.thing("ord")
        w.emit(t + 1, "order", s, order_id=order_id, event_id=sale.event_id,
               performance_id=perf, quantity=1, amount_minor=sale.price, currency=self.cfg.currency)
        t += 2
        for _ in range(r.randint(8, 60)):
            ok = r.random() < 0.08
            w.emit(t, "payment", s, order_id=order_id, amount_minor=sale.price,
                   currency=self.cfg.currency, card_fp=w.ids.card(), success=ok,
                   decline_code=None if ok else r.choice(DECLINES_TEST))
            t += r.uniform(1, 12)

    def ato_plan(self, a: Account, sales: list[Sale], colls: list[Account]) -> None:
        r, w = self.r, self.w
        for _ in range(r.randint(1, 4)):  # the owner's normal life
            w.browse(a, r.uniform(self.cfg.start, w.sales[0].opens), r.randint(1, 5),
                     event=self.popular_sale().event_id)
        bot = self.stuffing_bot
        t = r.uniform(self.cfg.start, w.sales[0].opens - HOUR)
        s = Session(w.ids.session(), a, r.choice(bot["ips"]), None, bot["ua"])
        for _ in range(r.randint(0, 3)):
            w.emit(t, "form_submit", s, form="login", **w.timing("bot_api", "login"))
            w.emit(t + 0.2, "login", s, success=False)
            t += r.uniform(0.5, 4)
        w.emit(t, "form_submit", s, form="login", **w.timing("bot_api", "login"))
        w.emit(t + 0.2, "login", s, success=True)
        # The buyer now uses the account from a residential proxy with a new device and card.
        a.ip = w.net.proxy
        a.devices = [w.ids.device()]
        a.uas = [w.agents.desktop()]
        a.cards = [w.ids.card()]
        a.styles = {f: "bot_stealth" for f in FORMS}
        self.bot_plan(a, sales, self.scalper_after("collector", colls, HOUR), join_spread=3.0,
                      browse=1)

    # -- build ----------------------------------------------------------------------------

    def build(self) -> World:
        cfg, r, w = self.cfg, self.r, self.w
        self.make_sales()
        self.stuffing_bot = {"ips": w.net.datacenter_block(r.randint(2, 10)),
                             "ua": w.agents.headless()}
        n_bad = round(cfg.accounts * cfg.bad_share)
        made_bad = 0
        while made_bad < n_bad:
            made_bad += self.make_ring(pick(r, BAD_MIX), n_bad - made_bad)
        while len(w.accounts) < cfg.accounts:
            self.make_fan(pick(r, FAN_MIX))
        self.assign_ids()
        for plan in self.plans:
            plan()
        by_sale: dict[int, list[Intent]] = defaultdict(list)
        for it in w.intents:
            by_sale[id(it.sale)].append(it)
        for sale in w.sales:
            w.resolve_fcfs(sale, by_sale[id(sale)])
        for it in w.intents:
            w.play_fcfs(it)
        w.play_lottery()
        for job in self.post:
            job()
        self.noise()
        return w

    def assign_ids(self) -> None:
        # Sequential ids follow creation order, so a bot burst gets consecutive numbers.
        ordered = sorted(self.w.accounts, key=lambda a: a.created)
        for rank, a in enumerate(ordered):
            a.id = self.w.ids.account(rank, a.email)
        self.ids_assigned = True

    def noise(self) -> None:
        cfg, r, w = self.cfg, self.r, self.w
        if cfg.unknown_types:
            extra_types = ["logout", "search", "heartbeat", "password_reset_request",
                           "captcha_passed", "newsletter_optin"]
            for ev in r.sample(w.lines, k=len(w.lines) // 25):
                new = {k: ev[k] for k in ("ts", "account", "session", "ip", "device", "ua")}
                new["ts"] = ev["ts"] + r.uniform(0.5, 120)
                new["type"] = r.choice(extra_types)
                if new["type"] == "search":
                    new["q"] = r.choice(["tour", "演唱會", "jazz", "kids"])
                w.lines.append(new)
        if cfg.extras:
            for ev in w.lines:
                if r.random() < 0.3:
                    ev["request_id"] = w.ids.session()
                if r.random() < 0.2:
                    ev["geo"] = {"country": r.choice(["HK", "HK", "HK", "MO", "TW", "US"]),
                                 "asn": r.randint(1000, 65000)}
                if r.random() < 0.1:
                    ev["referrer"] = r.choice(["https://www.instagram.com/", None, "android-app://com.google.android.gm/"])
        for ev in w.lines:
            ev["ts"] = int(ev["ts"]) if cfg.int_ts else round(ev["ts"], r.choice([3, 3, 6]))


def write(world: World, out: Path) -> tuple[Path, Path]:
    cfg, r = world.cfg, random.Random(f"write-{world.cfg.seed}")
    out.mkdir(parents=True, exist_ok=True)
    lines = world.lines
    lines.sort(key=lambda e: (e["ts"], e["session"]))
    if cfg.line_order == "jittered":
        keyed = [(e["ts"] + r.uniform(-30, 30), i) for i, e in enumerate(lines)]
        keyed.sort()
        lines = [lines[i] for _, i in keyed]
    elif cfg.line_order == "chunked":  # several servers' files concatenated
        servers: list[list[dict]] = [[] for _ in range(r.randint(2, 5))]
        for e in lines:
            servers[r.randrange(len(servers))].append(e)
        lines = [e for s in servers for e in s]
    elif cfg.line_order == "shuffled":
        r.shuffle(lines)
    text = [json.dumps(e, ensure_ascii=r.random() < 0.5, separators=(",", ":")
                       if cfg.seed % 2 else (", ", ": ")) for e in lines]
    for _ in range(cfg.malformed):
        pos = r.randrange(len(text) + 1)
        text.insert(pos, r.choice(['{"ts": 17', "not json", '{"type": "login"}', "[]", "", '{"ts": "yesterday", "type": "login"}']))
    log_path = out / "log.jsonl"
    log_path.write_text("\n".join(text) + "\n", encoding="utf-8")
    labels_path = out / "labels.csv"
    with open(labels_path, "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh)
        wr.writerow(["account", "label", "kind"])
        for a in world.accounts:
            wr.writerow([a.id, a.label, a.kind])
    return log_path, labels_path


def generate(*, accounts: int, seed: int, bad_share: float | None = None) -> World:
    cfg = Config.draw(seed, accounts, bad_share)
    return Builder(cfg).build()


# -- evaluation -----------------------------------------------------------------------------


def auc(pos: list[float], neg: list[float]) -> float:
    """Mann-Whitney U with average ranks for ties."""
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum = 0.0
    i = 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        avg = (i + j + 1) / 2
        rank_sum += avg * sum(1 for k in range(i, j) if allv[k][1] == 1)
        i = j
    n1, n0 = len(pos), len(neg)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def evaluate(scores_path: Path, labels_path: Path) -> dict:
    with open(labels_path, encoding="utf-8") as fh:
        labels = {row["account"]: (int(row["label"]), row["kind"]) for row in csv.DictReader(fh)}
    with open(scores_path, encoding="utf-8") as fh:
        scores = {row["account"]: (float(row["score"]), row["decision"]) for row in csv.DictReader(fh)}
    rows = [(scores[a][0], scores[a][1], *labels[a]) for a in scores if a in labels]
    pos = [s for s, _, y, _ in rows if y == 1]
    neg = sorted((s for s, _, y, _ in rows if y == 0), reverse=True)
    k = int(0.01 * len(neg))
    thr = neg[k] if neg else 1.0
    result = {
        "accounts_scored": len(scores), "labelled_scored": len(rows),
        "unlabelled_scored": len(scores) - len(rows), "bad": len(pos), "fans": len(neg),
        "roc_auc": round(auc(pos, neg), 4) if pos and neg else None,
        "recall_at_1pct_fpr": round(sum(1 for s in pos if s > thr) / len(pos), 4) if pos else None,
        "fans_block": sum(1 for _, d, y, _ in rows if y == 0 and d == "block"),
        "fans_review": sum(1 for _, d, y, _ in rows if y == 0 and d == "review"),
        "fans_challenge": sum(1 for _, d, y, _ in rows if y == 0 and d == "challenge"),
        "bad_block": sum(1 for _, d, y, _ in rows if y == 1 and d == "block"),
        "bad_not_allowed": sum(1 for _, d, y, _ in rows if y == 1 and d != "allow"),
        "per_kind": {},
    }
    kinds: dict[str, list] = defaultdict(list)
    for s, d, y, kind in rows:
        kinds[kind].append((s, d, y))
    for kind, items in sorted(kinds.items()):
        dec = Counter(d for _, d, _ in items)
        result["per_kind"][kind] = {
            "n": len(items), "label": items[0][2],
            "mean_score": round(sum(s for s, _, _ in items) / len(items), 3),
            "above_1pct_thr": round(sum(1 for s, _, _ in items if s > thr) / len(items), 3),
            **{d: dec.get(d, 0) for d in ("allow", "challenge", "review", "block")},
        }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write log.jsonl and labels.csv")
    g.add_argument("--accounts", type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--bad-share", type=float, help="share of adversary accounts (default: per seed)")
    g.add_argument("--out", required=True)
    e = sub.add_parser("evaluate", help="ROC AUC, recall at 1%% FPR, decisions per kind")
    e.add_argument("--scores", required=True)
    e.add_argument("--labels", required=True)
    e.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "generate":
        if args.accounts < 50:
            ap.error("--accounts must be at least 50")
        world = generate(accounts=args.accounts, seed=args.seed, bad_share=args.bad_share)
        log_path, labels_path = write(world, Path(args.out))
        cfg = world.cfg
        print(f"wrote {len(world.lines)} events for {len(world.accounts)} accounts "
              f"({sum(a.label for a in world.accounts)} adversaries) to {log_path} and {labels_path}; "
              f"ids={cfg.id_style} order={cfg.line_order} events={cfg.n_events} "
              f"lottery_share={cfg.lottery_share} bad_share={cfg.bad_share} currency={cfg.currency} "
              f"max_qty={cfg.max_qty} ipv6={cfg.ipv6} null_device={cfg.null_device} "
              f"null_timing={cfg.null_timing}")
        return 0
    result = evaluate(Path(args.scores), Path(args.labels))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    head = {k: v for k, v in result.items() if k != "per_kind"}
    print(" ".join(f"{k}={v}" for k, v in head.items()))
    print(f"{'kind':<20}{'label':>6}{'n':>7}{'mean':>7}{'>thr':>7}{'allow':>7}{'chall':>7}{'review':>7}{'block':>7}")
    for kind, v in result["per_kind"].items():
        print(f"{kind:<20}{v['label']:>6}{v['n']:>7}{v['mean_score']:>7}{v['above_1pct_thr']:>7}"
              f"{v['allow']:>7}{v['challenge']:>7}{v['review']:>7}{v['block']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

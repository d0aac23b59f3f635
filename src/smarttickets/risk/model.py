"""Scalper model: gradient-boosted trees, Platt calibration, decision thresholds and reasons.

No Django import: the commands, the benchmark and the in-process decision all use this module.
A model file is a joblib pickle of a versioned envelope; load only files you trust.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smarttickets.risk import features as F
from smarttickets.risk import logio

FORMAT_VERSION = 1
DECISIONS = ("allow", "challenge", "review", "block")
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "data" / "default_model.joblib"
# Fan false-positive rates the review and challenge thresholds are chosen for.
REVIEW_FAN_RATE = 0.01
CHALLENGE_FAN_RATE = 0.03
FAST_ROWS = 8
# Trainings averaged into a model by the CLI and the shipped model (see ``Bagged``).
DEFAULT_MEMBERS = 5
ACTIVITY_FEATURES = ("holds", "entries", "orders", "transfers_out", "transfers_in")
# Evidence that needs no model: a client naming itself an automation tool, or a card-testing
# run (many cards on few orders, nearly all declined for several reasons). A model trained on
# simulated rings can underrate a lone scripted account; these score at least this much.
HARD_EVIDENCE_SCORE = 0.95
CARD_TESTING_CARDS = 5


def gettext_noop(message: str) -> str:
    """Marks a reason template for translation; Django renders it in the reader's language."""
    return message


class ModelError(Exception):
    """A model file that cannot be used, or training data that cannot train one."""


@dataclass(frozen=True)
class Thresholds:
    challenge: float
    review: float
    block: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.challenge <= self.review <= self.block <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= challenge <= review <= block <= 1")

    def decide(self, score: float) -> str:
        if score >= self.block:
            return "block"
        if score >= self.review:
            return "review"
        if score >= self.challenge:
            return "challenge"
        return "allow"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Reason:
    code: str
    template: str
    params: dict[str, Any]

    @property
    def text(self) -> str:
        return self.template % self.params

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text, "template": self.template,
                "params": self.params}


# Why a feature value is suspicious, in words. ``n`` is the value as a count, ``x`` as a float.
REASON_TEMPLATES: dict[str, tuple[str, Callable[[float], dict[str, Any]]]] = {
    "card_share": (gettext_noop("%(n)d accounts share one payment card"),
                   lambda v: {"n": int(v) + 1}),
    "device_share": (gettext_noop("%(n)d accounts share one device"), lambda v: {"n": int(v) + 1}),
    "addr_share": (gettext_noop("%(n)d accounts share one address"), lambda v: {"n": int(v) + 1}),
    "ipo_buyers": (gettext_noop("%(n)d accounts bought from one IP address"),
                   lambda v: {"n": int(v) + 1}),
    "ipo_buyer_density": (gettext_noop("most accounts seen on its IP address are buying"),
                          lambda v: {}),
    "recipient_in_degree_max": (gettext_noop("hands tickets to an account that receives from %(n)d accounts"),
                                lambda v: {"n": int(v)}),
    "transfer_senders": (gettext_noop("receives tickets from %(n)d accounts"),
                         lambda v: {"n": int(v)}),
    "neighbours": (gettext_noop("linked to %(n)d other accounts by shared identifiers"),
                   lambda v: {"n": int(v)}),
    "component_size": (gettext_noop("part of a group of %(n)d linked accounts"),
                       lambda v: {"n": int(v)}),
    "component_tickets": (gettext_noop("its linked group bought %(n)d tickets"),
                          lambda v: {"n": int(v)}),
    "component_transfers": (gettext_noop("its linked group moved %(n)d tickets to other accounts"),
                            lambda v: {"n": int(v)}),
    "fill_s_min": (gettext_noop("form filled in %(x).1f s"), lambda v: {"x": v}),
    "keys_per_s_max": (gettext_noop("typed %(x).0f keys per second"), lambda v: {"x": v}),
    "forms_no_telemetry_frac": (gettext_noop("forms sent without browser signals"),
                                lambda v: {}),
    "zero_pointer_forms_frac": (gettext_noop("forms submitted without moving the pointer"),
                                lambda v: {}),
    "robotic_forms_frac": (gettext_noop("forms sent in under a second without typing or pointer"),
                           lambda v: {}),
    "iat_log_std": (gettext_noop("requests arrive at machine-regular intervals"), lambda v: {}),
    "iat_cv": (gettext_noop("requests arrive at machine-regular intervals"), lambda v: {}),
    "iat_min_s": (gettext_noop("requests %(x).2f s apart"), lambda v: {"x": v}),
    "iat_sub1s_frac": (gettext_noop("most requests come less than a second apart"),
                       lambda v: {}),
    "automation_ua": (gettext_noop("browser identifies as an automation tool"), lambda v: {}),
    "ips_per_session": (gettext_noop("new IP address on most sessions"), lambda v: {}),
    "devices_per_session": (gettext_noop("new device on most sessions"), lambda v: {}),
    "entry_performances": (gettext_noop("entered the lottery for %(n)d performances"),
                           lambda v: {"n": int(v)}),
    "entry_qty_rel": (gettext_noop("always asks for the most tickets allowed"), lambda v: {}),
    "hold_qty_rel": (gettext_noop("always holds the most tickets allowed"), lambda v: {}),
    "holds": (gettext_noop("%(n)d hold attempts"), lambda v: {"n": int(v)}),
    "tickets": (gettext_noop("bought %(n)d tickets"), lambda v: {"n": int(v)}),
    "transfers_out": (gettext_noop("transferred %(n)d tickets away"), lambda v: {"n": int(v)}),
    "transfer_out_share": (gettext_noop("hands on every ticket it buys"), lambda v: {}),
    "cards": (gettext_noop("used %(n)d payment cards"), lambda v: {"n": int(v)}),
    "decline_codes": (gettext_noop("payments declined for %(n)d different reasons"),
                      lambda v: {"n": int(v)}),
    "page_views_per_action": (gettext_noop("buys without browsing"), lambda v: {}),
}
# Independent kinds of evidence. A block needs reasons of at least two kinds: a household
# sharing a card and an address is one kind (shared identifiers) however many reasons it has,
# and evidence from the network (carrier and VPN addresses) never counts towards a block.
REASON_GROUPS: dict[str, str] = {
    # Only signs no person produces count: fast typing, a quick form, no pointer or no
    # telemetry at all are also a practised typist, a password manager, a phone, a privacy
    # browser. They stay reasons; they are not evidence towards a block.
    **dict.fromkeys(("automation_ua", "robotic_forms_frac", "iat_log_std", "iat_cv",
                     "iat_sub1s_frac"), "automation"),
    # Not "neighbours": a fan's friends are neighbours through the very transfers that
    # already count as hoarding evidence.
    **dict.fromkeys(("card_share", "device_share", "addr_share", "component_size",
                     "component_tickets", "component_transfers", "recipient_in_degree_max",
                     "transfer_senders"), "ring"),
    # Many hold attempts are what a fan does at a sold-out sale too: a reason, not evidence.
    **dict.fromkeys(("transfers_out", "transfer_out_share", "tickets", "hold_qty_rel",
                     "entry_qty_rel", "entry_performances"), "hoarding"),
    **dict.fromkeys(("cards", "decline_codes"), "payment"),
}
BLOCK_MIN_GROUPS = 2
# A reason only counts towards a block when its value lies clearly outside the fans' range: at
# least half a fan spread (median to 99th percentile) beyond the 99th percentile. Just past
# it is where one fan in a hundred is, for every feature: a household that hands on its
# tickets and happens to click fast is not two kinds of evidence.
BLOCK_MIN_STRENGTH = 1.5
MODEL_UNAVAILABLE = Reason("model_unavailable", gettext_noop("model unavailable"), {})


def evidence_groups(reasons: list[Reason]) -> int:
    """How many independent kinds of evidence a list of reasons holds (unknown codes: none)."""
    return len({REASON_GROUPS[r.code] for r in reasons if r.code in REASON_GROUPS})


def file_sha256(*paths: str | Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Assessment:
    accounts: list[str]
    X: np.ndarray
    scores: np.ndarray
    decisions: list[str]
    reasons: list[list[Reason]]


class Bagged:
    """Gradient-boosted models trained on different draws of the training groups; the score is
    their mean margin.

    One training depends on its random draws (which groups, which features per split, which
    rows stop the boosting): on logs nobody simulated, recall at 1% FPR moved by tens of points
    between trainings that differed only in their seed. The mean of several keeps what they
    agree on. Every member sees the same features in the same order.
    """

    def __init__(self, members: list[Any]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = members

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.decision_function(X) for m in self.members], axis=0)

    @property
    def n_iter_(self) -> int:
        return sum(int(m.n_iter_) for m in self.members)

    @property
    def monotonic_cst(self) -> Any:
        return self.members[0].monotonic_cst


@dataclass
class RiskModel:
    """The envelope that is saved: everything needed to score, decide and explain."""

    model_version: str
    features: list[str]
    estimator: Any
    calibration: tuple[float, float]          # Platt: sigmoid(a * logit + b)
    thresholds: Thresholds
    training_hash: str
    metrics: dict[str, Any] = field(default_factory=dict)
    # Fan quantiles per feature (rows: p1, p50, p99), the direction in which a feature is
    # suspicious (+1 high, -1 low, 0 neither) and permutation importances.
    fan_quantiles: np.ndarray | None = None
    directions: np.ndarray | None = None
    importances: np.ndarray | None = None
    # What a missing value stands for: the training fans' median. No measurement is no
    # evidence; left as NaN, the trees would learn which populations a simulator leaves
    # unmeasured (an account with two page views has no pace, which is not a bot's pace).
    impute: np.ndarray | None = None
    format_version: int = FORMAT_VERSION

    # -- scoring ----------------------------------------------------------------------------

    def _matrix(self, table: F.FeatureTable) -> np.ndarray:
        if table.names == self.features:
            return table.X
        missing = [n for n in self.features if n not in table.names]
        if missing:
            raise ModelError(f"the model needs features this version does not compute: {missing}")
        return table.X[:, [table.names.index(n) for n in self.features]]

    def fill_missing(self, X: np.ndarray) -> np.ndarray:
        impute = getattr(self, "impute", None)
        if impute is None or not np.isnan(X).any():
            return X
        return np.where(np.isnan(X), impute, X)

    def raw(self, X: np.ndarray) -> np.ndarray:
        X = self.fill_missing(X)
        if len(X) <= FAST_ROWS:
            fast = self._fast()
            if fast is not None:
                return np.array([fast(row) for row in X])
        from threadpoolctl import threadpool_limits

        # OpenMP threads fight over a busy machine; one thread is faster and predictable.
        with threadpool_limits(limits=1):
            return self.estimator.decision_function(X)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_fast_cache", None)  # the flattened trees: rebuilt after loading
        return state

    def warm_up(self) -> None:
        """Prepare single-row scoring (the live path) ahead of the first decision."""
        self._fast()

    def _fast(self) -> Callable[[np.ndarray], float] | None:
        """The fitted trees as flat arrays walked by compiled code, for a handful of rows
        (``treewalk``: a few microseconds a row against ~30 µs per tree through scikit-learn's
        predict). Built once per process; ``None`` where the estimator is not one this walker
        knows, and scikit-learn scores instead."""
        cached = getattr(self, "_fast_cache", None)
        if cached is not None:
            return cached or None
        try:
            from smarttickets.risk import treewalk

            forest = treewalk.forest_of(getattr(self.estimator, "members", [self.estimator]))
            forest.predict_row(np.zeros(len(self.features)))  # compiles (or loads the cache)
            self._fast_cache = forest.predict_row
        except Exception:  # an optimisation only: scikit-learn scores the same rows correctly
            import logging

            logging.getLogger(__name__).warning(
                "risk model %s: compiled tree walk unavailable, scoring through scikit-learn",
                self.model_version, exc_info=True)
            self._fast_cache = False
        return self._fast_cache or None

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        z = np.clip(a * raw + b, -50, 50)
        return 1.0 / (1.0 + np.exp(-z))

    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        scores = self.calibrate(self.raw(X))
        hard = self.hard_evidence(X)
        return np.where(hard, np.maximum(scores, HARD_EVIDENCE_SCORE), scores) if len(X) \
            else scores

    def hard_evidence(self, X: np.ndarray) -> np.ndarray:
        def col(name: str) -> np.ndarray:
            if name not in self.features:
                return np.zeros(len(X))
            return np.nan_to_num(X[:, self.features.index(name)], nan=0.0)

        card_testing = ((col("cards") >= CARD_TESTING_CARDS) & (col("pay_fail_ratio") >= 0.8)
                        & (col("decline_codes") >= 2))
        return (col("automation_ua") >= 1) | card_testing

    def score(self, table: F.FeatureTable) -> np.ndarray:
        return self.score_matrix(self._matrix(table))

    def decide(self, X: np.ndarray, scores: np.ndarray, reasons: list[list[Reason]],
               thresholds: Thresholds | None = None) -> list[str]:
        """Thresholds first, then a rule of reason: a block needs evidence a person can read.

        An account is only blocked when it has tried to get tickets (or received or moved them)
        and its reasons show at least ``BLOCK_MIN_GROUPS`` independent kinds of evidence
        (``REASON_GROUPS``); otherwise the strongest answer is a review by staff. A model trained
        on simulated traffic can be confidently wrong about a fan nobody simulated; two unrelated
        kinds of evidence rarely are. A review needs at least one reason, or it is a challenge.
        """
        th = thresholds or self.thresholds
        active = self._activity(X)
        strength: np.ndarray | None = None
        index: dict[str, int] = {}
        out = []
        for i, s in enumerate(scores):
            decision = th.decide(float(s))
            if decision == "block":
                if not index:  # only for blocks: most decisions never need it
                    index = {name: j for j, name in enumerate(self.features)}
                    strength = self._strength(X)
                clear = [r for r in reasons[i] if strength is None or (
                    r.code in index and strength[i, index[r.code]] >= BLOCK_MIN_STRENGTH)]
                if not active[i] or evidence_groups(clear) < BLOCK_MIN_GROUPS:
                    decision = "review"
            if decision == "review" and not reasons[i]:
                # Staff cannot judge a case that names no evidence: nothing of the account lies
                # outside the fans' range, only the combination scores high. A step-up asks
                # the person instead (on logs nobody simulated, 35–45% of the fans sent to
                # review had no reason; nearly every scalper in review had one).
                decision = "challenge"
            out.append(decision)
        return out

    def _strength(self, X: np.ndarray) -> np.ndarray | None:
        """How far each value lies beyond the fans' 1st/99th percentile in the suspicious
        direction, in fan spreads (0 inside the range, 1 at its edge, at most 5)."""
        if self.fan_quantiles is None or self.directions is None:
            return None
        p1, p50, p99 = self.fan_quantiles
        spread_hi = np.maximum(p99 - p50, 1e-6)
        spread_lo = np.maximum(p50 - p1, 1e-6)
        with np.errstate(invalid="ignore"):
            high = np.where(p99 < X, (X - p99) / spread_hi + 1.0, 0.0)
            low = np.where(p1 > X, (p1 - X) / spread_lo + 1.0, 0.0)
        strength = np.where(self.directions > 0, high, np.where(self.directions < 0, low, 0.0))
        return np.nan_to_num(np.minimum(strength, 5.0))

    def _activity(self, X: np.ndarray) -> np.ndarray:
        return _active(X, self.features)

    def reasons(self, X: np.ndarray, top: int = 3) -> list[list[Reason]]:
        """Top reasons per row: features most beyond the fan range, weighted by importance."""
        strength = self._strength(X)
        if strength is None:
            return [[] for _ in range(len(X))]
        weights = np.maximum(self.importances if self.importances is not None
                             else np.ones(len(self.features)), 1e-4)
        ranked = strength * weights
        usable = np.array([name in REASON_TEMPLATES for name in self.features])
        ranked[:, ~usable] = 0.0
        out: list[list[Reason]] = []
        order = np.argsort(-ranked, axis=1)[:, : top * 4]
        for r in range(len(X)):
            candidates = [j for j in order[r] if ranked[r, j] > 0]
            # The strongest reason of each kind of evidence first, then the next strongest:
            # three ways of saying "shares a card" explain less than one of each kind.
            picked: list[int] = []
            groups: set[str] = set()
            for j in candidates:
                group = REASON_GROUPS.get(self.features[j], self.features[j])
                if group not in groups:
                    groups.add(group)
                    picked.append(j)
            picked += [j for j in candidates if j not in picked]
            chosen: list[int] = []
            seen: set[str] = set()
            for j in picked:
                template = REASON_TEMPLATES[self.features[j]][0]
                if len(chosen) >= top:
                    break
                if template not in seen:
                    seen.add(template)
                    chosen.append(j)
            chosen.sort(key=lambda j: -ranked[r, j])
            out.append([Reason(self.features[j], REASON_TEMPLATES[self.features[j]][0],
                               REASON_TEMPLATES[self.features[j]][1](float(X[r, j])))
                        for j in chosen])
        return out

    def assess(self, table: F.FeatureTable, thresholds: Thresholds | None = None) -> Assessment:
        """Scores, decisions and reasons for every account of a feature table."""
        X = self._matrix(table)
        scores = self.score_matrix(X) if len(X) else np.zeros(0)
        reasons = self.reasons(X) if len(X) else []
        return Assessment(accounts=table.accounts, X=X, scores=scores,
                          decisions=self.decide(X, scores, reasons, thresholds), reasons=reasons)

    def describe(self) -> dict[str, Any]:
        return {"format_version": self.format_version, "model_version": self.model_version,
                "features": len(self.features), "training_hash": self.training_hash,
                "thresholds": self.thresholds.as_dict(), "metrics": self.metrics}


# -- persistence ---------------------------------------------------------------------------


def save(model: RiskModel, path: str | Path) -> Path:
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    envelope = {"format": "smarttickets-risk-model", "format_version": model.format_version,
                "model": model}
    joblib.dump(envelope, path, compress=3)
    return path


def load(path: str | Path) -> RiskModel:
    """Load a model file; other format versions and foreign files are refused with a reason."""
    import joblib

    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    try:
        envelope = joblib.load(path)
    except Exception as exc:
        raise ModelError(f"model file {path} cannot be read: {exc}") from exc
    if not isinstance(envelope, dict) or envelope.get("format") != "smarttickets-risk-model":
        raise ModelError(f"{path} is not a SmartTickets risk model file")
    version = envelope.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(f"model file {path} has format version {version}; this version of "
                         f"SmartTickets reads format version {FORMAT_VERSION}. Retrain it with "
                         "`smarttickets risk train`.")
    model = envelope.get("model")
    if not isinstance(model, RiskModel) or model.format_version != FORMAT_VERSION:
        raise ModelError(f"model file {path} is damaged: no model of format {FORMAT_VERSION}")
    return model


# -- training ------------------------------------------------------------------------------


@dataclass
class Dataset:
    table: F.FeatureTable
    y: np.ndarray
    kinds: list[str]
    rows: np.ndarray          # row numbers of table that have labels
    stats: logio.ReadStats


def load_dataset(log_path: str | Path, labels_path: str | Path | None,
                 progress: bool = False) -> Dataset:
    stats = logio.ReadStats()
    events: Iterable[dict[str, Any]] = logio.iter_events(log_path, stats)
    if progress:
        from tqdm import tqdm

        events = tqdm(events, desc="reading log", unit="ev", mininterval=1.0)
    table = F.FeatureBuilder().add_many(events).build()
    labels: dict[str, int] = {}
    kinds: dict[str, str] = {}
    if labels_path is not None and Path(labels_path).exists():
        labels, kinds, _errors = logio.read_labels(labels_path)
    rows = np.array([i for i, a in enumerate(table.accounts) if a in labels], dtype=np.int64)
    y = np.array([labels[table.accounts[i]] for i in rows], dtype=np.int64)
    return Dataset(table=table, y=y, kinds=[kinds.get(table.accounts[i], "") for i in rows],
                   rows=rows, stats=stats)


def check_trainable(y: np.ndarray, labels_path: str | Path | None) -> None:
    if labels_path is None or not Path(labels_path).exists():
        raise ModelError(f"cannot train without labels: {labels_path} does not exist")
    if len(y) == 0:
        raise ModelError("cannot train without labels: no account in the labels file appears in "
                         "the log (is the labels file empty?)")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        which = "scalper/bot (label 1)" if positives == 0 else "fan (label 0)"
        raise ModelError(f"cannot train: the labels have no {which} accounts; both classes are "
                         "needed")
    if min(positives, len(y) - positives) < 5:
        raise ModelError("cannot train: each class needs at least 5 labelled accounts")


def group_split(groups: np.ndarray, y: np.ndarray, valid_share: float,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split by linked group so a ring never sits on both sides (no leak through the graph)."""
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=10, test_size=valid_share, random_state=seed)
    for train_idx, valid_idx in splitter.split(np.zeros(len(y)), y, groups):
        if 0 < y[valid_idx].sum() < len(valid_idx) and 0 < y[train_idx].sum() < len(train_idx):
            return train_idx, valid_idx
    raise ModelError("cannot train: the labelled accounts are too few to hold some of each "
                     "class out for validation")


def fit_platt(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1.0)
    lr.fit(raw.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def choose_thresholds(scores: np.ndarray, y: np.ndarray) -> Thresholds:
    """Block above every validation fan with room to spare; review and challenge by fan rate."""
    fans = np.sort(scores[y == 0])
    top_fan = float(fans[-1]) if len(fans) else 0.5
    # Halfway from the highest fan to certainty, and never below 0.9: a block must be rare.
    block = max(0.9, top_fan + (1.0 - top_fan) * 0.5)
    review = float(np.quantile(fans, 1 - REVIEW_FAN_RATE)) if len(fans) else 0.5
    challenge = float(np.quantile(fans, 1 - CHALLENGE_FAN_RATE)) if len(fans) else 0.2
    review = min(max(review, 0.3), block)
    challenge = min(max(challenge, 0.1), review)
    return Thresholds(challenge=round(challenge, 6), review=round(review, 6),
                      block=round(min(block, 0.999999), 6))


def evaluate(scores: np.ndarray, y: np.ndarray, decisions: list[str],
             kinds: list[str] | None = None) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    out: dict[str, Any] = {"accounts": len(y), "scalpers": int(y.sum())}
    if 0 < y.sum() < len(y):
        out["roc_auc"] = round(float(roc_auc_score(y, scores)), 5)
        out["average_precision"] = round(float(average_precision_score(y, scores)), 5)
        fpr, tpr, _ = roc_curve(y, scores)
        out["recall_at_1pct_fpr"] = round(float(np.interp(0.01, fpr, tpr)), 5)
    decisions = np.array(decisions)
    for d in DECISIONS:
        out[f"fans_{d}"] = int(((decisions == d) & (y == 0)).sum())
        out[f"scalpers_{d}"] = int(((decisions == d) & (y == 1)).sum())
    flagged = np.isin(decisions, ("review", "block"))
    out["recall_review_or_block"] = round(float(flagged[y == 1].mean()), 5) if y.sum() else None
    out["fan_fpr_review_or_block"] = round(float(flagged[y == 0].mean()), 5) if (y == 0).any() \
        else None
    if kinds is not None:
        by_kind: dict[str, dict[str, float]] = {}
        karr = np.array(kinds)
        for kind in sorted(set(kinds)):
            mask = karr == kind
            by_kind[kind] = {"accounts": int(mask.sum()),
                             "flagged": round(float(flagged[mask].mean()), 4),
                             "blocked": round(float((decisions[mask] == "block").mean()), 4)}
        out["by_kind"] = by_kind
    return out


def train(log_path: str | Path, labels_path: str | Path | None, *, seed: int = 0,
          progress: bool = False, max_iter: int = 300, members: int = 1,
          log: Callable[[str], None] = lambda _msg: None,
          extra: Iterable[tuple[str | Path, str | Path]] = ()) -> RiskModel:
    """Train on one labelled log, or on a mix of logs (``extra``: more (log, labels) pairs).

    Each log gets its own features (its own ``Context``), so logs from differently paced
    platforms mix without one's human pace looking like another's bots. With ``members`` > 1
    the model is the mean of that many trainings on different draws of the training groups
    (``Bagged``); calibration, thresholds and the figures come from the same held-out groups.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from tqdm import tqdm

    pairs = [(log_path, labels_path), *extra]
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]] = []
    group_base = 0
    for lp, lab in pairs:
        if lab is None or not Path(lab).exists() or Path(lab).stat().st_size == 0:
            raise ModelError(f"cannot train without labels: {lab} is missing or empty")
        data = load_dataset(lp, lab, progress=progress)
        log(f"log {lp}: {data.stats.summary()}")
        check_trainable(data.y, lab)
        groups = (data.table.components[data.rows] if data.table.components is not None
                  else np.arange(len(data.y)))
        X_log, y_log = data.table.X[data.rows], data.y
        # An adversary that did nothing in the log (a collector its ring never fed) looks like
        # any fan who only browsed: training on it teaches "quiet is suspicious", nothing else.
        keep = ~((y_log == 1) & ~_active(X_log, F.FEATURES))
        # Linked groups are numbered per log: offset them so two logs never share a group.
        blocks.append((X_log[keep], y_log[keep], groups[keep] + group_base,
                       [data.kinds[i] for i in np.flatnonzero(keep)]))
        group_base += int(groups.max()) + 1 if len(groups) else 0
    X = np.vstack([b[0] for b in blocks])
    y = np.concatenate([b[1] for b in blocks])
    groups = np.concatenate([b[2] for b in blocks])
    kinds = [k for b in blocks for k in b[3]]
    train_idx, valid_idx = group_split(groups, y, 0.3, seed)
    log(f"training on {len(train_idx)} accounts from {len(pairs)} log(s), validating on "
        f"{len(valid_idx)}")

    impute = fan_medians(X[train_idx], y[train_idx])
    X = np.where(np.isnan(X), impute, X)
    fitted = []
    draws = _member_draws(groups[train_idx], y[train_idx], members, seed)
    for k, rows in enumerate(tqdm(draws, desc="fitting gradient-boosted trees", unit="model",
                                  disable=not progress)):
        estimator = HistGradientBoostingClassifier(
            # Each split sees half the features and leaves are large: the score rests on many
            # signals at once, so one feature behaving differently elsewhere moves it less.
            max_iter=max_iter, learning_rate=0.06, max_leaf_nodes=31, min_samples_leaf=80,
            l2_regularization=2.0, max_features=0.5, early_stopping=True,
            validation_fraction=0.15, n_iter_no_change=20, random_state=seed * 1000 + k,
            monotonic_cst=[F.MONOTONE.get(name, 0) for name in F.FEATURES],
        )
        fitted.append(estimator.fit(X[train_idx[rows]], y[train_idx[rows]]))
    estimator = Bagged(fitted) if len(fitted) > 1 else fitted[0]
    raw_valid = estimator.decision_function(X[valid_idx])
    calibration = fit_platt(raw_valid, y[valid_idx])
    files = [p for pair in pairs for p in pair]
    model = RiskModel(model_version="", features=list(F.FEATURES), estimator=estimator,
                      calibration=calibration, thresholds=Thresholds(0.5, 0.5, 0.5),
                      training_hash=file_sha256(*files), impute=impute)
    valid_scores = model.calibrate(raw_valid)
    model.thresholds = choose_thresholds(valid_scores, y[valid_idx])
    model.fan_quantiles, model.directions = fan_baselines(X[train_idx], y[train_idx])
    model.importances = permutation_importances(model, X[valid_idx], y[valid_idx], seed)
    Xv = X[valid_idx]
    decisions = model.decide(Xv, valid_scores, model.reasons(Xv))
    model.metrics = {"validation": evaluate(valid_scores, y[valid_idx], decisions,
                                            [kinds[i] for i in valid_idx]),
                     "iterations": int(estimator.n_iter_), "logs": len(pairs)}
    model.model_version = f"hgb-{model.training_hash[:12]}-s{seed}"
    return model


MEMBER_SHARE = 0.8


def _member_draws(groups: np.ndarray, y: np.ndarray, members: int,
                  seed: int) -> list[np.ndarray]:
    """Row numbers each ensemble member trains on: all of them for a single model, else a
    draw of ``MEMBER_SHARE`` of the linked groups (a ring is in or out whole) per member."""
    if members <= 1:
        return [np.arange(len(y))]
    rng = np.random.default_rng(seed)
    unique = np.unique(groups)
    draws = []
    for _k in range(members):
        chosen = rng.choice(unique, size=max(1, round(len(unique) * MEMBER_SHARE)),
                            replace=False)
        rows = np.flatnonzero(np.isin(groups, chosen))
        if 0 < y[rows].sum() < len(rows):
            draws.append(rows)
    return draws or [np.arange(len(y))]


def _active(X: np.ndarray, features: list[str]) -> np.ndarray:
    """Rows that tried to get tickets, or received or moved them (``ACTIVITY_FEATURES``)."""
    cols = [features.index(n) for n in ACTIVITY_FEATURES if n in features]
    return np.nansum(X[:, cols], axis=1) > 0


def fan_medians(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each feature's median over the fans that have it (0 where no fan has it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(X[y == 0], axis=0)
    return np.nan_to_num(medians, nan=0.0)


def fan_baselines(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature fan percentiles and the direction in which scalpers differ from fans."""
    fans, scalpers = X[y == 0], X[y == 1]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            quantiles = np.nanpercentile(fans, [1, 50, 99], axis=0)
            fan_mean = np.nanmean(fans, axis=0)
            bad_mean = np.nanmean(scalpers, axis=0)
    quantiles = np.nan_to_num(quantiles, nan=0.0)
    diff = np.nan_to_num(bad_mean - fan_mean)
    directions = np.sign(diff)
    # Where the direction is known (the training constraints), it is not left to the data.
    for j, name in enumerate(F.FEATURES[: len(directions)]):
        if F.MONOTONE.get(name):
            directions[j] = F.MONOTONE[name]
    return quantiles, directions


def permutation_importances(model: RiskModel, X: np.ndarray, y: np.ndarray, seed: int,
                            sample: int = 3000) -> np.ndarray:
    """Mean increase in log loss when one feature is shuffled (AUC saturates on easy data)."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(seed)
    if len(y) > sample:
        idx = rng.choice(len(y), sample, replace=False)
        X, y = X[idx], y[idx]
    if y.min() == y.max():
        return np.zeros(X.shape[1])
    base = log_loss(y, model.score_matrix(X), labels=[0, 1])
    out = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        Xp = X.copy()
        Xp[:, j] = rng.permutation(Xp[:, j])
        out[j] = max(log_loss(y, model.score_matrix(Xp), labels=[0, 1]) - base, 0.0)
    return out

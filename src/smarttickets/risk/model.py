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
BLOCK_MIN_REASONS = 2
FAST_ROWS = 8
ACTIVITY_FEATURES = ("holds", "entries", "orders", "transfers_out", "transfers_in")


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
    "fill_s_median": (gettext_noop("forms filled in %(x).1f s on average"), lambda v: {"x": v}),
    "checkout_fill_s_min": (gettext_noop("checkout filled in %(x).1f s"), lambda v: {"x": v}),
    "keys_per_s_max": (gettext_noop("typed %(x).0f keys per second"), lambda v: {"x": v}),
    "forms_no_telemetry": (gettext_noop("%(n)d forms sent without browser signals"),
                           lambda v: {"n": int(v)}),
    "zero_pointer_forms_frac": (gettext_noop("forms submitted without moving the pointer"),
                                lambda v: {}),
    "iat_log_std": (gettext_noop("requests arrive at machine-regular intervals"), lambda v: {}),
    "iat_cv": (gettext_noop("requests arrive at machine-regular intervals"), lambda v: {}),
    "iat_median_s": (gettext_noop("%(x).1f s between requests"), lambda v: {"x": v}),
    "iat_min_s": (gettext_noop("requests %(x).2f s apart"), lambda v: {"x": v}),
    "queue_to_hold_s_min": (gettext_noop("held seats %(x).1f s after leaving the queue"),
                            lambda v: {"x": v}),
    "automation_ua": (gettext_noop("browser identifies as an automation tool"), lambda v: {}),
    "age_at_first_action_h": (gettext_noop("account created %(x).1f h before its first entry or purchase"),
                              lambda v: {"x": v}),
    "ips_per_session": (gettext_noop("%(x).1f IP addresses per session"), lambda v: {"x": v}),
    "devices_per_session": (gettext_noop("new device on most sessions"), lambda v: {}),
    "ips": (gettext_noop("seen from %(n)d IP addresses"), lambda v: {"n": int(v)}),
    "devices": (gettext_noop("seen on %(n)d devices"), lambda v: {"n": int(v)}),
    "entry_performances": (gettext_noop("entered the lottery for %(n)d performances"),
                           lambda v: {"n": int(v)}),
    "entry_qty_mean": (gettext_noop("always asks for the most tickets allowed"), lambda v: {}),
    "hold_qty_mean": (gettext_noop("always holds the most tickets allowed"), lambda v: {}),
    "holds": (gettext_noop("%(n)d hold attempts"), lambda v: {"n": int(v)}),
    "tickets": (gettext_noop("bought %(n)d tickets"), lambda v: {"n": int(v)}),
    "transfers_out": (gettext_noop("transferred %(n)d tickets away"), lambda v: {"n": int(v)}),
    "payment_failures": (gettext_noop("%(n)d failed payments"), lambda v: {"n": int(v)}),
    "cards": (gettext_noop("used %(n)d payment cards"), lambda v: {"n": int(v)}),
    "login_failures": (gettext_noop("%(n)d failed logins"), lambda v: {"n": int(v)}),
    "page_views_per_action": (gettext_noop("buys without browsing"), lambda v: {}),
    "sessions": (gettext_noop("%(n)d separate sessions"), lambda v: {"n": int(v)}),
}
MODEL_UNAVAILABLE = Reason("model_unavailable", gettext_noop("model unavailable"), {})


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
    format_version: int = FORMAT_VERSION

    # -- scoring ----------------------------------------------------------------------------

    def _matrix(self, table: F.FeatureTable) -> np.ndarray:
        if table.names == self.features:
            return table.X
        missing = [n for n in self.features if n not in table.names]
        if missing:
            raise ModelError(f"the model needs features this version does not compute: {missing}")
        return table.X[:, [table.names.index(n) for n in self.features]]

    def raw(self, X: np.ndarray) -> np.ndarray:
        if len(X) <= FAST_ROWS:
            fast = self._fast()
            if fast is not None:
                return np.array([fast(row) for row in X.tolist()])
        from threadpoolctl import threadpool_limits

        # OpenMP threads fight over a busy machine; one thread is faster and predictable.
        with threadpool_limits(limits=1):
            return self.estimator.decision_function(X)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_fast_cache", None)  # a closure: rebuilt after loading
        return state

    def _fast(self) -> Callable[[list[float]], float] | None:
        """A plain-Python walk of the fitted trees for a handful of rows.

        sklearn's predict costs ~30 µs per tree in call overhead; the live decision scores one
        row and has a 5 ms budget. Equality with ``decision_function`` is tested.
        """
        cached = getattr(self, "_fast_cache", None)
        if cached is not None:
            return cached or None
        try:
            trees = [[tuple(node) for node in p[0].nodes[
                ["feature_idx", "num_threshold", "missing_go_to_left", "left", "right",
                 "is_leaf", "value"]].tolist()] for p in self.estimator._predictors]
            baseline = float(np.ravel(self.estimator._baseline_prediction)[0])
        except (AttributeError, IndexError, KeyError, ValueError):
            self._fast_cache = False
            return None

        def predict(row: list[float]) -> float:
            total = baseline
            for nodes in trees:
                node = nodes[0]
                while not node[5]:
                    x = row[node[0]]
                    go_left = node[2] if x != x else x <= node[1]
                    node = nodes[node[3] if go_left else node[4]]
                total += node[6]
            return total

        self._fast_cache = predict
        return predict

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        z = np.clip(a * raw + b, -50, 50)
        return 1.0 / (1.0 + np.exp(-z))

    def score_matrix(self, X: np.ndarray) -> np.ndarray:
        return self.calibrate(self.raw(X))

    def score(self, table: F.FeatureTable) -> np.ndarray:
        return self.score_matrix(self._matrix(table))

    def decide(self, X: np.ndarray, scores: np.ndarray, reasons: list[list[Reason]],
               thresholds: Thresholds | None = None) -> list[str]:
        """Thresholds first, then a rule of reason: a block needs evidence a person can read.

        An account is only blocked when it has tried to get tickets (or received or moved them)
        and at least ``BLOCK_MIN_REASONS`` of its features lie beyond the fan range; otherwise the
        strongest answer is a review by staff.
        """
        th = thresholds or self.thresholds
        active = self._activity(X)
        out = []
        for i, s in enumerate(scores):
            decision = th.decide(float(s))
            if decision == "block" and (not active[i] or len(reasons[i]) < BLOCK_MIN_REASONS):
                decision = "review"
            out.append(decision)
        return out

    def _activity(self, X: np.ndarray) -> np.ndarray:
        cols = [self.features.index(n) for n in ACTIVITY_FEATURES if n in self.features]
        return np.nansum(X[:, cols], axis=1) > 0

    def reasons(self, X: np.ndarray, top: int = 3) -> list[list[Reason]]:
        """Top reasons per row: features most beyond the fan range, weighted by importance."""
        if self.fan_quantiles is None or self.directions is None:
            return [[] for _ in range(len(X))]
        p1, p50, p99 = self.fan_quantiles
        spread_hi = np.maximum(p99 - p50, 1e-6)
        spread_lo = np.maximum(p50 - p1, 1e-6)
        with np.errstate(invalid="ignore"):
            high = np.where(p99 < X, (X - p99) / spread_hi + 1.0, 0.0)
            low = np.where(p1 > X, (p1 - X) / spread_lo + 1.0, 0.0)
        strength = np.where(self.directions > 0, high, np.where(self.directions < 0, low, 0.0))
        strength = np.nan_to_num(np.minimum(strength, 5.0))
        weights = np.maximum(self.importances if self.importances is not None
                             else np.ones(len(self.features)), 1e-4)
        ranked = strength * weights
        usable = np.array([name in REASON_TEMPLATES for name in self.features])
        ranked[:, ~usable] = 0.0
        out: list[list[Reason]] = []
        order = np.argsort(-ranked, axis=1)[:, : top * 2]
        for r in range(len(X)):
            reasons: list[Reason] = []
            seen: set[str] = set()
            for j in order[r]:
                if ranked[r, j] <= 0 or len(reasons) >= top:
                    break
                name = self.features[j]
                template, params = REASON_TEMPLATES[name]
                if template in seen:
                    continue
                seen.add(template)
                reasons.append(Reason(name, template, params(float(X[r, j]))))
            out.append(reasons)
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
          progress: bool = False, max_iter: int = 300,
          log: Callable[[str], None] = lambda _msg: None) -> RiskModel:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if labels_path is None or not Path(labels_path).exists() \
            or Path(labels_path).stat().st_size == 0:
        raise ModelError(f"cannot train without labels: {labels_path} is missing or empty")
    data = load_dataset(log_path, labels_path, progress=progress)
    log(f"log: {data.stats.summary()}")
    check_trainable(data.y, labels_path)
    X = data.table.X[data.rows]
    y = data.y
    groups = (data.table.components[data.rows] if data.table.components is not None
              else np.arange(len(y)))
    train_idx, valid_idx = group_split(groups, y, 0.3, seed)
    log(f"training on {len(train_idx)} accounts, validating on {len(valid_idx)}")

    estimator = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=0.08, max_leaf_nodes=31, min_samples_leaf=30,
        l2_regularization=1.0, early_stopping=True, validation_fraction=0.15,
        n_iter_no_change=20, random_state=seed,
    )
    if progress:
        log("fitting gradient-boosted trees")
    estimator.fit(X[train_idx], y[train_idx])
    raw_valid = estimator.decision_function(X[valid_idx])
    calibration = fit_platt(raw_valid, y[valid_idx])
    model = RiskModel(model_version="", features=list(F.FEATURES), estimator=estimator,
                      calibration=calibration, thresholds=Thresholds(0.5, 0.5, 0.5),
                      training_hash=file_sha256(log_path, labels_path))
    valid_scores = model.calibrate(raw_valid)
    model.thresholds = choose_thresholds(valid_scores, y[valid_idx])
    model.fan_quantiles, model.directions = fan_baselines(X[train_idx], y[train_idx])
    model.importances = permutation_importances(model, X[valid_idx], y[valid_idx], seed)
    Xv = X[valid_idx]
    decisions = model.decide(Xv, valid_scores, model.reasons(Xv))
    model.metrics = {"validation": evaluate(valid_scores, y[valid_idx], decisions,
                                            [data.kinds[i] for i in valid_idx]),
                     "iterations": int(estimator.n_iter_)}
    model.model_version = f"hgb-{model.training_hash[:12]}-s{seed}"
    return model


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

"""Evaluation report: one self-contained HTML page with ROC/PR curves, confusion matrix,
feature importances, recall by adversary kind and the IP rule as a baseline."""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from smarttickets.risk import logio
from smarttickets.risk import model as M

IP_RULE_TICKETS = 10


class ReportError(Exception):
    pass


def ip_rule(log_path: str | Path, accounts: list[str]) -> np.ndarray:
    """Baseline: block every account that ordered from an IP with ``IP_RULE_TICKETS``+ tickets."""
    tickets_by_ip: dict[str, int] = defaultdict(int)
    ips_by_account: dict[str, set[str]] = defaultdict(set)
    for ev in logio.iter_events(log_path):
        if ev.get("type") == "order" and ev.get("account"):
            ip = str(ev.get("ip"))
            qty = ev.get("quantity")
            tickets_by_ip[ip] += qty if isinstance(qty, int) and not isinstance(qty, bool) else 0
            ips_by_account[ev["account"]].add(ip)
    return np.array([any(tickets_by_ip[ip] >= IP_RULE_TICKETS for ip in ips_by_account.get(a, ()))
                     for a in accounts])


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(y, scores, decisions, kinds, importances, names, rule, thresholds) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    out: dict[str, str] = {}
    rule_tpr = float(rule[y == 1].mean()) if (y == 1).any() else 0.0
    rule_fpr = float(rule[y == 0].mean()) if (y == 0).any() else 0.0

    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    fpr, tpr, _ = roc_curve(y, scores)
    ax.plot(fpr, tpr, color="#1d4ed8", lw=2, label="model")
    ax.scatter([rule_fpr], [rule_tpr], color="#dc2626", zorder=3, s=50,
               label=f"IP rule (≥{IP_RULE_TICKETS} tickets/IP)")
    ax.axvline(0.01, color="#6b7280", ls=":", lw=1, label="1% false-positive rate")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("False-positive rate (fans flagged) — log scale above 1%")
    ax.set_ylabel("True-positive rate (scalpers caught)")
    ax.set_title("ROC curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    out["roc"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    precision, recall, _ = precision_recall_curve(y, scores)
    ax.plot(recall, precision, color="#1d4ed8", lw=2, label="model")
    rule_precision = float(y[rule].mean()) if rule.any() else 0.0
    ax.scatter([rule_tpr], [rule_precision], color="#dc2626", zorder=3, s=50, label="IP rule")
    ax.set_xlabel("Recall (scalpers caught)")
    ax.set_ylabel("Precision (flagged who are scalpers)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision–recall curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    out["pr"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    matrix = np.array([[sum(1 for d, t in zip(decisions, y, strict=True) if d == dec and t == cls)
                        for dec in M.DECISIONS] for cls in (0, 1)])
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(len(M.DECISIONS)):
            ax.text(j, i, f"{matrix[i, j]}\n{shares[i, j]:.1%}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "#111827", fontsize=10)
    ax.set_xticks(range(len(M.DECISIONS)), [d.capitalize() for d in M.DECISIONS])
    ax.set_yticks([0, 1], ["Fans", "Scalpers"])
    ax.set_title(f"Decisions at thresholds challenge {thresholds.challenge:.3f} · review "
                 f"{thresholds.review:.3f} · block {thresholds.block:.3f}", fontsize=10)
    out["confusion"] = _png(fig)

    order = np.argsort(importances)[::-1][:15][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 5))
    ax.barh([names[i] for i in order], importances[order], color="#1d4ed8")
    ax.set_xlabel("Increase in log loss when the feature is shuffled")
    ax.set_title("Permutation importance (top 15)")
    ax.grid(axis="x", alpha=0.3)
    out["importance"] = _png(fig)

    bad = sorted({k for k, t in zip(kinds, y, strict=True) if t == 1})
    if bad:
        karr = np.array(kinds)
        dec = np.array(decisions)
        flagged = [float(np.isin(dec[karr == k], ("review", "block")).mean()) for k in bad]
        blocked = [float((dec[karr == k] == "block").mean()) for k in bad]
        rule_by = [float(rule[karr == k].mean()) for k in bad]
        fig, ax = plt.subplots(figsize=(6.8, 3.8))
        x = np.arange(len(bad))
        ax.bar(x - 0.27, flagged, 0.27, label="review or block", color="#1d4ed8")
        ax.bar(x, blocked, 0.27, label="block", color="#1e3a8a")
        ax.bar(x + 0.27, rule_by, 0.27, label="IP rule", color="#dc2626")
        ax.set_xticks(x, bad, rotation=20, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Share of accounts")
        ax.set_title("Recall by adversary kind")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        out["kinds"] = _png(fig)
    return out


def build_report(risk_model: M.RiskModel, log_path: str | Path, labels_path: str | Path,
                 out: str | Path, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    data = M.load_dataset(log_path, labels_path)
    log(f"log: {data.stats.summary()}")
    if len(data.y) == 0 or data.y.min() == data.y.max():
        raise ReportError("the report needs labels with both fans and scalpers in the log")
    result = risk_model.assess(data.table)
    X = result.X[data.rows]
    scores = result.scores[data.rows]
    decisions = [result.decisions[i] for i in data.rows]
    accounts = [data.table.accounts[i] for i in data.rows]
    metrics = M.evaluate(scores, data.y, decisions, data.kinds)
    rule = ip_rule(log_path, accounts)
    y = data.y
    rule_stats = {"tpr": float(rule[y == 1].mean()), "fpr": float(rule[y == 0].mean()),
                  "fans_blocked": int((rule & (y == 0)).sum()),
                  "scalpers_blocked": int((rule & (y == 1)).sum())}
    importances = M.permutation_importances(risk_model, X, y, seed=0, sample=2000)
    plots = _plots(y, scores, decisions, data.kinds, importances, risk_model.features, rule,
                   risk_model.thresholds)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(_html(risk_model, metrics, rule_stats, plots, log_path, data.stats),
                         encoding="utf-8")
    return {**metrics, "ip_rule": rule_stats}


def _html(risk_model, metrics, rule, plots, log_path, stats) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><th scope='row'>{e(k)}</th><td>{v['accounts']}</td><td>{v['flagged']:.1%}</td>"
        f"<td>{v['blocked']:.1%}</td></tr>" for k, v in metrics.get("by_kind", {}).items())
    fans = sum(metrics[f"fans_{d}"] for d in M.DECISIONS)
    scalpers = sum(metrics[f"scalpers_{d}"] for d in M.DECISIONS)
    figures = "".join(
        f"<figure><img src='data:image/png;base64,{plots[key]}' alt='{e(alt)}'>"
        f"<figcaption>{e(alt)}</figcaption></figure>"
        for key, alt in [("roc", "ROC curve of the model with the IP rule as a point"),
                         ("pr", "Precision–recall curve with the IP rule as a point"),
                         ("confusion", "Decisions for fans and scalpers at the chosen thresholds"),
                         ("importance", "Permutation importance of the top features"),
                         ("kinds", "Share of each adversary kind flagged, blocked, and caught "
                                   "by the IP rule")] if key in plots)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Scalper detector report</title>
<style>
body{{font:15px/1.5 system-ui,sans-serif;color:#111827;max-width:1180px;margin:0 auto;padding:24px}}
h1{{font-size:1.6rem}} h2{{font-size:1.2rem;margin-top:2rem}}
table{{border-collapse:collapse;margin:.5rem 0}} th,td{{border-bottom:1px solid #e5e7eb;padding:4px 12px;text-align:left}}
td{{font-variant-numeric:tabular-nums}} .grid{{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}}
figure{{margin:0;border:1px solid #e5e7eb;border-radius:8px;padding:8px;background:#fff}} img{{max-width:100%;height:auto}}
figcaption{{color:#4b5563;font-size:.9rem}} .kpi{{display:flex;gap:24px;flex-wrap:wrap}}
.kpi div{{border:1px solid #e5e7eb;border-radius:8px;padding:8px 16px}} .kpi b{{display:block;font-size:1.4rem}}
</style></head><body>
<h1>Scalper detector report</h1>
<p>Model <code>{e(risk_model.model_version)}</code> on <code>{e(str(log_path))}</code>:
{fans} fans and {scalpers} scalper accounts with labels. Log: {e(stats.summary())}.</p>
<div class="kpi">
<div>ROC AUC<b>{metrics.get('roc_auc')}</b></div>
<div>Recall at 1% FPR<b>{metrics.get('recall_at_1pct_fpr')}</b></div>
<div>Scalpers flagged (review or block)<b>{metrics['recall_review_or_block']:.1%}</b></div>
<div>Fans blocked<b>{metrics['fans_block']}</b></div>
<div>IP rule: caught / fans blocked<b>{rule['tpr']:.1%} / {rule['fans_blocked']}</b></div>
</div>
<h2>Plots</h2><div class="grid">{figures}</div>
<h2>Decisions</h2>
<table><thead><tr><th scope="col"></th>{''.join(f'<th scope="col">{d}</th>' for d in M.DECISIONS)}</tr></thead>
<tbody><tr><th scope="row">fans</th>{''.join(f'<td>{metrics[f"fans_{d}"]}</td>' for d in M.DECISIONS)}</tr>
<tr><th scope="row">scalpers</th>{''.join(f'<td>{metrics[f"scalpers_{d}"]}</td>' for d in M.DECISIONS)}</tr></tbody></table>
<h2>By population</h2>
<table><thead><tr><th scope="col">kind</th><th scope="col">accounts</th><th scope="col">review or block</th><th scope="col">block</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>IP rule (≥{IP_RULE_TICKETS} tickets bought from one IP → block)</h2>
<table><tbody><tr><th scope="row">true-positive rate</th><td>{rule['tpr']:.2%}</td></tr>
<tr><th scope="row">false-positive rate</th><td>{rule['fpr']:.2%}</td></tr>
<tr><th scope="row">fans blocked</th><td>{rule['fans_blocked']}</td></tr>
<tr><th scope="row">scalpers blocked</th><td>{rule['scalpers_blocked']}</td></tr></tbody></table>
</body></html>"""

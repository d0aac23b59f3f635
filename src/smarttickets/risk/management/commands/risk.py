"""`smarttickets risk simulate|train|score|report|export|prune|refresh-graphs|default-model`."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarttickets.core import clock


class Command(BaseCommand):
    help = "Scalper detection: simulate logs, train, score, report, export telemetry, prune."

    def add_arguments(self, parser: CommandParser) -> None:
        from smarttickets.risk import model as M

        sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))

        p = sub.add_parser("simulate", help="write a simulated log.jsonl and labels.csv",
                           called_from_command_line=True)
        p.add_argument("--accounts", type=int, required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", required=True, help="output directory")
        p.add_argument("--scenario", choices=["standard", "hard", "varied"], default="standard",
                       help="varied: every knob drawn from the seed (for training mixes)")

        p = sub.add_parser("train", help="train a model from a log and its labels",
                           called_from_command_line=True)
        p.add_argument("log")
        p.add_argument("labels")
        p.add_argument("--also", nargs=2, action="append", default=[],
                       metavar=("LOG", "LABELS"), help="another labelled log to train on "
                       "(repeatable): a mix of platforms generalises better")
        p.add_argument("--out", required=True, help="model file to write")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--members", type=int, default=M.DEFAULT_MEMBERS,
                       help="trainings averaged into the model (1: a single model)")

        p = sub.add_parser("score", help="score every account of a log",
                           called_from_command_line=True)
        p.add_argument("log")
        p.add_argument("--out", required=True, help="scores CSV to write")
        p.add_argument("--model", help="model file (default: the shipped model)")

        p = sub.add_parser("report", help="HTML evaluation report with plots",
                           called_from_command_line=True)
        p.add_argument("--model", help="model file (default: the shipped model)")
        p.add_argument("--log", required=True)
        p.add_argument("--labels", required=True)
        p.add_argument("--out", required=True)

        p = sub.add_parser("export", help="write stored telemetry as a behaviour log",
                           called_from_command_line=True)
        p.add_argument("--out", required=True)
        p.add_argument("--days", type=int, help="only the last N days")

        p = sub.add_parser("prune", help="delete telemetry older than the retention period",
                           called_from_command_line=True)
        p.add_argument("--days", type=int, help="retention in days (default: setting)")

        p = sub.add_parser("refresh-graphs", help="recompute stale live graph rows",
                           called_from_command_line=True)
        p.add_argument("--limit", type=int, default=1000)

        p = sub.add_parser("default-model", help="regenerate the shipped default model",
                           called_from_command_line=True)
        from smarttickets.risk import default_model as D

        p.add_argument("--accounts", type=int, default=D.DEFAULT_ACCOUNTS,
                       help="accounts per world")
        p.add_argument("--worlds", type=int, default=D.DEFAULT_WORLDS,
                       help="simulated worlds: one standard, the rest varied")
        p.add_argument("--seed", type=int, default=D.DEFAULT_SEED)
        p.add_argument("--members", type=int, default=M.DEFAULT_MEMBERS,
                       help="trainings averaged into the model")
        p.add_argument("--out", help="model file (default: the package's data/ file)")

    def handle(self, *args, **opts):
        action = opts["action"]
        handler = getattr(self, "do_" + action.replace("-", "_"))
        try:
            handler(opts)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

    # -- helpers ----------------------------------------------------------------------------

    def say(self, message: str) -> None:
        self.stderr.write(message)

    def _model(self, path: str | None):
        from smarttickets.risk import model as M

        try:
            return M.load(path or M.DEFAULT_MODEL_PATH)
        except M.ModelError as exc:
            raise CommandError(str(exc)) from exc

    def _need_file(self, path: str, what: str) -> None:
        if not Path(path).is_file():
            raise CommandError(f"{what} {path} does not exist")

    def _report_read(self, stats) -> None:
        self.say(f"log: {stats.summary()}")
        for lineno, message in stats.errors[:20]:
            self.say(f"  line {lineno}: {message}")
        if stats.malformed > 20:
            self.say(f"  … and {stats.malformed - 20} more malformed lines")

    # -- actions ----------------------------------------------------------------------------

    def do_simulate(self, opts) -> None:
        from smarttickets.risk import simulate

        started = time.perf_counter()
        world = simulate.simulate(accounts=opts["accounts"], seed=opts["seed"],
                                  scenario=opts["scenario"], progress=opts["accounts"] >= 5000)
        log_path, labels_path = simulate.write(world, opts["out"])
        self.stdout.write(f"wrote {len(world.lines)} events for {len(world.labels)} accounts to "
                          f"{log_path} and {labels_path} in {time.perf_counter() - started:.1f} s")

    def do_train(self, opts) -> None:
        from smarttickets.risk import model as M

        self._need_file(opts["log"], "log file")
        for log_path, _labels in opts["also"]:
            self._need_file(log_path, "log file")
        started = time.perf_counter()
        try:
            trained = M.train(opts["log"], opts["labels"], seed=opts["seed"], progress=True,
                              log=self.say, extra=[tuple(p) for p in opts["also"]],
                              members=opts["members"])
        except M.ModelError as exc:
            raise CommandError(str(exc)) from exc
        M.save(trained, opts["out"])
        valid = trained.metrics["validation"]
        self.stdout.write(
            f"model {trained.model_version} written to {opts['out']} in "
            f"{time.perf_counter() - started:.1f} s\n"
            f"validation: ROC AUC {valid.get('roc_auc')}, recall at 1% FPR "
            f"{valid.get('recall_at_1pct_fpr')}, fans blocked {valid['fans_block']}\n"
            f"thresholds: {json.dumps(trained.thresholds.as_dict())}")

    def do_score(self, opts) -> None:
        from smarttickets.risk import features as F
        from smarttickets.risk import logio

        self._need_file(opts["log"], "log file")
        risk_model = self._model(opts.get("model"))
        started = time.perf_counter()
        stats = logio.ReadStats()
        table = F.FeatureBuilder().add_many(logio.iter_events(opts["log"], stats)).build()
        self._report_read(stats)
        result = risk_model.assess(table)
        out = Path(opts["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["account", "score", "decision", "reasons"])
            for i, account in enumerate(result.accounts):
                reasons = "; ".join(r.text.replace(";", ",") for r in result.reasons[i]) \
                    if result.decisions[i] != "allow" else ""
                writer.writerow([account, f"{float(result.scores[i]):.6f}", result.decisions[i],
                                 reasons])
        counts = {d: result.decisions.count(d) for d in ("allow", "challenge", "review", "block")}
        self.stdout.write(f"scored {len(result.accounts)} accounts with "
                          f"{risk_model.model_version} in {time.perf_counter() - started:.1f} s: "
                          + ", ".join(f"{k} {v}" for k, v in counts.items()))

    def do_report(self, opts) -> None:
        from smarttickets.risk import report

        self._need_file(opts["log"], "log file")
        self._need_file(opts["labels"], "labels file")
        risk_model = self._model(opts.get("model"))
        try:
            summary = report.build_report(risk_model, opts["log"], opts["labels"], opts["out"],
                                          log=self.say)
        except report.ReportError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"report written to {opts['out']}: ROC AUC {summary.get('roc_auc')}, "
                          f"recall at 1% FPR {summary.get('recall_at_1pct_fpr')}, fans blocked "
                          f"{summary.get('fans_block')}")

    def do_export(self, opts) -> None:
        from datetime import timedelta

        from smarttickets.risk import logio
        from smarttickets.risk.services import iter_spec_events

        since = clock.now() - timedelta(days=opts["days"]) if opts.get("days") else None
        target = sys.stdout if opts["out"] == "-" else opts["out"]
        count = logio.write_events(iter_spec_events(since=since), target)
        self.say(f"exported {count} events")

    def do_prune(self, opts) -> None:
        from smarttickets.core.exceptions import DomainError
        from smarttickets.risk.services import prune_events

        try:
            deleted = prune_events(now=clock.now(), days=opts.get("days"))
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(f"deleted {deleted} risk events")

    def do_refresh_graphs(self, opts) -> None:
        from smarttickets.risk.decisions import refresh_stale_graphs

        if opts["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        done = refresh_stale_graphs(now=clock.now(), limit=opts["limit"])
        self.stdout.write(f"refreshed {done} graph rows")

    def do_default_model(self, opts) -> None:
        from smarttickets.risk import default_model

        path = default_model.regenerate(accounts=opts["accounts"], seed=opts["seed"],
                                        worlds=opts["worlds"], out=opts.get("out"),
                                        members=opts["members"], log=self.say)
        self.stdout.write(f"default model written to {path} ({path.stat().st_size} bytes)")

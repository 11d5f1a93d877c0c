"""The paper's results table for one checkpoint: BFCL columns, API-Bank levels and overall, Bamboogle.

One row in the paper's layout (its tables 3-5 side by side), built from the benchmarks' score
reports, with a header naming what produced it: the protocol, the bfcl-eval version, the
backend, the decoding of each benchmark and the item limit. With several seeds every cell is
the mean over the seeds, with its spread (sample standard deviation, minimum and maximum) in
the JSON. A benchmark skipped for want of an input is shown as skipped (the reason is listed);
one not asked for, as not run.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolrl_trl.eval.common import ScoreReport, format_percent, format_table

#: (benchmark, key, header) in the paper's column order; keys index :func:`columns_of`'s values.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("bfcl", "overall", "BFCL Overall*"),
    ("bfcl", "non_live_ast", "Non-live AST"),
    ("bfcl", "non_live_exec", "Non-live Exec"),
    ("bfcl", "live", "Live"),
    ("bfcl", "multi_turn", "Multi-turn"),
    ("bfcl", "relevance", "Relevance"),
    ("bfcl", "irrelevance", "Irrelevance"),
    ("apibank", "overall", "API-Bank Overall"),
    ("apibank", "1", "Level 1"),
    ("apibank", "2", "Level 2"),
    ("apibank", "3", "Level 3"),
    ("bamboogle", "accuracy", "Bamboogle Acc"),
    ("bamboogle", "exact_match", "EM"),
    ("bamboogle", "f1", "F1"),
    ("bamboogle", "avg_tool_calls", "Avg tool calls"),
)
#: Columns that are counts, not fractions (shown as is, not as a percentage).
COUNT_COLUMNS = {"bamboogle.avg_tool_calls"}


def columns_of(reports: Mapping[str, ScoreReport]) -> dict[str, float | None]:
    """The table's cells (``benchmark.key``: a fraction, a count, or None) from one run's score reports."""
    cells: dict[str, float | None] = {}
    for benchmark, key, _ in COLUMNS:
        report = reports.get(benchmark)
        value = None
        if report is not None:
            summary = report.summary
            if benchmark == "bfcl":
                value = summary["paper_columns"].get(key)
            elif benchmark == "apibank":
                value = summary["accuracy"] if key == "overall" else summary["levels"].get(key, {}).get("accuracy")
            else:
                value = summary.get(key)
        cells[f"{benchmark}.{key}"] = value
    return cells


def _spread(values: Sequence[float | None]) -> dict[str, Any]:
    if not values or any(v is None for v in values):
        return {"mean": None, "std": None, "min": None, "max": None, "values": list(values)}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
        "values": list(values),
    }


@dataclass
class PaperTable:
    """The table as data (:meth:`to_json`), Markdown (:meth:`to_markdown`) and plain text (:meth:`to_text`)."""

    header: dict[str, Any]
    cells: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    notes: list[str]
    v4_summary: dict[str, Any] | None = None
    ran: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        runs: Sequence[Mapping[str, ScoreReport]],
        header: dict[str, Any],
        skipped: Mapping[str, str],
        notes: Sequence[str] = (),
    ) -> PaperTable:
        per_run = [columns_of(run) for run in runs]
        cells = {f"{b}.{k}": _spread([run[f"{b}.{k}"] for run in per_run]) for b, k, _ in COLUMNS}
        v4 = None
        if runs and "bfcl" in runs[0]:
            v4_runs = [run["bfcl"].summary["bfcl_v4_summary"] for run in runs]
            v4 = {key: _spread([r[key] for r in v4_runs]) for key in v4_runs[0]}
        ran = tuple(b for b in ("bfcl", "apibank", "bamboogle") if runs and b in runs[0])
        return cls(dict(header), cells, dict(skipped), list(notes), v4, ran)

    def cell(self, benchmark: str, key: str) -> str:
        if benchmark in self.skipped:
            return "skipped"
        if benchmark not in self.ran:
            return "not run"
        spread = self.cells[f"{benchmark}.{key}"]
        show = (lambda v: f"{v:.2f}") if f"{benchmark}.{key}" in COUNT_COLUMNS else format_percent
        if spread["mean"] is None:
            return "N/A"
        if spread["std"] is None:
            return show(spread["mean"])
        std = f"{spread['std']:.2f}" if f"{benchmark}.{key}" in COUNT_COLUMNS else f"{100 * spread['std']:.2f}"
        return f"{show(spread['mean'])} ± {std}"

    def _title(self) -> str:
        h = self.header
        return (
            f"ToolRL paper table: {h.get('model', '')} (protocol {h.get('protocol')}, "
            f"output format {h.get('output_format', 'toolrl')}, "
            f"bfcl-eval {h.get('bfcl_eval_version')}, backend {h.get('backend')}, "
            f"seeds {h.get('seeds') or 'none (greedy)'}, limit {h.get('limit') or 'none'})"
        )

    def _header_lines(self) -> list[str]:
        lines = [f"decoding {name}: {text}" for name, text in self.header.get("decoding", {}).items()]
        lines += [f"{name} skipped: {reason}" for name, reason in self.skipped.items()]
        lines += list(self.notes)
        return lines

    def _v4_line(self) -> str | None:
        if not self.v4_summary:
            return None
        parts = []
        for key, spread in self.v4_summary.items():
            parts.append(f"{key} {format_percent(spread['mean'])}")
        return "bfcl-eval v4 summary (its own eval_runner_helper, NOT the paper's formulas): " + ", ".join(parts)

    def to_text(self) -> str:
        headers = ["Model", *(h for _, _, h in COLUMNS)]
        row = [Path(str(self.header.get("model", "model"))).name or "model", *(self.cell(b, k) for b, k, _ in COLUMNS)]
        lines = [format_table(headers, [row], title=self._title()), *self._header_lines()]
        if (v4 := self._v4_line()) is not None:
            lines.append(v4)
        return "\n".join(lines)

    def to_markdown(self) -> str:
        headers = ["Model", *(h for _, _, h in COLUMNS)]
        row = [Path(str(self.header.get("model", "model"))).name or "model", *(self.cell(b, k) for b, k, _ in COLUMNS)]
        lines = [
            f"**{self._title()}**",
            "",
            "| " + " | ".join(headers) + " |",
            "|---|" + "---:|" * (len(headers) - 1),
            "| " + " | ".join(row) + " |",
            "",
        ]
        lines += [f"- {line}" for line in self._header_lines()]
        if (v4 := self._v4_line()) is not None:
            lines.append(f"- {v4}")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        columns = [
            {
                "benchmark": b,
                "key": k,
                "header": h,
                "ran": b in self.ran,
                "skipped": b in self.skipped,
                **self.cells[f"{b}.{k}"],
            }
            for b, k, h in COLUMNS
        ]
        return {
            **self.header,
            "columns": columns,
            "skipped": self.skipped,
            "notes": self.notes,
            "bfcl_v4_summary": self.v4_summary,
        }

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """``results.json`` and ``results.md`` in ``folder`` (model cards embed ``results.md``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / "results.json", folder / "results.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path

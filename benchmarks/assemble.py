"""Rebuild BENCHMARKS.md from the per-topic result files in benchmarks/results/."""

from __future__ import annotations

import pathlib

ORDER = ["grpo", "sampling", "core_scoring", "math_eval", "json_eval", "code_exec", "tool_agent"]
HEADER = """# Benchmarks

Every number here comes from a script in `benchmarks/`, run with the command shown, on the
machine and date shown. Speeds are compared with the tool a user would otherwise pick, in the
same run, and reported as ratios: these machines are noisy, and several results were measured on
a 2-core CPU shared with other jobs (each section says so).
"""


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent
    results = root / "results"
    names = sorted(p.stem for p in results.glob("*.md"))
    ordered = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    parts = [HEADER] + [(results / f"{name}.md").read_text(encoding="utf-8").strip() + "\n" for name in ordered]
    (root.parent / "BENCHMARKS.md").write_text("\n".join(parts), encoding="utf-8")


if __name__ == "__main__":
    main()

"""``make bench``: runs every benchmark module ``pipeline/bench_*.py`` (each has ``main() -> None``).

Benchmarks print figures (throughput, memory, ratios); they are measurements, not tests.
Run one: ``python -m pipeline.bench zeroshot`` runs ``pipeline/bench_zeroshot.py`` only.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pipeline


def available() -> list[str]:
    return sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules(pipeline.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"error: no benchmark {unknown}; available: {available()}", file=sys.stderr)
        return 2
    if not names:
        print("no benchmarks yet")
    for name in names:
        print(f"=== bench {name}", flush=True)
        importlib.import_module(f"pipeline.bench_{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``make bench``: runs every benchmark module in ``benchmarks/`` (each has ``main() -> None``).

Benchmarks print figures (throughput, memory, ratios); they are measurements, not tests.
Run one: ``python -m benchmarks zeroshot`` runs ``benchmarks/zeroshot.py`` only.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


# Run only when named: the active-learning simulation retrains the default model 46 times
# (about 8 hours on 2 CPU cores; ~13 minutes with STANCE_AL_SET="model.backend=tfidf").
ON_REQUEST = {"active_learning"}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or [n for n in available() if n not in ON_REQUEST]
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"error: no benchmark {unknown}; available: {available()}", file=sys.stderr)
        return 2
    if not names:
        print("no benchmarks yet")
    failed = []
    for name in names:
        print(f"=== bench {name}", flush=True)
        # Each benchmark in a fresh process started from this light one: peak-memory figures
        # (ru_maxrss is inherited across fork and exec) then belong to that benchmark alone.
        code = f"import benchmarks.{name} as m; m.main()"
        if subprocess.run([sys.executable, "-c", code]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: run every benchmark script in bench/ (each writes JSON + a Markdown table), then
assemble docs/results.md. Long: hours on a 2-core CPU; pass names to run a subset:

    python bench/run_all.py data_stats diffusion_jit_toy
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run_all", "make_results"}


def main(names: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_"))
    if names:
        scripts = [p for p in scripts if p.stem in names]
    for script in scripts:
        print(f"== {script.name}", flush=True)
        subprocess.run([sys.executable, str(script)], check=True)
    subprocess.run([sys.executable, str(HERE / "make_results.py")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

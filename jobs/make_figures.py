"""Make the README's figures (docs/img/*.png) from a small scan and a small diffusion chain.

    nice -n 19 python jobs/make_figures.py                    # both, into docs/img/
    nice -n 19 python jobs/make_figures.py --skip-diffusion   # the FN scan only
    python jobs/make_figures.py --work s3://bucket/figures    # the runs on object storage

It runs the same click commands a user types (on an embedded local Ray unless RAY_ADDRESS is set):

    rayflavor scan --islands 2 --time-limit 5m --seed 20 --patience 3000 --out WORK/scan
    rayflavor analyze WORK/scan
    rayflavor diffusion run WORK/run --n-data 20000 --train-steps 4000 --teacher none --rounds 8 --ft-steps 1000 \
        --n-select 10000 --n 20000 --coordinates paper --final-labels central --seed 0
    rayflavor analyze WORK/run

and copies the chosen figures of ``WORK/*/analysis/`` to ``docs/img/``. The runs are deliberately
small (a few minutes on two cores), so the figures show what the output looks like, not the
papers' statistics. WORK defaults to ``$TMPDIR/rayflavor-figures``; on object storage the
figures are drawn into that directory. Delete WORK for fresh runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# figure written by `rayflavor analyze` -> name under docs/img/
FN_FIGURES = {"fn_mee_ordering.png": "fn-mee-ordering.png", "fn_pmns_corner.png": "fn-pmns-corner.png"}
SEESAW_FIGURES = {"seesaw_mbb.png": "seesaw-mbb.png", "seesaw_delta.png": "seesaw-delta.png"}


def _cli(args: list[str]) -> None:
    """Run one rayflavor command as the CLI would; a non-zero exit stops the script."""
    from rayflavor.cli.main import cli

    print("$ rayflavor " + " ".join(args), flush=True)
    t0 = time.monotonic()
    try:
        cli.main(args=args, prog_name="rayflavor", standalone_mode=False)
    except SystemExit as exc:  # click's Exit / ctx.exit
        if exc.code not in (0, None):
            raise
    print(f"  ({time.monotonic() - t0:.0f} s)", flush=True)


def _copy(src_dir: Path, names: dict[str, str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for src, name in names.items():
        if (src_dir / src).is_file():
            shutil.copyfile(src_dir / src, dest / name)
            copied.append(dest / name)
        else:
            print(f"  missing {src_dir / src} (no rows to plot?)", file=sys.stderr)
    return copied


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "rayflavor-figures"), help="Where the runs go (local path or s3://, gs:// URI).")
    p.add_argument("--img", type=Path, default=ROOT / "docs" / "img", help="Where the chosen figures are copied.")
    p.add_argument("--islands", type=int, default=2)
    p.add_argument("--time-limit", default="5m")
    p.add_argument("--seed", type=int, default=20)
    p.add_argument("--patience", type=int, default=3000,
                   help="Generations without improvement before an island stalls (the scan's default gives up "
                        "sooner than a short figure run can afford).")
    p.add_argument("--skip-scan", action="store_true")
    p.add_argument("--skip-diffusion", action="store_true")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--train-steps", type=int, default=4000)
    a = p.parse_args(argv)

    work = a.work.rstrip("/")
    local = "://" not in work
    analysis = Path(work) if local else Path(tempfile.gettempdir()) / "rayflavor-figures"
    copied: list[Path] = []
    if not a.skip_scan:
        scan = f"{work}/scan"
        _cli(["scan", "--islands", str(a.islands), "--time-limit", a.time_limit, "--seed", str(a.seed),
              "--patience", str(a.patience), "--out", scan])
        out = analysis / "scan" / "analysis"
        _cli(["analyze", scan, "--out", str(out)])
        copied += _copy(out, FN_FIGURES, a.img)
    if not a.skip_diffusion:
        run = f"{work}/run"
        _cli(["diffusion", "run", run, "--n-data", "20000", "--train-steps", str(a.train_steps),
              "--teacher", "none", "--rounds", str(a.rounds), "--ft-steps", "1000", "--n-select", "10000", "--n", "20000",
              "--coordinates", "paper", "--final-labels", "central", "--seed", "0"])
        out = analysis / "run" / "analysis"
        _cli(["analyze", run, "--out", str(out)])
        copied += _copy(out, SEESAW_FIGURES, a.img)
    for c in copied:
        print(f"figure: {c.relative_to(ROOT) if c.is_relative_to(ROOT) else c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

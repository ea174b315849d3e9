"""Training metrics: one JSON object per line, optional TensorBoard, a loss-curve PNG at the end.

Each training record holds `step`, `loss`, `grad_norm`, `lr`, `samples_per_s`; evaluation records
hold `step` and `eval/<name>` keys. The JSONL file is the source of truth; TensorBoard (if installed
and asked for) and the PNG are views of it.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


class MetricsWriter:
    """Appends metric records to `<run_dir>/metrics.jsonl` (appending keeps a resumed run's history)."""

    def __init__(self, run_dir: Path, tensorboard: bool = False) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / METRICS_FILE
        self._file = self.path.open("a")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning("tensorboard is not installed: metrics go to %s only", self.path)
            else:
                self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        """Write one record; it must hold an integer `step` and finite-or-NaN numbers."""
        if not isinstance(record.get("step"), int):
            raise ValueError(f"a metrics record needs an integer 'step', got {record.get('step')!r}")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self._tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics JSONL file, in file order."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_loss_curve(metrics_path: Path | dict[str, Path], png_path: Path) -> Path:
    """Plot training loss against step into `png_path`: one run, or several as {label: metrics path} on
    shared axes (e.g. a fine-tune and its from-scratch ablation)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: training machines have no display
    import matplotlib.pyplot as plt

    runs = metrics_path if isinstance(metrics_path, dict) else {"train loss": metrics_path}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, path in runs.items():
        records = read_metrics(path)
        train = [(r["step"], r["loss"]) for r in records if "loss" in r and math.isfinite(r["loss"])]
        if not train:
            plt.close(fig)
            raise ValueError(f"no finite 'loss' records in {path} to plot")
        ax.plot(*zip(*train, strict=True), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (flow matching + weighted auxiliary)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path

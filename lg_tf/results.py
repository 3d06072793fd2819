"""results.json: the run's flags, data counts, per-epoch metrics and final numbers.

Rewritten atomically after every epoch; on resume the epochs after the restored
checkpoint are dropped, so the file never holds an epoch twice or one the model lost.
"""

from __future__ import annotations

import json
import os
import time

from lg_tf.callbacks import write_json_atomic


class Results:
    def __init__(self, path: str, header: dict, resume_epoch: int = 0):
        self.path = path
        self.data = {**header, "epochs": [], "final": {}, "wall_time_s": 0.0}
        if resume_epoch and os.path.exists(path):
            with open(path) as f:
                old = json.load(f)
            self.data["epochs"] = [e for e in old.get("epochs", []) if e["epoch"] <= resume_epoch]
            self.data["wall_time_s"] = sum(e.get("seconds", 0.0) for e in self.data["epochs"])
        self._t0 = time.time()

    def add_epoch(self, epoch: int, scalars: dict, seconds: float) -> None:
        self.data["epochs"] = [e for e in self.data["epochs"] if e["epoch"] < epoch]
        self.data["epochs"].append({"epoch": epoch, "seconds": seconds, **scalars})
        self.data["wall_time_s"] += seconds
        self.write()

    def set(self, key: str, value) -> None:
        self.data[key] = value

    def finish(self, final: dict) -> dict:
        self.data["final"] = final
        self.write()
        return self.data

    def write(self) -> None:
        write_json_atomic(self.path, self.data)

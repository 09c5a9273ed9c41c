"""CPU of writing and restoring one checkpoint of a keyed run, its size, a restore's peak memory.

A detector keyed by ``--keys`` possible keys learns ``--events`` random
events of ``--features`` features (with the defaults about 86,500 keys are
held, one diagonal model each); then one checkpoint is written
(``Detector.to_dict`` and the atomic write) and restored in a fresh process
(read, checked, loaded into a new detector), whose peak resident memory is
the one ``/usr/bin/time -f %M`` reports:

    python bench/checkpoint.py [--keys 100000] [--events 200000] [--features 8]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def settings(keys: int) -> object:
    from stream_detect.settings import DetectorSettings

    return DetectorSettings(key_field="k", max_keys=keys)


def write(path: Path, keys: int, events: int, d: int) -> None:
    """Learn the events, then time one checkpoint write."""
    from stream_detect.detector import Detector
    from stream_detect.state import Checkpoint, save_checkpoint

    rng = np.random.default_rng(0)
    features = tuple(f"f{j}" for j in range(d))
    detector = Detector(settings(keys), features)  # type: ignore[arg-type]
    names = [f"key{k}" for k in rng.integers(0, keys, events).tolist()]
    X = rng.normal(size=(events, d))
    for start in range(0, events, 4096):
        detector.process(X[start : start + 4096], keys=names[start : start + 4096])
    began = time.process_time()
    save_checkpoint(path, Checkpoint(detector.to_dict(), {"line": events, "offset": 0}))
    seconds = time.process_time() - began
    size = path.stat().st_size
    print(f"models held         {len(detector.models):>10,}")
    print(f"write CPU seconds   {seconds:>10.3f}")
    print(f"file size (MB)      {size / 1e6:>10.1f}")


def restore(path: Path, keys: int) -> None:
    """Time one restore: read, check, load into a new detector."""
    from stream_detect.checkpoint_rules import check_detector_state
    from stream_detect.detector import Detector
    from stream_detect.state import load_checkpoint

    began = time.process_time()
    checkpoint = load_checkpoint(path)
    assert checkpoint is not None
    check_detector_state(checkpoint.detector)
    features = tuple(checkpoint.detector["features"])
    detector = Detector(settings(keys), features)  # type: ignore[arg-type]
    detector.restore(checkpoint.detector)
    print(f"restore CPU seconds {time.process_time() - began:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--restore", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restore is not None:
        restore(args.restore, args.keys)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.json"
        write(path, args.keys, args.events, args.features)
        command = [sys.executable, __file__, "--restore", str(path), "--keys", str(args.keys)]
        subprocess.run(command, check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"restore peak RSS MB {peak / 1024:>10.0f}")


if __name__ == "__main__":
    main()

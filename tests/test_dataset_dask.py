"""golden-set on Dask: a LocalCluster in the test, a tiny network and generated images.

- serial and Dask runs give identical logits bytes;
- a worker killed mid-shard (data written, done flag not) on the first attempt only: exit 0,
  every shard done, logits equal to the serial run's, that shard attempted twice;
- a shard that kills every worker it runs on: exit 1 naming it, every other shard done;
- the driver SIGKILLed after some shards and started again computes exactly the missing
  shards and ends equal to an uninterrupted run.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _scratch import scratch
from _dataset import SMALL, cli, image_folder, logits_bytes, need_dask, serial_set, tiny_weights

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster():
    distributed = need_dask()
    import dask
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as c, distributed.Client(c) as client:
        yield c, client


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    need_dask()
    with scratch(tmp_path_factory, "dataset") as root:
        yield serial_set(root, 14, "--shard", 3, "--keep", "layer4.0", "--sample", 2)


def _dask_run(data, cluster, out):
    weights, images, _ = data
    return cli("golden-set", "--weights", weights, "--images", images, "--output", out,
               "--scheduler", cluster[0].scheduler_address, "--threads", 1, "--preprocess", SMALL,
               "--shard", 3, "--keep", "layer4.0", "--sample", 2)


def test_serial_and_dask_logits_are_identical_bytes(data, cluster, tmp_path):
    zarr = pytest.importorskip("zarr")
    code, _, err = _dask_run(data, cluster, tmp_path / "dask.zarr")
    assert code == 0, err
    assert logits_bytes(tmp_path / "dask.zarr") == logits_bytes(data[2])
    a, b = (zarr.open_group(str(p), mode="r") for p in (data[2], tmp_path / "dask.zarr"))
    for name in ("stats/layer4.0", "sample/layer4.0", "input_sha256"):
        assert np.asarray(a[name][:]).tobytes() == np.asarray(b[name][:]).tobytes(), name
    runs = b.attrs["numpy_resnext_golden_set"]["runs"]
    assert runs[-1]["executor"] == "dask" and runs[-1]["workers"] == 2


def test_a_worker_killed_mid_shard_is_replaced_and_its_shard_recomputed(data, cluster, tmp_path):
    zarr = pytest.importorskip("zarr")
    from _dataset_faults import CrashBeforeDone
    client = cluster[1]
    client.register_plugin(CrashBeforeDone(2, tmp_path, always=False))
    try:
        code, _, err = _dask_run(data, cluster, tmp_path / "r.zarr")
    finally:
        client.unregister_worker_plugin(CrashBeforeDone.name)
    assert code == 0, err
    root = zarr.open_group(str(tmp_path / "r.zarr"), mode="r")
    assert root["done"][:].all()
    assert logits_bytes(tmp_path / "r.zarr") == logits_bytes(data[2])
    assert len((tmp_path / "attempts").read_text().split()) == 2           # crashed once, then done
    assert list(root["attempts"][:]) == [1, 1, 2, 1, 1]
    code, text, _ = cli("set-status", tmp_path / "r.zarr")
    assert code == 0 and "2 (2 attempts)" in text


def test_a_poison_shard_ends_the_run_with_exit_1_naming_it(data, tmp_path):
    distributed = need_dask()
    import dask
    from _dataset_faults import CrashBeforeDone
    zarr = pytest.importorskip("zarr")
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}):    # as docs/dataset.md advises
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as c, distributed.Client(c) as client:
            client.register_plugin(CrashBeforeDone(1, tmp_path, always=True))
            code, out, err = _dask_run(data, (c, client), tmp_path / "r.zarr")
    assert code == 1
    assert "shard(s) 1 could not be computed" in err and "killed every worker" in err
    done = zarr.open_group(str(tmp_path / "r.zarr"), mode="r")["done"][:]
    assert list(done) == [True, False, True, True, True]
    assert len((tmp_path / "attempts").read_text().split()) == 2           # allowed-failures 1: 2 deaths
    code, text, _ = cli("set-status", tmp_path / "r.zarr", "--json")
    assert code == 1 and '"missing": [\n  1\n ]' in text


def _done_count(store):
    import zarr
    try:
        return int(np.asarray(zarr.open_group(str(store), mode="r")["done"][:]).sum())
    except Exception:          # not created yet
        return 0


def test_driver_sigkilled_then_restarted_computes_exactly_the_missing_shards(tmp_path):
    need_dask()
    import zarr
    weights = tiny_weights(tmp_path / "tiny.npz")
    images = image_folder(tmp_path / "images", n=48)
    out = tmp_path / "r.zarr"
    options = ["golden-set", "--weights", weights, "--images", images, "--threads", 1,
               "--preprocess", "paddleclas:resize=144,crop=128", "--shard", 2]
    argv = [sys.executable, "-m", "numpy_resnext", *options, "--output", out, "--workers", 2]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    driver = subprocess.Popen([str(a) for a in argv], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while _done_count(out) < 3 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(driver.pid, signal.SIGKILL)             # the driver, its nannies and workers
    driver.wait()
    done_at_kill = np.asarray(zarr.open_group(str(out), mode="r")["done"][:])
    missing = [int(s) for s in np.flatnonzero(~done_at_kill)]
    assert 3 <= done_at_kill.sum() and missing, "the run ended before the kill: make it longer"
    restarted = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=600)
    assert restarted.returncode == 0, restarted.stderr
    runs = zarr.open_group(str(out), mode="r").attrs["numpy_resnext_golden_set"]["runs"]
    assert runs[0]["status"] == "running"                          # the killed run never finished
    assert runs[-1]["computed"] == missing
    serial = tmp_path / "serial.zarr"
    code, _, err = cli(*options, "--workers", 0, "--output", serial)
    assert code == 0, err
    assert logits_bytes(out) == logits_bytes(serial)

"""Several processes (JAX's multi-controller runtime) on this machine, each owning one CPU device.

* 2 processes × 1 device (``launch/local_multiprocess.sh 2``) end with the numbers of 1 process × 2
  devices: the same global batches (each process gathers only its rows), BatchNorm over the global
  batch, validation split across the processes with the padded rows masked;
* a SIGTERM to process 1 alone stops both at the same step with one checkpoint; resumed, the run
  ends identical to the uninterrupted one.
One module-scoped fixture makes every run, two commands at once (the 2-core machine stays busy while
a process imports): 1 process × 2 devices through the CLI, and 2 processes (the launcher) that train
through the CLI's main, then train again, are preempted and resume — three runs in the same two
processes. In-process checks of the per-process data split come first (cheap).
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.helpers import comparable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER = os.path.join(ROOT, "launch", "local_multiprocess.sh")
# 16 training images in batches of 4 (4 steps per epoch, 2 epochs); 11 validation images: the last
# validation batch holds rows 8, 9 on process 0 and row 10 plus one padded row on process 1
ARGS = ["--config=configs/default.py:smoke", "--config.data.num_train=16", "--config.data.num_val=11",
        "--config.train.batch_size=4", "--config.model.depth=2", "--config.train.progress=False"]
STEPS_PER_EPOCH = 4
TIMEOUT = 240

# Three trainings in the same 2 processes (each process imports TensorFlow and JAX once, not three
# times): the CLI's main on workdir argv[1]; then on argv[2] with process 1 sending itself SIGTERM as it
# loads batch 1 of epoch 2 (deterministic: no timing involved); then resuming there.
TWO_PROCESSES = textwrap.dedent("""
    import json, os, signal, sys
    from absl import flags
    from jaxseg import runtime
    runtime.configure_process()
    from jaxseg.cli import train as cli
    from jaxseg.data.pipeline import ArraySource
    from jaxseg.training import trials

    uninterrupted, preempted = sys.argv[1:3]
    flags.FLAGS(["train", *sys.argv[3:], f"--workdir={uninterrupted}"])
    assert cli.main(["train"]) == 0

    config = cli._CONFIG.value
    original = ArraySource.train_batches

    def preempting(self, epoch, start_step=0):
        for i, batch in enumerate(original(self, epoch, start_step), start=start_step):
            if (epoch, i) == (1, 1) and self.process_index == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    me = os.environ["JAXSEG_PROCESS_ID"]
    ArraySource.train_batches = preempting
    print("PREEMPTED", me, json.dumps(trials.run(config, preempted)), flush=True)
    ArraySource.train_batches = original
    print("RESUMED", me, json.dumps(trials.run(config, preempted)), flush=True)
""")


def _source(process_index=0, process_count=1, n_val=11, bs=4):
    from jaxseg.data.pipeline import ArraySource

    x = np.arange(16, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 2, 1), np.float32)
    v = np.arange(n_val, dtype=np.float32)[:, None, None, None] * np.ones((1, 2, 2, 1), np.float32)
    return ArraySource(dict(image=x, mask=x), dict(image=v, mask=v), bs, seed=3,
                       process_index=process_index, process_count=process_count)


def test_each_process_gathers_only_its_rows_of_every_global_batch():
    whole = _source()
    parts = [_source(p, 2) for p in range(2)]
    for epoch in (0, 1):
        idx = [p.local_train_indices(epoch) for p in parts]
        assert idx[0].shape == idx[1].shape == (STEPS_PER_EPOCH, 2)
        np.testing.assert_array_equal(np.concatenate(idx, axis=1), whole.epoch_indices(epoch))
        assert not set(idx[0].ravel()) & set(idx[1].ravel())
        for p, ids in zip(parts, idx):  # what each process serves is exactly its own indices
            served = np.stack([b["image"][:, 0, 0, 0] for b in p.train_batches(epoch)])
            np.testing.assert_array_equal(served, ids)


def test_host_augmentation_gives_each_process_its_rows_of_the_global_batch():
    """Random numbers drawn per global batch (as ``augment_on='host'`` does): the processes' rows
    together are one process's batch."""
    import tensorflow as tf

    def noise(batch, seed):
        return {k: v + tf.random.stateless_uniform(tf.shape(v), seed) for k, v in batch.items()}

    def source(p=0, n=1):
        s = _source(p, n)
        s.augment = noise
        return s

    whole = list(source().train_batches(0))
    parts = [list(source(p, 2).train_batches(0)) for p in range(2)]
    for b, b0, b1 in zip(whole, *parts):
        np.testing.assert_array_equal(np.concatenate([b0["image"], b1["image"]]), b["image"])


def test_validation_is_split_across_processes_with_the_padding_masked():
    parts = [list(_source(p, 2).eval_batches()) for p in range(2)]
    assert [len(b) for b in parts] == [3, 3]
    assert all(b["image"].shape[0] == 2 for p in parts for b in p)
    assert [list(b["valid"]) for b in parts[1]] == [[True, True], [True, True], [True, False]]
    seen = sorted(float(x) for p in parts for b in p for x in b["image"][b["valid"], 0, 0, 0])
    assert seen == list(range(11))
    # a process whose rows of the last batch are all beyond the set still yields it, all padding
    last = list(_source(1, 2, n_val=10).eval_batches())[-1]
    assert not last["valid"].any() and last["image"].shape[0] == 2


def test_the_environment_says_when_to_start_the_multiprocess_runtime():
    from jaxseg.errors import ConfigError
    from jaxseg.training.parallel import distributed_settings

    assert distributed_settings({}) is None
    assert distributed_settings({"SLURM_NTASKS": "1", "JAXSEG_NUM_PROCESSES": "1"}) is None
    assert distributed_settings({"SLURM_NTASKS": "8"}) == {}  # JAX reads the rest from Slurm
    assert distributed_settings({"JAXSEG_NUM_PROCESSES": "2", "JAXSEG_PROCESS_ID": "1",
                                 "JAX_COORDINATOR_ADDRESS": "localhost:1234"}) == {
        "coordinator_address": "localhost:1234", "num_processes": 2, "process_id": 1}
    with pytest.raises(ConfigError, match="JAXSEG_PROCESS_ID not set"):
        distributed_settings({"JAXSEG_NUM_PROCESSES": "2", "JAX_COORDINATOR_ADDRESS": "localhost:1234"})


@pytest.mark.parametrize("args", [[], ["2"], ["two", "--config=configs/default.py"]])
def test_launcher_usage_errors(args):
    proc = subprocess.run(["bash", LAUNCHER, *args], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def _env(**extra) -> dict:
    # every compiled program into the session's persistent cache (conftest: only those over 0.3 s)
    env = dict(os.environ, PY=sys.executable, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env.update(extra)
    return env


def _start(cmd, log_path, **env):
    """A subprocess in its own session (so a hung run's whole tree can be killed), output to a file."""
    log = open(log_path, "w")
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(**env), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True), log_path


def _finish(runs: dict) -> dict:
    """Waits for every run; their outputs. A run that fails or outlives TIMEOUT fails the fixture."""
    out, failed = {}, []
    for name, (proc, log_path) in runs.items():
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with open(log_path) as f:
            out[name] = f.read()
        if proc.returncode != 0:
            failed.append(f"{name} exited {proc.returncode}:\n{out[name][-4000:]}")
    if failed:
        for proc, _ in runs.values():  # the others too: a peer of a failed process could hang
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("\n\n".join(failed))
    return out


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [comparable(json.loads(line)) for line in f]


def _checkpoint(workdir):
    """(state as arrays, meta) of the newest checkpoint in ``workdir/checkpoints/latest``."""
    from jaxseg.training import checkpoint as ckpt

    mngr = ckpt.open_read_only(os.path.join(workdir, "checkpoints", "latest"))
    step = mngr.latest_step()
    return ckpt.read_state(mngr, step), ckpt.read_meta(mngr, step)


def _assert_same_state(a, b):
    import jax

    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The workdirs and outputs of the 1-process run and the 2-process runs, made at the same time."""
    root = tmp_path_factory.mktemp("multiprocess")
    wd = {name: str(root / name) for name in ("one_process", "two_processes", "preempted")}
    out = _finish({
        "one_process": _start([sys.executable, "-m", "jaxseg.main", *ARGS, f"--workdir={wd['one_process']}"],
                              root / "one_process.log", JAX_NUM_CPU_DEVICES="2"),
        "two_processes": _start(["bash", LAUNCHER, "2", "-c", TWO_PROCESSES, wd["two_processes"], wd["preempted"],
                                 *ARGS], root / "two_processes.log"),
    })
    return wd, out["two_processes"]


@pytest.mark.slow
def test_two_processes_equal_one_process_with_two_devices(runs):
    wd, text = runs
    reference, records = _records(wd["one_process"]), _records(wd["two_processes"])
    assert [r["step"] for r in records] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert records == reference  # bit-equal: the same global batches through the same programs
    _assert_same_state(_checkpoint(wd["two_processes"])[0], _checkpoint(wd["one_process"])[0])
    # process 0 alone wrote the logs (2 records, one TensorBoard file); no probe file was left behind
    names = os.listdir(wd["two_processes"])
    assert sum(n.startswith("events.out.tfevents") for n in names) == 1
    assert not any(n.startswith(".write_test") for n in names)
    # process 0 alone prints epochs: epoch 1 of the uninterrupted and the preempted run, epoch 2 of the
    # uninterrupted and the resumed run
    assert text.count("epoch 1: train/loss=") == text.count("epoch 2: train/loss=") == 2


def _result_lines(output: str, tag: str) -> dict:
    """{process id: record} from the driver's ``TAG <process> <json>`` lines."""
    return {int(p): json.loads(rec) for p, rec in
            (line.split(" ", 2)[1:] for line in output.splitlines() if line.startswith(tag + " "))}


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_the_same_step_and_resumes_exactly(runs):
    wd, text = runs
    preempted = _result_lines(text, "PREEMPTED")
    # process 1 received the signal as it loaded step 1 of epoch 2; both stopped and saved after step 2
    # of it (the signal rides into step 1, whose agreed flag every process reads one step later)
    assert sorted(preempted) == [0, 1], text[-4000:]
    assert preempted[1]["preempted"] and preempted[1]["signal"] == signal.SIGTERM
    assert preempted[0]["preempted"] and preempted[0]["signal"] is None
    assert text.count("received SIGTERM") == 1
    assert preempted[0]["step"] == preempted[1]["step"] == STEPS_PER_EPOCH  # their last record: epoch 1
    resumed = _result_lines(text, "RESUMED")
    assert sorted(resumed) == [0, 1] and not any(r.get("preempted") for r in resumed.values())
    assert "Resuming from" in text and f"at step {STEPS_PER_EPOCH + 3} (epoch 2, step 3 of 4)" in text

    assert _records(wd["preempted"]) == _records(wd["two_processes"])
    _assert_same_state(_checkpoint(wd["preempted"])[0], _checkpoint(wd["two_processes"])[0])

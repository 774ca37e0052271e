"""jaxseg.reporting.inspection on tiny checkpoints written directly (no data, no training)."""

import json

import jax
import jax.numpy as jnp
import pytest

from jaxseg.errors import JaxsegError
from jaxseg.training import checkpoint as ckpt_lib
from jaxseg.cli import inspect as inspect_command
from jaxseg.reporting import inspection as inspect_cli
from jaxseg import models
from jaxseg import training as train
from jaxseg.training.optim import build_optimizer


def _write_run(workdir, seed=0, steps=(3, 6), bump=0.0):
    model = models.get_model(dict(name="unet", features=4, depth=2))
    tx = build_optimizer(dict(name="adam", learning_rate=1e-3))
    state = train.create_train_state(model, tx, jax.random.PRNGKey(seed), (16, 16, 1))
    state = state.replace(params=jax.tree_util.tree_map(lambda p: p + bump, state.params))
    c = ckpt_lib.Checkpointer(workdir / "checkpoints")
    for i, s in enumerate(steps):
        c.save(s, state.replace(step=jnp.int32(s)),
               {"epoch": i + 1, "epoch_step": 0, "best": 0.5 + i / 10, "best_metric": "val/dice",
                "metrics": {"val/dice": 0.5 + i / 10}}, best=True)
    c.wait()
    c.close()
    (workdir / "config.json").write_text(json.dumps({"model": {"name": "unet"}, "train": {"epochs": 2}}))
    shapes = sorted((tuple(x.shape), str(x.dtype)) for x in jax.tree_util.tree_leaves(state.params))
    n_opt = sum(x.size for x in jax.tree_util.tree_leaves(state.opt_state))
    return shapes, n_opt


def test_summary_lists_steps_params_and_optimizer_state(tmp_path):
    shapes, n_opt = _write_run(tmp_path)
    n_params = sum(int(jnp.prod(jnp.array(sh))) for sh, _ in shapes)
    manager_dir, workdir = inspect_cli.locate(tmp_path)
    s = inspect_cli.summarize(manager_dir, workdir)
    assert s["steps"] == [3, 6] and s["step"] == 6 and s["best_steps"] == [6]
    assert s["best_metric"] == "val/dice" and s["best"] == pytest.approx(0.6)
    assert sum(r[3] for r in s["params"]) == n_params
    assert sum(r[3] for r in s["opt_state"]) == n_opt
    assert sorted((r[1], r[2]) for r in s["params"]) == shapes
    assert all(r[3] == int(jnp.prod(jnp.array(r[1]))) for r in s["params"])
    text = inspect_cli.render(s)
    assert f"parameters: {n_params:,}" in text and "model=unet" in text
    assert inspect_cli.summarize(manager_dir, workdir, step=3)["epoch"] == 1


def test_every_path_form_is_accepted(tmp_path):
    _write_run(tmp_path, steps=(6,))
    for p in (tmp_path, tmp_path / "checkpoints", tmp_path / "checkpoints" / "best"):
        assert inspect_cli.locate(p)[1] == tmp_path
    with pytest.raises(JaxsegError, match="no orbax checkpoints"):
        inspect_cli.locate(tmp_path / "checkpoints" / "latest" / "6" / "meta")
    with pytest.raises(JaxsegError, match="does not exist"):
        inspect_cli.locate(tmp_path / "nope")


def test_diff_reports_changes(tmp_path, capsys):
    for name, bump in (("a", 0.0), ("b", 0.0), ("c", 0.25)):
        _write_run(tmp_path / name, steps=(6,), bump=bump)
    assert "identical parameters" in inspect_cli.diff(tmp_path / "a/checkpoints/latest",
                                                      tmp_path / "b/checkpoints/latest")
    out = inspect_cli.diff(tmp_path / "a/checkpoints/latest", tmp_path / "c/checkpoints/latest")
    assert "parameters differ" in out and "max|A-B|=2.500e-01" in out
    assert inspect_command.main([str(tmp_path / "a"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 6

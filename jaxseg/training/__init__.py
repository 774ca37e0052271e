"""The training runtime: state and steps, the epoch loop, trials, checkpoints and run logs.

  steps.py         TrainState, create_train_state, make_train_step, make_eval_step
  evaluation.py    evaluate over the validation set; checkpoint_mode
  loop.py          train_and_evaluate(config, workdir): set up, resume, train, evaluate, checkpoint, log
  trials.py        config.train.num_trials seeded trials (sequential or vectorised) + summary.json
  aggregate.py     the thesis's aggregation over trials (last-k median/mean, then mean (std))
  checkpoint.py    orbax checkpoints/latest and checkpoints/best
  config_check.py  every config problem in one message, before anything compiles
  guards.py        preemption (SIGTERM/SIGINT) and the non-finite policy
  optim.py         optimizers and learning-rate schedules
  parallel.py      the device mesh, batch sharding, multi-process start-up
  run_log.py       metrics.jsonl, TensorBoard events, progress bars
  workdir.py       the workdir: created, writable, no writes through symlinks out of it
"""

from jaxseg.training.evaluation import checkpoint_mode, evaluate
from jaxseg.training.loop import train_and_evaluate
from jaxseg.training.steps import TrainState, create_train_state, make_eval_step, make_train_step, trial_key

__all__ = ["TrainState", "checkpoint_mode", "create_train_state", "evaluate", "make_eval_step",
           "make_train_step", "train_and_evaluate", "trial_key"]

#!/usr/bin/env bash
# N training processes on this machine, one JAX multi-controller runtime: process i calls
# jax.distributed.initialize(coordinator_address=localhost:PORT, num_processes=N, process_id=i)
# (jaxseg/training/parallel.py) and owns its own devices — the code path of N GPU hosts. Each
# process reads only its 1/N of every global batch; one mesh spans every process's devices, so
# BatchNorm sees the global batch and the numbers equal one process with all the devices.
# Process 0 writes the logs; checkpoints are written by all processes together.
#   launch/local_multiprocess.sh 2 --config=configs/default.py --workdir=runs/mp
# ARGS are python -m jaxseg.main's; ARGS starting with -m MODULE, -c CODE or FILE.py run that Python
# program instead (any multi-controller JAX program that calls jaxseg's maybe_initialize_distributed or
# jax.distributed.initialize with these variables). The environment chooses the devices:
#   CPU: each process gets JAXSEG_CPU_DEVICES_PER_PROCESS CPU devices (default 1)
#   GPU: GPUS_PER_PROCESS=K gives process i CUDA_VISIBLE_DEVICES=iK..iK+K-1
#   JAXSEG_COORDINATOR_PORT: the coordinator's port (default: a free one); PY: the python to run.
# SIGTERM to this script is passed to every process, Ctrl-C reaches them all directly (each saves the
# same step, then exits: jaxseg/training/guards.py); run the same command to resume.
# a process failing makes the script stop the others (as srun --kill-on-bad-exit) and exit non-zero.
set -uo pipefail
[ $# -ge 2 ] && [[ $1 =~ ^[1-9][0-9]*$ ]] || {
  echo "usage: $0 N --config=CONFIG[:variant] --workdir=WORKDIR [--config.x.y=v ...]" >&2
  echo "       $0 N {-m MODULE | -c CODE | FILE.py} [ARGS ...]" >&2; exit 2; }
n=$1
shift
py=${PY:-python}
case $1 in
  -m | -c | [!-]*.py) program=("$@") ;;
  *) program=(-m jaxseg.main "$@") ;;
esac
port=${JAXSEG_COORDINATOR_PORT:-$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export JAX_COORDINATOR_ADDRESS=localhost:$port JAXSEG_NUM_PROCESSES=$n
if [ -z "${GPUS_PER_PROCESS:-}" ]; then
  export JAX_NUM_CPU_DEVICES=${JAXSEG_CPU_DEVICES_PER_PROCESS:-1}
fi

pids=()
for ((i = 0; i < n; i++)); do
  if [ -n "${GPUS_PER_PROCESS:-}" ]; then
    export CUDA_VISIBLE_DEVICES=$(seq -s, $((i * GPUS_PER_PROCESS)) $((i * GPUS_PER_PROCESS + GPUS_PER_PROCESS - 1)))
  fi
  # Ctrl-C reaches every process of the terminal's process group itself: the processes take SIGINT
  # as a foreground python does (bash would have them ignore it), and the script does not repeat it
  (trap - INT; JAXSEG_PROCESS_ID=$i exec "$py" "${program[@]}") &
  pids+=($!)
done

trap 'kill -s TERM "${pids[@]}" 2>/dev/null' TERM
trap ':' INT

status=0
live=("${pids[@]}")
while ((${#live[@]})); do
  done_pid=
  wait -n -p done_pid "${live[@]}"
  rc=$?
  [ -n "$done_pid" ] || continue  # a trapped signal interrupted wait: keep waiting
  live=($(printf '%s\n' "${live[@]}" | grep -vx "$done_pid"))
  if ((rc != 0 && status == 0)); then
    status=$rc
    echo "$0: process $done_pid exited with $rc; stopping the others" >&2
    sleep 5  # its peers may be failing with it (the same error); then stop the rest
    kill -s KILL "${live[@]}" 2>/dev/null
  fi
done
exit $status

"""One rank of an MPI test: run by test_mpi.py as `mpirun -n N python -m mpi4py ranks.py CASE FOLDER`
(mpi4py's runner aborts the whole job when a rank dies of an exception, rather than leaving the others
waiting), or alone with `--single` for the one-process reference. FOLDER holds spec.json, written by
the test, and data.npz; each rank writes its results there as rank<r>.npz / rank<r>.json.

Cases:
  train   fit with spec["options"], data spec["layout"] (sharded: rank r gets spec["shards"][r]);
          saves the parameters, the History and what fit printed (verbose=True).
  fail    as train, but rank spec["bad_rank"] gets bad input (spec["bad"]: "nan" in X, "shape": a
          column too few, "epochs": another option), or with "allreduce" every rank's comm.Allreduce
          fails at its third call; saves what each rank raised and how long it took.
"""

import contextlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

import nudge


def _arrays(spec, folder, rank):
    data = np.load(folder / "data.npz")
    X, y = data["X"], data["y"]
    if spec["layout"] == "sharded" and rank is not None:
        start, stop = spec["shards"][rank]
        X, y = X[start:stop], y[start:stop]
    return np.array(X), np.array(y)


def _fit(spec, folder, comm, rank, options):
    X, y = _arrays(spec, folder, rank)
    net = nudge.Network(spec["layers"], seed=spec["seed"])
    if comm is not None:
        options = dict(options, comm=comm, data=spec["layout"])
    if spec.get("weighted"):
        # Weights 0 to 2 in quarters, a function of the sample, so every layout gives each sample its own.
        options = dict(options, sample_weight=(np.round(X[:, 0] * 7) % 9) / 4)
    if spec.get("checkpoint"):
        options = dict(options, checkpoint=folder / spec["checkpoint"], checkpoint_every=1, resume=True)
    return net, X, y, options


def train(spec, folder, comm, rank):
    net, X, y, options = _fit(spec, folder, comm, rank, spec["options"])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        history = net.fit(X, y, verbose=True, **options)
    metrics = {name: np.asarray(values) for name, values in history.as_dict().items()}
    np.savez(folder / f"{'single' if rank is None else f'rank{rank}'}.npz", parameters=net.parameters,
             printed=np.array(printed.getvalue()), stop_reason=np.array(str(history.stop_reason)),
             best_epoch=np.array(history.best_epoch), **metrics)


def _failing(comm):
    """`comm`, whose Allreduce raises at its third call (as an MPI error would)."""
    from mpi4py import MPI

    class Failing(MPI.Intracomm):
        calls = 0

        def Allreduce(self, *args, **kwargs):
            Failing.calls += 1
            if Failing.calls == 3:
                raise RuntimeError("Allreduce failed (injected by the test)")
            return super().Allreduce(*args, **kwargs)

    return Failing(comm)


def fail(spec, folder, comm, rank):
    if spec["bad"] == "allreduce":
        comm = _failing(comm)
    net, X, y, options = _fit(spec, folder, comm, rank, spec["options"])
    if rank == spec["bad_rank"]:
        if spec["bad"] == "nan":
            X[len(X) // 2, 1] = np.nan
        elif spec["bad"] == "shape":
            X = X[:, 1:]
        elif spec["bad"] == "epochs":
            options = dict(options, epochs=options["epochs"] + 1)
    start = time.monotonic()
    result = {"raised": None}
    try:
        net.fit(X, y, verbose=False, **options)
    except Exception as error:  # noqa: BLE001 - what each rank raised is the result
        result = {"raised": type(error).__name__, "message": str(error), "ranks": list(getattr(error, "ranks", []))}
    result["seconds"] = time.monotonic() - start
    (folder / f"rank{rank}.json").write_text(json.dumps(result))


def main():
    case, folder = sys.argv[1], Path(sys.argv[2])
    spec = json.loads((folder / "spec.json").read_text())
    if "--single" in sys.argv:
        comm, rank = None, None
    else:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        rank = comm.Get_rank()
    {"train": train, "fail": fail}[case](spec, folder, comm, rank)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Optuna's side of fmtune's storage interoperability tests (storage/interop_test.go).

Run with Debian's python3-optuna (Optuna 3.1, alembic head v3.0.0.d):

  optuna_check.py schema URL                 create an empty Optuna storage (the reference schema)
  optuna_check.py check URL STUDY WANT.json  load_study and compare it with WANT.json (written by fmtune)
  optuna_check.py write URL STUDY OUT.json   write a study with Optuna, describe it into OUT.json

The JSON "view" of a study is the same both ways (see describe); floats that JSON cannot
carry are the strings "nan", "inf" and "-inf". check exits 1 and prints every mismatch.
"""

import json
import math
import sqlite3
import sys

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution

optuna.logging.set_verbosity(optuna.logging.ERROR)


def enc(x):
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def dt(d):
    return None if d is None else d.strftime("%Y-%m-%d %H:%M:%S.%f")


def describe(study):
    trials = []
    for t in study.get_trials(deepcopy=False):
        trials.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": enc(t.values[0]) if t.values else None,
                "params": {k: enc(v) for k, v in t.params.items()},
                "distributions": {k: json.loads(distribution_to_json(d)) for k, d in t.distributions.items()},
                "intermediate_values": {str(k): enc(v) for k, v in t.intermediate_values.items()},
                "user_attrs": t.user_attrs,
                "system_attrs": t.system_attrs,
                "datetime_start": dt(t.datetime_start),
                "datetime_complete": dt(t.datetime_complete),
            }
        )
    try:
        best = study.best_trial
        best_number, best_value = best.number, enc(best.value)
    except ValueError:
        best_number = best_value = None
    return {
        "study_name": study.study_name,
        "direction": study.direction.name,
        "user_attrs": study.user_attrs,
        "system_attrs": study._storage.get_study_system_attrs(study._study_id),
        "best_trial": best_number,
        "best_value": best_value,
        "trials": trials,
    }


def diff(path, want, got, out):
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            if k not in got:
                out.append(f"{path}.{k}: missing (want {want[k]!r})")
            elif k not in want:
                out.append(f"{path}.{k}: unexpected {got[k]!r}")
            else:
                diff(f"{path}.{k}", want[k], got[k], out)
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append(f"{path}: {len(got)} items, want {len(want)}")
        for i, (w, g) in enumerate(zip(want, got)):
            diff(f"{path}[{i}]", w, g, out)
    elif isinstance(want, bool) or isinstance(got, bool):
        if want is not got:
            out.append(f"{path}: {got!r}, want {want!r}")
    elif isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if want != got:
            out.append(f"{path}: {got!r}, want {want!r}")
    elif want != got:
        out.append(f"{path}: {got!r}, want {want!r}")


def check_stored_json(url, problems):
    """fmtune must write distribution_json and value_json exactly as Optuna would."""
    if not url.startswith("sqlite:///"):
        return
    con = sqlite3.connect(url[len("sqlite:///"):])
    try:
        for (js,) in con.execute("SELECT distribution_json FROM trial_params"):
            again = distribution_to_json(json_to_distribution(js))
            if again != js:
                problems.append(f"distribution_json {js!r}: Optuna writes {again!r}")
        for table in ("study_user_attributes", "study_system_attributes",
                      "trial_user_attributes", "trial_system_attributes"):
            for (vj,) in con.execute(f"SELECT value_json FROM {table}"):
                again = json.dumps(json.loads(vj))
                if again != vj:
                    problems.append(f"{table}.value_json {vj!r}: Optuna writes {again!r}")
        n_values = con.execute("SELECT COUNT(*) FROM trial_values WHERE value IS NULL AND value_type = 'FINITE'").fetchone()[0]
        if n_values:
            problems.append(f"{n_values} FINITE trial_values rows with a NULL value")
    finally:
        con.close()


def cmd_schema(url):
    optuna.storages.RDBStorage(url)


def cmd_check(url, name, want_path):
    with open(want_path) as f:
        want = json.load(f)
    study = optuna.load_study(study_name=name, storage=url)
    problems = []
    diff("study", want, describe(study), problems)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage=url)]
    if name not in names:
        problems.append(f"get_all_study_summaries lists {names}, not {name!r}")
    check_stored_json(url, problems)
    # Optuna's heartbeat monitor must read fmtune's heartbeats as fresh.
    hb_storage = optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=120)
    running = [t.number for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    stale = hb_storage._get_stale_trial_ids(study._study_id)
    if stale:
        problems.append(f"Optuna's heartbeat check finds trial ids {stale} stale (running: {running})")
    if url.startswith("sqlite:///") and running:
        con = sqlite3.connect(url[len("sqlite:///"):])
        n = con.execute("SELECT COUNT(*) FROM trial_heartbeats").fetchone()[0]
        con.close()
        if n == 0:
            problems.append("no trial_heartbeats rows although fmtune recorded heartbeats")
    # Optuna's own view of the trials must be valid FrozenTrials.
    for t in study.get_trials():
        try:
            t._validate()
        except ValueError as e:
            problems.append(f"trial {t.number}: invalid FrozenTrial: {e}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"ok: {len(want['trials'])} trials, best trial {want['best_trial']}")


def cmd_write(url, name, out_path):
    study = optuna.create_study(
        storage=url, study_name=name, direction="minimize", sampler=optuna.samplers.RandomSampler(seed=7)
    )
    study.set_user_attr("dataset", "fashion-mnist")
    study.set_user_attr("epochs", 10)
    study.set_user_attr("layout", {"layers": [128, 64], "note": "é"})
    study._storage.set_study_system_attr(study._study_id, "origin", "optuna-3.1")

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        momentum = trial.suggest_float("momentum", 0.0, 0.99)
        dropout = trial.suggest_float("dropout", 0.0, 0.5, step=0.1)
        epochs = trial.suggest_int("epochs", 1, 20)
        batch = trial.suggest_int("batch", 32, 256, step=32)
        opt = trial.suggest_categorical("optimizer", ["sgd", "adam", "nadam", "rmsprop"])
        trial.set_user_attr("arch", "mlp")
        trial.set_user_attr("sizes", [784, 128, 10])
        loss = lr * 100 + momentum + dropout + epochs / 20 + batch / 256 + (0.5 if opt == "sgd" else 0)
        for step in range(3):
            if trial.number == 3 and step == 2:
                trial.report(float("nan"), step)
                return float("nan")  # Optuna turns this into FAIL
            trial.report(loss + 1.0 / (step + 1), step)
            if trial.number == 1 and step == 1:
                raise optuna.TrialPruned()
        if trial.number == 2:
            raise RuntimeError("diverged")
        if trial.number == 4:
            trial.report(float("inf"), 3)
        return loss

    study.optimize(objective, n_trials=7, catch=(RuntimeError,))
    study.enqueue_trial({"lr": 0.01, "optimizer": "adam"})
    with open(out_path, "w") as f:
        json.dump(describe(study), f, indent=1)
    print(f"wrote {len(study.trials)} trials")


def main(argv):
    if len(argv) >= 2 and argv[1] == "schema" and len(argv) == 3:
        cmd_schema(argv[2])
    elif len(argv) == 5 and argv[1] == "check":
        cmd_check(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "write":
        cmd_write(argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)

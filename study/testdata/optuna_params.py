"""Print how Debian's Optuna 3.1 sees a study fmtune wrote: best_params with
their Python types and the dtypes of trials_dataframe()'s parameter columns.

usage: optuna_params.py DB_PATH STUDY
"""
import json
import sys

import optuna

url = "sqlite:///" + sys.argv[1]
# Optuna 3.1 knows the schema up to v3.0.0.d; fmtune writes v3.2.0.a.
storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
df = study.trials_dataframe()
print(json.dumps({
    "best_params": {k: [v, type(v).__name__] for k, v in study.best_params.items()},
    "dtypes": {c: str(df[c].dtype) for c in df.columns if c.startswith("params_")},
}))

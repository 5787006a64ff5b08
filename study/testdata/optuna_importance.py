#!/usr/bin/python3
"""Optuna's parameter importance of a study, for study/importance_test.go.

  optuna_importance.py SQLITE_URL STUDY

prints {"param": importance, ...} as JSON: optuna.importance.get_param_importances
with its default evaluator (fANOVA, which needs python3-sklearn), seeded.
Debian's python3-optuna is 3.1, whose schema is one index behind fmtune's:
skip_compatibility_check reads the database as it is, without changing it.
"""

import json
import sys

import optuna
from optuna.importance import FanovaImportanceEvaluator

optuna.logging.set_verbosity(optuna.logging.ERROR)

url, name = sys.argv[1], sys.argv[2]
storage = optuna.storages.RDBStorage(url, skip_compatibility_check=True)
study = optuna.load_study(study_name=name, storage=storage)
imp = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
print(json.dumps({k: float(v) for k, v in imp.items()}))

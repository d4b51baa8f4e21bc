"""``[tune]`` and ``pgvbench tune``: find the configuration that meets a target.

spec.py parses the target and the space, space.py resolves the space from the data,
measure.py builds one configuration and finds its smallest query knob meeting the recall
bound (bisection), search.py drives Optuna over builds (resumable from its SQLite
storage), confirm.py rebuilds the winner and measures it interleaved with the runner-up,
advice.py / apply.py / report.py / plots.py word and draw the result.
"""

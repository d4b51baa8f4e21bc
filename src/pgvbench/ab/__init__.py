"""``pgvbench ab``: two variants on one server, measured in randomized interleaved trials.

spec.py parses the optional ``[ab]`` table; pair.py pairs two specs into variants and
refuses pairs that cannot share a server; setup.py loads the data and builds each
distinct index once; trials.py runs the interleaved windows (typed records only);
verdict.py turns paired rounds into per-metric verdicts; report.py writes the outputs
and every sentence; cli.py is the glue.
"""

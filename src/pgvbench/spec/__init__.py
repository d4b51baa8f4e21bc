"""Experiment specs: the records (model.py), the TOML parser (parse.py: load_spec,
parse_spec), the validating table reader every study's parser uses (table.py), server
settings (settings.py), agent tables (agents.py) and the limits a spec is checked against
(limits.py).

Nothing is re-exported here: importing any submodule runs this file, and the parser
imports every study, which imports the model.
"""

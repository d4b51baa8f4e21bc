"""Studies: one package each, all implementing the Study interface (base.py) and listed
once in registry.py. Nothing is imported here, so that loading the interface does not
load every study."""

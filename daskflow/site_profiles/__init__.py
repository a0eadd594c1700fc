"""The site profiles shipped with daskflow (``*.yaml`` data files, no code).

A package of its own so that its YAML files are installed as package data.
"""

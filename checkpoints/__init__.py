"""Shipped checkpoints, installed as the package ``gpt_from_scratch.checkpoints``.

This file makes the folder a regular package so that
``importlib.resources.files("gpt_from_scratch.checkpoints")`` works on every
supported Python (3.9 has no resource reader for namespace packages).
"""

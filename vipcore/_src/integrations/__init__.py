"""Trainer adapters (TRL, verl) built on the core.

The core never imports this package; it may import the core and the trainers
(lazily, so that ``import vipcore`` never needs torch).
"""

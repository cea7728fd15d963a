"""``vipcore verify``: the proofs-as-tests report.

Modules: :mod:`.runner` (runs the sections, writes the report),
:mod:`.report` (checks, thresholds, tables), and one module per section:
:mod:`.variance`, :mod:`.stats`, :mod:`.prediction`, :mod:`.sweep`.
"""

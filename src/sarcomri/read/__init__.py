"""The reader workstation: radiologists read a study's cases without and with the AI (``sarcomri read``).

:mod:`~sarcomri.read.design` (cases, sequences, scale, sessions, washout, each reader's order),
:mod:`~sarcomri.read.store` (the reads in SQLite or PostgreSQL, the design's rules enforced where reads are
written), :mod:`~sarcomri.read.plan` (a plan from a study run) and :mod:`~sarcomri.read.export` (the long reads
table the reader analysis and ``sarcomri stats`` take).
"""

"""The analysis of a study (method.md §7), one module per concern: :mod:`.exclusion` (who
and what counts), :mod:`.counts` (the database's counts and the participants' stored
tallies), :mod:`.distributions` (histograms of participants), :mod:`.results` (the whole
analysis and the per-image rates), :mod:`.display` and :mod:`.figures` (the dashboard),
:mod:`.exports` (the files). The statistics are :mod:`survey.statistics`' pure functions.
"""

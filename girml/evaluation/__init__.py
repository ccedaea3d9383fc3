"""GIR evaluation: score restorers on the benchmark, aggregate, gate, and rank the study.

Scoring: :mod:`.bench` reads the benchmark, :mod:`.restorers` wraps what restores it (a network,
a baseline, an outside method of :mod:`.methods`), :mod:`.harness` runs a restorer over every
image (:func:`~girml.evaluation.harness.evaluate_method`) and :mod:`.scores` gives each output
its score columns; :mod:`.whole` does the same for whole photos restored as ``girml restore``
does. Aggregating: :mod:`.report` (per-family tables, headline and harm metrics),
:mod:`.uncertainty` (bootstrap intervals), :mod:`.outputs` (the evaluate stage's files) and
:mod:`.gate` (the promotion rules). The study: :mod:`.approaches` and :mod:`.routing` restore
with the trained approaches, :mod:`.leaderboard` ranks every method, :mod:`.study` and
:mod:`.study_files` write and log the leaderboard. Evaluation trains nothing
(:mod:`girml.training`) and loads no stored model (its callers pass networks or a loader in).

Import from the modules: the package re-exports nothing, so importing one part never loads the
others (and DVC's code deps stay those of the stage that runs them).
"""

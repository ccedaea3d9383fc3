"""Experiment tracking: the only package that imports MLflow (one exception: the models-from-code
file :mod:`girml.artifacts.restorer_model` that MLflow runs to serve a version).

It deals in URIs, runs, folders and files, never in networks: :mod:`.store` (tracking URI,
offline configuration, experiments), :mod:`.runs` (start, add to and read back runs),
:mod:`.logs` (params, metrics and curves of the active run), :mod:`.provenance` (what produced
a run), :mod:`.versions` (registered versions, tags and aliases), :mod:`.logged_models` (log a
model folder, download one by URI), :mod:`.artifacts` (where a run's or a version's files
are; listed and downloaded, checked and retried) and :mod:`.registry` (the champion and the
release's version). Import from the modules: the package re-exports nothing.

Who logs: the stages decide when; library functions compute and never log on their own. The
package that owns a result offers the one function that logs it through this package (e.g.
:func:`girml.tuning.outcome.log_search`, :mod:`girml.training.tracked`,
:func:`girml.artifacts.champion.apply_decision`), and the stage calls it.
"""

"""Hyperparameter search (DVC stage ``tune``): Ray Tune over the ``train`` stage's loop.

The Ray-free parts, :mod:`.space` (the search space and trial configs) and :mod:`.results`
(``tune/best.yaml``, which the ``train`` stage applies), import no Ray. The search itself is
:func:`girml.tuning.search.tune`, with its parts :mod:`.trial`, :mod:`.searchers`,
:mod:`.ray_session`, :mod:`.experiment` and :mod:`.outcome`; importing any of them imports Ray
(seconds), so only the ``tune`` stage does. Import from the modules: the package re-exports
nothing, so importing one part never loads the others.
"""

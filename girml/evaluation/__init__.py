"""GIR evaluation: the benchmark harness, reports, specialists and champion promotion.

:func:`evaluate_and_promote` is the whole ``evaluate`` stage; the pieces are public for reuse:
:func:`evaluate_method` scores any ``uint8 -> uint8`` restorer on the bench, :func:`summarize`
and :func:`headline` aggregate its rows (:func:`harm_metrics`: what it does to clean images and
how often it makes a degraded one worse), :func:`decide` compares a new version with the
champion.

Import from the modules (:mod:`.harness`, :mod:`.promotion`, :mod:`.report`,
:mod:`.specialists`, :mod:`.uncertainty`): the package re-exports nothing, so importing one part
never loads the others (and DVC's code deps stay those of the stage that runs them).
"""

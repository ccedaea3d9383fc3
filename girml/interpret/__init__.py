"""Interpreting the unified model (DVC stage ``interpret``), after Kong et al.'s GIR study.

:func:`run_interpretation` (:mod:`.report`) writes the whole report from :mod:`.inputs` (what
the stage reads), :mod:`.sections` (the report's sections as plain data) and :mod:`.render` (the
HTML page, from the jinja2 templates in ``templates/``). The pieces are public for reuse:
:mod:`.features` (pooled layer features, Calinski-Harabasz, t-SNE), :mod:`.attribution` (local
attribution maps and the diffusion index), :mod:`.sensitivity` (PSNR gain against degradation
strength) and :mod:`.figures`.
"""

"""Interpreting the unified model (DVC stage ``interpret``), after Kong et al.'s GIR study.

:func:`run_interpretation` (:mod:`.report`) writes the whole report from :mod:`.inputs` (what
the stage reads), the six sections as plain data (:mod:`.sections`, built by
:mod:`.sections_features`, :mod:`.sections_lam`, :mod:`.sections_sensitivity`,
:mod:`.sections_comparisons`, :mod:`.sections_generalization`,
:mod:`.sections_cases`) and :mod:`.render` (the HTML
page, from the jinja2 templates in ``templates/``). The pieces are public for reuse:
:mod:`.features` (pooled layer features, Calinski-Harabasz, t-SNE), :mod:`.attribution` (local
attribution maps and the diffusion index), :mod:`.sensitivity` (PSNR gain against degradation
strength) and :mod:`.figures`.
"""

"""girml: General Image Restoration (GIR) pipeline.

Kong et al., "A Preliminary Exploration Towards General Image Restoration", arXiv 2408.15143.
The library is pure Python over numpy/torch; orchestration lives in ``pipelines/``.
"""

__version__ = "0.1.0"

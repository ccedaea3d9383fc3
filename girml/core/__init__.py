"""The core: one helper per job, under every other package (layer 0, docs/architecture.md).

Errors and their exit codes (:mod:`~girml.core.errors`), project paths, hashing, image I/O,
URL masking, file walking, the name registry, photo-level pooling, tiled inference, the
self-ensemble, CPU kernel pinning, process locks and retries. Nothing here imports another girml
package except :mod:`girml.config`.
"""

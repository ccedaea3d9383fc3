"""Training: the seeded patch stream (:mod:`.data`), restoration losses (:mod:`.losses`) and the
accelerate training loop (:mod:`.loop`). Import from the modules: the package re-exports
nothing."""

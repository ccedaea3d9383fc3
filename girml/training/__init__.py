"""Training: the seeded patch stream (:mod:`.data`), restoration losses (:mod:`.losses`) and the
accelerate training loop (:mod:`.loop`), with its parts: optimizer and schedule
(:mod:`.schedule`), starting weights and compilation (:mod:`.init`), EMA and bookkeeping
(:mod:`.state`), validation (:mod:`.validation`), checkpoint folders (:mod:`.checkpoints`), one
step and its events (:mod:`.steps`) and harm-aware checkpoint selection (:mod:`.selection`).
Import from the modules: the package re-exports nothing."""

"""Model artifacts: folders of weights plus config, releases, cards, registry versions, promotion.

The layer above evaluation (``tests/test_layers.py``); the architectures themselves live in
:mod:`girml.models`, which imports nothing from here.

- Model folders: :mod:`.store` (write, read, load one), :mod:`.training_run` (the run that made
  it), :mod:`.loading` (load by folder, release or URI; ``train.init_from``),
  :mod:`.default_model` (what ``girml restore`` uses without ``--model``), :mod:`.convert`
  (a trusted pickle into a folder, once).
- Registered versions, through :mod:`girml.tracking` by URI: :mod:`.registered` (log, load,
  register the release), :mod:`.restorer_model` (the code MLflow runs to serve one) and
  :mod:`.image_payload` (what it takes and answers: arrays, or PNG/JPEG images).
- The release: :mod:`.release` (the folder), :mod:`.make_release` (``girml release``),
  :mod:`.provenance` with :mod:`.dvc_lock`, :mod:`.fp16`, :mod:`.card` with
  :mod:`.card_metrics`, and :mod:`.real_photos`.
- The evaluate stage: :mod:`.promotion` (score and decide, with the rules of
  :mod:`girml.evaluation.gate`), :mod:`.champion` (record the decision) and :mod:`.specialists`
  (the specialists stage's networks it scores).

Import from the modules: the package re-exports nothing.
"""

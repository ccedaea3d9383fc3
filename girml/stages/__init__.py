"""The DVC stages, one module a stage: ``dvc.yaml``'s ``girml VERB`` runs ``girml.stages.VERB.run``.

Each module reads the params keys its stage declares (:class:`~girml.stages.contract.StageParams`),
calls the library and writes the outputs ``dvc.yaml`` declares, at the paths in
:mod:`girml.stages.contract`. The command line (:mod:`girml.cli`) only parses arguments, takes
the stage's lock and turns errors into one line and an exit code.
"""

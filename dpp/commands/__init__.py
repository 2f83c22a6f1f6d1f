"""Old home of the command modules; the commands now live in :mod:`analysis.cli` (on top of every layer).

The library functions the commands used to hold moved to their layer and stay importable from here:
``dpp.commands.export.run_export`` (:mod:`dpp.export`), ``dpp.commands.bench_train.bench_step_times``
(:mod:`dpp.bench`), ``dpp.commands.pack.run_pack`` (:mod:`dpp.pack`), ``dpp.commands.compare.run_compare``
(:mod:`dpp.compare`).
"""

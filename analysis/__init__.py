"""Design-space analysis: area (Yosys), energy (per-access model), sweeps (Dask, resumable), Pareto, report.

Modules: :mod:`analysis.area`, :mod:`analysis.energy` (+ :mod:`analysis.energy_constants`),
:mod:`analysis.sweep_config`, :mod:`analysis.sweep`, :mod:`analysis.pareto`, :mod:`analysis.report_data`,
:mod:`analysis.report`, :mod:`analysis.commands_log`. Nothing here imports the hardware packages eagerly.
"""

"""One module per ``dpp`` sub-command; :mod:`dpp.cli` registers them."""

"""``python -m ig_analytics.cli``: the same as the ``ig-analytics`` command."""
from ig_analytics.cli.main import main

main()

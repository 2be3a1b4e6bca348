import sys

from ig_analytics.sandbox.cli import main

sys.exit(main())

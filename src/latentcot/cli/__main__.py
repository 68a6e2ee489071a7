import sys

from latentcot.cli import main

sys.exit(main())

import sys

from touchpoint.cli import main

sys.exit(main())

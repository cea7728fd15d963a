import sys

from vipcore._src.apps.cli import main

sys.exit(main())

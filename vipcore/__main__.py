import sys

from vipcore._src.cli import main

sys.exit(main())

import sys

from collabvr.cli import main


sys.exit(main())

import sys

from lighthouse_tools.agent_core.main import main

sys.exit(main())

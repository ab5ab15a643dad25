"""Native unit tests of the moat Python SDK: `python3 -m unittest` in sdk/python."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

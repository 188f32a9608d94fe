"""`python export.py --checkpoint_path ... --export_format ... --output_dir ... --export_config '{...}'`"""

import sys

from exportkit.cli import main

if __name__ == "__main__":
    sys.exit(main())

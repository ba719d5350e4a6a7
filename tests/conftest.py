"""Session-wide test settings."""

import os
import tempfile

# `vidlearn grade` and `vidlearn progress` make a grading key in the user's config folder on first use:
# the tests give them a folder of their own, never the real one.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="vidlearn-test-config-")

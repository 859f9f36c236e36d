"""Reference answers to the exercises, kept apart from them: look only after trying.
CI runs every exercise notebook with these filled in (``SOLUTIONS = True``), so the checks are known to pass."""

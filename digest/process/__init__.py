"""Process plumbing: forked workers, the collector paused, who holds a row, progress of a CLI run."""

"""`digest serve`'s scheduler: who is due (due.py), the wake job (wake.py), one scheduler per
database (lease.py), the APScheduler wiring (scheduler.py), health and metrics (health.py, metrics.py)."""

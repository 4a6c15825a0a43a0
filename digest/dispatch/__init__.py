"""Who runs a day's digests: this process (dispatch.mode local) or Celery workers (celery)."""

"""Worker processes: each drains one multiprocessing queue and batch-writes Redis."""

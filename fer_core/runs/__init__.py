"""Training jobs on disk: the run folder and its files (folder), the SQLite index of runs (index), how a job
ended (reconcile), the registry that queues, cancels, resumes and deletes (registry), and the worker that starts
jobs (worker, started by launcher)."""

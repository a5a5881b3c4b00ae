"""What several pages share: the dataset in use, cached models, the model picker, background tasks, links
between pages, threads, and charts used by more than one page."""

"""DiskJanitor: an example of your own Python workflow on Remediator's worker (see workflow.py)."""

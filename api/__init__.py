"""allocator's REST service (FastAPI). Build the app with :func:`api.main.create_app`."""

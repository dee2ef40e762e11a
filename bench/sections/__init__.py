"""One module per measurement; each `run(ctx)` returns a JSON-ready dict."""

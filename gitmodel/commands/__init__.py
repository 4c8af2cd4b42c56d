"""One module per verb: `register(subparsers)` and a function returning an exit code."""

"""`make bench`: each part of the pipeline measured side by side with the raw ceiling of the
component underneath it, in the same run, on backends the harness starts itself.

Run `python -m bench --help`. Results go to `bench/results/<date>.json` and `.md` (and
`latest.md`); every figure is a ratio to a ceiling measured minutes earlier on the same
machine, with the absolute numbers beside it, because these machines are shared and noisy.
"""

"""The benchmark harness behind ``make bench`` (``python -m benchmarks``): the engine side by
side with the solvers alone and with PuLP/linopy models, in one run. It lives beside the
library, not in it: nothing in allocator/ imports it. Results: benchmarks/results/."""

"""Stage 7, workflows that solve many times: the warm Planner (planner.py), what-if
comparison (whatif.py), counterfactual plans (counterfactuals.py), batches and sweeps
(batch.py), POP-style partitions (partition.py), two-stage stochastic plans
(stochastic.py) and re-planning from a current allocation (replan.py). Import the modules
themselves (``allocator.workflows.batch``, ...)."""

"""Stage 5, opportunity-cost analytics on a scenario and its plan: explain, sensitivity,
frontier, capacity value, infeasibility. Imports scenario, lp, solvers and plan, never
the engine or workflows. Import the modules themselves (allocator.analysis.explain, ...).
Counterfactual plans re-solve the scenario, so they live in allocator.workflows."""

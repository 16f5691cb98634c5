"""Opportunity-cost analytics: explain, sensitivity, counterfactuals, frontier, capacity
value, infeasibility. Import the modules themselves (allocator.analysis.explain, ...)."""

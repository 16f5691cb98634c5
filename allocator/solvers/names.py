"""The names the solver registry and the model export accept, without loading a solver
(the command line builds its options from these)."""

ALGORITHMS = ("auto", "rowgen", "simplex", "ipm", "pdlp", "clp")
BACKENDS = ("highs", "pulp")
EXPORT_FORMATS = ("mps", "lp")

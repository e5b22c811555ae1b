"""dnnsparse.algo.encoding.
"""
from ._estimators import (DEFAULT_ALPHAS, EncodingResult, LeastSquares, LinearEncoder, MODELS,
                          VoxelwiseRidgeCV, best_units, encode, make_encoder)
from ._solvers import (FoldOperator, INNER_SCORES, OperatorCache, RidgeDecomposition, auto_batch,
                       kfold_alpha_scores, loo_alpha_scores, ridge_nested_cv, select_alphas,
                       solve_ridge)

__all__ = [
    "DEFAULT_ALPHAS",
    "EncodingResult",
    "FoldOperator",
    "INNER_SCORES",
    "LeastSquares",
    "LinearEncoder",
    "MODELS",
    "OperatorCache",
    "RidgeDecomposition",
    "VoxelwiseRidgeCV",
    "auto_batch",
    "best_units",
    "encode",
    "kfold_alpha_scores",
    "loo_alpha_scores",
    "make_encoder",
    "ridge_nested_cv",
    "select_alphas",
    "solve_ridge",
]

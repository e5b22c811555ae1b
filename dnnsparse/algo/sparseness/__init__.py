"""dnnsparse.algo.sparseness.
"""
from ._category import CategoryMeans, UNIT_MODES, category_means
from ._measures import MEASURES, active_fraction, dead_units, hoyer_sparseness, kurtosis_sparseness, lifetime_sparseness, population_sparseness, sparseness

__all__ = [
    "CategoryMeans",
    "MEASURES",
    "UNIT_MODES",
    "active_fraction",
    "category_means",
    "dead_units",
    "hoyer_sparseness",
    "kurtosis_sparseness",
    "lifetime_sparseness",
    "population_sparseness",
    "sparseness",
]

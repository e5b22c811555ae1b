"""dnnsparse.algo.sparseness.
"""
from ._category import CategoryMeans, UNIT_MODES, UnitMode, category_means
from ._measures import (MEASURES, Measure, active_fraction, dead_units, hoyer_sparseness,
                        kurtosis_sparseness, lifetime_sparseness, population_sparseness,
                        sparseness)

__all__ = [
    "CategoryMeans",
    "MEASURES",
    "Measure",
    "UNIT_MODES",
    "UnitMode",
    "active_fraction",
    "category_means",
    "dead_units",
    "hoyer_sparseness",
    "kurtosis_sparseness",
    "lifetime_sparseness",
    "population_sparseness",
    "sparseness",
]

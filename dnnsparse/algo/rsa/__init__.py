"""dnnsparse.algo.rsa.
"""
from ._inference import (ALTERNATIVES, BootstrapResult, NoiseCeiling, PermutationResult,
                         noise_ceiling, rdm_bootstrap, rdm_permutation_test)
from ._rdm import (COMPARISONS, GRAM_METRICS, ITER_AXES, average_by_label, check_comparison,
                   compare_rdms, compute_rdm, kendall_tau_a, layer_rdms, rank_transform,
                   rdm_vector)

__all__ = [
    "ALTERNATIVES",
    "BootstrapResult",
    "COMPARISONS",
    "GRAM_METRICS",
    "ITER_AXES",
    "NoiseCeiling",
    "PermutationResult",
    "average_by_label",
    "check_comparison",
    "compare_rdms",
    "compute_rdm",
    "kendall_tau_a",
    "layer_rdms",
    "noise_ceiling",
    "rank_transform",
    "rdm_bootstrap",
    "rdm_permutation_test",
    "rdm_vector",
]

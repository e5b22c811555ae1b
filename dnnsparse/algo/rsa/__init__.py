"""dnnsparse.algo.rsa: RDMs, their comparison and inference, model RDMs, CKA.
"""
from ._cka import (KERNELS, CKASpec, center_gram, cka, cka_matrix, cka_permutation_test,
                   gram_matrix, hsic)
from ._inference import (ALTERNATIVES, BootstrapResult, NoiseCeiling, PermutationResult,
                         noise_ceiling, rdm_bootstrap, rdm_permutation_test)
from ._model_rdms import (PATTERNS, ZSCORE_AXES, categorical_rdm, mds_embedding, noisy_rdm,
                          patterned_rdm, random_rdm, zscore_patterns)
from ._rdm import (COMPARISONS, GRAM_METRICS, ITER_AXES, average_by_label, check_comparison,
                   compare_rdms, compute_rdm, kendall_tau_a, layer_rdms, rank_transform,
                   rdm_vector)
from ._split_half import SplitHalfCeiling, spearman_brown, split_half_ceiling

__all__ = [
    "ALTERNATIVES",
    "BootstrapResult",
    "CKASpec",
    "COMPARISONS",
    "GRAM_METRICS",
    "ITER_AXES",
    "KERNELS",
    "NoiseCeiling",
    "PATTERNS",
    "PermutationResult",
    "SplitHalfCeiling",
    "ZSCORE_AXES",
    "average_by_label",
    "categorical_rdm",
    "center_gram",
    "check_comparison",
    "cka",
    "cka_matrix",
    "cka_permutation_test",
    "compare_rdms",
    "compute_rdm",
    "gram_matrix",
    "hsic",
    "kendall_tau_a",
    "layer_rdms",
    "mds_embedding",
    "noise_ceiling",
    "noisy_rdm",
    "patterned_rdm",
    "random_rdm",
    "rank_transform",
    "rdm_bootstrap",
    "rdm_permutation_test",
    "rdm_vector",
    "spearman_brown",
    "split_half_ceiling",
    "zscore_patterns",
]

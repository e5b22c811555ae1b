"""Every figure of the package (matplotlib, Agg-safe; nilearn for brain renders).

Names are imported on first use, so importing this package does not import matplotlib.
"""
from ..utils.lazy import lazy_exports

_WHERE = {
    "check_colormap": "_view",
    "new_figure": "_figures",
    "nilearn_available": "_rsa",
    "plot_activation_curve": "_optstim",
    "plot_activation_maps": "_view",
    "plot_correlation": "_psi",
    "plot_decoding_summary": "_encoding",
    "plot_distributions": "_psi",
    "plot_encoding_summary": "_encoding",
    "plot_explained_variance": "_reduction",
    "plot_file_medians": "_psi",
    "plot_mds": "_rsa",
    "plot_medians": "_psi",
    "plot_minimal_curve": "_minstim",
    "plot_rdm": "_rsa",
    "plot_rf_maps": "_rf",
    "plot_saliency_overlays": "_saliency",
    "plot_segmentation": "_minstim",
    "plot_shape_bias_per_category": "_topk",
    "plot_shape_bias_sweep": "_topk",
    "plot_similarity_heatmap": "_rsa",
    "plot_similarity_table": "_rsa",
    "plot_top_stimuli": "_topstim",
    "plot_topk_changes": "_topk",
    "plot_topk_snapshot": "_topk",
    "plot_training_history": "_topk",
    "render_volume_maps": "_rsa",
    "save_figure": "_figures",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

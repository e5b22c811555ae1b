"""The sparse-coding paper's analysis through the Python API, start to finish.

Liu, Zhen & Liu (2020): population sparseness (PSI) of every object category in
every layer, its trend along the hierarchy, its relation to per-category
decoding accuracy, and the same network with its weights permuted. Runs offline
in well under a minute on a laptop CPU (EfficientNet-Lite0 ships its weights):

    python examples/psi_pipeline.py [OUT_DIR]

Swap in your own stimuli with ``Stimulus.from_folder("images/")`` (one sub-folder
per category) and your network with ``load_dnn("alexnet")`` or a custom
``"file.py:function"``.
"""
import sys
from pathlib import Path

from dnnsparse.pipelines import make_demo_stimuli
from dnnsparse.pipelines import (accuracy_analysis, activation_sparseness, category_names,
                                 format_summary, probe_accuracy, write_psi_outputs)
from dnnsparse.pipelines import relu_layers
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.model import lesion
from dnnsparse.model import load_dnn


def main(out="psi_example"):
    out = Path(out)
    # 1. Stimuli: 8 categories x 6 random views of photographs shipped with scikit-image.
    stim = Stimulus.load(make_demo_stimuli(
        out, n_per_category=6, size=128, seed=0, force=True,
        categories=["astronaut", "cat", "coffee", "coins", "flower", "moon", "motorcycle",
                    "rocket"]))
    names = category_names(stim.labels, stim.columns["condition"])

    # 2. Activations: channel means of every ReLU layer, one row per image.
    dnn = load_dnn("efficientnet_lite0")
    dnn.input_size = (128, 128)
    layers = relu_layers(dnn)
    act = dnn.extract(stim, layers, pool="mean", out=out / "intact.act.h5", force=True)

    # 3. PSI of every category in every layer; summary and Kendall trend (Fig. 1).
    psi = activation_sparseness(act, stim.labels, names=names)
    print(format_summary(psi, title="EfficientNet-Lite0, intact"))

    # 4. Per-category accuracy of a logistic read-out, 2-fold CV, and its relation to PSI
    #    (Fig. 2): correlation per layer and stepwise regression. The paper reads out FC2
    #    over 256 categories; with 8 easy categories the last layer decodes every one
    #    perfectly (no variance to correlate), so this example reads out the first layer.
    table, decoding = probe_accuracy(act.to_matrix(layers[0]), stim.labels, names=names,
                                     cv=2, seed=0)
    print(f"read-out accuracy {decoding.accuracy:.3f}")
    try:
        relation = accuracy_analysis(psi, table["label"], table["accuracy"])
        best = relation.correlation.pearson_r.argmax()
        print(f"highest PSI-accuracy r: {relation.correlation.pearson_r[best]:.2f} "
              f"in {layers[best]}")
    except ValueError as exc:          # e.g. every category decoded perfectly
        print(f"no PSI-accuracy relation: {exc}")
        relation = None
    write_psi_outputs(psi, out / "intact", accuracy=relation, force=True)
    act.close()

    # 5. The weight-permuted network (the paper's Fig. 3B), per-category file directly.
    lesioned = lesion(load_dnn("efficientnet_lite0"), "weights", seed=0)
    lesioned.input_size = (128, 128)
    with lesioned.extract(stim, layers, pool="mean", aggregate="label",
                          out=out / "lesion.act.h5", force=True) as cat_act:
        psi_lesion = activation_sparseness(cat_act, names=names)
    print(format_summary(psi_lesion, title="EfficientNet-Lite0, weights permuted"))
    write_psi_outputs(psi_lesion, out / "lesion", force=True)


if __name__ == "__main__":
    main(*sys.argv[1:2])

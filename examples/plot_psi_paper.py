"""
The sparse-coding paper, end to end: PSI on EfficientNet-Lite0
==============================================================

Liu, Zhen & Liu (2020, *Hierarchical sparse coding of objects in deep
convolutional neural networks*, Front. Comput. Neurosci.) asked how sparsely a
deep network codes object categories, layer by layer. For every category and
every ReLU layer of AlexNet and VGG11 they measured the **population sparseness
index** (PSI) of the layer's response to that category, and found that

* **Fig. 1A/1B** -- PSI is low everywhere (median below 0.4) but rises along the
  hierarchy (Kendall's tau = 0.40 in AlexNet), with the largest jump at the last
  convolutional and the fully connected layers;
* **Fig. 2** -- the sparser a category is coded, the better a linear read-out
  recognises it (Pearson r up to 0.69 in FC2, 256 Caltech categories), and this
  correlation grows along the layers;
* **Fig. 3** -- the rise is learned: with the weights of every layer permuted,
  PSI *falls* along the hierarchy (tau = -0.53).

This tutorial runs the same analysis through the Python API on
EfficientNet-Lite0 (its ImageNet weights ship with the package) and the 16
photographs embedded in scikit-image and scikit-learn, each one category with
six random views. Everything runs offline in about a minute on two CPU cores.

.. note::

   This is a demonstration of the pipeline, not a replication: 16 categories of
   six views each cut from a single photograph, at 112 x 112 pixels, in a network
   of a different family (inverted-residual blocks with ReLU6) than the paper's
   AlexNet. What the numbers below show is stated with each figure.

The same analysis from the command line::

    db_demo -out demo -n-per-category 6 -image-size 112   # stimuli + PSI + lesion
    db_act -net efficientnet_lite0 -layer all-relu -pool mean \\
           -stim demo/stimuli.stim.csv -out intact.act.h5
    db_psi -act intact.act.h5 -stim demo/stimuli.stim.csv -out psi_intact
    db_probe -act intact.act.h5 -stim demo/stimuli.stim.csv -layer stem_relu \\
             -cv 2 -out accuracy.csv
    db_psi -act intact.act.h5 -stim demo/stimuli.stim.csv -accuracy accuracy.csv \\
           -out psi_accuracy
    db_act -net efficientnet_lite0 -lesion weights -seed 0 -layer all-relu \\
           -pool mean -aggregate label -stim demo/stimuli.stim.csv -out lesion.act.h5
    db_psi -act lesion.act.h5 -stim demo/stimuli.stim.csv -out psi_lesion

(``db_demo`` runs the network at the images' size, as this page does; ``db_act``
scales every image to the network's 224 x 224 input, so its numbers differ
somewhat.)
"""

# %%
# Setup
# -----
# The library draws its figures on matplotlib's Agg canvas and saves them to
# files (it never touches pyplot's state); ``show`` puts such a file on a pyplot
# figure so that this page can display it. Every file goes to a temporary
# folder that is deleted at the end.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from dnnsparse import viz
from dnnsparse.base.stimulus import Stimulus
from dnnsparse.model import lesion, load_dnn
from dnnsparse.pipelines import (accuracy_analysis, activation_sparseness, category_names,
                                 format_accuracy, make_demo_stimuli, probe_accuracy,
                                 relu_layers)

SEED = 0          # seeds the random views, the cross-validation folds and the lesion
SIZE = 112        # pixels; the network was trained at 224 (smaller is faster)
VIEWS = 6         # random views of each photograph

# sphinx_gallery_thumbnail_number = 6
workdir = tempfile.TemporaryDirectory()
out = Path(workdir.name)


def show(path, dpi=150):
    """Display a PNG written by :mod:`dnnsparse.viz` at its own resolution."""
    image = plt.imread(path)
    height, width = image.shape[:2]
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.set_axis_off()
    return fig


def trend_line(result, what):
    """One line: Kendall's tau of the layer medians and of the per-category taus."""
    rows = {row["test"]: row for row in result.trend_rows(seed=SEED)}
    medians = rows["psi_medians"]
    per_cat = rows["psi_category_taus_wilcoxon"]
    return (f"{what:<18} median PSI {np.median(result.matrix()):.3f}; Kendall tau of the "
            f"layer medians {medians['tau']:+.2f} (p={medians['p']:.2g}, "
            f"{medians['n']} layers); median per-category tau {per_cat['tau']:+.2f} "
            f"(Wilcoxon p={per_cat['p']:.2g}, {per_cat['n']} categories)")


# %%
# Stimuli: 16 photographs, six random views each
# ----------------------------------------------
# :func:`~dnnsparse.pipelines.make_demo_stimuli` cuts seeded random views (a crop
# of 50-90 % of the area, a flip half of the time, mild colour jitter) out of
# each photograph and writes them with a stimulus table whose ``label`` column
# numbers the categories and whose ``condition`` column names them. For your own
# images, one sub-folder per category, ``Stimulus.from_folder("images/")`` (or
# ``db_stim -folder images/ -out images.stim.csv``) makes the same table.
stim_path = make_demo_stimuli(out, n_per_category=VIEWS, size=SIZE, seed=SEED, force=True)
stim = Stimulus.load(stim_path)
names = category_names(stim.labels, stim.columns["condition"])
print(f"{len(stim)} images of {len(names)} categories: {', '.join(names.values())}")

fig, axes = plt.subplots(2, 8, figsize=(9, 2.9))
for ax, label in zip(axes.flat, names):
    first = int(np.flatnonzero(stim.labels == label)[0])
    with Image.open(stim.paths[first]) as im:
        ax.imshow(im)
    ax.set_title(names[label], fontsize=8)
    ax.set_axis_off()
fig.suptitle(f"One of the {VIEWS} random views of each category ({SIZE} x {SIZE} px)")
fig.tight_layout()

# %%
# Activations: channel means of the 18 ReLU layers
# ------------------------------------------------
# The paper's units are the channels of a layer, each averaged over its spatial
# map. :meth:`DNN.extract <dnnsparse.model.DNN.extract>` with ``pool="mean"``
# gives one row per image and one column per channel, for every ``*_relu`` layer
# (:func:`~dnnsparse.pipelines.relu_layers`: the stem, the expansion ReLU6 of
# each of the 16 inverted-residual blocks, and the head before the classifier).
dnn = load_dnn("efficientnet_lite0", offline=True)
dnn.input_size = (SIZE, SIZE)
layers = relu_layers(dnn)
act = dnn.extract(stim, layers, pool="mean", show_progress=False)
print(f"{len(layers)} layers, {act.to_matrix(layers[0]).shape[1]} to "
      f"{act.to_matrix(layers[-1]).shape[1]} channels")

# %%
# Population sparseness (Fig. 1A and 1B)
# --------------------------------------
# For one category, let :math:`r_u` be the mean response of unit :math:`u` to
# its images, in a layer of :math:`N` units. PSI (Vinje & Gallant, 2000) is
#
# .. math::
#
#    a = \frac{\left(\sum_u r_u / N\right)^2}{\sum_u r_u^2 / N}, \qquad
#    \mathrm{PSI} = \frac{1 - a}{1 - 1/N},
#
# 0 when every unit responds equally and 1 when a single unit responds. As in the
# authors' code, every unit is first **z-scored across the categories** (so a
# unit that fires for everything does not dominate), and then every category's
# vector is **min-max scaled across the units** to [0, 1] (PSI needs
# non-negative responses). :func:`~dnnsparse.pipelines.activation_sparseness`
# groups the image rows by their labels and does all of it, layer by layer.
psi = activation_sparseness(act, stim.labels, names=names)
print(trend_line(psi, "intact"))

# %%
# Fig. 1A of the paper overlays one PSI histogram per layer;
# :func:`~dnnsparse.viz.plot_distributions` draws them as a ridgeline (first
# layer at the top), with each layer's median (dot), IQR (bar) and, below, every
# category as a tick.
show(viz.plot_distributions(out / "fig1a.png", psi))

# %%
# Fig. 1B: the median along the layers, with the IQR over categories as a band
# (:func:`~dnnsparse.viz.plot_medians`).
show(viz.plot_medians(out / "fig1b.png", {"": psi}))

# %%
# **How to read it.** In the paper the curve climbs. Here it does not: median
# PSI is about 0.26 in the stem and falls, with ups and downs, to about 0.07 in
# the last two blocks, before the head layer (1280 channels feeding the
# classifier) jumps to about 0.40, the sparsest layer by far. The trend tests
# printed above say the same: the layer medians fall (tau about -0.6), and so do
# the categories one by one (median per-category tau about -0.4, Wilcoxon test
# across the 16 categories; the authors' test pools all 288 values as if they
# were independent, which makes its p far too small, so it is not printed
# here). EfficientNet-Lite0 on these photographs thus shows the paper's jump at
# the transition to the read-out stage but not its gradual rise: the expansion
# layers of its inverted-residual blocks code these categories more densely the
# deeper they lie.

# %%
# PSI and decoding accuracy (Fig. 2)
# ----------------------------------
# The paper decodes the category of every image from FC2 with a logistic
# regression (2-fold cross-validation), takes each category's accuracy, and
# correlates it across categories with the category's PSI in every layer.
# :func:`~dnnsparse.pipelines.probe_accuracy` is that read-out. Our 16
# categories are too easy for it: from ``block2_relu`` on, nearly every layer
# decodes nearly every category perfectly (``head_relu``, the analogue of FC2,
# makes no mistake at all), and a constant accuracy correlates with nothing.
# The first ReLU layer still makes mistakes, so this example reads out
# ``stem_relu`` -- a different question from the paper's: does a category's
# sparseness in each layer go with how separable it is at the input stage?
table, decoding = probe_accuracy(act.to_matrix("stem_relu"), stim.labels, names=names,
                                 cv=2, seed=SEED)
print(f"read-out from stem_relu, 2-fold CV: accuracy {decoding.accuracy:.3f}")
for category, acc in zip(table["category"], table["accuracy"]):
    if acc < 1:
        print(f"  {category:<11} {acc:.2f}")

# %%
# :func:`~dnnsparse.pipelines.accuracy_analysis` gives the Pearson r between PSI
# and accuracy in every layer (Bonferroni-corrected over the layers), the trend
# of r along the layers, and the paper's stepwise regressions of accuracy on
# the PSI of the layers (with 16 categories for up to 18 predictors these are
# descriptive only, and the analysis says so).
relation = accuracy_analysis(psi, table["label"], table["accuracy"])
print(format_accuracy(relation))
show(viz.plot_correlation(out / "fig2.png", relation, source=psi.source))

# %%
# The correlation of one layer is a scatter of the 16 categories; here the
# layer with the strongest correlation and the head layer (the categories the
# read-out gets wrong are named).
r = relation.correlation.pearson_r
best = int(np.nanargmax(np.abs(r)))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
for ax, i in zip(axes, [best, len(layers) - 1]):
    x = psi.values[i]
    ax.scatter(x, relation.accuracy, color="tab:red", alpha=0.7)
    for xi, yi, name in zip(x, relation.accuracy, psi.names):
        if yi < 1:
            ax.annotate(name, (xi, yi), fontsize=7, xytext=(1, 4), rotation=50,
                        textcoords="offset points")
    ax.set_xlabel(f"PSI in {layers[i]}")
    ax.set_title(f"{layers[i]}: r = {r[i]:+.2f}", fontsize=10)
    ax.grid(alpha=0.3)
axes[0].set_ylabel("accuracy of the\nstem_relu read-out")
fig.suptitle("Each dot a category: PSI against decoding accuracy")
fig.tight_layout()

# %%
# **How to read it.** The read-out confuses six categories, five of them
# textures (brick, coins, grass, gravel, moon), and those are the categories the
# late blocks code most densely: r is negative in most early layers and
# positive from ``block14_relu`` on, where it peaks (r about +0.74, the only
# layer that survives the Bonferroni correction); the trend of r along the
# layers is positive but not significant (tau about +0.3, p about 0.08). That
# looks like the paper's pattern, but with 16 categories, ten of them decoded
# perfectly, and an obvious confound (texture photographs versus objects) it is
# an anecdote, not evidence. The paper's result -- r rising along the layers to
# 0.69 in FC2 -- needs many categories of graded difficulty (256 in Caltech256)
# read out from a late layer; give ``db_probe`` and ``db_psi`` such a set.

# %%
# The weight-permuted network (Fig. 3)
# ------------------------------------
# To ask whether the sparseness profile is learned, the paper permutes the
# weights of every layer (the multiset of values stays, their arrangement is
# lost) and measures PSI again. :func:`~dnnsparse.model.lesion` does this in
# place with a seeded generator; other kinds permute only channels or kernels,
# permute the biases, or replace every ReLU by the identity (Fig. 3C-F). PSI
# needs only category means, so this time the extraction averages each
# category's images itself (``aggregate="label"``).
lesioned = lesion(load_dnn("efficientnet_lite0", offline=True), "weights", seed=SEED)
lesioned.input_size = (SIZE, SIZE)
cat_act = lesioned.extract(stim, layers, pool="mean", aggregate="label",
                           show_progress=False)
psi_lesion = activation_sparseness(cat_act, names=names)
print(trend_line(psi, "intact"))
print(trend_line(psi_lesion, "weights permuted"))
show(viz.plot_medians(out / "fig3.png", {"intact": psi, "weights permuted": psi_lesion},
                      title="EfficientNet-Lite0: median PSI, intact vs weights permuted"))

# %%
# **How to read it.** With its weights permuted the network's PSI falls
# along the layers more steeply than the intact one (tau of the layer medians
# about -0.8, against about -0.6), it is lower in every block after the first
# two, and the sparse head layer is gone (median about 0.06 instead of 0.40).
# This is the paper's Fig. 3B result -- decreasing sparseness after the weight
# lesion (tau = -0.53 in AlexNet) -- and it says that the arrangement of the
# learned weights, not the architecture or the ReLUs alone, makes the
# sparseness of the trained network's late layers.
#
# Where to go from here: ``db_demo -extra-net alexnet`` adds AlexNet (the paper's
# network) when its ImageNet weights are in the torch cache; ``db_psi -abs``
# runs the paper's control with absolute activations; ``db_psi -measure
# lifetime`` measures each unit's selectivity instead of each category's
# sparseness.

act.close()
cat_act.close()
workdir.cleanup()

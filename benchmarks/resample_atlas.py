"""Atlas onto data (-resample-atlas): dnnsparse versus nilearn's resample_to_img.

A synthetic 1 mm label atlas (``--labels`` blobs on the 182 x 218 x 182 MNI grid) is
put onto a 2 mm 91 x 109 x 91 grid, shifted by half a voxel:

- ``nilearn``: :func:`nilearn.image.resample_to_img` of the label image
  (``interpolation="nearest"``), then one ROI per label of the result;
- ``dnnsparse``: :meth:`dnnsparse.base.roi.ROISet.resample_to` from the atlas's ROISet
  (one nilearn call on an image of ROI numbers -- of voxel indices when ROIs overlap --
  then grouping the grid's voxels by ROI).

Prints wall times, their ratio, and whether the two label maps are identical.

example: python benchmarks/resample_atlas.py --labels 360
"""
import argparse
import time
import warnings

import nibabel as nib
import numpy as np
from nilearn.image import resample_to_img

from dnnsparse.base.roi import ROISet
from dnnsparse.io.brain import VolumeSpace


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, default=360)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    shape, coarse = (182, 218, 182), (9, 10, 9)
    blobs = rng.integers(0, a.labels + 1, coarse)
    idx = [np.minimum(np.arange(s) * c // s, c - 1) for s, c in zip(shape, coarse)]
    labels = blobs[np.ix_(*idx)].astype(np.int16)
    atlas_aff = np.array([[-1.0, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])
    data_aff = np.array([[-2.0, 0, 0, 90.5], [0, 2, 0, -125.5], [0, 0, 2, -71.5],
                         [0, 0, 0, 1]])
    atlas_img = nib.Nifti1Image(labels, atlas_aff)
    ref = nib.Nifti1Image(np.zeros((91, 109, 91), np.float32), data_aff)
    warnings.simplefilter("ignore")

    t = time.perf_counter()
    theirs = np.asarray(resample_to_img(atlas_img, ref, interpolation="nearest",
                                        force_resample=True, copy_header=True).dataobj)
    flat = theirs.reshape(-1)
    order = np.argsort(flat, kind="stable")
    keys, starts = np.unique(flat[order], return_index=True)
    groups = dict(zip(keys.tolist(), np.split(order, starts[1:])))
    t_nilearn = time.perf_counter() - t

    space = VolumeSpace(np.ones(shape, bool), atlas_aff)
    rois = ROISet.from_label_array(labels.reshape(-1), space)
    target = VolumeSpace(np.ones(ref.shape, bool), data_aff)
    t = time.perf_counter()
    moved = rois.resample_to(target)
    t_ours = time.perf_counter() - t

    same = np.array_equal(moved.paint(np.array(moved.labels)), flat)
    print(f"atlas {shape} with {len(rois)} labels -> grid {ref.shape}")
    print(f"nilearn resample_to_img + grouping: {t_nilearn:.3f} s  ({len(groups) - 1} ROIs)")
    print(f"dnnsparse ROISet.resample_to:       {t_ours:.3f} s  ({len(moved)} ROIs)")
    print(f"ratio (dnnsparse / nilearn): {t_ours / t_nilearn:.2f}; identical labels: {same}")


if __name__ == "__main__":
    main()

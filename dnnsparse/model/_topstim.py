"""Targets' values over a stimulus set, batch by batch (what ``db_topstim`` ranks).

- :func:`target_value_batches` -- one forward pass per batch of images; yields only
  the targets' values (``n_batch x n_targets``), never a layer's maps, so the caller's
  memory does not grow with the number of stimuli.
- :func:`stored_target_values` -- the same values from stored activations (a chunk of
  an ``.act.h5`` layer), computed by the same :meth:`Target.values`.
- :func:`resolve_network_targets` -- :func:`resolve_targets`, with a network that
  cannot take its own input size reported in one line.
"""
import torch

from ..errors import InputError
from ._images import ImageDataset, image_batches, network_inputs
from ._targets import resolve_targets, target_responses

__all__ = ["resolve_network_targets", "stored_target_values", "target_value_batches"]



def resolve_network_targets(specs, dnn, *, stat="mean"):
    """:func:`resolve_targets` against ``dnn``; :class:`InputError` if its input is too small.

    A network whose layers shrink a ``dnn.input_size`` image to nothing (a kernel
    larger than its input) fails in torch; that is the user's network or image size
    to change, so it comes back as one line naming the network and the size.
    """
    try:
        return resolve_targets(specs, dnn, stat=stat)
    except RuntimeError as exc:
        height, width = dnn.input_size
        raise InputError(f"{dnn.name} cannot run on its {height}x{width} input images (the "
                         f"image is too small for the network): "
                         f"{' '.join(str(exc).split())[:200]}") from None


def target_value_batches(dnn, paths, targets, *, batch_size=32, device="cpu", workers=None,
                         preprocess=None):
    """Yield ``(start, values)`` for consecutive batches of the images at ``paths``.

    Parameters
    ----------
    dnn : DNN
    paths : sequence of path
        Images, in stimulus order (row ``i`` of the stimulus table).
    targets : list of Target
        Resolved against ``dnn`` (:func:`resolve_targets`).
    batch_size, device, workers, preprocess
        As in :func:`dnnsparse.model.extract`.

    Yields
    ------
    start : int
        Index of the batch's first image.
    values : ndarray of shape (n_batch, n_targets), float64
        The targets' values (computed in the network's dtype, as stored by ``db_act``).

    Raises
    ------
    FileFormatError
        An image that cannot be read (its row and file named).
    """
    device = torch.device(device)
    dnn.to(device)
    dataset = ImageDataset(paths, dnn.image_transform(preprocess))
    batches = image_batches(dataset, batch_size, workers=workers, device=device)
    with torch.inference_mode():
        for idx, x in network_inputs(dnn, batches, paths, device):
            values = target_responses(dnn, x, targets)
            yield idx[0], values.to("cpu", torch.float64).numpy()


def stored_target_values(data, targets):
    """Targets' values from stored activations of one layer.

    Parameters
    ----------
    data : ndarray of shape (n, n_chn, n_row, n_col)
        Rows of a layer as stored (float32 from ``db_act``).
    targets : list of Target
        Their channel/row/col index ``data`` (already mapped onto the stored
        channels and positions).

    Returns
    -------
    ndarray of shape (n, n_targets), float64
        Computed by :meth:`Target.values` in the stored dtype, so a file written by
        ``db_act`` gives the values the network gives.
    """
    x = torch.from_numpy(data)
    with torch.inference_mode():
        return torch.stack([t.values(x) for t in targets], dim=1).to(torch.float64).numpy()

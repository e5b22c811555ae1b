"""Fine-tune (or train) a wrapped network on a labelled stimulus table, optionally with Top-K.

:func:`train_classifier` is the whole loop as a function; ``db_train`` is a thin
command around it. What it does:

- **Classes.** The distinct values of the table's ``label`` column, sorted, become
  classes ``0..K-1`` (the mapping is saved). When the network's last ``nn.Linear``
  (the last one called in a forward pass: ``classifier.6`` for AlexNet/VGG, ``fc``
  for ResNet/GoogLeNet, ``_fc`` for EfficientNet) has another number of outputs
  than K, it is replaced by a fresh ``nn.Linear(in_features, K)`` initialised with
  the seed (:func:`replace_classifier`).
- **Frozen layers** keep every parameter of the named layers (and their
  sub-modules) fixed (``requires_grad=False``, left out of the optimizer) and stay
  in evaluation mode during training, so their BatchNorm statistics do not move
  and their dropout is off.
- **Top-K** (:func:`~dnnsparse.model.insert_topk`) is active in training and
  evaluation; gradients flow through the kept positions only.
- **Optimizer** SGD (momentum, weight decay) or Adam, with a cosine learning-rate
  schedule from ``lr`` towards 0 over the epochs (stepped once per epoch).
- **Data.** Training images get a random resized crop to the network's input
  size and a horizontal flip (``augment="crop-flip"``); validation images the
  network's own preprocessing. A validation set is given or split off the
  training table (seeded, stratified by class).
- **Outputs** in ``out``: ``checkpoint.pth`` after every epoch (model, optimizer,
  scheduler, epoch, RNG states, class mapping, settings, history; written
  atomically), ``history.csv`` (one row per epoch), and at the end
  ``weights.pth`` (the state dict) and ``model.json`` (network, K, classes,
  Top-K, input size) from which :func:`load_finetuned` rebuilds the network.
  ``weights.pth`` also loads with ``load_dnn(net, weights=...)`` / ``db_act
  -weights`` when K equals the network's original number of outputs (a custom
  net built with K outputs, or 1000 ImageNet classes); otherwise use
  :func:`load_finetuned`.
- **Snapshots** (optional): a ``snapshot(dnn, epoch, folder)`` callable runs once
  before the first epoch (``epoch=0``, the initial network) and after every
  epoch's validation, *before* that epoch's checkpoint is written, with the
  network in evaluation mode and the run's Top-K active; ``folder`` is the run's
  output folder (a temporary one until the first checkpoint). A run interrupted
  between a snapshot and its checkpoint redoes that epoch on resume and writes
  the same snapshot again, so every checkpointed epoch has its snapshot.
  ``db_train -snapshot-topk`` saves the Top-K masks of chosen layers this way
  (:mod:`dnnsparse.pipelines`' ``TopKSnapshots``). Snapshots do not change the
  training: they run with the random state saved and restored.

Reproducibility
---------------
The seed fixes the new classifier's initialisation, the validation split, and --
for every epoch separately, from ``(seed, epoch)`` -- the shuffling, the
augmentation and dropout. On CPU with the same torch version and the same number
of threads (``torch.set_num_threads``; ``db_train -threads``) a run is bit-for-bit
repeatable, and ``resume=True`` continues a checkpoint to exactly the weights of
an uninterrupted run. With ``workers > 0`` augmentation runs in worker processes
seeded from the same per-epoch generator, so it is repeatable for a fixed
``workers``. GPU kernels are not guaranteed to be deterministic.
"""
import contextlib
import hashlib
import json
import logging
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import transforms as T

from ..errors import FileFormatError, InputError, OutputExistsError
from ..io import atomic_output, atomic_output_dir, check_input_file, check_output_dir
from ..io.table import write_table
from ..utils.progress import progress
from ..utils.validation import check_choice, check_random_state, check_scalar
from ._images import ImageDataset, collate_images, default_workers
from ._transforms import to_rgb

__all__ = ["AUGMENTATIONS", "CHECKPOINT", "OPTIMIZERS", "TrainResult", "finetuned_info",
           "find_classifier",
           "load_finetuned", "replace_classifier", "split_stimuli", "train_classifier"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pth"
HISTORY = "history.csv"
WEIGHTS = "weights.pth"
INFO = "model.json"
_FORMAT = "dnnsparse-train-1"


# ---------------------------------------------------------------------- registries
def _sgd(params, *, lr, momentum, weight_decay):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _adam(params, *, lr, momentum, weight_decay):
    # Adam's own moment estimates replace momentum; the argument is ignored
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


#: Registry of optimizers: ``(params, *, lr, momentum, weight_decay) -> Optimizer``.
OPTIMIZERS = {"sgd": _sgd, "adam": _adam}


def _crop_flip(size):
    return [T.RandomResizedCrop(tuple(size), antialias=True), T.RandomHorizontalFlip()]


def _no_augment(size):
    return [T.Resize(tuple(size), antialias=True)]


#: Registry of training augmentations: ``input size -> list of PIL transforms``.
AUGMENTATIONS = {"crop-flip": _crop_flip, "none": _no_augment}


def _train_transform(dnn, augment):
    return T.Compose([T.Lambda(to_rgb), *AUGMENTATIONS[augment](dnn.input_size),
                      T.PILToTensor()])


# ---------------------------------------------------------------------- classifier
def find_classifier(dnn):
    """Module path of the network's last ``nn.Linear`` in forward order.

    One forward pass of a blank image (in evaluation mode, no gradients) records
    the order in which ``nn.Linear`` modules are called.

    Returns
    -------
    str
        E.g. ``"classifier.6"`` (AlexNet), ``"fc"`` (ResNet), ``"_fc"`` (EfficientNet).

    Raises
    ------
    InputError
        When the network calls no ``nn.Linear``.
    """
    called = []
    linears = {m: name for name, m in dnn.module.named_modules() if isinstance(m, nn.Linear)}
    handles = [m.register_forward_hook(lambda mod, i, o: called.append(linears[mod]))
               for m in linears]
    was_training = dnn.module.training
    try:
        dnn.module.eval()
        x = torch.zeros((1, 3) + tuple(dnn.input_size), device=dnn.device)
        with torch.inference_mode():
            dnn.module(x)
    finally:
        dnn.module.train(was_training)
        for h in handles:
            h.remove()
    if not called:
        raise InputError(f"{dnn.name} has no nn.Linear layer to serve as the classifier; "
                         f"end the network with an nn.Linear.")
    return called[-1]


def replace_classifier(dnn, n_classes, *, seed=0):
    """Give the network ``n_classes`` outputs: a fresh last ``nn.Linear`` if needed.

    Parameters
    ----------
    dnn : DNN
        Changed in place; its layer names stay valid (same module path).
    n_classes : int
    seed : int, default=0
        Seed of the new layer's initialisation (torch's default for
        ``nn.Linear``); the global RNG is left untouched.

    Returns
    -------
    path : str
        Module path of the classifier.
    replaced : bool
        False when it had ``n_classes`` outputs already (kept as is).

    Examples
    --------
    >>> dnn = load_dnn("resnet18", weights="random")                # doctest: +SKIP
    >>> replace_classifier(dnn, 3)                                    # doctest: +SKIP
    ('fc', True)
    """
    check_scalar(n_classes, name="n_classes", kind=numbers.Integral, min_val=1)
    path = find_classifier(dnn)
    old = dnn.module.get_submodule(path)
    if old.out_features == n_classes:
        return path, False
    parent_path, _, name = path.rpartition(".")
    parent = dnn.module.get_submodule(parent_path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = nn.Linear(old.in_features, n_classes, bias=old.bias is not None)
    setattr(parent, name, new.to(device=old.weight.device, dtype=old.weight.dtype))
    dnn.refresh_modules()
    log.info("replaced %s of %s (%d outputs) by a new Linear(%d, %d)", path, dnn.name,
             old.out_features, old.in_features, n_classes)
    return path, True


# ---------------------------------------------------------------------------- data
def split_stimuli(labels, val_fraction, *, seed=0):
    """Seeded split into training and validation rows, stratified by label.

    Each class gives ``round(val_fraction * n_class)`` rows to validation, but
    always keeps at least one for training.

    Parameters
    ----------
    labels : array-like of shape (n,)
    val_fraction : float in [0, 1)
    seed : int or numpy Generator

    Returns
    -------
    train, val : ndarray of int
        Sorted row indices.

    Examples
    --------
    >>> train, val = split_stimuli([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)
    >>> len(train), len(val)
    (6, 2)
    """
    check_scalar(val_fraction, name="val_fraction", min_val=0, max_val=1, include_max=False)
    labels = np.asarray(labels)
    rng = check_random_state(seed)
    val = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        n_val = min(int(round(val_fraction * rows.size)), rows.size - 1)
        val.extend(rng.permutation(rows)[:n_val].tolist())
    val = np.sort(np.asarray(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(labels.size), val)
    return train, val


def _class_mapping(stim):
    labels = stim.labels
    if labels is None:
        raise InputError("the training table needs an integer 'label' column (db_stim makes "
                         "one from category sub-folders).")
    classes = np.unique(labels)
    if classes.size < 2:
        raise InputError(f"the training table has one class only (label {classes[0]}); "
                         f"training a classifier needs at least two.")
    names = [str(c) for c in classes]
    if "condition" in stim.columns:      # folder names from Stimulus.from_folder
        cond = np.asarray(stim["condition"]).astype(str)
        per = [np.unique(cond[labels == c]) for c in classes]
        if all(p.size == 1 for p in per):
            names = [str(p[0]) for p in per]
    return classes, names


def _targets(stim, classes, what):
    labels = stim.labels
    if labels is None:
        raise InputError(f"the {what} table needs an integer 'label' column.")
    pos = np.searchsorted(classes, labels)
    pos = np.minimum(pos, classes.size - 1)
    bad = np.flatnonzero(classes[pos] != labels)
    if bad.size:
        raise InputError(f"{what} table row {bad[0] + 1}: label {labels[bad[0]]} is not a "
                         f"training class ({', '.join(map(str, classes))}).")
    return torch.as_tensor(pos, dtype=torch.long)


def _digest(stim):
    """Short fingerprint of a table's rows (ids and labels) to recognise it on resume."""
    h = hashlib.sha256()
    for i, l in zip(stim.ids, stim.labels):
        h.update(f"{i}\t{l}\n".encode())
    return h.hexdigest()[:16]


def _loader(stim, transform, batch_size, workers, *, generator=None, shuffle=False,
            drop_last=False):
    return DataLoader(ImageDataset(stim.paths, transform), batch_size=batch_size,
                      shuffle=shuffle, generator=generator, num_workers=workers,
                      collate_fn=collate_images, drop_last=drop_last)


def _batches(loader, stim):
    for idx, x, errors in loader:
        if errors:
            i, msg = errors[0]
            raise FileFormatError(f"cannot read image {stim.paths[i]} (row {i + 1} of the "
                                  f"stimulus table): {msg}. Fix or remove it.")
        yield idx, x


def _epoch_seed(seed, epoch):
    """A 63-bit seed for ``epoch`` derived from the run's seed."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(2, np.uint64)[0] >> 1)


# -------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """Outcome of :func:`train_classifier`.

    Attributes
    ----------
    history : dict of lists
        Columns ``epoch, lr, train_loss, train_accuracy, val_loss, val_accuracy``.
    classes : list
        Original label of each output unit ``0..K-1``.
    class_names : list of str
    classifier : str
        Module path of the (replaced) last ``nn.Linear``.
    out : Path
        Output folder (``weights.pth``, ``model.json``, ``checkpoint.pth``, ``history.csv``).
    epochs_run : int
        Epochs trained in this call (less than ``epochs`` after a resume).
    """

    history: dict
    classes: list
    class_names: list
    classifier: str
    out: Path
    epochs_run: int


def _run_epoch(dnn, loader, stim, targets, device, *, optimizer=None, frozen=(), desc="",
               show_progress=False):
    """One pass; trains when ``optimizer`` is given. Returns (mean loss, accuracy)."""
    module = dnn.module
    training = optimizer is not None
    module.train(training)
    for m in frozen:
        m.eval()
    loss_sum, correct, n = 0.0, 0, 0
    bar = progress(total=len(stim), desc=desc, unit="img", enabled=show_progress)
    grad = torch.enable_grad() if training else torch.no_grad()
    try:
        with grad:
            for idx, x in _batches(loader, stim):
                x = dnn.normalize(x.to(device))
                y = targets[idx].to(device)
                out = module(x)
                if isinstance(out, (tuple, list)):
                    out = out[0]
                loss = F.cross_entropy(out, y)
                if training:
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                loss_sum += float(loss.detach()) * len(idx)      # float64 accumulation
                correct += int((out.detach().argmax(1) == y).sum())
                n += len(idx)
                bar.update(len(idx))
                bar.set_postfix(loss=f"{loss_sum / n:.4f}")
    finally:
        bar.close()
        module.eval()
    if n == 0:
        return math.nan, math.nan
    return loss_sum / n, correct / n


def train_classifier(dnn, train_stim, *, out, val_stim=None, val_fraction=0.2, epochs=10,
                     lr=0.01, optimizer="sgd", momentum=0.9, weight_decay=0.0, batch_size=32,
                     freeze=(), topk=None, topk_mode="keep", augment="crop-flip", seed=0,
                     resume=False, force=False, device="cpu", workers=None, callback=None,
                     snapshot=None, show_progress=True):
    """Fine-tune ``dnn`` on a labelled stimulus table; write checkpoints and weights.

    Parameters
    ----------
    dnn : DNN
        Changed in place: new classifier if needed, trained weights; any Top-K
        inserted here is removed again at the end.
    train_stim : Stimulus
        Image table with an integer ``label`` column.
    out : str or Path
        Output folder; must be empty unless ``force`` or ``resume``.
    val_stim : Stimulus, optional
        Validation table (labels among the training classes). Otherwise
        ``val_fraction`` of each class is split off ``train_stim`` (seeded).
    val_fraction : float in [0, 1), default=0.2
        0: no validation (NaN in the history).
    epochs : int, default=10
    lr : float, default=0.01
        Initial learning rate of the cosine schedule.
    optimizer : {"sgd", "adam"}, default="sgd"
    momentum : float, default=0.9
        SGD only.
    weight_decay : float, default=0.0
    batch_size : int, default=32
        A last batch of a single image is dropped (BatchNorm needs two).
    freeze : sequence of str
        Layers (friendly names or module paths) whose parameters stay fixed.
    topk : dict, optional
        ``{layer: fraction}`` Top-K during training and evaluation.
    topk_mode : {"keep", "mean", "inverse"}, default="keep"
    augment : {"crop-flip", "none"}, default="crop-flip"
    seed : int, default=0
    resume : bool, default=False
        Continue from ``out/checkpoint.pth``; the settings must be the same.
    force : bool, default=False
        Write into a non-empty ``out`` (a new run).
    device : str, default="cpu"
    workers : int, optional
        Image-decoding worker processes (default: 0 on a CPU, 4 on a GPU).
    callback : callable, optional
        ``callback(record)`` after each epoch's checkpoint is written, with that
        epoch's history row (a dict); may raise to stop (e.g. early stopping).
    snapshot : callable, optional
        ``snapshot(dnn, epoch, folder)`` for ``epoch = 0`` (new runs only) and after
        every epoch, before its checkpoint (see the module docstring). Its
        ``settings`` attribute (a JSON-able dict), when present, is recorded with
        the run's settings, so that ``resume`` refuses other snapshot settings.
    show_progress : bool, default=True

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError, UnknownLayerError, OutputExistsError, FileFormatError
        Before any training for bad settings, tables or layers.

    Examples
    --------
    >>> dnn = load_dnn("resnet18", weights="random")                  # doctest: +SKIP
    >>> res = train_classifier(dnn, Stimulus.from_folder("imgs"), out="run",
    ...                        epochs=5, topk={"layer3": 0.2})        # doctest: +SKIP
    >>> res.history["val_accuracy"][-1]                               # doctest: +SKIP
    """
    from ._topk import MODES, insert_topk
    check_scalar(epochs, name="epochs", kind=numbers.Integral, min_val=1)
    check_scalar(lr, name="lr", min_val=0, include_min=False)
    check_scalar(momentum, name="momentum", min_val=0)
    check_scalar(weight_decay, name="weight_decay", min_val=0)
    check_scalar(batch_size, name="batch_size", kind=numbers.Integral, min_val=1)
    workers = default_workers(workers, device)
    check_scalar(workers, name="workers", kind=numbers.Integral, min_val=0)
    check_choice(optimizer, OPTIMIZERS, name="optimizer")
    check_choice(augment, AUGMENTATIONS, name="augment")
    check_choice(topk_mode, MODES, name="topk_mode")
    out = Path(out)
    if resume:
        check_input_file(out / CHECKPOINT, what="checkpoint (nothing to resume)")
    elif out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"output directory {out} is not empty; pass --force to start "
                                f"a new run there, or -resume to continue its checkpoint.")
    else:
        check_output_dir(out, force=force)      # --force replaces only a folder we wrote
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but CUDA is not available; use "
                         "-device cpu.")

    # ---- data
    classes, class_names = _class_mapping(train_stim)
    if val_stim is None:
        tr, va = split_stimuli(train_stim.labels, val_fraction, seed=seed)
        train_stim, val_stim = train_stim[tr], train_stim[va]
    train_stim.check_files()
    val_stim.check_files()
    y_train = _targets(train_stim, classes, "training")
    y_val = _targets(val_stim, classes, "validation")

    # ---- network
    dnn.to(device)
    classifier, _ = replace_classifier(dnn, int(classes.size), seed=seed)
    frozen = [dnn.resolve(layer)[0] for layer in freeze]       # UnknownLayerError
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)
    if topk:   # check layers and fractions now, before anything is written
        insert_topk(dnn, topk, mode=topk_mode).remove()
    params = [p for p in dnn.module.parameters() if p.requires_grad]
    if not params:
        raise InputError("every parameter is frozen; nothing would be trained. Freeze fewer "
                         "layers.")
    opt = OPTIMIZERS[optimizer](params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(epochs))

    settings = {"net": dnn.name, "weights": dnn.weights, "lesion": "; ".join(dnn.lesions),
                "input_size": list(dnn.input_size), "classes": classes.tolist(),
                "train": _digest(train_stim), "val": _digest(val_stim), "epochs": int(epochs),
                "lr": float(lr), "optimizer": optimizer, "momentum": float(momentum),
                "weight_decay": float(weight_decay), "batch_size": int(batch_size),
                "freeze": list(freeze), "topk": dict(topk or {}), "topk_mode": topk_mode,
                "augment": augment, "seed": int(seed), "class_names": class_names,
                "snapshot": (getattr(snapshot, "settings", None) if snapshot is not None
                             else None)}
    # the per-epoch seeding below must not change the caller's random state
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        start, history = _fit(dnn, out, settings, opt, sched, train_stim, val_stim, y_train,
                              y_val, frozen=frozen, resume=resume, force=force,
                              batch_size=batch_size, workers=workers, device=device,
                              callback=callback, snapshot=snapshot,
                              show_progress=show_progress)

    with atomic_output(out / WEIGHTS, force=True) as tmp:
        torch.save(dnn.module.state_dict(), tmp)
    info = {**settings, "net": _portable_net(dnn.name), "n_classes": int(classes.size),
            "classifier": classifier,
            "mean": list(dnn.mean), "std": list(dnn.std), "preprocess": dnn.preprocess,
            "format": _FORMAT}
    with atomic_output(out / INFO, force=True) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return TrainResult(history=history, classes=classes.tolist(), class_names=class_names,
                       classifier=classifier, out=out, epochs_run=max(0, epochs - start))


def _fit(dnn, out, settings, opt, sched, train_stim, val_stim, y_train, y_val, *, frozen,
         resume, force, batch_size, workers, device, callback, snapshot=None,
         show_progress):
    """The epochs of :func:`train_classifier`; returns (first epoch run, history)."""
    from ._topk import insert_topk
    seed, epochs = settings["seed"], settings["epochs"]
    history, start = {}, 0
    if resume:
        start, history = _load_checkpoint(out / CHECKPOINT, settings, dnn, opt, sched)

    topk = settings["topk"]
    handle = insert_topk(dnn, topk, mode=settings["topk_mode"]) if topk else None
    generator = torch.Generator()
    n = len(train_stim)
    train_loader = _loader(train_stim, _train_transform(dnn, settings["augment"]), batch_size,
                           workers, generator=generator, shuffle=True,
                           drop_last=n % batch_size == 1 and n > 1)
    val_loader = _loader(val_stim, dnn.image_transform(), batch_size, workers)
    # A new run is written into a temporary folder that takes the name ``out`` when
    # the first epoch's checkpoint is complete: a run failing before leaves nothing,
    # and --force replaces the previous run as a whole (no stale file of it stays).
    # From then on the folder is in place, so an interrupted run can be resumed.
    with contextlib.ExitStack() as staging:
        where = out if resume else staging.enter_context(atomic_output_dir(out, force=force))
        try:
            if snapshot is not None and start == 0:
                _take_snapshot(snapshot, dnn, 0, where, device)
            for epoch in range(start, epochs):
                # per-epoch seeds: a resumed run draws exactly what an uninterrupted one does
                epoch_seed = _epoch_seed(seed, epoch)
                torch.manual_seed(epoch_seed)
                generator.manual_seed(epoch_seed)
                lr_now = opt.param_groups[0]["lr"]
                tag = f"epoch {epoch + 1}/{epochs}"
                train_loss, train_acc = _run_epoch(dnn, train_loader, train_stim, y_train, device,
                                                   optimizer=opt, frozen=frozen, desc=tag,
                                                   show_progress=show_progress)
                if not math.isfinite(train_loss):
                    raise InputError(f"{tag}: the training loss is {train_loss}; lower -lr.")
                sched.step()
                val_loss, val_acc = _run_epoch(dnn, val_loader, val_stim, y_val, device,
                                               desc=f"{tag} validation",
                                               show_progress=show_progress)
                record = {"epoch": epoch + 1, "lr": lr_now, "train_loss": train_loss,
                          "train_accuracy": train_acc, "val_loss": val_loss,
                          "val_accuracy": val_acc, "n_train": len(train_stim),
                          "n_val": len(val_stim)}
                for k, v in record.items():
                    history.setdefault(k, []).append(v)
                if snapshot is not None:
                    _take_snapshot(snapshot, dnn, epoch + 1, where, device)
                _save_checkpoint(where / CHECKPOINT, settings, dnn, opt, sched, epoch + 1,
                                 history)
                write_table(where / HISTORY, history, force=True)
                if where != out:
                    staging.close()                 # the folder takes its name now
                    where = out
                log.info("%s: train loss %.4f, accuracy %.3f; validation loss %.4f, accuracy "
                         "%.3f", tag, train_loss, train_acc, val_loss, val_acc)
                if callback is not None:
                    callback(dict(record))
        finally:
            if handle is not None:
                handle.remove()
    return start, history


def _take_snapshot(snapshot, dnn, epoch, folder, device):
    """``snapshot(dnn, epoch, folder)`` in evaluation mode, the random state kept."""
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        dnn.module.eval()
        snapshot(dnn, epoch, Path(folder))
    dnn.module.eval()


def _portable_net(name):
    """A custom ``file.py:function`` with an absolute file path (for load_finetuned)."""
    target, sep, func = name.rpartition(":")
    if sep and target.endswith(".py"):
        return f"{Path(target).resolve()}:{func}"
    return name


# ---------------------------------------------------------------------- checkpoints
def _save_checkpoint(path, settings, dnn, opt, sched, epoch, history):
    state = {"format": _FORMAT, "epoch": int(epoch), "settings": settings, "history": history,
             "model": dnn.module.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(),
             "rng": {"torch": torch.get_rng_state()}}
    if torch.cuda.is_available():
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    with atomic_output(path, force=True) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path, settings, dnn, opt, sched):
    """Restore a checkpoint into ``dnn``/``opt``/``sched``; return (epoch, history)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # truncated, not a torch file, foreign pickle
        raise FileFormatError(f"cannot read checkpoint {path}: {exc}.") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise FileFormatError(f"{path} is not a db_train checkpoint.")
    saved = state["settings"]
    # the weights' description may differ (a moved file) without changing anything:
    # the checkpoint holds the model's state
    differ = [k for k in settings if k != "weights" and saved.get(k) != settings[k]]
    if differ:
        detail = "; ".join(f"{k}: {saved.get(k)!r} then, {settings[k]!r} now"
                           for k in differ[:4])
        raise InputError(f"-resume: the settings differ from the run in {path.parent} "
                         f"({detail}); give the same options, or start a new run with "
                         f"--force.")
    dnn.module.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    log.info("resuming %s after epoch %d of %d", path, state["epoch"], settings["epochs"])
    return int(state["epoch"]), {k: list(v) for k, v in state["history"].items()}


# ------------------------------------------------------------------------- loading
def finetuned_info(directory):
    """The ``model.json`` written by :func:`train_classifier`, as a dict."""
    path = check_input_file(Path(directory) / INFO, what="model description (model.json)")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"{path} is not valid JSON: {exc}.") from None
    if info.get("format") != _FORMAT:
        raise FileFormatError(f"{path} was not written by db_train.")
    return info


def load_finetuned(directory, *, preprocess=None):
    """Rebuild a network fine-tuned by :func:`train_classifier` from its output folder.

    The architecture is built again (``net`` in ``model.json``), its classifier
    given K outputs, and ``weights.pth`` loaded. Top-K is not inserted; to use
    the network as trained, insert it again::

        info = finetuned_info(directory)
        if info["topk"]:
            insert_topk(dnn, info["topk"], mode=info["topk_mode"])

    Parameters
    ----------
    directory : str or Path
    preprocess : {"squash", "crop"}, optional
        Default: the one used in training.

    Returns
    -------
    DNN
        In evaluation mode, with the training input size.
    """
    from ._weights import apply_state_dict, load_state_dict_file
    from ._zoo import load_dnn
    info = finetuned_info(directory)
    dnn = load_dnn(info["net"], weights="random", seed=0,
                   preprocess=preprocess or info["preprocess"])
    dnn.input_size = tuple(info["input_size"])
    replace_classifier(dnn, int(info["n_classes"]))
    path = Path(directory) / WEIGHTS
    state_dict, sha = load_state_dict_file(path)
    apply_state_dict(dnn.module, state_dict, source=path)
    dnn.weights, dnn.weights_sha256 = str(path), sha
    dnn.module.eval()
    return dnn

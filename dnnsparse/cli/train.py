"""Fine-tune a network (or train a small one) on a labelled stimulus table, optionally with Top-K.

The table's distinct 'label' values become K classes (mapping saved); the network's
last Linear layer is replaced by a fresh one with K outputs when it has another
number. -topk keeps Top-K active during training and evaluation; -freeze keeps the
named layers' parameters fixed (and their BatchNorm statistics). SGD or Adam with a
cosine learning-rate schedule; training images are randomly cropped and flipped.

DIR receives checkpoint.pth after every epoch (continue an interrupted run with the
same command plus -resume), history.csv and history.png (loss and accuracy per
epoch), and at the end weights.pth and model.json. dnnsparse.model._train.
load_finetuned(DIR) rebuilds the trained network; weights.pth also loads with
'-net NAME -weights DIR/weights.pth' (e.g. in db_act) when K equals the network's
own number of outputs.

-snapshot-topk PROBE.stim.csv saves how the Top-K maps change over training (the
paper's Fig. 8): for that small fixed image set, before the first epoch and after
every epoch, DIR/topk_snapshots/ receives epoch_NNN.topk.h5 (the Top-K masks: per
layer a bool dataset masks/LAYER of shape (n_stimuli, C, H, W), stimID, epoch and
fraction attributes), epoch_NNN.pth (that epoch's weights, so the masks can be
recomputed), epoch_NNN.png (the first four images with each layer's Top-K masks) and
changes.csv/changes.png (the fraction of mask positions changed since the previous
epoch). The layers are the -topk layers with their fractions unless -snapshot-layers
names others (then -snapshot-fraction gives their fraction; it also overrides the -topk
fractions). Masks are read from a layer's output before its own Top-K, with the run's
Top-K active elsewhere, in evaluation mode. -resume continues the snapshots.

Seeded: the same -seed, data and settings give bit-for-bit the same weights on CPU
with the same number of threads (-threads).

example: db_train -net resnet18 -stim train.stim.csv -val-fraction 0.2 -epochs 20 -lr 0.01 -topk layer3=0.2 -freeze conv1 layer1 -out resnet18_topk
example: db_train -net resnet18 -stim train.stim.csv -epochs 20 -topk layer2_2=0.2 -snapshot-topk probe.stim.csv -out resnet18_parts
example: db_train -net resnet18 -stim train.stim.csv -epochs 20 -snapshot-topk probe.stim.csv -snapshot-layers layer2_2 layer3_2 -snapshot-fraction 0.2 -out resnet18_dense
"""
from ..utils.validation import finite_float
from ._common import (add_device_args, add_force_arg, add_lesion_args, add_model_args,
                      add_option, add_out_arg, add_stim_arg, cli_main, dnn_from_args,
                      make_parser, parse_device, parse_layer_fractions)


def get_parser():
    p = make_parser("db_train", __doc__)
    add_model_args(p)
    add_option(p, "input-size", type=int, metavar="N",
               help="train and evaluate on N x N images (default: the network's own size)")
    g = add_lesion_args(p, seed_help="seed of the lesion, the new classifier, the validation "
                                     "split, shuffling, augmentation and dropout")
    add_option(g, "freeze", nargs="+", default=[], metavar="L",
               help="layers whose parameters stay fixed")
    add_stim_arg(p)
    g = p.add_argument_group("validation")
    v = g.add_mutually_exclusive_group()
    add_option(v, "val-stim", metavar="FILE", help="validation table (labels among the "
               "training classes)")
    add_option(v, "val-fraction", type=finite_float, default=0.2, metavar="F",
               help="fraction of each class split off the training table for validation")
    g = p.add_argument_group("training")
    add_option(g, "epochs", type=int, default=10, metavar="N")
    add_option(g, "lr", type=finite_float, default=0.01, metavar="LR", help="initial learning rate")
    add_option(g, "optimizer", default="sgd", choices=["sgd", "adam"])
    add_option(g, "momentum", type=finite_float, default=0.9, metavar="M", help="SGD momentum")
    add_option(g, "weight-decay", type=finite_float, default=0.0, metavar="WD")
    add_option(g, "augment", default="crop-flip", choices=["crop-flip", "none"],
               help="training augmentation: random resized crop + horizontal flip, or none")
    add_option(g, "resume", action="store_true",
               help="continue the run in -out from its checkpoint (same options)")
    add_option(g, "threads", type=int, metavar="N",
               help="CPU threads for torch (default: torch's choice)")
    g = p.add_argument_group("Top-K snapshots (how the Top-K maps change over training)")
    add_option(g, "snapshot-topk", metavar="FILE",
               help="small image table whose Top-K masks are saved before training and "
                    "after every epoch in DIR/topk_snapshots")
    add_option(g, "snapshot-layers", nargs="+", metavar="L",
               help="layers of the snapshots (default: the -topk layers)")
    add_option(g, "snapshot-fraction", type=finite_float, metavar="F",
               help="Top-K fraction of the snapshot layers, in (0, 1] (default: each "
                    "layer's -topk fraction)")
    add_out_arg(p, help="output directory")
    add_device_args(p)
    add_force_arg(p)
    return p


@cli_main(get_parser)
def main(args):
    import sys
    from pathlib import Path

    import torch

    from ..viz import plot_training_history
    from ..base.stimulus import Stimulus
    from ..errors import InputError, OutputExistsError
    from ..io import check_output_dir
    from ..model import CHECKPOINT, train_classifier

    if args.input_size is not None and args.input_size < 8:
        raise InputError(f"-input-size {args.input_size} is too small; give at least 8.")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"-threads must be at least 1; got {args.threads}.")
    device = parse_device(args)
    if not args.resume:        # refuse before loading anything
        try:
            check_output_dir(args.out, force=args.force)
        except OutputExistsError as exc:
            if args.force:
                raise
            raise OutputExistsError(f"{exc} To continue the run it holds, add -resume.") \
                from None
    topk = parse_layer_fractions(args.topk) if args.topk else None
    snapshot_spec_ = _snapshot_spec(args, topk)
    stim = Stimulus.load(args.stim)
    val = Stimulus.load(args.val_stim) if args.val_stim else None
    probe = None
    if snapshot_spec_ is not None:
        probe = Stimulus.load(args.snapshot_topk)
        if len(probe) == 0:
            raise InputError(f"-snapshot-topk {args.snapshot_topk}: the table has no rows.")
        probe.check_files()
    dnn = dnn_from_args(args)
    if args.input_size:
        dnn.input_size = (args.input_size, args.input_size)
    if args.lesion:
        from ..model import lesion
        lesion(dnn, args.lesion, seed=args.seed)
    snapshots = None
    if probe is not None:
        from ..pipelines import TopKSnapshots
        for layer in snapshot_spec_:
            dnn.resolve(layer)                  # unknown layer: refused before training
        snapshots = TopKSnapshots(probe, snapshot_spec_, batch_size=args.batch_size,
                                  workers=args.workers, title=dnn.name)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = train_classifier(
            dnn, stim, out=args.out, val_stim=val, val_fraction=args.val_fraction,
            epochs=args.epochs, lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
            weight_decay=args.weight_decay, batch_size=args.batch_size, freeze=args.freeze,
            topk=topk, topk_mode=args.topk_mode, augment=args.augment, seed=args.seed,
            resume=args.resume, force=args.force, device=device,
            workers=args.workers, snapshot=snapshots, show_progress=not args.quiet)
    except KeyboardInterrupt:
        ckpt = Path(args.out) / CHECKPOINT
        how = (f"the last finished epoch is in {ckpt}; continue with the same command and "
               f"-resume." if ckpt.is_file() else "no epoch had finished.")
        print(f"db_train: interrupted; {how}", file=sys.stderr)
        return 130
    finally:
        torch.set_num_threads(threads)
    out = Path(args.out)
    plot_training_history(out / "history.png", result.history, force=True,
                          title=f"{dnn.name}: {len(result.classes)} classes")
    h = result.history
    snaps = (f", topk_snapshots/ ({len(snapshots.spec)} layer(s), {len(probe)} images, "
             f"epochs 0-{h['epoch'][-1]})" if snapshots is not None else "")
    print(f"wrote {out}: weights.pth, model.json, checkpoint.pth, history.csv, "
          f"history.png{snaps}; "
          f"{h['epoch'][-1]} epochs, train loss {h['train_loss'][0]:.4f} -> "
          f"{h['train_loss'][-1]:.4f}, validation accuracy {h['val_accuracy'][-1]:.3f}")


def _snapshot_spec(args, topk):
    """``{layer: fraction}`` of -snapshot-topk, or None; the options checked together."""
    from ..errors import InputError
    from ..pipelines import snapshot_spec
    if args.snapshot_topk is None:
        extra = [o for o, v in (("-snapshot-layers", args.snapshot_layers),
                                ("-snapshot-fraction", args.snapshot_fraction))
                 if v is not None]
        if extra:
            raise InputError(f"{' and '.join(extra)} need -snapshot-topk FILE (the images "
                             f"whose Top-K masks are saved).")
        return None
    return snapshot_spec(args.snapshot_layers, args.snapshot_fraction, topk=topk)

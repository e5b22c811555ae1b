"""dnnsparse: treat a deep network like a brain.

Present stimuli, "scan" layer activations, measure how sparsely each layer codes
objects, and map layers onto fMRI regions.

Where to start
--------------
From the shell: ``db_demo -out demo/`` runs the population-sparseness analysis of
Liu, Zhen & Liu (2020) offline; every analysis is a ``db_*`` command (``db_act --help``).
From Python, the entry points are the stimulus table
(:meth:`dnnsparse.base.Stimulus.from_folder`), the network
(:func:`dnnsparse.model.load_dnn`), its activations (:meth:`dnnsparse.model.DNN.extract`)
and the measures (:func:`dnnsparse.algo.sparseness.population_sparseness`,
:mod:`dnnsparse.algo.rsa`, :mod:`dnnsparse.algo.encoding`); :mod:`dnnsparse.pipelines`
chains them as the commands do. Five lines::

    from dnnsparse.base import Stimulus
    from dnnsparse.model import load_dnn
    stim = Stimulus.from_folder("images/")     # one sub-folder per category
    act = load_dnn("efficientnet_lite0").extract(stim, ["head_relu"])
    act.save("effnet.act.h5")                  # DNNBrain's .act.h5

The documentation site (``docs/``: user guide, tutorials of the three papers, command and
API reference) is built with ``python -m sphinx -W -b html docs docs/_build/html``.

Sub-packages (imports flow one way,
``cli -> pipelines -> {model, algo, viz} -> base -> io -> utils``):

- :mod:`dnnsparse.io` -- DNNBrain-compatible files and brain images (no torch).
- :mod:`dnnsparse.base` -- Stimulus, Mask, Activation, RDM and brain-data objects.
- :mod:`dnnsparse.model` -- wrapped PyTorch networks, layer names, weights, lesions, Top-K.
- :mod:`dnnsparse.algo` -- sparseness, statistics, RSA, encoding/decoding (NumPy, no torch).
- :mod:`dnnsparse.pipelines` -- files in, tables and maps out.
- :mod:`dnnsparse.viz` -- figures.
- :mod:`dnnsparse.cli` -- the ``db_*`` commands.

Importing :mod:`dnnsparse` does not import torch.
"""
import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

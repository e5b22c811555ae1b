"""utils.engine without a cluster: scheduler specs, SLURM YAML checks, per-task seeds,
the in-process and joblib paths, and voxel batches joined exactly."""
import numpy as np
import pytest

from dnnsparse.errors import InputError, MissingFileError
from dnnsparse.utils.engine import check_scheduler, open_engine, task_seeds


@pytest.mark.parametrize("spec, kind, value", [
    (None, None, None), ("local:3", "local", 3), ("tcp://10.0.0.1:8786", "tcp",
                                                   "tcp://10.0.0.1:8786"),
    ("threading", "joblib", "threading")])
def test_good_specs(spec, kind, value):
    assert check_scheduler(spec) == (kind, value)


@pytest.mark.parametrize("spec", ["local:0", "local:-1", "local:x", "local:", "tcp://host",
                                  "tcp:host:1", "slurm:", "sge:x", 3])
def test_bad_specs_are_input_errors(spec):
    with pytest.raises(InputError):
        check_scheduler(spec)


def test_slurm_yaml_is_checked(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text("cores: 8\nmemory: 16GB\nprocesses: 4\nwalltime: '01:00:00'\n"
                    "queue: q\naccount: a\njob_extra_directives: ['--exclusive']\njobs: 3\n")
    kind, config = check_scheduler(f"slurm:{good}")
    assert kind == "slurm" and config["jobs"] == 3 and config["cores"] == 8
    with pytest.raises(MissingFileError):
        check_scheduler(f"slurm:{tmp_path / 'none.yaml'}")
    for text, words in [("cores: 8\n", "'memory' is required"),
                        ("cores: 8\nmemory: 1GB\nnodes: 2\n", "unknown key 'nodes'"),
                        ("cores: 0\nmemory: 1GB\n", "cores must be an integer >= 1"),
                        ("cores: 8\nmemory: 1GB\njob_extra_directives: x\n", "list of"),
                        ("- 1\n- 2\n", "give a mapping"), ("cores: [\n", "not valid YAML")]:
        good.write_text(text)
        with pytest.raises(InputError, match=words):
            check_scheduler(f"slurm:{good}")


def test_task_seeds_spawned_from_seed_sequence():
    seeds = task_seeds(7, 4)
    assert seeds == task_seeds(7, 4) and len(set(seeds)) == 4
    expected = [int(c.generate_state(2, np.uint64)[0]) for c in
                np.random.SeedSequence(7).spawn(4)]
    assert seeds == expected
    assert task_seeds(7, 6)[:4] == seeds          # task i's seed does not depend on n


@pytest.mark.parametrize("spec", [None, "threading"])
def test_in_process_and_joblib_engines(spec):
    with open_engine(spec, n_jobs=2) as engine:
        assert not engine.distributed
        assert engine.map(np.square, [1, 2, 3]) == [1, 4, 9]
        handle = engine.submit(np.add, engine.put(2), 3)
        assert engine.gather([handle]) == [5]


def test_voxel_batches_join_to_one_call(rng):
    """Per-target r, p and the max-statistic p_fwer of batches = one encode() call."""
    from dnnsparse.algo.encoding import encode
    from dnnsparse.pipelines._encoding_tasks import _join, voxel_batches

    X = rng.standard_normal((50, 5))
    Y = X @ rng.standard_normal((5, 7)) + 2 * rng.standard_normal((50, 7))
    Y[:, 3] = 1.0                                       # a constant target: NaN
    kw = dict(model="glm", n_perm=19, seed=4, cv=5)
    whole = encode(X, Y, **kw)
    assert voxel_batches(7, 3) == [(0, 3), (3, 6), (6, 7)]
    parts = [encode(X, Y[:, a:b], **kw) for a, b in voxel_batches(7, 3)]
    joined = _join(parts, "r")
    np.testing.assert_allclose(joined.r, whole.r, rtol=1e-12)
    np.testing.assert_array_equal(joined.p, whole.p)
    np.testing.assert_array_equal(joined.p_fwer, whole.p_fwer)
    np.testing.assert_allclose(joined.null_max, whole.null_max, rtol=1e-12)

"""encode(), the encoders and model files, against scikit-learn on the same folds."""
import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.linear_model import Lasso, LinearRegression, Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from dnnsparse.algo import model_selection as cvmod
from dnnsparse.algo.encoding import LeastSquares, VoxelwiseRidgeCV, encode, make_encoder
from dnnsparse.pipelines import load_model, save_model
from dnnsparse.algo.encoding._estimators import _inner_splits
from dnnsparse.errors import FileFormatError, InputError, OutputExistsError

ALPHAS = np.logspace(-1, 4, 6)


@pytest.fixture
def planted(rng):
    """60 stimuli x 8 units; voxels 0-1 are linear in the units, voxels 2-4 are noise."""
    X = rng.standard_normal((60, 8))
    Y = rng.standard_normal((60, 5))
    Y[:, 0] += X @ rng.standard_normal(8)
    Y[:, 1] += 2 * X[:, 3]
    return X, Y


def test_ridge_equals_gridsearch_loop_on_same_folds(planted):
    X, Y = planted
    outer, inner = KFold(4, shuffle=True, random_state=3), KFold(3)
    res = encode(X, Y, alphas=ALPHAS, cv=outer, inner_cv=inner)
    for o, (tr, te) in enumerate(outer.split(X)):
        for j in range(Y.shape[1]):
            gs = GridSearchCV(Ridge(), {"alpha": ALPHAS}, cv=inner,
                              scoring="neg_mean_squared_error").fit(X[tr], Y[tr, j])
            assert res.alphas[o, j] == gs.best_params_["alpha"]
            np.testing.assert_allclose(res.predictions[te, j], gs.predict(X[te]), atol=1e-6)
        assert np.all(res.folds[te] == o)
    # scores are computed on the concatenated held-out predictions
    for j in range(Y.shape[1]):
        assert res.r[j] == pytest.approx(stats.pearsonr(Y[:, j], res.predictions[:, j])[0])
    np.testing.assert_allclose(res.r2, r2_score(Y, res.predictions, multioutput="raw_values"))
    assert np.all(res.r[:2] > 0.6) and np.all(np.abs(res.r[2:]) < 0.4)


def test_ridge_loo_equals_ridgecv_alpha_per_target(planted):
    X, Y = planted
    outer = KFold(3, shuffle=True, random_state=0)
    res = encode(X, Y, alphas=ALPHAS, cv=outer, inner_cv="loo", fit_intercept=False)
    for o, (tr, te) in enumerate(outer.split(X)):
        ref = RidgeCV(ALPHAS, alpha_per_target=True, fit_intercept=False).fit(X[tr], Y[tr])
        np.testing.assert_array_equal(res.alphas[o], ref.alpha_)
        np.testing.assert_allclose(res.predictions[te], ref.predict(X[te]), atol=1e-6)


@pytest.mark.parametrize("model, reference", [
    ("glm", LinearRegression()),
    ("lasso", Lasso(alpha=0.1)),
    ("pls", PLSRegression(n_components=3)),
])
def test_other_models_equal_cross_val_predict(planted, model, reference):
    X, Y = planted
    folds = KFold(5, shuffle=True, random_state=2)
    params = {"lasso": {"alpha": 0.1}, "pls": {"n_components": 3}}.get(model)
    res = encode(X, Y, model=model, cv=folds, model_params=params)
    ref = cross_val_predict(reference, X, Y, cv=folds)
    np.testing.assert_allclose(res.predictions, ref, atol=1e-8)


def test_any_sklearn_pipeline_is_cloned_per_fold(planted):
    X, Y = planted
    folds = KFold(4, shuffle=True, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=3.0))])
    res = encode(X, Y, model=pipe, cv=folds)
    np.testing.assert_allclose(res.predictions, cross_val_predict(pipe, X, Y, cv=folds))
    assert res.model == "Pipeline" and \
        not hasattr(pipe[-1], "coef_")          # the user's object was not fitted


def test_pca_is_fitted_inside_each_fold(planted):
    X, Y = planted
    folds = KFold(4, shuffle=True, random_state=0)
    res = encode(X, Y, model="glm", cv=folds, reduce=3)
    manual = cross_val_predict(Pipeline([("pca", PCA(3)), ("ols", LinearRegression())]), X, Y,
                               cv=folds)
    np.testing.assert_allclose(res.predictions, manual, atol=1e-8)
    leaky = encode(PCA(3).fit_transform(X), Y, model="glm", cv=folds)
    assert not np.allclose(res.predictions, leaky.predictions, atol=1e-3)


def test_pca_in_fold_with_ridge_refits_pca_in_inner_folds(planted):
    X, Y = planted
    outer, inner = KFold(3, shuffle=True, random_state=0), KFold(3)
    res = encode(X, Y[:, :2], alphas=ALPHAS, cv=outer, inner_cv=inner, reduce=PCA(4))
    for o, (tr, te) in enumerate(outer.split(X)):
        for j in range(2):
            pipe = Pipeline([("pca", PCA(4)), ("ridge", Ridge())])
            gs = GridSearchCV(pipe, {"ridge__alpha": ALPHAS}, cv=inner,
                              scoring="neg_mean_squared_error").fit(X[tr], Y[tr, j])
            assert res.alphas[o, j] == gs.best_params_["ridge__alpha"]
            np.testing.assert_allclose(res.predictions[te, j], gs.predict(X[te]), atol=1e-6)


def test_grouped_cv_never_splits_a_group(rng):
    X = rng.standard_normal((70, 5))
    Y = rng.standard_normal((70, 3))
    groups = np.repeat(np.arange(7), [6, 8, 10, 12, 9, 11, 14])
    res = encode(X, Y, alphas=ALPHAS, cv=4, groups=groups, inner_cv=3, seed=0)
    for g in np.unique(groups):
        assert len(np.unique(res.folds[groups == g])) == 1
    outer = cvmod.make_splits(4, n_samples=70, groups=groups)
    ref = list(GroupKFold(4).split(X, groups=groups))
    for (tr, te), (rtr, rte) in zip(outer, ref):
        np.testing.assert_array_equal(te, np.sort(rte))
    for (tr, te), folds in zip(outer, _inner_splits(3, outer, groups, np.random.default_rng(0))):
        for a, b in folds:
            assert np.isin(a, tr).all() and np.isin(b, tr).all()
            assert not np.intersect1d(groups[a], groups[b]).size
    with pytest.raises(InputError, match="splits group"), \
            pytest.warns(UserWarning, match="ignored"):
        cvmod.make_splits(KFold(4), n_samples=70, groups=groups)
    with pytest.raises(InputError, match="at least 8 groups"):
        encode(X, Y, cv=8, groups=groups)


def test_permutation_p_small_only_where_planted(planted, rng):
    X, Y = planted
    Y = np.column_stack([Y[:, :2], rng.standard_normal((60, 38))])   # 38 noise voxels
    res = encode(X, Y, alphas=ALPHAS, cv=4, inner_cv=3, n_perm=49, seed=0)
    assert np.all(res.p[:2] == 1 / 50) and np.all(res.p_fwer[:2] == 1 / 50)
    # noise voxels: roughly uniform p (a few below 0.05 by chance), none after correction
    assert np.mean(res.p[2:] < 0.05) <= 0.15 and 0.3 < np.median(res.p[2:]) < 0.7
    assert np.all(res.p_fwer[2:] > 0.05)
    assert np.all(res.p_fwer >= res.p)
    assert np.all(res.r[:2] > 0.6) and np.all(np.abs(res.r[2:]) < 0.45)
    assert res.null_max.shape == (49,)
    again = encode(X, Y, alphas=ALPHAS, cv=4, inner_cv=3, n_perm=49, seed=0)
    for name in ("predictions", "p", "p_fwer", "null_max", "alphas", "folds"):
        np.testing.assert_array_equal(getattr(res, name), getattr(again, name))
    other = encode(X, Y, alphas=ALPHAS, cv=4, inner_cv=3, seed=1)
    assert not np.array_equal(other.folds, res.folds)


def test_permutation_counts_against_a_slow_loop(planted):
    X, Y = planted
    res = encode(X, Y, model="glm", cv=3, n_perm=9, perm_score="r2", seed=5)
    # redo it by hand: same folds and permutations drawn from the same seed
    rng = np.random.default_rng(5)
    folds = cvmod.make_splits(3, n_samples=60, seed=rng)
    perms = cvmod.permutation_indices(60, 9, seed=rng)
    observed = r2_score(Y, cross_val_predict(LinearRegression(), X, Y, cv=folds),
                        multioutput="raw_values")
    null = np.array([r2_score(Y[p], cross_val_predict(LinearRegression(), X, Y[p], cv=folds),
                              multioutput="raw_values") for p in perms])
    np.testing.assert_allclose(res.r2, observed)
    np.testing.assert_allclose(res.p, (1 + (null >= observed).sum(0)) / 10)
    np.testing.assert_allclose(res.p_fwer, (1 + (null.max(1)[:, None] >= observed).sum(0)) / 10)


def test_permutations_stay_within_groups(rng):
    groups = rng.integers(0, 4, 30)
    perms = cvmod.permutation_indices(30, 20, groups=groups, seed=0)
    for perm in perms:
        np.testing.assert_array_equal(np.sort(perm), np.arange(30))
        np.testing.assert_array_equal(groups[perm], groups)
    assert len({tuple(p) for p in perms}) == 20


def test_univariate_picks_best_training_unit(rng):
    X = rng.standard_normal((50, 6))
    Y = np.column_stack([X[:, 4], -X[:, 1], X[:, 2]]) + 0.3 * rng.standard_normal((50, 3))
    folds = KFold(5, shuffle=True, random_state=0)
    res = encode(X, Y, model="glm", analysis="uv", cv=folds)
    np.testing.assert_array_equal(res.best_unit, [4, 1, 2])
    assert np.all(res.units == [4, 1, 2])
    # slow reference: per voxel and fold, argmax |corr| on training rows, then OLS
    ref = np.empty_like(Y)
    Yn = Y.copy()
    Yn[:, 2] = rng.standard_normal(50)            # a noise voxel exercises the selection
    noisy = encode(X, Yn, model="glm", analysis="uv", cv=folds)
    for o, (tr, te) in enumerate(folds.split(X)):
        for j in range(3):
            corr = [abs(np.corrcoef(X[tr, u], Yn[tr, j])[0, 1]) for u in range(6)]
            u = int(np.argmax(corr))
            assert noisy.units[o, j] == u
            ref[te, j] = LinearRegression().fit(X[tr][:, [u]], Yn[tr, j]).predict(X[te][:, [u]])
    np.testing.assert_allclose(noisy.predictions, ref, atol=1e-10)


def test_float32_input_stays_float32(planted):
    X, Y = planted
    res64 = encode(X, Y, alphas=ALPHAS, seed=0)
    res32 = encode(X.astype(np.float32), Y.astype(np.float32), alphas=ALPHAS, seed=0)
    assert res32.predictions.dtype == np.float32
    np.testing.assert_allclose(res32.r, res64.r, atol=1e-3)


@parametrize_with_checks([VoxelwiseRidgeCV(alphas=(0.1, 1.0, 10.0), cv=3), LeastSquares()])
def test_scikit_learn_estimator_contract(estimator, check):
    check(estimator)


def test_voxelwise_ridgecv_estimator(planted):
    X, Y = planted
    est = VoxelwiseRidgeCV(ALPHAS, cv="loo").fit(X, Y)
    ref = RidgeCV(ALPHAS, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(est.alphas_, ref.alpha_)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), atol=1e-8)
    est = clone(VoxelwiseRidgeCV(ALPHAS, cv=3)).fit(X, Y[:, 1])
    gs = GridSearchCV(Ridge(), {"alpha": ALPHAS}, cv=KFold(3),
                      scoring="neg_mean_squared_error").fit(X, Y[:, 1])
    assert est.alphas_ == gs.best_params_["alpha"] and est.coef_.shape == (8,)
    np.testing.assert_allclose(est.predict(X), gs.predict(X), atol=1e-8)
    ols = LeastSquares().fit(X, Y)
    np.testing.assert_allclose(ols.predict(X), LinearRegression().fit(X, Y).predict(X))


@pytest.mark.parametrize("model, kwargs", [
    ("ridge", dict(alphas=ALPHAS, inner_cv=3)),
    ("glm", {}),
    ("pls", dict(model_params={"n_components": 2})),
    ("lasso", dict(reduce=PCA(4), model_params={"alpha": 0.05})),
])
def test_model_file_round_trip(planted, tmp_path, model, kwargs):
    X, Y = planted
    est = make_encoder(model, **kwargs).fit(X, Y)
    path = tmp_path / "enc.npz"
    save_model(path, est)
    with np.load(path, allow_pickle=False) as data:      # plain arrays only
        assert data["coef"].shape == (5, 8)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(X), est.predict(X), atol=1e-8)
    if model == "ridge":
        np.testing.assert_array_equal(loaded.alphas_, est.alphas_)
        np.testing.assert_allclose(loaded.x_mean_, X.mean(0))
    with pytest.raises(OutputExistsError):
        save_model(path, est)
    save_model(path, est, force=True)


def test_model_file_errors(tmp_path, planted):
    X, Y = planted
    bad = tmp_path / "bad.npz"
    np.savez(bad, coef=np.zeros((2, 2)))
    with pytest.raises(FileFormatError, match="not a dnnsparse encoder"):
        load_model(bad)
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(FileFormatError):
        load_model(tmp_path / "junk.npz")
    from sklearn.ensemble import RandomForestRegressor
    forest = RandomForestRegressor(n_estimators=2, random_state=0).fit(X, Y)
    with pytest.raises(InputError, match="RandomForestRegressor"):
        save_model(tmp_path / "f.npz", forest)


def test_bad_input_messages(planted):
    X, Y = planted
    with pytest.raises(InputError, match="Inconsistent numbers of samples"):
        encode(X[:-1], Y)
    with pytest.raises(InputError, match="analysis='uv'"):
        encode(X, Y, analysis="uv")
    with pytest.raises(InputError, match="Unknown analysis"):
        encode(X, Y, analysis="both")
    with pytest.raises(InputError, match="alphas must be positive"):
        encode(X, Y, alphas=[0.0, 1.0])
    with pytest.raises(InputError, match="inner_cv='loo'"):
        encode(X, Y, groups=np.repeat(np.arange(6), 10), inner_cv="loo")
    with pytest.raises(InputError, match="exactly once"):
        encode(X, Y, model="glm", cv=[(np.arange(30), np.arange(30, 50))])
    with pytest.raises(InputError, match="Unknown model"):
        make_encoder("svm")

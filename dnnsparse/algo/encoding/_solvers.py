"""Ridge solvers: one decomposition per training set, all alphas and all targets at once.

For centred training features ``Xc`` (n_train x n_features) and targets ``Yc`` the ridge
weights for penalty ``alpha`` are ``W = (Xc'Xc + alpha I)^-1 Xc'Yc``.  One symmetric
eigendecomposition of the smaller Gram matrix serves every alpha:

- primal (n_features <= n_train): ``Xc'Xc = V diag(lam) V'``, ``M = V``, ``R = (Xc V)'``;
- dual (n_features > n_train): ``Xc Xc' = Q diag(lam) Q'``, ``M = Xc'Q``, ``R = Q'``;

and in both cases ``W(alpha) = M diag(1 / (lam + alpha)) R Yc``.  Predictions on test
rows are ``L diag(1 / (lam + alpha)) R Yc`` with ``L = (X_test - x_mean) M``; they are
formed either through the stacked hat matrices ``H(alpha) = L diag(.) R`` (one matrix
product for all alphas and a batch of targets) or through ``B = R Yc``, whichever needs
fewer flops.  Decompositions are float64; the big products run in the targets' dtype
(float32 stays float32) and scores are accumulated in float64.

Every function also takes torch tensors (or any array-API array) as targets: the
namespace of ``Y`` is asked for (:mod:`dnnsparse.utils.xp`), features are moved to the
targets' device and the same decomposition and products run there (``torch.linalg.eigh``
on a GPU); NumPy arrays keep the NumPy/SciPy path.  Row indices and chosen alphas stay
NumPy arrays on the host.
"""
import numpy as np
import scipy.linalg

from ...errors import InputError
from ...utils.xp import get_namespace, is_numpy, to_namespace, to_numpy

__all__ = [
    "RidgeDecomposition",
    "FoldOperator",
    "INNER_SCORES",
    "kfold_alpha_scores",
    "loo_alpha_scores",
    "select_alphas",
    "solve_ridge",
    "auto_batch",
    "OperatorCache",
    "ridge_nested_cv",
]

# Default memory budget (bytes) for the (n_alphas, n_rows, batch) prediction block.
_BATCH_BYTES = 1 << 28


def auto_batch(n_targets, n_alphas, n_rows, itemsize, n_targets_batch=None):
    """Number of targets per batch: ``n_targets_batch`` or as many as fit the budget."""
    if n_targets_batch is not None:
        if int(n_targets_batch) < 1:
            raise InputError(f"n_targets_batch must be >= 1; got {n_targets_batch}.")
        return int(n_targets_batch)
    per_target = max(1, n_alphas * n_rows * max(itemsize, 8))
    return int(max(1, min(n_targets, _BATCH_BYTES // per_target)))


def _namespace(a):
    """``numpy`` itself for NumPy arrays, else the array's array-API namespace."""
    return np if is_numpy(a) else get_namespace(a)


def _astype(a, dtype):
    """``a`` in ``dtype``, without a copy when it already is."""
    if isinstance(a, np.ndarray):
        return a.astype(dtype, copy=False)
    return a if a.dtype == dtype else get_namespace(a).astype(a, dtype)


def _itemsize(dtype):
    return np.dtype(dtype).itemsize if isinstance(dtype, (np.dtype, type)) else dtype.itemsize


def _two_columns(Yc):
    """``(Yc, single)``: a lone target column doubled, so that every product with it is a
    matrix product (GEMM).  A single column would go through GEMV, which rounds
    differently: a target's prediction would then depend on how many targets share its
    voxel batch and alpha (byte-identical tables for any ``voxel_batch``)."""
    if isinstance(Yc, np.ndarray) and Yc.ndim == 2 and Yc.shape[1] == 1:
        return np.concatenate([Yc, Yc], axis=1), True
    return Yc, False


def _on(index, like):
    """Host integer ``index`` (NumPy) as an index of array ``like`` (its device)."""
    if isinstance(like, np.ndarray) or isinstance(index, slice):
        return index
    return to_namespace(np.asarray(index, dtype=np.int64), like, dtype=get_namespace(like).int64)


class RidgeDecomposition:
    """Eigendecomposition of one training set's centred features, shared by all alphas.

    Parameters
    ----------
    X : ndarray of shape (n_train, n_features)
    fit_intercept : bool, default=True
        Centre ``X`` on its (training) column means.
    method : {"eigh", "svd"}, default="eigh"
        ``"eigh"`` decomposes the smaller Gram matrix (fast; right for ridge with
        alpha > 0); ``"svd"`` takes a thin SVD of ``Xc`` (accurate small singular
        values, used for ordinary least squares, alpha = 0).

    Attributes
    ----------
    x_mean : ndarray of shape (n_features,)
    lam : ndarray of shape (k,)
        Non-negligible eigenvalues of ``Xc'Xc`` (squared singular values).
    M : ndarray of shape (n_features, k)
    R : ndarray of shape (k, n_train)
    """

    def __init__(self, X, *, fit_intercept=True, method="eigh", like=None):
        like = X if like is None else like
        if not is_numpy(like):
            self._init_xp(X, like, fit_intercept, method)
            return
        X = np.asarray(X, dtype=np.float64)
        n, p = X.shape
        self.n_train, self.n_features = n, p
        self.x_mean = X.mean(0) if fit_intercept else np.zeros(p)
        Xc = X - self.x_mean if fit_intercept else X
        eps = np.finfo(np.float64).eps
        if method == "svd":
            U, s, Vt = scipy.linalg.svd(Xc, full_matrices=False, lapack_driver="gesdd")
            keep = s > (s[0] if s.size else 0) * max(n, p) * eps
            s, U, V = s[keep], U[:, keep], Vt[keep].T
            self.lam = s ** 2
            self.M = V
            self.R = (U * s).T                      # (Xc V)' = S U'
        elif method == "eigh":
            primal = p <= n
            G = Xc.T @ Xc if primal else Xc @ Xc.T
            lam, vec = scipy.linalg.eigh(G, overwrite_a=True, check_finite=False,
                                         driver="evd")
            # eigenvalues at rounding level belong to the null space (e.g. the
            # direction removed by centring); dropping them changes nothing for
            # alpha > 0 and saves work.
            keep = lam > (lam[-1] if lam.size else 0) * max(n, p) * eps
            lam, vec = lam[keep], vec[:, keep]
            self.lam = lam
            if primal:
                self.M = vec
                self.R = (Xc @ vec).T
            else:
                self.M = Xc.T @ vec
                self.R = vec.T
        else:
            raise InputError(f"Unknown method={method!r}; choose from ['eigh', 'svd'].")
        self.rank = self.lam.size
        self._Xc = Xc

    def _init_xp(self, X, like, fit_intercept, method):
        # The same decomposition with the array-API namespace of ``like`` (torch on
        # its device): float64 eigh of the smaller Gram matrix, or a thin SVD.
        xp = get_namespace(like)
        X = to_namespace(X, like, dtype=xp.float64)
        n, p = X.shape
        self.n_train, self.n_features = n, p
        self.x_mean = (xp.mean(X, axis=0) if fit_intercept
                       else xp.zeros(p, dtype=xp.float64, device=X.device))
        Xc = X - self.x_mean if fit_intercept else X
        eps = float(xp.finfo(xp.float64).eps)
        if method == "svd":
            U, s, Vt = xp.linalg.svd(Xc, full_matrices=False)
            keep = s > (float(s[0]) if s.shape[0] else 0.0) * max(n, p) * eps
            s, U, V = s[keep], U[:, keep], Vt[keep, :].T
            self.lam, self.M, self.R = s ** 2, V, (U * s).T
        elif method == "eigh":
            primal = p <= n
            G = Xc.T @ Xc if primal else Xc @ Xc.T
            lam, vec = xp.linalg.eigh(G)
            keep = lam > (float(lam[-1]) if lam.shape[0] else 0.0) * max(n, p) * eps
            lam, vec = lam[keep], vec[:, keep]
            self.lam = lam
            self.M, self.R = (vec, (Xc @ vec).T) if primal else (Xc.T @ vec, vec.T)
        else:
            raise InputError(f"Unknown method={method!r}; choose from ['eigh', 'svd'].")
        self.rank = int(self.lam.shape[0])
        self._Xc = Xc

    @property
    def nbytes(self):
        return self.M.nbytes + self.R.nbytes + self._Xc.nbytes

    def design(self, X_test):
        """``L = (X_test - x_mean) M`` of shape (n_test, k)."""
        if isinstance(self.M, np.ndarray):
            return (np.asarray(X_test, dtype=np.float64) - self.x_mean) @ self.M
        return (to_namespace(X_test, self.M) - self.x_mean) @ self.M

    def filters(self, alphas):
        """``1 / (lam + alpha)`` for each alpha, shape (n_alphas, k)."""
        alphas = np.asarray(to_numpy(alphas), dtype=np.float64).reshape(-1)
        if not isinstance(self.lam, np.ndarray):
            alphas = to_namespace(alphas, self.lam)
        return 1.0 / (self.lam[None, :] + alphas[:, None])

    def loo_leverage(self, alphas, fit_intercept=True):
        """Diagonal of the hat matrix for each alpha, shape (n_alphas, n_train)."""
        L = self._Xc @ self.M                        # (n_train, k)
        lev = self.filters(alphas) @ (L * self.R.T).T
        return lev + (1.0 / self.n_train if fit_intercept else 0.0)


class FoldOperator:
    """Maps centred training targets to test predictions for a grid of alphas.

    Parameters
    ----------
    dec : RidgeDecomposition
        Decomposition of the training features.
    X_test : ndarray of shape (n_test, n_features)
    alphas : array-like of shape (n_alphas,)
    dtype : numpy dtype
        dtype of the large matrix products (the targets' dtype).
    """

    def __init__(self, dec, X_test, alphas, dtype=np.float64):
        self.dtype = np.dtype(dtype) if isinstance(dec.M, np.ndarray) else dtype
        L = dec.design(X_test)                               # (n_test, k)
        self.f = dec.filters(alphas)                         # (n_alphas, k)
        self.n_alphas, self.k = self.f.shape
        self.n_test, self.n_train = L.shape[0], dec.R.shape[1]
        self.Lf = L[None, :, :] * self.f[:, None, :]         # (n_alphas, n_test, k)
        self.R = dec.R
        self._hat = {}
        # flops per target: stacked hat matrices vs. going through B = R Yc
        self.hat_all = (self.n_alphas * self.n_test * self.n_train
                        <= self.k * self.n_train + self.n_alphas * self.n_test * self.k)
        self.hat_one = self.n_test * self.n_train <= self.k * (self.n_train + self.n_test)
        if self.hat_all:
            H = self.Lf.reshape(-1, self.k) @ self.R         # (n_alphas * n_test, n_train)
            self.H = _astype(H, self.dtype)
        self.Rd = _astype(self.R, self.dtype)

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self.Lf, self.R, getattr(self, "H", self.R)))

    def predict_all(self, Yc):
        """Predictions for every alpha: (n_train, b) -> (n_alphas, n_test, b)."""
        Yc = _astype(Yc if not isinstance(self.R, np.ndarray) else np.asarray(Yc), self.dtype)
        Yc, single = _two_columns(Yc)
        if self.hat_all:
            P = self.H @ Yc
        else:
            B = self.Rd @ Yc                                 # (k, b)
            P = _astype(self.Lf.reshape(-1, self.k), self.dtype) @ B
        P = P.reshape(self.n_alphas, self.n_test, -1)
        return P[:, :, :1] if single else P

    def predict_one(self, index, Yc):
        """Predictions for alpha number ``index``: (n_train, b) -> (n_test, b)."""
        Yc = _astype(Yc if not isinstance(self.R, np.ndarray) else np.asarray(Yc), self.dtype)
        Yc, single = _two_columns(Yc)
        if self.hat_one:
            if index not in self._hat:
                if self.hat_all:
                    self._hat[index] = self.H[index * self.n_test:(index + 1) * self.n_test]
                else:
                    self._hat[index] = _astype(self.Lf[index] @ self.R, self.dtype)
            P = self._hat[index] @ Yc
        else:
            P = _astype(self.Lf[index], self.dtype) @ (self.Rd @ Yc)
        return P[:, :1] if single else P


def _sum_squares(err, rows=32):
    """Sum of squares over axis 1 of (n_alphas, n_test, b), accumulated in float64.

    float32 input is summed in float32 over blocks of ``rows`` test rows and the block
    sums are added in float64 (2-3x faster than casting every element).
    """
    if not isinstance(err, np.ndarray):
        xp = get_namespace(err)
        err = _astype(err, xp.float64)
        return xp.sum(err * err, axis=1)
    if err.dtype == np.float64:
        return np.einsum("aij,aij->aj", err, err)
    out = np.zeros((err.shape[0], err.shape[2]))
    for start in range(0, err.shape[1], rows):
        block = err[:, start:start + rows]
        out += np.einsum("aij,aij->aj", block, block)
    return out


def _neg_mse(err, y_test_c):
    """Negative mean squared error per alpha and target, from (n_alphas, n_test, b)."""
    return -_sum_squares(err) / err.shape[1]


def _r2(err, y_test_c):
    sse = _sum_squares(err)
    if not isinstance(err, np.ndarray):
        xp = get_namespace(err)
        yt = _astype(y_test_c, xp.float64)
        yt = yt - xp.mean(yt, axis=0)
        sst = xp.sum(yt * yt, axis=0)
        score = 1.0 - sse / sst
        # scikit-learn's r2_score for a constant test target: 1 if perfect, else 0
        return xp.where(sst == 0, xp.where(sse == 0, 1.0, 0.0), score)
    yt = y_test_c.astype(np.float64)
    yt = yt - yt.mean(0)
    sst = np.einsum("ij,ij->j", yt, yt)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - sse / sst
    # scikit-learn's r2_score for a constant test target: 1 if perfect, else 0
    const = sst == 0
    score[:, const] = np.where(sse[:, const] == 0, 1.0, 0.0)
    return score


#: Inner-CV scores: ``neg_mean_squared_error`` is scikit-learn's scorer of that name
#: (and himalaya's ``l2_neg_loss``); ``r2`` is scikit-learn's ``"r2"`` (Ridge.score).
INNER_SCORES = {"neg_mean_squared_error": _neg_mse, "r2": _r2}


def _check_scoring(scoring):
    if scoring not in INNER_SCORES:
        raise InputError(f"Unknown inner scoring={scoring!r}; choose from "
                         f"{sorted(INNER_SCORES)}.")
    return INNER_SCORES[scoring]


def _take(Y, rows, cols, dtype):
    """A private copy of ``Y[rows, cols]`` in ``dtype`` (safe to modify in place)."""
    if not isinstance(Y, np.ndarray):
        block = Y[_on(rows, Y)][:, cols]          # advanced indexing copies
        return _astype(block, dtype)
    block = Y[rows, cols]
    if block.dtype != dtype or np.shares_memory(block, Y):
        block = block.astype(dtype)
    return block


def _centred_block(Y, rows, cols, fit_intercept, dtype):
    """Rows ``rows`` and columns ``cols`` of Y (a copy), centred on their float64 mean."""
    Yb = _take(Y, rows, cols, dtype)
    if not isinstance(Yb, np.ndarray):
        xp = get_namespace(Yb)
        if fit_intercept:
            mean = xp.mean(_astype(Yb, xp.float64), axis=0)
            Yb -= _astype(mean, dtype)
            return Yb, mean
        return Yb, xp.zeros(Yb.shape[1], dtype=xp.float64, device=Yb.device)
    if fit_intercept:
        mean = Yb.mean(0, dtype=np.float64)
        Yb -= mean.astype(dtype)                # in place: no float64 temporary
        return Yb, mean
    return Yb, np.zeros(Yb.shape[1])


def _shifted(Y, rows, cols, mean, dtype):
    """``Y[rows, cols] - mean`` in ``dtype``, without a float64 temporary."""
    out = _take(Y, rows, cols, dtype)
    out -= _astype(mean, dtype)
    return out


def _zeros_like_ns(Y, shape):
    """float64 zeros in the namespace and on the device of ``Y``."""
    if isinstance(Y, np.ndarray):
        return np.zeros(shape)
    xp = get_namespace(Y)
    return xp.zeros(shape, dtype=xp.float64, device=Y.device)


def kfold_alpha_scores(make_operator, folds, Y, *, rows=None, fit_intercept=True,
                       scoring="neg_mean_squared_error", n_targets_batch=None):
    """Mean inner-CV score of every alpha for every target (k-fold).

    Parameters
    ----------
    make_operator : callable
        ``make_operator(i, train, test)`` returns the :class:`FoldOperator` of inner
        fold ``i`` (built from the fold's training and test features, or cached).
    folds : list of (train, test)
        Row indices (into ``Y``, before ``rows``) of each inner fold.
    Y : ndarray of shape (n_samples, n_targets)
    rows : ndarray of shape (n_samples,), optional
        Row permutation of ``Y`` (``Y[rows]`` is used), for permutation tests.
    fit_intercept : bool
    scoring : {"neg_mean_squared_error", "r2"}
        Per-fold score; scores are averaged over folds with equal weights, as in
        ``GridSearchCV``.
    n_targets_batch : int, optional

    Returns
    -------
    ndarray of shape (n_alphas, n_targets)
    """
    score = _check_scoring(scoring)
    n_targets = Y.shape[1]
    dtype = Y.dtype
    scores = None
    for i, (tr, te) in enumerate(folds):
        op = make_operator(i, tr, te)
        if scores is None:
            scores = _zeros_like_ns(Y, (op.n_alphas, n_targets))
        tr_rows = tr if rows is None else rows[tr]
        te_rows = te if rows is None else rows[te]
        batch = auto_batch(n_targets, op.n_alphas, len(te), _itemsize(dtype), n_targets_batch)
        for start in range(0, n_targets, batch):
            b = slice(start, min(start + batch, n_targets))
            Yc, mean = _centred_block(Y, tr_rows, b, fit_intercept, dtype)
            yte = _shifted(Y, te_rows, b, mean, dtype)
            err = op.predict_all(Yc)
            if isinstance(err, np.ndarray):
                np.subtract(yte[None], err, out=err)
            else:
                err = yte[None] - err
            scores[:, b] += score(err, yte)
    return scores / len(folds)


def loo_alpha_scores(dec, Y, alphas, *, rows=None, fit_intercept=True, n_targets_batch=None):
    """Negative mean squared leave-one-out error of every alpha for every target.

    Uses the exact identity ``e_i = (y_i - yhat_i) / (1 - h_ii)`` for ridge (with an
    unpenalised intercept when ``fit_intercept``), so one decomposition gives all
    leave-one-out errors.  Equals the selection criterion of scikit-learn's
    ``RidgeCV(alphas, cv=None, alpha_per_target=True)`` (efficient LOO / GCV).

    Parameters
    ----------
    dec : RidgeDecomposition
        Decomposition of the training features.
    Y : ndarray of shape (n_samples, n_targets)
        Training targets are ``Y[rows]`` (``rows`` defaults to all rows).

    Returns
    -------
    ndarray of shape (n_alphas, n_targets)
    """
    n_targets = Y.shape[1]
    rows = np.arange(Y.shape[0]) if rows is None else rows
    dtype = Y.dtype
    f = dec.filters(alphas)
    L = dec._Xc @ dec.M                                        # (n_train, k)
    Lf = _astype((L[None] * f[:, None, :]).reshape(-1, dec.rank), dtype)
    denom = 1.0 - dec.loo_leverage(alphas, fit_intercept)      # (n_alphas, n_train)
    Rd = _astype(dec.R, dtype)
    scores = _zeros_like_ns(Y, (len(alphas), n_targets))
    batch = auto_batch(n_targets, len(alphas), dec.n_train, _itemsize(dtype), n_targets_batch)
    for start in range(0, n_targets, batch):
        b = slice(start, min(start + batch, n_targets))
        Yc, _ = _centred_block(Y, rows, b, fit_intercept, dtype)
        Y2, single = _two_columns(Yc)
        fitted = (Lf @ (Rd @ Y2)).reshape(len(alphas), dec.n_train, -1)
        if single:
            fitted = np.ascontiguousarray(fitted[:, :, :1])
        if isinstance(fitted, np.ndarray):
            np.subtract(Yc[None], fitted, out=fitted)          # residuals
        else:
            fitted = Yc[None] - fitted
        err = fitted / _astype(denom[:, :, None], dtype)
        scores[:, b] = _neg_mse(err, None)
    return scores


def select_alphas(scores):
    """Index of the best alpha per target (the first one among exact ties, as
    ``GridSearchCV`` and ``RidgeCV`` do).  ``scores``: (n_alphas, n_targets).
    Always a NumPy array (on the host), also for torch scores."""
    if not isinstance(scores, np.ndarray):
        return to_numpy(get_namespace(scores).argmax(scores, axis=0)).astype(np.intp)
    return np.argmax(scores, axis=0)


def solve_ridge(X, Y, alphas, *, fit_intercept=True, method="eigh", n_targets_batch=None):
    """Ridge weights with one penalty per target, from one decomposition.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_targets)
    alphas : float or ndarray of shape (n_targets,)
        Penalty of each target; 0 with ``method="svd"`` gives minimum-norm least squares.
    fit_intercept : bool, default=True
    method : {"eigh", "svd"}, default="eigh"
    n_targets_batch : int, optional

    Returns
    -------
    coef : ndarray of shape (n_features, n_targets)
    intercept : ndarray of shape (n_targets,)
    x_mean : ndarray of shape (n_features,)

    Examples
    --------
    >>> X = np.eye(3); Y = np.arange(3.0)[:, None]
    >>> solve_ridge(X, Y, 0.0, fit_intercept=False, method="svd")[0].ravel().tolist()
    [0.0, 1.0, 2.0]
    """
    n_targets = Y.shape[1]
    alphas = np.broadcast_to(np.asarray(to_numpy(alphas), dtype=np.float64), (n_targets,))
    dec = RidgeDecomposition(X, fit_intercept=fit_intercept, method=method, like=Y)
    xp = _namespace(Y)
    if xp is np:
        dtype = Y.dtype if Y.dtype in (np.float32, np.float64) else np.float64
        coef = np.empty((X.shape[1], n_targets), dtype=dtype)
        intercept = np.empty(n_targets)
    else:
        dtype = Y.dtype if Y.dtype in (xp.float32, xp.float64) else xp.float64
        coef = xp.empty((X.shape[1], n_targets), dtype=dtype, device=Y.device)
        intercept = xp.empty(n_targets, dtype=xp.float64, device=Y.device)
    rows = np.arange(Y.shape[0])
    uniq, which = np.unique(alphas, return_inverse=True)
    batch = auto_batch(n_targets, 1, X.shape[1], _itemsize(dtype), n_targets_batch)
    for start in range(0, n_targets, batch):
        b = slice(start, min(start + batch, n_targets))
        Yc, mean = _centred_block(Y, rows, b, fit_intercept, dtype)
        B = dec.R @ _astype(Yc, dec.R.dtype)                   # (k, b)
        with np.errstate(divide="ignore"):
            f = xp.where(dec.lam[None] > 0, dec.filters(uniq), 0.0)
        W = dec.M @ (B * f[_on(which[b], f)].T)                # (n_features, b)
        coef[:, b] = _astype(W, dtype)
        intercept[b] = mean - dec.x_mean @ W
    return coef, intercept, dec.x_mean


class OperatorCache:
    """Keeps fold decompositions for reuse (permutations) up to ``max_bytes``.

    ``cache(key, build)`` returns the stored object or builds it; it is stored when it
    still fits in the budget, so memory stays bounded and large problems simply
    recompute.  ``max_bytes=0`` disables caching.
    """

    def __init__(self, max_bytes=1 << 30):
        self.max_bytes = max_bytes
        self.used = 0
        self._store = {}

    def __call__(self, key, build):
        if key in self._store:
            return self._store[key]
        obj = build()
        size = sum(getattr(o, "nbytes", 0) for o in (obj if isinstance(obj, tuple) else (obj,)))
        if self.used + size <= self.max_bytes:
            self._store[key] = obj
            self.used += size
        return obj


def _no_cache(key, build):
    return build()


def ridge_nested_cv(fold_features, Y, alphas, outer, inner, *, rows=None, fit_intercept=True,
                    scoring="neg_mean_squared_error", method="eigh", n_targets_batch=None,
                    cache=None, step=None):
    """Held-out ridge predictions with the penalty chosen per target inside each fold.

    Parameters
    ----------
    fold_features : callable
        ``fold_features(train, test) -> (X_train, X_test)``: the features of a fold
        (a reduction such as PCA is fitted here on ``train`` only).
    Y : ndarray of shape (n_samples, n_targets)
    alphas : ndarray of shape (n_alphas,)
    outer : list of (train, test)
        Outer folds; their test sets must partition the samples.
    inner : list of list of (train, test), "loo" or None
        Inner folds of each outer fold (indices into ``Y``), ``"loo"`` for efficient
        leave-one-out, or None when there is a single alpha (nothing to select).
    rows : ndarray of shape (n_samples,), optional
        Use ``Y[rows]`` as targets (permutation tests) without copying Y.
    fit_intercept : bool, default=True
    scoring : {"neg_mean_squared_error", "r2"}
        Inner k-fold score (LOO always uses squared error).
    method : {"eigh", "svd"}
        Decomposition of the outer training sets (``"svd"`` for least squares).
    n_targets_batch : int, optional
    cache : callable, optional
        An :class:`OperatorCache`, to reuse decompositions across calls.
    step : callable, optional
        Called after each outer fold (progress bars).

    Returns
    -------
    predictions : ndarray of shape (n_samples, n_targets)
    best : ndarray of shape (n_outer, n_targets)
        Index into ``alphas`` chosen for each target in each outer fold.
    """
    get = cache or _no_cache
    n, n_targets = Y.shape
    dtype = Y.dtype
    alphas = np.asarray(alphas, dtype=np.float64)
    pred = (np.empty((n, n_targets), dtype=dtype) if isinstance(Y, np.ndarray)
            else get_namespace(Y).empty((n, n_targets), dtype=dtype, device=Y.device))
    best = np.zeros((len(outer), n_targets), dtype=np.intp)
    take = (lambda idx: idx) if rows is None else (lambda idx: rows[idx])

    for o, (tr, te) in enumerate(outer):
        def build_outer(tr=tr, te=te):
            Xtr, Xte = fold_features(tr, te)
            dec = RidgeDecomposition(Xtr, fit_intercept=fit_intercept, method=method, like=Y)
            return dec, FoldOperator(dec, Xte, alphas, dtype)
        dec, op = get(("outer", o), build_outer)

        if inner == "loo":
            scores = loo_alpha_scores(dec, Y, alphas, rows=take(tr), fit_intercept=fit_intercept,
                                      n_targets_batch=n_targets_batch)
            best[o] = select_alphas(scores)
        elif inner is not None:
            def make_operator(i, a, b, o=o):
                def build():
                    Xa, Xb = fold_features(a, b)
                    return FoldOperator(RidgeDecomposition(Xa, fit_intercept=fit_intercept,
                                                           like=Y),
                                        Xb, alphas, dtype)
                return get(("inner", o, i), build)
            scores = kfold_alpha_scores(make_operator, inner[o], Y, rows=rows,
                                        fit_intercept=fit_intercept, scoring=scoring,
                                        n_targets_batch=n_targets_batch)
            best[o] = select_alphas(scores)
        elif len(alphas) != 1:
            raise InputError("several alphas need an inner CV to choose among them.")

        batch = auto_batch(n_targets, 1, len(te), _itemsize(dtype), n_targets_batch)
        for start in range(0, n_targets, batch):
            b = np.arange(start, min(start + batch, n_targets))
            Yc, mean = _centred_block(Y, take(tr), slice(b[0], b[-1] + 1), fit_intercept, dtype)
            for a in np.unique(best[o, b]):
                cols = np.flatnonzero(best[o, b] == a)
                c = _on(cols, Yc)
                P = op.predict_one(int(a), Yc[:, c]) + mean[c]
                if isinstance(pred, np.ndarray):
                    pred[np.ix_(te, b[cols])] = P
                else:
                    pred[_on(te, pred)[:, None], _on(b[cols], pred)[None, :]] = _astype(P, dtype)
        if step is not None:
            step()
    return pred, best

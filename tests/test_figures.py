"Every figure the analyses draw, at realistic sizes (25 features, 8 dimensions, 14 PID methods): nothing clipped, no axes squashed."
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from larvae_nb import latent_figures as lf
from larvae_nb.plotting import layout_problems
from larvae_nb.label_efficiency import label_efficiency_figure

RNG = np.random.default_rng(0)
FEATS = [f'a_rather_long_feature_name_{i}' for i in range(25)]
DIMS = [f'z{i}' for i in range(8)]
METHODS = ['latent logistic probe', 'latent MLP probe (32, 16)', 'latent GMM (2 components)', 'reconstruction error',
           'Pearson chi2 (p - K)', 'LArSoft chi2 (p - K)', 'own-cluster LArSoft chi2 (p - K)', '-PIDA', '-own-cluster PIDA',
           'col_width (cluster tick span)', 'own-cluster range', 'features: logistic regression',
           'features: gradient-boosted trees', 'supervised CNN']


def _rho(): return pd.DataFrame(RNG.uniform(-1, 1, (8, 25)), index=DIMS, columns=FEATS)


def _nonlinear():
    res = {f: {'r2_ridge': RNG.uniform(-0.5, 1), 'r2_mlp': (r := RNG.uniform(-3, 1)), 'informative': r > 0,
               'permutation_importance': dict(zip(DIMS, RNG.random(8))), 'mutual_information': dict(zip(DIMS, RNG.random(8)))} for f in FEATS}
    return lf.nonlinear_figures(res, DIMS)


def _pid():
    n = 400; y = np.arange(n) < 150
    cls = np.where(y, 'kaon', np.where(np.arange(n) < 350, 'proton', 'pion')).astype(object)
    S = {m: RNG.normal(size=n) + y*RNG.uniform(0, 2) for m in METHODS}
    table = {m: {'auc': 0.8, 'efficiency': 0.5} for m in METHODS}
    return {'pid_roc': lf.roc_figure(S, y, table, 'kaon vs proton'),
            'pid_efficiency_purity': lf.efficiency_purity_figure(S, y, table, 0.9),
            'pid_scores': lf.score_figure(S, cls)}


def _label_curve():
    sizes = [10, 30, 100, 300, 612]
    row = lambda a: {'auc': a, 'auc_ci': [a - 0.05, a + 0.04]}
    return {'classes': 'kaon vs proton', 'points': {str(n): {'n_labelled': n, 'all': n == 612, 'table': {m: row(RNG.uniform(0.55, 0.95)) for m in METHODS[:2] + METHODS[-3:]}}
                                                    for n in sizes}}


FIGURES = {
    'correlation': lambda: lf.correlation_figures({'all': _rho(), 'proton': _rho(), 'kaon': _rho()}, pd.DataFrame(RNG.uniform(-1, 1, (25, 25)), FEATS, FEATS)),
    'variance_decomposition': lambda: {'variance_decomposition': lf.variance_figure(pd.DataFrame(RNG.random((8, 3)), DIMS, ['calorimetry', 'topology', 'other']))},
    'traversal': lambda: {'latent_traversal': lf.traversal_figure(RNG.random((8, 9, 2, 32, 32)), 2.)},
    'linear_probe': lambda: {'linear_probe': lf.probe_figure({k: {d: {'auc': RNG.uniform(0.5, 1)} for d in DIMS} for k in ('logistic', 'mlp')},
                                                             {'logistic': {'auc': 0.9}, 'mlp': {'auc': 0.92}})},
    'nonlinear': _nonlinear,
    'feature_auc': lambda: {'feature_auc': lf.feature_auc_figure({s: dict(zip(FEATS, RNG.uniform(0.5, 1, 25))) for s in ('proton', 'kaon')}, FEATS)},
    'separation': lambda: {'separation': lf.separation_figure(RNG.normal(size=(300, 8)), np.array(['proton', 'kaon'] * 150))},
    'hardest_cases': lambda: {'hardest_cases': lf.case_figure(RNG.random((8, 2, 32, 32)), [f'kaon 8000/1/{i}\nP(K)=0.{i}' for i in range(8)])},
    'pid': _pid,
    'label_efficiency': lambda: {'label_efficiency': label_efficiency_figure(_label_curve())},
}


@pytest.mark.parametrize('name', list(FIGURES))
def test_figure_is_neither_clipped_nor_squashed(name):
    figs = FIGURES[name]()
    try:
        for key, fig in figs.items():
            assert layout_problems(fig, min_inches=1.0, min_fraction=0.05) == [], key
    finally:
        for fig in figs.values(): plt.close(fig)


def test_pid_figures_carry_the_experiment_label_and_distinct_styles():
    figs = _pid()
    for key, fig in figs.items():
        words = ' '.join(t.get_text() for ax in fig.axes for t in ax.texts)
        assert 'LArIAT' in words and 'Simulation' in words, key
    lines = figs['pid_roc'].axes[0].get_lines()
    assert len({(l.get_color(), l.get_linestyle()) for l in lines}) == len(METHODS)
    assert {t.get_text().split(' (AUC')[0] for t in figs['pid_roc'].axes[0].get_legend().get_texts()} == set(METHODS)  # readable names
    for fig in figs.values(): plt.close(fig)

"""Figures for reports and MLflow: each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

if "inline" not in matplotlib.get_backend():  # in a notebook keep its inline backend
    matplotlib.use("Agg")  # no screen: render to files

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def segment_sizes(summary: pd.DataFrame, note: str = ""):
    """Each RFM segment's share of the customers and of the spend."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    y = np.arange(len(summary))
    ax.barh(y - 0.2, summary["share"] * 100, height=0.4, label="customers")
    ax.barh(y + 0.2, summary["spend_share"] * 100, height=0.4, label="spend")
    ax.set_yticks(y, summary.index)
    ax.invert_yaxis()
    ax.set_xlabel("% of total")
    _titled(ax, "RFM segments: share of customers and of spend", note)
    ax.legend()
    fig.tight_layout()
    return fig


def _label(column: str) -> str:
    """A column name as people read it: ``share_DRUG GM`` is "share of spend: drug GM"."""
    if column.startswith("share_"):
        return "share of spend: " + column[len("share_") :].lower()
    unit = {"_days": " (days)", "_30d": " (30 days)", "_90d": " (90 days)"}
    for suffix, words in unit.items():
        if column.endswith(suffix):
            return column[: -len(suffix)].replace("_", " ") + words
    return column.replace("_", " ")


def _titled(ax, title: str, note: str) -> None:
    """The chart's title, and beneath it what it shows: dataset, date, horizon."""
    ax.set_title(f"{title}\n{note}" if note else title, fontsize=11)


def cluster_profiles(profiles: pd.DataFrame, columns: list[str], note: str = ""):
    """Each cluster's median features, coloured by how far each sits from the other clusters."""
    data = profiles[columns].astype(float)
    z = (data - data.mean()) / data.std(ddof=0).replace(0, 1)
    fig, ax = plt.subplots(figsize=(2.5 + 0.95 * len(columns), 2.4 + 0.6 * len(data)))
    im = ax.imshow(z.to_numpy(), cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(columns)), [_label(c) for c in columns], rotation=40, ha="right", fontsize=9)
    names = [f"cluster {i} ({n:,} customers)" for i, n in zip(data.index, profiles["customers"])]
    ax.set_yticks(range(len(data)), names)
    for (i, j), v in np.ndenumerate(data.to_numpy()):
        ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=9)
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("vs the other clusters (s.d.)", fontsize=9)
    _titled(ax, "Behavioural clusters: median profile", note)
    fig.tight_layout()
    return fig


def silhouette_by_k(scores: dict[int, float], chosen: int, note: str = ""):
    """The silhouette of each number of clusters tried, and the one chosen."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ks = sorted(scores)
    ax.plot(ks, [scores[k] for k in ks], marker="o")
    ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen k = {chosen}")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    _titled(ax, "Behavioural clusters: silhouette by k", note)
    ax.legend()
    fig.tight_layout()
    return fig


def histogram(values: pd.Series, title: str, xlabel: str, bins: int = 30, log: bool = False, note: str = ""):
    """How values spread over customers; ``log`` draws the counts on a log axis, so a tail of a
    few hundred customers stays visible beside a spike of thousands."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.hist(values.dropna(), bins=bins, log=log)
    _titled(ax, title, note)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("customers (log scale)" if log else "customers")
    fig.tight_layout()
    return fig


def cohort_heatmap(matrix: pd.DataFrame, note: str = "", min_customers: int = 30):
    """Share of each first-purchase cohort buying in each later month. The first cohort holds
    every customer who bought in the data's first month, among them all who were customers
    before the data starts; cohorts under ``min_customers`` are drawn faint: too few to read."""
    data = matrix.drop(columns=["customers"]).astype(float)
    fig, ax = plt.subplots(figsize=(2.5 + 0.6 * data.shape[1], 1.8 + 0.42 * data.shape[0]))
    small = (matrix["customers"] < min_customers).to_numpy()
    shown = np.where(small[:, None], np.nan, data.to_numpy())
    im = ax.imshow(shown, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(data.shape[1]), data.columns)
    names = [f"{c} ({n:,})" for c, n in zip(data.index, matrix["customers"])]
    if names:
        names[0] = f"{data.index[0]} ({matrix['customers'].iloc[0]:,}; everyone already a customer)"
    ax.set_yticks(range(data.shape[0]), names, fontsize=8)
    ax.set_xlabel("months since first purchase")
    for (i, j), v in np.ndenumerate(data.to_numpy()):
        if not np.isnan(v):
            colour = "grey" if small[i] else ("white" if v < 0.6 else "black")
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of the cohort buying")
    extra = f"cohorts under {min_customers} customers faint"
    _titled(ax, "Cohort retention by first-purchase month", f"{note}; {extra}" if note else extra)
    fig.tight_layout()
    return fig


def retention_over_time(rolling: pd.DataFrame, note: str = ""):
    """Retention and repeat-purchase rates (top) and the churn rate on its own scale (bottom),
    over trailing periods."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, height_ratios=(3, 2))
    for col in ("retention_rate", "repeat_purchase_rate"):
        top.plot(rolling["end"], rolling[col], marker="o", label=col.replace("_", " "))
    top.set_ylabel("% of customers")
    top.legend()
    bottom.plot(rolling["end"], rolling["churn_rate"], marker="o", color="tab:red", label="churn rate")
    bottom.set_ylabel("churn rate (%)")
    bottom.set_ylim(bottom=0)
    bottom.legend()
    _titled(top, "Rates over trailing 90-day periods", note)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def calibration(curve: pd.DataFrame, title: str = "Churn calibration", note: str = ""):
    """Observed churn rate against mean predicted probability per bin, with each bin's 95%
    (Wilson) interval and its customers."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    top = float(max(curve["mean_predicted"].max(), curve.get("high", curve["observed_rate"]).max(), 0.05)) * 1.1
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="perfectly calibrated")
    if {"low", "high"} <= set(curve):
        err = np.vstack([curve["observed_rate"] - curve["low"], curve["high"] - curve["observed_rate"]])
        ax.errorbar(
            curve["mean_predicted"],
            curve["observed_rate"],
            yerr=err,
            marker="o",
            capsize=3,
            label="model (95% interval)",
        )
    else:
        ax.plot(curve["mean_predicted"], curve["observed_rate"], marker="o", label="model")
    if "customers" in curve:
        for x, y, n in zip(curve["mean_predicted"], curve["observed_rate"], curve["customers"]):
            ax.annotate(f"{n:,}", (x, y), textcoords="offset points", xytext=(6, -10), fontsize=7)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted churn probability (bins of equal size; customers per bin shown)")
    ax.set_ylabel("observed churn rate")
    _titled(ax, title, note)
    ax.legend()
    fig.tight_layout()
    return fig


def lift_curve(scores: pd.DataFrame, label: str, models: list[str], note: str = ""):
    """Share of all churners captured against the share of customers contacted, per model."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    y = scores[label].to_numpy()
    x = np.arange(1, len(y) + 1) / len(y)
    for m in models:
        order = np.argsort(-scores[m].to_numpy(), kind="stable")
        ax.plot(x, np.cumsum(y[order]) / max(y.sum(), 1), label=m)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="random")
    ax.set_xlabel("share of customers contacted (highest risk first)")
    ax.set_ylabel("share of churners captured")
    _titled(ax, "Churn capture curve", note)
    ax.legend()
    fig.tight_layout()
    return fig


def metric_bars(table: pd.DataFrame, title: str, ylabel: str, errors: dict | None = None, note: str = ""):
    """Grouped bars: one group per row of ``table`` (numeric labels in numeric order), one bar
    per column; ``errors`` maps a column to (low, high) per row, drawn as 95% intervals."""
    order = sorted(
        table.index, key=lambda v: (0, float(v)) if str(v).lstrip("-").replace(".", "", 1).isdigit() else (1, str(v))
    )
    table = table.loc[order]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    n = len(table.columns)
    x = np.arange(len(table))
    width = 0.8 / max(n, 1)
    for i, col in enumerate(table.columns):
        values = table[col].to_numpy(dtype=float)
        yerr = None
        if errors and col in errors:
            lo, hi = (np.asarray(pd.Series(e).reindex(table.index), dtype=float) for e in errors[col])
            yerr = np.vstack([values - lo, hi - values])
        ax.bar(x + (i - (n - 1) / 2) * width, values, width, label=str(col), yerr=yerr, capsize=2)
    ax.set_xticks(x, [str(i) for i in table.index])
    ax.set_ylabel(ylabel)
    _titled(ax, title, note + ("; bars 95% bootstrap intervals over households" if errors else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lift_intervals(
    table: pd.DataFrame,
    measure: str = "incremental_profit",
    label: str = "incremental profit",
    unit: str = "$ per treated customer",
    note: str = "",
):
    """Each group's ``measure`` with its 95% interval, against 0 (no effect): one row per offer
    or campaign, labelled with its customers per arm."""
    rows = table.dropna(subset=[measure])
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.45 * max(len(rows), 1)))
    y = np.arange(len(rows))
    lo, hi = rows[f"{measure}_low"].to_numpy(), rows[f"{measure}_high"].to_numpy()
    mid = rows[measure].to_numpy()
    colour = np.where(lo > 0, "tab:green", np.where(hi < 0, "tab:red", "tab:gray"))
    ax.hlines(y, lo, hi, colors=colour, linewidth=2)
    ax.scatter(mid, y, color=colour, zorder=3)
    ax.axvline(0, color="black", linewidth=0.8)
    names = [f"{g} ({t:,} treated / {c:,} control)" for g, t, c in zip(rows["group"], rows["treated"], rows["control"])]
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(f"{label}, {unit} (95% Welch interval)")
    ax.set_title(f"Measured lift against randomised control groups{note}")
    fig.tight_layout()
    return fig


def purchase_history(history: pd.DataFrame, title: str):
    """A customer's weekly spend (bars) and baskets (line, right axis) over time."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    if history.empty:
        ax.text(
            0.5,
            0.5,
            "no purchases in the year before the model's date",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
    else:
        weeks = pd.to_datetime(history["week"])
        ax.bar(weeks, history["spend"], width=6, color="tab:blue", label="spend")
        ax.set_ylabel("spend per week ($)")
        right = ax.twinx()
        right.plot(weeks, history["baskets"], "o", color="tab:orange", markersize=3, label="baskets")
        right.set_ylabel("baskets per week")
        right.set_ylim(bottom=0)
        fig.autofmt_xdate()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def segment_overview(table: pd.DataFrame, title: str):
    """Per segment (or cluster): customers, mean spend and mean churn probability, each on its own axis."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 1.4 + 0.4 * max(len(table), 1)), sharey=True)
    y = np.arange(len(table))
    names = [str(n) for n in table.index]
    for ax, (col, label, fmt) in zip(
        axes,
        (
            ("customers", "customers", "{:,.0f}"),
            ("mean_total_spend", "mean spend ($)", "${:,.0f}"),
            ("mean_churn_probability", "mean churn probability", "{:.1%}"),
        ),
    ):
        values = table[col].to_numpy(dtype=float)
        ax.barh(y, values, color="tab:blue" if col != "mean_churn_probability" else "tab:red")
        for yi, v in zip(y, values):
            ax.text(v, yi, " " + fmt.format(v), va="center", fontsize=8)
        ax.set_xlabel(label)
        top = max(values.max() * 1.35, 1e-9) if len(values) else 1.0
        ax.set_xlim(0, min(top, 1.0) if col == "mean_churn_probability" else top)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    return fig

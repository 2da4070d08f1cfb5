"""Reading plots for the exercise checks; shipped in the student tree, so no reference. A plot's ``output`` is a
normalised description of what matters in it (images as shown, the colour scale as booleans, lines found by the
data they draw, labels), never its picture; :func:`compare` fails at its first property unlike the reference's,
with that property's hint (a wrong image: how it is the expected one laid out wrongly)."""

import re

import numpy as np

from course_lib.checks.core import CheckFailure, compare_data

_SCALE = ("pass vmin=-m, vmax=m with m the largest |w|{}, and a diverging colormap (cmap='RdBu_r'), so that zero "
          "weight has one colour{}")
#: The hint of each property of a plot's description (for images: when some are missing).
HINTS = {
    "a Figure returned": "create it with fig, axes = plt.subplots(...) and return the Figure.",
    "images on the Axes given": "draw it on the Axes given, with ax.imshow(...), not plt.imshow(...).",
    "lines on the Axes given": "draw on the Axes given, with ax.plot(...) or ax.step(...), not plt.plot(...).",
    "images of u1": "show u1 as an image on the first Axes: ax.imshow(u1.reshape(frame_shape)).",
    **{key: hint for per in ("lag", "alpha") for key, hint in (
        (f"images, one per {per}", f"make one Axes per {per}, plt.subplots(1, n), and imshow each, in order."),
        (f"panels titled with their {per}", f"title each panel with its {per}, e.g. f'{per} {{{per}:g}}'."))},
    "one colour scale for all panels": _SCALE.format(" over all the filters", " and every panel the same scale: "
                                                                               "the shrinkage shows."),
    "a colour scale centred on zero covering max |w|": _SCALE.format(" (np.abs(w).max(); over all the panels if "
                                                                     "there are several)", "."),
    "a diverging colormap": "use a diverging colormap (cmap='RdBu_r'), so that zero weight has one, neutral colour.",
    **dict.fromkeys([f"a line of {y} against time in seconds" for y in "cr"], "draw c and r as two lines (ax.plot "
                    "or ax.step) against time in seconds: the bin index times dt."),
    "a line of v1 against the lag times": "ax.plot(lag_times, v1) on a second Axes.",
    "a title and both axis labels": "every figure needs a title and axis labels with units.",
    "a legend naming both lines": "label each line (label=...) and call ax.legend().",
}


def _same(a, b) -> bool:
    return np.shape(a) == np.shape(b) and np.allclose(np.asarray(a, dtype=float), b)


_LAYOUTS = [  # (whether a shown image is the expected one laid out so, hint)
    (lambda g, w: _same(g, w.T), "the image is transposed: reshape with w.reshape(rows, columns) and don't "
                                 "transpose it."),
    (lambda g, w: _same(g, np.reshape(w.ravel(), w.shape, order="F")),
     "reshape in C (row-major) order, w.reshape(rows, columns), as the frames were flattened."),
    (lambda g, w: _same(g.ravel(), w.ravel()), "reshape the flat vector to the frame's shape, frame_shape = (rows, "
                                               "columns)."),
    (lambda g, w: _same(g, w[::-1]), "the image is upside down: row 0 of a frame is its top row, as imshow's default "
                                     "origin='upper' shows it.")]


def compare(got, expected, what, args) -> None:
    """``core.compare_data`` of each property in turn: the first that differs fails with its hint."""
    for key, want in expected.items():
        try:
            compare_data(got[key], want, f"{key} of {what}")
        except CheckFailure as failure:
            hint = HINTS.get(key, "")
            if key.startswith("images") and len(got[key]) == len(want):  # all there: laid out wrongly?
                pairs = [(np.asarray(g, dtype=float), np.asarray(w, dtype=float)) for g, w in zip(got[key], want)]
                hint = next((h for laid_out, h in _LAYOUTS if all(laid_out(g, w) for g, w in pairs)), "")
            raise CheckFailure(str(failure), hint) from None


def _drawn(fn, args, describe, on_axes=False) -> dict:
    """``describe(axes)`` of the plot ``fn(ax, *args)`` draws on a fresh Axes (``on_axes``) or ``fn(*args)`` returns."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        if on_axes:  # the current Axes is another one: a plot must draw on the Axes it is given
            ax, elsewhere = plt.subplots(1, 2)[1]
            plt.sca(elsewhere)
            fn(ax, *args)
            return describe([ax])
        fig = fn(*args)
        is_fig = isinstance(fig, plt.Figure)
        return {"a Figure returned": is_fig} | describe(fig.axes if is_fig else [])
    finally:  # close every figure the plot opened
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def _diverging(cmap) -> bool:
    """Unlike ends and a neutral middle clearly lighter or darker than both (RdBu, PuOr; not viridis, gray, jet)."""
    ramp = np.asarray(cmap(np.linspace(0.0, 1.0, 5)), dtype=float)[:, :3]
    chroma, light = ramp.max(axis=1) - ramp.min(axis=1), ramp @ np.array([0.2126, 0.7152, 0.0722])
    return bool(chroma[2] < 0.3 and max(chroma[0], chroma[-1]) > 0.15 and np.linalg.norm(ramp[0] - ramp[-1]) > 0.3
                and (light[2] > light[[0, -1]].max() + 0.2 or light[2] < light[[0, -1]].min() - 0.2))


def _shown(ax, im) -> np.ndarray:
    """An image's array as it appears: row 0 at the top, column 0 at the left (whatever its origin, extent, axes)."""
    arr = np.ma.filled(np.ma.asarray(im.get_array(), dtype=float), np.nan)
    left, right, bottom, top = im.get_extent()
    row0, last = (top, bottom) if im.origin == "upper" else (bottom, top)
    arr = arr if (row0 < last) == ax.yaxis_inverted() else arr[::-1]
    return arr if (left < right) != ax.xaxis_inverted() else arr[:, ::-1]


def _numbers(title: str) -> set[float]:
    """The numbers a title writes (1000, 1,000, 1e+03, 0.5)."""
    found = re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d*\.?\d+(?:[eE][-+]?\d+)?", title)
    return {float(x.replace(",", "")) for x in found}


def _images(axes, key, per="", values=(), scale=False) -> dict:
    """The images as shown (under ``key``), with ``scale`` whether one diverging colour scale centred on zero
    covers max |w|, and how many panels' titles give their ``per`` (``values``, in order) and not all of them."""
    imgs = [(ax.get_title(), ax.get_images()[0], ax) for ax in axes if ax.get_images()]
    arrays = [_shown(ax, im) for _, im, ax in imgs]
    out = {key: [a.tolist() for a in arrays]}
    if scale:
        m, clims = max((np.nanmax(np.abs(a)) for a in arrays), default=np.nan), {im.get_clim() for _, im, _ in imgs}
        out |= {"one colour scale for all panels": len(clims) == 1,
                "a colour scale centred on zero covering max |w|": bool(clims) and all(
                    hi > 0 and abs(lo + hi) <= 1e-9 * hi and hi >= m * (1 - 1e-9) for lo, hi in clims),
                "a diverging colormap": bool(imgs) and all(_diverging(im.cmap) for _, im, _ in imgs)}
    if per:
        found, every = [_numbers(title) for title, _, _ in imgs], set(values)  # (a title listing them all: not its own)
        out[f"panels titled with their {per}"] = sum(v in f and (len(every) < 2 or not every <= f)
                                                     for f, v in zip(found, values))
    return out


def _line(axes, y, xs):
    """The first Axes with a line of ``y`` against one of the x values ``xs`` (a step plot may add a last edge)."""
    n = len(y)
    return next((ax for ax in axes for ln in ax.get_lines() if len(ln.get_ydata()) in (n, n + 1)
                 and _same(ln.get_ydata()[:n], y) and any(_same(ln.get_xdata()[:n], x) for x in xs)), None)


def _labelled(ax) -> dict:
    return {"a title and both axis labels": ax is not None and all(map(str.strip, (
        ax.get_title(), ax.get_xlabel(), ax.get_ylabel())))}


def response_plot(fn, args) -> dict:
    """plot_response(ax, c, r, dt): lines of c and r against time in s (bins' starts, centres or ends), a legend."""
    c, r, dt = (np.array(a, dtype=float) for a in args)
    t = [(np.arange(len(c)) + start) * dt for start in (0.0, 0.5, 1.0)]  # bins' starts, centres or ends

    def describe(axes):
        return {"lines on the Axes given": bool(axes[0].get_lines())} | {
            f"a line of {k} against time in seconds": _line(axes, y, t) is not None
                for k, y in (("c", c), ("r", r))} | _labelled(axes[0]) | {
            "a legend naming both lines": any(len(getattr(legend, "texts", ())) >= 2  # the Axes' or the Figure's
                                              for legend in (axes[0].get_legend(), *axes[0].figure.legends))}
    return _drawn(fn, args, describe, on_axes=True)


def rf_plot(fn, args) -> dict:
    """plot_rf(ax, w, shape): the image as shown, its colour scale, the labels."""
    return _drawn(fn, args, lambda axes: _images(axes, "images on the Axes given", scale=True) | _labelled(axes[0]),
                  on_axes=True)


def lagged_plots(fn, args) -> dict:
    """plot_lagged_filters(W, shape, lags): the returned Figure's images, titled with their lags."""
    return _drawn(fn, args, lambda axes: _images(axes, "images, one per lag", "lag", [float(x) for x in args[2]]))


def space_time_plots(fn, args) -> dict:
    """plot_space_time(u, v, shape, lag_times): the image of u, and a labelled line of v against the lag times."""
    v, lag_times = np.array(args[1], dtype=float), np.array(args[3], dtype=float)

    def describe(axes):
        ax = _line(axes, v, [lag_times])
        return _images(axes, "images of u1") | {"a line of v1 against the lag times": ax is not None} | _labelled(ax)
    return _drawn(fn, args, describe)


def alpha_plots(fn, args) -> dict:
    """plot_filters_by_alpha(ws, alphas, shape): the Figure's images, titled with their alphas, and their scale."""
    alphas = [float(a) for a in args[1]]
    return _drawn(fn, args, lambda axes: _images(axes, "images, one per alpha", "alpha", alphas, scale=True))

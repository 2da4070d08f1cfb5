"""Reading plots for the exercise checks; shipped in the student tree, so no reference. A plot is
judged from its Axes' contents (images with their colour limits and colormap, lines, labels, legend),
never by comparing pictures: ``output`` functions record them, ``compare`` functions check them.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks.core import CheckFailure, fmt


def first_failure(steps) -> None:
    """Raise :class:`CheckFailure` for the first of ``(failed, message, hint)`` that failed."""
    for failed, message, hint in steps:
        if failed:
            raise CheckFailure(message, hint)


def _axes(ax) -> dict:
    legend = ax.get_legend()
    return {"images": [{"array": np.ma.filled(np.ma.asarray(im.get_array(), dtype=float), np.nan).tolist(),
                        "clim": [float(v) for v in im.get_clim()],
                        "ramp": np.asarray(im.cmap(np.linspace(0.0, 1.0, 5)), dtype=float)[:, :3].tolist()}
                       for im in ax.get_images()],
            "lines": [[np.asarray(xy, dtype=float).tolist() for xy in ln.get_data()] for ln in ax.get_lines()],
            "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
            "legend": [t.get_text() for t in legend.get_texts()] if legend else []}


def _record(fn, args, on_axes: bool) -> dict:
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        if on_axes:
            fn(ax := plt.subplots()[1], *args)
            return {"axes": [_axes(ax)]}
        fig = fn(*args)
        return {"axes": [_axes(ax) for ax in fig.axes]} if isinstance(fig, plt.Figure) else {"type": type(fig).__name__}
    finally:  # close every figure the plot opened
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def drawn_on_axes(fn, args) -> dict:
    """``fn(ax, *args)`` on a fresh Axes: what that Axes shows."""
    return _record(fn, args, on_axes=True)


def returned_figure(fn, args) -> dict:
    """``fn(*args)``, which returns a Figure: what each of its Axes shows."""
    return _record(fn, args, on_axes=False)


def _image_panels(got, expected, what: str, names=(), per: str = "", one_scale: bool = False) -> list[dict]:
    """The Axes with an image, each the expected one (one per ``per`` item, titled with its ``names``
    entry, when given); ``one_scale``: one diverging colour scale centred on zero for all."""
    if "axes" not in got:
        raise CheckFailure(f"type: {what} should return a matplotlib Figure, got a {got['type']}",
                           "create it with fig, axes = plt.subplots(...) and return the Figure.")
    panels, wanted = ([ax for ax in data["axes"] if ax["images"]] for data in (got, expected))
    first_failure([(not panels or (names and len(panels) != len(names)), f"images: {what} should have "
                    + (f"one image per {per} ({len(names)})" if names else "an image") + f", got {len(panels)}",
                    f"make one Axes per {per}, plt.subplots(1, n), and imshow each, in the order given."
                    if names else "draw it with ax.imshow(...).")])
    for k, (ax, want) in enumerate(zip(panels, wanted)):
        _image(np.asarray(ax["images"][0]["array"], dtype=float), np.asarray(want["images"][0]["array"], dtype=float),
               f"panel {k + 1} of {what}" if names else what)
    first_failure((name not in ax["title"], f"labels: panel {k + 1} of {what} should say {name} in its title, got "
                   f"{ax['title']!r}", f"title each panel with its {per}, e.g. f'{per} {{{per}:g}}'.")
                  for k, (ax, name) in enumerate(zip(panels, names)))
    if one_scale:
        _one_diverging_scale([ax["images"][0] for ax in panels], what)
    return panels


def _image(arr, want, what: str) -> None:
    """The image's array must be the expected one (a transposed or misshapen one gets a hint)."""
    if arr.shape == want.shape and np.allclose(arr, want):
        return
    hint = ""
    if arr.shape == want.T.shape and np.allclose(arr, want.T):
        hint = "the image is transposed: reshape the flat vector with .reshape(rows, columns) and don't transpose it."
    elif arr.shape == want.shape and np.allclose(arr, want.ravel().reshape(want.shape, order="F")):
        hint = "reshape in C (row-major) order, w.reshape(rows, columns), as the frames were flattened."
    elif arr.size == want.size and arr.shape != want.shape:
        hint = f"reshape the flat vector to the frame's shape {want.shape} (rows, columns)."
    raise CheckFailure(f"values: {what} should show the array {fmt(want)} with shape {want.shape}, got {fmt(arr)} "
                       f"with shape {arr.shape}", hint)


def _diverging(ramp) -> bool:
    """A diverging colormap: two ends of different colours and a neutral middle (grey, white or
    black) clearly lighter or darker than both (RdBu, coolwarm, PuOr, ...; not viridis, gray, jet)."""
    ramp = np.asarray(ramp, dtype=float)
    chroma, light = ramp.max(axis=1) - ramp.min(axis=1), ramp @ np.array([0.2126, 0.7152, 0.0722])
    return bool(chroma[2] < 0.3 and max(chroma[0], chroma[-1]) > 0.15 and np.linalg.norm(ramp[0] - ramp[-1]) > 0.3
                and (light[2] > light[[0, -1]].max() + 0.2 or light[2] < light[[0, -1]].min() - 0.2))


def _one_diverging_scale(imgs: list[dict], what: str) -> None:
    """One colour scale for every image, centred on zero and covering ±max |w|, diverging."""
    m, many = max(float(np.nanmax(np.abs(np.asarray(i["array"], dtype=float)))) for i in imgs), len(imgs) > 1
    hint = (f"pass vmin=-m, vmax=m with m the largest |w|{' over all the filters' if many else ' (np.abs(w).max())'}, "
            "and a diverging colormap (cmap='RdBu_r'), so that zero weight has one colour"
            + (" and every panel the same scale: the shrinkage shows." if many else "."))
    clims = {tuple(float(v) for v in img["clim"]) for img in imgs}
    vmin, vmax = min(clims)  # the one scale, when there is one
    first_failure([
        (len(clims) > 1, f"colours: {what} should use one colour scale for every panel, got {len(clims)} different "
                         "(vmin, vmax)", hint),
        (not (vmax > 0 and abs(vmin + vmax) <= 1e-9 * vmax and vmax >= m * (1 - 1e-9)), f"colours: {what} should have "
         f"a colour scale centred on zero (vmin = −vmax ≥ max |w|), got vmin = {vmin:.3g}, vmax = {vmax:.3g}", hint),
        (not all(_diverging(img["ramp"]) for img in imgs), f"colours: {what} should use a diverging colormap (one "
         "colour for positive weights, another for negative, light or dark at zero)", hint)])


def _labels(ax: dict, what: str) -> list:
    """The steps that check a title and both axis labels."""
    return [(not str(ax[key]).strip(), f"labels: {what} should have {word}", "every figure needs a title and axis "
             "labels with units.") for key, word in (("title", "a title"), ("xlabel", "an x-axis label"),
                                                     ("ylabel", "a y-axis label"))]


def _has_line(ax: dict, x_options, y) -> bool:
    return any(np.shape(ly) == np.shape(y) and np.allclose(ly, y) and any(
        np.shape(lx) == np.shape(x) and np.allclose(lx, x) for x in x_options) for lx, ly in ax["lines"])


def response_plot(got, expected, what, args) -> None:
    """plot_response(ax, c, r, dt): lines of c and r against time in s (bin starts or centres), labelled, a legend."""
    c, r, dt = args
    (ax,), t = got["axes"], np.arange(len(c)) * dt
    first_failure([(not _has_line(ax, (t, t + dt / 2), y), f"lines: {what} should have a line of {name} against "
                    f"time ({fmt(t)} s) drawn with ax.plot or ax.step; found {len(ax['lines'])} line(s) without it",
                    "the x values should be time in seconds: the bin index times dt."
                    if _has_line(ax, [lx for lx, _ in ax["lines"]], y) else "")
                   for name, y in (("the counts c", c), ("the expected counts r", r))] + _labels(ax, what)
                  + [(len(ax["legend"]) < 2, f"legend: {what} should have a legend naming both lines",
                      "label each line (label=...) and call ax.legend().")])


def rf_plot(got, expected, what, args) -> None:
    """plot_rf(ax, w, shape): w as a frame-shaped image on one diverging scale centred on zero, labelled."""
    first_failure(_labels(_image_panels(got, expected, what, one_scale=True)[0], what))


def lagged_plots(got, expected, what, args) -> None:
    """plot_lagged_filters(W, shape, lags): one image per lag, in order, each titled with its lag."""
    _image_panels(got, expected, what, [str(lag) for lag in args[2]], "lag")


def space_time_plots(got, expected, what, args) -> None:
    """plot_space_time(u, v, shape, lag_times): u as an image, and a labelled line of v against the lag times."""
    _image_panels(got, expected, f"the spatial map of {what}")
    drawn = [ax for ax in got["axes"] if _has_line(ax, (args[3],), args[1])]
    first_failure([(not drawn, f"lines: {what} should have a line of v1 against the lag times ({fmt(args[3])} s)",
                    "ax.plot(lag_times, v1) on a second Axes.")]
                  + (_labels(drawn[0], f"the time-course panel of {what}") if drawn else []))


def alpha_plots(got, expected, what, args) -> None:
    """plot_filters_by_alpha(ws, alphas, shape): one image per alpha, in order, titled, on one diverging scale."""
    _image_panels(got, expected, what, [f"{a:g}" for a in args[1]], "alpha", one_scale=True)

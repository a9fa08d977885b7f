"""Plain NumPy (float64) recurrent networks written from MXNet 1.9's documented equations
(``src/operator/rnn.cc``: gate orders LSTM i, f, c, o and GRU r, z, n; the GRU's reset gate
applied after the h2h product), independent of tapegrad: the reference the tests compare
layers, cells and ``nd.RNN`` against."""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def step(mode, x, h, c, w, clip=None):
    """One step of one direction. ``w = (wi, wh, bi, bh, wr)``; returns (h, c)."""
    wi, wh, bi, bh, wr = w
    a = x @ wi.T + bi
    b = h @ wh.T + bh
    if mode in ("rnn_tanh", "rnn_relu"):
        z = a + b
        return (np.tanh(z) if mode == "rnn_tanh" else np.maximum(z, 0.0)), None
    if mode == "gru":
        H = wh.shape[0] // 3
        r = sigmoid(a[:, :H] + b[:, :H])
        u = sigmoid(a[:, H : 2 * H] + b[:, H : 2 * H])
        n = np.tanh(a[:, 2 * H :] + r * b[:, 2 * H :])
        return (1.0 - u) * n + u * h, None
    H = wh.shape[0] // 4
    z = a + b
    i = sigmoid(z[:, :H])
    f = sigmoid(z[:, H : 2 * H])
    g = np.tanh(z[:, 2 * H : 3 * H])
    o = sigmoid(z[:, 3 * H :])
    c = f * c + i * g
    if clip is not None:
        c = np.clip(c, *clip)
    h = o * np.tanh(c)
    if wr is not None:
        h = h @ wr.T
    return h, c


def stack(mode, x, weights, h0, c0, layers, bidirectional, clip=None, lengths=None):
    """The multi-layer (bidirectional) network over ``x`` (T, N, C) in MXNet's semantics:
    ``weights[l * D + d]``, states (L*D, N, size). With ``lengths``, sequence n is read up to
    ``lengths[n]`` (the backward direction starts at its last step), outputs past it are 0 and
    the final states are those at its end. Returns (out, h_n, c_n)."""
    T, N, _ = x.shape
    D = 2 if bidirectional else 1
    lengths = np.full(N, T) if lengths is None else np.asarray(lengths)
    hs, cs = [], []
    inp = x
    for layer in range(layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            w = weights[k]
            y = np.zeros((T, N, h0.shape[2]))
            h_fin = np.zeros_like(h0[k])
            c_fin = None if c0 is None else np.zeros_like(c0[k])
            for n in range(N):
                h = h0[k][n : n + 1]
                c = None if c0 is None else c0[k][n : n + 1]
                order = range(lengths[n])
                if d == 1:
                    order = reversed(order)
                for t in order:
                    h, c = step(mode, inp[t, n : n + 1], h, c, w, clip)
                    y[t, n] = h[0]
                h_fin[n] = h[0]
                if c is not None:
                    c_fin[n] = c[0]
            outs.append(y)
            hs.append(h_fin)
            cs.append(c_fin)
        inp = np.concatenate(outs, axis=2)
    return inp, np.stack(hs), (None if c0 is None else np.stack(cs))

"""Data and models with a known answer for the benchmark beyond images (tabular, time
series, text): benchmarks/bench_quality_beyond.py.

Everything is generated here, seeded, without downloads, and the models train on a CPU
in seconds.

- Tabular (a): Friedman #1, y = 10 sin(pi x1 x2) + 20 (x3 - 1/2)^2 + 10 x4 + 5 x5, on
  ten U(0, 1) features of which the last five are unused, as a TensorFlow function, with
  its Sobol indices in closed form (:func:`friedman1_indices`).
- Tabular (b): scikit-learn's ``make_classification(shuffle=False)``: the informative
  features come first, the rest is noise; a small Keras MLP trained on it.
- Time series: Gaussian noise (N, T, C) where the class is set by a motif planted in one
  channel at a random position (the window is known), plus a class-independent decoy
  elsewhere; a small Conv1D classifier.
- Text: token ids (N, L) padded with 0, neutral words plus one or two planted sentiment
  words that set the label; a small Embedding + Conv1D model, split into its embedding
  and the rest so that gradient methods can explain it from the embeddings.
"""
import dataclasses
import math

import numpy as np

# -- tabular (a): Friedman #1 -------------------------------------------------------------
FRIEDMAN_FEATURES = 10
#: the features Friedman #1 uses; the other five are noise it never reads.
FRIEDMAN_INFORMATIVE = np.arange(FRIEDMAN_FEATURES) < 5


def friedman1_numpy(x):
    """Friedman #1 (Friedman, 1991) on (N, >= 5) inputs; float64 (N,). Noise-free."""
    x = np.asarray(x, np.float64)
    return (10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2
            + 10 * x[:, 3] + 5 * x[:, 4])


def friedman1_tf(x):
    """Friedman #1 in TensorFlow ops, the model explained: (B, F >= 5) -> (B, 1)."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    y = (10.0 * tf.sin(math.pi * x[:, 0] * x[:, 1]) + 20.0 * (x[:, 2] - 0.5) ** 2
         + 10.0 * x[:, 3] + 5.0 * x[:, 4])
    return y[:, None]


def friedman1_inputs(n, seed=0, nb_features=FRIEDMAN_FEATURES):
    """n points drawn uniformly from [0, 1]^nb_features, float32 (n, nb_features)."""
    return np.random.default_rng(seed).uniform(size=(n, nb_features)).astype(np.float32)


def friedman1_indices(nb_features=FRIEDMAN_FEATURES):
    """First-order and total Sobol indices of Friedman #1 with U(0, 1) inputs, closed form.

    Derived here (the function is a sum of independent parts, so only the x1 x2 term has
    an interaction). With g = 10 sin(pi x1 x2), u = x3 - 1/2:
    - Var(10 x4) = 100/12, Var(5 x5) = 25/12, Var(20 u^2) = 400 (E u^4 - (E u^2)^2)
      = 400 (1/80 - 1/144) = 20/9;
    - E g = 10 Cin(pi) / pi, Cin(z) = gamma + ln z - Ci(z) (since E_x2 sin(pi x1 x2) =
      (1 - cos(pi x1)) / (pi x1), integrated over x1);
    - E g^2 = 100 (1/2 - Si(2 pi) / (4 pi)) (sin^2 = (1 - cos 2t) / 2);
    - V1 = V2 = Var(E[g | x1]) = 100 int_0^1 ((1 - cos(pi x)) / (pi x))^2 dx - (E g)^2
      (one numerical quadrature);
    - S1 = S2 = V1 / V, T1 = T2 = (Var g - V1) / V, S_j = T_j = V_j / V for x3, x4, x5,
      0 for the unused features, V = Var g + 20/9 + 100/12 + 25/12.
    The values (S ~ 0.197, 0.197, 0.093, 0.350, 0.087; T1 = T2 ~ 0.272; V ~ 23.83) agree with the
    estimates usually reported for this function in the sensitivity-analysis literature,
    and tests/benchmarks/test_beyond_data.py checks them against a Monte Carlo estimate.

    Returns:
        dict with 'first_order' and 'total' (float64 (nb_features,)) and 'variance' (V).
    """
    from scipy import integrate, special

    si_2pi, _ = special.sici(2 * np.pi)
    _, ci_pi = special.sici(np.pi)
    mean_g = 10 * (np.euler_gamma + np.log(np.pi) - ci_pi) / np.pi
    variance_g = 100 * (0.5 - si_2pi / (4 * np.pi)) - mean_g ** 2

    def squared_conditional_mean(x):
        return ((1 - np.cos(np.pi * x)) / (np.pi * x)) ** 2 if x > 0 else 0.0

    v1 = 100 * integrate.quad(squared_conditional_mean, 0, 1, epsabs=1e-13)[0] - mean_g ** 2
    parts = [20 / 9, 100 / 12, 25 / 12]  # x3, x4, x5
    variance = variance_g + sum(parts)
    first = np.zeros(nb_features)
    total = np.zeros(nb_features)
    first[:2] = v1 / variance
    total[:2] = (variance_g - v1) / variance
    first[2:5] = total[2:5] = np.array(parts) / variance
    return dict(first_order=first, total=total, variance=variance)


# -- shared -------------------------------------------------------------------------------
def fit_classifier(model, train_x, train_y, test_x, test_y, epochs, seed, batch_size=64,
                   learning_rate=3e-3):
    """Train a logits classifier (Adam, sparse cross-entropy); returns its test accuracy."""
    import keras

    keras.utils.set_random_seed(seed)
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_x, train_y, epochs=epochs, batch_size=batch_size, verbose=0,
              shuffle=True)
    return float(model.evaluate(test_x, test_y, batch_size=512, verbose=0)[1])


def split(data, share_test):
    """The first and last parts of a dataclass of arrays (train, test)."""
    cut = int(round(len(data.labels) * (1 - share_test)))
    fields = dataclasses.fields(data)

    def part(rows):
        return type(data)(**{f.name: (getattr(data, f.name)[rows] if f.metadata.get("rows")
                                      else getattr(data, f.name)) for f in fields})

    return part(slice(None, cut)), part(slice(cut, None))


def _rows():
    return dataclasses.field(metadata={"rows": True})


# -- tabular (b): make_classification -----------------------------------------------------
@dataclasses.dataclass
class TabularSet:
    """features float32 (N, F), labels int (N,), informative bool (F,) (known features)."""
    features: np.ndarray = _rows()
    labels: np.ndarray = _rows()
    informative: np.ndarray = None


def make_tabular(n, seed=0, nb_features=10, nb_informative=4):
    """scikit-learn's make_classification with shuffle=False: two classes, the first
    ``nb_informative`` features informative, the others pure noise (no redundant or
    repeated features, so nothing else carries the class). scikit-learn then orders the
    rows by class and cluster: they are shuffled here (the columns keep their order)."""
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=n, n_features=nb_features, n_informative=nb_informative, n_redundant=0,
        n_repeated=0, n_classes=2, n_clusters_per_class=2, class_sep=1.5, shuffle=False,
        random_state=seed)
    rows = np.random.default_rng(seed).permutation(n)
    return TabularSet(features[rows].astype(np.float32), labels[rows].astype(np.int64),
                      np.arange(nb_features) < nb_informative)


def tabular_mlp(nb_features, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((nb_features,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(2),
    ])


# -- time series --------------------------------------------------------------------------
@dataclasses.dataclass
class SeriesSet:
    """signals float32 (N, T, C); labels (N,); each class motif at time [start, start +
    width) of channel ``channel``; a decoy (the same in both classes) at [decoy_start,
    decoy_start + width) of ``decoy_channel``, never overlapping the motif."""
    signals: np.ndarray = _rows()
    labels: np.ndarray = _rows()
    starts: np.ndarray = _rows()
    channels: np.ndarray = _rows()
    decoy_starts: np.ndarray = _rows()
    decoy_channels: np.ndarray = _rows()
    width: int = 12

    def window_masks(self, decoy=False):
        """bool (N, T, C): True on each series' motif cells (its decoy's with decoy=True)."""
        starts, channels = ((self.decoy_starts, self.decoy_channels) if decoy
                            else (self.starts, self.channels))
        n, length, nb_channels = self.signals.shape
        steps = np.arange(length)[None, :, None]
        inside = (steps >= starts[:, None, None]) & (steps < starts[:, None, None] + self.width)
        return inside & (np.arange(nb_channels)[None, None, :] == channels[:, None, None])


def motifs(width, amplitude):
    """The two class motifs (2, width): a raised bump (class 0), one sine period (1)."""
    t = np.arange(width) / (width - 1)
    bump = np.sin(np.pi * t)
    wave = np.sin(2 * np.pi * t)
    return amplitude * np.stack([bump, wave])


def decoy(width, amplitude):
    """The decoy (width,): an alternating +-amplitude pattern as strong as the motifs but
    unlike both (orthogonal to the bump, nearly to the sine), in every series of both
    classes, so a method that credits any strong pattern is caught out."""
    return amplitude * (-1.0) ** np.arange(width)


def make_series(n, seed=0, length=64, nb_channels=2, width=12, amplitude=3.0, noise=1.0):
    """Series of Gaussian noise, each with its class motif added at a random window of a
    random channel and the decoy at another random place that does not overlap it;
    balanced classes."""
    rng = np.random.default_rng(seed)
    signals = rng.normal(0.0, noise, (n, length, nb_channels))
    labels = rng.permutation(np.arange(n) % 2)
    starts = rng.integers(0, length - width + 1, n)
    channels = rng.integers(0, nb_channels, n)
    decoy_starts = rng.integers(0, length - width + 1, n)
    decoy_channels = rng.integers(0, nb_channels, n)
    for i in range(n):
        while (decoy_channels[i] == channels[i]
               and abs(int(decoy_starts[i]) - int(starts[i])) < width):
            decoy_starts[i] = rng.integers(0, length - width + 1)
    shapes, pulse = motifs(width, amplitude), decoy(width, amplitude)
    for i in range(n):
        signals[i, starts[i]:starts[i] + width, channels[i]] += shapes[labels[i]]
        signals[i, decoy_starts[i]:decoy_starts[i] + width, decoy_channels[i]] += pulse
    return SeriesSet(signals.astype(np.float32), labels.astype(np.int64), starts, channels,
                     decoy_starts, decoy_channels, width)


def series_convnet(length, nb_channels, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((length, nb_channels)),
        keras.layers.Conv1D(16, 7, padding="same", activation="relu"),
        keras.layers.Conv1D(16, 5, padding="same", activation="relu"),
        keras.layers.GlobalMaxPooling1D(),
        keras.layers.Dense(2),
    ])


# -- text ---------------------------------------------------------------------------------
PAD_ID, MASK_ID = 0, 1
NEUTRAL_WORDS = (
    "the a an this that movie film story plot actor actress scene scenes director camera "
    "music score script cast role roles character characters ending start middle minute "
    "minutes hour time year night day city house family friend friends man woman child "
    "car road book screen theater sound light color dialogue line lines moment moments "
    "was is were be it he she they we and or but of in on at to with for as by from then "
    "after before again also just very quite rather more most some every other").split()
POSITIVE_WORDS = "good great excellent wonderful superb brilliant lovely enjoyable".split()
NEGATIVE_WORDS = "bad awful terrible boring dreadful poor dull tedious".split()
#: id -> word; 0 pads, 1 masks (what deleted words become).
VOCABULARY = ("<pad>", "<mask>") + tuple(NEUTRAL_WORDS + POSITIVE_WORDS + NEGATIVE_WORDS)
WORD_IDS = {word: index for index, word in enumerate(VOCABULARY)}
NEUTRAL_IDS = np.array([WORD_IDS[w] for w in NEUTRAL_WORDS])
POSITIVE_IDS = np.array([WORD_IDS[w] for w in POSITIVE_WORDS])
NEGATIVE_IDS = np.array([WORD_IDS[w] for w in NEGATIVE_WORDS])


@dataclasses.dataclass
class TextSet:
    """tokens int32 (N, L) (PAD_ID after each sentence's end); labels (N,) (1 positive,
    0 negative); lengths (N,); planted bool (N, L): the sentiment words' positions."""
    tokens: np.ndarray = _rows()
    labels: np.ndarray = _rows()
    lengths: np.ndarray = _rows()
    planted: np.ndarray = _rows()

    def words(self, i):
        return " ".join(VOCABULARY[t] for t in self.tokens[i, :self.lengths[i]])


def make_text(n, seed=0, max_length=24, min_length=8, max_planted=2):
    """Sentences of neutral words (drawn uniformly, so every neutral word is equally
    frequent in both classes: distractors), of random length in [min_length, max_length],
    with 1 to ``max_planted`` sentiment words of the sentence's class at random places;
    padded with PAD_ID to max_length; balanced classes."""
    rng = np.random.default_rng(seed)
    tokens = np.full((n, max_length), PAD_ID, np.int32)
    planted = np.zeros((n, max_length), bool)
    labels = rng.permutation(np.arange(n) % 2)
    lengths = rng.integers(min_length, max_length + 1, n)
    for i in range(n):
        tokens[i, :lengths[i]] = rng.choice(NEUTRAL_IDS, lengths[i])
        count = rng.integers(1, max_planted + 1)
        places = rng.choice(lengths[i], count, replace=False)
        tokens[i, places] = rng.choice(POSITIVE_IDS if labels[i] else NEGATIVE_IDS, count)
        planted[i, places] = True
    return TextSet(tokens, labels.astype(np.int64), lengths, planted)


@dataclasses.dataclass
class TextModel:
    """model: token ids (B, L) int -> 2 logits; embedder: ids -> (B, L, D); head:
    embeddings (B, L, D) -> 2 logits; model(x) == head(embedder(x)), shared weights."""
    model: object
    embedder: object
    head: object


def text_model(max_length, seed=0, dimension=16):
    import keras

    keras.utils.set_random_seed(seed)
    embedder = keras.Sequential([keras.Input((max_length,), dtype="int32"),
                                 keras.layers.Embedding(len(VOCABULARY), dimension)],
                                name="embedder")
    head = keras.Sequential([
        keras.Input((max_length, dimension)),
        keras.layers.Conv1D(32, 3, padding="same", activation="relu"),
        keras.layers.GlobalMaxPooling1D(),
        keras.layers.Dense(2),
    ], name="head")
    inputs = keras.Input((max_length,), dtype="int32")
    model = keras.Model(inputs, head(embedder(inputs)), name="text_classifier")
    return TextModel(model, embedder, head)

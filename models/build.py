#!/usr/bin/python3
"""Build the bundled ONNX models from scikit-learn estimators, without skl2onnx.

Run from anywhere (paths are relative to this file):

    /usr/bin/python3 models/build.py

Needs Debian's python3-sklearn (1.2.1) and python3-onnx (1.12). skl2onnx is not
available, so every graph is written by hand with onnx.helper from the fitted
estimator's parameters, then checked with onnx.checker and with a float32 NumPy
re-implementation of the graph against scikit-learn's float64 predictions.

Outputs, for each model <name> in (iris, digits):
    models/<name>/1/model.onnx   the graph (opset 13, float32 initializers)
    models/<name>/config.json    labels, output names, default version, self-test samples
    models/<name>/reference.json scikit-learn predict / predict_proba for every reference row
    models/<name>/MODEL_CARD.md  data, training, accuracy, inputs, outputs, rebuild notes

Everything is deterministic (fixed random_state, single-threaded BLAS), so a
rebuild on the same software stack reproduces the files byte for byte.
"""

import os

# Single-threaded BLAS so MLP training is reproducible run to run. Must be set
# before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import sklearn  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from sklearn.datasets import load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

OPSET = 13
IR_VERSION = 8
PRODUCER_NAME = "inference-service models/build.py"
PRODUCER_VERSION = "1"
INPUT_NAME = "float_input"
LABEL_OUTPUT = "output_label"
PROBA_OUTPUT = "output_probability"

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

# Maximum allowed |float32 graph - sklearn float64| on any probability. The
# service's tests compare to reference.json at 1e-5 absolute.
PROBA_ATOL = 1e-5


# --------------------------------------------------------------------------- #
# ONNX helpers
# --------------------------------------------------------------------------- #

def f32(name, array):
    """float32 initializer."""
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name=name)


def finish_model(nodes, inputs, outputs, initializers, graph_name, description,
                 extra_opsets=(), full_check=True):
    graph = helper.make_graph(nodes, graph_name, inputs, outputs,
                              initializer=initializers, doc_string=description)
    opsets = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER_NAME,
                              producer_version=PRODUCER_VERSION, doc_string=description)
    model.ir_version = IR_VERSION
    model.model_version = 1
    # full_check also runs strict shape inference (onnx 1.12 cannot do that for
    # sequence/map outputs such as ZipMap's, so callers may opt out).
    onnx.checker.check_model(model, full_check=full_check)
    return model


def classifier_outputs(n_classes):
    return [
        helper.make_tensor_value_info(LABEL_OUTPUT, TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info(PROBA_OUTPUT, TensorProto.FLOAT, ["N", n_classes]),
    ]


def softmax_argmax_nodes(logits):
    return [
        helper.make_node("Softmax", [logits], [PROBA_OUTPUT], name="softmax", axis=1),
        helper.make_node("ArgMax", [PROBA_OUTPUT], [LABEL_OUTPUT], name="argmax",
                         axis=1, keepdims=0),
    ]


def save_model(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = model.SerializeToString()
    with open(path, "wb") as fh:
        fh.write(data)
    return len(data)


def build_iris_graph(scaler, clf, description):
    """StandardScaler + multinomial LogisticRegression as one ONNX graph."""
    n_features = scaler.mean_.shape[0]
    n_classes = clf.coef_.shape[0]
    initializers = [
        f32("scaler_mean", scaler.mean_),
        f32("scaler_scale", scaler.scale_),
        f32("coef", clf.coef_.T),            # [n_features, n_classes]
        f32("intercept", clf.intercept_),    # [n_classes]
    ]
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "scaler_mean"], ["centered"], name="scaler_sub"),
        helper.make_node("Div", ["centered", "scaler_scale"], ["scaled"], name="scaler_div"),
        helper.make_node("MatMul", ["scaled", "coef"], ["linear"], name="logreg_matmul"),
        helper.make_node("Add", ["linear", "intercept"], ["logits"], name="logreg_add"),
    ] + softmax_argmax_nodes("logits")
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])]
    return finish_model(nodes, inputs, classifier_outputs(n_classes), initializers,
                        "iris_logreg", description)


def build_mlp_graph(clf, n_features, input_scale, description):
    """MLPClassifier (relu hidden layers, softmax output) with input scaling."""
    initializers = [f32("input_scale", np.array(input_scale))]
    nodes = [helper.make_node("Mul", [INPUT_NAME, "input_scale"], ["x0"], name="input_mul")]
    prev = "x0"
    n_layers = len(clf.coefs_)
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        initializers += [f32(f"W{i}", w), f32(f"B{i}", b)]
        out = f"logits" if i == n_layers - 1 else f"z{i + 1}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [out], name=f"dense{i}"))
        if i < n_layers - 1:
            nodes.append(helper.make_node("Relu", [out], [f"h{i + 1}"], name=f"relu{i}"))
            prev = f"h{i + 1}"
    nodes += softmax_argmax_nodes("logits")
    n_classes = clf.coefs_[-1].shape[1]
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", n_features])]
    return finish_model(nodes, inputs, classifier_outputs(n_classes), initializers,
                        "digits_mlp", description)


# --------------------------------------------------------------------------- #
# float32 re-implementation of the graphs (sanity check; the real check is ORT)
# --------------------------------------------------------------------------- #

def np_softmax32(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def np_iris32(scaler, clf, X):
    X = X.astype(np.float32)
    s = (X - scaler.mean_.astype(np.float32)) / scaler.scale_.astype(np.float32)
    return np_softmax32(s @ clf.coef_.T.astype(np.float32) + clf.intercept_.astype(np.float32))


def np_mlp32(clf, X, input_scale):
    h = X.astype(np.float32) * np.float32(input_scale)
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        h = h @ w.astype(np.float32) + b.astype(np.float32)
        if i < len(clf.coefs_) - 1:
            h = np.maximum(h, 0)
    return np_softmax32(h)


def check_float32(name, proba64, labels64, proba32):
    diff = float(np.abs(proba32.astype(np.float64) - proba64).max())
    flips = np.nonzero(proba32.argmax(axis=1) != labels64)[0]
    print(f"  {name}: float32 NumPy emulation vs sklearn: max |dp| = {diff:.3g}, "
          f"label disagreements = {len(flips)} {list(flips)[:10]}")
    if diff > PROBA_ATOL:
        raise SystemExit(f"{name}: float32 graph deviates from sklearn by {diff} > {PROBA_ATOL}")
    if len(flips):
        print(f"  WARNING {name}: float32 argmax differs from sklearn predict on rows {list(flips)}")
    return diff, flips


# --------------------------------------------------------------------------- #
# JSON writing: pretty, but lists of numbers stay on one line
# --------------------------------------------------------------------------- #

def to_json(obj, indent=0, step=2):
    pad = " " * indent
    inner = " " * (indent + step)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {to_json(v, indent + step, step)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
        items = [inner + to_json(v, indent + step, step) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj)


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")


def write_reference(name, rows, source):
    body = ",\n".join("    " + json.dumps(r, separators=(", ", ": ")) for r in rows)
    text = ("{\n"
            f'  "model": {json.dumps(name)},\n'
            '  "version": 1,\n'
            f'  "source": {json.dumps(source)},\n'
            '  "rows": [\n' + body + "\n  ]\n}\n")
    path = os.path.join(HERE, name, "reference.json")
    write_text(path, text)
    return path


def feature_list(row, as_int=False):
    return [int(v) if as_int else float(v) for v in row]


def reference_rows(X, labels, proba, as_int=False):
    return [
        {"features": feature_list(x, as_int), "label": int(lbl),
         "probabilities": [float(p) for p in pr]}
        for x, lbl, pr in zip(X, labels, proba)
    ]


def sample_entry(x, label, proba, as_int=False):
    return {
        "features": feature_list(x, as_int),
        "expected": {
            LABEL_OUTPUT: int(label),
            PROBA_OUTPUT: [round(float(p), 6) for p in proba],
        },
        "tolerance": 0.0001,
    }


def write_config(name, description, labels, samples, features=None):
    cfg = {"description": description, "labels": labels}
    if features is not None:
        cfg["features"] = features
    cfg.update({
        "label_output": LABEL_OUTPUT,
        "probability_output": PROBA_OUTPUT,
        "default_version": 1,
        "samples": samples,
    })
    write_text(os.path.join(HERE, name, "config.json"), to_json(cfg))


def versions_line():
    return (f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
            f"NumPy {np.__version__}, onnx {onnx.__version__} (Debian packages "
            f"python3-sklearn, python3-numpy, python3-onnx)")


def fmt_pct(x):
    return f"{100 * x:.2f}%"


# --------------------------------------------------------------------------- #
# iris
# --------------------------------------------------------------------------- #

IRIS_DESCRIPTION = ("Iris species classifier: StandardScaler + multinomial LogisticRegression "
                    "trained on scikit-learn's bundled iris data.")


def fit_iris(C=1.0):
    """Exactly the lesson's pipeline (C=1.0 is LogisticRegression's default)."""
    data = load_iris()
    X, y = data.data, data.target
    pre = StandardScaler().fit(X)
    kwargs = {"max_iter": 1000}
    if C != 1.0:
        kwargs["C"] = C
    clf = LogisticRegression(**kwargs).fit(pre.transform(X), y)
    return data, pre, clf


def build_iris():
    print("iris:")
    data, pre, clf = fit_iris()
    X, y = data.data, data.target
    Xs = pre.transform(X)
    proba = clf.predict_proba(Xs)
    pred = clf.predict(Xs)
    assert list(clf.classes_) == [0, 1, 2]
    # predict_proba must be softmax(decision_function) (multinomial), or the graph is wrong.
    assert np.allclose(proba, np_softmax64(clf.decision_function(Xs)), atol=1e-12, rtol=0)
    acc = float((pred == y).mean())
    print(f"  training accuracy (150 rows): {acc:.4f}, n_iter={int(clf.n_iter_[0])}")

    model = build_iris_graph(pre, clf, IRIS_DESCRIPTION)
    size = save_model(model, os.path.join(HERE, "iris", "1", "model.onnx"))
    print(f"  wrote iris/1/model.onnx ({size} bytes)")
    diff, flips = check_float32("iris", proba, pred, np_iris32(pre, clf, X))

    labels = [str(n) for n in data.target_names]
    samples = []
    for cls in range(3):  # first row of each class that the model also predicts as that class
        i = int(np.nonzero((y == cls) & (pred == cls))[0][0])
        samples.append(sample_entry(X[i], pred[i], proba[i]))
    write_config("iris", IRIS_DESCRIPTION, labels, samples, features=IRIS_FEATURES)
    write_reference("iris", reference_rows(X, pred, proba),
                    f"scikit-learn {sklearn.__version__} predict / predict_proba")

    wrong = np.nonzero(pred != y)[0]
    card = f"""# iris — model card

{IRIS_DESCRIPTION}

## Data
- Source: scikit-learn's bundled copy of Fisher's iris data set (`sklearn.datasets.load_iris`).
- 150 rows, 4 features, 3 classes (50 rows each): {", ".join(f"{i} = {n}" for i, n in enumerate(labels))}.
- No train/test split: as in the lesson, the model is fitted on all 150 rows.

## Training
```python
pre = StandardScaler().fit(X)
clf = LogisticRegression(max_iter=1000).fit(pre.transform(X), y)
```
- LogisticRegression defaults otherwise: C=1.0, penalty='l2', solver='lbfgs', multinomial (softmax) for 3 classes.
- lbfgs iterations used: {int(clf.n_iter_[0])}.

## Accuracy
- Training accuracy on all 150 rows: **{fmt_pct(acc)}** ({int((pred == y).sum())}/150; misclassified rows: {", ".join(map(str, wrong.tolist())) or "none"}).
- There is no held-out set, so this is an optimistic figure; it is not an estimate of accuracy on new flowers.

## Inputs
| name | type | shape | meaning |
|---|---|---|---|
| `{INPUT_NAME}` | float32 | [N, 4] (N symbolic) | {", ".join(IRIS_FEATURES)}, in centimetres, in that order. Raw measurements: the standard scaling is done inside the graph. |

## Outputs
| name | type | shape | meaning |
|---|---|---|---|
| `{LABEL_OUTPUT}` | int64 | [N] | predicted class id (0 = setosa, 1 = versicolor, 2 = virginica), argmax of the probabilities |
| `{PROBA_OUTPUT}` | float32 | [N, 3] | class probabilities (softmax), each row sums to 1 |

Graph: `Sub(mean) → Div(scale) → MatMul(coef^T) → Add(intercept) → Softmax(axis=1)`, and `ArgMax(axis=1, keepdims=0)` of the probabilities. Opset {OPSET}, IR version {IR_VERSION}, constants are float32 initializers.

## Agreement with scikit-learn
- `reference.json` holds scikit-learn's float64 `predict` / `predict_proba` for all 150 rows.
- A float32 re-implementation of the graph, run at build time, reproduces the probabilities to within {diff:.1e} absolute (the tests allow 1e-5) with {len(flips)} label disagreement(s). The model was also checked with onnxruntime-node 1.30 when it was first built (same tolerance, every row).

## Limitations
- Trained on 150 flowers of three species from one historical data set; any other species is still forced into one of the three classes.
- No held-out evaluation; versicolor and virginica overlap, so expect some confusion between them.
- Inputs far outside the training range (roughly 4–8 cm sepal length, 0.1–2.5 cm petal width) give confident but meaningless probabilities.

## Rebuild
```
/usr/bin/python3 models/build.py
```
Needs Debian's `python3-sklearn` and `python3-onnx` (no skl2onnx; the graph is written with `onnx.helper`). Built with {versions_line()}.
"""
    write_text(os.path.join(HERE, "iris", "MODEL_CARD.md"), card)
    return {"accuracy": acc, "diff32": diff, "flips": flips}


def np_softmax64(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- #
# digits
# --------------------------------------------------------------------------- #

DIGITS_DESCRIPTION = ("Handwritten digit classifier for 8x8 images (pixel values 0-16): "
                      "MLPClassifier (2048-2048-1024, relu) trained on scikit-learn's bundled digits data.")
# Far wider than the data needs, on purpose: this is the service's heavier model, one whose
# inference cost is real (about 1 ms for one row on one core, a fraction of that per row in a
# batch), so that batching and worker threads are measured on work that matters.
DIGITS_HIDDEN = (2048, 2048, 1024)
DIGITS_MAX_ITER = 300


def build_digits():
    print("digits:")
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=DIGITS_HIDDEN, activation="relu",
                            max_iter=DIGITS_MAX_ITER, random_state=0).fit(X_train / 16.0, y_train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert clf.out_activation_ == "softmax" and list(clf.classes_) == list(range(10))

    proba = clf.predict_proba(X_test / 16.0)
    pred = clf.predict(X_test / 16.0)
    test_acc = float((pred == y_test).mean())
    train_acc = float(clf.score(X_train / 16.0, y_train))
    print(f"  test accuracy ({len(y_test)} rows): {test_acc:.4f}, train accuracy "
          f"({len(y_train)} rows): {train_acc:.4f}, epochs={clf.n_iter_}, converged={converged}")

    model = build_mlp_graph(clf, X.shape[1], 1.0 / 16.0, DIGITS_DESCRIPTION)
    size = save_model(model, os.path.join(HERE, "digits", "1", "model.onnx"))
    print(f"  wrote digits/1/model.onnx ({size} bytes)")
    diff, flips = check_float32("digits", proba, pred, np_mlp32(clf, X_test, 1.0 / 16.0))

    labels = [str(i) for i in range(10)]
    samples = [sample_entry(X_test[i], pred[i], proba[i], as_int=True) for i in range(3)]
    write_config("digits", DIGITS_DESCRIPTION, labels, samples)
    write_reference("digits", reference_rows(X_test, pred, proba, as_int=True),
                    f"scikit-learn {sklearn.__version__} predict / predict_proba")

    wrong = np.nonzero(pred != y_test)[0]
    n_params = sum(w.size + b.size for w, b in zip(clf.coefs_, clf.intercepts_))
    card = f"""# digits — model card

{DIGITS_DESCRIPTION}

## Data
- Source: scikit-learn's bundled copy of the UCI optical handwritten digits test set (`sklearn.datasets.load_digits`): {len(y)} images of 8x8 pixels, 10 classes (digits 0–9).
- Split: `train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)` → {len(y_train)} training rows, {len(y_test)} test rows.

## Training
```python
clf = MLPClassifier(hidden_layer_sizes={DIGITS_HIDDEN}, activation="relu",
                    max_iter={DIGITS_MAX_ITER}, random_state=0).fit(X_train / 16.0, y_train)
```
- Defaults otherwise: solver='adam', alpha=1e-4, batch_size=min(200, n), learning_rate_init=1e-3, tol=1e-4, n_iter_no_change=10.
- Stopped after {clf.n_iter_} epochs ({"converged: training loss stopped improving by more than tol" if converged else "did NOT converge within max_iter"}), final training loss {clf.loss_:.6f}.
- {n_params:,} parameters ({" → ".join(str(d) for d in (64, *DIGITS_HIDDEN, 10))}), stored as float32.
- Deliberately far wider than 8x8 digits need: this is the service's heavier model, whose inference cost is real (about 1 ms for one row on one core with onnxruntime, much less per row in a batch).

## Accuracy
- Test accuracy ({len(y_test)} held-out rows): **{fmt_pct(test_acc)}** ({int((pred == y_test).sum())}/{len(y_test)}).
- Training accuracy ({len(y_train)} rows): {fmt_pct(train_acc)}.
- Misclassified test rows (index into the test split): {", ".join(f"{i} (true {y_test[i]}, predicted {pred[i]})" for i in wrong) or "none"}.

## Inputs
| name | type | shape | meaning |
|---|---|---|---|
| `{INPUT_NAME}` | float32 | [N, 64] (N symbolic) | the 8x8 image flattened row by row (row-major, top-left first); each value is a pixel intensity from 0 (background) to 16 (ink), as in `load_digits`. Do **not** pre-divide by 16: the graph multiplies by 1/16 itself. |

## Outputs
| name | type | shape | meaning |
|---|---|---|---|
| `{LABEL_OUTPUT}` | int64 | [N] | predicted digit (class id = digit), argmax of the probabilities |
| `{PROBA_OUTPUT}` | float32 | [N, 10] | class probabilities (softmax), each row sums to 1 |

Graph: `Mul(1/16) → Gemm → Relu → Gemm → Relu → Gemm → Relu → Gemm → Softmax(axis=1)`, and `ArgMax(axis=1, keepdims=0)` of the probabilities. Opset {OPSET}, IR version {IR_VERSION}, weights are float32 initializers.

## Agreement with scikit-learn
- `reference.json` holds scikit-learn's float64 `predict` / `predict_proba` for the {len(y_test)} test rows (`features` are the raw 0–16 pixel values).
- A float32 re-implementation of the graph, run at build time, reproduces the probabilities to within {diff:.1e} absolute (the tests allow 1e-5) with {len(flips)} label disagreement(s). The model was also checked with onnxruntime-node 1.30 when it was first built (same tolerance, every row).

## Limitations
- The images are 8x8, 17-level downsampled scans of digits written by a few dozen people (1990s UCI data); real-world images need the same preprocessing (centering, downsampling to 8x8, 0–16 range) and will still be less accurate.
- Anything that is not a digit is still assigned to one of the ten classes, often with high confidence.
- Training accuracy ({fmt_pct(train_acc)}) is higher than test accuracy: the network (over)fits the training set; the test figure is the one to quote.

## Rebuild
```
/usr/bin/python3 models/build.py
```
Needs Debian's `python3-sklearn` and `python3-onnx` (no skl2onnx; the graph is written with `onnx.helper`). Training is forced single-threaded (OPENBLAS_NUM_THREADS=1) for reproducibility. Built with {versions_line()}.
"""
    write_text(os.path.join(HERE, "digits", "MODEL_CARD.md"), card)
    return {"test_accuracy": test_acc, "train_accuracy": train_acc, "diff32": diff, "flips": flips}


def main():
    print(versions_line())
    build_iris()
    build_digits()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Interpret a trained model: report, confusion matrix, top losses, Grad-CAM, embeddings.

What it shows
    The questions to ask after training, each answered by one call:

    - how good is it, per class?        ``classification_report`` (printed, JSON)
    - which classes does it mix up?     the confusion matrix and ``most_confused``
    - which images does it get worst?   ``plot_top_losses``
    - why did it predict that?          ``grad_cam`` heatmaps over the images
    - what did it learn?                ``embeddings``, mapped to 2-D with PCA/t-SNE
    - what does it find alike?          ``similar_images``
    - and, before all that, the data:   ``plot_samples``

    It trains the reference network on the scikit-learn digits scaled up to 32x32
    (so the last convolution keeps an 8x8 map and the heatmaps have some detail),
    unless the run directory already holds a finished run, which is then reused.

How long it takes here (2 CPU cores)
    One to two minutes with the defaults (8 epochs, t-SNE included; about 92%
    test accuracy); 30-60 seconds with ``--fast`` (16x16 images, one epoch, no
    t-SNE).

What it prints
    The per-class report table, the most confused pairs, and the path of every
    picture it writes into ``RUN_DIR/interpret/``: samples.png,
    confusion_matrix.png, top_losses.png, grad_cam_<i>_predicted.png and
    grad_cam_<i>_true.png, embeddings.png, similar.png, plus report.json.

Run it
    python examples/04_interpret.py --run-dir runs/interpret
    python examples/04_interpret.py --fast --run-dir /tmp/interpret
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _scratch import scratch_folder

import kerasimgcls as kic

SEED = 0


def upscale(split: kic.Split, size: int) -> kic.Split:
    """Resize a split's images (bilinear), keeping them uint8."""
    import tensorflow as tf

    resized = tf.image.resize(split.images, (size, size), method="bilinear")
    images = np.clip(np.rint(resized.numpy()), 0, 255).astype(np.uint8)
    return kic.Split(images, split.labels)


def load_data(size: int, fast: bool) -> kic.ImageDataset:
    data = kic.load_digits(validation_split=0.1, seed=SEED)
    splits = {}
    for name, split in data.splits().items():
        if fast and name == "train":
            split = split.subset(slice(0, 300))
        splits[name] = upscale(split, size)
    return kic.ImageDataset(
        splits["train"],
        splits["validation"],
        splits["test"],
        data.class_names,
        name=f"digits{size}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for tests")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--run-dir", default=None, help="the run to train or reuse")
    args = parser.parse_args()
    run_dir = scratch_folder(
        args.run_dir, prefix="kerasimgcls-interpret-", fast=args.fast
    )
    out = run_dir / "interpret"
    size = 16 if args.fast else 32
    data = load_data(size, args.fast)
    print(data)

    # 1. Train (or, if run_dir holds this finished run already, just load it).
    trainer = kic.Trainer(
        # batch_norm_momentum=0.9: the moving statistics settle within the few
        # hundred steps a dataset this small gives (see Concepts).
        lambda: kic.build_cifar_cnn(
            input_shape=data.input_shape, num_classes=10, batch_norm_momentum=0.9
        ),
        seed=SEED,
        run_dir=run_dir,
        verbose=0,
    )
    trainer.fit(data, epochs=1 if args.fast else args.epochs, batch_size=32)
    # 0. Look at the data (a grid of samples per class) before trusting a model
    #    trained on it. (Drawn only now: a new run needs an empty run directory.)
    out.mkdir(parents=True, exist_ok=True)
    samples = kic.plots.plot_samples(
        data.train, out / "samples.png", class_names=data.class_names
    )
    print("wrote", samples)

    model = kic.load_model(run_dir)  # the exported model: uint8 in, class names inside
    print(f"model: {run_dir / 'model.keras'}, classes {kic.get_class_names(model)}")

    # 2. How good is it, per class, and what does it confuse?
    report = kic.classification_report(model, data.test)
    print(report)  # the table, the overall scores and the most confused pairs
    worst = report.most_confused(1)
    if worst:
        true_name, predicted_name, count = worst[0]
        print(
            f"the most common mistake: {true_name} taken for {predicted_name} ({count}x)"
        )
    print("wrote", report.save(out / "report.json"))
    print("wrote", report.plot_confusion_matrix(out / "confusion_matrix.png"))
    print(
        "wrote", report.plot_top_losses(data.test.images, out / "top_losses.png", k=9)
    )

    # 3. Why? Grad-CAM on the worst mistakes: where did the model see the class it
    #    predicted, and where the true one? block3_conv gives a 16x16 map (the last
    #    convolution, the default, gives 8x8 here and is often empty for a wrong
    #    class; the function warns when that happens).
    for rank, index in enumerate(report.top_losses(3)):
        image, true_label = data.test.images[index], int(data.test.labels[index])
        predicted = kic.grad_cam(model, image, layer_name="block3_conv")
        truth = kic.grad_cam(model, image, true_label, layer_name="block3_conv")
        print(
            f"mistake {rank}: a {truth.class_name} ({truth.probability:.2f}) "
            f"predicted as {predicted.class_name} ({predicted.probability:.2f})"
        )
        print("wrote", predicted.save(out / f"grad_cam_{rank}_predicted.png"))
        print("wrote", truth.save(out / f"grad_cam_{rank}_true.png"))

    # 4. What did it learn? The features the classifier sees, mapped to 2-D.
    features = kic.embeddings(model, data.test)
    methods = ("pca",) if args.fast else ("pca", "tsne")
    print(f"embeddings: {features.shape[0]} images x {features.shape[1]} features")
    print(
        "wrote",
        kic.plots.plot_embeddings(
            features,
            data.test.labels,
            out / "embeddings.png",
            methods=methods,
            class_names=data.class_names,
        ),
    )

    # 5. What does it find alike? Nearest neighbours of one test image.
    similar = kic.similar_images(model, data.test.images[0], data.test, k=6)
    print(
        "similar to test image 0:",
        [data.class_names[label] for label in similar.labels],
        [f"{value:.3f}" for value in similar.similarities],
    )
    print("wrote", similar.plot(out / "similar.png", class_names=data.class_names))


if __name__ == "__main__":
    main()

"""The LiteRT export for serving, checked against the Keras model it was made from."""

import numpy as np
import pytest

from mnist_pipeline.network.model import build_model
from mnist_pipeline.params import DenseParams, ModelParams
from mnist_pipeline.plumbing.errors import PipelineError
from mnist_pipeline.training.export import EXPORT_TOLERANCE, check_export, export_for_serving


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_mnist):
    import keras

    from mnist_pipeline.data.preprocessing import prepare

    folder = tmp_path_factory.mktemp("exported")
    # Seeded, or its weights depend on the models built before it. An untrained network's top
    # two probabilities can be near ties, which the shifts below would tip: with this seed every
    # image's top two are over 9e-4 apart in log-probability, the largest shift 9 x 3e-5.
    keras.utils.set_random_seed(31)
    model = build_model(ModelParams(dense=DenseParams(hidden_units=[8])))
    pixels = prepare(tiny_mnist)["x_train"]
    export_for_serving(model, folder / "model.tflite", pixels)
    return folder / "model.tflite", model, pixels


def test_the_export_is_the_same_bytes_each_time(exported, tmp_path):
    path, model, pixels = exported
    export_for_serving(model, tmp_path / "again.tflite", pixels)
    assert (tmp_path / "again.tflite").read_bytes() == path.read_bytes()


def shifted(model, by: float):
    """A copy of `model` whose output layer's biases are all moved by `by`: the same digits,
    probabilities moved a little, as a different export of the model would."""
    import keras

    copy = keras.models.clone_model(model)
    weights = model.get_weights()
    weights[-1] = weights[-1] + np.float32(by) * np.arange(10, dtype=np.float32)
    copy.set_weights(weights)
    return copy


@pytest.mark.parametrize(("by", "agrees"), [(0.0, True), (1e-6, True), (3e-5, False)])
def test_an_export_that_disagrees_beyond_the_tolerance_is_refused(exported, by, agrees):
    path, model, pixels = exported
    other = shifted(model, by)
    difference = np.abs(np.asarray(other(pixels)) - np.asarray(model(pixels))).max()
    assert (difference <= EXPORT_TOLERANCE) == agrees  # each side of the bound
    if agrees:
        check_export(other, path, pixels)
    else:
        with pytest.raises(PipelineError) as error:
            check_export(other, path, pixels)
        assert str(error.value).startswith(
            f"{path}: the LiteRT export disagrees with the Keras model on 300 training images "
            "(0 read as another digit; probabilities up to"
        )


def test_an_export_that_reads_another_digit_is_refused(exported):
    path, model, pixels = exported
    with pytest.raises(PipelineError, match=r"on 300 training images \([1-9]\d* read as another"):
        check_export(build_model(ModelParams(dense=DenseParams(hidden_units=[8]))), path, pixels)


def test_an_export_written_wrong_is_refused_by_the_export_itself(exported, tmp_path, monkeypatch):
    path, model, pixels = exported
    other = shifted(model, 3e-5)  # the same digits, probabilities beyond the tolerance
    # As if Keras' converter went wrong: the flatbuffer written for `other` is `model`'s.
    monkeypatch.setattr(other, "export", lambda target, **options: model.export(target, **options))
    with pytest.raises(PipelineError, match=r"the LiteRT export disagrees with the Keras model"):
        export_for_serving(other, tmp_path / "model.tflite", pixels)

"""FusedRMSprop: Keras' RMSprop arithmetic in one kernel, its state handed to Keras' own class."""

import keras
import numpy as np
import pytest

from mnist_pipeline.data.preprocessing import prepare
from mnist_pipeline.network.model import build_model
from mnist_pipeline.params import DenseParams, ModelParams
from mnist_pipeline.training.fused_rmsprop import FusedRMSprop, as_keras_rmsprop


def test_fused_rmsprop_follows_keras_rmsprop(tiny_mnist):
    data = prepare(tiny_mnist)
    initial, trained = [], []
    for optimizer in (
        FusedRMSprop(learning_rate=0.01),
        keras.optimizers.RMSprop(learning_rate=0.01),
    ):
        keras.utils.set_random_seed(3)
        model = build_model(ModelParams(dense=DenseParams(hidden_units=[32])))
        initial.append(model.get_weights())
        model.compile(optimizer=optimizer, loss="categorical_crossentropy")
        model.fit(
            data["x_train"], data["y_train"], epochs=2, batch_size=50, shuffle=False, verbose=0
        )
        trained.append(model.get_weights())
    for before, after in zip(initial[0], trained[0], strict=True):
        assert np.abs(after - before).max() > 1e-3  # the optimizer really moved every weight
    for fused, stock in zip(*trained, strict=True):
        np.testing.assert_allclose(fused, stock, rtol=1e-4, atol=1e-6)


def test_stock_optimizer_carries_the_fused_state_over(tiny_mnist):
    data = prepare(tiny_mnist)
    keras.utils.set_random_seed(4)
    model = build_model(ModelParams(dense=DenseParams(hidden_units=[16])))
    model.compile(
        optimizer=FusedRMSprop(learning_rate=0.01, rho=0.8),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=3,
    )
    model.fit(data["x_train"], data["y_train"], epochs=1, batch_size=100, verbose=0)
    fused = {v.path: v.numpy() for v in model.optimizer.variables}
    compiled = model.get_compile_config()
    as_keras_rmsprop(model)
    stock = model.optimizer
    assert type(stock) is keras.optimizers.RMSprop
    assert (stock.learning_rate, stock.rho, stock.momentum) == (np.float32(0.01), 0.8, 0.0)
    # Only the optimizer changed: loss, metrics and steps per execution are as compiled.
    assert {k: v for k, v in model.get_compile_config().items() if k != "optimizer"} == {
        k: v for k, v in compiled.items() if k != "optimizer"
    }
    assert int(stock.iterations) == 3
    velocities = [v for v in stock.variables if "velocity" in v.path]
    assert len(velocities) == len(model.trainable_variables) == 4
    for velocity in velocities:
        assert np.abs(velocity.numpy()).max() > 0  # a real state, not fresh zeros
        np.testing.assert_array_equal(velocity.numpy(), fused[velocity.path])


@pytest.mark.parametrize("option", ["momentum", "centered"])
def test_momentum_and_centering_are_no_options_of_it(option):
    # What it does not implement it does not take: Keras' own check refuses the argument.
    with pytest.raises(ValueError, match=f"Argument\\(s\\) not recognized: {{'{option}'"):
        FusedRMSprop(learning_rate=0.01, **{option: 0.9})


def test_its_state_is_keras_rmsprops_variable_for_variable():
    model = build_model(ModelParams(dense=DenseParams(hidden_units=[8])))
    optimizers = [FusedRMSprop(name="optimizer"), keras.optimizers.RMSprop(name="optimizer")]
    for optimizer in optimizers:
        optimizer.build(model.trainable_variables)
    fused, stock = ([(v.path, v.shape) for v in o.variables] for o in optimizers)
    assert fused == stock and len(fused) == 2 + 4  # iterations, learning rate, 4 velocities

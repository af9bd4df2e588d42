"""RMSprop with each weight's update done by one fused TensorFlow kernel: a speed device.

`python -m benchmarks.speedups` measures what it buys. Same arithmetic as Keras' RMSprop without
momentum, not centred (v = rho*v + (1-rho)*g^2; w -= lr*g/sqrt(v+eps)), in one kernel
(tf.raw_ops.ResourceApplyRMSProp) instead of about eight element-wise ops per weight. Its state is
Keras' RMSprop's, variable for variable, and `as_keras_rmsprop` hands it over before the model is
saved, so a saved model loads with plain Keras and trains on the same way.
"""

import keras
import tensorflow as tf


class FusedRMSprop(keras.optimizers.Optimizer):
    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        epsilon: float = 1e-7,
        **kwargs: object,
    ) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def build(self, var_list: list[keras.Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        # Created as Keras' RMSprop creates its own, in the same order: its saved state is ours.
        velocities = [self.add_variable_from_reference(v, "velocity") for v in var_list]
        # The kernel also writes a momentum slot; at momentum 0 it holds the last step, which is
        # no state of RMSprop's: a plain TensorFlow variable, left out of the optimizer's own.
        last_steps = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in var_list]
        # update_step is handed the TensorFlow variable behind each Keras variable.
        self.slots = {
            variable.value.ref(): (velocity, last_step)
            for variable, velocity, last_step in zip(var_list, velocities, last_steps, strict=True)
        }

    def update_step(
        self, gradient: tf.Tensor, variable: tf.Variable, learning_rate: tf.Tensor
    ) -> None:
        velocity, last_step = self.slots[variable.ref()]
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle,
            ms=velocity.value.handle,
            mom=last_step.handle,
            lr=tf.cast(learning_rate, dtype),
            rho=tf.constant(self.rho, dtype),
            momentum=tf.constant(0.0, dtype),
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


def as_keras_rmsprop(model: keras.Model) -> None:
    """Recompile a model trained with FusedRMSprop to Keras' own RMSprop, its state carried over.

    Saved that way, the model loads with plain `keras.models.load_model`, no import of ours, and
    training it further follows the same arithmetic.
    """
    fused = model.optimizer
    if not isinstance(fused, FusedRMSprop):
        return
    config = model.get_compile_config()  # loss, metrics, steps per execution: kept as they are
    config["optimizer"] = keras.optimizers.serialize(
        keras.optimizers.RMSprop.from_config(fused.get_config())
    )
    model.compile_from_config(config)  # builds the new optimizer's variables
    for mine, theirs in zip(fused.variables, model.optimizer.variables, strict=True):
        if mine.path != theirs.path:
            raise RuntimeError(f"optimizer state out of step: {mine.path} is not {theirs.path}")
        theirs.assign(mine)

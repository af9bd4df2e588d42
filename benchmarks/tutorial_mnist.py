"""The classic Keras MNIST tutorial, as written, the baseline train_speed.py measures against.

The only change: the data comes from the pipeline's data/raw/ (keras.datasets would download it).
"""

import keras
import numpy as np

raw = {name: np.load(f"data/raw/{name}.npy") for name in ("x_train", "y_train", "x_test", "y_test")}
x_train = raw["x_train"].reshape(60000, 784).astype("float32") / 255
x_test = raw["x_test"].reshape(10000, 784).astype("float32") / 255
y_train = keras.utils.to_categorical(raw["y_train"], 10)
y_test = keras.utils.to_categorical(raw["y_test"], 10)

model = keras.Sequential(
    [
        keras.Input(shape=(784,)),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=5, batch_size=128, verbose=2)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy {accuracy:.4f}, loss {loss:.4f}")

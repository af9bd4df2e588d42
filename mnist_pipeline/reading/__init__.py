"""Reading digits with a trained model: models by reference, pictures as digits, classifiers."""

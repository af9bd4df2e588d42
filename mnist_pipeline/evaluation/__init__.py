"""Scoring a model on the test set, and the picture sheets of digits it misread."""

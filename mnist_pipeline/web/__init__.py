"""A local web page to draw a digit on and see what the trained network reads, and what it saw.

`python -m mnist_pipeline.web` (or `mnist-web`) serves it on http://127.0.0.1:8000 (serve.py);
app.py is the FastAPI application, static/ the page. Every drawing goes through predict's own
code: imaging.read_digit, then predict.classify (normalize_pixels) and predict.top_two.
"""
